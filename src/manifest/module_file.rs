//! Reading one `modules/<name>.toml`: the fields, the source (URLs with
//! a sha256, or a git commit), the patch list and the URL rules, each error
//! pointing into the file.

use super::error::{ManifestError, from_toml};
use super::source::{last_segment, resolve_url};
use super::valid_param_name;
use super::{Module, PatchFile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawModule {
    name: Spanned<String>,
    version: String,
    url: Option<Spanned<String>>,
    urls: Option<Vec<Spanned<String>>>,
    sha256: Option<Spanned<String>>,
    file: Option<String>,
    git: Option<Spanned<String>>,
    rev: Option<Spanned<String>>,
    submodules: Option<Spanned<bool>>,
    /// `source = "none"`: the module is made by its commands alone.
    source: Option<Spanned<String>>,
    #[serde(default = "default_strip")]
    strip_components: u32,
    patches: Option<Spanned<String>>,
    #[serde(default)]
    depends: Vec<Spanned<String>>,
    configure: Option<String>,
    build: Option<String>,
    install: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    keep: Vec<String>,
    #[serde(default)]
    host: bool,
    #[serde(default)]
    params: Vec<Spanned<String>>,
    #[serde(default)]
    download: Vec<Spanned<RawDownload>>,
    /// Fixed-output: path under `$STRATA_DESTDIR` → sha256.
    outputs: Option<Spanned<BTreeMap<String, String>>>,
    network: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownload {
    url: Option<String>,
    urls: Option<Vec<String>>,
    sha256: Option<String>,
    sha1: Option<String>,
    #[serde(rename = "sha1-from")]
    sha1_from: Option<String>,
    #[serde(rename = "vars-from")]
    vars_from: Option<String>,
    file: Option<String>,
    #[serde(default)]
    dest: String,
}

fn default_strip() -> u32 {
    1
}

/// A module file kept with its text, so later checks can point into it.
pub(super) struct Loaded {
    pub(super) module: Module,
    pub(super) source: String,
    pub(super) depends_spans: Vec<std::ops::Range<usize>>,
    pub(super) name_span: std::ops::Range<usize>,
}

pub(super) fn load_modules(root: &Path) -> Result<Vec<Loaded>, ManifestError> {
    let dir = root.join("modules");
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(ManifestError::new(
                Path::new("modules"),
                format!("cannot list: {e}"),
            ));
        }
    };
    files.sort();
    // Listed once: most modules have no patches, and two failed stats per
    // module showed in a no-op build of a thousand.
    let patch_names: std::collections::HashSet<std::ffi::OsString> =
        fs::read_dir(root.join("patches"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let source = fs::read_to_string(&path)
            .map_err(|e| ManifestError::new(&rel, format!("cannot read: {e}")))?;
        out.push(parse_module(root, &rel, source, &patch_names)?);
    }
    out.sort_by(|a, b| a.module.name.cmp(&b.module.name));
    Ok(out)
}

fn parse_module(
    root: &Path,
    rel: &Path,
    source: String,
    patch_names: &std::collections::HashSet<std::ffi::OsString>,
) -> Result<Loaded, ManifestError> {
    let raw: RawModule = toml::from_str(&source).map_err(|e| from_toml(rel, &source, &e))?;
    let err = |msg: String| ManifestError::new(rel, msg);
    let name = raw.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
    {
        return Err(err(format!("invalid module name `{name}`"))
            .at(&source, raw.name.span())
            .help("use letters, digits and - _ . + only"));
    }
    if raw.version.is_empty() || raw.version.contains('/') || raw.version.contains('@') {
        return Err(err(format!(
            "module `{name}` has an invalid version `{}`",
            raw.version
        ))
        .help(
            "a version may not be empty or hold `/` or `@` (`@` separates a module's variants)",
        ));
    }
    let super::source::Resolved {
        urls,
        sha256,
        file,
        git,
    } = super::source::resolve(
        root,
        rel,
        &source,
        &name,
        &super::source::RawSource {
            url: raw.url.as_ref(),
            urls: raw.urls.as_ref(),
            sha256: raw.sha256.as_ref(),
            file: raw.file.as_ref(),
            git: raw.git.as_ref(),
            rev: raw.rev.as_ref(),
            submodules: raw.submodules.as_ref(),
            none: raw.source.as_ref(),
        },
    )?;
    let sourceless = raw.source.is_some();
    if !sourceless && (file.is_empty() || file.contains('/') || file.starts_with('.')) {
        return Err(err(format!(
            "module `{name}`: cannot use `{file}` as the package file name"
        ))
        .help("set file = \"name.tar.gz\" in the module"));
    }
    let dir_name = format!("{name}-{}", raw.version);
    let (patches, patches_from) = resolve_patches(
        root,
        rel,
        &source,
        &dir_name,
        raw.patches.as_ref(),
        patch_names,
    )?;
    for key in raw.env.keys() {
        if key.is_empty() || key.contains('=') || key.starts_with("STRATA_") {
            return Err(
                err(format!("module `{name}`: env key `{key}` is not allowed"))
                    .help("STRATA_* variables are set by strata itself"),
            );
        }
    }
    for k in &raw.keep {
        if Path::new(k).is_absolute() || k.split('/').any(|c| c == "..") {
            return Err(err(format!(
                "module `{name}`: keep path `{k}` must be relative to the build dir"
            )));
        }
    }
    let mut params: Vec<String> = Vec::new();
    for p in &raw.params {
        if !valid_param_name(p.get_ref()) {
            return Err(err(format!(
                "module `{name}`: `{}` is not a valid parameter name",
                p.get_ref()
            ))
            .at(&source, p.span())
            .help("use letters, digits and _ (not starting with a digit): it becomes $STRATA_PARAM_<NAME>"));
        }
        if !params.contains(p.get_ref()) {
            params.push(p.get_ref().clone());
        }
    }
    params.sort();
    let mut downloads: Vec<super::Download> = Vec::new();
    for d in &raw.download {
        if sourceless {
            return Err(err(format!(
                "module `{name}` has source = \"none\" and a [[download]]"
            ))
            .at(&source, d.span())
            .help("a download is placed into a source tree: give the module a url or git source"));
        }
        let dl = parse_download(root, d.get_ref(), &file, &downloads).map_err(|(msg, hint)| {
            err(format!("module `{name}`: {msg}"))
                .at(&source, d.span())
                .help(hint)
        })?;
        downloads.push(dl);
    }
    let (outputs, network) = fixed_output(&raw, &name).map_err(|(msg, hint, span)| {
        let e = err(format!("module `{name}`: {msg}")).help(hint);
        match span {
            Some(s) => e.at(&source, s),
            None => e,
        }
    })?;
    let depends_spans = raw.depends.iter().map(|d| d.span()).collect();
    let module = Module {
        name,
        version: raw.version,
        urls,
        sha256,
        file,
        git,
        strip_components: raw.strip_components,
        patches,
        patches_from,
        depends: raw.depends.iter().map(|d| d.get_ref().clone()).collect(),
        configure: raw.configure,
        build: raw.build,
        install: raw.install,
        env: raw.env,
        keep: raw.keep,
        host: raw.host,
        params,
        downloads,
        outputs,
        network,
        overridden: None,
        manifest_path: rel.to_path_buf(),
    };
    Ok(Loaded {
        module,
        source,
        depends_spans,
        name_span: raw.name.span(),
    })
}

/// An error of the fixed-output fields: message, hint, where in the file.
type FixedError = (String, String, Option<std::ops::Range<usize>>);

/// Checks `outputs` and `network`: every output a plain relative path with
/// a 64-hex sha256 (lower-cased), `network = true` only with outputs, and
/// no `keep` beside them (a kept build-dir path would be an unpinned output).
fn fixed_output(
    raw: &RawModule,
    name: &str,
) -> Result<(BTreeMap<String, String>, bool), FixedError> {
    let network = raw.network.as_ref().is_some_and(|n| *n.get_ref());
    let mut outputs = BTreeMap::new();
    if let Some(o) = &raw.outputs {
        for (path, sum) in o.get_ref() {
            let bad_path = path.is_empty()
                || path.starts_with('/')
                || path.ends_with('/')
                || path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..");
            if bad_path {
                return Err((
                    format!("output `{path}` is not a plain path relative to $STRATA_DESTDIR"),
                    "name each file the install leaves in $STRATA_DESTDIR, e.g. \"blobs/me.bin\""
                        .into(),
                    Some(o.span()),
                ));
            }
            if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err((
                    format!("output `{path}` has `{sum}`, not a sha256 (64 hex digits)"),
                    "pin each output with the sha256 of the file the install must leave".into(),
                    Some(o.span()),
                ));
            }
            outputs.insert(path.clone(), sum.to_ascii_lowercase());
        }
        if outputs.is_empty() {
            return Err((
                "`outputs` is empty".into(),
                "pin each file the install leaves, or remove `outputs`".into(),
                Some(o.span()),
            ));
        }
        if !raw.keep.is_empty() {
            return Err((
                "a fixed-output module (`outputs`) cannot `keep` build-dir paths".into(),
                "its outputs are the pinned files alone: install what dependents need".into(),
                Some(o.span()),
            ));
        }
    }
    if network && outputs.is_empty() {
        return Err((
            format!("`network = true` needs `outputs` pinning every file {name} installs"),
            "only a step whose result is pinned may reach the network: add \
             outputs = { \"<path under $STRATA_DESTDIR>\" = \"<sha256>\" }, or declare the \
             download as a source or [[download]] (docs/manifest.md#fixed-output-modules)"
                .into(),
            raw.network.as_ref().map(|n| n.span()),
        ));
    }
    Ok((outputs, network))
}

/// Checks one `[[download]]`: one of url/urls, exactly one pin, a plain
/// file name unique in the module, and a `dest` inside the source tree.
/// Errors are (message, hint).
fn parse_download(
    root: &Path,
    d: &RawDownload,
    source_file: &str,
    earlier: &[super::Download],
) -> Result<super::Download, (String, String)> {
    let hex = |v: &str, len: usize| v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit());
    let own: Vec<&String> = d.url.iter().chain(d.urls.iter().flatten()).collect();
    if own.is_empty() {
        return Err((
            "a [[download]] has no url".into(),
            "add url = \"https://…\" (or urls = […]) to it".into(),
        ));
    }
    let mut urls = Vec::new();
    for u in own {
        if d.sha1_from.is_some() && u.starts_with('{') {
            // `{SITE}/…`: a URL from the source's variables, checked once filled.
            urls.push(u.clone());
            continue;
        }
        urls.push(
            resolve_url(root, u)
                .map_err(|m| (m, "a download is fetched like a source".to_string()))?,
        );
    }
    if let Some(p) = &d.sha1_from {
        return parse_source_pinned(d, p, urls);
    }
    if d.vars_from.is_some() {
        return Err((
            "vars-from without sha1-from".into(),
            "vars-from names the source file giving {NAME} in sha1-from, file and url".into(),
        ));
    }
    let pin = match (&d.sha256, &d.sha1) {
        (Some(h), None) if hex(h.trim(), 64) => super::Pin::Sha256(h.trim().to_ascii_lowercase()),
        (None, Some(h)) if hex(h.trim(), 40) => super::Pin::Sha1(h.trim().to_ascii_lowercase()),
        (Some(_), Some(_)) => {
            return Err((
                "a [[download]] has both sha256 and sha1".into(),
                "keep one pin: sha256 when you have it, else upstream's sha1".into(),
            ));
        }
        (None, None) => {
            return Err((
                "a [[download]] has no pin".into(),
                "every download is verified: add sha256 = \"<64 hex>\", or sha1 = \"<40 hex>\" \
                 where upstream pins only by SHA-1 (strata then records the sha256 in strata.lock)"
                    .into(),
            ));
        }
        (Some(h), None) | (None, Some(h)) => {
            return Err((
                format!("download pin `{h}` is not a sha256 or a sha1"),
                "copy the full sum (`sha256sum FILE`, `sha1sum FILE`)".into(),
            ));
        }
    };
    let file = match &d.file {
        Some(f) => f.clone(),
        None => last_segment(urls.last().expect("at least one url")),
    };
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return Err((
            format!("cannot use `{file}` as a download's file name"),
            "set file = \"name.tar.gz\" in the [[download]]".into(),
        ));
    }
    if file == source_file || earlier.iter().any(|e| e.file == file) {
        return Err((
            format!("the file `{file}` is downloaded twice"),
            "each download of a module needs its own file name".into(),
        ));
    }
    let dest = d.dest.trim_matches('/').to_string();
    if d.dest.starts_with('/')
        || dest
            .split('/')
            .any(|c| c == ".." || c == "." || c.eq_ignore_ascii_case(".git"))
        || dest.contains("//")
    {
        return Err((
            format!(
                "dest `{}` of the download {file} leaves the source tree",
                d.dest
            ),
            "dest is a directory inside the source tree, e.g. \"sources\"".into(),
        ));
    }
    Ok(super::Download {
        urls,
        file,
        pin,
        dest,
    })
}

/// A relative path inside the source tree: no `..`, `.`, `.git`, `//`.
fn inside_tree(p: &str) -> bool {
    !p.starts_with('/')
        && !p.contains("//")
        && !p
            .split('/')
            .any(|c| c == ".." || c == "." || c.eq_ignore_ascii_case(".git"))
}

/// A `[[download]]` pinned by a sum file of the module's own source
/// (`sha1-from`): its file name and URLs may use `{NAME}` placeholders,
/// filled in when the source is read (see `crate::source_pins`).
fn parse_source_pinned(
    d: &RawDownload,
    path: &str,
    urls: Vec<String>,
) -> Result<super::Download, (String, String)> {
    if d.sha256.is_some() || d.sha1.is_some() {
        return Err((
            "a [[download]] has sha1-from and another pin".into(),
            "sha1-from reads the pin from the source: drop sha256/sha1".into(),
        ));
    }
    let vars = d.vars_from.as_deref().map(|v| v.trim_end_matches('/'));
    let dest = d.dest.trim_matches('/').to_string();
    for (what, p) in [("sha1-from", path), ("vars-from", vars.unwrap_or("x"))] {
        if p.is_empty() || !inside_tree(p) {
            return Err((
                format!("{what} `{p}` is not a path inside the source tree"),
                "give a relative path such as \"util/crossgcc/sum/gmp-*.cksum\"".into(),
            ));
        }
    }
    if !inside_tree(&dest) || d.dest.starts_with('/') {
        return Err((
            format!("dest `{}` of a download leaves the source tree", d.dest),
            "dest is a directory inside the source tree, e.g. \"sources\"".into(),
        ));
    }
    Ok(super::Download {
        urls,
        // Empty: the sum file's name without its last extension.
        file: d.file.clone().unwrap_or_default(),
        pin: super::Pin::Sha1From(super::SourcePin {
            path: path.to_string(),
            vars_from: vars.map(str::to_string),
        }),
        dest,
    })
}

fn resolve_patches(
    root: &Path,
    rel: &Path,
    source: &str,
    dir_name: &str,
    spec: Option<&Spanned<String>>,
    patch_names: &std::collections::HashSet<std::ffi::OsString>,
) -> Result<(Vec<PatchFile>, Option<PathBuf>), ManifestError> {
    let listed = |name: String| patch_names.contains(std::ffi::OsStr::new(&name));
    let (path, explicit) = match spec {
        Some(s) => (s.get_ref().trim_end_matches('/').to_string(), Some(s)),
        None => {
            let dir = format!("patches/{dir_name}");
            if listed(dir_name.to_string()) && root.join(&dir).is_dir() {
                (dir, None)
            } else {
                let file = format!("patches/{dir_name}.patch");
                if listed(format!("{dir_name}.patch")) && root.join(&file).is_file() {
                    (file, None)
                } else {
                    return Ok((Vec::new(), None));
                }
            }
        }
    };
    let abs = root.join(&path);
    let fail = |msg: String| {
        let e = ManifestError::new(rel, msg);
        match explicit {
            Some(s) => e.at(source, s.span()),
            None => e,
        }
    };
    if abs.is_file() {
        let file = PatchFile {
            rel: path,
            abs: abs.clone(),
            strip: 1,
        };
        return Ok((vec![file], Some(abs)));
    }
    if !abs.is_dir() {
        return Err(fail(format!("patches `{path}` does not exist"))
            .help("point `patches` at a directory of *.patch files or at one .patch file"));
    }
    let series = abs.join("series");
    let mut names: Vec<(String, usize)> = Vec::new();
    if series.is_file() {
        let text = fs::read_to_string(&series)
            .map_err(|e| fail(format!("cannot read {path}/series: {e}")))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut parts = line.split_whitespace();
            let Some(name) = parts.next() else { continue };
            let mut strip = 1;
            while let Some(opt) = parts.next() {
                // quilt writes `-p0`, `-p1`…; `-p N` is accepted too.
                let n = match opt.strip_prefix("-p") {
                    Some("") => parts.next().and_then(|n| n.parse().ok()),
                    Some(n) => n.parse().ok(),
                    None => None,
                };
                let Some(n) = n else {
                    return Err(fail(format!(
                        "{path}/series: option `{opt}` for {name} is not supported"
                    ))
                    .help("a series line is a patch name and optionally -pN; strata never reverses or fuzzes a patch"));
                };
                strip = n;
            }
            names.push((name.to_string(), strip));
        }
    } else {
        let entries = fs::read_dir(&abs).map_err(|e| fail(format!("cannot list {path}: {e}")))?;
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".patch") && e.path().is_file() {
                names.push((n, 1));
            }
        }
        names.sort();
    }
    let mut out = Vec::new();
    for (n, strip) in names {
        let p = abs.join(&n);
        if !p.is_file() {
            return Err(fail(format!(
                "{path}/series names {n}, which does not exist"
            )));
        }
        out.push(PatchFile {
            rel: format!("{path}/{n}"),
            abs: p,
            strip,
        });
    }
    Ok((out, Some(abs)))
}
