//! `strata init [DIR]`: a minimal project that builds, to start from.
//!
//! It holds what every real project has: `strata.toml` with a default
//! target, one module whose source is a real tarball (written into
//! `mirror/` and checked by sha256 like any download), and a patch directory
//! with one patch. Nothing that already exists is overwritten.

use super::Failure;
use crate::fsutil::write_atomic;
use std::io::Write;
use std::path::Path;

const MAKEFILE: &str = "\
hello: hello.in
\tsed 's/@GREETING@/$(GREETING)/' hello.in > hello
\tchmod +x hello

install: hello
\tinstall -D -m 755 hello $(DESTDIR)/bin/hello
";

const HELLO_IN: &str = "#!/bin/sh\necho \"@GREETING@ from strata\"\n";

const PATCH: &str = "\
Say which project this is.

--- a/hello.in
+++ b/hello.in
@@ -1,2 +1,3 @@
 #!/bin/sh
 echo \"@GREETING@ from strata\"
+echo \"(patched by patches/hello-1.0/0001-say-more.patch)\"
";

/// Writes a new project into `dir` (created if missing).
pub fn init(dir: &Path, name: Option<&str>, json: bool, quiet: bool) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Other(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
    if dir.join("strata.toml").exists() {
        return Err(Failure::usage(format!(
            "{} already holds a strata.toml\n  hint: `strata init` only creates new projects; pick an empty directory",
            dir.display()
        )));
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "firmware".into()),
    };
    let tarball = source_tarball().map_err(|e| Failure::Other(e.into()))?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&tarball))
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "strata.toml",
            format!(
                "[project]\nname = \"{}\"\ncache-version = \"1\"\n\n\
                 [mirrors]\n# Tried before each module's own url.\nbefore = [\"file://mirror/\"]\n\n\
                 [target.default]\nmodules = [\"hello\"]\n",
                name.replace(['"', '\\'], "_")
            )
            .into_bytes(),
        ),
        (
            "modules/hello.toml",
            format!(
                "name = \"hello\"\nversion = \"1.0\"\n\
                 url = \"https://downloads.example.org/hello/hello-1.0.tar.gz\"\n\
                 sha256 = \"{sha}\"\n\
                 build = \"make GREETING=Hello\"\n\
                 install = \"make install DESTDIR=$STRATA_DESTDIR\"\n"
            )
            .into_bytes(),
        ),
        (
            "patches/hello-1.0/0001-say-more.patch",
            PATCH.as_bytes().to_vec(),
        ),
        ("mirror/hello-1.0.tar.gz", tarball),
        (
            ".gitignore",
            // `.strata/`: what `strata ci run` keeps (runs, caches, workspaces).
            b"/packages/\n/build/\n/install/\n/.strata/\n".to_vec(),
        ),
    ];
    for (rel, bytes) in &files {
        let path = dir.join(rel);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::Other(anyhow::anyhow!("{}: {e}", parent.display())))?;
        }
        write_atomic(&path, bytes)
            .map_err(|e| Failure::Other(anyhow::anyhow!("{}: {e}", path.display())))?;
    }
    if json {
        crate::report::emit_json("init", serde_json::json!({"project": name, "dir": dir}));
        return Ok(());
    }
    if quiet {
        return Ok(());
    }
    crate::errln!(
        "     Created project `{name}` in {}\n\n  strata -C {} build && {}/install/bin/hello",
        dir.display(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// `hello-1.0.tar.gz`: a Makefile and a script template, deterministic bytes.
fn source_tarball() -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mode) in [
        ("hello-1.0/Makefile", MAKEFILE, 0o644),
        ("hello-1.0/hello.in", HELLO_IN, 0o644),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes())?;
    }
    let raw = b.into_inner()?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw)?;
    gz.finish()
}
