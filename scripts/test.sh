#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and end-to-end tests
# (including the S3 tests against a real moto server on 127.0.0.1).
# Sets up what it needs: a Python venv with moto[server] under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
# moto_server: the S3-compatible server the remote-cache tests start;
# check-jsonschema: validates generated CI configs against the published
# GitHub Actions and CircleCI schemas (vendored in the package, no network).
if ! moto_server -h >/dev/null 2>&1 || ! check-jsonschema --version >/dev/null 2>&1; then
  venv="$PWD/target/test-venv"
  if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
    echo "setting up $venv with moto[server] and check-jsonschema" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' check-jsonschema
  fi
  export PATH="$venv/bin:$PATH"
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Unit tests, the binary and the end-to-end suites (there are no doctests).
cargo test --locked --lib --bins --tests 2>&1 | tee "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "Total: %d passed, %d failed\n", p, f }' "$log"
