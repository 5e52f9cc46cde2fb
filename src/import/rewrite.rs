//! Rewriting one evaluated Heads value into a shell fragment over strata's
//! variables. make printed every path under the farm placeholder (Heads's
//! `$(pwd)`); each such path is mapped by what it points at:
//!
//! | Heads path                           | strata                                   |
//! |--------------------------------------|------------------------------------------|
//! | `build/<arch>/<own _dir>`            | `$STRATA_BUILD_DIR`                      |
//! | `build/<arch>/<own _base_dir>`       | `$STRATA_SOURCE_DIR`                     |
//! | `build/<arch>/<other module's dir>`  | `$STRATA_DEP_<NAME>_DIR`                 |
//! | `install/<arch>` (`$(INSTALL)`)      | `$STRATA_BUILD_DIR/.heads-install`       |
//! | `crossgcc/<arch>` (`$(CROSS_PATH)`)  | `$STRATA_HOST` (the toolchain's own: its install dir) |
//! | `build/<arch>/<tc>/util/crossgcc/xgcc` (coreboot's) | `$STRATA_HOST/xgcc` (its shared toolchain module) |
//! | a board config file (`config/…`)     | `$STRATA_PARAM_<NAME>`                   |
//!
//! The decision a reader would question is `$(INSTALL)`: Heads has one
//! shared install tree that every module reads and writes. Here it becomes a
//! private per-module directory seeded with a copy of the module's sysroot
//! (its dependencies' files) and whatever the module adds there is collected
//! into its own `$STRATA_DESTDIR`: Buildroot's per-package directories. See
//! docs/heads.md. Anything else under the Heads tree is kept as
//! `$HEADS_DIR/<path>` and reported as not translated.

use super::make::{JOBS_PLACEHOLDER, MAKE_PLACEHOLDER};
use std::collections::BTreeSet;

/// Where a module's Heads-style shared install tree lives in strata.
pub const PRIVATE_INSTALL: &str = "$STRATA_BUILD_DIR/.heads-install";

/// Where coreboot's crossgcc toolchain (`util/crossgcc/xgcc` of its tree)
/// is for the module building with it: its shared toolchain module's dir
/// in `$STRATA_HOST` (see `toolchain.rs`).
pub const XGCC_HOST: &str = "${STRATA_HOST}/xgcc";

/// Opens and closes a shell parameter expansion inserted by the rewrite;
/// [`finish`] turns each into `${…}` quoted for where it landed.
const OPEN: char = '\u{1}';
const CLOSE: char = '\u{2}';

/// An inserted `${expr}`, resolved by [`finish`].
fn var(expr: &str) -> String {
    format!("{OPEN}{expr}{CLOSE}")
}

/// Resolves inserted expansions by the shell quoting around them: `${x}`
/// outside quotes and inside double quotes, `'"${x}"'` inside single quotes
/// (where the shell would not expand it).
pub fn finish(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == OPEN {
            let expr: String = chars.by_ref().take_while(|&c| c != CLOSE).collect();
            if single {
                out.push_str(&format!("'\"${{{expr}}}\"'"));
            } else {
                out.push_str(&format!("${{{expr}}}"));
            }
            continue;
        }
        out.push(c);
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        }
    }
    out
}

/// What a board's evaluation tells about paths.
pub struct Context<'a> {
    /// The real Heads tree.
    pub heads: &'a std::path::Path,
    /// The farm path standing for `$(pwd)`.
    pub pwd: &'a str,
    /// The farm's temp dir (where `$(shell mktemp -d)` directories landed).
    pub tmp: &'a str,
    pub arch: &'a str,
    pub board: &'a str,
    /// Every module's `(dir, strata name, is base dir)`, longest dir first.
    pub dirs: Vec<(String, String, bool)>,
    /// Board config files: `(path relative to Heads, param name)`.
    pub params: Vec<(String, String)>,
    /// The toolchain module (`$(musl_dep)`), strata name.
    pub toolchain: String,
    /// The board's coreboot module, strata name: it builds in Heads's
    /// layout inside its build dir, `.heads/build/<arch>/…` (its config names
    /// the payload by a path relative to its source dir, `../<BOARD>/bzImage`,
    /// and the config is part of the ROM).
    pub layout: String,
    /// The board's kernel module (strata name) when the board bundles its
    /// initrd into the kernel (`CONFIG_LINUX_BUNDLED`): its config names the
    /// board's output dir (`CONFIG_INITRAMFS_SOURCE="../@BOARD_BUILD_DIR@/…"`,
    /// part of the image with `CONFIG_IKCONFIG`), so it builds in Heads's
    /// layout too; empty otherwise.
    pub kernel_layout: String,
    /// The board's kernel module (strata name) when it builds in Heads's
    /// layout only because its config names the tree through
    /// `@BLOB_DIR@`/`@BRAND_DIR@` (see `config_dirs.rs`): without the
    /// board's output dir, so it stays one module for every board; empty
    /// otherwise.
    pub config_layout: String,
    /// coreboot's toolchain dir on this board (`<base>/util/crossgcc/xgcc`
    /// of `$(coreboot_toolchain_module)`, under build/<arch>), mapped to
    /// [`XGCC_HOST`]; empty without coreboot.
    pub xgcc: String,
    /// Heads's `$(heads_cc)` and `$(CROSS)` on this board, as evaluated.
    pub heads_cc: String,
    pub cross: String,
    /// Heads's `$(BRAND_NAME)` on this board (its `branding/` dir).
    pub brand: String,
}

impl Context<'_> {
    /// Does module `name` build in Heads's layout (see `layout`,
    /// `kernel_layout`)?
    pub fn in_layout(&self, name: &str) -> bool {
        !name.is_empty()
            && (name == self.layout || name == self.kernel_layout || name == self.config_layout)
    }
}

/// The result of rewriting one value.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub text: String,
    pub params: BTreeSet<String>,
    /// Files of the Heads tree made parameters: `(param, path relative to Heads)`.
    pub files: Vec<(String, String)>,
    /// Other modules whose build dir is read.
    pub dep_dirs: BTreeSet<String>,
    /// Things that could not be translated, each with its reason.
    pub notes: Vec<String>,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')
}

/// `STRATA_DEP_<NAME>_DIR`'s `NAME`: the engine's own spelling.
pub use crate::exec::environment::env_name;

/// Does `rest` start with `prefix` followed by a delimiter (or the end)?
fn starts_delimited(rest: &str, prefix: &str) -> bool {
    rest.starts_with(prefix) && !rest[prefix.len()..].starts_with(is_path_char)
}

pub fn rewrite(value: &str, own: &str, ctx: &Context) -> Rewritten {
    let mut r = Rewritten::default();
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let build = format!("/build/{}/", ctx.arch);
    let install = format!("/install/{}", ctx.arch);
    let crossgcc = format!("/crossgcc/{}", ctx.arch);
    let packages = format!("/packages/{}", ctx.arch);
    while let Some(i) = rest.find(ctx.pwd) {
        out.push_str(&rest[..i]);
        let after = &rest[i + ctx.pwd.len()..];
        let (text, used) = map_path(
            after, own, ctx, &build, &install, &crossgcc, &packages, &mut r,
        );
        out.push_str(&text);
        rest = &after[used..];
    }
    out.push_str(rest);
    // mktemp directories made while the Makefile was parsed.
    while let Some(i) = out.find(ctx.tmp) {
        // The directory is the one component after the temp dir.
        let start = i + ctx.tmp.len() + usize::from(out[i + ctx.tmp.len()..].starts_with('/'));
        let end = out[start..]
            .find(|c: char| !is_path_char(c))
            .map_or(out.len(), |e| start + e);
        let path = out[i..end].to_string();
        r.notes.push(
            "uses a directory Heads makes with $(shell mktemp -d) while parsing; mapped to $STRATA_BUILD_DIR/.heads-tmp"
                .to_string(),
        );
        out = out.replace(&path, &format!("{}/.heads-tmp", var("STRATA_BUILD_DIR")));
    }
    out = out.replace(MAKE_PLACEHOLDER, "make");
    out = out.replace(JOBS_PLACEHOLDER, "");
    // A board config file's bare name (e.g. KBUILD_BUILD_USER=$(notdir …)).
    for (rel, param) in &ctx.params {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        out = replace_delimited(
            &out,
            base,
            &var(&format!("STRATA_PARAM_{param}##*/")),
            || {
                r.params.insert(param.clone());
            },
        );
    }
    // The board's name (e.g. an SMBIOS product name): the BOARD parameter.
    out = replace_delimited(&out, ctx.board, &var("STRATA_PARAM_BOARD"), || {
        r.params.insert("BOARD".to_string());
    });
    r.text = finish(&out);
    r
}

/// Replaces whole-word occurrences of `word` (not part of a longer path).
fn replace_delimited(s: &str, word: &str, by: &str, mut hit: impl FnMut()) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().last().or_else(|| out.chars().last());
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_none_or(|c| !is_path_char(c) && c != '/')
            && after.is_none_or(|c| !is_path_char(c) && c != '/')
        {
            out.push_str(by);
            hit();
        } else {
            out.push_str(word);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[allow(clippy::too_many_arguments)]
fn map_path(
    after: &str,
    own: &str,
    ctx: &Context,
    build: &str,
    install: &str,
    crossgcc: &str,
    packages: &str,
    r: &mut Rewritten,
) -> (String, usize) {
    // coreboot's toolchain, before its tree's dir is mapped (whichever
    // module's tree it is, the board's coreboot or another version's).
    if let Some(p) = after.strip_prefix(build)
        && !ctx.xgcc.is_empty()
        && starts_delimited(p, &ctx.xgcc)
    {
        return (
            format!("{}/xgcc", var("STRATA_HOST")),
            build.len() + ctx.xgcc.len(),
        );
    }
    if let Some(p) = after.strip_prefix(build)
        && ctx.in_layout(own)
    {
        // Heads's layout: build/<arch>/<base>/<BOARD> and build/<arch>/<BOARD>.
        let at = |rest: &str| {
            format!(
                "{}/.heads/build/{}/{rest}",
                var("STRATA_BUILD_DIR"),
                ctx.arch
            )
        };
        let board = var("STRATA_PARAM_BOARD");
        for (dir, name, _) in &ctx.dirs {
            if name == own && starts_delimited(p, dir) {
                r.params.insert("BOARD".to_string());
                let text = match dir.strip_suffix(&format!("/{}", ctx.board)) {
                    Some(base) => at(&format!("{base}/{board}")),
                    None => at(dir),
                };
                return (text, build.len() + dir.len());
            }
        }
        if starts_delimited(p, ctx.board) && own != ctx.config_layout {
            r.params.insert("BOARD".to_string());
            return (at(&board), build.len() + ctx.board.len());
        }
    }
    if let Some(p) = after.strip_prefix(build) {
        for (dir, name, is_base) in &ctx.dirs {
            if starts_delimited(p, dir) {
                let used = build.len() + dir.len();
                let text = if name == own {
                    if *is_base {
                        var("STRATA_SOURCE_DIR")
                    } else {
                        var("STRATA_BUILD_DIR")
                    }
                } else {
                    r.dep_dirs.insert(name.clone());
                    var(&format!("STRATA_DEP_{}_DIR", env_name(name)))
                };
                return (text, used);
            }
        }
        if starts_delimited(p, ctx.board) {
            r.notes.push(format!(
                "uses Heads's board output dir build/{}/$(BOARD) (the board's initrd and kernel, which Heads builds outside modules); mapped to $STRATA_BUILD_DIR/.heads-board",
                ctx.arch
            ));
            return (
                format!("{}/.heads-board", var("STRATA_BUILD_DIR")),
                build.len() + ctx.board.len(),
            );
        }
    }
    if starts_delimited(after, install) {
        return (
            format!("{}/.heads-install", var("STRATA_BUILD_DIR")),
            install.len(),
        );
    }
    if starts_delimited(after, crossgcc) {
        let text = if own == ctx.toolchain {
            format!("{}/.heads-install", var("STRATA_BUILD_DIR"))
        } else {
            var("STRATA_HOST")
        };
        return (text, crossgcc.len());
    }
    for (rel, param) in &ctx.params {
        let p = format!("/{rel}");
        if starts_delimited(after, &p) {
            r.params.insert(param.clone());
            return (var(&format!("STRATA_PARAM_{param}")), p.len());
        }
    }
    if starts_delimited(after, packages) {
        r.notes
            .push("uses Heads's packages/ directory; mapped to $HEADS_DIR/packages".to_string());
        return (format!("{}/packages", var("HEADS_DIR")), packages.len());
    }
    if let Some(p) = after.strip_prefix('/') {
        let end = p
            .find(|c: char| !is_path_char(c) && c != '/')
            .unwrap_or(p.len());
        let path = &p[..end];
        if !path.is_empty() && ctx.heads.join(path).is_file() {
            // A file of the Heads tree (a helper script): a file parameter,
            // so its content is part of the module's key.
            // In Heads's layout it is at its Heads place under `.heads/`
            // (the config installer finds the tree from its own location).
            let param = format!("HEADS_{}", env_name(path));
            r.params.insert(param.clone());
            r.files.push((param.clone(), path.to_string()));
            let text = if ctx.in_layout(own) {
                format!("{}/.heads/{path}", var("STRATA_BUILD_DIR"))
            } else {
                var(&format!("STRATA_PARAM_{param}"))
            };
            return (text, 1 + path.len());
        }
        r.notes.push(format!(
            "uses `{path}` of the Heads tree; kept as $HEADS_DIR/{path} (set HEADS_DIR, or make it a module or parameter)"
        ));
        return (var("HEADS_DIR"), 0);
    }
    // Bare $(pwd), as in -fdebug-prefix-map=$(pwd)=heads: in Heads's
    // layout, the dir holding its build/.
    if ctx.in_layout(own) {
        (format!("{}/.heads", var("STRATA_BUILD_DIR")), 0)
    } else {
        (var("STRATA_BUILD_DIR"), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            heads: std::path::Path::new("/nonexistent"),
            pwd: "/f/h",
            tmp: "/f/tmp",
            arch: "x86",
            board: "b1",
            dirs: vec![
                ("linux-6.1/b1cfg".into(), "linux-6.1".into(), false),
                ("zlib-1.2".into(), "zlib".into(), false),
                ("linux-6.1".into(), "linux-6.1".into(), true),
            ],
            params: vec![("config/linux-b1.config".into(), "LINUX_CONFIG".into())],
            toolchain: "musl-cross-make".into(),
            layout: String::new(),
            kernel_layout: String::new(),
            config_layout: String::new(),
            xgcc: "coreboot-1/util/crossgcc/xgcc".into(),
            heads_cc: String::new(),
            cross: String::new(),
            brand: "Heads".into(),
        }
    }

    #[test]
    fn maps_heads_paths_to_strata_variables() {
        let v = "@@STRATA_MAKE@@ @@STRATA_MAKE_JOBS@@ -C /f/h/build/x86/linux-6.1 O=/f/h/build/x86/linux-6.1/b1cfg \
                 CC=/f/h/crossgcc/x86/bin/x-gcc --sysroot /f/h/install/x86 -L/f/h/build/x86/zlib-1.2/lib \
                 K=/f/h/config/linux-b1.config U=linux-b1.config -fdebug-prefix-map=/f/h=heads /f/h/bin/x.sh";
        let r = rewrite(v, "linux-6.1", &ctx());
        assert_eq!(
            r.text,
            "make  -C ${STRATA_SOURCE_DIR} O=${STRATA_BUILD_DIR} CC=${STRATA_HOST}/bin/x-gcc \
             --sysroot ${STRATA_BUILD_DIR}/.heads-install -L${STRATA_DEP_ZLIB_DIR}/lib \
             K=${STRATA_PARAM_LINUX_CONFIG} U=${STRATA_PARAM_LINUX_CONFIG##*/} \
             -fdebug-prefix-map=${STRATA_BUILD_DIR}=heads ${HEADS_DIR}/bin/x.sh"
        );
        assert!(r.params.contains("LINUX_CONFIG"));
        assert!(r.dep_dirs.contains("zlib"));
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    }

    #[test]
    fn every_mktemp_dir_is_mapped() {
        let r = rewrite("a=/f/tmp/tmp.1/x b=/f/tmp/tmp.2", "zlib", &ctx());
        assert_eq!(
            r.text,
            "a=${STRATA_BUILD_DIR}/.heads-tmp/x b=${STRATA_BUILD_DIR}/.heads-tmp"
        );
        assert!(!r.notes.is_empty());
    }

    #[test]
    fn coreboots_toolchain_is_its_shared_toolchain_module() {
        let r = rewrite(
            "XGCCPATH=\"/f/h/build/x86/coreboot-1/util/crossgcc/xgcc/bin/\" X=/f/h/build/x86/coreboot-1/util/crossgcc/xgccx",
            "zlib",
            &ctx(),
        );
        assert_eq!(
            r.text,
            "XGCCPATH=\"${STRATA_HOST}/xgcc/bin/\" X=${HEADS_DIR}/build/x86/coreboot-1/util/crossgcc/xgccx"
        );
    }

    #[test]
    fn the_toolchain_installs_into_its_own_dir() {
        let r = rewrite("OUTPUT=/f/h/crossgcc/x86", "musl-cross-make", &ctx());
        assert_eq!(r.text, "OUTPUT=${STRATA_BUILD_DIR}/.heads-install");
    }

    #[test]
    fn single_quotes_are_reopened_around_variables() {
        let r = rewrite(
            "echo 'NAME=\"b1\"' > /f/h/build/x86/zlib-1.2/x; echo \"b1\" it\\'s",
            "zlib",
            &ctx(),
        );
        assert_eq!(
            r.text,
            "echo 'NAME=\"'\"${STRATA_PARAM_BOARD}\"'\"' > ${STRATA_BUILD_DIR}/x; echo \"${STRATA_PARAM_BOARD}\" it\\'s"
        );
        assert!(r.params.contains("BOARD"));
    }
}
