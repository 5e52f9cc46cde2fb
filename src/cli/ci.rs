//! `strata ci …`: CI caches with CircleCI semantics, strata layers, the
//! local workflow runner and config generators.

use super::{EXIT_FAILURE, Failure, Global};
use crate::ci::cache::{CiCache, Match, Saved};
use crate::ci::{layer, template};
use crate::report::{emit_json, human_bytes};
use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CiArgs {
    /// Where CI caches live: a directory, file://, s3://bucket/prefix or
    /// http(s):// (read-only). Default: `[cache] remote`, else the local store
    #[arg(long, global = true, env = "STRATA_CI_STORE")]
    store: Option<String>,
    #[command(subcommand)]
    command: CiCommand,
}

#[derive(Subcommand)]
enum CiCommand {
    /// Print the cache key of layer NAME: NAME-<digest>-<cache-version>
    Key { name: String },
    /// Render a cache-key template ({{ checksum "f" }}, {{ .Branch }}, …)
    Render { template: String },
    /// Restore a cache: keys in order, each a prefix; the newest cache it prefixes wins
    Restore {
        /// Keys (templates allowed), tried in order
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// Directory to restore into and resolve relative paths from (default: -C dir)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Exit 1 when no key matches
        #[arg(long)]
        fail_on_miss: bool,
    },
    /// Save PATHs under KEY, unless KEY exists (caches are immutable)
    Save {
        #[arg(long)]
        key: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Save a [layer.NAME]: packages, build dirs and stamps of its modules and their dependencies
    SaveLayer {
        name: String,
        /// Key to save under (default: `strata ci key NAME`)
        #[arg(long)]
        key: Option<String>,
    },
    /// Restore a [layer.NAME]: its exact key, else the newest of the same name and cache-version
    RestoreLayer {
        name: String,
        /// Keys to try instead of the defaults
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// Run a CircleCI 2.1 workflow locally, with real caches and workspaces
    Run(RunArgs),
    /// Remove from the local artifact store every entry outside the closure
    /// of NAME (a target or layer) at its current keys, before a CI saves it
    PruneStore { name: String },
    /// The staged plan derived from the graph, as `ci generate` writes it:
    /// seed jobs for what targets share, then each target's own job
    Stage {
        /// The plan the config was generated with (a warning when the
        /// manifest's differs)
        #[arg(long, env = "STRATA_CI_PLAN", value_name = "DIGEST", global = true)]
        plan: Option<String>,
        #[command(subcommand)]
        command: super::ci_stage::StageCommand,
    },
    /// Write a CI config for the manifest's targets
    Generate {
        #[arg(value_enum)]
        kind: GenerateKind,
        /// Write here instead of stdout
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Command that installs strata into $STRATA_BIN_DIR (default: `[ci]
        /// install`, else `cargo install --locked strata-build --version
        /// =<this version>`)
        #[arg(long, value_name = "CMD")]
        install_cmd: Option<String>,
    },
}

/// `strata ci run` flags. Field ids never reuse a global flag's id (`jobs`):
/// clap keys matches by id, and a collision panics at parse time.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// The CircleCI config
    #[arg(long, default_value = ".circleci/config.yml")]
    config: PathBuf,
    /// Workflow to run (default: every workflow, as CircleCI does)
    #[arg(long)]
    workflow: Option<String>,
    /// Run only these jobs (no upstream jobs)
    #[arg(long = "job", id = "only_job", value_name = "JOB")]
    only_jobs: Vec<String>,
    /// Print the job DAG, steps and cache keys; run nothing
    #[arg(long)]
    dry_run: bool,
    /// Jobs at once (default: -j, else the number of CPUs)
    #[arg(long = "parallel", value_name = "N")]
    parallel: Option<usize>,
    /// Project variables: NAME=VALUE (the environment is passed through too)
    #[arg(long = "env", value_parser = parse_env, value_name = "NAME=VALUE")]
    env: Vec<(String, String)>,
    /// Pipeline parameters: NAME=VALUE (`<< pipeline.parameters.NAME >>`)
    #[arg(long = "param", value_parser = parse_env, value_name = "NAME=VALUE")]
    params: Vec<(String, String)>,
    /// Approve every `type: approval` job (else its dependents wait)
    #[arg(long)]
    approve: bool,
    /// Where registry orbs are fetched from (CircleCI's GraphQL endpoint)
    #[arg(long, env = "STRATA_CI_ORB_URL", value_name = "URL")]
    orb_url: Option<String>,
    /// `pipeline.trigger_source` of this run, as CircleCI names its triggers
    #[arg(long, value_enum, default_value_t = TriggerSource::Api)]
    trigger_source: TriggerSource,
}

/// What started a pipeline: CircleCI's values of `pipeline.trigger_source`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerSource {
    /// A push or pull request (a VCS webhook)
    Webhook,
    /// The API or the web app: what a local run is closest to
    Api,
    /// A scheduled pipeline
    #[value(name = "scheduled_pipeline")]
    ScheduledPipeline,
}

impl TriggerSource {
    fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Webhook => "webhook",
            TriggerSource::Api => "api",
            TriggerSource::ScheduledPipeline => "scheduled_pipeline",
        }
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

impl RunArgs {
    fn options(&self, g: &Global) -> crate::ci::runner::RunOptions {
        crate::ci::runner::RunOptions {
            config: self.config.clone(),
            workflow: self.workflow.clone(),
            only_jobs: self.only_jobs.clone(),
            dry_run: self.dry_run,
            parallel: self.parallel.or(g.jobs),
            env: self.env.clone(),
            params: self.params.clone(),
            approve: self.approve,
            json: g.json,
            orb_url: self.orb_url.clone(),
            offline: g.offline,
            trigger_source: self.trigger_source.as_str().to_string(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum GenerateKind {
    Circleci,
    Github,
}

pub fn run(g: &Global, args: CiArgs) -> Result<(), Failure> {
    let root = g.project.clone();
    match args.command {
        CiCommand::Run(r) => {
            let code = crate::ci::runner::run(&root, &r.options(g), args.store.as_deref())
                .map_err(|e| match e {
                    crate::ci::runner::RunError::Config(m) => Failure::Usage(anyhow::anyhow!(m)),
                    crate::ci::runner::RunError::Other(m) => Failure::Other(anyhow::anyhow!(m)),
                })?;
            return if code == 0 {
                Ok(())
            } else {
                Err(Failure::Code(code))
            };
        }
        CiCommand::PruneStore { name } => {
            let l = g.load()?;
            let keep: std::collections::BTreeSet<String> =
                layer::closure(&l.project, &l.graph, &name)
                    .map_err(|e| match e {
                        layer::LayerError::Unknown { .. } => Failure::Usage(e.into()),
                        e => Failure::Other(e.into()),
                    })?
                    .keys
                    .iter()
                    .map(|k| k.install_key().to_string())
                    .collect();
            return super::ci_stage::prune_store(g, &l.project, &name, &keep);
        }
        CiCommand::Stage { plan, command } => {
            return super::ci_stage::run(g, plan.as_deref(), command);
        }
        CiCommand::Generate {
            kind,
            output,
            install_cmd,
        } => return generate(g, &root, kind, output, install_cmd),
        CiCommand::Key { name } => {
            let l = g.load()?;
            let key = layer::key(&l.project, &l.graph, &name).map_err(|e| match e {
                layer::LayerError::Unknown { .. } => Failure::Usage(e.into()),
                e => Failure::Other(e.into()),
            })?;
            if g.json {
                crate::report::emit_json("ci-key", serde_json::json!({"name": name, "key": key}));
            } else {
                crate::outln!("{key}");
            }
            return Ok(());
        }
        _ => {}
    }
    let has_project = root.join("strata.toml").is_file();
    let loaded = if has_project { Some(g.load()?) } else { None };
    let layer_digest = |name: &str| -> Result<String, String> {
        let l = loaded.as_ref().ok_or_else(|| {
            format!(
                "no strata.toml in {} to define layer `{name}`",
                root.display()
            )
        })?;
        layer::digest(&l.project, &l.graph, name).map_err(|e| e.to_string())
    };
    let render = |t: &str, dir: &Path| -> Result<String, Failure> {
        let vars = template_vars(dir, &layer_digest);
        Ok(template::render(t, &vars).map_err(anyhow::Error::from)?)
    };
    let cache = open_cache(
        g,
        args.store.as_deref(),
        loaded.as_ref().map(|l| &l.project),
    )?;
    match args.command {
        CiCommand::Render { template } => {
            let key = render(&template, &root)?;
            if g.json {
                crate::report::emit_json(
                    "ci-render",
                    serde_json::json!({"template": template, "key": key}),
                );
            } else {
                crate::outln!("{key}");
            }
            Ok(())
        }
        CiCommand::Restore {
            keys,
            dir,
            fail_on_miss,
        } => {
            let dir = dir.unwrap_or(root.clone());
            let keys = keys
                .iter()
                .map(|k| render(k, &dir))
                .collect::<Result<Vec<_>, _>>()?;
            restore(g, &cache, &keys, &dir, fail_on_miss)
        }
        CiCommand::Save { key, dir, paths } => {
            let dir = dir.unwrap_or(root.clone());
            let key = render(&key, &dir)?;
            save(g, &cache, &key, &dir, &paths)
        }
        CiCommand::SaveLayer { name, key } => {
            let l = g.load()?;
            let key = match key {
                Some(k) => render(&k, &root)?,
                None => layer::key(&l.project, &l.graph, &name).map_err(anyhow::Error::from)?,
            };
            let paths = layer::paths(&l.project, &l.graph, &name).map_err(anyhow::Error::from)?;
            save(g, &cache, &key, &l.project.root, &paths)
        }
        CiCommand::RestoreLayer { name, keys } => {
            let l = g.load()?;
            let keys = if keys.is_empty() {
                // Exact first; then any save of this layer at this
                // cache-version: strata's content-keyed stamps rebuild only
                // the modules whose inputs changed since.
                vec![
                    layer::key(&l.project, &l.graph, &name).map_err(anyhow::Error::from)?,
                    format!("{name}-"),
                ]
            } else {
                keys.iter()
                    .map(|k| render(k, &root))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let suffix = format!("-{}", l.project.cache_version);
            let layer_name = format!("{name}-");
            let accept = |k: &str| {
                !k.starts_with(&layer_name)
                    || (k.ends_with(&suffix) && k[layer_name.len()..].len() == 32 + suffix.len())
            };
            restore_filtered(g, &cache, &keys, &l.project.root, false, &accept)
        }
        CiCommand::Key { .. }
        | CiCommand::Run(_)
        | CiCommand::Generate { .. }
        | CiCommand::Stage { .. }
        | CiCommand::PruneStore { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `strata ci generate circleci|github`.
fn generate(
    g: &Global,
    root: &Path,
    kind: GenerateKind,
    output: Option<PathBuf>,
    install_cmd: Option<String>,
) -> Result<(), Failure> {
    let l = g.load()?;
    let opts = crate::ci::generate::Options {
        version: env!("CARGO_PKG_VERSION").into(),
        install_cmd: install_cmd.or_else(|| l.project.settings.ci_install.clone()),
        project_dir: project_below_repo_top(&l.project.root),
    };
    let text = match kind {
        GenerateKind::Circleci => {
            let plan = crate::ci::stage::plan(&l.project, &l.graph)?;
            crate::ci::generate::circleci(&l.project, &plan, &opts)
        }
        GenerateKind::Github => {
            let plan = crate::ci::stage::plan(&l.project, &l.graph)?;
            crate::ci::generate::github(&l.project, &plan, &opts)
        }
    };
    match output {
        Some(p) => {
            // Relative to the project, like every other path strata takes.
            let p = root.join(p);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            crate::fsutil::write_atomic(&p, text.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
            crate::errln!("Wrote {}", p.display());
        }
        None => crate::out!("{text}"),
    }
    Ok(())
}

/// The values CircleCI's templates see, from CircleCI's own variables when
/// set (in CI, or under `strata ci run`), else from git.
fn template_vars<'a>(
    dir: &Path,
    layer: &'a dyn Fn(&str) -> Result<String, String>,
) -> template::Vars<'a> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty() && s != "HEAD")
    };
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    template::Vars {
        branch: var("CIRCLE_BRANCH").or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"])),
        revision: var("CIRCLE_SHA1").or_else(|| git(&["rev-parse", "HEAD"])),
        build_num: var("CIRCLE_BUILD_NUM").unwrap_or_else(|| "0".into()),
        dir: dir.to_path_buf(),
        env: &|n| std::env::var(n).ok(),
        layer,
    }
}

fn open_cache(
    g: &Global,
    store: Option<&str>,
    project: Option<&crate::manifest::Project>,
) -> Result<CiCache, Failure> {
    let local_root = || {
        project
            .and_then(|p| p.settings.cache_dir.clone())
            .unwrap_or_else(crate::store::LocalStore::default_root)
    };
    let store: Box<dyn crate::store::Store> = match (store, project) {
        (Some(url), _) => crate::store::open(url, None, None)
            .map_err(|e| anyhow::anyhow!("--store {url}: {e}"))?,
        (None, Some(p)) => match g.remote_store(p)? {
            Some(r) => r,
            None => Box::new(crate::store::LocalStore::new(local_root())),
        },
        (None, None) => Box::new(crate::store::LocalStore::new(local_root())),
    };
    Ok(CiCache::new(store, local_root().join("tmp")))
}

fn restore(
    g: &Global,
    cache: &CiCache,
    keys: &[String],
    dir: &Path,
    fail_on_miss: bool,
) -> Result<(), Failure> {
    restore_filtered(g, cache, keys, dir, fail_on_miss, &|_| true)
}

fn restore_filtered(
    g: &Global,
    cache: &CiCache,
    keys: &[String],
    dir: &Path,
    fail_on_miss: bool,
    accept: &dyn Fn(&str) -> bool,
) -> Result<(), Failure> {
    let t = std::time::Instant::now();
    let reporter = g.reporter();
    let progress = |done| {
        reporter.event(crate::report::Event::Transfer {
            module: "cache",
            what: "download",
            done,
            total: None,
        })
    };
    let r = cache
        .restore_where(keys, dir, &progress, accept)
        .map_err(anyhow::Error::from)?;
    reporter.clear("cache");
    let secs = t.elapsed().as_secs_f64();
    report_to_runner(
        &crate::ci::cache::describe_restore(r.as_ref(), keys),
        "restore",
    );
    match &r {
        Some(r) if g.json => emit_json(
            "ci-restore",
            json!({"keys": keys, "key": r.key, "requested": r.requested, "match": r.how, "bytes": r.bytes, "files": r.files, "seconds": secs}),
        ),
        None if g.json => emit_json(
            "ci-restore",
            json!({"keys": keys, "key": null, "match": "miss", "seconds": secs}),
        ),
        Some(r) if !g.quiet => crate::outln!(
            "Restored cache `{}` ({} match of `{}`): {}, {} in {secs:.2}s",
            r.key,
            if r.how == Match::Exact {
                "exact"
            } else {
                "prefix"
            },
            r.requested,
            human_bytes(r.bytes),
            crate::report::count(r.files, "file", "files")
        ),
        None if !g.quiet => crate::outln!(
            "No cache found for keys: {} (miss)",
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => {}
    }
    if r.is_none() && fail_on_miss {
        return Err(Failure::Code(EXIT_FAILURE));
    }
    Ok(())
}

fn save(
    g: &Global,
    cache: &CiCache,
    key: &str,
    dir: &Path,
    paths: &[PathBuf],
) -> Result<(), Failure> {
    let t = std::time::Instant::now();
    let r = cache.save(key, dir, paths).map_err(anyhow::Error::from)?;
    let secs = t.elapsed().as_secs_f64();
    report_to_runner(&r.describe(key), "save");
    if g.json {
        emit_json(
            "ci-save",
            json!({"key": key, "outcome": r, "seconds": secs, "store": cache.describe()}),
        );
    } else if !g.quiet {
        match r {
            Saved::Skipped => crate::outln!(
                "Skipping cache save: key `{key}` already exists in {} (caches are immutable)",
                cache.describe()
            ),
            Saved::New { bytes, files } => crate::outln!(
                "Saved cache `{key}`: {}, {} in {secs:.2}s",
                human_bytes(bytes),
                crate::report::count(files, "file", "files")
            ),
        }
    }
    Ok(())
}

/// Under `strata ci run`, tells the runner what this cache command did, so
/// its summary lists restores and saves made from `run` steps too.
fn report_to_runner(line: &str, kind: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os(crate::ci::runner::REPORT_ENV) else {
        return;
    };
    let entry = json!({ "kind": kind, "line": line }).to_string();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{entry}");
    }
}

/// The project's directory relative to the top of the git repository that
/// holds it, when it is below the top (None: at the top, or no repository).
fn project_below_repo_top(root: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let top = std::path::PathBuf::from(String::from_utf8(out.stdout).ok()?.trim_end());
    let top = top.canonicalize().ok()?;
    let rel = root.strip_prefix(&top).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.display().to_string())
}
