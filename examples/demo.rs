//! Compares a generated reference stream with a degraded copy through `comparesink`,
//! printing each frame's scores and the summary. The copy goes through `vramscale`, whose
//! simulated GPU memory usage rises (0.5, then 0.85, then 0.95) and falls (0.3) as the
//! stream plays: each tier change scales the copy down or back up mid-stream, and the
//! application applies the tier's JPEG-quality hint to the encoder that follows. At the
//! end it writes the worst pair's heat-map (comparesink's `heatmap-location`) and a plot of
//! the scores over time into the output directory.
//!
//! cargo run --release --example demo -- [--frames N] [--size WxH] [--device D] [--stats FILE] [--out DIR]

use gst::prelude::*;
use std::path::PathBuf;

use gstgpucompare::messages::{Similarity, SimilarityAlert, SimilaritySummary, VramTier};
use gstgpucompare::plot::Plot;
use gstgpucompare::scoring::Metric;

/// Alerts below this SSIM (drawn on the plot).
const SSIM_THRESHOLD: f64 = 0.88;

struct Args {
    frames: u32,
    width: u32,
    height: u32,
    device: String,
    stats: Option<String>,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        frames: 120,
        width: 1280,
        height: 720,
        device: "auto".into(),
        stats: None,
        out: PathBuf::from("demo-output"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--frames" => args.frames = value()?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--size" => {
                let v = value()?;
                let (w, h) = v.split_once('x').ok_or("--size takes WIDTHxHEIGHT")?;
                args.width = w.parse().map_err(|e| format!("--size: {e}"))?;
                args.height = h.parse().map_err(|e| format!("--size: {e}"))?;
            }
            "--device" => args.device = value()?,
            "--stats" => args.stats = Some(value()?),
            "--out" => args.out = PathBuf::from(value()?),
            "--help" | "-h" => {
                return Err("usage: demo [--frames N] [--size WxH] [--device auto|cpu|cuda:N] [--stats FILE] [--out DIR (default demo-output)]".into());
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

/// Raises and lowers the simulated GPU memory usage as frames reach `vramscale`.
fn drive_simulated_usage(
    pipeline: &gst::Pipeline,
    frames: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let vram = pipeline.by_name("vram").ok_or("no vramscale")?;
    let weak = vram.downgrade();
    let seen = std::sync::atomic::AtomicU32::new(0);
    let quarter = (frames / 4).max(1);
    vram.static_pad("sink").ok_or("no sink pad")?.add_probe(
        gst::PadProbeType::BUFFER,
        move |_, _| {
            let i = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i.is_multiple_of(quarter)
                && let Some(v) = weak.upgrade()
            {
                let usage = [0.5, 0.85, 0.95, 0.3][(i / quarter).min(3) as usize];
                v.set_property("simulated-usage", usage);
            }
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstgpucompare::plugin_register_static()?;
    let (w, h) = (args.width, args.height);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let heatmap = args.out.join("heatmap.png");
    let stats = args
        .stats
        .as_ref()
        .map(|s| format!("stats-file=\"{s}\""))
        .unwrap_or_default();
    let desc = format!(
        "videotestsrc num-buffers={n} pattern=smpte horizontal-speed=4 \
           ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! tee name=t \
         t. ! queue ! cmp.reference \
         t. ! queue ! vramscale name=vram memory-source=simulated min-dwell=0 \
           ! jpegenc name=enc ! jpegdec ! videobalance saturation=0.8 ! queue ! cmp.distorted \
         comparesink name=cmp metrics=psnr+ssim+ms-ssim device={device} threshold={SSIM_THRESHOLD} \
           heatmap-location=\"{heatmap}\" {stats}",
        n = args.frames,
        device = args.device,
        heatmap = heatmap.display(),
    );
    println!(
        "Comparing {w}x{h} testsrc frames with a copy scaled by vramscale's memory tier, \
         JPEG-compressed at the tier's quality and desaturated\n"
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    drive_simulated_usage(&pipeline, args.frames)?;
    let encoder = pipeline.by_name("enc").ok_or("no encoder")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline.set_state(gst::State::Playing)?;
    let (mut pairs, mut alerts, mut pooled) = (Vec::new(), Vec::new(), None);
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::NONE) else {
            break Ok(());
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                // The plugin's typed messages: each parses only from its own structure.
                if let Ok(t) = VramTier::try_from(s) {
                    // The tier's quality hint goes to the encoder after the scaler.
                    encoder.set_property("quality", t.quality as i32);
                    println!(
                        "-- vramscale: tier {} at usage {:.2} ({}): frames now {}x{}, JPEG quality {}",
                        t.tier, t.usage, t.source, t.width, t.height, t.quality
                    );
                } else if let Ok(p) = Similarity::try_from(s) {
                    let value = |m| p.values.get(m).unwrap_or(f64::NAN);
                    println!(
                        "frame {:3}  {:5.2}s  PSNR {:6.2} dB  SSIM {:.4}  MS-SSIM {:.4}  ({} {}x{} on {})",
                        p.frame,
                        p.pts.map_or(f64::NAN, |t| t.seconds_f64()),
                        value(Metric::Psnr),
                        value(Metric::Ssim),
                        value(Metric::MsSsim),
                        p.format,
                        p.width,
                        p.height,
                        p.device,
                    );
                    pairs.push(p);
                } else if let Ok(a) = SimilarityAlert::try_from(s) {
                    alerts.push(a);
                } else if let Ok(summary) = SimilaritySummary::try_from(s) {
                    println!(
                        "\nSummary: {} pairs on {}, {:.1} pairs/s",
                        summary.frames, summary.device, summary.fps
                    );
                    for (m, p) in &summary.pooled {
                        println!(
                            "  {:8} mean {:8.4}  min {:8.4}  max {:8.4}  harmonic mean {:8.4}",
                            m.name(),
                            p.mean,
                            p.min,
                            p.max,
                            p.harmonic_mean
                        );
                    }
                    println!(
                        "  unpaired: {} reference, {} distorted",
                        summary.unpaired_reference, summary.unpaired_distorted
                    );
                    pooled = Some(summary);
                }
            }
            // What differs between the streams and how it is compared (JPEG decodes to
            // full range, the test source is limited range).
            gst::MessageView::Warning(w) => println!("-- warning: {}", w.error()),
            gst::MessageView::Error(e) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            gst::MessageView::Eos(_) => break Ok(()),
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result?;
    let plot = Plot::from_messages(
        "demo: degraded copy vs testsrc",
        &[Metric::Psnr, Metric::Ssim, Metric::MsSsim],
        &pairs,
        &alerts,
        pooled.as_ref(),
        &[(Metric::Ssim, SSIM_THRESHOLD)],
    );
    let (svg, png) = (args.out.join("plot.svg"), args.out.join("plot.png"));
    plot.write(&svg)?;
    plot.write(&png)?;
    println!(
        "\nHeat-map of the worst pair (SSIM map, dark = worse): {}\nScores over time: {} and {}",
        heatmap.display(),
        svg.display(),
        png.display()
    );
    Ok(())
}
