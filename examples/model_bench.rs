//! A learned model's peak working memory and pairs/s at the quality tiers' boxes (1024²,
//! 800², 512²: square frames that fill the box, as the original system's images did) and
//! at native 4K (3840×2160), one pair a batch. Made for a model the size of LPIPS-VGG
//! (`scripts/lpips_vgg_model.py`), to set beside the original system's figures (about
//! 2 GB, 1 GB and 500 MB per image at the three tiers).
//!
//! Each configuration runs in its own process, so that its peak is its own:
//! - CPU: the peak resident memory (VmHWM) above the process before the model was loaded;
//! - CUDA: the device memory in use (cudaMemGetInfo) after the run above before the model
//!   was loaded, which is what libtorch's caching allocator reserved at its peak.
//!
//! Both include the weights. Beside it: what the engine would plan one pair at that size
//! with, from what it learned at load (the probe) and by the end of the run.
//! Device: GPUCOMPARE_BENCH_DEVICE (default cpu).
//!
//! model_bench MODEL.pt [--pairs N] [--boxes 1024,800,512,native]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gstgpucompare::memory::cuda::cuda_runtime;
use gstgpucompare::memory::proc_kb_field;
use gstgpucompare::scoring::learned::memory::WorkingMemory;
use gstgpucompare::scoring::learned::{LearnedModel, ModelKind, RgbFrame};
use gstgpucompare::scoring::{Device, parse_device};

/// Memory in use: the device's on CUDA, the process's resident memory (now, and its peak)
/// on the CPU.
fn in_use(device: Device) -> (u64, u64) {
    match device {
        Device::Cpu => {
            let field = |k| proc_kb_field("/proc/self/status", k).unwrap_or(0);
            (field("VmRSS"), field("VmHWM"))
        }
        Device::Cuda(n) => {
            let used = cuda_runtime()
                .ok()
                .and_then(|rt| rt.mem_get_info(n))
                .map_or(0, |(free, total)| total.saturating_sub(free));
            (used, used)
        }
    }
}

/// An RGB frame of gradients and a ripple, and a copy with a small deterministic noise.
fn frames(width: usize, height: usize) -> (Vec<u8>, Vec<u8>) {
    let reference: Vec<u8> = (0..width * height * 3)
        .map(|i| {
            let (p, c) = (i / 3, i % 3);
            let (x, y) = (p % width, p / width);
            ((x * (c + 1) / 16 + y / 8 + ((x ^ y) & 15)) % 256) as u8
        })
        .collect();
    let distorted = reference
        .iter()
        .enumerate()
        .map(|(i, &v)| v.saturating_add(((i * 2_654_435_761) >> 28) as u8 % 9))
        .collect();
    (reference, distorted)
}

/// One configuration in this process; prints "pairs/s peak probe-estimate run-estimate
/// width height".
fn one(model: &Path, (width, height): (usize, usize), pairs: usize) -> Result<(), String> {
    let device = std::env::var("GPUCOMPARE_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = parse_device(&device).ok_or("bad device")?;
    let (reference, distorted) = frames(width, height);
    let frame = |data| RgbFrame {
        data,
        width,
        height,
        stride: width * 3,
    };
    // The tier's box, which these frames fill.
    let fit_box = Some((width as u32, height as u32));
    let pair = (frame(&reference), frame(&distorted));
    let (before, _) = in_use(device);
    let mut model =
        LearnedModel::load(model, ModelKind::Pair, device).map_err(|e| e.to_string())?;
    let probe = model.working_memory();
    // A first pair sets up the kernels for this size; the rest are timed.
    let mut size = (0, 0);
    let mut run = |n: usize| -> Result<(), String> {
        let batch = vec![pair; n];
        let scored = model
            .score_within_memory(&batch, &[fit_box], 0, 1, 0, |_| {})
            .map_err(|e| e.to_string())?;
        if let Some((s, _)) = scored.first() {
            size = (s.width, s.height);
        }
        Ok(())
    };
    run(1)?;
    let start = Instant::now();
    run(pairs)?;
    let rate = pairs as f64 / start.elapsed().as_secs_f64();
    let (_, peak) = in_use(device);
    let pixels = 2 * size.0 as u64 * size.1 as u64;
    let plan = |m: WorkingMemory| m.bytes(pixels).unwrap_or(0);
    println!(
        "{rate} {} {} {} {} {}",
        peak.saturating_sub(before),
        plan(probe),
        plan(model.working_memory()),
        size.0,
        size.1
    );
    Ok(())
}

fn human(bytes: u64) -> String {
    match bytes {
        0 => "unknown".into(),
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

/// The frame size of a row: a square that fills a tier's box, or native 4K.
fn frame_size(name: &str) -> Option<(usize, usize)> {
    match name {
        "native" => Some((3840, 2160)),
        side => side.parse().ok().filter(|&s| s >= 64).map(|s| (s, s)),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(model) = args.get(1).filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: model_bench MODEL.pt [--pairs N] [--boxes 1024,800,512,native]");
        std::process::exit(2);
    };
    let pairs: usize = value("--pairs").and_then(|p| p.parse().ok()).unwrap_or(2);
    if let Some(name) = value("--one") {
        let size = frame_size(&name).unwrap_or((3840, 2160));
        if let Err(e) = one(Path::new(model), size, pairs) {
            println!("error {e}");
        }
        return;
    }
    let boxes = value("--boxes").unwrap_or_else(|| "1024,800,512,native".into());
    let me = std::env::current_exe().expect("own path");
    println!("one pair a batch, {pairs} timed pairs after one untimed");
    println!(
        "| box | model saw | pairs/s | peak memory (measured) | planned from the probe | planned by the end |"
    );
    println!("|---|---|---|---|---|---|");
    for name in boxes.split(',') {
        if frame_size(name).is_none() {
            eprintln!("unknown box {name}");
            continue;
        }
        let out = Command::new(&me)
            .args([model, "--one", name, "--pairs", &pairs.to_string()])
            .output();
        let line = out
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let f: Vec<&str> = line.split(' ').collect();
        let n = |s: &str| s.parse::<u64>().unwrap_or(0);
        match f[..] {
            [rate, peak, probe, learned, w, h] => println!(
                "| {name} | {w}x{h} | {:.3} | {} | {} | {} |",
                rate.parse::<f64>().unwrap_or(0.0),
                human(n(peak)),
                human(n(probe)),
                human(n(learned))
            ),
            _ => println!("| {name} | failed: {line} | | | | |"),
        }
    }
}
