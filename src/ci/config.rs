//! CircleCI 2.1 configuration: `load`, which makes a loaded config (the
//! types are in [`super::model`], re-exported here) by driving the stages: YAML ([`super::yaml`]), expansion of jobs, commands, executors,
//! parameters and pipeline values ([`super::expand`]), and workflow
//! planning: matrix, `when`/`unless`, requires ([`super::workflow`]).
//!
//! Everything a run needs is decided here, before anything runs, so
//! `--dry-run` shows exactly what a run does and refuses what CircleCI
//! refuses (cycles, unknown requires) before the first step.

pub use super::model::*;
use serde_norway::Value;

/// Reads `file` and expands every workflow whose `when`/`unless` holds (or
/// only `workflow`). `orbs` resolves registry orbs (`ns/name@version`).
pub fn load(
    file: &str,
    text: &str,
    workflow: Option<&str>,
    pipeline: &Pipeline,
    orbs: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Loaded, ConfigError> {
    let err = |at: &str, what: String| ConfigError {
        file: file.into(),
        at: at.into(),
        what,
    };
    let doc: Value = super::yaml::parse(text).map_err(|e| err("YAML", e))?;
    let version = doc
        .get("version")
        .map(super::expand::scalar)
        .unwrap_or_default();
    if version != "2.1" && version != "2" && version != "2.0" {
        return Err(err(
            "version",
            format!(
                "version `{version}` is not supported; strata runs CircleCI 2.0 and 2.1 configs"
            ),
        ));
    }
    let mut warnings = Vec::new();
    let cx = super::expand::Cx::new(file, doc, pipeline, orbs, &mut warnings)?;
    let mut loaded = super::workflow::plan(&cx, workflow)?;
    loaded.setup = matches!(cx.doc.get("setup"), Some(Value::Bool(true)));
    warnings.extend(cx.warnings.borrow().iter().cloned());
    loaded.warnings = warnings;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pipeline() -> Pipeline {
        Pipeline {
            branch: "main".into(),
            revision: "abc".into(),
            number: 7,
            ..Pipeline::default()
        }
    }

    fn no_orbs(o: &str) -> Result<String, String> {
        Err(format!("no orb {o}"))
    }

    fn one(cfg: &str) -> Vec<Job> {
        let l = load("config.yml", cfg, None, &pipeline(), &no_orbs).unwrap();
        assert_eq!(l.workflows.len(), 1);
        l.workflows.into_iter().next().unwrap().jobs
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
        let jobs = one(cfg);
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
        let e = load("c.yml", cfg, None, &pipeline(), &no_orbs).unwrap_err();
        assert!(
            e.to_string().contains("jobs.j") && e.to_string().contains("not one of a, b"),
            "{e}"
        );
        let cfg =
            "version: 2.1\njobs:\n  j:\n    steps: [bogus]\nworkflows:\n  w:\n    jobs: [j]\n";
        let e = load("c.yml", cfg, None, &pipeline(), &no_orbs).unwrap_err();
        assert!(
            e.to_string().contains("unknown step or command `bogus`"),
            "{e}"
        );
    }

    #[test]
    fn shell_heredocs_and_sections() {
        let cfg = r#"
version: 2.1
jobs:
  j:
    parameters:
      flag: {type: boolean, default: true}
      off: {type: boolean, default: false}
    steps:
      - run: |
          cat <<EOF >> out.txt
          x << y >> z
          EOF
      - run: "a<<# parameters.flag >> --yes<</ parameters.flag >><<# parameters.off >> --no<</ parameters.off >><<^ parameters.off >> --not-off<</ parameters.off >>"
workflows:
  w:
    jobs: [j]
"#;
        let jobs = one(cfg);
        match (&jobs[0].steps[0], &jobs[0].steps[1]) {
            (Step::Run { command: a, .. }, Step::Run { command: b, .. }) => {
                assert!(a.starts_with("cat <<EOF >> out.txt\nx << y >> z\n"), "{a}");
                assert_eq!(b, "a --yes --not-off");
            }
            s => panic!("{s:?}"),
        }
    }
}
