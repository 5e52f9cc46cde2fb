//! `strata build --timings`: the HTML page exists, is well formed, and shows
//! every module, the critical path and cache hits.

mod common;
use common::TestProject;

/// Checks that every element is closed in order (void elements aside), with
/// Python's HTML tokenizer: the page must be well formed, not just "contain
/// the right words".
fn assert_well_formed(path: &std::path::Path) {
    let script = r#"
import sys
from html.parser import HTMLParser
VOID = {"meta", "br", "hr", "img", "input", "link", "rect", "line", "polyline"}
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack = []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            sys.exit(f"unbalanced </{tag}>, open: {self.stack}")
        self.stack.pop()
p = P()
p.feed(open(sys.argv[1]).read())
if p.stack:
    sys.exit(f"unclosed: {p.stack}")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn timings_page_holds_every_module_the_critical_path_and_cache_hits() {
    let p = TestProject::with_default(&["app"]);
    p.local_module("base", &[("f", "b")], "build = \"sleep 0.3\"");
    p.local_module("side", &[("f", "s")], "build = \"true\"");
    p.local_module(
        "app",
        &[("f", "a")],
        "depends = [\"base\", \"side\"]\nbuild = \"true\"",
    );
    p.strata().args(["build", "--timings"]).assert().success();
    let page_path = p.path("build/.strata/timings/strata-timing.html");
    let page = std::fs::read_to_string(&page_path).unwrap();
    for m in ["base", "side", "app"] {
        assert!(page.contains(&format!(">{m}</text>")), "{m} missing");
    }
    assert!(page.contains("base → app"), "critical path");
    assert!(page.contains("<tr><th>built</th><td>3</td></tr>"));
    assert!(page.contains("<title>base build:"), "build bar of base");
    assert!(page.contains("<title>app pack:"), "pack bar");
    assert!(
        !page
            .replace("http://www.w3.org/2000/svg", "")
            .contains("http://"),
        "no external resource"
    );
    assert!(!page.contains("<script"), "self-contained, no script");
    assert_well_formed(&page_path);

    // From a clean checkout with a warm cache: every module is a cache hit.
    p.strata().args(["clean", "--all"]).assert().success();
    p.strata().args(["build", "--timings"]).assert().success();
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(
        page.contains("<tr><th>restored from cache (hits)</th><td>3</td></tr>"),
        "{page}"
    );
    assert!(page.contains("<title>app restore:"));
    assert_well_formed(&page_path);
}
