#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: formatting, lints, the unit,
# element and pipeline tests, and the meson build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
scripts/meson-check.sh
