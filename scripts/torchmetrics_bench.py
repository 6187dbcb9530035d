#!/usr/bin/env python3
"""torchmetrics' SSIM on the frames the benchmark scores, for the ratio against comparesink.

Reads two raw I420 files, uploads each pair's luma plane as comparesink's libtorch backend
does (8-bit samples to the device, converted there), and scores them in batches with
torchmetrics' Gaussian SSIM (11 taps, sigma 1.5, data range 255), timed from the host
bytes to the scores on the host. Prints pairs/s and the mean SSIM.

usage: torchmetrics_bench.py REF.yuv DIST.yuv WIDTH HEIGHT [DEVICE] [BATCH]
"""
import sys
import time

import torch
from torchmetrics.functional.image import structural_similarity_index_measure as ssim


def luma_frames(path, width, height):
    frame = width * height * 3 // 2
    with open(path, "rb") as f:
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    n = data.numel() // frame
    return data[: n * frame].view(n, frame)[:, : width * height].reshape(n, height, width)


def main():
    ref_path, dist_path, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    device = sys.argv[5] if len(sys.argv) > 5 else ("cuda:0" if torch.cuda.is_available() else "cpu")
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 8
    ref, dist = luma_frames(ref_path, width, height), luma_frames(dist_path, width, height)
    n = min(len(ref), len(dist))

    def run(count):
        scores = []
        for i in range(0, count, batch):
            x = ref[i : i + batch].to(device).unsqueeze(1).float()
            y = dist[i : i + batch].to(device).unsqueeze(1).float()
            s = ssim(y, x, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0,
                     reduction="none")
            scores.append(s.double().cpu())
        return torch.cat(scores)

    run(min(n, batch))  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    scores = run(n)
    elapsed = time.perf_counter() - start
    print(f"torchmetrics ssim {width}x{height} on {device}, batch {batch}: "
          f"{n / elapsed:.1f} pairs/s ({n} pairs in {elapsed:.2f} s), mean ssim {scores.mean():.6f}")


if __name__ == "__main__":
    main()
