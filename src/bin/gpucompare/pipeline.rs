//! The pipeline: each input decoded (or parsed as raw video) into one of comparesink's
//! pads, run to the end, its messages collected.

use std::path::Path;

use gst::glib;
use gst::prelude::*;
use gstgpucompare::messages::{Similarity, SimilarityAlert, SimilaritySummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Raw video: both inputs are headerless frames of this layout.
pub struct Raw {
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub fps: (i32, i32),
}

/// What comparesink posted.
#[derive(Default)]
pub struct Outcome {
    pub frames: Vec<Similarity>,
    pub alerts: Vec<SimilarityAlert>,
    pub summary: Option<SimilaritySummary>,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer has no '{factory}' element: install gstreamer1.0-plugins-base")
    })
}

/// Sets a property from its text, as gst-launch-1.0 does; the error names the option.
pub fn set_from_text(element: &gst::Element, name: &str, text: &str) -> Result<(), String> {
    let pspec = element
        .find_property(name)
        .ok_or_else(|| format!("{} has no property '{name}'", element.name()))?;
    let bad = || format!("--{name} {text}: not a valid value");
    let value = glib::Value::deserialize_with_pspec(text, &pspec).map_err(|_| bad())?;
    if !pspec.value_is_valid(&value) {
        return Err(format!("{}: out of range", bad()));
    }
    element.set_property_from_value(name, &value);
    Ok(())
}

/// `filesrc ! rawvideoparse` or `filesrc ! decodebin`, then a queue (each of comparesink's
/// pads needs its own streaming thread) into `pad`. Decoded frames keep their format: the
/// element compares in the reference's and converts the distorted frames to it.
fn add_input(
    pipeline: &gst::Pipeline,
    path: &Path,
    raw: Option<&Raw>,
    pad: &gst::Pad,
) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("cannot read '{}': no such file", path.display()));
    }
    let src = make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let queue = make("queue")?;
    match raw {
        Some(raw) => {
            let parse = make("rawvideoparse")?;
            parse.set_property("width", raw.width as i32);
            parse.set_property("height", raw.height as i32);
            parse.set_property("framerate", gst::Fraction::new(raw.fps.0, raw.fps.1));
            set_from_text(&parse, "format", &raw.format)
                .map_err(|_| format!("--format {}: not a raw video format GStreamer knows (i420, nv12, i420_10le, gray8, rgb, ...)", raw.format))?;
            pipeline
                .add_many([&src, &parse, &queue])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&src, &parse, &queue]).map_err(|e| e.to_string())?;
        }
        None => {
            let decode = make("decodebin")?;
            pipeline
                .add_many([&src, &decode, &queue])
                .map_err(|e| e.to_string())?;
            src.link(&decode).map_err(|e| e.to_string())?;
            let target = queue.static_pad("sink").ok_or("queue has no sink pad")?;
            // The first video stream goes to the pad; audio and other streams are left out.
            let video_target = target.clone();
            decode.connect_pad_added(move |_, pad| {
                let video = pad
                    .current_caps()
                    .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                    .unwrap_or(false);
                if video && !video_target.is_linked() {
                    let _ = pad.link(&video_target);
                }
            });
            let name = path.display().to_string();
            decode.connect_no_more_pads(move |decode| {
                if !target.is_linked() {
                    decode.post_error_message(gst::error_msg!(
                        gst::StreamError::WrongType,
                        ["'{}' has no video stream", name]
                    ));
                }
            });
        }
    }
    let out = queue.static_pad("src").ok_or("queue has no source pad")?;
    out.link(pad).map_err(|e| e.to_string())?;
    Ok(())
}

/// A progress bar on stderr, when it is a terminal and the input has several frames.
fn progress(pipeline: &gst::Pipeline, compare: &gst::Element) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let duration = pipeline.query_duration::<gst::ClockTime>();
    let fps = compare
        .static_pad("reference")
        .and_then(|p| p.current_caps())
        .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok())
        .map(|i| i.fps())
        .filter(|f| f.numer() > 0);
    let total = match (duration, fps) {
        (Some(d), Some(f)) => {
            (d.nseconds() as f64 / 1e9 * f.numer() as f64 / f.denom() as f64).round() as u64
        }
        _ => return ProgressBar::hidden(),
    };
    if total <= 1 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{wide_bar} {pos}/{len} pairs  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Builds the pipeline around `compare`, runs it to the end and returns what it posted;
/// the error is the first error message on the bus.
pub fn run(
    compare: &gst::Element,
    reference: &Path,
    distorted: &Path,
    raw: Option<&Raw>,
) -> Result<Outcome, String> {
    let pipeline = gst::Pipeline::new();
    pipeline.add(compare).map_err(|e| e.to_string())?;
    for (path, name) in [(reference, "reference"), (distorted, "distorted")] {
        let pad = compare
            .static_pad(name)
            .ok_or_else(|| format!("comparesink has no {name} pad"))?;
        add_input(&pipeline, path, raw, &pad)?;
    }
    let result = collect(&pipeline, compare);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn collect(pipeline: &gst::Pipeline, compare: &gst::Element) -> Result<Outcome, String> {
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let started = pipeline.set_state(gst::State::Playing);
    let mut outcome = Outcome::default();
    let mut bar: Option<ProgressBar> = None;
    if started.is_err() {
        // The reason is on the bus.
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            return Err(error_text(e));
        }
        return Err("the pipeline failed to start".into());
    }
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(error_text(e));
            }
            gst::MessageView::Warning(w) => {
                let text = format!("warning: {}", w.error());
                match &bar {
                    Some(bar) => bar.println(text),
                    None => eprintln!("{text}"),
                }
            }
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                if let Ok(frame) = Similarity::try_from(s) {
                    // By the pair's index, which counts the pairs `--subsample` skips.
                    bar.get_or_insert_with(|| progress(pipeline, compare))
                        .set_position(frame.frame + 1);
                    outcome.frames.push(frame);
                } else if let Ok(alert) = SimilarityAlert::try_from(s) {
                    outcome.alerts.push(alert);
                } else if let Ok(summary) = SimilaritySummary::try_from(s) {
                    outcome.summary = Some(summary);
                }
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(outcome)
}

fn error_text(e: &gst::message::Error) -> String {
    let source = e
        .src()
        .map(|s| format!("{}: ", s.name()))
        .unwrap_or_default();
    match e.debug() {
        Some(debug) => format!("{source}{} ({debug})", e.error()),
        None => format!("{source}{}", e.error()),
    }
}
