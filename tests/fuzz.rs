//! Property-based fuzzing of every parser that reads untrusted input: the
//! manifest, patches, source archives and CircleCI configs. Each property is
//! "no panic, and nothing written outside the tree"; inputs are valid
//! documents mutated at random (bytes flipped, inserted, deleted, spliced)
//! plus raw random bytes, so the parsers are driven deep, not just rejected
//! at the first byte. Bounded for CI: `PROPTEST_CASES` (default 256 per
//! target) sets the number of inputs.

use proptest::prelude::*;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..64, any::<usize>())
            .prop_map(|(i, n, to)| Mutation::Duplicate(i, n, to)),
    ]
}

fn mutate(seed: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in ms {
        let len = v.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !v.is_empty() {
                    let i = i % v.len();
                    v[i] ^= b | 1;
                }
            }
            Mutation::Insert(i, b) => {
                let i = i % (v.len() + 1);
                v.splice(i..i, b.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = i % len;
                let end = (i + n).min(v.len());
                if i < end {
                    v.drain(i..end);
                }
            }
            Mutation::Duplicate(i, n, to) => {
                let i = i % len;
                let end = (i + n).min(v.len());
                if i < end {
                    let chunk = v[i..end].to_vec();
                    let to = to % (v.len() + 1);
                    v.splice(to..to, chunk);
                }
            }
        }
    }
    v
}

/// A valid document mutated, or (sometimes) raw bytes.
fn input(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0..seeds.len(), prop::collection::vec(mutation(), 0..6))
            .prop_map(move |(s, ms)| mutate(seeds[s], &ms)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Every file under `dir`, with its content (to prove nothing changed).
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if ft.is_file() {
                out.push((rel, std::fs::read(&p).unwrap()));
            } else {
                out.push((rel, b"<link>".to_vec()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

const STRATA_TOML: &[u8] = br#"[project]
name = "fw"
cache-version = "1"

[settings]
jobs = 2

[mirrors]
before = ["file://mirror/"]

[cache]
trusted-keys = []

[target.default]
modules = ["a"]

[layer.tc]
modules = ["b"]
"#;

const MODULE_A: &[u8] = br#"name = "a"
version = "1.0"
url = "https://example.org/a-1.0.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
depends = ["b"]
build = "make -j$STRATA_JOBS"
env = { CFLAGS = "-O2" }
keep = ["out"]
"#;

const MODULE_B: &[u8] = br#"name = "b"
version = "2"
urls = ["https://example.org/b.tar.xz", "https://mirror.example.org/b.tar.xz"]
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
strip-components = 1
host = true
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_manifest_loader_never_panics(
        top in input(&[STRATA_TOML]),
        a in input(&[MODULE_A, MODULE_B]),
        b in input(&[MODULE_B, MODULE_A]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("modules")).unwrap();
        std::fs::write(dir.path().join("strata.toml"), &top).unwrap();
        std::fs::write(dir.path().join("modules/a.toml"), &a).unwrap();
        std::fs::write(dir.path().join("modules/b.toml"), &b).unwrap();
        if let Ok(project) = strata::manifest::load(dir.path())
            && let Ok(graph) = strata::graph::Graph::new(&project)
        {
            let _ = strata::instance::instantiate(&project, &graph, &[]);
        }
        // Rendering any error must not panic either.
        if let Err(e) = strata::manifest::load(dir.path()) {
            let _ = format!("{:?}", miette::Report::new(e));
        }
    }
}

const UNIFIED: &[u8] = b"diff --git a/hello.c b/hello.c
--- a/hello.c
+++ b/hello.c
@@ -1,3 +1,4 @@
 #include <stdio.h>
+#include <stdlib.h>
 int main(void) {
   return 0;
@@ -4,2 +5,3 @@
 }
+/* end */
 
--- /dev/null
+++ b/new/file.txt
@@ -0,0 +1,2 @@
+one
+two
";

const GIT_EXTENDED: &[u8] = b"diff --git a/old.txt b/renamed.txt
similarity index 90%
rename from old.txt
rename to renamed.txt
--- a/old.txt
+++ b/renamed.txt
@@ -1,2 +1,2 @@
 keep
-old
+new
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
";

/// Through the tree's `sub/link -> ../outside` symlink.
const THROUGH_LINK: &[u8] = b"--- /dev/null
+++ b/sub/link/evil.txt
@@ -0,0 +1 @@
+evil
--- a/sub/link/sentinel
+++ b/sub/link/sentinel
@@ -1 +1 @@
-untouched
+touched
";

const ESCAPE: &[u8] = b"--- a/../outside.txt
+++ b/../outside.txt
@@ -0,0 +1 @@
+escaped
--- /dev/null
+++ b//abs/x
@@ -0,0 +1 @@
+x
";

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_patcher_never_panics_nor_writes_outside_the_tree(
        patch in input(&[UNIFIED, GIT_EXTENDED, ESCAPE, THROUGH_LINK]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("sentinel"), b"untouched").unwrap();
        std::fs::write(tree.join("hello.c"), b"#include <stdio.h>\nint main(void) {\n  return 0;\n}\n\n").unwrap();
        std::fs::write(tree.join("old.txt"), b"keep\nold\n").unwrap();
        std::fs::write(tree.join("run.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::write(tree.join("gone.txt"), b"bye\n").unwrap();
        std::os::unix::fs::symlink("../outside", tree.join("sub/link")).unwrap();
        let before = listing(&outside);
        let _ = strata::patch::apply_patch(&tree, "fuzz.patch", &patch);
        prop_assert_eq!(listing(&outside), before);
        prop_assert!(!dir.path().join("outside.txt").exists());
    }
}

fn tar_seed(gz: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    };
    add("top/a.txt", b"alpha\n", 0o644);
    add("top/bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    add("top/sub/deep/b.txt", b"beta\n", 0o644);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_cksum();
    b.append_link(&mut h, "top/link", "sub/deep").unwrap();
    let raw = b.into_inner().unwrap();
    if gz {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&raw).unwrap();
        e.finish().unwrap()
    } else {
        raw
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_unpacker_never_panics_nor_writes_outside(
        which in any::<bool>(),
        ms in prop::collection::vec(mutation(), 0..6),
        strip in 0u32..3,
    ) {
        let seed = tar_seed(which);
        let bytes = mutate(&seed, &ms);
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("in.tar");
        std::fs::write(&archive, &bytes).unwrap();
        let into = dir.path().join("tree");
        let before: Vec<String> = std::fs::read_dir(dir.path()).unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        let _ = strata::unpack::extract(&archive, &into, strip);
        let mut after: Vec<String> = std::fs::read_dir(dir.path()).unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tree")
            .collect();
        after.sort();
        let mut before = before;
        before.sort();
        prop_assert_eq!(after, before);
    }
}

const CIRCLECI: &[u8] = br#"version: 2.1
parameters:
  flag: {type: boolean, default: true}
orbs:
  tools:
    commands:
      hello:
        parameters: {who: {type: string, default: world}}
        steps: [{run: "echo << parameters.who >>"}]
defaults: &defaults
  docker: [{image: cimg/base:2024.01}]
  working_directory: ~/w
  environment: {A: "1"}
commands:
  greet:
    parameters: {n: {type: integer, default: 2}}
    steps:
      - run: {name: greet, command: "echo << parameters.n >>", no_output_timeout: 10m}
jobs:
  build:
    <<: *defaults
    parallelism: 2
    parameters: {v: {type: string, default: "1"}}
    steps:
      - checkout
      - tools/hello: {who: me}
      - greet: {n: 3}
      - restore_cache: {keys: ["k-{{ checksum \"a\" }}-<< parameters.v >>", "k-"]}
      - save_cache: {key: "k-{{ .Branch }}", paths: [x]}
      - when: {condition: << pipeline.parameters.flag >>, steps: [{run: "true"}]}
workflows:
  main:
    when: {not: {equal: [main, << pipeline.git.branch >>]}}
    jobs:
      - build:
          matrix: {parameters: {v: ["1", "2"]}, exclude: [{v: "2"}]}
      - hold: {type: approval, requires: [build]}
"#;

/// Pipeline values for loading a config outside a run.
fn pipeline() -> strata::ci::config::Pipeline {
    strata::ci::config::Pipeline {
        branch: "dev".into(),
        revision: "0".repeat(40),
        tag: String::new(),
        number: 1,
        id: "fuzz".into(),
        git_url: String::new(),
        trigger_source: "api".into(),
        params: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_circleci_config_loader_never_panics(text in input(&[CIRCLECI])) {
        let text = String::from_utf8_lossy(&text);
        let pipeline = pipeline();
        let orbs = |r: &str| -> Result<String, String> { Err(format!("no orb {r}")) };
        if let Err(e) = strata::ci::config::load("config.yml", &text, None, &pipeline, &orbs) {
            let _ = e.to_string();
        }
    }
}

/// The seeds are valid documents, so mutations start deep inside the parsers.
#[test]
fn the_seeds_are_accepted_unmutated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("modules")).unwrap();
    std::fs::write(dir.path().join("strata.toml"), STRATA_TOML).unwrap();
    std::fs::write(dir.path().join("modules/a.toml"), MODULE_A).unwrap();
    std::fs::write(dir.path().join("modules/b.toml"), MODULE_B).unwrap();
    let project = strata::manifest::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let graph = strata::graph::Graph::new(&project).unwrap();
    strata::instance::instantiate(&project, &graph, &[]).unwrap();

    let pipeline = pipeline();
    let orbs = |r: &str| -> Result<String, String> { Err(format!("no orb {r}")) };
    let text = std::str::from_utf8(CIRCLECI).unwrap();
    let loaded = strata::ci::config::load("config.yml", text, None, &pipeline, &orbs)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.workflows.len(), 1);
}
