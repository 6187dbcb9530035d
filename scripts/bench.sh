#!/usr/bin/env bash
# Throughput of comparesink next to FFmpeg's ssim filter, on the same raw I420 frames
# (testsrc2 against a blurred, noisy copy), then vramscale next to videoconvertscale and
# identity, in one run. Media is generated once into target/bench-media.
# Usage: scripts/bench.sh [FRAMES_1080P] [FRAMES_4K] [ROUNDS]
# The defaults (8 seconds at 1080p, 2 at 4K) keep start-up (FFmpeg's process, our
# pipeline's preroll and first buffers) to a few percent of every figure. Each case runs
# ROUNDS times (default 3), FFmpeg's and ours interleaved, and the medians are printed
# with the range: single runs on a shared machine move by 10% or more, FFmpeg's more.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build -q --release --example bench --example scale_bench
n1080=${1:-240}
n4k=${2:-60}
rounds=${3:-3}
media=target/bench-media
mkdir -p "$media"

make_media() { # NAME SIZE FRAMES
  local ref=$media/$1_ref.yuv dist=$media/$1_dist.yuv
  if [ ! -s "$dist" ] || [ "$(stat -c %s "$ref")" -ne $(( $3 * $(echo "$2" | tr x '*') * 3 / 2 )) ]; then
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=$2:rate=30" -frames:v "$3" -pix_fmt yuv420p -f rawvideo "$ref"
    ffmpeg -v error -y -f rawvideo -pix_fmt yuv420p -s "$2" -i "$ref" \
      -vf "gblur=sigma=1,noise=alls=8:allf=t" -pix_fmt yuv420p -f rawvideo "$dist"
  fi
}

ffmpeg_rate() { # NAME SIZE FRAMES FILTER
  local t0 t1
  t0=$(date +%s.%N)
  ffmpeg -v error -nostats -f rawvideo -pix_fmt yuv420p -s "$2" -i "$media/$1_ref.yuv" \
    -f rawvideo -pix_fmt yuv420p -s "$2" -i "$media/$1_dist.yuv" -lavfi "$4" -f null -
  t1=$(date +%s.%N)
  echo "$3 / ($t1 - $t0)" | bc -l | xargs printf '%.1f'
}

ours() { # NAME SIZE PROPS
  target/release/examples/bench --ref "$media/$1_ref.yuv" --dist "$media/$1_dist.yuv" --size "$2" --props "$3" |
    cut -d' ' -f1
}

median() { # VALUES...
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

summary() { # VALUES...: the median, then the range of the rounds
  printf '%s pairs/s (rounds: %s)' "$(median "$@")" "$*"
}

ratio() { # A B
  echo "$1 / $2" | bc -l | xargs printf '%.2f'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for spec in "1080p 1920x1080 $n1080" "4k 3840x2160 $n4k"; do
  set -- $spec
  make_media "$1" "$2" "$3"
  cat "$media/$1_ref.yuv" "$media/$1_dist.yuv" >/dev/null   # warm the page cache
  ff_ssim=() ff_both=() luma=() all=() ms=() ratios=()
  for _ in $(seq "$rounds"); do
    ff_ssim+=("$(ffmpeg_rate "$1" "$2" "$3" "[0:v][1:v]ssim")")
    ff_both+=("$(ffmpeg_rate "$1" "$2" "$3" "[0:v]split[a][b];[1:v]split[c][d];[a][c]ssim;[b][d]psnr")")
    luma+=("$(ours "$1" "$2" "metrics=psnr+ssim channels=luma")")
    all+=("$(ours "$1" "$2" "metrics=psnr+ssim channels=all")")
    ms+=("$(ours "$1" "$2" "metrics=psnr+ssim+ms-ssim channels=luma")")
    ratios+=("$(ratio "${luma[-1]}" "${ff_ssim[-1]}")")
  done
  echo "== $1 ($2, $3 pairs, medians of $rounds interleaved rounds)"
  echo "  FFmpeg ssim (Y,U,V, 8x8 box):          $(summary "${ff_ssim[@]}")"
  echo "  FFmpeg ssim + psnr:                    $(summary "${ff_both[@]}")"
  echo "  comparesink psnr+ssim, luma:           $(summary "${luma[@]}")"
  echo "  comparesink psnr+ssim, all planes:     $(summary "${all[@]}")"
  echo "  comparesink psnr+ssim+ms-ssim, luma:   $(summary "${ms[@]}")"
  echo "  ratio comparesink luma / FFmpeg ssim:  $(ratio "$(median "${luma[@]}")" "$(median "${ff_ssim[@]}")") (per round: ${ratios[*]})"
done

# VMAF (vmaf_v0.6.1) at 1080p, next to libvmaf's own vmaf tool on the same frames when
# one is installed: VMAF_BIN, or vmaf on the PATH (built from Netflix/vmaf's source).
vmaf_bin=${VMAF_BIN:-$(command -v vmaf || true)}
libvmaf_rate() { # NAME SIZE FRAMES
  local w=${2%x*} h=${2#*x} t0 t1 out
  out=$(mktemp)
  t0=$(date +%s.%N)
  "$vmaf_bin" -r "$media/$1_ref.yuv" -d "$media/$1_dist.yuv" -w "$w" -h "$h" -p 420 -b 8 \
    --threads "$(nproc)" --json -o "$out" -q >/dev/null
  t1=$(date +%s.%N)
  rm -f "$out"
  echo "$3 / ($t1 - $t0)" | bc -l | xargs printf '%.1f'
}
ours_vmaf=() theirs=()
for _ in $(seq "$rounds"); do
  ours_vmaf+=("$(ours 1080p 1920x1080 "metrics=vmaf")")
  [ -n "$vmaf_bin" ] && theirs+=("$(libvmaf_rate 1080p 1920x1080 "$n1080")")
done
echo "== VMAF, 1080p (1920x1080, $n1080 pairs, medians of $rounds rounds)"
echo "  comparesink metrics=vmaf:              $(summary "${ours_vmaf[@]}")"
if [ -n "$vmaf_bin" ]; then
  echo "  libvmaf $("$vmaf_bin" --version 2>&1) vmaf tool, $(nproc) threads: $(summary "${theirs[@]}")"
  echo "  ratio comparesink / libvmaf:           $(ratio "$(median "${ours_vmaf[@]}")" "$(median "${theirs[@]}")")"
else
  echo "  libvmaf: no vmaf tool (set VMAF_BIN to compare)"
fi

echo "== vramscale"
target/release/examples/scale_bench 200 50000
