#!/usr/bin/env bash
# Installs what building, testing and running the plugin needs, idempotently:
# Debian packages (GStreamer 1.22 development files, tools and plugins, PyGObject for the
# Python example, meson, FFmpeg for the benchmark), and libtorch 2.11 from PyPI in the project-local virtual environment
# .venv (linked as .venv/libtorch, where .cargo/config.toml points tch).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config git
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  python3 python3-venv python3-pip python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  meson ninja-build ffmpeg
  fonts-dejavu-core
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. Install Rust 1.92 or newer with rustup (Debian 12's rustc is too old)." >&2
  exit 1
fi

torch_version=2.11.0
if ! .venv/bin/python -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
  echo "setup: installing torch==$torch_version into .venv (about 4.6 GB)"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q "torch==$torch_version"
fi
# torch warns that NumPy is missing, which only its NumPy interop needs.
torch_dir=$(.venv/bin/python -W ignore -c "import os, torch; print(os.path.dirname(torch.__file__))")
ln -sfn "$torch_dir" .venv/libtorch
echo "setup: libtorch $torch_version at $torch_dir"
