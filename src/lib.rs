//! strata: a module build engine with content-hashed steps.
//!
//! Data flows one way: [`manifest`] → [`graph`] → [`fingerprint`] →
//! [`exec`] (using [`fetch`], [`unpack`], [`patch`]). See
//! `docs/architecture.md`.

pub mod artifact;
pub mod ci;
pub mod cli;
pub mod exec;
pub mod fetch;
pub mod fingerprint;
pub mod fsutil;
pub mod graph;
pub mod import;
pub mod lock;
pub mod manifest;
pub mod patch;
pub mod report;
pub mod signing;
pub mod store;
pub mod unpack;
