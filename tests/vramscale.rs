//! `vramscale`: tier selection, hysteresis, renegotiation (through to comparesink),
//! passthrough, sizes, bad settings and a missing NVML.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;
use gst_video::prelude::*;

fn harness(props: &[(&str, &str)], info: &gst_video::VideoInfo) -> Harness {
    init();
    let element = gst::ElementFactory::make("vramscale").build().unwrap();
    for (k, v) in props {
        element.set_property_from_str(k, v);
    }
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps(info.to_caps().unwrap());
    h
}

/// Pushes one frame and returns the output's size and whether it is the input buffer.
fn push(h: &mut Harness, info: &gst_video::VideoInfo, pts_ms: u64) -> ((i32, i32), bool) {
    let input = timed(frame(info, pattern(0)), Some(pts_ms), Some(40));
    let ptr = input.as_ptr();
    assert!(h.push(input).is_ok());
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let s = caps.structure(0).unwrap();
    (
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap(),
        ),
        out.as_ptr() == ptr,
    )
}

fn tier_messages(h: &Harness) -> Vec<gst::Structure> {
    let bus = h.element().unwrap().bus().unwrap();
    let mut out = Vec::new();
    while let Some(msg) = bus.pop() {
        if let Some(s) = msg.structure().filter(|s| s.name() == "vram-tier") {
            out.push(s.to_owned());
        }
    }
    out
}

fn with_bus(h: &Harness) {
    h.element().unwrap().set_bus(Some(&gst::Bus::new()));
}

#[test]
fn tier_follows_usage_at_each_threshold() {
    init();
    let info = video_info(VideoFormat::I420, 3840, 2160, 25);
    for (usage, tier, size, quality) in [
        ("0.5", "high", (1024, 576), 95),
        ("0.8", "high", (1024, 576), 95),
        ("0.85", "medium", (800, 450), 85),
        ("0.9", "medium", (800, 450), 85),
        ("0.95", "low", (512, 288), 75),
    ] {
        let mut h = harness(
            &[("memory-source", "simulated"), ("simulated-usage", usage)],
            &info,
        );
        with_bus(&h);
        h.play();
        let (got, same) = push(&mut h, &info, 0);
        assert_eq!(got, size, "usage {usage}");
        assert!(!same);
        let msgs = tier_messages(&h);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let m = &msgs[0];
        assert_eq!(m.get::<&str>("tier").unwrap(), tier);
        assert_eq!(m.get::<i32>("quality").unwrap(), quality);
        assert_eq!(
            (
                m.get::<i32>("width").unwrap(),
                m.get::<i32>("height").unwrap()
            ),
            size
        );
        assert_eq!(m.get::<&str>("source").unwrap(), "simulated");
        assert!((m.get::<f64>("usage").unwrap() - usage.parse::<f64>().unwrap()).abs() < 1e-12);
        assert_eq!(m.get::<u64>("running-time").unwrap(), 0);
        let total = m.get::<u64>("total-bytes").unwrap();
        assert!(total > 0 && m.get::<u64>("used-bytes").unwrap() <= total);
        assert_eq!(
            h.element()
                .unwrap()
                .property::<Option<String>>("tier")
                .as_deref(),
            Some(tier)
        );
    }
}

#[test]
fn steps_down_at_once_and_back_up_only_after_the_dwell() {
    init();
    let info = video_info(VideoFormat::I420, 1920, 1080, 25);
    let mut h = harness(
        &[("memory-source", "simulated"), ("min-dwell", "500000000")],
        &info,
    );
    with_bus(&h);
    h.play();
    let element = h.element().unwrap();
    assert_eq!(push(&mut h, &info, 0).0, (1024, 576));
    element.set_property("simulated-usage", 0.95);
    // The change is seen before the frame is processed: renegotiated for that frame.
    assert_eq!(push(&mut h, &info, 40).0, (512, 288));
    assert_eq!(push(&mut h, &info, 80).0, (512, 288));
    // Below critical − hysteresis for the dwell time: one step up.
    element.set_property("simulated-usage", 0.83);
    assert_eq!(push(&mut h, &info, 120).0, (512, 288));
    std::thread::sleep(Duration::from_millis(550));
    assert_eq!(push(&mut h, &info, 160).0, (800, 450));
    // Jitter across the warning threshold, for longer than the dwell time: no flapping.
    for i in 0..20u64 {
        element.set_property("simulated-usage", if i % 2 == 0 { 0.83 } else { 0.77 });
        assert_eq!(push(&mut h, &info, 200 + i * 40).0, (800, 450));
        std::thread::sleep(Duration::from_millis(20));
    }
    element.set_property("simulated-usage", 0.1);
    assert_eq!(push(&mut h, &info, 1040).0, (800, 450));
    assert_eq!(
        push(&mut h, &info, 1080).0,
        (800, 450),
        "not before the dwell time"
    );
    std::thread::sleep(Duration::from_millis(550));
    assert_eq!(push(&mut h, &info, 1120).0, (1024, 576));
    let tiers: Vec<String> = tier_messages(&h)
        .iter()
        .map(|s| s.get::<String>("tier").unwrap())
        .collect();
    assert_eq!(tiers, ["high", "low", "medium", "high"]);
}

#[test]
fn frames_that_fit_pass_through_untouched() {
    init();
    let info = video_info(VideoFormat::Nv12, 640, 480, 25);
    let mut h = harness(&[("memory-source", "none")], &info);
    h.play();
    for i in 0..3 {
        let (size, same) = push(&mut h, &info, i * 40);
        assert_eq!(size, (640, 480));
        assert!(same, "the very same buffer comes out");
    }
}

#[test]
fn aspect_ratio_and_odd_sizes() {
    init();
    let cases = [
        // Odd size, 4:2:0: rounded down to even.
        (VideoFormat::I420, 1001, 999, (1, 1), (512, 510)),
        // Packed RGB needs no rounding.
        (VideoFormat::Rgb, 1001, 999, (1, 1), (512, 511)),
        // Portrait.
        (VideoFormat::I420, 1080, 1920, (1, 1), (288, 512)),
        // Anamorphic PAR 64:45: the display size (1024x576) is fitted; the PAR stays.
        (VideoFormat::I420, 720, 576, (64, 45), (360, 288)),
    ];
    for (format, w, h_, par, expected) in cases {
        let info = gst_video::VideoInfo::builder(format, w, h_)
            .par(gst::Fraction::new(par.0, par.1))
            .fps(gst::Fraction::new(25, 1))
            .build()
            .unwrap();
        let mut h = harness(
            &[("memory-source", "simulated"), ("simulated-usage", "0.99")],
            &info,
        );
        h.play();
        let (size, _) = push(&mut h, &info, 0);
        assert_eq!(size, expected, "{format:?} {w}x{h_}");
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let got_par = caps
            .structure(0)
            .unwrap()
            .get::<gst::Fraction>("pixel-aspect-ratio")
            .unwrap();
        assert_eq!(got_par, gst::Fraction::new(par.0, par.1));
    }
}

fn start_error(props: &str) -> Option<String> {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! vramscale {props} ! fakesink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let run = run(&pipeline, "vramscale0", || {});
    run.error
}

#[test]
fn bad_settings_are_clear_errors() {
    let e = start_error("tiers=high:1920x1080:95").unwrap();
    assert!(
        e.contains("Invalid tiers") && e.contains("expected three tiers"),
        "{e}"
    );
    let e = start_error("tiers=\"high:1920x1080:95,medium:1280x720:x,low:640x360:75\"").unwrap();
    assert!(e.contains("Invalid tiers"), "{e}");
    let e = start_error("warning-threshold=0.95 critical-threshold=0.9").unwrap();
    assert!(e.contains("must be below"), "{e}");
    assert!(gst::parse::launch("videotestsrc ! vramscale memory-source=gpu ! fakesink").is_err());
    assert_eq!(
        start_error("tiers=\"big:1920x1080:95,mid:1280x720:85,small:640x360:75\""),
        None
    );
}

#[test]
fn a_missing_nvml_falls_back_and_an_explicit_one_is_an_error() {
    let nvml = gstgpucompare::memory::nvml_status().is_ok();
    // auto never fails: NVML on a GPU machine, else a fallback.
    assert_eq!(start_error("memory-source=auto"), None);
    match start_error("memory-source=nvml") {
        None => assert!(nvml),
        Some(e) => {
            assert!(!nvml);
            assert!(
                e.contains("memory-source=nvml cannot be used") && e.contains("NVML"),
                "{e}"
            );
        }
    }
}

#[test]
fn tier_changes_renegotiate_through_to_comparesink() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=60 pattern=smpte ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! tee name=t \
         t. ! queue ! c.reference \
         t. ! queue ! vramscale name=v memory-source=simulated min-dwell=0 \
              tiers=\"high:640x360:95,medium:320x180:85,low:160x90:75\" ! queue ! c.distorted \
         comparesink name=c",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    // Memory usage changes as frames 10, 25 and 40 reach the scaler.
    let scaler = pipeline.by_name("v").unwrap();
    let weak = scaler.downgrade();
    let seen = std::sync::atomic::AtomicU32::new(0);
    scaler
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let usage = match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                10 => Some(0.85),
                25 => Some(0.95),
                40 => Some(0.0),
                _ => None,
            };
            if let (Some(u), Some(s)) = (usage, weak.upgrade()) {
                s.set_property("simulated-usage", u);
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut pairs, mut tiers, mut summary) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                match s.name().as_str() {
                    "vram-tier" => tiers.push((
                        s.get::<String>("tier").unwrap(),
                        s.get::<u64>("running-time").unwrap() / 33_333_333,
                        s.get::<i32>("width").unwrap(),
                    )),
                    "similarity" => pairs.push(s.to_owned()),
                    "similarity-summary" => summary = Some(s.to_owned()),
                    _ => {}
                }
            }
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let expected = [
        ("high", 0, 640),
        ("medium", 10, 320),
        ("low", 25, 160),
        ("high", 40, 640),
    ];
    let tiers: Vec<(&str, u64, i32)> = tiers.iter().map(|(t, f, w)| (t.as_str(), *f, *w)).collect();
    assert_eq!(tiers, expected);
    assert_eq!(pairs.len(), 60, "no frame lost across renegotiations");
    assert_eq!(summary.unwrap().get::<u64>("frames").unwrap(), 60);
    let psnr: Vec<f64> = pairs
        .iter()
        .map(|s| s.get::<f64>("psnr").unwrap())
        .collect();
    for (i, s) in pairs.iter().enumerate() {
        // Scored at the reference's size, whatever size the distorted frame came in.
        assert_eq!(
            (
                s.get::<i32>("width").unwrap(),
                s.get::<i32>("height").unwrap()
            ),
            (640, 360)
        );
        // Passthrough frames are identical, scaled ones are not.
        assert_eq!(
            psnr[i].is_finite(),
            (10..40).contains(&i),
            "frame {i}: {}",
            psnr[i]
        );
    }
    // The low tier loses more than the medium one.
    let mean = |r: std::ops::Range<usize>| psnr[r.clone()].iter().sum::<f64>() / r.len() as f64;
    assert!(mean(10..25) > mean(25..40) + 1.0, "{psnr:?}");
}

/// A frame whose every sample of every component is `value` (at the format's depth).
fn flat(info: &gst_video::VideoInfo, value: u16) -> gst::Buffer {
    let buffer = gst::Buffer::with_size(info.size()).unwrap();
    let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, info).unwrap();
    let finfo = info.format_info();
    for c in 0..finfo.n_components() {
        let sample = (value << finfo.shift()[c as usize]).to_le_bytes();
        let (w, h) = (frame.comp_width(c), frame.comp_height(c));
        let (stride, pstride) = (
            frame.comp_stride(c) as usize,
            frame.comp_pstride(c) as usize,
        );
        // GStreamer 1.22 gives P010's V an odd byte offset; two-byte samples are even.
        let skew = (finfo.poffset()[c as usize] % 2) as usize;
        let data = frame.comp_data_mut(c).unwrap();
        for y in 0..h as usize {
            for x in 0..w as usize {
                let i = y * stride + x * pstride + skew;
                data[i..i + 2].copy_from_slice(&sample);
            }
        }
    }
    frame.into_buffer()
}

#[test]
fn high_bit_depth_formats_are_scaled_in_their_format() {
    use VideoFormat::*;
    init();
    for format in [
        I42010le, I42210le, Y44410le, P01010le, I42012le, Y44412le, Gray16Le,
    ] {
        let info = video_info(format, 1024, 576, 25);
        let mut h = harness(
            &[("memory-source", "simulated"), ("simulated-usage", "0.95")],
            &info,
        );
        let value = 700;
        assert!(h.push(timed(flat(&info, value), Some(0), Some(40))).is_ok());
        let out = h.pull().unwrap();
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let out_info = gst_video::VideoInfo::from_caps(&caps).unwrap();
        assert_eq!(out_info.format(), format);
        assert_eq!((out_info.width(), out_info.height()), (512, 288));
        // A flat frame stays flat at its value through the scaler (within a code: the
        // resampler's 16-bit rounding at the right edge).
        let frame = gst_video::VideoFrame::from_buffer_readable(out, &out_info).unwrap();
        let finfo = out_info.format_info();
        let row = frame.comp_data(0).unwrap();
        for x in [0usize, 100, 511] {
            let i = x * frame.comp_pstride(0) as usize;
            let sample = u16::from_le_bytes([row[i], row[i + 1]]) >> finfo.shift()[0];
            assert!(sample.abs_diff(value) <= 1, "{format:?} at {x}: {sample}");
        }
        // Frames that fit pass through untouched, at any depth.
        let small = video_info(format, 640, 360, 25);
        let mut h = harness(&[("memory-source", "simulated")], &small);
        assert_eq!(push(&mut h, &small, 0), ((640, 360), true), "{format:?}");
    }
}
