//! CI cache layers with CircleCI semantics: key templates, immutable caches
//! restored by exact-then-prefix match, strata layers that are consistent by
//! construction, workspaces, and a local CircleCI 2.1 workflow runner.

pub mod cache;
pub mod config;
pub mod events;
pub mod execute;
pub mod expand;
pub mod generate;
pub mod layer;
pub mod orbs;
pub mod runner;
pub mod template;
pub mod values;
pub mod workflow;
pub mod yaml;
