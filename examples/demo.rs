//! Compares a generated reference stream with a degraded copy through `comparesink`,
//! printing each frame's scores and the summary. The copy goes through `vramscale`, whose
//! simulated GPU memory usage rises (0.5, then 0.85, then 0.95) and falls (0.3) as the
//! stream plays: each tier change scales the copy down or back up mid-stream, and the
//! application applies the tier's JPEG-quality hint to the encoder that follows.
//!
//! cargo run --release --example demo -- [--frames N] [--size WxH] [--device D] [--stats FILE]

use gst::prelude::*;
use gstgpucompare::messages::{Similarity, SimilaritySummary, VramTier};
use gstgpucompare::scoring::Metric;

struct Args {
    frames: u32,
    width: u32,
    height: u32,
    device: String,
    stats: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        frames: 120,
        width: 1280,
        height: 720,
        device: "auto".into(),
        stats: None,
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
            "--help" | "-h" => {
                return Err("usage: demo [--frames N] [--size WxH] [--device auto|cpu|cuda:N] [--stats FILE]".into());
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
         comparesink name=cmp metrics=psnr+ssim+ms-ssim device={device} {stats}",
        n = args.frames,
        device = args.device,
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
    Ok(result?)
}
