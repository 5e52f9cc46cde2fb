#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and end-to-end tests.
# Installs nothing: .ci/run (or the README) sets the machine up first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
