//! Expansion of a job's `steps:` into concrete steps: the built-in steps
//! (`run`, `deploy`, caches, workspaces, `checkout`…), `when`/`unless`
//! decided by logic statements (`equal`, `not`, `and`, `or`, `matches`),
//! `steps:` splices, and commands (the config's or an orb's) inlined with
//! their parameters bound.

use super::expand::{Cx, env_map, list_str, scalar};
use super::model::{ConfigError, DEFAULT_NO_OUTPUT_TIMEOUT, Step, When};
use serde_norway::{Mapping, Value};

impl Cx<'_> {
    pub(super) fn expand(
        &self,
        at: &str,
        raw: &[Value],
        out: &mut Vec<Step>,
        depth: usize,
        scope: Option<&str>,
    ) -> Result<(), ConfigError> {
        if depth > 20 {
            return Err(self.err(
                at,
                "commands nest more than 20 deep (a command calls itself?)",
            ));
        }
        for item in raw {
            let (name, args) = self.step_item(at, item)?;
            let step_at = format!("{at}.steps.{name}");
            let get = |k: &str| args.get(k);
            let when_of = |v: Option<&Value>| -> Result<When, ConfigError> {
                match v.map(scalar).as_deref() {
                    None | Some("on_success") => Ok(When::OnSuccess),
                    Some("on_fail") => Ok(When::OnFail),
                    Some("always") => Ok(When::Always),
                    Some(o) => Err(self.err(&step_at, format!("unknown `when: {o}`"))),
                }
            };
            match name.as_str() {
                "checkout" => out.push(Step::Checkout {
                    path: get("path").map(scalar),
                }),
                "run" | "deploy" => {
                    let when = when_of(get("when"))?;
                    out.push(self.run_step(&step_at, &args, when)?);
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
                    out.push(Step::SaveCache {
                        name: get("name")
                            .map(scalar)
                            .unwrap_or_else(|| "Saving cache".into()),
                        key,
                        paths: list_str(get("paths")),
                        when: when_of(get("when"))?,
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
                "steps" => {
                    let steps = args
                        .as_sequence()
                        .ok_or_else(|| self.err(&step_at, "`steps:` needs a list of steps"))?;
                    self.expand(at, steps, out, depth + 1, scope)?;
                }
                "when" | "unless" => {
                    let cond =
                        get("condition").ok_or_else(|| self.err(&step_at, "needs `condition`"))?;
                    let truth = self.condition(&step_at, cond)?;
                    if truth == (name == "when") {
                        let steps = get("steps")
                            .and_then(Value::as_sequence)
                            .ok_or_else(|| self.err(&step_at, "needs `steps`"))?;
                        self.expand(at, steps, out, depth + 1, scope)?;
                    }
                }
                "setup_remote_docker" | "add_ssh_keys" | "store_test_results" => out.push(
                    Step::Noted(format!("{name} (noted; nothing to do on the host)")),
                ),
                internal
                    if super::builtin_orbs::INTERNAL_STEPS.contains(&internal)
                        && scope
                            .and_then(|o| self.orb_refs.get(o))
                            .is_some_and(|r| super::builtin_orbs::source(r).is_some()) =>
                {
                    let need = |k: &str| {
                        get(k)
                            .map(scalar)
                            .ok_or_else(|| self.err(&step_at, format!("`{internal}` needs `{k}`")))
                    };
                    out.push(match internal {
                        "strata-continue" if get("finish").is_some() => Step::Continue {
                            configuration_path: String::new(),
                            parameters: "{}".into(),
                        },
                        "strata-continue" => Step::Continue {
                            configuration_path: need("configuration_path")?,
                            parameters: get("parameters")
                                .map(scalar)
                                .unwrap_or_else(|| "{}".into()),
                        },
                        "strata-set-parameters" => Step::SetParameters {
                            base_revision: need("base-revision")?,
                            mapping: need("mapping")?,
                            config_path: need("config-path")?,
                            output_path: need("output-path")?,
                            config_list_path: need("config-list-path")?,
                        },
                        _ => Step::GenerateConfig {
                            config_list_path: need("config-list-path")?,
                            generated_config_path: need("generated-config-path")?,
                        },
                    });
                }
                other => self.invoke_command(&step_at, other, &args, out, depth, scope)?,
            }
        }
        Ok(())
    }

    /// A step naming a command (`commands:` of the config or an orb's):
    /// its steps, expanded with the arguments bound to its parameters.
    fn invoke_command(
        &self,
        step_at: &str,
        other: &str,
        args: &Value,
        out: &mut Vec<Step>,
        depth: usize,
        scope: Option<&str>,
    ) -> Result<(), ConfigError> {
        let (cmd, cmd_scope) = match self.lookup("commands", other, scope) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(self.err(step_at, format!("unknown step or command `{other}`")));
            }
            Err(why) => {
                out.push(Step::Noted(format!("{other} (unresolved: {why})")));
                *self.unresolved.borrow_mut() = Some(why);
                return Ok(());
            }
        };
        let args = args.as_mapping().cloned().unwrap_or_default();
        let cat = format!("commands.{other}");
        let params = self.bind(&cat, cmd.get("parameters"), &args, &[])?;
        let cmd = self.subst(&cat, &cmd, &params)?;
        let steps = cmd
            .get("steps")
            .and_then(Value::as_sequence)
            .ok_or_else(|| self.err(&cat, "a command needs `steps`"))?;
        self.expand(&cat, steps, out, depth + 1, cmd_scope.as_deref())
    }

    /// One item of `steps:` as its name and arguments: `- name`, `- name:
    /// {args}`, or CircleCI 2.0's `- type: shell` with the keys beside it.
    fn step_item(&self, at: &str, item: &Value) -> Result<(String, Value), ConfigError> {
        match item {
            Value::String(s) => Ok((s.clone(), Value::Null)),
            // CircleCI 2.0's older form: `- type: shell` and the step's
            // keys beside it (`command:`, `name:` …).
            Value::Mapping(m) if m.get("type").is_some_and(Value::is_string) => {
                let ty = scalar(&m["type"]);
                let name = old_step_type(&ty).ok_or_else(|| {
                self.err(
                    at,
                    format!("unknown step `type: {ty}`\n  hint: CircleCI 2.0 step types are shell, checkout, cache-restore, cache-save, deploy and artifacts-store"),
                )
            })?;
                let mut rest = m.clone();
                rest.remove("type");
                Ok((name.to_string(), Value::Mapping(rest)))
            }
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one");
                Ok((scalar(k), v.clone()))
            }
            other => Err(self.err(at, format!("cannot read step {other:?}"))),
        }
    }

    /// A `run` (or 2.0 `deploy`) step: a command string, or a mapping.
    fn run_step(&self, step_at: &str, args: &Value, when: When) -> Result<Step, ConfigError> {
        let (command, map) = match args {
            Value::String(s) => (s.clone(), Value::Null),
            m => (
                args.get("command")
                    .map(scalar)
                    .ok_or_else(|| self.err(step_at, "`run` needs `command`"))?,
                m.clone(),
            ),
        };
        let no_output_timeout = match map.get("no_output_timeout") {
            None => DEFAULT_NO_OUTPUT_TIMEOUT,
            Some(v) => super::values::duration("no_output_timeout", &scalar(v))
                .map_err(|e| self.err(step_at, e))?,
        };
        let background = match map.get("background") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(self.err(
                    step_at,
                    format!("`background: {}` must be true or false", scalar(v)),
                ));
            }
        };
        let first_line = command.lines().next().unwrap_or("").to_string();
        Ok(Step::Run {
            name: map.get("name").map(scalar).unwrap_or(first_line),
            command,
            environment: env_map(map.get("environment")),
            working_directory: map.get("working_directory").map(scalar),
            when,
            no_output_timeout,
            background,
        })
    }

    /// A logic statement: booleans, strings (empty is false), numbers (0 is
    /// false), and `equal`, `not`, `and`, `or`, `matches` over them.
    pub fn condition(&self, at: &str, v: &Value) -> Result<bool, ConfigError> {
        let v = self
            .subst(at, v, &Mapping::new())
            .unwrap_or_else(|_| v.clone());
        Ok(match &v {
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
                    "matches" => {
                        let pattern = arg
                            .get("pattern")
                            .map(scalar)
                            .ok_or_else(|| self.err(at, "`matches` needs `pattern` and `value`"))?;
                        let value = arg
                            .get("value")
                            .map(scalar)
                            .ok_or_else(|| self.err(at, "`matches` needs `pattern` and `value`"))?;
                        // CircleCI (Java's String.matches): the whole value.
                        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                            self.err(at, format!("`matches` pattern `{pattern}`: {e}"))
                        })?;
                        re.is_match(&value)
                    }
                    other => return Err(self.err(at, format!("unknown condition `{other}`"))),
                }
            }
            other => return Err(self.err(at, format!("cannot read condition {other:?}"))),
        })
    }
}

/// The step a CircleCI 2.0 `type:` names.
fn old_step_type(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "shell" => "run",
        "checkout" => "checkout",
        "cache-restore" => "restore_cache",
        "cache-save" => "save_cache",
        "deploy" => "deploy",
        "artifacts-store" => "store_artifacts",
        _ => return None,
    })
}
