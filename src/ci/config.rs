//! CircleCI 2.1 configuration: parsed from YAML, then every job of a
//! workflow expanded into a flat list of concrete steps (commands inlined,
//! `<< parameters.x >>` and `<< pipeline.* >>` substituted, `when`/`unless`
//! decided), which is what the runner executes and `--dry-run` prints.

use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// CircleCI's default `no_output_timeout`.
pub const DEFAULT_NO_OUTPUT_TIMEOUT: Duration = Duration::from_secs(600);

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {what}")]
pub struct ConfigError {
    pub file: String,
    pub at: String,
    pub what: String,
}

/// When a step runs, relative to the job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    OnSuccess,
    OnFail,
    Always,
}

/// One concrete step.
#[derive(Clone, Debug)]
pub enum Step {
    Checkout,
    Run {
        name: String,
        command: String,
        environment: BTreeMap<String, String>,
        working_directory: Option<String>,
        when: When,
        no_output_timeout: Duration,
    },
    RestoreCache {
        name: String,
        keys: Vec<String>,
    },
    SaveCache {
        name: String,
        key: String,
        paths: Vec<String>,
        when: When,
    },
    PersistToWorkspace {
        root: String,
        paths: Vec<String>,
    },
    AttachWorkspace {
        at: String,
    },
    StoreArtifacts {
        path: String,
        destination: Option<String>,
    },
    /// A step that has no meaning on the host (e.g. setup_remote_docker).
    Noted(String),
}

impl Step {
    pub fn when(&self) -> When {
        match self {
            Step::Run { when, .. } | Step::SaveCache { when, .. } => *when,
            _ => When::OnSuccess,
        }
    }

    pub fn title(&self) -> String {
        match self {
            Step::Checkout => "Checkout code".into(),
            Step::Run { name, .. } => name.clone(),
            Step::RestoreCache { name, .. } | Step::SaveCache { name, .. } => name.clone(),
            Step::PersistToWorkspace { .. } => "Persisting to Workspace".into(),
            Step::AttachWorkspace { .. } => "Attaching Workspace".into(),
            Step::StoreArtifacts { .. } => "Uploading artifacts".into(),
            Step::Noted(what) => what.clone(),
        }
    }
}

/// One job of the workflow, ready to run.
#[derive(Clone, Debug)]
pub struct Job {
    /// The name in the workflow (`name:` or the job's own name).
    pub name: String,
    pub requires: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub working_directory: String,
    /// What the executor asked for, noted: jobs run on the host.
    pub executor_note: Option<String>,
    pub steps: Vec<Step>,
}

/// Values of `<< pipeline.* >>`.
pub struct Pipeline {
    pub branch: String,
    pub revision: String,
    pub number: u64,
}

/// Reads `file` and expands `workflow` (or the only one).
pub fn load(
    file: &str,
    text: &str,
    workflow: Option<&str>,
    pipeline: &Pipeline,
) -> Result<(String, Vec<Job>), ConfigError> {
    let err = |at: &str, what: String| ConfigError {
        file: file.into(),
        at: at.into(),
        what,
    };
    let doc: Value = super::yaml::parse(text).map_err(|e| err("YAML", e))?;
    let version = doc.get("version").map(scalar).unwrap_or_default();
    if version != "2.1" && version != "2" && version != "2.0" {
        return Err(err(
            "version",
            format!("version `{version}` is not supported; strata runs CircleCI 2.1 configs"),
        ));
    }
    let cx = Cx {
        file,
        doc: &doc,
        pipeline,
    };
    let workflows = doc
        .get("workflows")
        .and_then(Value::as_mapping)
        .ok_or_else(|| err("workflows", "no workflows".into()))?;
    let names: Vec<String> = workflows
        .iter()
        .filter(|(_, v)| v.get("jobs").is_some())
        .map(|(k, _)| scalar(k))
        .collect();
    let wf_name = match workflow {
        Some(w) if names.iter().any(|n| n == w) => w.to_string(),
        Some(w) => {
            return Err(err(
                "workflows",
                format!("no workflow `{w}` (have: {})", names.join(", ")),
            ));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(err(
                "workflows",
                format!(
                    "several workflows; pick one with --workflow ({})",
                    names.join(", ")
                ),
            ));
        }
    };
    let wf = &workflows[wf_name.as_str()];
    let mut jobs = Vec::new();
    for entry in wf["jobs"].as_sequence().into_iter().flatten() {
        let (job_ref, args) = match entry {
            Value::String(s) => (s.clone(), Mapping::new()),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one");
                (scalar(k), v.as_mapping().cloned().unwrap_or_default())
            }
            other => {
                return Err(err(
                    &format!("workflows.{wf_name}.jobs"),
                    format!("cannot read job entry {other:?}"),
                ));
            }
        };
        jobs.push(cx.job(&wf_name, &job_ref, &args)?);
    }
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    for j in &jobs {
        for r in &j.requires {
            if !names.contains(&r.as_str()) {
                return Err(err(
                    &format!("workflows.{wf_name}.jobs.{}", j.name),
                    format!("requires `{r}`, which is not a job of this workflow"),
                ));
            }
        }
    }
    Ok((wf_name, jobs))
}

struct Cx<'a> {
    file: &'a str,
    doc: &'a Value,
    pipeline: &'a Pipeline,
}

/// A scalar as text (`true`, `3`, `abc`).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn map_str(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect())
        .unwrap_or_default()
}

fn list_str(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().map(scalar).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![scalar(v)],
    }
}

impl Cx<'_> {
    fn err(&self, at: &str, what: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            at: at.into(),
            what: what.into(),
        }
    }

    /// Checks `args` against `decl` (a `parameters:` map) and fills defaults.
    fn bind(&self, at: &str, decl: Option<&Value>, args: &Mapping) -> Result<Mapping, ConfigError> {
        let mut out = Mapping::new();
        let decl = decl
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        for (k, _) in args {
            let name = scalar(k);
            let reserved = ["name", "requires", "context", "filters", "matrix", "type"];
            if !decl.contains_key(k) && !reserved.contains(&name.as_str()) {
                return Err(self.err(at, format!("unknown parameter `{name}`")));
            }
        }
        for (k, d) in &decl {
            let name = scalar(k);
            let ty = d.get("type").map(scalar).unwrap_or_else(|| "string".into());
            let v = match args.get(k).or_else(|| d.get("default")) {
                Some(v) => v.clone(),
                None => {
                    return Err(self.err(at, format!("missing parameter `{name}` (no default)")));
                }
            };
            let ok = match ty.as_str() {
                "string" | "env_var_name" => matches!(v, Value::String(_) | Value::Number(_)),
                "boolean" => matches!(v, Value::Bool(_)),
                "integer" => v.as_i64().is_some(),
                "enum" => {
                    let allowed = list_str(d.get("enum"));
                    if !allowed.contains(&scalar(&v)) {
                        return Err(self.err(
                            at,
                            format!(
                                "parameter `{name}` is `{}`, not one of {}",
                                scalar(&v),
                                allowed.join(", ")
                            ),
                        ));
                    }
                    true
                }
                "steps" => matches!(v, Value::Sequence(_)),
                other => {
                    return Err(self.err(at, format!("parameter `{name}`: unknown type `{other}`")));
                }
            };
            if !ok {
                return Err(self.err(
                    at,
                    format!("parameter `{name}` must be a {ty}, got `{}`", scalar(&v)),
                ));
            }
            out.insert(k.clone(), v);
        }
        Ok(out)
    }

    /// Substitutes `<< parameters.x >>` and `<< pipeline.* >>` in every string of `v`.
    fn subst(&self, at: &str, v: &Value, params: &Mapping) -> Result<Value, ConfigError> {
        Ok(match v {
            Value::String(s) => {
                let t = s.trim();
                // A whole-value reference keeps its type (booleans, steps).
                if let Some(name) = t
                    .strip_prefix("<<")
                    .and_then(|r| r.strip_suffix(">>"))
                    .map(str::trim)
                    .and_then(|r| r.strip_prefix("parameters."))
                    && !name.contains("<<")
                {
                    return params.get(name).cloned().ok_or_else(|| {
                        self.err(at, format!("`<< parameters.{name} >>` is not declared"))
                    });
                }
                Value::String(self.subst_str(at, s, params)?)
            }
            Value::Sequence(seq) => {
                let mut out = Vec::new();
                for item in seq {
                    // A steps parameter used as a step splices its steps in.
                    match self.subst(at, item, params)? {
                        Value::Sequence(inner) if matches!(item, Value::String(_)) => {
                            out.extend(inner)
                        }
                        other => out.push(other),
                    }
                }
                Value::Sequence(out)
            }
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.subst(at, v, params)?);
                }
                Value::Mapping(out)
            }
            other => other.clone(),
        })
    }

    fn subst_str(&self, at: &str, s: &str, params: &Mapping) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("<<") {
            let Some(j) = rest[i..].find(">>") else { break };
            out.push_str(&rest[..i]);
            let expr = rest[i + 2..i + j].trim();
            let value = if let Some(name) = expr.strip_prefix("parameters.") {
                scalar(params.get(name).ok_or_else(|| {
                    self.err(at, format!("`<< parameters.{name} >>` is not declared"))
                })?)
            } else {
                match expr {
                    "pipeline.git.branch" => self.pipeline.branch.clone(),
                    "pipeline.git.revision" => self.pipeline.revision.clone(),
                    "pipeline.number" => self.pipeline.number.to_string(),
                    "pipeline.id" => format!("local-{}", self.pipeline.number),
                    other => return Err(self.err(at, format!("unknown `<< {other} >>`"))),
                }
            };
            out.push_str(&value);
            rest = &rest[i + j + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn job(&self, wf: &str, job_ref: &str, args: &Mapping) -> Result<Job, ConfigError> {
        let at = format!("jobs.{job_ref}");
        let def = self
            .doc
            .get("jobs")
            .and_then(|j| j.get(job_ref))
            .ok_or_else(|| {
                self.err(
                    &format!("workflows.{wf}.jobs"),
                    format!("no job named `{job_ref}`"),
                )
            })?;
        let params = self.bind(&at, def.get("parameters"), args)?;
        let def = self.subst(&at, def, &params)?;
        let name = args
            .get("name")
            .map(scalar)
            .unwrap_or_else(|| job_ref.to_string());
        let mut environment = BTreeMap::new();
        let mut working_directory = None;
        let executor_note = self.executor_note(&def, &mut environment, &mut working_directory)?;
        environment.extend(map_str(def.get("environment")));
        if let Some(w) = def.get("working_directory") {
            working_directory = Some(scalar(w));
        }
        let mut steps = Vec::new();
        let raw = def
            .get("steps")
            .and_then(Value::as_sequence)
            .ok_or_else(|| self.err(&at, "a job needs `steps`"))?;
        self.expand(&at, raw, &mut steps, 0)?;
        Ok(Job {
            name,
            requires: list_str(args.get("requires")),
            environment,
            working_directory: working_directory.unwrap_or_else(|| "~/project".into()),
            executor_note,
            steps,
        })
    }

    /// Notes the executor (jobs run on the host) and takes its environment
    /// and working directory.
    fn executor_note(
        &self,
        def: &Value,
        env: &mut BTreeMap<String, String>,
        wd: &mut Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let describe = |v: &Value| -> Option<String> {
            if let Some(d) = v.get("docker").and_then(Value::as_sequence) {
                let image = d
                    .first()
                    .and_then(|i| i.get("image"))
                    .map(scalar)
                    .unwrap_or_default();
                return Some(format!(
                    "docker executor ({image}) noted; running on the host"
                ));
            }
            if v.get("machine").is_some() {
                return Some("machine executor noted; running on the host".into());
            }
            if v.get("macos").is_some() {
                return Some("macos executor noted; running on the host".into());
            }
            None
        };
        if let Some(e) = def.get("executor") {
            let (name, args) = match e {
                Value::String(s) => (s.clone(), Mapping::new()),
                Value::Mapping(m) => (m.get("name").map(scalar).unwrap_or_default(), m.clone()),
                _ => (String::new(), Mapping::new()),
            };
            let ex = self
                .doc
                .get("executors")
                .and_then(|x| x.get(name.as_str()))
                .ok_or_else(|| self.err("executor", format!("no executor named `{name}`")))?;
            let at = format!("executors.{name}");
            let params = self.bind(&at, ex.get("parameters"), &args)?;
            let ex = self.subst(&at, ex, &params)?;
            env.extend(map_str(ex.get("environment")));
            if let Some(w) = ex.get("working_directory") {
                *wd = Some(scalar(w));
            }
            return Ok(describe(&ex));
        }
        Ok(describe(def))
    }

    fn expand(
        &self,
        at: &str,
        raw: &[Value],
        out: &mut Vec<Step>,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > 20 {
            return Err(self.err(
                at,
                "commands nest more than 20 deep (a command calls itself?)",
            ));
        }
        for item in raw {
            let (name, args) = match item {
                Value::String(s) => (s.clone(), Value::Null),
                Value::Mapping(m) if m.len() == 1 => {
                    let (k, v) = m.iter().next().expect("one");
                    (scalar(k), v.clone())
                }
                other => return Err(self.err(at, format!("cannot read step {other:?}"))),
            };
            let step_at = format!("{at}.steps.{name}");
            let get = |k: &str| args.get(k);
            match name.as_str() {
                "checkout" => out.push(Step::Checkout),
                "run" => {
                    let (command, map) = match &args {
                        Value::String(s) => (s.clone(), Value::Null),
                        m => (
                            get("command")
                                .map(scalar)
                                .ok_or_else(|| self.err(&step_at, "`run` needs `command`"))?,
                            m.clone(),
                        ),
                    };
                    let when = match map.get("when").map(scalar).as_deref() {
                        None | Some("on_success") => When::OnSuccess,
                        Some("on_fail") => When::OnFail,
                        Some("always") => When::Always,
                        Some(o) => return Err(self.err(&step_at, format!("unknown `when: {o}`"))),
                    };
                    let no_output_timeout = match map.get("no_output_timeout") {
                        None => DEFAULT_NO_OUTPUT_TIMEOUT,
                        Some(v) => super::values::duration("no_output_timeout", &scalar(v))
                            .map_err(|e| self.err(&step_at, e))?,
                    };
                    let first_line = command.lines().next().unwrap_or("").to_string();
                    out.push(Step::Run {
                        name: map.get("name").map(scalar).unwrap_or(first_line),
                        command,
                        environment: map_str(map.get("environment")),
                        working_directory: map.get("working_directory").map(scalar),
                        when,
                        no_output_timeout,
                    });
                }
                "restore_cache" => {
                    let mut keys = list_str(get("keys"));
                    if let Some(k) = get("key") {
                        keys.insert(0, scalar(k));
                    }
                    if keys.is_empty() {
                        return Err(self.err(&step_at, "`restore_cache` needs `key` or `keys`"));
                    }
                    out.push(Step::RestoreCache {
                        name: get("name")
                            .map(scalar)
                            .unwrap_or_else(|| "Restoring cache".into()),
                        keys,
                    });
                }
                "save_cache" => {
                    let key = get("key")
                        .map(scalar)
                        .ok_or_else(|| self.err(&step_at, "`save_cache` needs `key`"))?;
                    let when = match get("when").map(scalar).as_deref() {
                        None | Some("on_success") => When::OnSuccess,
                        Some("on_fail") => When::OnFail,
                        Some("always") => When::Always,
                        Some(o) => return Err(self.err(&step_at, format!("unknown `when: {o}`"))),
                    };
                    out.push(Step::SaveCache {
                        name: get("name")
                            .map(scalar)
                            .unwrap_or_else(|| "Saving cache".into()),
                        key,
                        paths: list_str(get("paths")),
                        when,
                    });
                }
                "persist_to_workspace" => out.push(Step::PersistToWorkspace {
                    root: get("root")
                        .map(scalar)
                        .ok_or_else(|| self.err(&step_at, "needs `root`"))?,
                    paths: list_str(get("paths")),
                }),
                "attach_workspace" => out.push(Step::AttachWorkspace {
                    at: get("at")
                        .map(scalar)
                        .ok_or_else(|| self.err(&step_at, "needs `at`"))?,
                }),
                "store_artifacts" => out.push(Step::StoreArtifacts {
                    path: get("path")
                        .map(scalar)
                        .ok_or_else(|| self.err(&step_at, "needs `path`"))?,
                    destination: get("destination").map(scalar),
                }),
                "when" | "unless" => {
                    let cond =
                        get("condition").ok_or_else(|| self.err(&step_at, "needs `condition`"))?;
                    let truth = self.condition(&step_at, cond)?;
                    if truth == (name == "when") {
                        let steps = get("steps")
                            .and_then(Value::as_sequence)
                            .ok_or_else(|| self.err(&step_at, "needs `steps`"))?;
                        self.expand(at, steps, out, depth + 1)?;
                    }
                }
                "setup_remote_docker" | "add_ssh_keys" | "store_test_results" => out.push(
                    Step::Noted(format!("{name} (noted; nothing to do on the host)")),
                ),
                other => {
                    let cmd = self
                        .doc
                        .get("commands")
                        .and_then(|c| c.get(other))
                        .ok_or_else(|| {
                            self.err(&step_at, format!("unknown step or command `{other}`"))
                        })?;
                    let args = args.as_mapping().cloned().unwrap_or_default();
                    let cat = format!("commands.{other}");
                    let params = self.bind(&cat, cmd.get("parameters"), &args)?;
                    let cmd = self.subst(&cat, cmd, &params)?;
                    let steps = cmd
                        .get("steps")
                        .and_then(Value::as_sequence)
                        .ok_or_else(|| self.err(&cat, "a command needs `steps`"))?;
                    self.expand(&cat, steps, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// A literal condition: booleans, strings (empty is false), numbers (0 is
    /// false), and `equal`, `not`, `and`, `or` over them.
    fn condition(&self, at: &str, v: &Value) -> Result<bool, ConfigError> {
        Ok(match v {
            Value::Bool(b) => *b,
            Value::Null => false,
            Value::String(s) => !s.is_empty() && s != "false",
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().expect("one");
                match scalar(k).as_str() {
                    "equal" => {
                        let items: Vec<String> = list_str(Some(arg));
                        items.windows(2).all(|w| w[0] == w[1])
                    }
                    "not" => !self.condition(at, arg)?,
                    "and" => {
                        let mut all = true;
                        for x in arg.as_sequence().into_iter().flatten() {
                            all &= self.condition(at, x)?;
                        }
                        all
                    }
                    "or" => {
                        let mut any = false;
                        for x in arg.as_sequence().into_iter().flatten() {
                            any |= self.condition(at, x)?;
                        }
                        any
                    }
                    other => return Err(self.err(at, format!("unknown condition `{other}`"))),
                }
            }
            other => return Err(self.err(at, format!("cannot read condition {other:?}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline {
            branch: "main".into(),
            revision: "abc".into(),
            number: 7,
        }
    }

    #[test]
    fn commands_parameters_and_conditions_expand() {
        let cfg = r#"
version: 2.1
executors:
  host:
    docker: [{image: "debian:12"}]
    environment: {FROM_EXECUTOR: "1"}
commands:
  greet:
    parameters:
      who: {type: string, default: world}
      loud: {type: boolean, default: false}
      then: {type: steps, default: []}
    steps:
      - run: echo hello << parameters.who >> on << pipeline.git.branch >>
      - when:
          condition: << parameters.loud >>
          steps: [run: echo LOUD]
      - << parameters.then >>
jobs:
  j:
    executor: host
    parameters:
      n: {type: integer, default: 1}
      mode: {type: enum, enum: [fast, slow], default: fast}
    steps:
      - greet:
          who: you
          loud: true
          then: [run: {name: after, command: "echo n=<< parameters.n >>", when: always, no_output_timeout: 1m30s}]
      - unless:
          condition: {equal: [fast, << parameters.mode >>]}
          steps: [run: echo slow]
workflows:
  w:
    jobs:
      - j: {name: j1, n: 3}
      - j: {name: j2, requires: [j1], mode: slow}
"#;
        let (wf, jobs) = load("config.yml", cfg, None, &pipeline()).unwrap();
        assert_eq!(wf, "w");
        assert_eq!(jobs.len(), 2);
        let titles: Vec<String> = jobs[0].steps.iter().map(Step::title).collect();
        assert_eq!(titles, ["echo hello you on main", "echo LOUD", "after"]);
        match &jobs[0].steps[2] {
            Step::Run {
                command,
                when,
                no_output_timeout,
                ..
            } => {
                assert_eq!(command, "echo n=3");
                assert_eq!(*when, When::Always);
                assert_eq!(*no_output_timeout, Duration::from_secs(90));
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(jobs[0].environment["FROM_EXECUTOR"], "1");
        assert!(
            jobs[0]
                .executor_note
                .as_deref()
                .unwrap()
                .contains("debian:12")
        );
        assert_eq!(jobs[1].requires, ["j1"]);
        assert_eq!(jobs[1].steps.last().unwrap().title(), "echo slow");
    }

    #[test]
    fn bad_parameters_are_errors_naming_the_place() {
        let cfg = "version: 2.1\njobs:\n  j:\n    parameters:\n      mode: {type: enum, enum: [a, b]}\n    steps: [checkout]\nworkflows:\n  w:\n    jobs:\n      - j: {mode: c}\n";
        let e = load("c.yml", cfg, None, &pipeline()).unwrap_err();
        assert!(
            e.to_string().contains("jobs.j") && e.to_string().contains("not one of a, b"),
            "{e}"
        );
        let cfg =
            "version: 2.1\njobs:\n  j:\n    steps: [bogus]\nworkflows:\n  w:\n    jobs: [j]\n";
        let e = load("c.yml", cfg, None, &pipeline()).unwrap_err();
        assert!(
            e.to_string().contains("unknown step or command `bogus`"),
            "{e}"
        );
    }
}
