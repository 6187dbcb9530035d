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
builddir/gpucompare --version >/dev/null
# What `meson install` puts where.
meson introspect builddir --installed | grep -q '/bin/gpucompare"'
meson introspect builddir --installed | grep -q '/gstreamer-1.0/libgstgpucompare.so"'
echo "meson: builddir/libgstgpucompare.so builds and loads, builddir/gpucompare runs, both install"
