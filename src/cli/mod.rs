//! The command line: argument parsing, dispatch, and error rendering at the
//! edge. Exit codes are defined here and documented in README.md.

mod build;
mod cache;
mod ci;
mod ci_stage;
mod clean;
mod fetch_list;
mod graph;
mod import;
mod init;
mod log;
mod meta;
mod noop;
mod plan;
mod prepare;

use crate::fetch::FetchOptions;
use crate::graph::Graph;
use crate::instance::{self, Instances};
use crate::manifest::{self, ManifestError, Project};
use crate::report::Reporter;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Success.
pub const EXIT_OK: i32 = 0;
/// A module failed to build (or fetch, or a check failed).
pub const EXIT_FAILURE: i32 = 1;
/// Bad manifest or bad usage.
pub const EXIT_USAGE: i32 = 2;
/// Interrupted by Ctrl-C / SIGTERM.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Build firmware modules with content-hashed steps and verified downloads"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags accepted before or after the subcommand.
#[derive(Args, Clone)]
pub struct Global {
    /// Project directory (holding strata.toml)
    #[arg(
        short = 'C',
        long = "project",
        global = true,
        default_value = ".",
        value_name = "DIR"
    )]
    pub project: PathBuf,
    /// Total jobs of the build, shared by modules and the makes they run
    /// (strata is their jobserver; default: [settings] jobs, or the number of CPUs)
    #[arg(short = 'j', long = "jobs", global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Never download; fail naming the missing packages
    #[arg(long, global = true)]
    pub offline: bool,
    /// Neither restore from nor save to the artifact cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Never upload to the remote cache (read-only client)
    #[arg(long, global = true)]
    pub no_push: bool,
    /// Continue with independent modules after a failure
    #[arg(long, global = true)]
    pub keep_going: bool,
    /// More output: every step, and each command's output as it is written
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Less output
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// One JSON event per line on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colours (NO_COLOR is honoured with auto)
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Build targets or modules (default: target `default`)
    Build {
        names: Vec<String>,
        /// Write an HTML timeline of the build to build/.strata/timings/
        #[arg(long)]
        timings: bool,
        /// Rebuild each module (the named ones, else the target's closure) in a
        /// scratch dir and compare it bit for bit with its cached artifact
        #[arg(long, conflicts_with = "timings")]
        check: bool,
        /// Edit-compile loop: continue stale steps in the existing build dirs
        /// instead of a clean tree; nothing built is saved to any cache, and
        /// the next normal build redoes it clean
        #[arg(long, conflicts_with = "check")]
        incremental: bool,
    },
    /// Download and verify packages only (and record them in strata.lock)
    Fetch {
        names: Vec<String>,
        /// Replace strata.lock entries a file disagrees with (after you
        /// checked that upstream really changed it) instead of refusing it
        #[arg(long)]
        update_lock: bool,
        /// Download nothing: list every file the build would download
        /// (sources, git sources, extra downloads), each with its pin
        #[arg(long, conflicts_with = "update_lock")]
        dry_run: bool,
    },
    /// Show each module and step: fresh, or stale with the reason
    Plan {
        names: Vec<String>,
        /// Show what `build --incremental` would run
        #[arg(long)]
        incremental: bool,
    },
    /// Explain exactly which input of a module changed since its last build
    Why {
        module: String,
        /// The target whose params (board) to explain it for (default: `default`)
        target: Option<String>,
    },
    /// Print a module's step logs (configure, build, install; default: all)
    Log {
        module: String,
        /// configure, build or install
        step: Option<String>,
        /// The target whose variant of the module to show (default: `default`)
        #[arg(long)]
        target: Option<String>,
    },
    /// Remove build directories (of the named modules, or --all)
    Clean {
        modules: Vec<String>,
        /// Remove the whole build and install directories
        #[arg(long)]
        all: bool,
    },
    /// Fetch, verify, unpack and patch modules, then stop; print each tree's path
    Prepare { modules: Vec<String> },
    /// Print the dependency graph in DOT (with --json: one JSON document, see docs/json.md)
    Graph { names: Vec<String> },
    /// Inspect the artifact cache
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// CI cache layers with CircleCI semantics, and a local workflow runner
    Ci(ci::CiArgs),
    /// Create a minimal project that builds (in -C DIR, default: here)
    Init {
        /// Project name (default: the directory's name)
        #[arg(long)]
        name: Option<String>,
    },
    /// Print shell completions: `strata completions bash > /etc/bash_completion.d/strata`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `strata man > strata.1`
    Man,
    /// Turn another build system's tree into a strata project (runs the tree's Makefile code)
    Import(import::ImportArgs),
}

/// The whole command tree, for tests that walk every subcommand and flag
/// (`Command::debug_assert`, flag-collision checks).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// A loaded project with its module graph. Keys belong to instances,
/// which depend on the targets named: see [`Global::instances`].
pub struct Loaded {
    pub project: Project,
    pub graph: Graph,
}

/// An error at the edge: how to render it and which exit code it means.
pub enum Failure {
    /// A bad manifest: exit 2, rendered with the source line.
    Manifest(ManifestError),
    /// Bad usage or configuration (a flag, a name, a missing setting): exit 2.
    Usage(anyhow::Error),
    /// Something failed while doing the work (build, fetch, check): exit 1.
    Other(anyhow::Error),
    Code(i32),
}

impl Failure {
    /// A usage or configuration error (exit 2) with this message.
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure::Usage(anyhow::anyhow!("{message}"))
    }
}

impl From<ManifestError> for Failure {
    fn from(e: ManifestError) -> Self {
        Failure::Manifest(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl Global {
    fn color_enabled(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }

    /// Loads the project and its module graph.
    pub fn load(&self) -> Result<Loaded, Failure> {
        let project = manifest::load(&self.project)?;
        let graph = Graph::new(&project)?;
        Ok(Loaded { project, graph })
    }

    /// The instances (with keys) that command-line `names` resolve to.
    pub fn instances(&self, l: &Loaded, names: &[String]) -> Result<Instances, Failure> {
        Ok(instance::instantiate(&l.project, &l.graph, names)?)
    }

    pub fn reporter(&self) -> Reporter {
        Reporter::new(self.json, self.quiet, self.verbose, self.color_enabled())
    }

    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions::from_env(self.offline)
    }

    /// The local artifact store (`[cache] dir`, else `$XDG_CACHE_HOME/strata`).
    pub fn local_store(&self, project: &Project) -> crate::store::LocalStore {
        crate::store::LocalStore::new(
            project
                .settings
                .cache_dir
                .clone()
                .unwrap_or_else(crate::store::LocalStore::default_root),
        )
    }

    /// The configured remote store (`[cache] remote`), if any.
    pub fn remote_store(
        &self,
        project: &Project,
    ) -> anyhow::Result<Option<Box<dyn crate::store::Store>>> {
        let s = &project.settings;
        s.cache_remote
            .as_deref()
            .map(|url| {
                crate::store::open_with(
                    url,
                    s.cache_endpoint.as_deref(),
                    s.cache_region.as_deref(),
                    crate::store::AuthOptions { imds: s.cache_imds },
                )
                .map_err(|e| anyhow::anyhow!("cache remote {url}: {e}"))
            })
            .transpose()
    }

    /// The cache: local store plus the configured remote, if any.
    pub fn cache(&self, project: &Project) -> anyhow::Result<crate::store::Cache> {
        let s = &project.settings;
        let remote = self.remote_store(project)?;
        let signer = match &s.cache_sign_key {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read [cache] sign-key {}: {e}\n  hint: create one with `strata cache keygen NAME`",
                        path.display()
                    )
                })?;
                Some(
                    crate::signing::SecretKey::parse(&text)
                        .map_err(|e| anyhow::anyhow!("[cache] sign-key {}: {e}", path.display()))?,
                )
            }
        };
        Ok(crate::store::Cache::new(
            self.local_store(project),
            remote,
            s.cache_push && !self.no_push,
        )
        .with_signing(signer, s.cache_trusted_keys.clone())
        .with_restore_mode(
            crate::manifest::RestoreMode::resolve(s.cache_restore).map_err(anyhow::Error::msg)?,
        ))
    }

    pub fn jobs(&self, project: &Project) -> usize {
        self.jobs
            .filter(|j| *j > 0)
            .unwrap_or(project.settings.jobs)
    }

    /// What the engine needs to work on `inst` of the loaded project, with
    /// this command line's fetch options, jobs and `--keep-going`.
    pub fn context<'a>(
        &self,
        project: &'a Project,
        inst: &'a crate::instance::Instances,
        reporter: &'a Reporter,
        store: Option<&'a crate::store::Cache>,
    ) -> crate::exec::Context<'a> {
        crate::exec::Context {
            store,
            project,
            instances: &inst.list,
            graph: &inst.graph,
            keys: &inst.keys,
            reporter,
            fetch: self.fetch_options(),
            jobs: self.jobs(project),
            keep_going: self.keep_going,
            incremental: false,
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn run() -> i32 {
    // Before any file is opened: the descriptors a parent make handed down.
    crate::exec::jobserver::capture_inherited();
    crate::output::on_close(crate::exec::command::interrupt);
    let code = run_cli();
    if crate::output::closed() {
        // Whoever read our output has gone (`strata build | head`): end
        // quietly, as a program killed by SIGPIPE would.
        return crate::output::EXIT_OUTPUT_CLOSED;
    }
    code
}

fn run_cli() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // With --json anywhere on the line, a usage error is a JSON event too.
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--json") => {
            let text = e.render().to_string();
            let message = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            let help: Vec<&str> = text
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .collect();
            crate::report::emit_json(
                "error",
                serde_json::json!({
                    "kind": "usage",
                    "message": message,
                    "causes": help,
                    "exit_code": EXIT_USAGE,
                }),
            );
            return EXIT_USAGE;
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let g = cli.global.clone();
    let result = match cli.command {
        Command::Build {
            names, check: true, ..
        } => build::check(&g, &names),
        Command::Build {
            names,
            timings,
            incremental,
            ..
        } => build::build(&g, &names, timings, incremental),
        Command::Fetch {
            names,
            dry_run: true,
            ..
        } => fetch_list::dry_run(&g, &names),
        Command::Fetch {
            names, update_lock, ..
        } => build::fetch(&g, &names, update_lock),
        Command::Plan { names, incremental } => plan::plan(&g, &names, incremental),
        Command::Why { module, target } => plan::why(&g, &module, target.as_deref()),
        Command::Clean { modules, all } => clean::clean(&g, &modules, all),
        Command::Log {
            module,
            step,
            target,
        } => log::log(&g, &module, step.as_deref(), target.as_deref()),
        Command::Prepare { modules } => prepare::prepare(&g, &modules),
        Command::Graph { names } => graph::graph(&g, &names),
        Command::Cache(c) => cache::run(&g, c),
        Command::Ci(c) => ci::run(&g, c),
        Command::Init { name } => init::init(&g.project, name.as_deref(), g.json, g.quiet),
        Command::Completions { shell } => meta::completions(shell),
        Command::Man => meta::man(),
        Command::Import(a) => import::run(&g, a),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(Failure::Code(c)) => c,
        Err(Failure::Manifest(e)) if g.json => {
            crate::report::emit_json(
                "error",
                serde_json::json!({
                    "kind": "manifest",
                    "message": e.message,
                    "file": e.file.display().to_string(),
                    "line": e.line(),
                    "help": e.help,
                    "exit_code": EXIT_USAGE,
                }),
            );
            EXIT_USAGE
        }
        Err(Failure::Manifest(e)) => {
            crate::errln!("{}", e.render(g.color_enabled()));
            EXIT_USAGE
        }
        Err(Failure::Usage(e)) => render_error(&e, &g, EXIT_USAGE),
        Err(Failure::Other(e)) => render_error(&e, &g, EXIT_FAILURE),
    }
}

/// Renders an error (`error:` / `caused by:` on stderr, or one JSON event)
/// and hands back its exit code.
fn render_error(e: &anyhow::Error, g: &Global, code: i32) -> i32 {
    let json = g.json;
    if json {
        let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
        crate::report::emit_json(
            "error",
            serde_json::json!({
                "kind": if code == EXIT_USAGE { "usage" } else { "failure" },
                "message": e.to_string(),
                "causes": causes,
                "exit_code": code,
            }),
        );
        return code;
    }
    let error = if g.color_enabled() {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    crate::errln!("{error}: {e}");
    for cause in e.chain().skip(1) {
        crate::errln!("  caused by: {cause}");
    }
    code
}

/// Takes the project lock (saying so while another strata holds it), then
/// removes what killed runs left, which only the lock holder may do.
pub(super) fn lock_project(
    project: &Project,
    reporter: &Reporter,
) -> anyhow::Result<crate::lock::ProjectLock> {
    use anyhow::Context as _;
    let lock_path = project.state_dir().join("lock");
    let lock = crate::lock::ProjectLock::acquire(&lock_path, |p| {
        crate::errln!(
            "    Blocking: waiting for lock on {} (another strata is using this project)",
            p.display()
        );
    })
    .with_context(|| format!("cannot take the project lock {}", lock_path.display()))?;
    if let Err(e) = lock.sweep(project) {
        reporter.event(crate::report::Event::Warning {
            message: &format!("cannot remove temp files of an interrupted run: {e}"),
        });
    }
    Ok(lock)
}

/// Writes what the cache did in this run for `strata cache stats` (unless
/// the file already says exactly that: a no-op after a no-op writes nothing).
pub(super) fn record_stats(
    project: &crate::manifest::Project,
    cache: &crate::store::Cache,
    reporter: &crate::report::Reporter,
) {
    let stats = serde_json::to_vec_pretty(&cache.stats()).expect("serialisable");
    let path = project.state_dir().join("cache-stats.json");
    if let Err(e) = crate::fsutil::write_atomic_if_changed(&path, &stats) {
        reporter.event(crate::report::Event::Warning {
            message: &format!("cannot write {}: {e}", path.display()),
        });
    }
}

/// The shared lock a build holds on the local cache while it runs (gc takes
/// it exclusively).
pub fn lock_store(cache: &crate::store::Cache) -> anyhow::Result<std::fs::File> {
    use anyhow::Context as _;
    cache
        .local
        .lock(false)
        .with_context(|| format!("cannot lock the cache {}", cache.local.root().display()))
}
