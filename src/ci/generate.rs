//! `strata ci generate circleci|github`: a ready CI config for the
//! manifest's targets.
//!
//! Both configs are the staged plan of [`super::stage`]: seed jobs
//! for what targets share (toolchains first), then one job per target,
//! each requiring the seeds its closure needs. Without a `[cache] remote`,
//! each job carries **its own artifacts only**: it attaches the workspace
//! of the jobs it requires (their artifacts; on GitHub, which has no
//! workspaces, it restores their caches instead), restores its own cache,
//! builds what is still missing, prunes the local store to its own
//! artifacts, saves that as its cache and persists it to the workspace. So
//! a cold workflow builds each module instance once, a warm one builds
//! nothing, and the caches hold each artifact once. With a remote, the
//! artifact cache carries everything by its own keys and the stages only
//! order the builds.
//!
//! strata itself is installed at exactly the version that generated the
//! config into `~/.strata-bin`, cached by version (and by the install
//! command): `cargo install --locked strata-build --version =X.Y.Z` (the
//! crates.io name `strata` is an unrelated crate), or `[ci] install` /
//! `--install-cmd`.

use super::stage::Plan;
use crate::manifest::Project;

/// What a generated config installs.
pub struct Options {
    /// The strata version to install (this binary's).
    pub version: String,
    /// Replaces the cargo install command (`--install-cmd`, else `[ci] install`).
    pub install_cmd: Option<String>,
    /// The project's directory relative to the repository's top (None: the
    /// top itself): the Heads import's `strata/`. Every command gets `-C`
    /// and every path is written from the top, where CI jobs start.
    pub project_dir: Option<String>,
}

/// Where the generated configs install strata (its `bin/` goes on PATH).
const BIN_ROOT: &str = "$HOME/.strata-bin";

/// CircleCI's `no_output_timeout` for build steps. strata prints a
/// heartbeat every `STRATA_HEARTBEAT` seconds (default 60) while a module's
/// command runs; a download or a cache restore of a big artifact prints
/// less often, so the limit keeps a wide margin over CircleCI's 10 minutes.
pub const NO_OUTPUT_TIMEOUT: &str = "30m";

impl Options {
    /// `strata`, with `-C DIR` for a project below the repository's top.
    fn strata(&self) -> String {
        match &self.project_dir {
            None => "strata".into(),
            Some(d) => format!("strata -C {}", shell_word(d)),
        }
    }

    /// `p` (a path of the project) as CI steps name it from the top.
    fn path(&self, project: &Project, p: &std::path::Path) -> String {
        let r = rel(project, p);
        match &self.project_dir {
            Some(d) if !std::path::Path::new(&r).is_absolute() && !r.starts_with('~') => {
                format!("{d}/{r}")
            }
            _ => r,
        }
    }

    /// The command that installs strata into `$STRATA_BIN_DIR`.
    fn install_cmd(&self) -> String {
        match &self.install_cmd {
            Some(cmd) => cmd.clone(),
            None => format!(
                "cargo install --locked --root {BIN_ROOT} strata-build --version ={}",
                self.version
            ),
        }
    }

    /// The shell script that leaves strata at exactly this version on
    /// PATH (for this step and, through `$BASH_ENV` or `$GITHUB_PATH`, the
    /// next ones): the cached binary, else the install command.
    fn install(&self, path_file: &str) -> String {
        let v = &self.version;
        format!(
            "export PATH=\"{BIN_ROOT}/bin:$PATH\"\n\
             echo 'export PATH=\"{BIN_ROOT}/bin:$PATH\"' >> \"{path_file}\"\n\
             if ! strata --version 2>/dev/null | grep -qx 'strata {v}'; then\n  \
             mkdir -p {BIN_ROOT}/bin\n  \
             export STRATA_VERSION={v} STRATA_BIN_DIR=\"{BIN_ROOT}/bin\"\n  \
             {}\n\
             fi\n\
             strata --version\n",
            self.install_cmd()
        )
    }

    /// The binary cache's key: the version, the machine, and the install
    /// command (another source is another binary).
    fn bin_key(&self, arch: &str) -> String {
        let h = blake3::hash(self.install_cmd().as_bytes()).to_hex();
        format!("strata-bin-v{}-{arch}-{}", self.version, &h[..8])
    }
}

/// The artifact store as CI caches see it: `[cache] dir` relative to the
/// project, else `~/.cache/strata` (strata's default under `$HOME`).
fn store_path(project: &Project, opts: &Options) -> String {
    match &project.settings.cache_dir {
        Some(d) => opts.path(project, d),
        None => "~/.cache/strata".into(),
    }
}

/// A `run` step with a (possibly multi-line) command, indented for a job's
/// `steps:` list.
fn run_step(name: &str, command: &str, timeout: Option<&str>) -> String {
    let mut s = format!("      - run:\n          name: {}\n", yaml_str(name));
    if command.contains('\n') {
        s.push_str("          command: |\n");
        for l in command.lines() {
            s.push_str(&format!("            {l}\n"));
        }
    } else {
        s.push_str(&format!("          command: {}\n", yaml_str(command)));
    }
    if let Some(t) = timeout {
        s.push_str(&format!("          no_output_timeout: {t}\n"));
    }
    s
}

/// A CircleCI 2.1 config: the staged plan as a workflow of one
/// parameterised job, `stage`, named after each stage.
pub fn circleci(project: &Project, plan: &Plan, opts: &Options) -> String {
    let v = &opts.version;
    let mut out = format!(
        "# Generated by `strata ci generate circleci` (stage plan {}). Run it locally with `strata ci run`.\n\
         # Seed jobs build what several targets share, once; each target's job requires the seeds\n\
         # its closure needs. `strata ci stage list` prints the plan.\nversion: 2.1\n\n",
        plan.digest()
    );
    out.push_str("executors:\n  builder:\n    docker:\n      - image: rust:1-bookworm\n    resource_class: large\n\n");
    out.push_str(&format!(
        "commands:\n  install-strata:\n    steps:\n      - restore_cache:\n          keys:\n            - {key}\n{run}      # Skipped by CircleCI when the key exists (caches are immutable).\n      - save_cache:\n          key: {key}\n          paths:\n            - ~/.strata-bin\n\n",
        key = opts.bin_key("{{ arch }}"),
        run = run_step(&format!("Install strata {v}"), &opts.install("$BASH_ENV"), None)
    ));
    out.push_str(&stage_job(project, plan, opts));
    out.push_str("workflows:\n  build:\n    jobs:\n");
    let remote = project.settings.cache_remote.is_some();
    for (i, s) in plan.stages.iter().enumerate() {
        out.push_str(&format!(
            "      - stage:\n          name: {n}\n          stage: {n}\n",
            n = s.name
        ));
        if !remote && !s.requires.is_empty() {
            out.push_str("          attach: true\n");
        }
        if !remote && plan.has_dependents(i) {
            out.push_str("          persist: true\n");
        }
        if s.board.is_some() {
            out.push_str("          target: true\n");
        }
        if !s.requires.is_empty() {
            out.push_str("          requires:\n");
            for &r in &s.requires {
                out.push_str(&format!("            - {}\n", plan.stages[r].name));
            }
        }
    }
    out
}

/// The `stage` job every stage runs as (parameters: the stage, whether it
/// attaches the workspace of the stages it requires, persists its own
/// artifacts for the stages requiring it, and is a target's own job).
fn stage_job(project: &Project, plan: &Plan, opts: &Options) -> String {
    let remote = project.settings.cache_remote.is_some();
    let cv = &project.cache_version;
    let st = opts.strata();
    let stage = "<< parameters.stage >>";
    let mut out = format!(
        "jobs:\n  stage:\n    executor: builder\n    parameters:\n      stage:\n        type: string\n      attach:\n        type: boolean\n        default: false\n      persist:\n        type: boolean\n        default: false\n      target:\n        type: boolean\n        default: false\n    environment:\n      STRATA_CI_PLAN: {}\n    steps:\n      - checkout\n      - install-strata\n",
        plan.digest()
    );
    let build = run_step(
        &format!("Build stage {stage}"),
        &format!("{st} ci stage build {stage}"),
        Some(NO_OUTPUT_TIMEOUT),
    );
    if remote {
        out.push_str(
            "      # Modules come from the shared artifact cache ([cache] remote) by their own keys:\n      # nothing is saved with CircleCI, no workspace needed.\n",
        );
        out.push_str(&build);
    } else {
        let store = store_path(project, opts);
        out.push_str(&format!(
            "      # The artifacts of the stages this one requires.\n      - when:\n          condition: << parameters.attach >>\n          steps:\n            - attach_workspace:\n                at: {store}\n"
        ));
        let key = format!("strata-stage-{stage}-v{cv}-{{{{ checksum \".strata-stage-key\" }}}}");
        out.push_str(&run_step(
            "Compute the stage key",
            &format!("{st} ci stage key {stage} > .strata-stage-key"),
            None,
        ));
        out.push_str(&format!(
            "      - restore_cache:\n          keys:\n            - {key}\n            - strata-stage-{stage}-v{cv}-\n"
        ));
        out.push_str(&build);
        out.push_str(&run_step(
            "Keep only the stage's own artifacts in the store",
            &format!("{st} ci stage prune {stage}"),
            None,
        ));
        out.push_str(&format!(
            "      # Skipped by CircleCI when the key exists (caches are immutable).\n      - save_cache:\n          key: {key}\n          paths:\n            - {store}\n      - when:\n          condition: << parameters.persist >>\n          steps:\n            - persist_to_workspace:\n                root: {store}\n                paths:\n                  - {}\n",
            crate::artifact::CACHE_FORMAT
        ));
    }
    out.push_str(&format!(
        "      - when:\n          condition: << parameters.target >>\n          steps:\n            - store_artifacts:\n                path: {}\n\n",
        opts.path(project, &project.settings.install_dir)
    ));
    out
}

/// A GitHub Actions workflow: the staged plan, one job per stage with
/// `needs:`. GitHub has no workspaces: without a `[cache] remote`, a job
/// restores the cache of every stage it requires (directly or not, by
/// their exact keys), then its own, and saves its own artifacts.
pub fn github(project: &Project, plan: &Plan, opts: &Options) -> String {
    let v = &opts.version;
    let mut out = format!(
        "# Generated by `strata ci generate github` (stage plan {}).\n\
         # Seed jobs build what several targets share, once; `strata ci stage list` prints the plan.\n\
         name: build\non: [push, pull_request]\n\njobs:\n",
        plan.digest()
    );
    let install = opts
        .install("$GITHUB_PATH")
        .replace(
            &format!("echo 'export PATH=\"{BIN_ROOT}/bin:$PATH\"' >> \"$GITHUB_PATH\""),
            &format!("echo \"{BIN_ROOT}/bin\" >> \"$GITHUB_PATH\""),
        )
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect::<String>();
    for (i, stage) in plan.stages.iter().enumerate() {
        out.push_str(&format!("  {}:\n", github_id(&stage.name)));
        if !stage.requires.is_empty() {
            let needs: Vec<String> = stage
                .requires
                .iter()
                .map(|&r| github_id(&plan.stages[r].name))
                .collect();
            out.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
        out.push_str(&format!(
            "    runs-on: ubuntu-latest\n    env:\n      STRATA_CI_PLAN: {}\n    steps:\n      - uses: actions/checkout@v4\n      # actions/cache skips its save on an exact hit.\n      - uses: actions/cache@v4\n        with:\n          path: ~/.strata-bin\n          key: {}\n      - name: Install strata {v}\n        run: |\n{install}",
            plan.digest(),
            opts.bin_key("${{ runner.os }}-${{ runner.arch }}"),
        ));
        out.push_str(&github_steps(project, plan, opts, i));
        if let Some(t) = &stage.board {
            out.push_str(&format!(
                "      - uses: actions/upload-artifact@v4\n        with:\n          name: {t}\n          path: {}\n",
                opts.path(project, &project.settings.install_dir)
            ));
        }
        out.push('\n');
    }
    out
}

/// A stage's caches and build steps in the GitHub workflow.
fn github_steps(project: &Project, plan: &Plan, opts: &Options, i: usize) -> String {
    let s = opts.strata();
    let name = &plan.stages[i].name;
    let build =
        format!("      - name: Build stage {name}\n        run: {s} ci stage build {name}\n");
    if project.settings.cache_remote.is_some() {
        return format!(
            "      # Modules come from the shared artifact cache ([cache] remote); nothing saved here.\n{}        env:\n          AWS_ACCESS_KEY_ID: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}\n          AWS_SECRET_ACCESS_KEY: ${{{{ secrets.AWS_SECRET_ACCESS_KEY }}}}\n",
            build
        );
    }
    let cv = &project.cache_version;
    let store = store_path(project, opts);
    let ancestors = plan.ancestors(i);
    let mut keys = String::from("      - name: Compute the stage keys\n        run: |\n");
    for &a in &ancestors {
        let a = &plan.stages[a].name;
        keys.push_str(&format!(
            "          {s} ci stage key {a} > .strata-stage-key-{a}\n"
        ));
    }
    keys.push_str(&format!(
        "          {s} ci stage key {name} > .strata-stage-key\n"
    ));
    let mut out = keys;
    for &a in &ancestors {
        let a = &plan.stages[a].name;
        out.push_str(&format!(
            "      - uses: actions/cache/restore@v4\n        with:\n          path: {store}\n          key: strata-stage-{a}-v{cv}-${{{{ hashFiles('.strata-stage-key-{a}') }}}}\n"
        ));
    }
    out.push_str(&format!(
        "      - id: store\n        uses: actions/cache/restore@v4\n        with:\n          path: {store}\n          key: strata-stage-{name}-v{cv}-${{{{ hashFiles('.strata-stage-key') }}}}\n          restore-keys: strata-stage-{name}-v{cv}-\n{build}      - name: Keep only the stage's own artifacts in the store\n        run: {s} ci stage prune {name}\n      - if: steps.store.outputs.cache-hit != 'true'\n        uses: actions/cache/save@v4\n        with:\n          path: {store}\n          key: ${{{{ steps.store.outputs.cache-primary-key }}}}\n"
    ));
    out
}

/// A GitHub job id for stage `name` (`[A-Za-z0-9_-]`, `.` and the rest as `_`).
fn github_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `w` as one shell word: as it is when it holds only safe characters,
/// else single-quoted.
fn shell_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./+-".contains(c);
    if !w.is_empty() && !w.starts_with('-') && w.chars().all(safe) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// `s` as a double-quoted YAML scalar.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn rel(project: &Project, p: &std::path::Path) -> String {
    p.strip_prefix(&project.root)
        .unwrap_or(p)
        .display()
        .to_string()
}
