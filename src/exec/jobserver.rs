//! One GNU make jobserver for the whole build, so that `-j N` is the total
//! number of jobs across every module and every nested `make`, `cargo` or
//! other jobserver client, instead of N per module.
//!
//! strata holds one token per running module: the first module runs on the
//! process's implicit token, every further one waits for a token from the
//! pool. A command inherits its module's token as the implicit token of the
//! `make` it runs, exactly as a recursive make hands one to a sub-make.
//!
//! The decision a reader would question: the tokens travel as inherited pipe
//! descriptors (`--jobserver-auth=R,W`), not as a named fifo. The `jobserver`
//! crate creates pipes only, and the pipe form is the one every GNU make from
//! 4.2 on (4.4 included) and cargo read, whereas make 4.3, still the default
//! on current distributions, rejects `fifo:PATH`. When strata runs under a
//! make that uses the fifo form, it joins it and passes the fifo on.

use jobserver::Client;
use std::ffi::OsString;
use std::io;
use std::process::Command;
use std::sync::OnceLock;

/// One job slot from the pool, given back when dropped.
pub type Token = jobserver::Acquired;

/// A jobserver found in strata's own environment (strata run from a
/// Makefile recipe as `+strata build`), with the `-j` its parent announced.
struct Inherited {
    client: Client,
    jobs: Option<usize>,
}

/// What strata's environment said about a parent jobserver.
enum Parent {
    None,
    Usable(Inherited),
    /// `MAKEFLAGS` names a jobserver strata cannot use (why).
    Unusable(String),
}

fn inherited_slot() -> &'static OnceLock<Parent> {
    static S: OnceLock<Parent> = OnceLock::new();
    &S
}

/// Takes over the jobserver descriptors strata was started with, if any.
/// Call first thing in `main`, before any other file is opened, so that the
/// descriptor numbers named in `MAKEFLAGS` are still the parent's.
pub fn capture_inherited() {
    inherited_slot().get_or_init(|| {
        let flags = std::env::var("MAKEFLAGS").ok();
        // SAFETY: called at start-up, before strata opens any descriptor, so
        // the numbers in MAKEFLAGS can only be the parent's; `check_pipe`
        // refuses descriptors that are not pipes or fifos.
        let found = unsafe { Client::from_env_ext(true) };
        match found.client {
            Ok(client) => Parent::Usable(Inherited {
                client,
                jobs: flags.as_deref().and_then(parse_jobs),
            }),
            Err(e) => match e.kind() {
                jobserver::FromEnvErrorKind::NoEnvVar
                | jobserver::FromEnvErrorKind::NoJobserver => Parent::None,
                _ => Parent::Unusable(e.to_string()),
            },
        }
    });
}

/// Why the jobserver named in strata's environment cannot be joined, if
/// one is named and cannot: typically make ran strata without `+`, so it
/// closed the descriptors.
pub fn unusable_parent() -> Option<String> {
    match inherited_slot().get() {
        Some(Parent::Unusable(why)) => Some(format!(
            "MAKEFLAGS names a jobserver strata cannot use ({why}); using its own\n  \
             hint: start strata from a make recipe as `+strata build` (or through $(MAKE)) \
             so that make hands its jobserver down"
        )),
        _ => None,
    }
}

/// The `-jN` value in a MAKEFLAGS string (make puts it there since 4.2).
pub fn parse_jobs(makeflags: &str) -> Option<usize> {
    makeflags
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("-j"))
        .filter_map(|n| n.parse::<usize>().ok())
        .rfind(|n| *n > 0)
}

/// The build's jobserver.
pub struct Jobserver {
    client: Client,
    /// The total number of jobs (the `-j` of the build, or of the parent make).
    jobs: usize,
    /// `R,W` or `fifo:PATH`: what `--jobserver-auth=` names.
    auth: String,
    /// Whether the pool is the parent make's.
    joined: bool,
}

impl Jobserver {
    /// Joins the jobserver strata inherited, or creates one of `jobs` tokens
    /// in total (`jobs - 1` in the pool plus strata's implicit one).
    pub fn for_build(jobs: usize) -> io::Result<Jobserver> {
        let jobs = jobs.max(1);
        if let Some(Parent::Usable(inh)) = inherited_slot().get() {
            return Ok(Jobserver {
                auth: auth_of(&inh.client),
                client: inh.client.clone(),
                jobs: inh.jobs.unwrap_or(jobs),
                joined: true,
            });
        }
        let client = Client::new(jobs - 1)?;
        Ok(Jobserver {
            auth: auth_of(&client),
            client,
            jobs,
            joined: false,
        })
    }

    /// The total number of jobs, `STRATA_JOBS` for every command.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// Whether strata joined a parent make's jobserver.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// Whether a second module can ever get a token.
    pub fn can_share(&self) -> bool {
        self.joined || self.jobs > 1
    }

    /// The client, to acquire tokens with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The `MAKEFLAGS` a command gets: ` -jN --jobserver-auth=…`, as make
    /// itself writes it for a recursive make.
    pub fn makeflags(&self) -> String {
        format!(" -j{} --jobserver-auth={}", self.jobs, self.auth)
    }

    /// Lets `cmd` inherit the pool's descriptors and sets its `MAKEFLAGS`
    /// (and `CARGO_MAKEFLAGS`, which cargo reads first). Call after the
    /// command's environment is set, since this adds to it.
    pub fn configure(&self, cmd: &mut Command) {
        self.client.configure(cmd);
        let flags = self.makeflags();
        cmd.env("MAKEFLAGS", &flags);
        cmd.env("CARGO_MAKEFLAGS", &flags);
    }
}

/// The `--jobserver-auth=` value of a client. The crate does not expose it,
/// but it writes it into a command's `MAKEFLAGS`, which can be read back.
fn auth_of(client: &Client) -> String {
    let mut probe = Command::new("true");
    client.configure_make(&mut probe);
    let flags: Option<OsString> = probe
        .get_envs()
        .find(|(k, _)| *k == "MAKEFLAGS")
        .and_then(|(_, v)| v.map(|v| v.to_os_string()));
    let flags = flags.map(|f| f.to_string_lossy().into_owned());
    flags
        .as_deref()
        .and_then(|f| {
            f.split_whitespace()
                .filter_map(|w| w.strip_prefix("--jobserver-auth="))
                .next_back()
        })
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_come_from_the_last_j_flag() {
        assert_eq!(parse_jobs(" -j2 --jobserver-auth=3,4"), Some(2));
        assert_eq!(parse_jobs("w -j8 --jobserver-auth=fifo:/tmp/x"), Some(8));
        assert_eq!(parse_jobs("-j --jobserver-fds=3,4"), None);
        assert_eq!(parse_jobs("k"), None);
    }

    #[test]
    fn a_new_pool_holds_jobs_minus_one_tokens() {
        let js = Jobserver::for_build(3).unwrap();
        assert_eq!(js.client().available().unwrap(), 2);
        let flags = js.makeflags();
        assert!(flags.starts_with(" -j3 --jobserver-auth="), "{flags}");
        let auth = flags.rsplit('=').next().unwrap();
        let (r, w) = auth.split_once(',').expect("pipe form R,W");
        assert!(
            r.parse::<i32>().is_ok() && w.parse::<i32>().is_ok(),
            "{auth}"
        );
    }
}
