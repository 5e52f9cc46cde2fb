//! CI cache layers with CircleCI semantics: key templates, immutable caches
//! restored by CircleCI's rule (the newest cache each key prefixes), strata
//! layers that are consistent by construction, workspaces, a local CircleCI
//! 2.0/2.1 runner (parse: `yaml`; expand: `expand`, `subst`, `steps`, `orbs`; plan:
//! `workflow`, `config`, `dryrun`; execute: `runner`, `jobenv`, `schedule`,
//! `execute`, `workspace`, `events`) and config generators.

pub mod builtin_orbs;
pub mod cache;
pub mod config;
pub mod dryrun;
pub mod events;
pub mod execute;
pub mod expand;
pub mod generate;
pub mod job;
pub mod jobenv;
pub mod layer;
pub mod model;
pub mod orbs;
pub mod path_filter;
pub mod runner;
pub mod schedule;
pub mod stage;
pub mod state;
pub mod steps;
pub mod subst;
pub mod template;
pub mod values;
pub mod workflow;
pub mod workspace;
pub mod yaml;
