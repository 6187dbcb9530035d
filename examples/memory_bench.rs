//! Peak working memory and pairs/s of the libtorch backend within memory budgets, next to
//! a naive whole-frame batch of four pairs, for 4K and 16K×16K GRAY8 frames. Each
//! configuration runs in its own process, so that its peak resident memory (VmHWM) is its
//! own. Device: GPUCOMPARE_BENCH_DEVICE (default cpu).
//!
//! memory_bench [--sizes 4k,16k]

use std::process::Command;
use std::time::Instant;

use gstgpucompare::memory::proc_kb_field;
use gstgpucompare::scoring::budget::whole_frame_bytes;
use gstgpucompare::scoring::budgeted::BudgetedScorer;
use gstgpucompare::scoring::parse_device;
use gstgpucompare::scoring::torch::TorchScorer;
use gstgpucompare::scoring::{ChannelMode, ColorKind, Component, ImageView, Metrics, Options};

const MIB: u64 = 1 << 20;

fn peak_rss() -> u64 {
    proc_kb_field("/proc/self/status", "VmHWM").unwrap_or(0)
}

fn available_ram() -> u64 {
    proc_kb_field("/proc/meminfo", "MemAvailable").unwrap_or(0)
}

/// One configuration, in this process: prints "pairs/s accounted-peak rss-peak".
fn one(
    side_w: usize,
    side_h: usize,
    pairs: usize,
    batch: usize,
    budget: u64,
) -> Result<(), String> {
    let a: Vec<u8> = (0..side_w * side_h)
        .map(|i| ((i % side_w) * 3 + (i / side_w) * 5) as u8)
        .collect();
    let b: Vec<u8> = a
        .iter()
        .enumerate()
        .map(|(i, &v)| v.wrapping_add((i % 7) as u8))
        .collect();
    fn view(d: &[u8], side_w: usize, side_h: usize) -> ImageView<'_> {
        ImageView {
            kind: ColorKind::Gray,
            depth: 8,
            components: vec![Component {
                data: d,
                offset: 0,
                stride: side_w,
                pixel_stride: 1,
                width: side_w,
                height: side_h,
                shift: 0,
                map: None,
            }],
        }
    }
    let views: Vec<_> = (0..pairs)
        .map(|_| (view(&a, side_w, side_h), view(&b, side_w, side_h)))
        .collect();
    let device = std::env::var("GPUCOMPARE_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = parse_device(&device).ok_or("bad device")?;
    let mut scorer = BudgetedScorer::new(TorchScorer::new(device).map_err(|e| e.to_string())?);
    let opts = Options {
        metrics: Metrics::default(),
        channels: ChannelMode::Luma,
        map: false,
    };
    let before = peak_rss();
    let start = Instant::now();
    scorer
        .score(&views, &opts, batch, budget, |_| {})
        .map_err(|e| e.to_string())?;
    let rate = pairs as f64 / start.elapsed().as_secs_f64();
    println!(
        "{rate} {} {}",
        scorer.peak_bytes,
        peak_rss().saturating_sub(before)
    );
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / MIB as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        let n = |i: usize| args.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if let Err(e) = one(
            n(2) as usize,
            n(3) as usize,
            n(4) as usize,
            n(5) as usize,
            n(6),
        ) {
            println!("error {e}");
        }
        return;
    }
    let sizes = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "4k,16k".into());
    let me = std::env::current_exe().expect("own path");
    println!(
        "| frame | configuration | pairs/s | peak (engine accounting) | peak resident (measured) |"
    );
    println!("|---|---|---|---|---|");
    for size in sizes.split(',') {
        let (w, h, pairs) = match size {
            "4k" => (3840usize, 2160usize, 8usize),
            "16k" => (16384, 16384, 1),
            other => {
                eprintln!("unknown size {other}");
                continue;
            }
        };
        let naive = whole_frame_bytes((w * h) as u64, 4, false);
        let mut configs: Vec<(String, usize, u64)> = vec![
            ("budget 64 MiB".into(), 4, 64 * MIB),
            ("budget 256 MiB".into(), 4, 256 * MIB),
            ("budget 1 GiB".into(), 4, 1 << 30),
            ("budget 4 GiB".into(), 4, 4 << 30),
        ];
        let label = format!("naive: whole frames, batch of 4 (needs {})", human(naive));
        if naive < available_ram() * 8 / 10 {
            configs.push((label, 4, 0));
        } else {
            println!(
                "| {w}x{h} | {label} | not run: more than this machine's RAM | {} | |",
                human(naive)
            );
        }
        for (name, batch, budget) in configs {
            let out = Command::new(&me)
                .args([
                    "--one",
                    &w.to_string(),
                    &h.to_string(),
                    &pairs.to_string(),
                    &batch.to_string(),
                    &budget.to_string(),
                ])
                .output();
            let line = out
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                [rate, acc, rss] => println!(
                    "| {w}x{h} | {name} | {:.2} | {} | {} |",
                    rate.parse::<f64>().unwrap_or(0.0),
                    human(acc.parse().unwrap_or(0)),
                    human(rss.parse().unwrap_or(0))
                ),
                _ => println!("| {w}x{h} | {name} | failed: {line} | | |"),
            }
        }
    }
}
