//! Where a module's source comes from: exactly one of a verified download
//! (`url`/`urls` + `sha256`) or a commit of a git repository (`git` + `rev`).
//!
//! The decision a reader may question: `rev` must be a full 40-hex commit id.
//! Branch and tag names are refused, even though git could resolve them,
//! because a pin must not move: the same manifest has to mean the same tree
//! tomorrow, on another machine, and in the cache keys. The repository's
//! identity (its URL without scheme, credentials, trailing `/` or `.git`) is
//! kept apart from the URL used to fetch, so that `https://host/x.git` and
//! `git@host:x` name the same repository in keys.

use super::error::ManifestError;
use std::path::Path;
use toml::Spanned;

/// `git = "URL"`, `rev = "<40 hex>"`, `submodules = bool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The URL handed to `git fetch` (a relative `file://` path resolved
    /// against the project root).
    pub url: String,
    /// The repository's identity in keys: the URL as written, without scheme,
    /// user, trailing `/` or `.git`, host lower-cased.
    pub identity: String,
    /// The pinned commit id, lower-case.
    pub rev: String,
    /// Whether submodules (at the commits the tree pins) are archived too.
    pub submodules: bool,
}

/// The source keys of a module file, as parsed.
pub(super) struct RawSource<'a> {
    pub url: Option<&'a Spanned<String>>,
    pub urls: Option<&'a Vec<Spanned<String>>>,
    pub sha256: Option<&'a Spanned<String>>,
    pub file: Option<&'a String>,
    pub git: Option<&'a Spanned<String>>,
    pub rev: Option<&'a Spanned<String>>,
    pub submodules: Option<&'a Spanned<bool>>,
    /// `source = "none"`.
    pub none: Option<&'a Spanned<String>>,
}

/// The resolved source fields of a [`super::Module`].
pub(super) struct Resolved {
    pub urls: Vec<String>,
    pub sha256: String,
    pub file: String,
    pub git: Option<GitSource>,
}

/// Checks that exactly one source kind is given and resolves it.
pub(super) fn resolve(
    root: &Path,
    rel: &Path,
    text: &str,
    name: &str,
    raw: &RawSource<'_>,
) -> Result<Resolved, ManifestError> {
    let err = |msg: String| ManifestError::new(rel, msg);
    let sha256 = match raw.sha256 {
        None => None,
        Some(s) => {
            let v = s.get_ref().trim().to_ascii_lowercase();
            if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(format!(
                    "module `{name}`: sha256 must be 64 hexadecimal digits, got `{}`",
                    s.get_ref()
                ))
                .at(text, s.span())
                .help("copy the full sum printed by `sha256sum FILE`"));
            }
            Some(v)
        }
    };
    let has_url = raw.url.is_some() || raw.urls.is_some();
    if let Some(none) = raw.none {
        if none.get_ref() != "none" {
            return Err(err(format!(
                "module `{name}`: source = \"{}\" is not known",
                none.get_ref()
            ))
            .at(text, none.span())
            .help("the only value is \"none\" (a module made by its commands alone); a download is url/urls + sha256, a repository git + rev"));
        }
        if has_url || raw.git.is_some() || sha256.is_some() || raw.file.is_some() {
            return Err(err(format!(
                "module `{name}` has source = \"none\" and a url, git, sha256 or file"
            ))
            .at(text, none.span())
            .help("remove source = \"none\", or the url/git keys"));
        }
        return Ok(Resolved {
            urls: Vec::new(),
            sha256: String::new(),
            file: String::new(),
            git: None,
        });
    }
    match (raw.git, has_url) {
        (Some(g), true) => {
            return Err(err(format!(
                "module `{name}` has both a git source and url/urls"
            ))
            .at(text, g.span())
            .help(
                "a module has exactly one source: keep `git` + `rev` (strata archives the commit) \
                 or `url`/`urls` + `sha256` (a release tarball), and remove the other",
            ));
        }
        (Some(g), false) => {
            let git = resolve_git(root, rel, text, name, g, raw)?;
            if let Some(f) = raw.file {
                return Err(err(format!(
                    "module `{name}`: `file = \"{f}\"` cannot be used with a git source"
                ))
                .help(format!(
                    "the package of a git module is always named {name}-<rev>.tar.zst; remove `file`"
                )));
            }
            let file = format!("{name}-{}.tar.zst", git.rev);
            return Ok(Resolved {
                urls: Vec::new(),
                sha256: sha256.unwrap_or_default(),
                file,
                git: Some(git),
            });
        }
        (None, false) => {
            if let Some(r) = raw.rev {
                return Err(err(format!("module `{name}` has `rev` but no `git`"))
                    .at(text, r.span())
                    .help("add git = \"<repository URL>\" next to rev"));
            }
            return Err(err(format!("module `{name}` has no source")).help(
                "add url = \"https://…\" (or urls = […]) with sha256 = \"<64 hex digits>\", \
                 or git = \"<repository URL>\" with rev = \"<40-hex commit id>\", \
                 or source = \"none\" for a module its commands make alone",
            ));
        }
        (None, true) => {}
    }
    for (key, span) in [
        ("rev", raw.rev.map(|r| r.span())),
        ("submodules", raw.submodules.map(|s| s.span())),
    ] {
        if let Some(span) = span {
            return Err(err(format!(
                "module `{name}`: `{key}` only applies to git sources"
            ))
            .at(text, span)
            .help("remove it, or replace url/urls with git = \"<repository URL>\""));
        }
    }
    let Some(sha256) = sha256 else {
        return Err(err(format!("module `{name}` has no sha256")).help(
            "every download is verified: add sha256 = \"<64 hex digits>\" (sha256sum FILE prints it)",
        ));
    };
    let mut specs: Vec<&Spanned<String>> = raw.url.into_iter().collect();
    specs.extend(raw.urls.into_iter().flatten());
    if specs.is_empty() {
        return Err(err(format!("module `{name}` has no url"))
            .help("add url = \"https://…\" or urls = [\"…\", \"…\"]"));
    }
    let mut urls = Vec::new();
    for u in &specs {
        urls.push(resolve_url(root, u.get_ref()).map_err(|msg| err(msg).at(text, u.span()))?);
    }
    let file = match raw.file {
        Some(f) => f.clone(),
        None => last_segment(urls.last().expect("at least one url")),
    };
    Ok(Resolved {
        urls,
        sha256,
        file,
        git: None,
    })
}

fn resolve_git(
    root: &Path,
    rel: &Path,
    text: &str,
    name: &str,
    g: &Spanned<String>,
    raw: &RawSource<'_>,
) -> Result<GitSource, ManifestError> {
    let err = |msg: String| ManifestError::new(rel, msg);
    let Some(rev) = raw.rev else {
        return Err(err(format!("module `{name}` has `git` but no `rev`"))
            .at(text, g.span())
            .help(
                "pin the commit: rev = \"<40-hex commit id>\" (`git ls-remote URL BRANCH` prints it)",
            ));
    };
    let r = rev.get_ref().trim();
    if r.len() != 40 || !r.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!(
            "module `{name}`: rev must be a full 40-hex-digit commit id, got `{}`",
            rev.get_ref()
        ))
        .at(text, rev.span())
        .help(
            "branch and tag names (and abbreviated ids) are refused because a pin must not move; \
             `git ls-remote URL REF` or `git rev-parse REF^{commit}` prints the full id",
        ));
    }
    let written = g.get_ref().trim();
    let url = resolve_git_url(root, written).map_err(|m| {
        err(format!("module `{name}`: {m}"))
            .at(text, g.span())
            .help(
                "write the repository's URL as git clones it, e.g. https://host/org/repo.git or \
                 git@host:org/repo.git; strata never hands git an option, a transport helper \
                 (`ext::`, `fd::`, `<helper>::`) or a bare local path",
            )
    })?;
    Ok(GitSource {
        url,
        identity: identity(written),
        rev: r.to_ascii_lowercase(),
        submodules: raw.submodules.is_some_and(|s| *s.get_ref()),
    })
}

/// The URL given to git: `file://` relative to the project root unless
/// absolute; http(s), ssh, git and scp-like `user@host:path` as written.
fn resolve_git_url(root: &Path, url: &str) -> Result<String, String> {
    check_git_url(url)?;
    if url.starts_with("file://") {
        return resolve_url(root, url);
    }
    Ok(url.to_string())
}

/// The forms of git URL strata hands to `git`, as messages list them.
pub const GIT_URL_FORMS: &str = "https://, http://, ssh://, git://, file:// or user@host:path";

/// Checks that `url` is one of the forms strata lets `git` fetch from
/// ([`GIT_URL_FORMS`]; `git+ssh://` is ssh). Everything else is refused,
/// above all what git would read as something other than a repository: a
/// leading `-` (an option such as `--upload-pack=CMD`), a transport helper
/// `<helper>::<address>` (`ext::` runs a command), a host starting with `-`
/// (an ssh option), and control characters.
pub fn check_git_url(url: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "unsupported git URL `{url}`: {why}; use {GIT_URL_FORMS}"
        ))
    };
    if url.starts_with('-') {
        return refuse("it starts with `-`, which git would read as an option");
    }
    if url.chars().any(char::is_control) {
        return refuse("it holds a control character");
    }
    if let Some(i) = url.find("::")
        && !url[..i].contains('/')
    {
        return refuse("`<helper>::` runs a git transport helper (`ext::` runs any command)");
    }
    let schemes = [
        "https://",
        "http://",
        "ssh://",
        "git+ssh://",
        "git://",
        "file://",
    ];
    if let Some(rest) = schemes.iter().find_map(|s| url.strip_prefix(s)) {
        let authority = rest.split('/').next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or(authority);
        if host.starts_with('-') || authority.starts_with('-') {
            return refuse("its host starts with `-`, which ssh would read as an option");
        }
        return Ok(());
    }
    if is_scp_like(url) {
        return Ok(());
    }
    refuse("not a repository URL strata fetches from")
}

/// `[user@]host:path`, as git reads it: a colon before any slash, a host
/// that is not an option, and a path.
fn is_scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((login, path)) => {
            let host = login.rsplit('@').next().unwrap_or(login);
            !host.is_empty()
                && !login.contains('/')
                && !login.starts_with('-')
                && !host.starts_with('-')
                && !path.is_empty()
                && !path.starts_with(':')
                && !path.starts_with("//")
        }
        None => false,
    }
}

/// The repository identity: scheme, credentials and the trailing `/` or
/// `.git` removed, host lower-cased; scp-like `git@host:path` reads as
/// `host/path`. Relative `file://` paths stay relative, so no absolute path
/// of the project enters a key.
pub(super) fn identity(url: &str) -> String {
    let (host_path, is_file) = match url.split_once("://") {
        Some((scheme, rest)) => (rest.to_string(), scheme == "file"),
        None => match url.split_once(':') {
            Some((host, path)) => (format!("{host}/{}", path.trim_start_matches('/')), false),
            None => (url.to_string(), false),
        },
    };
    let mut s = host_path.trim_end_matches('/').to_string();
    if let Some(stripped) = s.strip_suffix(".git") {
        s = stripped.trim_end_matches('/').to_string();
    }
    if is_file {
        return format!("file:{s}");
    }
    let (host, path) = s.split_once('/').unwrap_or((&s, ""));
    let host = host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
    if path.is_empty() {
        host
    } else {
        format!("{host}/{path}")
    }
}

/// Resolves a URL: `http(s)://` as is; `file://` relative to the project root
/// unless its path is absolute.
pub(super) fn resolve_url(root: &Path, url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(url.to_string());
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(url.to_string());
        }
        let joined = root.join(path);
        let mut s = format!("file://{}", joined.display());
        if path.ends_with('/') && !s.ends_with('/') {
            s.push('/');
        }
        return Ok(s);
    }
    Err(format!(
        "unsupported URL `{url}`: use http://, https:// or file://"
    ))
}

pub(super) fn last_segment(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    no_query
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_repository_has_one_identity() {
        let want = "github.com/linuxboot/heads";
        for url in [
            "https://github.com/linuxboot/heads.git",
            "https://GitHub.com/linuxboot/heads/",
            "https://user@github.com/linuxboot/heads",
            "ssh://git@github.com/linuxboot/heads.git",
            "git@github.com:linuxboot/heads.git",
        ] {
            assert_eq!(identity(url), want, "{url}");
        }
        assert_eq!(identity("file://repos/x.git"), "file:repos/x");
        assert_ne!(identity("https://h/a/b"), identity("https://h/a/c"));
    }

    #[test]
    fn git_urls() {
        let root = Path::new("/p");
        assert_eq!(
            resolve_git_url(root, "file://repos/x.git").unwrap(),
            "file:///p/repos/x.git"
        );
        assert!(resolve_git_url(root, "git@github.com:a/b").is_ok());
        assert!(resolve_git_url(root, "ftp://h/x").is_err());
        assert!(resolve_git_url(root, "just-a-name").is_err());
        assert!(resolve_git_url(root, "ssh://git@h/x").is_ok());
        for bad in [
            "ext::sh -c touch% PWNED",
            "fd::3",
            "foo::https://h/x",
            "--upload-pack=touch x",
            "-oProxyCommand=x:y",
            "git@-oProxyCommand=x:y",
            "ssh://-oProxyCommand=x/y",
            "ssh://u@-oProxyCommand=x/y",
            "https://h/x\ny",
            "/abs/path",
        ] {
            let e = resolve_git_url(root, bad).unwrap_err();
            assert!(e.contains(GIT_URL_FORMS), "{bad}: {e}");
        }
    }

    #[test]
    fn last_segment_ignores_query() {
        assert_eq!(
            last_segment("https://h/a/zlib-1.tar.gz?x=1"),
            "zlib-1.tar.gz"
        );
        assert_eq!(last_segment("file:///m/b.tar.xz"), "b.tar.xz");
    }

    #[test]
    fn relative_file_urls_are_from_root() {
        let r = resolve_url(Path::new("/p"), "file://mirror/").unwrap();
        assert_eq!(r, "file:///p/mirror/");
        assert!(resolve_url(Path::new("/p"), "ftp://x").is_err());
    }
}
