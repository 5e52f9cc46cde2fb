//! strata: a module build engine with content-hashed steps.
//!
//! Data flows one way: [`manifest`] → [`graph`] → [`fingerprint`] →
//! [`exec`] (using [`fetch`], [`unpack`], [`patch`]). See
//! `docs/architecture.md`.

// Every line goes through `outln!`/`errln!` (see `output`): printing must never panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
pub mod output;

pub mod artifact;
pub mod ci;
pub mod cli;
pub mod exec;
pub mod fetch;
pub mod fingerprint;
pub mod fsutil;
pub mod graph;
pub mod import;
pub mod instance;
pub mod lock;
pub mod lockfile;
pub mod manifest;
pub mod net;
pub mod patch;
pub mod report;
pub mod signing;
pub mod source_pins;
pub mod store;
pub mod timings;
pub mod treediff;
pub mod unpack;
pub mod worker;
