//! Throughput of `comparesink` in a real pipeline: two raw I420 files, parsed and paired,
//! scored to EOS. Prints pairs per second of wall-clock time (scripts/bench.sh runs it
//! next to FFmpeg's ssim filter on the same frames).
//!
//! bench --ref FILE --dist FILE --size WxH [--props "comparesink properties"]

use std::time::Instant;

use gst::prelude::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut reference, mut distorted, mut size, mut props) = (None, None, None, String::new());
    while let Some(a) = args.next() {
        let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--ref" => reference = Some(v),
            "--dist" => distorted = Some(v),
            "--size" => size = Some(v),
            "--props" => props = v,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let (reference, distorted, size) = (
        reference.ok_or("--ref is required")?,
        distorted.ok_or("--dist is required")?,
        size.ok_or("--size is required")?,
    );
    let (w, h) = size.split_once('x').ok_or("--size takes WIDTHxHEIGHT")?;
    gst::init()?;
    gstgpucompare::plugin_register_static()?;
    let input = |file: &str, pad: &str| {
        format!(
            "filesrc location={file} blocksize={size} ! rawvideoparse format=i420 width={w} height={h} framerate=30/1 \
             ! queue max-size-buffers=4 ! c.{pad} ",
            size = w.parse::<usize>().unwrap_or(0) * h.parse::<usize>().unwrap_or(0) * 3 / 2
        )
    };
    let desc = format!(
        "{}{}comparesink name=c {props}",
        input(&reference, "reference"),
        input(&distorted, "distorted")
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let mut frames = 0u64;
    let mut device = String::new();
    let result: Result<(), String> = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::NONE) else {
            break Ok(());
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "similarity-summary") {
                    frames = s.get::<u64>("frames").unwrap_or(0);
                    device = s.get::<String>("device").unwrap_or_default();
                }
            }
            gst::MessageView::Error(e) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            gst::MessageView::Eos(_) => break Ok(()),
            _ => {}
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null)?;
    result?;
    println!(
        "{:.1} pairs/s ({frames} pairs of {w}x{h} in {elapsed:.2} s on {device})",
        frames as f64 / elapsed
    );
    Ok(())
}
