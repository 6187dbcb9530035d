#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: formatting, lints, the unit,
# element and pipeline tests, the examples' build and the meson build; then lints and
# tests the build without libtorch (--no-default-features).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --no-default-features --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --lib --tests 2>&1 | tee "$log"
cargo build --examples
scripts/meson-check.sh
echo "== without libtorch (--no-default-features)"
cargo test --no-default-features --lib --tests 2>&1 | tee -a "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
