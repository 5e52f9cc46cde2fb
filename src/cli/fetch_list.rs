//! `strata fetch --dry-run [NAMES]`: every file a build of the names would
//! download, each with its pin, without downloading anything: module source
//! archives, git sources (archived by strata at their rev), and extra
//! downloads (`[[download]]`, toolchain packages). A `sha1-from` download is
//! listed resolved when its module's source package is already here, and
//! otherwise by the pattern its pin will be read from. A fixed-output
//! module with `network = true` downloads in its own commands: each of its
//! outputs is listed with its pin (kind `fixed-output`, no URL: its script
//! knows where from).

use super::{Failure, Global};
use crate::graph;
use crate::manifest::{Module, OverrideKind, Pin, Project};
use serde_json::{Value, json};

/// One file to download.
struct Row {
    kind: &'static str,
    module: String,
    /// Where it lands: `packages/<file>`, or `<dest>/<file>` in the tree.
    file: String,
    pin: String,
    urls: Vec<String>,
    /// For a `sha1-from` download: the sum file pattern it is read from.
    from_source: Option<String>,
    resolved: bool,
}

fn rows_of(project: &Project, m: &Module) -> Vec<Row> {
    let mut rows = Vec::new();
    match m.overridden.as_ref().map(|o| o.kind) {
        Some(OverrideKind::Prebuilt) | Some(OverrideKind::Source) => return rows,
        None => {}
    }
    match &m.git {
        Some(git) => rows.push(Row {
            kind: "git",
            module: m.name.clone(),
            file: m.file.clone(),
            pin: match m.pinned_sha256() {
                Some(sum) => format!("git:{} sha256:{sum}", git.rev),
                None => format!("git:{}", git.rev),
            },
            urls: vec![git.url.clone()],
            from_source: None,
            resolved: true,
        }),
        // `source = "none"`: nothing to fetch.
        None if !m.has_source() => {}
        None => rows.push(Row {
            kind: "source",
            module: m.name.clone(),
            file: m.file.clone(),
            pin: format!("sha256:{}", m.sha256),
            urls: project.urls_for(&m.file, &m.urls),
            from_source: None,
            resolved: true,
        }),
    }
    let resolved = crate::fetch::resolved_downloads_present(project, m);
    let downloads = resolved.clone().unwrap_or_else(|| m.downloads.clone());
    for (d, declared) in downloads.iter().zip(&m.downloads) {
        let from_source = match &declared.pin {
            Pin::Sha1From(p) => Some(p.path.clone()),
            _ => None,
        };
        let name = if d.file.is_empty() {
            format!("<{}>", from_source.clone().unwrap_or_default())
        } else {
            d.file.clone()
        };
        let urls = if d.file.is_empty() {
            d.urls.clone()
        } else {
            project.urls_for(&d.file, &d.urls)
        };
        rows.push(Row {
            kind: "download",
            module: m.name.clone(),
            file: if d.dest.is_empty() {
                name
            } else {
                format!("{}/{name}", d.dest)
            },
            pin: d.pin.label(),
            urls,
            from_source,
            resolved: !matches!(d.pin, Pin::Sha1From(_)),
        });
    }
    for (path, sum) in m.outputs.iter().filter(|_| m.network) {
        rows.push(Row {
            kind: "fixed-output",
            module: m.name.clone(),
            file: path.clone(),
            pin: format!("sha256:{sum}"),
            urls: Vec::new(),
            from_source: None,
            resolved: true,
        });
    }
    rows
}

pub fn dry_run(g: &Global, names: &[String]) -> Result<(), Failure> {
    let l = g.load()?;
    let selection = graph::select(&l.project, names)?;
    let closure = l.graph.closure(&selection);
    let mut rows = Vec::new();
    for &i in &closure {
        rows.extend(rows_of(&l.project, &l.project.modules[i]));
    }
    let count = |k: &str| rows.iter().filter(|r| r.kind == k).count();
    let (sources, gits, downloads) = (count("source"), count("git"), count("download"));
    let fixed = count("fixed-output");
    let unresolved = rows.iter().filter(|r| !r.resolved).count();
    if g.json {
        let files: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "kind": r.kind, "module": r.module, "file": r.file, "pin": r.pin,
                    "urls": r.urls, "from_source": r.from_source, "resolved": r.resolved,
                })
            })
            .collect();
        let doc = json!({
            "target": if names.is_empty() { "default".to_string() } else { names.join(" ") },
            "files": files,
            "counts": { "source": sources, "git": gits, "download": downloads, "fixed_output": fixed, "unresolved": unresolved },
        });
        crate::outln!("{doc}");
        return Ok(());
    }
    for r in &rows {
        let mut line = format!(
            "{:<8} {:<24} {} {} {}",
            r.kind,
            r.module,
            r.file,
            r.pin,
            r.urls.first().map(String::as_str).unwrap_or("-")
        );
        if let (Some(p), true) = (&r.from_source, r.resolved) {
            line.push_str(&format!(" (pin from {p})"));
        }
        crate::outln!("{line}");
    }
    let mut summary = format!(
        "{}: {sources} module {}, {gits} git {}, {downloads} extra {}",
        crate::report::count(rows.len() as u64, "file", "files"),
        if sources == 1 { "tarball" } else { "tarballs" },
        if gits == 1 { "source" } else { "sources" },
        if downloads == 1 {
            "download"
        } else {
            "downloads"
        },
    );
    if fixed > 0 {
        summary.push_str(&format!(
            ", {fixed} fixed-output {} (made by a module's own commands with the network, \
             checked against these pins)",
            if fixed == 1 { "file" } else { "files" }
        ));
    }
    if unresolved > 0 {
        summary.push_str(&format!(
            " ({unresolved} pinned by a file of their module's source, named once it is fetched: `strata fetch` resolves them)"
        ));
    }
    crate::outln!("{summary}");
    Ok(())
}
