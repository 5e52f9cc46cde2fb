//! The seed's scenario end to end: Heads-style Makefile layers restored
//! with stamps that disagree with their files re-patch (and the runner ends
//! the step instead of hanging), while strata's layers re-download and
//! re-patch nothing.

mod ci_support;
mod common;

use ci_support::{ci, commit, repo};
use common::*;

const PATCH_ADDS_FILE: &str = "--- /dev/null\n+++ b/extra.txt\n@@ -0,0 +1 @@\n+extra\n";

/// Serves alpha, beta and gamma tarballs; returns them too.
fn upstream(srv: &Server) -> Vec<(&'static str, Vec<u8>)> {
    ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|m| {
            let tb = tarball(
                &format!("{m}-1.0"),
                &[("src.txt", &format!("{m} source\n"))],
            );
            srv.route(&format!("/{m}-1.0.tar.gz"), Reply::Ok(tb.clone()));
            (m, tb)
        })
        .collect()
}

/// Heads-style: explicit per-module rules made with define/eval, empty
/// stamp files judged by mtime, and `_verify` markers in packages/.
const MAKEFILE: &str = r#"MODULES := alpha beta gamma
all: $(foreach m,$(MODULES),build/$(m)-1.0/.build)

define module
packages/$(1)-1.0.tar.gz:
	mkdir -p packages
	curl -fsS -o $$@ $$(MIRROR)/$(1)-1.0.tar.gz

packages/.$(1)-1.0_verify: packages/$(1)-1.0.tar.gz
	grep " $(1)-1.0.tar.gz" hashes | (cd packages && sha256sum -c --quiet -)
	touch $$@

build/$(1)-1.0/.canary: packages/.$(1)-1.0_verify
	mkdir -p build
	tar -xzf packages/$(1)-1.0.tar.gz -C build
	for p in patches/$(1)-1.0/*.patch; do [ -e "$$$$p" ] || continue; echo "patching $$$$p"; patch -p1 -d build/$(1)-1.0 < "$$$$p"; done
	touch $$@

build/$(1)-1.0/.configured: build/$(1)-1.0/.canary
	touch $$@

build/$(1)-1.0/.build: build/$(1)-1.0/.configured config/$(1).conf
	cat build/$(1)-1.0/*.txt config/$(1).conf > build/$(1)-1.0/out
	touch $$@
endef
$(foreach m,$(MODULES),$(eval $(call module,$(m))))
"#;

const MAKE_CONFIG: &str = r#"version: 2.1
jobs:
  build:
    steps:
      - checkout
      - run:
          name: Layer keys
          command: |
            cat config/alpha.conf patches/alpha-1.0/* > .key1
            cat .key1 config/beta.conf > .key2
            cat .key2 config/gamma.conf > .key3
      - restore_cache:
          keys:
            - layer3-{{ checksum ".key3" }}
            - layer2-{{ checksum ".key2" }}
            - layer1-{{ checksum ".key1" }}
      - run: {name: make, command: "make MIRROR=$MIRROR", no_output_timeout: 10s}
      - save_cache: {key: 'layer1-{{ checksum ".key1" }}', paths: [build/alpha-1.0]}
      - save_cache: {key: 'layer2-{{ checksum ".key2" }}', paths: [build/alpha-1.0, build/beta-1.0]}
      - save_cache: {key: 'layer3-{{ checksum ".key3" }}', paths: [packages, build]}
workflows:
  main:
    jobs: [build]
"#;

fn strata_bin_path() -> String {
    let bin = assert_cmd::cargo::cargo_bin("strata");
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn ci_run(p: &TestProject, srv: &Server) -> (i32, String, f64) {
    let t = std::time::Instant::now();
    let out = ci(p)
        .env("PATH", strata_bin_path())
        .args(["run", "--env", &format!("MIRROR={}", srv.url(""))])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("---- strata ci run ({secs:.2}s) ----\n{err}");
    (out.status.code().unwrap_or(-1), err, secs)
}

#[test]
fn seed_scenario_makefile_layers_repatch_and_the_runner_ends_the_step() {
    let srv = Server::start();
    let tarballs = upstream(&srv);
    let hashes: String = tarballs
        .iter()
        .map(|(m, tb)| format!("{}  {m}-1.0.tar.gz\n", sha256(tb)))
        .collect();
    let p = repo(&[
        (".circleci/config.yml", MAKE_CONFIG),
        ("Makefile", MAKEFILE),
        ("hashes", &hashes),
        ("patches/alpha-1.0/0001-add-extra.patch", PATCH_ADDS_FILE),
        ("config/alpha.conf", "a=1\n"),
        ("config/beta.conf", "b=1\n"),
        ("config/gamma.conf", "g=1\n"),
    ]);
    let (code, first, _) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{first}");
    let saved = first
        .lines()
        .filter(|l| l.starts_with("[build]   ok") && l.contains("new ("))
        .count();
    assert_eq!(saved, 3, "three layers saved: {first}");

    // Change one module (gamma): layer 3 misses, layer 2 hits exactly.
    p.write("config/gamma.conf", "g=2\n");
    commit(p.root(), "change gamma");
    let (code, second, secs) = ci_run(&p, &srv);
    assert_eq!(code, 1, "{second}");
    assert!(second.contains("exact match `layer2-"), "{second}");
    // Re-downloaded (packages/ was not in layer 2), re-extracted over the
    // restored tree, re-patched: GNU patch finds the file its patch creates
    // and asks the seed's question. (For a patch that modifies a file it says
    // "Reversed (or previously applied) patch detected! Assume -R? [n]".)
    assert!(
        second.contains("curl -fsS -o packages/alpha-1.0.tar.gz"),
        "{second}"
    );
    assert!(
        second.contains("which already exists!  Assume -R? [n]"),
        "GNU patch's re-patch question is in the log: {second}"
    );
    assert!(second.contains("FAILED"), "{second}");
    assert!(secs < 60.0, "the runner ended the step instead of hanging");
}

#[test]
fn seed_scenario_with_strata_layers_redownloads_and_repatches_nothing() {
    let srv = Server::start();
    let tarballs = upstream(&srv);
    let cfg = r#"version: 2.1
jobs:
  build:
    steps:
      - checkout
      - run:
          name: Restore layers
          command: strata ci restore-layer l3 --key "$(strata ci key l3)" --key "$(strata ci key l2)" --key "$(strata ci key l1)"
      - run: {name: build, command: "strata build", no_output_timeout: 30s}
      - run:
          name: Save layers
          command: strata ci save-layer l1 && strata ci save-layer l2 && strata ci save-layer l3
workflows:
  main:
    jobs: [build]
"#;
    let mut files: Vec<(String, String)> = vec![
        (".circleci/config.yml".into(), cfg.into()),
        (
            "strata.toml".into(),
            "[project]\nname = \"seed\"\ncache-version = \"1\"\n\n[target.default]\nmodules = [\"gamma\"]\n\n[layer.l1]\nmodules = [\"alpha\"]\n\n[layer.l2]\nmodules = [\"beta\"]\n\n[layer.l3]\nmodules = [\"gamma\"]\n".into(),
        ),
        ("patches/alpha-1.0/0001-add-extra.patch".into(), PATCH_ADDS_FILE.into()),
    ];
    let deps = [("alpha", ""), ("beta", "alpha"), ("gamma", "beta")];
    for ((m, tb), (_, dep)) in tarballs.iter().zip(deps) {
        let depends = if dep.is_empty() {
            String::new()
        } else {
            format!("depends = [\"{dep}\"]\n")
        };
        files.push((
            format!("modules/{m}.toml"),
            format!(
                "name = \"{m}\"\nversion = \"1.0\"\nurl = \"{}\"\nsha256 = \"{}\"\n{depends}build = \"cat *.txt > out\"\ninstall = \"mkdir -p $STRATA_DESTDIR/{m} && cp out $STRATA_DESTDIR/{m}/\"\n",
                srv.url(&format!("/{m}-1.0.tar.gz")),
                sha256(tb)
            ),
        ));
    }
    files.push((
        ".gitignore".into(),
        "build/\npackages/\ninstall/\n.strata/\n.ci-store/\n.xdg-cache/\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = repo(&refs);

    let (code, first, _) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{first}");
    assert_eq!(
        srv.requests().len(),
        3,
        "first run downloads each tarball once"
    );
    assert!(first.contains("Saved cache `l3-"), "{first}");

    // Change one module (gamma): layer 3 misses, layer 2 hits exactly.
    let gamma = p
        .read("modules/gamma.toml")
        .replace("cat *.txt > out", "cat *.txt > out && echo v2 >> out");
    p.write("modules/gamma.toml", gamma);
    commit(p.root(), "change gamma");
    let (code, second, secs) = ci_run(&p, &srv);
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("exact match of `l2-"), "{second}");
    // Layer 2 held alpha and beta with their packages: nothing of theirs is
    // downloaded, extracted or patched again; only gamma (not in the layer) is fetched.
    let requests = srv.requests();
    assert_eq!(&requests[3..], ["/gamma-1.0.tar.gz"], "{requests:?}");
    for m in ["alpha", "beta"] {
        assert!(
            !second.contains(&format!("Built {m}")),
            "{m} rebuilt: {second}"
        );
        assert!(
            !second.contains(&format!("Unpacking {m}")),
            "{m} re-extracted: {second}"
        );
    }
    assert!(second.contains("Built gamma"), "{second}");
    // The runner's summary lists the cache commands run from steps.
    let summary = second.split("summary").nth(1).unwrap();
    assert!(summary.contains("restore  exact match `l2-"), "{summary}");
    assert!(summary.contains("save     `l3-"), "{summary}");
    assert!(second.contains("2 fresh"), "{second}");
    eprintln!("second run: {secs:.2}s");
}
