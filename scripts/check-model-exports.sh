#!/usr/bin/env bash
# Runs the README's LPIPS and CLIP export recipes and checks that gpucompare scores the
# exported models as PyTorch does (scripts/check_model_exports.py). Installs lpips,
# torchvision and transformers (about 150 MB from PyPI) into target/model-exports/python,
# beside the project's PyTorch in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build -q --bin gpucompare
work=target/model-exports
if [ ! -d "$work/python/lpips" ] || [ ! -d "$work/python/transformers" ]; then
  .venv/bin/pip install -q --target "$work/python" transformers
  .venv/bin/pip install -q --target "$work/python" --no-deps \
    lpips==0.1.4 torchvision==0.26.0 scipy pillow
fi
PYTHONPATH="$work/python" .venv/bin/python scripts/check_model_exports.py \
  README.md "$PWD/target/debug/gpucompare" "$work/run"
