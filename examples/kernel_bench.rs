//! Throughput of the native kernel alone, for each instruction set this CPU has, on the
//! first frame pairs of two raw I420 files (no pipeline, no file reading): where the time
//! of `scripts/bench.sh`'s pipeline figures goes.
//!
//! With one pair (the default) the frames stay in the CPU's cache; with more pairs than
//! the cache holds (say 30 at 1080p), each pair comes from memory, as in a pipeline.
//! GPUCOMPARE_SIMD=NAME runs only that one.
//!
//! kernel_bench REF.yuv DIST.yuv WIDTHxHEIGHT [ITERATIONS] [METRICS: luma|all|ms-ssim] [PAIRS]

use std::time::Instant;

use gstgpucompare::scoring::native::{self, Simd};
use gstgpucompare::scoring::{ChannelMode, ColorKind, Component, ImageView, Metrics, Options};

fn main() {
    if let Err(e) = run() {
        eprintln!("kernel_bench failed: {e}");
        std::process::exit(1);
    }
}

/// The Y, U and V planes of an I420 frame at the start of `data`.
fn i420(data: &[u8], w: usize, h: usize) -> ImageView<'_> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let plane = |offset, width, height| Component::packed8(data, offset, width, height);
    ImageView {
        kind: ColorKind::Yuv,
        depth: 8,
        components: vec![
            plane(0, w, h),
            plane(w * h, cw, ch),
            plane(w * h + cw * ch, cw, ch),
        ],
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reference, distorted, size, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: kernel_bench REF.yuv DIST.yuv WxH [ITERATIONS] [luma|all|ms-ssim]".into(),
        );
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
        .ok_or("size is WIDTHxHEIGHT")?;
    let iterations: usize = rest.first().and_then(|v| v.parse().ok()).unwrap_or(50);
    let case = rest.get(1).map_or("luma", String::as_str);
    let pairs: usize = rest.get(2).and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let frame = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
    let read = |path: &str| -> Result<Vec<u8>, String> {
        use std::io::Read;
        let mut data = vec![0u8; frame * pairs];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut data))
            .map_err(|e| format!("{path}: {e} (a {w}x{h} I420 frame is {frame} bytes)"))?;
        Ok(data)
    };
    let (a, b) = (read(reference)?, read(distorted)?);
    let xs: Vec<_> = a.chunks_exact(frame).map(|f| i420(f, w, h)).collect();
    let ys: Vec<_> = b.chunks_exact(frame).map(|f| i420(f, w, h)).collect();
    let opts = Options {
        metrics: Metrics {
            mse: true,
            psnr: true,
            ssim: true,
            ms_ssim: case == "ms-ssim",
            vmaf: false,
            model: false,
        },
        channels: if case == "all" {
            ChannelMode::All
        } else {
            ChannelMode::Luma
        },
        map: false,
    };
    println!(
        "{w}x{h} {case}, {iterations} iterations over {pairs} pair(s), {} threads",
        rayon::current_num_threads()
    );
    // GPUCOMPARE_SIMD picks one instruction set; otherwise each the CPU has runs.
    let levels = match std::env::var(native::SIMD_ENV) {
        Ok(_) => vec![Simd::active()],
        Err(_) => Simd::available(),
    };
    for simd in levels {
        let score = |i: usize| native::score_with(simd, &xs[i % pairs], &ys[i % pairs], &opts, 0);
        let first = score(0).map_err(|e| e.to_string())?.0;
        let start = Instant::now();
        for i in 0..iterations {
            score(i + 1).map_err(|e| e.to_string())?;
        }
        let rate = iterations as f64 / start.elapsed().as_secs_f64();
        println!(
            "  {:<8} {rate:7.1} pairs/s  ssim {:.6}",
            simd.name(),
            first.ssim.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
