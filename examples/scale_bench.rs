//! `vramscale` next to GStreamer's own elements in the same pipeline shape
//! (appsrc ! ELEMENT ! fakesink, the same 4K I420 frame pushed again and again):
//! scaling to the 1024 box against `videoconvertscale`, and passthrough against
//! `identity`. Each configuration runs five times, interleaved; medians are printed.
//!
//! scale_bench [SCALE_FRAMES] [PASSTHROUGH_FRAMES]

use std::time::Instant;

use gst::prelude::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("scale_bench failed: {e}");
        std::process::exit(1);
    }
}

fn frames_per_second(
    element: &str,
    info: &gst_video::VideoInfo,
    frame: &gst::Buffer,
    n: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let desc = format!(
        "appsrc name=src format=time block=true max-buffers=4 ! {element} ! fakesink sync=false"
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc")?;
    src.set_caps(Some(&info.to_caps()?));
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline.set_state(gst::State::Playing)?;
    let start = Instant::now();
    for i in 0..n {
        let mut b = frame.clone();
        let b_mut = b.make_mut();
        b_mut.set_pts(gst::ClockTime::from_mseconds(i * 33));
        b_mut.set_duration(gst::ClockTime::from_mseconds(33));
        src.push_buffer(b)?;
    }
    src.end_of_stream()?;
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(format!("{element}: {}", e.error())),
            _ => Ok(n as f64 / start.elapsed().as_secs_f64()),
        },
        None => Err("no EOS".into()),
    };
    pipeline.set_state(gst::State::Null)?;
    Ok(result?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let scale_frames: u64 = args.next().map_or(Ok(120), |a| a.parse())?;
    let pass_frames: u64 = args.next().map_or(Ok(20000), |a| a.parse())?;
    gst::init()?;
    gstgpucompare::plugin_register_static()?;
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 3840, 2160)
        .fps(gst::Fraction::new(30, 1))
        .build()?;
    let frame = {
        let mut data = vec![0u8; info.size()];
        for (i, v) in data.iter_mut().enumerate() {
            *v = ((i * 7) % 251) as u8;
        }
        gst::Buffer::from_mut_slice(data)
    };
    let big_tiers = "tiers=high:3840x2160:95,medium:1920x1080:85,low:1280x720:75";
    let to_box = "video/x-raw,width=1024,height=576";
    // Same resampler, taps and thread count on both sides: vramscale's linear is
    // videoconvertscale's multi-tap bilinear (bilinear2).
    let configs: Vec<(&str, String, u64)> = vec![
        (
            "vramscale method=linear",
            "vramscale memory-source=none".into(),
            scale_frames,
        ),
        (
            "videoconvertscale method=bilinear2",
            format!("videoconvertscale method=bilinear2 n-threads=0 ! {to_box}"),
            scale_frames,
        ),
        (
            "vramscale method=lanczos",
            "vramscale memory-source=none method=lanczos".into(),
            scale_frames,
        ),
        (
            "videoconvertscale method=lanczos",
            format!("videoconvertscale method=lanczos n-threads=0 ! {to_box}"),
            scale_frames,
        ),
        (
            "videoconvertscale defaults (2-tap)",
            format!("videoconvertscale ! {to_box}"),
            scale_frames,
        ),
        (
            "vramscale passthrough (4K fits)",
            format!("vramscale memory-source=none {big_tiers}"),
            pass_frames,
        ),
        ("identity", "identity".into(), pass_frames),
    ];
    let mut results = vec![Vec::new(); configs.len()];
    for _ in 0..5 {
        for (i, (_, element, n)) in configs.iter().enumerate() {
            results[i].push(frames_per_second(element, &info, &frame, *n)?);
        }
    }
    let m: Vec<f64> = results.into_iter().map(median).collect();
    println!(
        "4K I420 through appsrc ! ELEMENT ! fakesink, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for ((name, _, n), fps) in configs.iter().zip(&m) {
        println!("  {name:36} {fps:9.1} frames/s (median of 5 runs of {n})");
    }
    println!(
        "  ratio vramscale / videoconvertscale, linear:  {:.3}",
        m[0] / m[1]
    );
    println!(
        "  ratio vramscale / videoconvertscale, lanczos: {:.3}",
        m[2] / m[3]
    );
    println!(
        "  ratio vramscale passthrough / identity:       {:.3}",
        m[5] / m[6]
    );
    Ok(())
}
