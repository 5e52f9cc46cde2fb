//! One Heads module on one board, translated: its source (url + sha256, or
//! git + rev), its patches referenced in place, its depends, and its three
//! commands. The decision a reader would question is the command shape:
//! strata's own steps (seeding and collecting the private install tree,
//! copying the board's config file) run under strata's `bash -euo
//! pipefail`, while Heads's `_configure` and `_target` text runs after
//! `set +eu`, because Heads ran it in a plain `bash -o pipefail` shell and
//! some of it relies on that.

use super::model::{ModuleOut, Paths, Source, field, version_of};
use super::rewrite::{Context, PRIVATE_INSTALL, env_name, rewrite};
use super::scan::FileScan;
use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
#[test]
fn parent_paths_are_found() {
    assert!(mentions_parent("make -C .. O=x"));
    assert!(mentions_parent("cp a ../b"));
    assert!(mentions_parent("X=\"../y\""));
    assert!(!mentions_parent("a..b ./c"));
}

/// The board's coreboot builds in Heads's layout inside its build dir: its
/// source as build/<arch>/<base> (a dir of links to the shared source's
/// entries), its objects in build/<arch>/<base>/<BOARD>, the board's payload
/// (from `initrd`, when the board has an image) in build/<arch>/<BOARD>.
/// The configure text setting it up (before the board's config is copied
/// into it), and the dir Heads's commands run in.
fn heads_layout(arch: &str, base: &str) -> (String, String) {
    let heads = format!("$STRATA_BUILD_DIR/.heads/build/{arch}");
    let text = format!(
        "rm -rf \"$STRATA_BUILD_DIR/.heads\"\n\
         mkdir -p \"{heads}/{base}/$STRATA_PARAM_BOARD\" \"{heads}/$STRATA_PARAM_BOARD\"\n\
         for f in \"$STRATA_SOURCE_DIR\"/* \"$STRATA_SOURCE_DIR\"/.[!.]*; do\n  \
         if [ -e \"$f\" ]; then ln -s \"$f\" \"{heads}/{base}/\"; fi\ndone\n\
         if [ -d \"$STRATA_SYSROOT/{0}/$STRATA_PARAM_BOARD\" ]; then\n  \
         cp -a \"$STRATA_SYSROOT/{0}/$STRATA_PARAM_BOARD/.\" \"{heads}/$STRATA_PARAM_BOARD/\"\nfi\n",
        super::image::BOARD_DIR
    );
    (text, format!("{heads}/{base}/$STRATA_PARAM_BOARD"))
}

/// busybox: Heads's `$(initrd_bin_dir)/busybox` rule installs it with its
/// links into the initrd's tools (`make install CONFIG_PREFIX=…`, then
/// removes sbin/reboot); staged under heads-busybox/ for `initrd`.
fn busybox_install(cc: &str, cross: &str) -> String {
    let d = super::image::BUSYBOX_DIR;
    format!(
        "make -C \"$STRATA_BUILD_DIR\" CC=\"{cc}\" CROSS_COMPILE=\"{cross}\" CONFIG_PREFIX=\"$STRATA_DESTDIR/{d}\" install\n\
         rm -f \"$STRATA_DESTDIR/{d}/sbin/reboot\"\n"
    )
}

/// Kernel modules (`<m>_modules-y`, which boards choose by their
/// CONFIG_LINUX_… switches): every `.ko` built, under its path, so one
/// kernel module serves every board; each board's `initrd` takes its own.
fn kernel_modules_install() -> String {
    let d = super::image::KMOD_DIR;
    format!(
        "find . -name '*.ko' -type f | LC_ALL=C sort | while IFS= read -r k; do\n  \
         mkdir -p \"$(dirname \"$STRATA_DESTDIR/{d}/$k\")\" && cp -a \"$k\" \"$STRATA_DESTDIR/{d}/$k\"\ndone\n"
    )
}

fn words(s: Option<&String>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Does a shell text use a relative parent path (`..`, `../x`, `=..`)?
fn mentions_parent(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || c == '=' || c == '"' || c == '\'')
        .any(|w| w == ".." || w.starts_with("../"))
}

/// One module on one board: its translation, what was not translated, what
/// was, and extra `(param, file)` pairs the board's target must carry.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn module(
    paths: &Paths,
    ctx: &Context,
    heads_name: &str,
    name: &str,
    file: &str,
    m: &BTreeMap<String, String>,
    names: &BTreeMap<&str, String>,
    scan: &FileScan,
) -> (
    ModuleOut,
    BTreeSet<String>,
    Vec<String>,
    Vec<(String, String)>,
) {
    let mut notes = BTreeSet::new();
    let mut done = Vec::new();
    let mut params = BTreeSet::new();
    let files = std::cell::RefCell::new(Vec::new());
    let rw = |v: &str, notes: &mut BTreeSet<String>, params: &mut BTreeSet<String>| {
        let r = rewrite(v, name, ctx);
        notes.extend(r.notes);
        params.extend(r.params);
        files.borrow_mut().extend(r.files);
        r.text
    };
    // Source.
    let repo = field(m, "repo");
    let source = if !repo.is_empty() {
        done.push("git repo + commit".to_string());
        Source::Git {
            git: repo.to_string(),
            rev: field(m, "commit_hash").to_string(),
        }
    } else {
        let url = field(m, "url").to_string();
        let tar = field(m, "tar");
        let last = url.rsplit('/').next().unwrap_or("").to_string();
        let strip = match field(m, "tar_opt") {
            "" => None,
            o => {
                let n = o
                    .strip_prefix("--strip ")
                    .or_else(|| o.strip_prefix("--strip-components="))
                    .or_else(|| o.strip_prefix("--strip-components "))
                    .and_then(|n| n.trim().parse().ok());
                if n.is_none() {
                    notes.insert(format!("tar option `{o}` is not translated"));
                }
                n
            }
        };
        done.push("url + sha256".to_string());
        Source::Archive {
            url,
            sha256: field(m, "hash").to_string(),
            file: (!tar.is_empty() && tar != last).then(|| tar.to_string()),
            strip,
        }
    };
    // Patches, in place.
    let pn = {
        let p = field(m, "patch_name");
        if !p.is_empty() {
            p.to_string()
        } else {
            let version = field(m, "version");
            let pv = match m.get("patch_version") {
                Some(v) => v.trim().to_string(),
                None if repo.is_empty() && !heads_name.ends_with(&format!("-{version}")) => {
                    version.to_string()
                }
                None => String::new(),
            };
            if pv.is_empty() {
                heads_name.to_string()
            } else {
                format!("{heads_name}-{pv}")
            }
        }
    };
    let pdir = paths.heads.join("patches").join(&pn);
    let pfile = paths.heads.join("patches").join(format!("{pn}.patch"));
    let patches = if pdir.is_dir() {
        if pfile.is_file() {
            notes.insert(format!(
                "Heads applies both patches/{pn}.patch and patches/{pn}/; strata takes the directory only"
            ));
        }
        if pdir.join("series").is_file() {
            notes.insert(format!(
                "patches/{pn}/series exists: strata applies in its order, Heads in file name order"
            ));
        }
        done.push(format!("patches/{pn}/"));
        Some(format!("{}/patches/{pn}", paths.heads_from_out))
    } else if pfile.is_file() {
        done.push(format!("patches/{pn}.patch"));
        Some(format!("{}/patches/{pn}.patch", paths.heads_from_out))
    } else {
        None
    };
    // Depends.
    let mut depends = Vec::new();
    for d in words(m.get("depends")) {
        match names.get(d.as_str()) {
            Some(sn) => {
                if !depends.contains(sn) {
                    depends.push(sn.clone())
                }
            }
            None => {
                notes.insert(format!("depends on `{d}`, which no board defines; dropped"));
            }
        }
    }
    done.push("depends".to_string());
    // Configure: seed the private install tree, copy the config, run Heads's configure.
    // Heads builds a module whose `_dir` is its `_base_dir` inside its
    // source. A board variant configures in an empty dir of its own (the
    // source is shared by every board), so such a module starts from a copy
    // of the source there; without variants both dirs are the same.
    let in_tree = {
        let (d, b) = (field(m, "dir"), field(m, "base_dir"));
        b.is_empty() || d == b
    };
    let mut configure = String::new();
    if in_tree {
        configure.push_str(
            "if [ \"$STRATA_SOURCE_DIR\" != \"$STRATA_BUILD_DIR\" ]; then cp -a \"$STRATA_SOURCE_DIR/.\" \"$STRATA_BUILD_DIR/\"; fi\n",
        );
    }
    configure.push_str(&format!(
        "rm -rf \"{PRIVATE_INSTALL}\"\nmkdir -p \"{PRIVATE_INSTALL}\"\n\
         if [ -d \"$STRATA_SYSROOT\" ]; then cp -a \"$STRATA_SYSROOT/.\" \"{PRIVATE_INSTALL}/\"; fi\n"
    ));
    // The board's coreboot builds in Heads's layout inside its build dir:
    // its source as build/<arch>/<base> (a dir of links to the shared
    // source's entries), its objects in build/<arch>/<base>/<BOARD>, the
    // board's payload (from `initrd`) in build/<arch>/<BOARD>.
    let layout = name == ctx.layout && !ctx.layout.is_empty();
    let own_dir = if layout {
        params.insert("BOARD".to_string());
        let (text, dir) = heads_layout(ctx.arch, field(m, "base_dir"));
        configure.push_str(&text);
        done.push(format!(
            "built in Heads's layout: build/{a}/{}/<BOARD>, payload from build/{a}/<BOARD> (the `initrd` module)",
            field(m, "base_dir"),
            a = ctx.arch
        ));
        dir
    } else {
        "$STRATA_BUILD_DIR".to_string()
    };
    let config = field(m, "config");
    if !config.is_empty() {
        let rel = config
            .strip_prefix(ctx.pwd)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(config)
            .to_string();
        let p = match ctx.params.iter().find(|(r, _)| *r == rel) {
            Some((_, p)) => p.clone(),
            None => {
                let p = format!("{}_CONFIG", env_name(heads_name));
                files.borrow_mut().push((p.clone(), rel.clone()));
                p
            }
        };
        params.insert(p.clone());
        let dest = rw(field(m, "config_file_path"), &mut notes, &mut params);
        configure.push_str(&format!(
            "mkdir -p \"$(dirname \"{dest}\")\"\ncp -a \"$STRATA_PARAM_{p}\" \"{dest}\"\n"
        ));
        done.push(format!("config {rel} → $STRATA_PARAM_{p}"));
    }
    configure.push_str(&format!("cd \"{own_dir}\"\nset +eu\n"));
    let mut c = rw(field(m, "configure"), &mut notes, &mut params);
    let nested = {
        let (d, b) = (field(m, "dir"), field(m, "base_dir"));
        !b.is_empty() && d != b && d.starts_with(&format!("{b}/"))
    };
    if nested && !layout && !field(m, "dir")[field(m, "base_dir").len() + 1..].contains('/') {
        // Heads runs `make -C ..` in build/<arch>/<base>/<sub>: `..` is the source.
        c = c.replace("-C .. ", "-C \"$STRATA_SOURCE_DIR\" ");
        if c.ends_with("-C ..") {
            c = format!("{}-C \"$STRATA_SOURCE_DIR\"", &c[..c.len() - 5]);
        }
    }
    if !c.trim().is_empty() {
        configure.push_str(c.trim());
        configure.push('\n');
        done.push("_configure".to_string());
    }
    if nested && (mentions_parent(&c) || mentions_parent(field(m, "target"))) {
        notes.insert(
            "a relative `..` in its commands means the source dir, because Heads builds it in a subdirectory of its source (`_dir` inside `_base_dir`); it holds only if $STRATA_BUILD_DIR is inside $STRATA_SOURCE_DIR".to_string(),
        );
    }
    // Build: Heads runs `$(MAKE) -C $(build)/$(dir) $(target)`.
    let t = rw(field(m, "target"), &mut notes, &mut params);
    let build = format!("set +eu\nmake -C \"{own_dir}\" {}\n", t.trim()).replace(" \n", "\n");
    done.push("_target".to_string());
    // Install: collect what the module added to the private tree, plus its
    // outputs and libraries (what Heads copies into the initrd).
    let mut install = format!(
        "cd \"{PRIVATE_INSTALL}\"\n\
         find . ! -type d | LC_ALL=C sort | while IFS= read -r f; do\n  \
         if ! cmp -s \"$f\" \"$STRATA_SYSROOT/$f\"; then\n    \
         mkdir -p \"$STRATA_DESTDIR/$(dirname \"$f\")\" && cp -a \"$f\" \"$STRATA_DESTDIR/$f\"\n  fi\ndone\n\
         cd \"{own_dir}\"\n"
    );
    for (f, sub) in [("output", "bin"), ("libraries", "lib")] {
        let list = rw(
            m.get(f).map(String::as_str).unwrap_or(""),
            &mut notes,
            &mut params,
        );
        let items: Vec<&str> = list.split_whitespace().collect();
        if !items.is_empty() {
            install.push_str(&format!(
                "mkdir -p \"$STRATA_DESTDIR/initrd/{sub}\"\ncp -aL {} \"$STRATA_DESTDIR/initrd/{sub}/\"\n",
                items.join(" ")
            ));
            done.push(format!("_{f} → initrd/{sub}"));
        }
    }
    // `_data` (`src|dst`, what Heads stages into data.cpio): staged under
    // heads-data/<dst> for the board's `initrd`.
    let data = rw(field(m, "data"), &mut notes, &mut params);
    for entry in data.split_whitespace() {
        if let Some((src, dst)) = entry.split_once('|') {
            let d = super::image::DATA_DIR;
            install.push_str(&format!(
                "mkdir -p \"$(dirname \"$STRATA_DESTDIR/{d}/{dst}\")\"\ncp -R {src} \"$STRATA_DESTDIR/{d}/{dst}\"\n"
            ));
            done.push(format!("_data {dst} → {d}/{dst}"));
        }
    }
    if heads_name == "busybox" && !ctx.heads_cc.is_empty() {
        let cc = rw(ctx.heads_cc.trim(), &mut notes, &mut params);
        let cross = rw(ctx.cross.trim(), &mut notes, &mut params);
        install.push_str(&busybox_install(&cc, &cross));
        done.push(format!(
            "Heads's `$(initrd_bin_dir)/busybox` rule → {}/",
            super::image::BUSYBOX_DIR
        ));
    }
    if m.contains_key("modules-y") {
        install.push_str(&kernel_modules_install());
        done.push(format!(
            "{heads_name}_modules-y: every built .ko → {}/",
            super::image::KMOD_DIR
        ));
    }
    if !field(m, "toolchain").is_empty() {
        notes.insert(format!(
            "uses the coreboot toolchain of `{}`, which Heads builds through a rule in modules/{file}; not translated",
            field(m, "toolchain")
        ));
    }
    for (line, target) in &scan.rules {
        notes.insert(format!(
            "modules/{file}:{line}: rule `{target}` is Heads-specific; not translated"
        ));
    }
    for (line, text) in &scan.shells {
        notes.insert(format!(
            "modules/{file}:{line}: $(shell …) evaluated on the importing host: `{text}`"
        ));
    }
    // A recipe that calls the cross toolchain ($(CROSS), $(CROSS_TOOLS):
    // rewritten to $STRATA_HOST) must depend on it. Heads's make happens to
    // build musl-cross-make first; strata's exact host prefixes do not, so
    // the dependency is added and reported as Heads's bug.
    let uses_toolchain = [&configure, &build, &install]
        .iter()
        .any(|c| c.contains("STRATA_HOST"));
    if uses_toolchain
        && !ctx.toolchain.is_empty()
        && ctx.toolchain != name
        && !depends.contains(&ctx.toolchain)
    {
        depends.push(ctx.toolchain.clone());
        notes.insert(format!(
            "calls the cross toolchain ($(CROSS)/$(CROSS_TOOLS)) without `$(musl_dep)` in \
             {heads_name}_depends (a missing dependency in Heads, which builds only because make \
             happens to build {} first): strata adds it",
            ctx.toolchain
        ));
    }
    let out = ModuleOut {
        name: name.to_string(),
        heads_name: heads_name.to_string(),
        module_file: file.to_string(),
        version: version_of(m),
        source,
        depends,
        patches,
        params: params.into_iter().collect(),
        host: ctx.toolchain == name,
        configure,
        build,
        install,
        // musl-cross-make downloads its packages in its build: declared
        // instead, so the build downloads nothing (the sandbox has no network).
        downloads: if ctx.toolchain == name {
            done.push("its packages (hashes/) → [[download]] sha1-from".to_string());
            super::toolchain::musl_cross_make_downloads()
        } else {
            Vec::new()
        },
    };
    let mut extra = files.into_inner();
    extra.sort();
    extra.dedup();
    for (p, rel) in &extra {
        if p.starts_with("HEADS_") {
            done.push(format!("{rel} of the Heads tree → $STRATA_PARAM_{p}"));
        }
    }
    (out, notes, done, extra)
}
