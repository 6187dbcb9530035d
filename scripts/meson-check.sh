#!/usr/bin/env bash
# Configures and builds the plugin through meson, as a distribution would, and checks
# that the result loads and has comparesink.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf builddir
meson setup builddir -Dcargo-profile="${CARGO_PROFILE:-dev}" >/dev/null
meson compile -C builddir
GST_PLUGIN_PATH="$PWD/builddir" GST_REGISTRY="$PWD/builddir/registry.bin" \
  gst-inspect-1.0 comparesink >/dev/null
echo "meson: builddir/libgstgpucompare.so builds and loads"
