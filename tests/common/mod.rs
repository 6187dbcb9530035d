//! Helpers shared by the element tests.
#![allow(dead_code)]

use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstgpucompare::plugin_register_static().expect("the plugin registers");
    });
}

/// What a pipeline run posted.
#[derive(Debug, Default)]
pub struct Run {
    pub pairs: Vec<gst::Structure>,
    pub alerts: Vec<gst::Structure>,
    pub summary: Option<gst::Structure>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// Whether the summary came before the pipeline's EOS.
    pub summary_before_eos: bool,
    pub eos: bool,
}

/// Plays a pipeline until EOS or an error, collecting the messages of element `name`.
pub fn run(pipeline: &gst::Pipeline, name: &str, feed: impl FnOnce()) -> Run {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut out = Run::default();
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        out.error = Some(format!("cannot play: {e}"));
    }
    feed();
    collect(&bus, name, &mut out);
    let _ = pipeline.set_state(gst::State::Null);
    out
}

fn collect(bus: &gst::Bus, name: &str, out: &mut Run) {
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(e) if msg.src().is_some_and(|s| s.name() == name) => {
                let Some(s) = e.structure() else { continue };
                match s.name().as_str() {
                    "similarity" => out.pairs.push(s.to_owned()),
                    "similarity-alert" => out.alerts.push(s.to_owned()),
                    "similarity-summary" => out.summary = Some(s.to_owned()),
                    _ => {}
                }
            }
            gst::MessageView::Warning(w) => out.warnings.push(w.error().to_string()),
            gst::MessageView::Error(e) => {
                out.error = Some(format!("{} ({:?})", e.error(), e.debug()));
                return;
            }
            gst::MessageView::Eos(_) => {
                out.eos = true;
                out.summary_before_eos = out.summary.is_some();
                return;
            }
            _ => {}
        }
    }
    out.error.get_or_insert_with(|| "timed out".into());
}

/// A pipeline of two appsrcs feeding `comparesink name=c` with the given properties.
pub struct AppPipeline {
    pub pipeline: gst::Pipeline,
    pub reference: gst_app::AppSrc,
    pub distorted: gst_app::AppSrc,
}

impl AppPipeline {
    pub fn new(props: &str, ref_caps: &gst::Caps, dist_caps: &gst::Caps) -> Self {
        let desc = format!(
            "appsrc name=r format=time ! c.reference appsrc name=d format=time ! c.distorted comparesink name=c {props}"
        );
        let pipeline = gst::parse::launch(&desc)
            .expect("pipeline parses")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let get = |n: &str| {
            pipeline
                .by_name(n)
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                .expect("appsrc")
        };
        let (reference, distorted) = (get("r"), get("d"));
        reference.set_caps(Some(ref_caps));
        distorted.set_caps(Some(dist_caps));
        AppPipeline {
            pipeline,
            reference,
            distorted,
        }
    }

    /// Pushes the frames (each with its pts and duration) and end of stream on both sides.
    pub fn run(&self, reference: Vec<gst::Buffer>, distorted: Vec<gst::Buffer>) -> Run {
        run(&self.pipeline, "c", || {
            for b in reference {
                let _ = self.reference.push_buffer(b);
            }
            for b in distorted {
                let _ = self.distorted.push_buffer(b);
            }
            let _ = self.reference.end_of_stream();
            let _ = self.distorted.end_of_stream();
        })
    }
}

/// Four 64×48 NV12 pairs through `comparesink` with `props`: pairs 0 and 2 identical, 1
/// and 3 shifted by a pixel.
pub fn alternating_run(props: &str) -> Run {
    init();
    let info = video_info(gst_video::VideoFormat::Nv12, 64, 48, 25);
    let caps = info.to_caps().expect("caps");
    let p = AppPipeline::new(props, &caps, &caps);
    let reference = (0..4)
        .map(|i| timed(frame(&info, pattern(0)), Some(i * 40), Some(40)))
        .collect();
    let distorted = (0..4)
        .map(|i| timed(frame(&info, pattern(i as u32 % 2)), Some(i * 40), Some(40)))
        .collect();
    p.run(reference, distorted)
}

/// A frame of `info` whose component samples are `f(component, x, y)`.
pub fn frame(info: &gst_video::VideoInfo, f: impl Fn(u32, u32, u32) -> u8) -> gst::Buffer {
    let buffer = gst::Buffer::with_size(info.size()).expect("buffer");
    let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, info).expect("map");
    let finfo = info.format_info();
    for c in 0..finfo.n_components() {
        let (w, h) = (frame.comp_width(c), frame.comp_height(c));
        let (stride, pstride) = (
            frame.comp_stride(c) as usize,
            frame.comp_pstride(c) as usize,
        );
        let data = frame.comp_data_mut(c).expect("component");
        for y in 0..h {
            for x in 0..w {
                data[y as usize * stride + x as usize * pstride] = f(c, x, y);
            }
        }
    }
    frame.into_buffer()
}

/// Sets pts and duration (in ms); `None` leaves the buffer untimed.
pub fn timed(
    mut buffer: gst::Buffer,
    pts_ms: Option<u64>,
    duration_ms: Option<u64>,
) -> gst::Buffer {
    let b = buffer.make_mut();
    b.set_pts(pts_ms.map(gst::ClockTime::from_mseconds));
    b.set_duration(duration_ms.map(gst::ClockTime::from_mseconds));
    buffer
}

pub fn video_info(
    format: gst_video::VideoFormat,
    w: u32,
    h: u32,
    fps: i32,
) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(format, w, h)
        .fps(gst::Fraction::new(fps, 1))
        .build()
        .expect("video info")
}

/// A textured test pattern, the same for every frame index `i` shifted by `i` pixels.
pub fn pattern(i: u32) -> impl Fn(u32, u32, u32) -> u8 {
    move |c, x, y| ((x + i) * 7 + y * 13 + c * 50 + ((x + i) * y) % 31) as u8
}

pub fn timeout() -> Duration {
    Duration::from_secs(60)
}

/// A fixture PNG (tests/fixtures) as a GRAY8, GRAY16_LE or RGB frame.
pub fn png_frame(name: &str) -> (gst_video::VideoInfo, gst::Buffer) {
    let path = format!("{}/tests/fixtures/{name}.png", env!("CARGO_MANIFEST_DIR"));
    let img = image::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (w, h) = (img.width(), img.height());
    let (format, bytes_per_pixel, bytes): (_, usize, Vec<u8>) = match img {
        image::DynamicImage::ImageLuma8(b) => (gst_video::VideoFormat::Gray8, 1, b.into_raw()),
        image::DynamicImage::ImageLuma16(b) => (
            gst_video::VideoFormat::Gray16Le,
            2,
            b.into_raw().iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        image::DynamicImage::ImageRgb8(b) => (gst_video::VideoFormat::Rgb, 3, b.into_raw()),
        other => panic!("{path}: unexpected pixel type {:?}", other.color()),
    };
    let info = video_info(format, w, h, 25);
    let buffer = gst::Buffer::with_size(info.size()).expect("buffer");
    let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, &info).expect("map");
    let stride = frame.plane_stride()[0] as usize;
    let row = w as usize * bytes_per_pixel;
    let data = frame.plane_data_mut(0).expect("plane");
    for y in 0..h as usize {
        data[y * stride..y * stride + row].copy_from_slice(&bytes[y * row..(y + 1) * row]);
    }
    (info, frame.into_buffer())
}

/// Frame `index` of a raw fixture in tests/fixtures/video (planes tightly packed, one after
/// the other, as FFmpeg's rawvideo writes them) as a buffer of `info`.
pub fn raw_frame(name: &str, info: &gst_video::VideoInfo, index: usize) -> gst::Buffer {
    let path = format!("{}/tests/fixtures/video/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let buffer = gst::Buffer::with_size(info.size()).expect("buffer");
    let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, info).expect("map");
    let finfo = info.format_info();
    // Each plane's tight row: the width and pixel stride of its first component.
    let planes: Vec<(usize, usize)> = (0..frame.n_planes())
        .map(|p| {
            let c = (0..finfo.n_components())
                .find(|&c| finfo.plane()[c as usize] == p)
                .expect("a component in every plane");
            (
                (frame.comp_width(c) * frame.comp_pstride(c) as u32) as usize,
                frame.comp_height(c) as usize,
            )
        })
        .collect();
    let frame_bytes: usize = planes.iter().map(|(row, rows)| row * rows).sum();
    let mut at = index * frame_bytes;
    assert!(
        at + frame_bytes <= data.len(),
        "{path} has no frame {index}"
    );
    for (p, (row, rows)) in planes.into_iter().enumerate() {
        let stride = frame.plane_stride()[p] as usize;
        let plane = frame.plane_data_mut(p as u32).expect("plane");
        for y in 0..rows {
            plane[y * stride..y * stride + row].copy_from_slice(&data[at..at + row]);
            at += row;
        }
    }
    frame.into_buffer()
}

/// The scores tests/fixtures/generate_video.py computed.
pub fn video_expected() -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/video/expected.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// The scores tests/fixtures/generate.py computed for a case.
pub fn expected(case: &str, channels: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/expected.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    all[case][channels].clone()
}

/// The device the libtorch tests run on: `GPUCOMPARE_TEST_DEVICE` (the GPU bundle sets
/// `cuda:0`), else `cpu`, where libtorch runs the same tensor code.
pub fn test_device() -> String {
    std::env::var("GPUCOMPARE_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// CUDA devices libtorch can use (none in a build without libtorch).
#[allow(dead_code)]
pub fn cuda_device_count() -> usize {
    #[cfg(feature = "torch")]
    if tch::Cuda::is_available() {
        return tch::Cuda::device_count() as usize;
    }
    0
}

/// The backends a test runs with: the native kernel, and libtorch on the test device when
/// the build has libtorch.
#[allow(dead_code)]
pub fn backend_settings() -> Vec<String> {
    let mut v = vec!["backend=native".to_string()];
    if cfg!(feature = "torch") {
        v.push(format!("backend=libtorch device={}", test_device()));
    }
    v
}
