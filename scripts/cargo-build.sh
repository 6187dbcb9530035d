#!/usr/bin/env bash
# Called by meson: builds the plugin with cargo and copies it to meson's output path.
# Arguments: SOURCE_DIR OUTPUT PROFILE
set -euo pipefail
src=$1 out=$(realpath -m "$2") profile=$3
cd "$src"
cargo build --profile "$profile" --lib
dir=$profile
[ "$profile" = dev ] && dir=debug
cp "target/$dir/libgstgpucompare.so" "$out"
