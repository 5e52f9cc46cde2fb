//! Expansion of a parsed config into concrete jobs: parameters bound and
//! type-checked, `<< parameters.x >>` / `<< pipeline.* >>` substituted,
//! `<<# parameters.flag >>` sections kept or dropped, commands inlined,
//! executors and orbs (inline, or registry orbs whose source the caller
//! supplies) resolved, `when`/`unless` decided.
//!
//! Substitution itself is in [`super::subst`], steps in [`super::steps`].

use super::model::{ConfigError, Job, Pipeline};
use serde_norway::{Mapping, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The most copies `parallelism` may ask for.
pub const MAX_PARALLELISM: u64 = 100;

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

/// An `environment`: a map, or a list of maps (or of `NAME=VALUE`).
pub fn env_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                out.insert(scalar(k), scalar(v));
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                match item {
                    Value::Mapping(m) => {
                        for (k, v) in m {
                            out.insert(scalar(k), scalar(v));
                        }
                    }
                    other => {
                        let text = scalar(other);
                        if let Some((k, v)) = text.split_once('=') {
                            out.insert(k.to_string(), v.to_string());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    out
}

pub fn list_str(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().map(scalar).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![scalar(v)],
    }
}

/// An orb: its definition, or why it has none.
type Orb = Result<Value, String>;

/// The expansion context of one config.
pub struct Cx<'a> {
    pub file: &'a str,
    pub doc: Value,
    pub pipeline: &'a Pipeline,
    /// Orb name (as the config's `orbs:` names it) → definition.
    orbs: BTreeMap<String, Orb>,
    /// Orb name → registry reference (`circleci/continuation@1.0.0`).
    pub(super) orb_refs: BTreeMap<String, String>,
    /// Bound pipeline parameters.
    pub(super) pipeline_params: Mapping,
    pub warnings: RefCell<Vec<String>>,
    /// Set while expanding a job that uses an orb with no source.
    pub(super) unresolved: RefCell<Option<String>>,
}

impl<'a> Cx<'a> {
    pub fn new(
        file: &'a str,
        doc: Value,
        pipeline: &'a Pipeline,
        fetch_orb: &dyn Fn(&str) -> Result<String, String>,
        warnings: &mut Vec<String>,
    ) -> Result<Cx<'a>, ConfigError> {
        let mut cx = Cx {
            file,
            doc,
            pipeline,
            orbs: BTreeMap::new(),
            orb_refs: BTreeMap::new(),
            pipeline_params: Mapping::new(),
            warnings: RefCell::new(Vec::new()),
            unresolved: RefCell::new(None),
        };
        // Pipeline parameters: declared types, defaults, `--param` values.
        let decl = cx.doc.get("parameters").cloned();
        let mut args = Mapping::new();
        for (k, v) in &pipeline.params {
            let d = decl.as_ref().and_then(|d| d.get(k.as_str()));
            let Some(d) = d else {
                return Err(cx.err(
                    "parameters",
                    format!("--param {k}: the config declares no pipeline parameter `{k}`"),
                ));
            };
            let typed = match d.get("type").map(scalar).as_deref() {
                Some("boolean") => match v.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::String(v.clone()),
                },
                Some("integer") => v
                    .parse::<i64>()
                    .map(|n| Value::Number(n.into()))
                    .unwrap_or_else(|_| Value::String(v.clone())),
                _ => Value::String(v.clone()),
            };
            args.insert(Value::String(k.clone()), typed);
        }
        cx.pipeline_params = cx.bind("parameters", decl.as_ref(), &args, &[])?;
        // Orbs: inline definitions, or registry references resolved by the caller.
        if let Some(Value::Mapping(orbs)) = cx.doc.get("orbs").cloned() {
            for (k, v) in orbs {
                let name = scalar(&k);
                if let Value::String(r) = &v {
                    cx.orb_refs.insert(name.clone(), r.clone());
                }
                let orb = match v {
                    // Orbs that talk to CircleCI's API are served by the runner.
                    Value::String(reference)
                        if let Some(text) = super::builtin_orbs::source(&reference) =>
                    {
                        super::yaml::parse(text).map_err(|e| format!("orb `{reference}`: {e}"))
                    }
                    Value::String(reference) => match fetch_orb(&reference) {
                        Ok(text) => {
                            super::yaml::parse(&text).map_err(|e| format!("orb `{reference}`: {e}"))
                        }
                        Err(why) => {
                            warnings
                                .push(format!("orb `{name}` ({reference}) has no source: {why}"));
                            Err(why)
                        }
                    },
                    inline @ Value::Mapping(_) => Ok(inline),
                    other => Err(format!(
                        "orb `{name}` is {other:?}, not a reference or a map"
                    )),
                };
                if let Err(e) = &orb
                    && e.starts_with("orb `")
                {
                    return Err(cx.err(&format!("orbs.{name}"), e.clone()));
                }
                cx.orbs.insert(name, orb);
            }
        }
        Ok(cx)
    }

    pub fn err(&self, at: &str, what: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            at: at.into(),
            what: what.into(),
        }
    }

    /// `section` entry `name` (`jobs`, `commands`, `executors`): `orb/x` in
    /// an orb, `x` in the current orb `scope` first, then the config.
    /// `Err` when the orb it names has no source.
    pub(super) fn lookup(
        &self,
        section: &str,
        name: &str,
        scope: Option<&str>,
    ) -> Result<Option<(Value, Option<String>)>, String> {
        if let Some((orb, rest)) = name.split_once('/') {
            return match self.orbs.get(orb) {
                None => Ok(None),
                Some(Err(why)) => Err(format!("orb `{orb}` has no source: {why}")),
                Some(Ok(def)) => Ok(def
                    .get(section)
                    .and_then(|s| s.get(rest))
                    .map(|d| (d.clone(), Some(orb.to_string())))),
            };
        }
        if let Some(o) = scope
            && let Some(Ok(def)) = self.orbs.get(o)
            && let Some(d) = def.get(section).and_then(|s| s.get(name))
        {
            return Ok(Some((d.clone(), Some(o.to_string()))));
        }
        Ok(self
            .doc
            .get(section)
            .and_then(|s| s.get(name))
            .map(|d| (d.clone(), None)))
    }

    /// Checks `args` against `decl` (a `parameters:` map) and fills defaults.
    pub fn bind(
        &self,
        at: &str,
        decl: Option<&Value>,
        args: &Mapping,
        reserved: &[&str],
    ) -> Result<Mapping, ConfigError> {
        let mut out = Mapping::new();
        let decl = decl
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        for (k, _) in args {
            let name = scalar(k);
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
                "string" | "env_var_name" => {
                    matches!(v, Value::String(_) | Value::Number(_) | Value::Null)
                }
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
                "executor" => matches!(v, Value::String(_) | Value::Mapping(_)),
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

    /// The concrete job `job_ref` of workflow `wf`, with workflow `args`.
    pub fn job(&self, wf: &str, job_ref: &str, args: &Mapping) -> Result<Job, ConfigError> {
        let at = format!("jobs.{job_ref}");
        let name = args
            .get("name")
            .map(scalar)
            .unwrap_or_else(|| job_ref.to_string());
        let requires = list_str(args.get("requires"));
        let serial_group = args.get("serial-group").map(scalar);
        if args.get("type").map(scalar).as_deref() == Some("approval") {
            return Ok(Job {
                name,
                job_ref: job_ref.to_string(),
                requires,
                approval: true,
                parallelism: 1,
                ..Job::default()
            });
        }
        let no_op = || Job {
            name: name.clone(),
            job_ref: job_ref.to_string(),
            requires: requires.clone(),
            parallelism: 1,
            serial_group: serial_group.clone(),
            ..Job::default()
        };
        // `type: no-op`: a job that runs nothing and succeeds (a join point
        // for `requires`), in the workflow entry or the job's definition.
        if args.get("type").map(scalar).as_deref() == Some("no-op") {
            return Ok(no_op());
        }
        let (def, scope) = match self.lookup("jobs", job_ref, None) {
            Ok(Some(found)) if found.0.get("type").map(scalar).as_deref() == Some("no-op") => {
                return Ok(no_op());
            }
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(self.err(
                    &format!("workflows.{wf}.jobs"),
                    format!("no job named `{job_ref}`"),
                ));
            }
            Err(why) => {
                return Ok(Job {
                    name,
                    job_ref: job_ref.to_string(),
                    requires,
                    parallelism: 1,
                    unresolved: Some(why),
                    ..Job::default()
                });
            }
        };
        let reserved = [
            "name",
            "requires",
            "context",
            "filters",
            "matrix",
            "type",
            "pre-steps",
            "post-steps",
            "serial-group",
        ];
        let params = self.bind(&at, def.get("parameters"), args, &reserved)?;
        let def = self.subst(&at, &def, &params)?;
        *self.unresolved.borrow_mut() = None;
        let mut environment = BTreeMap::new();
        let mut working_directory = None;
        let executor_note = self.executor_note(
            &def,
            scope.as_deref(),
            &mut environment,
            &mut working_directory,
        )?;
        environment.extend(env_map(def.get("environment")));
        if let Some(w) = def.get("working_directory") {
            working_directory = Some(scalar(w));
        }
        let parallelism = match def.get("parallelism") {
            None => 1,
            Some(v) => super::values::count("parallelism", &scalar(v), MAX_PARALLELISM)
                .map_err(|e| self.err(&at, e))?,
        };
        let raw = def
            .get("steps")
            .and_then(Value::as_sequence)
            .ok_or_else(|| self.err(&at, "a job needs `steps`"))?;
        // `pre-steps`/`post-steps` are the workflow's, so their names are
        // the config's, never the (orb) job's own.
        let extra = |key: &str| match args.get(key) {
            Some(Value::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        };
        let mut steps = Vec::new();
        self.expand(&at, &extra("pre-steps"), &mut steps, 0, None)?;
        self.expand(&at, raw, &mut steps, 0, scope.as_deref())?;
        self.expand(&at, &extra("post-steps"), &mut steps, 0, None)?;
        Ok(Job {
            name,
            job_ref: job_ref.to_string(),
            requires,
            environment,
            working_directory: working_directory.unwrap_or_else(|| "~/project".into()),
            executor_note,
            steps,
            parallelism,
            approval: false,
            unresolved: self.unresolved.borrow_mut().take(),
            serial_group,
        })
    }

    /// Notes the executor (jobs run on the host) and takes its environment
    /// and working directory.
    fn executor_note(
        &self,
        def: &Value,
        scope: Option<&str>,
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
        let Some(e) = def.get("executor") else {
            return Ok(describe(def));
        };
        let (name, mut args) = match e {
            Value::String(s) => (s.clone(), Mapping::new()),
            Value::Mapping(m) => (m.get("name").map(scalar).unwrap_or_default(), m.clone()),
            _ => (String::new(), Mapping::new()),
        };
        args.remove("name");
        let (ex, ex_scope) = match self.lookup("executors", &name, scope) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(self.err("executor", format!("no executor named `{name}`")));
            }
            Err(why) => {
                *self.unresolved.borrow_mut() = Some(why);
                return Ok(Some(format!("executor {name} from an orb with no source")));
            }
        };
        let at = format!("executors.{name}");
        let params = self.bind(&at, ex.get("parameters"), &args, &[])?;
        let ex = self.subst(&at, &ex, &params)?;
        env.extend(env_map(ex.get("environment")));
        if let Some(w) = ex.get("working_directory") {
            *wd = Some(scalar(w));
        }
        let _ = ex_scope;
        Ok(describe(&ex))
    }
}
