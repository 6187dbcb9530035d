#!/usr/bin/env bash
# Sets everything up, then compares a generated reference stream with a degraded,
# downscaled copy and prints per-frame scores and the summary. Arguments go to the demo
# (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --release --example demo -- "$@"
