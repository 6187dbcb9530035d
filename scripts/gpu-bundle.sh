#!/usr/bin/env bash
# Packs a self-contained bundle for a Linux x86-64 CUDA machine that has PyTorch 2.11 in
# python3 but neither Rust nor GStreamer: the test and benchmark binaries, the plugin,
# the GStreamer libraries and plugins they use, and run.sh, which runs the tests on
# cuda:0 and the benchmark there. Output: dist/gpucompare-gpu-bundle.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

out=dist/gpucompare-gpu-bundle
rm -rf "$out" && mkdir -p "$out/bin" "$out/lib" "$out/plugins" "$out/gpucompare"

# Test binaries (the dev profile is optimised) and the release examples.
tests=$(cargo test --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')
# The examples test runs the Python example with PyGObject on the host, and the
# gpucompare_cli test runs the command built on the host (a path fixed at build time) with
# the host's decoders: neither is a GPU test (quality_maps covers the maps on the GPU).
while read -r name exe; do
  case "$name" in examples|gpucompare_cli) ;; *) cp "$exe" "$out/bin/test-$name" ;; esac
done <<<"$tests"
cargo build -q --release --examples --lib
cp target/release/examples/bench target/release/examples/demo target/release/examples/memory_bench \
  target/release/examples/model_bench "$out/bin/"
# The plugin for gst-launch-1.0 (GST_PLUGIN_PATH=gpucompare); the test and benchmark
# binaries register it themselves, so it stays out of the plugin path they scan.
cp target/release/libgstgpucompare.so "$out/gpucompare/"
cp -r tests/fixtures "$out/fixtures"
cp scripts/torchmetrics_bench.py scripts/lpips_vgg_model.py "$out/"
# The VMAF clips the tests make with FFmpeg (which the GPU machine has not), made here.
cargo test -q --test vmaf_fixtures motion2 >/dev/null
vmaf_clips="${TMPDIR:-/tmp}/gpucompare-vmaf-fixtures"
mkdir -p "$out/vmaf-clips" && cp "$vmaf_clips"/*.yuv "$out/vmaf-clips/"

# GStreamer plugins the tests, the demo and the benchmark use.
gst_dir=$(pkg-config --variable=pluginsdir gstreamer-1.0)
for p in coreelements app videotestsrc videoconvertscale rawparse jpeg videofilter; do
  cp "$gst_dir/libgst$p.so" "$out/plugins/"
done
cp "$(command -v gst-launch-1.0)" "$out/bin/"

# Every shared library they need, except glibc's own and libtorch (from python3 there).
for f in "$out"/bin/* "$out"/plugins/*.so "$out"/gpucompare/*.so; do
  ldd "$f" 2>/dev/null | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libutil.so*|ld-linux*|libresolv.so*) continue ;;
    libtorch*|libc10*|libgomp*|libcuda*|libcudart*|libcupti*|libnv*|libcublas*|libcudnn*) continue ;;
  esac
  case "$lib" in */.venv/*) continue ;; esac
  cp -L "$lib" "$out/lib/"
done
strip --strip-debug "$out"/bin/* "$out"/plugins/*.so "$out"/gpucompare/*.so "$out"/lib/* 2>/dev/null || true

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the GPU tests (device cuda:0) and the benchmark. Needs python3 with torch 2.11.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$here/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GST_PLUGIN_SYSTEM_PATH="$here/plugins"
unset GST_PLUGIN_PATH
export GST_REGISTRY="${TMPDIR:-/tmp}/gpucompare-registry.bin" GST_REGISTRY_FORK=no
export GPUCOMPARE_TEST_DEVICE="${GPUCOMPARE_TEST_DEVICE:-cuda:0}"
export CARGO_MANIFEST_DIR="$here/manifest"
mkdir -p "$here/manifest/tests" && ln -sfn "$here/fixtures" "$here/manifest/tests/fixtures"
mkdir -p "${TMPDIR:-/tmp}/gpucompare-vmaf-fixtures"
cp "$here"/vmaf-clips/*.yuv "${TMPDIR:-/tmp}/gpucompare-vmaf-fixtures/"
out=${OUT:-$here/results}
mkdir -p "$out"
status=0
for t in "$here"/bin/test-*; do
  echo "== $(basename "$t")"
  "$t" --test-threads=1 2>&1 | tee -a "$out/tests.log" | grep -E "^test |test result" || status=1
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
media=${TMPDIR:-/tmp}/gpucompare-media
mkdir -p "$media"
gen() { # NAME WIDTH HEIGHT FRAMES
  "$here/bin/gst-launch-1.0" -q videotestsrc num-buffers="$4" pattern=smpte horizontal-speed=3 \
    ! "video/x-raw,format=I420,width=$2,height=$3,framerate=30/1" ! filesink location="$media/$1_ref.yuv"
  "$here/bin/gst-launch-1.0" -q filesrc location="$media/$1_ref.yuv" \
    ! rawvideoparse format=i420 width="$2" height="$3" framerate=30/1 ! videobalance saturation=0.8 \
    ! jpegenc quality=60 ! jpegdec ! videoconvertscale ! "video/x-raw,format=I420" \
    ! filesink location="$media/$1_dist.yuv"
}
echo "== benchmark" | tee "$out/bench.log"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee -a "$out/bench.log"
for spec in "1080p 1920 1080 240" "4k 3840 2160 60"; do
  set -- $spec
  gen "$1" "$2" "$3" "$4"
  for props in "device=cpu metrics=psnr+ssim" \
               "device=$GPUCOMPARE_TEST_DEVICE metrics=psnr+ssim batch-size=1" \
               "device=$GPUCOMPARE_TEST_DEVICE metrics=psnr+ssim batch-size=8" \
               "device=$GPUCOMPARE_TEST_DEVICE metrics=psnr+ssim+ms-ssim batch-size=8" \
               "device=cpu metrics=vmaf" \
               "device=$GPUCOMPARE_TEST_DEVICE metrics=vmaf"; do
    printf '%s %s: ' "$1" "$props" | tee -a "$out/bench.log"
    "$here/bin/bench" --ref "$media/$1_ref.yuv" --dist "$media/$1_dist.yuv" --size "$2x$3" --props "$props" 2>&1 | tee -a "$out/bench.log"
  done
  # The peer on the same frames: torchmetrics' SSIM (luma), batches of 8, same device.
  if python3 -c 'import torchmetrics' 2>/dev/null; then
    python3 "$here/torchmetrics_bench.py" "$media/$1_ref.yuv" "$media/$1_dist.yuv" "$2" "$3" \
      "$GPUCOMPARE_TEST_DEVICE" 8 2>&1 | tee -a "$out/bench.log"
  else
    echo "torchmetrics is not installed: no peer figure" | tee -a "$out/bench.log"
  fi
done
echo "== memory" | tee -a "$out/bench.log"
GPUCOMPARE_BENCH_DEVICE="$GPUCOMPARE_TEST_DEVICE" "$here/bin/memory_bench" 2>&1 | tee -a "$out/bench.log"
# A model the size of LPIPS-VGG (random weights, made here with python3's PyTorch) at the
# tiers' boxes and native 4K: the caching allocator's peak against the original figures.
echo "== model memory" | tee -a "$out/bench.log"
python3 "$here/lpips_vgg_model.py" "$media/lpips_vgg.pt" &&
  GPUCOMPARE_BENCH_DEVICE="$GPUCOMPARE_TEST_DEVICE" "$here/bin/model_bench" "$media/lpips_vgg.pt" \
    --pairs 8 2>&1 | tee -a "$out/bench.log"
exit $status
RUN
chmod +x "$out/run.sh"
tar -C dist -czf dist/gpucompare-gpu-bundle.tar.gz gpucompare-gpu-bundle
du -h dist/gpucompare-gpu-bundle.tar.gz
