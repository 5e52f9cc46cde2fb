//! One Heads module on one board, translated: its source (url + sha256, or
//! git + rev), its patches referenced in place, its depends, and its three
//! commands. The decision a reader would question is the command shape:
//! strata's own steps (seeding and collecting the private install tree,
//! copying the board's config file) run under strata's `bash -euo
//! pipefail`, while Heads's `_configure` and `_target` text runs after
//! `set +eu`, because Heads ran it in a plain `bash -o pipefail` shell and
//! some of it relies on that.

use super::model::{DownloadOut, ModuleOut, Param, Paths, Source, field, version_of};
use super::rewrite::{Context, PRIVATE_INSTALL, XGCC_HOST, env_name, rewrite};
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

/// A module building in Heads's layout (the board's coreboot; the kernel
/// of a board bundling its initrd) does so inside its build dir: its source
/// as build/<arch>/<base> (a dir of links to the shared source's entries),
/// its objects in build/<arch>/<base>/<sub> (`<sub>` of its `_dir`: the
/// board for coreboot, the config's name for linux), the board's output dir
/// build/<arch>/<BOARD> holding what its dependencies staged there (the
/// `initrd` module's pieces). The dir Heads's commands run in (`sub`
/// rewritten: the board's name becomes `$STRATA_PARAM_BOARD`), and the
/// board's output dir.
pub fn layout_dirs(arch: &str, base: &str, dir: &str, board: &str) -> (String, String) {
    let heads = format!("$STRATA_BUILD_DIR/.heads/build/{arch}");
    let sub = dir
        .strip_prefix(base)
        .and_then(|s| s.strip_prefix('/'))
        .filter(|s| !s.is_empty() && *s != board)
        .unwrap_or("$STRATA_PARAM_BOARD");
    (
        format!("{heads}/{base}/{sub}"),
        format!("{heads}/$STRATA_PARAM_BOARD"),
    )
}

/// The configure text setting up Heads's layout (see [`layout_dirs`])
/// before the board's config is copied into it; the board's output dir
/// only when the module uses it.
fn heads_layout(arch: &str, base: &str, own: &str, board_dir: Option<&str>) -> String {
    let heads = format!("$STRATA_BUILD_DIR/.heads/build/{arch}");
    let mut text = format!(
        "rm -rf \"$STRATA_BUILD_DIR/.heads\"\n\
         mkdir -p \"{own}\"\n\
         for f in \"$STRATA_SOURCE_DIR\"/* \"$STRATA_SOURCE_DIR\"/.[!.]*; do\n  \
         if [ -e \"$f\" ]; then ln -s \"$f\" \"{heads}/{base}/\"; fi\ndone\n"
    );
    if let Some(board_dir) = board_dir {
        text.push_str(&format!(
            "mkdir -p \"{board_dir}\"\n\
             if [ -d \"$STRATA_SYSROOT/{0}/$STRATA_PARAM_BOARD\" ]; then\n  \
             cp -a \"$STRATA_SYSROOT/{0}/$STRATA_PARAM_BOARD/.\" \"{board_dir}/\"\nfi\n",
            super::image::BOARD_DIR
        ));
    }
    text
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
    Vec<(String, Param)>,
) {
    let mut d = Draft {
        ctx,
        paths,
        heads_name,
        name,
        m,
        notes: BTreeSet::new(),
        done: Vec::new(),
        params: BTreeSet::new(),
        files: Vec::new(),
        tree_params: Vec::new(),
    };
    let source = d.source();
    let patches = d.patches(paths);
    let mut depends = d.depends(names);
    let (configure, own_dir) = d.configure();
    let build = d.build(&own_dir);
    let install = d.install(&own_dir);
    d.heads_specific_notes(file, scan);
    d.toolchain_dependency(&mut depends, [&configure, &build, &install]);
    let out = ModuleOut {
        name: name.to_string(),
        heads_name: heads_name.to_string(),
        module_file: file.to_string(),
        version: version_of(m),
        source,
        depends,
        patches,
        params: std::mem::take(&mut d.params).into_iter().collect(),
        host: ctx.toolchain == name,
        configure,
        build,
        install,
        downloads: d.downloads(),
    };
    let extra = d.tree_files();
    (out, d.notes, d.done, extra)
}

/// One module's translation being assembled: what could not be translated
/// (`notes`), what was (`done`, in the report's order), and the params and
/// files of the tree its commands use, gathered as its values are rewritten.
struct Draft<'a> {
    ctx: &'a Context<'a>,
    paths: &'a Paths<'a>,
    heads_name: &'a str,
    name: &'a str,
    m: &'a BTreeMap<String, String>,
    notes: BTreeSet<String>,
    done: Vec<String>,
    params: BTreeSet<String>,
    /// `(param, path relative to Heads)`.
    files: Vec<(String, String)>,
    /// Params of the tree's dirs a config names (see `config_dirs.rs`).
    tree_params: Vec<(String, Param)>,
}

impl<'a> Draft<'a> {
    fn field(&self, f: &str) -> &'a str {
        field(self.m, f)
    }

    /// A value rewritten to strata's variables; its notes, params and files kept.
    fn rw(&mut self, v: &str) -> String {
        let r = rewrite(v, self.name, self.ctx);
        self.notes.extend(r.notes);
        self.params.extend(r.params);
        self.files.extend(r.files);
        r.text
    }

    /// git repo + commit, or url + sha256 (with `_tar`'s name and strip).
    fn source(&mut self) -> Source {
        let repo = self.field("repo");
        if !repo.is_empty() {
            self.done.push("git repo + commit".to_string());
            return Source::Git {
                git: repo.to_string(),
                rev: self.field("commit_hash").to_string(),
            };
        }
        let url = self.field("url").to_string();
        let tar = self.field("tar");
        let last = url.rsplit('/').next().unwrap_or("").to_string();
        let strip = match self.field("tar_opt") {
            "" => None,
            o => {
                let n = o
                    .strip_prefix("--strip ")
                    .or_else(|| o.strip_prefix("--strip-components="))
                    .or_else(|| o.strip_prefix("--strip-components "))
                    .and_then(|n| n.trim().parse().ok());
                if n.is_none() {
                    self.notes
                        .insert(format!("tar option `{o}` is not translated"));
                }
                n
            }
        };
        self.done.push("url + sha256".to_string());
        Source::Archive {
            url,
            sha256: self.field("hash").to_string(),
            file: (!tar.is_empty() && tar != last).then(|| tar.to_string()),
            strip,
        }
    }

    /// Heads's patch name: `_patch_name`, else the module's name with
    /// `_patch_version` (or, for an archive, its version unless the name
    /// carries it already).
    fn patch_name(&self) -> String {
        let p = self.field("patch_name");
        if !p.is_empty() {
            return p.to_string();
        }
        let heads_name = self.heads_name;
        let version = self.field("version");
        let pv = match self.m.get("patch_version") {
            Some(v) => v.trim().to_string(),
            None if self.field("repo").is_empty()
                && !heads_name.ends_with(&format!("-{version}")) =>
            {
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

    /// The patches, referenced in place (relative to the output directory).
    fn patches(&mut self, paths: &Paths) -> Option<String> {
        let pn = self.patch_name();
        let pdir = paths.heads.join("patches").join(&pn);
        let pfile = paths.heads.join("patches").join(format!("{pn}.patch"));
        if pdir.is_dir() {
            if pfile.is_file() {
                self.notes.insert(format!(
                    "Heads applies both patches/{pn}.patch and patches/{pn}/; strata takes the directory only"
                ));
            }
            if pdir.join("series").is_file() {
                self.notes.insert(format!(
                    "patches/{pn}/series exists: strata applies in its order, Heads in file name order"
                ));
            }
            self.done.push(format!("patches/{pn}/"));
            Some(format!("{}/patches/{pn}", paths.heads_from_out))
        } else if pfile.is_file() {
            self.done.push(format!("patches/{pn}.patch"));
            Some(format!("{}/patches/{pn}.patch", paths.heads_from_out))
        } else {
            None
        }
    }

    /// `_depends` by strata name; a name no board defines is dropped.
    fn depends(&mut self, names: &BTreeMap<&str, String>) -> Vec<String> {
        let mut depends = Vec::new();
        for d in words(self.m.get("depends")) {
            match names.get(d.as_str()) {
                Some(sn) => {
                    if !depends.contains(sn) {
                        depends.push(sn.clone())
                    }
                }
                None => {
                    self.notes
                        .insert(format!("depends on `{d}`, which no board defines; dropped"));
                }
            }
        }
        self.done.push("depends".to_string());
        depends
    }

    /// The configure text (seed the private install tree, set up Heads's
    /// layout for the board's coreboot, copy the config, run Heads's
    /// `_configure`) and the dir Heads's commands run in.
    fn configure(&mut self) -> (String, String) {
        // Heads builds a module whose `_dir` is its `_base_dir` inside its
        // source. A board variant configures in an empty dir of its own (the
        // source is shared by every board), so such a module starts from a copy
        // of the source there; without variants both dirs are the same.
        let in_tree = {
            let (d, b) = (self.field("dir"), self.field("base_dir"));
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
        let layout = self.ctx.in_layout(self.name);
        let own_dir = if layout {
            // (a kernel in the layout for its config's tree paths only has
            // no board dir: one module for all its boards)
            let with_board = self.name != self.ctx.config_layout;
            if with_board {
                self.params.insert("BOARD".to_string());
            }
            let (base, dir) = (self.field("base_dir"), self.field("dir"));
            let (own, board_dir) = layout_dirs(self.ctx.arch, base, dir, self.ctx.board);
            let board = with_board.then_some(board_dir.as_str());
            configure.push_str(&heads_layout(self.ctx.arch, base, &own, board));
            let a = self.ctx.arch;
            if !with_board {
                self.done.push(format!(
                    "built in Heads's layout (build/{a}/{dir}) for the @BLOB_DIR@/@BRAND_DIR@ paths its config names"
                ));
            } else if self.name == self.ctx.kernel_layout {
                // Heads makes an empty initrd.cpio in the board's dir while
                // its Makefile is parsed: the kernel's first build embeds it.
                configure.push_str(&format!(
                    "cpio --quiet -o </dev/null > \"{board_dir}/initrd.cpio\"\n"
                ));
                self.done.push(format!(
                    "built in Heads's layout: build/{a}/{dir}, the board's output dir build/{a}/<BOARD> with Heads's empty initrd.cpio (CONFIG_LINUX_BUNDLED: its config names it)"
                ));
            } else {
                self.done.push(format!(
                    "built in Heads's layout: build/{a}/{base}/<BOARD>, payload from build/{a}/<BOARD> (the `initrd` module)"
                ));
            }
            own
        } else {
            "$STRATA_BUILD_DIR".to_string()
        };
        let copy = self.config_copy();
        let heads = self.heads_configure(layout);
        configure.push_str(&self.config_dirs(layout));
        configure.push_str(&copy);
        configure.push_str(&format!("cd \"{own_dir}\"\nset +eu\n"));
        configure.push_str(&heads);
        (configure, own_dir)
    }

    /// In Heads's layout, the tree's files the commands use (the config
    /// installer) and the dirs the board's config names through it
    /// (`@BLOB_DIR@`, `@BRAND_DIR@`) at their Heads places under `.heads/`
    /// (see `config_dirs.rs`); outside it, such a config is reported.
    fn config_dirs(&mut self, layout: bool) -> String {
        let mut text = String::new();
        let templates: Vec<(String, String)> = (self.ctx.params.iter())
            .filter(|(_, p)| self.params.contains(p))
            .cloned()
            .collect();
        if layout {
            for (p, rel) in self.files.iter().filter(|(p, _)| p.starts_with("HEADS_")) {
                let at = format!("$STRATA_BUILD_DIR/.heads/{rel}");
                text.push_str(&format!(
                    "mkdir -p \"$(dirname \"{at}\")\"\ncp -a \"$STRATA_PARAM_{p}\" \"{at}\"\n"
                ));
            }
        }
        for (rel, param) in templates {
            let body = std::fs::read_to_string(self.paths.heads.join(&rel)).unwrap_or_default();
            let named = super::config_dirs::named(&body);
            if named.is_empty() {
                continue;
            }
            if !layout {
                self.notes.insert(format!(
                    "{rel} names @BLOB_DIR@/@BRAND_DIR@ paths, which Heads's config installer writes relative to the module's dir; it builds outside Heads's layout, so they are not Heads's"
                ));
                continue;
            }
            let s = super::config_dirs::setup(
                self.paths.heads,
                self.paths.heads_from_out,
                (&rel, &param),
                &named,
                &self.ctx.brand,
                (self.heads_name, self.params.contains("BOARD")),
            );
            text.push_str(&s.shell);
            self.done.extend(s.done);
            for (p, v) in s.params {
                self.params.insert(p.clone());
                self.tree_params.push((p, v));
            }
        }
        text
    }

    /// Copying the board's config file (`_config`) to `_config_file_path`:
    /// the board's config param when it is one, else a param of its own.
    fn config_copy(&mut self) -> String {
        let config = self.field("config");
        if config.is_empty() {
            return String::new();
        }
        let rel = config
            .strip_prefix(self.ctx.pwd)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(config)
            .to_string();
        let p = match self.ctx.params.iter().find(|(r, _)| *r == rel) {
            Some((_, p)) => p.clone(),
            None => {
                let p = format!("{}_CONFIG", env_name(self.heads_name));
                self.files.push((p.clone(), rel.clone()));
                p
            }
        };
        self.params.insert(p.clone());
        let dest = self.rw(self.field("config_file_path"));
        self.done.push(format!("config {rel} → $STRATA_PARAM_{p}"));
        format!("mkdir -p \"$(dirname \"{dest}\")\"\ncp -a \"$STRATA_PARAM_{p}\" \"{dest}\"\n")
    }

    /// Heads's `_configure`, rewritten; a `make -C ..` of a module built in
    /// a subdirectory of its source made to name the source.
    fn heads_configure(&mut self, layout: bool) -> String {
        let mut c = self.rw(self.field("configure"));
        let (dir, base) = (self.field("dir"), self.field("base_dir"));
        let nested = !base.is_empty() && dir != base && dir.starts_with(&format!("{base}/"));
        if nested && !layout && !dir[base.len() + 1..].contains('/') {
            // Heads runs `make -C ..` in build/<arch>/<base>/<sub>: `..` is the source.
            c = c.replace("-C .. ", "-C \"$STRATA_SOURCE_DIR\" ");
            if c.ends_with("-C ..") {
                c = format!("{}-C \"$STRATA_SOURCE_DIR\"", &c[..c.len() - 5]);
            }
        }
        let mut text = String::new();
        if !c.trim().is_empty() {
            text.push_str(c.trim());
            text.push('\n');
            self.done.push("_configure".to_string());
        }
        if nested && !layout && (mentions_parent(&c) || mentions_parent(self.field("target"))) {
            self.notes.insert(
                "a relative `..` in its commands means the source dir, because Heads builds it in a subdirectory of its source (`_dir` inside `_base_dir`); it holds only if $STRATA_BUILD_DIR is inside $STRATA_SOURCE_DIR".to_string(),
            );
        }
        text
    }

    /// Heads runs `$(MAKE) -C $(build)/$(dir) $(target)`.
    fn build(&mut self, own_dir: &str) -> String {
        let t = self.rw(self.field("target"));
        self.done.push("_target".to_string());
        format!("set +eu\nmake -C \"{own_dir}\" {}\n", t.trim()).replace(" \n", "\n")
    }

    /// Collects what the module added to the private tree, plus its outputs
    /// and libraries (what Heads copies into the initrd), and stages what
    /// the board's `initrd` takes from it (`_data`, busybox's install, the
    /// kernel's modules).
    fn install(&mut self, own_dir: &str) -> String {
        let mut install = format!(
            "cd \"{PRIVATE_INSTALL}\"\n\
             find . ! -type d | LC_ALL=C sort | while IFS= read -r f; do\n  \
             if ! cmp -s \"$f\" \"$STRATA_SYSROOT/$f\"; then\n    \
             mkdir -p \"$STRATA_DESTDIR/$(dirname \"$f\")\" && cp -a \"$f\" \"$STRATA_DESTDIR/$f\"\n  fi\ndone\n\
             cd \"{own_dir}\"\n"
        );
        for (f, sub) in [("output", "bin"), ("libraries", "lib")] {
            let list = self.rw(self.m.get(f).map(String::as_str).unwrap_or(""));
            let items: Vec<&str> = list.split_whitespace().collect();
            if !items.is_empty() {
                install.push_str(&format!(
                    "mkdir -p \"$STRATA_DESTDIR/initrd/{sub}\"\ncp -aL {} \"$STRATA_DESTDIR/initrd/{sub}/\"\n",
                    items.join(" ")
                ));
                self.done.push(format!("_{f} → initrd/{sub}"));
            }
        }
        // `_data` (`src|dst`, what Heads stages into data.cpio): staged under
        // heads-data/<dst> for the board's `initrd`.
        let data = self.rw(self.field("data"));
        for entry in data.split_whitespace() {
            if let Some((src, dst)) = entry.split_once('|') {
                let d = super::image::DATA_DIR;
                install.push_str(&format!(
                    "mkdir -p \"$(dirname \"$STRATA_DESTDIR/{d}/{dst}\")\"\ncp -R {src} \"$STRATA_DESTDIR/{d}/{dst}\"\n"
                ));
                self.done.push(format!("_data {dst} → {d}/{dst}"));
            }
        }
        if self.heads_name == "busybox" && !self.ctx.heads_cc.is_empty() {
            let cc = self.rw(self.ctx.heads_cc.trim());
            let cross = self.rw(self.ctx.cross.trim());
            install.push_str(&busybox_install(&cc, &cross));
            self.done.push(format!(
                "Heads's `$(initrd_bin_dir)/busybox` rule → {}/",
                super::image::BUSYBOX_DIR
            ));
        }
        if self.m.contains_key("modules-y") {
            install.push_str(&kernel_modules_install());
            self.done.push(format!(
                "{}_modules-y: every built .ko → {}/",
                self.heads_name,
                super::image::KMOD_DIR
            ));
        }
        install
    }

    /// What the module file does outside the module's variables: its
    /// coreboot toolchain, its own rules, its `$(shell …)` calls.
    fn heads_specific_notes(&mut self, file: &str, scan: &FileScan) {
        let toolchain = self.field("toolchain");
        if !toolchain.is_empty() {
            self.notes.insert(format!(
                "uses the coreboot toolchain of `{toolchain}`, which Heads builds through a rule in modules/{file}; not translated"
            ));
        }
        for (line, target) in &scan.rules {
            let prereqs = scan.prereqs.get(line).map_or("", String::as_str);
            if let Some(p) = self.config_rule(target, prereqs) {
                self.done.push(format!(
                    "modules/{file}:{line}: rule `{target}: {prereqs}` (a changed config reconfigures): the config is the file param {p}, part of the key"
                ));
                continue;
            }
            self.notes.insert(format!(
                "modules/{file}:{line}: rule `{target}` is Heads-specific; not translated"
            ));
        }
        for (line, text) in &scan.shells {
            self.notes.insert(format!(
                "modules/{file}:{line}: $(shell …) evaluated on the importing host: `{text}`"
            ));
        }
    }

    /// Heads's `$(build)/$(<m>_dir)/.configured: $(<m>_kconfig)` (linux):
    /// the module reconfigures when its config file changes. Translated when
    /// the prerequisite is one variable naming a config and the module's
    /// commands read a board config file, which is then a file param and so
    /// part of the key: the param's name.
    fn config_rule(&self, target: &str, prereqs: &str) -> Option<String> {
        if target != format!("$(build)/$({}_dir)/.configured", self.heads_name) {
            return None;
        }
        let var = prereqs.strip_prefix("$(")?.strip_suffix(')')?;
        let names_config = !var.contains(['$', '(', ')', ' ']) && var.ends_with("config");
        let param = self
            .ctx
            .params
            .iter()
            .map(|(_, p)| p)
            .find(|p| self.params.contains(*p))?;
        names_config.then(|| format!("$STRATA_PARAM_{param}"))
    }

    /// A recipe that calls the cross toolchain ($(CROSS), $(CROSS_TOOLS):
    /// rewritten to $STRATA_HOST) must depend on it. Heads's make happens to
    /// build musl-cross-make first; strata's exact host prefixes do not, so
    /// the dependency is added and reported as Heads's bug.
    fn toolchain_dependency(&mut self, depends: &mut Vec<String>, commands: [&String; 3]) {
        // (coreboot's own toolchain, `XGCC_HOST`, is another module's.)
        let uses_toolchain = commands
            .iter()
            .any(|c| c.replace(XGCC_HOST, "").contains("STRATA_HOST"));
        let tc = &self.ctx.toolchain;
        if uses_toolchain && !tc.is_empty() && tc != self.name && !depends.contains(tc) {
            depends.push(tc.clone());
            self.notes.insert(format!(
                "calls the cross toolchain ($(CROSS)/$(CROSS_TOOLS)) without `$(musl_dep)` in \
                 {}_depends (a missing dependency in Heads, which builds only because make \
                 happens to build {tc} first): strata adds it",
                self.heads_name
            ));
        }
    }

    /// musl-cross-make downloads its packages in its build: declared
    /// instead, so the build downloads nothing (the sandbox has no network).
    fn downloads(&mut self) -> Vec<DownloadOut> {
        if self.ctx.toolchain != self.name {
            return Vec::new();
        }
        self.done
            .push("its packages (hashes/) → [[download]] sha1-from".to_string());
        super::toolchain::musl_cross_make_downloads()
    }

    /// The tree's files the commands read and dirs its config names, as
    /// the params the board's target carries (files sorted, once each).
    fn tree_files(&mut self) -> Vec<(String, Param)> {
        let mut extra = std::mem::take(&mut self.files);
        extra.sort();
        extra.dedup();
        for (p, rel) in &extra {
            if p.starts_with("HEADS_") {
                self.done
                    .push(format!("{rel} of the Heads tree → $STRATA_PARAM_{p}"));
            }
        }
        let from = self.paths.heads_from_out;
        let mut params: Vec<(String, Param)> = extra
            .into_iter()
            .map(|(p, rel)| (p, Param::File(format!("{from}/{rel}"))))
            .collect();
        params.append(&mut self.tree_params);
        params
    }
}
