//! Heads's embedded-controller firmware (`modules/dasharo-ec`): besides the
//! module's own build, its file holds three rules the variables do not
//! carry. `$(build)/$(<m>_dir)/ec.rom` copies the EC build's
//! `build/<model>/<version>/ec.rom` to a stable name and pads it
//! (`truncate --size=128KiB`); `$(build)/$(coreboot_base_dir)/ec.rom`
//! copies it into coreboot's tree; coreboot's `.configured` waits for that
//! copy (coreboot's config names it, `CONFIG_EC_DASHARO_EC_UPDATE_FILE`, so
//! its bytes end up in the ROM). The translation: the EC module's build
//! ends with the copy and the padding, its install stages the padded ROM
//! under [`EC_DIR`], and the board's coreboot (which depends on it, as
//! Heads's `_depends` says) copies it into its Heads layout tree before its
//! configure. The facts (the build's output path from the module's
//! `BOARD=` make argument, the size from the rule's `truncate`) are read
//! from the tree; the commands are strata's own.

use super::model::ModuleOut;
use super::scan::FileScan;
use std::collections::{BTreeMap, BTreeSet};

/// Where an EC module stages its padded ROM in its destdir (and so in the
/// sysroot of the coreboot that depends on it).
pub const EC_DIR: &str = "heads-ec";

/// One EC module's padded-ROM rule, as the tree writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcRule {
    /// The size `truncate` pads to (`128KiB`).
    pub size: String,
}

/// The EC rule of module `m` in its module file's text: a rule
/// `$(build)/$(<m>_dir)/ec.rom` whose recipe copies the EC build's
/// `…/build/…/ec.rom` and pads it with `truncate`.
pub fn ec_rule(text: &str, m: &str) -> Option<EcRule> {
    let target = format!("$(build)/$({m}_dir)/ec.rom");
    let from = format!("$(build)/$({m}_dir)/build/");
    let mut lines = text.lines().skip_while(|l| {
        l.split_once(':')
            .is_none_or(|(t, rest)| t.trim() != target || rest.starts_with('='))
    });
    lines.next()?;
    let recipe: Vec<&str> = lines
        .take_while(|l| l.starts_with('\t'))
        .map(str::trim)
        .collect();
    let copies = recipe
        .iter()
        .any(|l| l.starts_with("cp ") && l.contains(&from) && l.contains("/ec.rom"));
    let size = recipe.iter().find_map(|l| {
        let rest = l.strip_prefix("truncate ")?;
        let rest = rest
            .strip_prefix("--size=")
            .or_else(|| rest.strip_prefix("-s "))?;
        let size = rest.split_whitespace().next()?;
        size.chars()
            .all(|c| c.is_ascii_alphanumeric())
            .then(|| size.to_string())
    })?;
    copies.then_some(EcRule { size })
}

/// The EC modules of one board: Heads name → its rule, for each module
/// whose file holds one (scanned once per file into `scans`).
pub fn ec_modules<'a>(
    heads: &std::path::Path,
    modules: impl Iterator<Item = (&'a str, String)>,
    scans: &mut BTreeMap<String, FileScan>,
) -> BTreeMap<String, EcRule> {
    let mut out = BTreeMap::new();
    for (n, file) in modules {
        let scan = scans
            .entry(file.clone())
            .or_insert_with(|| super::scan::scan_file(&heads.join("modules").join(&file)));
        let named = scan
            .rules
            .iter()
            .any(|(_, t)| t == &format!("$(build)/$({n}_dir)/ec.rom"));
        if !named {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(heads.join("modules").join(&file)) else {
            continue;
        };
        if let Some(r) = ec_rule(&text, n) {
            out.insert(n.to_string(), r);
        }
    }
    out
}

/// The EC build's output dir, from the module's make arguments
/// (`BOARD=novacustom/v540tu` → `build/novacustom/v540tu`).
fn build_subdir(target: &str) -> Option<String> {
    let b = target
        .split_whitespace()
        .find_map(|w| w.strip_prefix("BOARD="))?;
    let ok = !b.is_empty()
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
        && !b.split('/').any(|p| p == "..");
    ok.then(|| format!("build/{b}"))
}

/// Is this a report note for one of the EC file's three rules?
fn ec_note(n: &str) -> bool {
    n.contains("/ec.rom` is Heads-specific")
        || n.contains("rule `$(build)/$(coreboot_dir)/.configured` is Heads-specific")
}

/// Wires one module on one board: an EC module builds and stages its
/// padded ROM; the board's coreboot (`layout`) depending on an EC module
/// copies it into its tree before configure. `m` is the module's evaluated
/// variables, `ec` the board's EC modules, `arch` the board's.
pub fn wire(
    out: &mut ModuleOut,
    notes: &mut BTreeSet<String>,
    done: &mut Vec<String>,
    m: &BTreeMap<String, String>,
    ec: &BTreeMap<String, EcRule>,
    layout: bool,
    arch: &str,
) {
    if let Some(rule) = ec.get(&out.heads_name) {
        let target = m.get("target").map(String::as_str).unwrap_or("");
        let Some(sub) = build_subdir(target) else {
            notes.insert(format!(
                "the EC ROM rule's source dir comes from `BOARD=` in {}_target, which has none; not translated",
                out.heads_name
            ));
            return;
        };
        out.build.push_str(&format!(
            "{{ cp \"$STRATA_BUILD_DIR\"/{sub}/*/ec.rom \"$STRATA_BUILD_DIR/ec.rom\" \
             && truncate --size={} \"$STRATA_BUILD_DIR/ec.rom\"; }} || exit 1\n",
            rule.size
        ));
        out.install.push_str(&format!(
            "mkdir -p \"$STRATA_DESTDIR/{EC_DIR}\"\n\
             cp -a \"$STRATA_BUILD_DIR/ec.rom\" \"$STRATA_DESTDIR/{EC_DIR}/ec.rom\"\n"
        ));
        notes.retain(|n| !ec_note(n));
        done.push(format!(
            "its ec.rom rule (build/<its BOARD= argument>/*/ec.rom padded to {}) → build, staged as \
             {EC_DIR}/ec.rom; the copy into coreboot's tree → the board's coreboot configure",
            rule.size
        ));
        return;
    }
    if !layout {
        return;
    }
    let deps: Vec<&str> = m
        .get("depends")
        .map(|d| d.split_whitespace().collect())
        .unwrap_or_default();
    if !deps.iter().any(|d| ec.contains_key(*d)) {
        return;
    }
    let base = m.get("base_dir").map(|s| s.trim()).unwrap_or("");
    let tree = format!("$STRATA_BUILD_DIR/.heads/build/{arch}/{base}");
    let needle = format!("cd \"{tree}/$STRATA_PARAM_BOARD\"\nset +eu\n");
    let Some(at) = out.configure.find(&needle) else {
        notes.insert(
            "depends on an EC module whose ec.rom Heads copies into its tree; its configure has no Heads layout to copy it into: not translated".to_string(),
        );
        return;
    };
    out.configure.insert_str(
        at,
        &format!(
            "rm -f \"{tree}/ec.rom\"\ncp -a \"$STRATA_SYSROOT/{EC_DIR}/ec.rom\" \"{tree}/ec.rom\"\n"
        ),
    );
    done.push(format!(
        "the EC's ec.rom (its {EC_DIR}/ec.rom) copied into build/{arch}/{base}/ec.rom before configure"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "ifeq \"$(CONFIG_X_EC)\" \"y\"\nmodules-y += x-ec\nx-ec_dir := x-ec-1-$(BOARD)\n\
        x-ec_target := BOARD=vendor/m1\n\
        $(build)/$(x-ec_dir)/ec.rom: $(build)/$(x-ec_dir)/.build\n\
        \tcp $(build)/$(x-ec_dir)/build/vendor/$(MODEL)/*/ec.rom $@\n\
        \ttruncate --size=128KiB $@\n\
        $(build)/$(coreboot_base_dir)/ec.rom: $(build)/$(x-ec_dir)/ec.rom FORCE\n\
        \tcp a b\nendif\n";

    #[test]
    fn the_rule_and_its_size_are_read() {
        assert_eq!(
            ec_rule(FILE, "x-ec"),
            Some(EcRule {
                size: "128KiB".into()
            })
        );
        assert_eq!(ec_rule(FILE, "y-ec"), None);
        // No padding, no rule: left to the report.
        assert_eq!(ec_rule(&FILE.replace("\ttruncate", "\techo"), "x-ec"), None);
    }

    #[test]
    fn the_build_dir_comes_from_the_board_argument() {
        assert_eq!(
            build_subdir("BOARD=novacustom/v540tu").as_deref(),
            Some("build/novacustom/v540tu")
        );
        assert_eq!(build_subdir("all"), None);
        assert_eq!(build_subdir("BOARD=../x"), None);
        assert_eq!(build_subdir("BOARD=$(x)"), None);
    }
}
