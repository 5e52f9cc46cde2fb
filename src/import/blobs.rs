//! Heads's blob targets (`BOARD_TARGETS := xx30_me_blobs`, …) as
//! fixed-output modules.
//!
//! A `targets/*_blobs.mk` makes the board's coreboot `.build` depend on files
//! under `blobs/<dir>/` that a script of the tree makes at build time: it
//! downloads a vendor updater, extracts it, cleans the ME image with
//! `me_cleaner` and checks the **result** against a sha256 it holds
//! (`ME_BIN_HASH=…`, `check_outputs` of `blobs/lib.sh`). Only the output is
//! pinned, which is a fixed-output module (see docs/manifest.md): one per
//! script, `blobs-<dir>-<script>`, shared by every board using it, with
//! `network = true` and `outputs` = the files the rule makes, staged as
//! `heads-blobs/<dir>/<file>` (where the board's coreboot finds them in its
//! sysroot), pinned by the hash the script itself checks (else
//! `blobs/<dir>/hashes.txt`). A rule whose pin cannot be found is reported,
//! never guessed.
//!
//! The decisions a reader would question:
//! - The script runs in a writable copy of the tree's `blobs/` (a `{ dir }`
//!   param): the scripts source `../lib.sh`, read committed files beside
//!   them (m900's IFD and GbE, `utils/me_cleaner`), and some write their
//!   output or intermediate files next to themselves (xx20's `$BLOBDIR`,
//!   m900's `me_cleaned.bin`); only the pinned files are installed.
//! - `COREBOOT_DIR` (xx30, xx20): the scripts write into
//!   `$COREBOOT_DIR/util/me_cleaner`, so the module has the board's coreboot
//!   source (as the cbmem module does) and gives the script a writable copy
//!   of its `util/me_cleaner`. The source is not in the module's key (a
//!   fixed-output key is its pins).
//! - A rule copying a blob into the board's dir (`cp … $(build)/$(BOARD)`,
//!   t480) becomes a line of the board's coreboot configure, after Heads's
//!   layout is set up: the file lands in `build/<arch>/<BOARD>/` as in Heads.

use super::model::{FixedOut, ModuleOut, Param, Source};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a blob module stages its files: `heads-blobs/<dir under blobs/>/`.
pub const BLOBS_DIR: &str = "heads-blobs";

/// The param holding the tree's `blobs/` directory.
pub const PARAM: &str = "HEADS_BLOBS";

/// What a board's `BOARD_TARGETS` add to its build.
#[derive(Default)]
pub struct BoardBlobs {
    /// The blob modules (shared: the same for every board using them).
    pub modules: Vec<(ModuleOut, FixedOut)>,
    /// Modules the board's coreboot depends on.
    pub depends: Vec<String>,
    /// Lines appended to the board's coreboot configure.
    pub configure: String,
    pub params: Vec<(String, Param)>,
    /// What was translated (for coreboot's report).
    pub done: Vec<String>,
    /// What was not, with the reason (for the board's report).
    pub not_translated: Vec<String>,
    /// Blobs the targets copy into Heads's board dir (`xx80/t480_tb.bin`,
    /// under `blobs/`): the board's outputs, so `rom` installs them too.
    pub board_files: Vec<String>,
}

/// One rule of a targets file, variables of the file expanded.
#[derive(Debug, PartialEq)]
struct Rule {
    line: usize,
    targets: Vec<String>,
    prereqs: Vec<String>,
    recipe: Vec<String>,
}

/// Lines with `\`-continuations joined, each with its first line number.
fn logical_lines(text: &str) -> Vec<(usize, String, bool)> {
    let mut out: Vec<(usize, String, bool)> = Vec::new();
    let mut cont = false;
    for (i, line) in text.lines().enumerate() {
        let (body, next) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        // A `\`-newline and the blanks around it become one space.
        if cont && let Some(last) = out.last_mut() {
            last.1.truncate(last.1.trim_end().len());
            last.1.push(' ');
            last.1.push_str(body.trim());
        } else {
            out.push((i + 1, body.to_string(), line.starts_with('\t')));
        }
        cont = next;
    }
    out
}

/// `$(NAME)` of the file's own variables expanded (others left as they are).
fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for _ in 0..4 {
        let mut next = out.clone();
        for (k, v) in vars {
            next = next.replace(&format!("$({k})"), v);
        }
        if next == out {
            break;
        }
        out = next;
    }
    out
}

/// The rules of a targets file (comments and blank lines skipped; `NAME :=`
/// / `=` assignments become variables; `a b &: c` is a grouped rule).
fn parse_mk(text: &str) -> Vec<Rule> {
    let mut vars = BTreeMap::new();
    let mut rules: Vec<Rule> = Vec::new();
    for (line, body, recipe) in logical_lines(text) {
        if recipe {
            if let Some(r) = rules.last_mut() {
                r.recipe.push(expand(body.trim(), &vars));
            }
            continue;
        }
        let t = body.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = t.split_once(":=").or_else(|| {
            t.split_once('=')
                .filter(|(k, _)| !k.contains(':') && !k.trim().contains(' '))
        }) && !k.trim().contains(' ')
            && !k.contains('$')
        {
            vars.insert(k.trim().to_string(), v.trim().to_string());
            continue;
        }
        if let Some((ts, ps)) = t.split_once(':') {
            let ts = ts.trim().trim_end_matches('&').trim();
            rules.push(Rule {
                line,
                targets: expand(ts, &vars)
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                prereqs: expand(ps, &vars)
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                recipe: Vec::new(),
            });
        }
    }
    rules
}

/// `${NAME}` and `$NAME` of `vars` expanded (others left as they are).
fn expand_shell(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for _ in 0..4 {
        let mut next = out.clone();
        for (k, v) in vars {
            next = next.replace(&format!("${{{k}}}"), v);
        }
        // `$NAME` only where the name ends there.
        let mut s2 = String::new();
        let mut rest = next.as_str();
        while let Some(i) = rest.find('$') {
            s2.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            match vars.get(&after[..n]).filter(|_| n > 0) {
                Some(v) => s2.push_str(v),
                None => s2.push_str(&rest[i..i + 1 + n]),
            }
            rest = &after[n..];
        }
        s2.push_str(rest);
        if s2 == out {
            break;
        }
        out = s2;
    }
    out
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The sums a blob script checks its outputs against: file name → sha256,
/// from each `check_outputs "<hash> <path>" …` call with the script's
/// `NAME=value` assignments expanded (`"${ME_BIN_HASH} ${output_dir}/me.bin"`,
/// or a variable holding both, as xx20's `FINAL_ME_BIN_SHA256SUM`).
pub fn script_pins(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (_, body, _) in logical_lines(text) {
        let t = body.trim().trim_start_matches("local ").trim_start();
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        vars.insert(k.to_string(), v.to_string());
    }
    let mut pins = BTreeMap::new();
    for (_, body, _) in logical_lines(text) {
        let Some(i) = body.find("check_outputs ") else {
            continue;
        };
        for (j, arg) in body[i..].split('"').enumerate() {
            if j % 2 == 0 {
                continue;
            }
            let v = expand_shell(arg, &vars);
            let words: Vec<&str> = v.split_whitespace().collect();
            if let ([hash, .., path], true) = (words.as_slice(), words.len() >= 2)
                && is_sha256(hash)
            {
                let name = path.rsplit('/').next().unwrap_or(path);
                pins.insert(name.to_string(), hash.to_ascii_lowercase());
            }
        }
    }
    pins
}

/// `blobs/<dir>/hashes.txt`: `sha256  name` lines (`#` comments).
pub fn hashes_txt(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (h, f) = (w.next()?, w.next()?);
            is_sha256(h).then(|| (f.to_string(), h.to_ascii_lowercase()))
        })
        .collect()
}

const PWD_BLOBS: &str = "$(pwd)/blobs/";
const COREBOOT_BUILD: &str = "$(build)/coreboot-$(CONFIG_COREBOOT_VERSION)/$(BOARD)/.build";

/// The blob module of one rule, or why it cannot be translated.
fn blob_module(
    heads: &Path,
    mk: &str,
    r: &Rule,
    coreboot: &ModuleOut,
) -> Result<(ModuleOut, FixedOut, String), String> {
    let at = format!("targets/{mk}.mk:{}", r.line);
    let rels: Vec<&str> = r
        .targets
        .iter()
        .map(|t| t.strip_prefix(PWD_BLOBS).unwrap_or(""))
        .collect();
    let dir = rels[0].rsplit_once('/').map_or("", |(d, _)| d);
    if dir.is_empty()
        || rels
            .iter()
            .any(|x| x.rsplit_once('/').map(|p| p.0) != Some(dir))
    {
        return Err(format!(
            "{at}: its targets are not files of one blobs/ directory; not translated"
        ));
    }
    let recipe = r.recipe.join("\n");
    let script = recipe
        .split_whitespace()
        .find(|w| w.starts_with(PWD_BLOBS) && w.ends_with(".sh"))
        .map(|w| w.trim_start_matches("$(pwd)/").to_string())
        .ok_or_else(|| format!("{at}: its recipe runs no script of blobs/; not translated"))?;
    let text = std::fs::read_to_string(heads.join(&script))
        .map_err(|e| format!("{at}: cannot read {script}: {e}; not translated"))?;
    let from_script = script_pins(&text);
    let from_list = std::fs::read_to_string(heads.join("blobs").join(dir).join("hashes.txt"))
        .map(|t| hashes_txt(&t))
        .unwrap_or_default();
    let mut outputs = BTreeMap::new();
    for rel in &rels {
        let file = rel.rsplit('/').next().unwrap_or(rel);
        let pin = match (from_script.get(file), from_list.get(file)) {
            (Some(s), Some(l)) if s != l => {
                return Err(format!(
                    "{at}: {script} checks {file} against {s} but blobs/{dir}/hashes.txt says {l}; not translated"
                ));
            }
            (Some(s), _) => s,
            (None, Some(l)) => l,
            (None, None) => {
                return Err(format!(
                    "{at}: no sha256 for blobs/{rel} in {script} (check_outputs) or blobs/{dir}/hashes.txt; not translated (its output would be unpinned)"
                ));
            }
        };
        outputs.insert(format!("{BLOBS_DIR}/{rel}"), pin.clone());
    }
    let uses_coreboot = recipe.contains("COREBOOT_DIR=");
    let run = recipe
        .replace(
            "$(build)/$(coreboot_base_dir)",
            "$STRATA_BUILD_DIR/coreboot",
        )
        .replace("$(pwd)/", "\"$STRATA_BUILD_DIR\"/");
    if run.contains("$(") {
        return Err(format!(
            "{at}: its recipe uses make variables strata does not map ({}); not translated",
            run.trim()
        ));
    }
    let mut build = format!(
        "rm -rf \"$STRATA_BUILD_DIR/blobs\" \"$STRATA_BUILD_DIR/coreboot\"\n\
         mkdir -p \"$STRATA_BUILD_DIR/blobs\"\n\
         cp -a \"$STRATA_PARAM_{PARAM}/.\" \"$STRATA_BUILD_DIR/blobs/\"\n\
         chmod -R u+w \"$STRATA_BUILD_DIR/blobs\"\n"
    );
    if uses_coreboot {
        build.push_str(
            "mkdir -p \"$STRATA_BUILD_DIR/coreboot/util\"\n\
             cp -a \"$STRATA_SOURCE_DIR/util/me_cleaner\" \"$STRATA_BUILD_DIR/coreboot/util/\"\n\
             chmod -R u+w \"$STRATA_BUILD_DIR/coreboot\"\n",
        );
    }
    build.push_str(&run);
    build.push('\n');
    let mut install = format!("mkdir -p \"$STRATA_DESTDIR/{BLOBS_DIR}/{dir}\"\n");
    for rel in &rels {
        install.push_str(&format!(
            "cp \"$STRATA_BUILD_DIR/blobs/{rel}\" \"$STRATA_DESTDIR/{BLOBS_DIR}/{dir}/\"\n"
        ));
    }
    let stem = script
        .rsplit('/')
        .next()
        .unwrap_or(&script)
        .trim_end_matches(".sh");
    let name = format!("blobs-{}-{stem}", dir.replace('/', "-"));
    let (source, patches, version) = if uses_coreboot {
        (
            coreboot.source.clone(),
            coreboot.patches.clone(),
            coreboot.version.clone(),
        )
    } else {
        (Source::None, None, "1".to_string())
    };
    let m = ModuleOut {
        name,
        heads_name: mk.to_string(),
        module_file: format!("../targets/{mk}.mk"),
        version,
        source,
        depends: Vec::new(),
        patches,
        params: vec![PARAM.to_string()],
        host: false,
        configure: String::new(),
        build,
        install,
        downloads: Vec::new(),
    };
    let note = format!(
        "{at}: {script} → fixed-output module `{}` (network, outputs pinned by the sums the script checks)",
        m.name
    );
    Ok((
        m,
        FixedOut {
            outputs,
            network: true,
        },
        note,
    ))
}

/// A rule `$(build)/$(BOARD)/<f>: <blob>` copying a blob into the board's
/// dir: the blob (relative to blobs/) and the configure line doing it in
/// Heads's layout.
fn board_copy(r: &Rule, arch: &str) -> Option<(String, String)> {
    let [t] = r.targets.as_slice() else {
        return None;
    };
    let file = t.strip_prefix("$(build)/$(BOARD)/")?;
    let [src] = r.prereqs.as_slice() else {
        return None;
    };
    let rel = src.strip_prefix(PWD_BLOBS)?;
    let expected = format!("cp {src} $(build)/$(BOARD)");
    if r.recipe.len() != 1
        || r.recipe[0].split_whitespace().collect::<Vec<_>>().join(" ") != expected
        || rel.rsplit('/').next() != Some(file)
    {
        return None;
    }
    let board_dir = format!("$STRATA_BUILD_DIR/.heads/build/{arch}/$STRATA_PARAM_BOARD");
    Some((
        rel.to_string(),
        format!(
            "mkdir -p \"{board_dir}\"\ncp \"$STRATA_SYSROOT/{BLOBS_DIR}/{rel}\" \"{board_dir}/\"\n"
        ),
    ))
}

/// What the board's `BOARD_TARGETS` add: each `*_blobs` target's modules,
/// the dependencies and params of its coreboot; any other target, or a rule
/// that cannot be pinned, is reported.
pub fn board_blobs(
    heads: &Path,
    heads_from_out: &str,
    board_targets: &str,
    arch: &str,
    coreboot: &ModuleOut,
) -> BoardBlobs {
    let mut out = BoardBlobs::default();
    // (where, blob, configure line): kept once every blob rule is read.
    let mut copies: Vec<(String, String, String)> = Vec::new();
    for mk in board_targets.split_whitespace() {
        let path = heads.join("targets").join(format!("{mk}.mk"));
        if !mk.ends_with("_blobs") {
            // The board's other targets are targets.rs's (rom's files).
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            out.not_translated.push(format!(
                "BOARD_TARGETS `{mk}`: targets/{mk}.mk cannot be read; not translated"
            ));
            continue;
        };
        for r in parse_mk(&text) {
            let at = format!("targets/{mk}.mk:{}", r.line);
            if r.targets.iter().all(|t| t == COREBOOT_BUILD) && r.recipe.is_empty() {
                continue;
            }
            if r.targets.iter().all(|t| t.starts_with(PWD_BLOBS)) && !r.recipe.is_empty() {
                match blob_module(heads, mk, &r, coreboot) {
                    Ok((m, f, note)) => {
                        out.depends.push(m.name.clone());
                        out.done.push(note);
                        out.modules.push((m, f));
                    }
                    Err(why) => out.not_translated.push(why),
                }
                continue;
            }
            match board_copy(&r, arch) {
                Some((rel, c)) => copies.push((at, rel, c)),
                None => out.not_translated.push(format!(
                    "{at}: rule `{}` not translated",
                    r.targets.join(" ")
                )),
            }
        }
    }
    for (at, rel, c) in copies {
        let staged = format!("{BLOBS_DIR}/{rel}");
        if out
            .modules
            .iter()
            .any(|(_, f)| f.outputs.contains_key(&staged))
        {
            out.configure.push_str(&c);
            out.board_files.push(rel);
            out.done.push(format!(
                "{at}: the copy into $(build)/$(BOARD) → coreboot's configure, into Heads's board dir"
            ));
        } else {
            out.not_translated.push(format!(
                "{at}: copies blobs/{rel}, which no translated rule makes; not translated"
            ));
        }
    }
    if !out.modules.is_empty() {
        out.params.push((
            PARAM.to_string(),
            Param::Dir(format!("{heads_from_out}/blobs")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_rules_variables_and_continuations_are_parsed() {
        let mk = "# c\nB := \\\n  $(pwd)/blobs/x/a.bin \\\n  $(pwd)/blobs/x/b.bin\n\n\
                  $(build)/coreboot-$(CONFIG_COREBOOT_VERSION)/$(BOARD)/.build: $(B)\n\n\
                  $(pwd)/blobs/x/c.bin $(pwd)/blobs/x/d.bin &:\n\t$(pwd)/blobs/x/get.sh \\\n\t\t$(pwd)/blobs/x\n";
        let rules = parse_mk(mk);
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(
            rules[0].prereqs,
            ["$(pwd)/blobs/x/a.bin", "$(pwd)/blobs/x/b.bin"]
        );
        assert_eq!(
            rules[1].targets,
            ["$(pwd)/blobs/x/c.bin", "$(pwd)/blobs/x/d.bin"]
        );
        assert_eq!(rules[1].recipe, ["$(pwd)/blobs/x/get.sh $(pwd)/blobs/x"]);
    }

    /// A tree with `targets/x_blobs.mk` running `blobs/x/get.sh`, whose
    /// check pins me.bin with `script` (None: no check), and hashes.txt.
    fn board(script: Option<char>, list: Option<char>) -> BoardBlobs {
        let t = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: String| {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "targets/x_blobs.mk",
            "$(pwd)/blobs/x/me.bin:\n\t$(pwd)/blobs/x/get.sh $(pwd)/blobs/x\n\n\
             $(build)/$(BOARD)/me.bin: $(pwd)/blobs/x/me.bin\n\tcp $(pwd)/blobs/x/me.bin $(build)/$(BOARD)\n"
                .into(),
        );
        let check = script.map_or(String::new(), |c| {
            format!(
                "H={}\ncheck_outputs \"$H $1/me.bin\"\n",
                c.to_string().repeat(64)
            )
        });
        w("blobs/x/get.sh", check);
        if let Some(c) = list {
            w(
                "blobs/x/hashes.txt",
                format!("{}  me.bin\n", c.to_string().repeat(64)),
            );
        }
        let cb = ModuleOut {
            name: "coreboot".into(),
            heads_name: "coreboot".into(),
            module_file: "coreboot".into(),
            version: "1".into(),
            source: Source::None,
            depends: Vec::new(),
            patches: None,
            params: Vec::new(),
            host: false,
            configure: String::new(),
            build: String::new(),
            install: String::new(),
            downloads: Vec::new(),
        };
        board_blobs(t.path(), "..", "x_blobs qemu", "x86", &cb)
    }

    #[test]
    fn the_scripts_check_pins_the_output_else_hashes_txt_and_a_conflict_is_reported() {
        let b = board(Some('a'), Some('a'));
        assert_eq!(b.modules.len(), 1);
        let (m, f) = &b.modules[0];
        assert_eq!(m.name, "blobs-x-get");
        assert_eq!(f.outputs["heads-blobs/x/me.bin"], "a".repeat(64));
        assert!(f.network);
        assert_eq!(b.depends, ["blobs-x-get"]);
        assert!(
            b.configure
                .contains("cp \"$STRATA_SYSROOT/heads-blobs/x/me.bin\""),
            "{}",
            b.configure
        );
        // qemu is targets.rs's to report, not a blob target.
        assert!(b.not_translated.is_empty(), "{:?}", b.not_translated);
        let b = board(None, Some('b'));
        assert_eq!(
            b.modules[0].1.outputs["heads-blobs/x/me.bin"],
            "b".repeat(64)
        );
        let b = board(Some('a'), Some('b'));
        assert!(b.modules.is_empty());
        assert!(
            b.not_translated[0].contains("checks me.bin against")
                && b.not_translated[0].contains("hashes.txt says"),
            "{:?}",
            b.not_translated
        );
        let b = board(None, None);
        assert!(b.modules.is_empty() && b.depends.is_empty() && b.configure.is_empty());
        assert!(
            b.not_translated
                .iter()
                .any(|n| n.contains("copies blobs/x/me.bin, which no translated rule makes")),
            "{:?}",
            b.not_translated
        );
        assert!(
            b.not_translated[0].contains("no sha256 for blobs/x/me.bin"),
            "{:?}",
            b.not_translated
        );
    }

    #[test]
    fn pins_are_read_from_the_checks_the_script_makes() {
        let h = |c: char| c.to_string().repeat(64);
        let script = format!(
            "A_HASH=\"{}\"\nB_SUM=\"{}  $DIR/b.bin\"\nf() {{\n  out=\"${{output_dir}}/c.bin\"\n}}\n\
             check_outputs \"${{A_HASH}} ${{output_dir}}/a.bin\" && exit 0\n\
             check_outputs \"$B_SUM\" \\\n  \"{} ${{out}}\"\n",
            h('a'),
            h('b'),
            h('c')
        );
        let pins = script_pins(&script);
        assert_eq!(pins["a.bin"], h('a'));
        assert_eq!(pins["b.bin"], h('b'));
        assert_eq!(pins["c.bin"], h('c'));
        assert_eq!(pins.len(), 3);
        let list = hashes_txt(&format!("#x:\n{}  me.bin\nnot a line\n", h('D')));
        assert_eq!(list["me.bin"], h('d'));
    }
}
