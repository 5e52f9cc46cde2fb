//! `strata completions SHELL` and `strata man`: generated from the clap
//! definition itself, so they can never disagree with the binary.

use super::{Cli, Failure};
use clap::CommandFactory;

/// Shell completions for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut buf);
    crate::out!("{}", String::from_utf8_lossy(&buf));
    Ok(())
}

/// The man page (roff) on stdout: `strata man > strata.1`.
///
/// One page: clap_mangen's own subcommand section names a page per
/// subcommand (`strata-build(1)`), which strata does not ship, so the
/// commands are listed here instead (with their own subcommands), followed
/// by EXIT STATUS and ENVIRONMENT as README.md documents them.
pub fn man() -> Result<(), Failure> {
    let cmd = Cli::command();
    let page = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    let io = |e: std::io::Error| Failure::Other(e.into());
    page.render_title(&mut buf).map_err(io)?;
    page.render_name_section(&mut buf).map_err(io)?;
    page.render_synopsis_section(&mut buf).map_err(io)?;
    page.render_description_section(&mut buf).map_err(io)?;
    page.render_options_section(&mut buf).map_err(io)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    text.push_str(&commands_section(&cmd));
    text.push_str(EXIT_AND_ENVIRONMENT);
    let mut version = Vec::new();
    page.render_version_section(&mut version).map_err(io)?;
    text.push_str(&String::from_utf8_lossy(&version));
    crate::out!("{text}");
    Ok(())
}

/// `.SH COMMANDS`: every visible subcommand, nested ones as
/// `strata cache ls`, each with its one-line help.
fn commands_section(cmd: &clap::Command) -> String {
    fn walk(out: &mut String, prefix: &str, cmd: &clap::Command) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix} {}", sub.get_name());
            if sub.get_subcommands().any(|s| !s.is_hide_set()) {
                walk(out, &name, sub);
                continue;
            }
            out.push_str(&format!(".TP\n\\fB{}\\fR\n", roff_escape(&name)));
            if let Some(about) = sub.get_about() {
                out.push_str(&roff_escape(&about.to_string()));
                out.push('\n');
            }
        }
    }
    let mut out = String::from(".SH COMMANDS\n");
    walk(&mut out, "strata", cmd);
    out
}

/// Text safe in a roff line: backslashes escaped, no line starting with a
/// control character.
fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e")
        .lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The exit codes of [`super`] and the environment README.md lists.
const EXIT_AND_ENVIRONMENT: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
The work failed: a build, fetch, restore or check (build \-\-check: a module not reproducible or not checkable).
.TP
\fB2\fR
Bad usage, manifest or configuration: an unknown flag or name, a manifest error, a missing setting.
.TP
\fB130\fR
Interrupted (Ctrl\-C, SIGTERM): running commands are stopped, no stamp is written.
.TP
\fB141\fR
Standard output or error was closed (strata build | head): the run stops quietly, as on SIGPIPE.
.SH ENVIRONMENT
.TP
\fBSTRATA_FETCH_TIMEOUT\fR
Seconds per download request (default 30).
.TP
\fBSTRATA_FETCH_ATTEMPTS\fR
Tries per URL for transient errors (default 3).
.TP
\fBSTRATA_REMOTE_TIMEOUT\fR
Seconds a remote cache gets to connect and to answer (default 3).
.TP
\fBSTRATA_RESTORE_MODE\fR
auto, copy or archive: how local restores place files.
.TP
\fBHTTPS_PROXY\fR, \fBHTTP_PROXY\fR, \fBNO_PROXY\fR
Proxies for downloads and remote caches alike.
.TP
\fBSTRATA_MAKE\fR
The GNU make strata import heads evaluates with (default make).
.TP
\fBSTRATA_IMPORT_TIMEOUT\fR
Seconds one board's evaluation may take in strata import heads (default 300).
.TP
\fBXDG_CACHE_HOME\fR
The local artifact cache is $XDG_CACHE_HOME/strata (default ~/.cache/strata) unless [cache] dir is set.
.TP
\fBNO_COLOR\fR
Set and not empty: no colours with \-\-color auto.
"#;
