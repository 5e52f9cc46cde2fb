//! Manifest errors: always the file, the line when known, and what to do.
//!
//! They are shown in the layout of every other error (`error: …`, then
//! `  hint: …`), with the `--> file:line:column` and the source line
//! underlined in between, as rustc does. [`ManifestError::render`] draws it
//! itself rather than through miette's graphical handler: that handler's
//! layout (`strata::manifest`, `× …`, box drawing, wrapping at 80 columns)
//! is unlike the rest of strata's errors. The [`Diagnostic`] impl stays for
//! library users that want miette's reports.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in `strata.toml` or a module file. Rendered by miette with the
/// offending source line underlined and a hint.
#[derive(Debug)]
pub struct ManifestError {
    /// The file the problem is in (relative to the project root when possible).
    pub file: PathBuf,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    /// The file's text and the span of the offending value, when known.
    pub location: Option<Box<(NamedSource<String>, SourceSpan, usize)>>,
    /// The line, when the error points into a line too long to show.
    line_hint: Option<usize>,
}

/// Longest source line (in bytes) shown under an error.
const MAX_SHOWN_LINE: usize = 1024;

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl ManifestError {
    /// An error about a whole file (no span).
    pub fn new(file: &Path, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: file.to_path_buf(),
            message: message.into(),
            help: None,
            location: None,
            line_hint: None,
        }
    }

    /// Adds a hint.
    pub fn help(mut self, help: impl Into<String>) -> ManifestError {
        self.help = Some(help.into());
        self
    }

    /// Points the error at `span` inside `source`.
    ///
    /// The source snippet is attached only when the offending line is short
    /// enough to show: a very long line (a minified or generated file) is
    /// named by line and column instead, which also keeps the renderer away
    /// from columns it cannot format.
    pub fn at(mut self, source: &str, span: std::ops::Range<usize>) -> ManifestError {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line = source[..start].matches('\n').count() + 1;
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        if line_end - line_start > MAX_SHOWN_LINE || end - start > MAX_SHOWN_LINE {
            let column = source[line_start..start].chars().count() + 1;
            self.message = format!("{} (line {line}, column {column})", self.message);
            self.location = None;
            self.line_hint = Some(line);
            return self;
        }
        let named = NamedSource::new(self.file.display().to_string(), source.to_string());
        self.location = Some(Box::new((named, (start, end - start).into(), line)));
        self
    }

    /// The 1-based line number, when the error points into the file.
    pub fn line(&self) -> Option<usize> {
        self.location.as_ref().map(|l| l.2).or(self.line_hint)
    }

    /// The error as strata prints it on stderr (no trailing newline):
    ///
    /// ```text
    /// error: module `a` depends on unknown module `bb`
    ///   --> modules/a.toml:5:12
    ///    |
    ///  5 | depends = ["bb"]
    ///    |            ^^^^ here
    ///   hint: did you mean `b`?
    /// ```
    ///
    /// `color` paints `error` (bold red), the gutter (bold blue) and the
    /// underline (bold red), as the rest of strata's output does.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = format!("{}: {}", paint("1;31", "error"), self.message);
        match &self.location {
            Some(loc) => {
                let (named, span, line) = (&loc.0, loc.1, loc.2);
                let source = named.inner().as_str();
                let start = span.offset().min(source.len());
                let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = source[start..]
                    .find('\n')
                    .map_or(source.len(), |i| start + i);
                let text = source[line_start..line_end].trim_end_matches('\r');
                let column = source[line_start..start].chars().count() + 1;
                // The underline covers the span's part of its first line, at
                // least one character (an empty span points between two).
                let end = (start + span.len()).min(line_start + text.len());
                let width = source[start.min(end)..end].chars().count().max(1);
                // Tabs stay tabs so the carets line up under them.
                let pad: String = source[line_start..start]
                    .chars()
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let number = line.to_string();
                let gutter = " ".repeat(number.len());
                let bar = paint("1;34", "|");
                out.push_str(&format!(
                    "\n{gutter}{} {}:{line}:{column}",
                    paint("1;34", "-->"),
                    self.file.display()
                ));
                out.push_str(&format!("\n{gutter} {bar}"));
                out.push_str(&format!("\n{} {bar} {text}", paint("1;34", &number)));
                out.push_str(&format!(
                    "\n{gutter} {bar} {pad}{}",
                    paint("1;31", &format!("{} here", "^".repeat(width)))
                ));
            }
            None => {
                let at = match self.line_hint {
                    Some(line) => format!("{}:{line}", self.file.display()),
                    None => self.file.display().to_string(),
                };
                out.push_str(&format!("\n {} {at}", paint("1;34", "-->")));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  hint: {help}"));
        }
        out
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line() {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Diagnostic for ManifestError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("strata::manifest"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.location
            .as_ref()
            .map(|l| &l.0 as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.location.as_ref().map(|l| {
            Box::new(std::iter::once(LabeledSpan::new_with_span(
                Some("here".to_string()),
                l.1,
            ))) as Box<dyn Iterator<Item = LabeledSpan>>
        })
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns a toml/serde error into a ManifestError with a "did you mean" hint
/// for unknown keys.
pub fn from_toml(file: &Path, source: &str, err: &toml::de::Error) -> ManifestError {
    let message = err.message().trim().to_string();
    let mut out = ManifestError::new(file, message.clone());
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let candidates: Vec<&str> = expected
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        out.message = format!("unknown key `{field}`");
        out.help = Some(match closest(field, candidates.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? (see docs/manifest.md)"),
            None => format!(
                "valid keys here: {}; see docs/manifest.md",
                candidates.join(", ")
            ),
        });
    }
    match err.span() {
        Some(span) => out.at(source, span),
        None => out,
    }
}
