//! Orbs the runner serves itself: CircleCI's `continuation` and
//! `path-filtering`. On CircleCI they POST to the pipeline-continue endpoint
//! with a secret key; locally that endpoint is the runner, so their jobs and
//! commands are defined here (strata's own definitions, with the orbs'
//! documented jobs, commands and parameters) on top of three steps only
//! these definitions may use: `strata-continue`, `strata-set-parameters`
//! and `strata-generate-config`.
//!
//! These definitions win over any other source of the same orb (the orb
//! API, `.circleci/orbs/`), whatever the version: the real orbs' scripts
//! call circleci.com, which a local run must never do.

/// The step names reserved for the definitions below.
pub const INTERNAL_STEPS: [&str; 3] = [
    "strata-continue",
    "strata-set-parameters",
    "strata-generate-config",
];

const CONTINUATION: &str = r#"
executors:
  default:
    docker:
      - image: cimg/base:stable
commands:
  continue:
    parameters:
      configuration_path: {type: string}
      parameters: {type: string, default: "{}"}
      circleci_domain: {type: string, default: circleci.com}
      circleci_ip_ranges: {type: boolean, default: false}
      when: {type: string, default: on_success}
    steps:
      - strata-continue:
          configuration_path: << parameters.configuration_path >>
          parameters: << parameters.parameters >>
  finish:
    steps:
      - strata-continue:
          finish: true
jobs:
  continue:
    executor: << parameters.executor >>
    parameters:
      configuration_path: {type: string}
      parameters: {type: string, default: "{}"}
      circleci_domain: {type: string, default: circleci.com}
      checkout: {type: boolean, default: true}
      workspace_path: {type: string, default: ""}
      resource_class: {type: string, default: small}
      circleci_ip_ranges: {type: boolean, default: false}
      executor: {type: executor, default: default}
    steps:
      - when:
          condition: {equal: [true, << parameters.checkout >>]}
          steps: [checkout]
      - when:
          condition: {not: {equal: ["", << parameters.workspace_path >>]}}
          steps:
            - attach_workspace: {at: << parameters.workspace_path >>}
      - continue:
          configuration_path: << parameters.configuration_path >>
          parameters: << parameters.parameters >>
"#;

const PATH_FILTERING: &str = r#"
executors:
  default:
    docker:
      - image: cimg/python:3.12
commands:
  set-parameters:
    parameters:
      base-revision: {type: string, default: main}
      mapping: {type: string, default: ""}
      config-path: {type: string, default: .circleci/continue_config.yml}
      output-path: {type: string, default: /tmp/pipeline-parameters.json}
      config-list-path: {type: string, default: /tmp/filtered-config-list}
    steps:
      - strata-set-parameters:
          base-revision: << parameters.base-revision >>
          mapping: << parameters.mapping >>
          config-path: << parameters.config-path >>
          output-path: << parameters.output-path >>
          config-list-path: << parameters.config-list-path >>
  generate-config:
    parameters:
      config-list-path: {type: string, default: /tmp/filtered-config-list}
      generated-config-path: {type: string, default: /tmp/generated-config.yml}
    steps:
      - strata-generate-config:
          config-list-path: << parameters.config-list-path >>
          generated-config-path: << parameters.generated-config-path >>
jobs:
  filter:
    executor: << parameters.executor >>
    parameters:
      base-revision: {type: string, default: main}
      mapping: {type: string, default: ""}
      config-path: {type: string, default: .circleci/continue_config.yml}
      output-path: {type: string, default: /tmp/pipeline-parameters.json}
      generated-config-path: {type: string, default: /tmp/generated-config.yml}
      circleci_domain: {type: string, default: circleci.com}
      workspace_path: {type: string, default: ""}
      resource_class: {type: string, default: small}
      circleci_ip_ranges: {type: boolean, default: false}
      executor: {type: executor, default: default}
    steps:
      - when:
          condition: {not: {equal: ["", << parameters.workspace_path >>]}}
          steps:
            - attach_workspace: {at: << parameters.workspace_path >>}
      - checkout
      - set-parameters:
          base-revision: << parameters.base-revision >>
          mapping: << parameters.mapping >>
          config-path: << parameters.config-path >>
          output-path: << parameters.output-path >>
      - generate-config:
          generated-config-path: << parameters.generated-config-path >>
      - strata-continue:
          configuration_path: << parameters.generated-config-path >>
          parameters: << parameters.output-path >>
"#;

/// The runner's own definition of orb `reference` (`ns/name@version`), if
/// it serves that orb.
pub fn source(reference: &str) -> Option<&'static str> {
    let (name, _version) = reference.split_once('@').unwrap_or((reference, ""));
    match name {
        "circleci/continuation" => Some(CONTINUATION),
        "circleci/path-filtering" => Some(PATH_FILTERING),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_orbs_parse_and_only_they_are_served() {
        for r in [
            "circleci/continuation@1.0.0",
            "circleci/continuation@0.2.0",
            "circleci/path-filtering@1.3.0",
        ] {
            let text = source(r).unwrap();
            let v = crate::ci::yaml::parse(text).unwrap();
            assert!(
                v.get("jobs").is_some() && v.get("commands").is_some(),
                "{r}"
            );
        }
        assert!(source("circleci/node@5.0.0").is_none());
        assert!(source("someone/continuation@1.0.0").is_none());
    }
}
