#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Linux machine with a Rust toolchain.
# It installs what the tests need (when missing) and runs every test; benchmarks are separate
# (see BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --lib --bins --tests "$@"
