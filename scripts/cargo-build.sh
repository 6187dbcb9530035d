#!/usr/bin/env bash
# Called by meson: builds the plugin and the gpucompare command with cargo and copies them
# to meson's output directory.
# Arguments: SOURCE_DIR OUTPUT_DIR PROFILE
set -euo pipefail
src=$1 out=$(realpath -m "$2") profile=$3
cd "$src"
cargo build --profile "$profile" --lib --bin gpucompare
dir=$profile
[ "$profile" = dev ] && dir=debug
target=${CARGO_TARGET_DIR:-target}
cp "$target/$dir/libgstgpucompare.so" "$target/$dir/gpucompare" "$out/"
