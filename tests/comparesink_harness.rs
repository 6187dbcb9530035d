//! `comparesink` driven pad by pad with gstreamer-check harnesses, and in complete
//! `gst-launch`-style pipelines.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

fn harnesses(sink: &gst::Element, caps: &gst::Caps) -> (Harness, Harness) {
    // The harness turns `sync` and `async` off on sinks, as on any BaseSink.
    let mut r = Harness::with_element(sink, Some("reference"), None);
    let mut d = Harness::with_element(sink, Some("distorted"), None);
    r.set_src_caps(caps.clone());
    d.set_src_caps(caps.clone());
    (r, d)
}

/// The element messages on the bus so far, by structure name.
fn element_messages(bus: &gst::Bus) -> Vec<gst::Structure> {
    let mut out = Vec::new();
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Element(e) = msg.view()
            && let Some(s) = e.structure()
        {
            out.push(s.to_owned());
        }
    }
    out
}

fn named<'a>(messages: &'a [gst::Structure], name: &str) -> Vec<&'a gst::Structure> {
    messages.iter().filter(|s| s.name() == name).collect()
}

#[test]
fn harness_pads_pair_and_post_messages() {
    init();
    let sink = gst::ElementFactory::make("comparesink")
        .property_from_str("metrics", "psnr+ssim")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    let info = video_info(VideoFormat::Gray8, 40, 30, 25);
    let (mut r, mut d) = harnesses(&sink, &info.to_caps().unwrap());
    // Each pad has its own streaming thread, as in a pipeline with queues.
    let info2 = info.clone();
    let feeder = std::thread::spawn(move || {
        for i in 0..5u64 {
            assert!(
                d.push(timed(frame(&info2, pattern(0)), Some(i * 40), Some(40)))
                    .is_ok()
            );
        }
        assert!(d.push_event(gst::event::Eos::new()));
        d
    });
    for i in 0..5u64 {
        assert!(
            r.push(timed(
                frame(&info, pattern(i as u32)),
                Some(i * 40),
                Some(40)
            ))
            .is_ok()
        );
    }
    assert!(r.push_event(gst::event::Eos::new()));
    let _d = feeder.join().unwrap();
    assert!(!sink.property::<bool>("async"));
    let messages = element_messages(&bus);
    let pairs = named(&messages, "similarity");
    assert_eq!(pairs.len(), 5);
    assert_eq!(pairs[0].get::<f64>("psnr").unwrap(), f64::INFINITY);
    assert!(pairs[1].get::<f64>("psnr").unwrap().is_finite());
    // The summary is posted before the second EOS returns.
    let summary = named(&messages, "similarity-summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].get::<u64>("frames").unwrap(), 5);
    let _ = sink.set_state(gst::State::Null);
}

#[test]
fn a_side_waiting_for_the_other_is_held_back_not_queued_forever() {
    init();
    let sink = gst::ElementFactory::make("comparesink").build().unwrap();
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    let info = video_info(VideoFormat::Gray8, 16, 16, 25);
    let (mut r, mut d) = harnesses(&sink, &info.to_caps().unwrap());
    // One short distorted frame at 0: reference frames after it wait for more.
    let info2 = info.clone();
    let (tx, rx) = mpsc::channel();
    let reference = std::thread::spawn(move || {
        for i in 0..40u64 {
            let res = r.push(timed(frame(&info2, pattern(0)), Some(i * 40), Some(40)));
            if tx.send((i, res.is_ok())).is_err() {
                break;
            }
        }
        let _ = r.push_event(gst::event::Eos::new());
        r
    });
    assert!(
        d.push(timed(frame(&info, pattern(0)), Some(0), Some(1)))
            .is_ok()
    );
    // The reference side gets at most its queue bound ahead, then blocks.
    let mut pushed = 0;
    while let Ok((i, ok)) = rx.recv_timeout(Duration::from_millis(500)) {
        assert!(ok);
        pushed = i + 1;
    }
    assert!(
        (2..=20).contains(&pushed),
        "{pushed} reference frames went through"
    );
    // The distorted side ends: the held frames resolve as unpaired and the rest flows.
    assert!(d.push_event(gst::event::Eos::new()));
    while rx.recv_timeout(Duration::from_secs(10)).is_ok() {}
    let _r = reference.join().unwrap();
    let messages = element_messages(&bus);
    let summary = named(&messages, "similarity-summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].get::<u64>("frames").unwrap(), 1);
    assert_eq!(summary[0].get::<u64>("unpaired-reference").unwrap(), 39);
    let _ = sink.set_state(gst::State::Null);
}

fn launch(desc: &str) -> Run {
    init();
    let pipeline = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    run(&pipeline, "c", || {})
}

#[test]
fn gst_launch_pipeline_with_different_sizes_and_formats() {
    let run = launch(
        "videotestsrc num-buffers=20 pattern=smpte ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! tee name=t \
         t. ! queue ! c.reference \
         t. ! queue ! videoconvertscale ! video/x-raw,format=RGB,width=160,height=120 ! c.distorted \
         comparesink name=c metrics=psnr+ssim+ms-ssim",
    );
    assert_eq!(run.error, None);
    assert!(run.eos && run.summary_before_eos);
    assert_eq!(run.pairs.len(), 20);
    for s in &run.pairs {
        assert_eq!(s.get::<i32>("width").unwrap(), 320);
        assert_eq!(s.get::<i32>("height").unwrap(), 240);
        let ssim = s.get::<f64>("ssim").unwrap();
        assert!(ssim > 0.7 && ssim < 1.0, "{s}");
    }
    let summary = run.summary.unwrap();
    assert_eq!(summary.get::<u64>("frames").unwrap(), 20);
    assert_eq!(summary.get::<u64>("unpaired-reference").unwrap(), 0);
}

#[test]
fn live_sources_with_clock_sync() {
    let run = launch(
        "videotestsrc is-live=true num-buffers=10 ! video/x-raw,width=64,height=48,framerate=50/1 ! tee name=t \
         t. ! queue ! c.reference t. ! queue ! videobalance brightness=0.1 ! c.distorted \
         comparesink name=c sync=true",
    );
    assert_eq!(run.error, None);
    assert!(run.eos);
    assert_eq!(run.pairs.len(), 10);
    assert!(
        run.pairs
            .iter()
            .all(|s| s.get::<f64>("psnr").unwrap().is_finite())
    );
}

#[test]
fn a_flushing_seek_restarts_pairing_without_hanging() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc ! video/x-raw,width=64,height=48,framerate=30/1 ! tee name=t \
         t. ! queue ! c.reference t. ! queue ! videobalance contrast=0.8 ! c.distorted comparesink name=c",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut pairs, mut after_seek, mut seeked, mut summary) = (0u64, 0, false, None);
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                match s.name().as_str() {
                    "similarity" => {
                        pairs += 1;
                        if s.get::<u64>("pts").unwrap() >= 1_000_000_000 {
                            after_seek += 1;
                        }
                        if pairs == 10 && !seeked {
                            seeked = true;
                            // Play [1 s, 1.5 s) of the stream: 15 frames at 30 fps.
                            pipeline
                                .seek(
                                    1.0,
                                    gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                                    gst::SeekType::Set,
                                    gst::ClockTime::from_mseconds(1000),
                                    gst::SeekType::Set,
                                    gst::ClockTime::from_mseconds(1500),
                                )
                                .unwrap();
                        }
                    }
                    "similarity-summary" => summary = Some(s.to_owned()),
                    _ => {}
                }
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(seeked);
    assert_eq!(after_seek, 15);
    let summary = summary.expect("a summary before EOS");
    assert_eq!(summary.get::<u64>("frames").unwrap(), pairs);
}
