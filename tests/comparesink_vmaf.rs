//! VMAF through comparesink: the fixture clips (tests/fixtures/vmaf, scored by libvmaf
//! 3.2) through real pipelines, 8- and 10-bit, a distorted clip smaller than its
//! reference, with each built-in model and a model file;
//! the one-frame lag and the last frame at end of stream; a flushing seek, which restarts
//! motion; and a model that cannot be used, which stops the start.

mod common;
mod lifecycle;
mod vmaf_clips;

use std::time::Duration;

use gst::prelude::*;
use lifecycle::Watched;
use serde_json::Value;

use vmaf_clips::{clip_file, expected};

/// A fixture clip through `filesrc ! rawvideoparse` into each pad of
/// `comparesink name=c {props}`, to end of stream.
fn clip_run(clip: &Value, props: &str) -> common::Run {
    common::init();
    let format = if clip["depth"].as_u64() == Some(8) {
        "i420"
    } else {
        "i420-10le"
    };
    let input = |key: &str, pad: &str| {
        // A smaller distorted clip has its own size (the element scales it).
        let size = |k: &str| {
            let own = clip.get(format!("{key}_{k}").as_str());
            own.unwrap_or(&clip[k]).clone()
        };
        format!(
            "filesrc location={} ! rawvideoparse format={format} width={} height={} \
             framerate=25/1 ! queue ! c.{pad} ",
            clip_file(clip, key).display(),
            size("width"),
            size("height"),
        )
    };
    let desc = format!(
        "{}{}comparesink name=c {props}",
        input("reference", "reference"),
        input("distorted", "distorted")
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    common::run(&pipeline, "c", || {})
}

fn f64_of(s: &gst::StructureRef, name: &str) -> f64 {
    s.get::<f64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

#[test]
fn every_frame_is_libvmafs_score_with_each_model_at_8_and_10_bits_on_both_backends() {
    let e = expected();
    for backend in common::backend_settings() {
        every_frame_is_libvmafs_score(&e, &backend);
    }
}

fn every_frame_is_libvmafs_score(e: &Value, backend: &str) {
    for (name, clip) in e["clips"].as_object().expect("clips") {
        let plain = clip_run(clip, &format!("metrics=psnr+ssim {backend}"));
        for (model, libvmaf) in clip["models"].as_object().expect("models") {
            let run = clip_run(
                clip,
                &format!("metrics=psnr+ssim+vmaf vmaf-model={model} {backend}"),
            );
            assert_eq!(run.error, None, "{name} {model} {backend}");
            let frames = libvmaf["frames"].as_array().expect("frames");
            assert_eq!(run.pairs.len(), frames.len(), "{name} {model}");
            for (i, (pair, want)) in run.pairs.iter().zip(frames).enumerate() {
                assert_eq!(pair.get::<u64>("frame"), Ok(i as u64));
                let (got, want) = (f64_of(pair, "vmaf"), want["vmaf"].as_f64().unwrap());
                assert!(
                    (got - want).abs() < 0.05,
                    "{name} {model} {backend} frame {i}: {got} against libvmaf's {want}"
                );
                // PSNR and SSIM in the same pass, as without VMAF.
                for metric in ["psnr", "ssim"] {
                    assert_eq!(f64_of(pair, metric), f64_of(&plain.pairs[i], metric));
                }
            }
            let summary = run.summary.as_ref().expect("a summary");
            let pooled = &libvmaf["pooled"];
            let (mean, want) = (
                f64_of(summary, "vmaf-mean"),
                pooled["mean"].as_f64().unwrap(),
            );
            assert!(
                (mean - want).abs() < 0.02,
                "{name} {model} {backend}: {mean} against {want}"
            );
            for key in ["min", "max", "harmonic-mean"] {
                let want = pooled[key.replace('-', "_")].as_f64().unwrap();
                let got = f64_of(summary, &format!("vmaf-{key}"));
                assert!(
                    (got - want).abs() < 0.05,
                    "{name} {model} {backend} {key}: {got} against {want}"
                );
            }
        }
    }
}

/// The smaller distorted clip's fixture holds libvmaf's scores of it scaled up by
/// `videoconvertscale method=mitchell dither=none`: that must be how the element scales it.
#[test]
fn the_element_scales_the_smaller_clip_as_the_fixture_assumes() {
    let e = expected();
    let clip = &e["clips"]["scaled8"];
    let (w, h) = (&clip["width"], &clip["height"]);
    let (sw, sh) = (&clip["distorted_width"], &clip["distorted_height"]);
    let up = std::env::temp_dir().join(format!("gpucompare-scaled8-up-{}.yuv", std::process::id()));
    common::init();
    let scale = gst::parse::launch(&format!(
        "filesrc location={} ! rawvideoparse format=i420 width={sw} height={sh} \
         framerate=25/1 ! videoconvertscale method=mitchell dither=none ! \
         video/x-raw,width={w},height={h} ! filesink location={}",
        clip_file(clip, "distorted").display(),
        up.display()
    ))
    .expect("pipeline parses")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let done = common::run(&scale, "none", || {});
    assert!(done.eos, "{:?}", done.error);
    let desc = format!(
        "filesrc location={} ! rawvideoparse format=i420 width={w} height={h} framerate=25/1 \
         ! queue ! c.reference filesrc location={} ! rawvideoparse format=i420 width={w} \
         height={h} framerate=25/1 ! queue ! c.distorted comparesink name=c metrics=psnr+ssim",
        clip_file(clip, "reference").display(),
        up.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let prescaled = common::run(&pipeline, "c", || {});
    let _ = std::fs::remove_file(&up);
    let scaled = clip_run(clip, "metrics=psnr+ssim");
    assert_eq!(scaled.pairs.len(), prescaled.pairs.len());
    assert!(!scaled.pairs.is_empty());
    for (a, b) in scaled.pairs.iter().zip(&prescaled.pairs) {
        for metric in ["psnr", "ssim"] {
            assert_eq!(f64_of(a, metric), f64_of(b, metric), "{metric}");
        }
    }
}

#[test]
fn a_model_file_scores_as_its_built_in_twin_and_features_are_posted() {
    let e = expected();
    let clip = &e["clips"]["small8"];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/vmaf/vmaf_4k_v0.6.1.json");
    let run = clip_run(
        clip,
        &format!("metrics=vmaf vmaf-model={path} vmaf-features=true"),
    );
    assert_eq!(run.error, None);
    let frames = clip["models"]["vmaf_4k_v0.6.1"]["frames"]
        .as_array()
        .expect("frames");
    assert_eq!(run.pairs.len(), frames.len());
    for (i, (pair, want)) in run.pairs.iter().zip(frames).enumerate() {
        let got = f64_of(pair, "vmaf");
        assert!(
            (got - want["vmaf"].as_f64().unwrap()).abs() < 0.05,
            "frame {i}"
        );
        let features = &want["features"];
        for (field, key) in [
            ("vmaf-adm2", "adm2"),
            ("vmaf-motion2", "motion2"),
            ("vmaf-vif-scale0", "vif_scale0"),
            ("vmaf-vif-scale3", "vif_scale3"),
        ] {
            let (got, want) = (f64_of(pair, field), features[key].as_f64().unwrap());
            assert!(
                (got - want).abs() < 1e-3,
                "frame {i} {field}: {got} against {want}"
            );
        }
        // Only what was asked for.
        assert!(!pair.has_field("ssim"));
    }
}

#[test]
fn a_model_that_cannot_be_read_stops_the_start_with_its_path() {
    let e = expected();
    let run = clip_run(
        &e["clips"]["small8"],
        "metrics=vmaf vmaf-model=/nonexistent/model.json",
    );
    let error = run.error.expect("an error");
    assert!(error.contains("/nonexistent/model.json"), "{error}");
    assert!(
        error.contains("vmaf_v0.6.1"),
        "names the built-in models: {error}"
    );
    assert!(run.pairs.is_empty());
}

#[test]
fn vmafs_working_memory_counts_against_the_budget() {
    let e = expected();
    let clip = &e["clips"]["small8"];
    let pixels = clip["width"].as_u64().unwrap() * clip["height"].as_u64().unwrap();
    // Enough for SSIM's tiles, not for VMAF's planes: an error that says what to change.
    let run = clip_run(
        clip,
        "metrics=psnr+ssim+vmaf device=cpu backend=native memory-budget=200000",
    );
    let error = run.error.expect("an error");
    assert!(
        error.contains("VMAF") && error.contains("memory-budget"),
        "{error}"
    );
    assert!(run.pairs.is_empty());
    // Within a budget that holds both, memory-used counts VMAF's buffers too.
    let run = clip_run(
        clip,
        "metrics=psnr+ssim+vmaf device=cpu backend=native memory-budget=100000000",
    );
    assert_eq!(run.error, None);
    let plain = clip_run(
        clip,
        "metrics=psnr+ssim device=cpu backend=native memory-budget=100000000",
    );
    let used = |r: &common::Run| r.pairs[0].get::<u64>("memory-used").unwrap();
    assert!(
        used(&run) >= used(&plain) + 30 * pixels,
        "{} against {}",
        used(&run),
        used(&plain)
    );
}

#[test]
fn a_score_waits_for_the_next_frame_and_the_last_comes_at_end_of_stream() {
    common::init();
    let info = common::video_info(gst_video::VideoFormat::I420, 64, 48, 25);
    let caps = info.to_caps().expect("caps");
    let p = common::AppPipeline::new("metrics=psnr+vmaf vmaf-features=true", &caps, &caps);
    let bus = p.pipeline.bus().expect("bus");
    p.pipeline.set_state(gst::State::Playing).expect("plays");
    let push = |i: u64| {
        for src in [&p.reference, &p.distorted] {
            let frame = common::frame(&info, common::pattern(i as u32));
            let _ = src.push_buffer(common::timed(frame, Some(i * 40), Some(40)));
        }
    };
    // Similarity messages until `quiet` passes without one.
    let similarity = |quiet: Duration| {
        let mut frames = Vec::new();
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(quiet.as_nanos() as u64))
        {
            if let gst::MessageView::Element(e) = msg.view()
                && let Some(s) = e.structure().filter(|s| s.name() == "similarity")
            {
                frames.push((s.get::<u64>("frame").unwrap(), f64_of(s, "vmaf-motion2")));
            }
        }
        frames
    };
    push(0);
    assert_eq!(
        similarity(Duration::from_millis(1500)),
        vec![],
        "frame 0 waits"
    );
    push(1);
    let first = similarity(Duration::from_millis(1500));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0], (0, 0.0), "frame 0 comes with frame 1, motion2 0");
    let _ = p.reference.end_of_stream();
    let _ = p.distorted.end_of_stream();
    let last = similarity(Duration::from_millis(1500));
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0].0, 1);
    // The pattern moves a pixel a frame: the last frame's motion2 is its own motion.
    assert!(last[0].1 > 0.0, "{last:?}");
    let _ = p.pipeline.set_state(gst::State::Null);
}

#[test]
fn a_flushing_seek_restarts_motion() {
    let caps = "video/x-raw,format=I420,width=64,height=48,framerate=100/1";
    let desc = format!(
        "comparesink name=c metrics=vmaf vmaf-features=true \
         videotestsrc pattern=ball ! {caps} ! queue ! c.reference \
         videotestsrc pattern=ball ! {caps} ! queue ! c.distorted"
    );
    let w = Watched::launch(&desc, |_, _| {});
    let target = gst::ClockTime::from_seconds(2);
    let pairs = w.seek_while_paused(target);
    let pts_motion: Vec<(u64, f64)> = pairs
        .iter()
        .map(|s| (lifecycle::u64_field(s, "pts"), f64_of(s, "vmaf-motion2")))
        .collect();
    let seek = pts_motion
        .iter()
        .position(|(pts, _)| *pts >= target.nseconds())
        .expect("pairs after the seek");
    // Motion starts afresh at the seek: nothing to compare the first frame with.
    assert_eq!(pts_motion[0].1, 0.0, "{pts_motion:?}");
    assert_eq!(pts_motion[seek].1, 0.0, "{pts_motion:?}");
    // In between, the ball moves.
    assert!(
        pts_motion[1].1 > 0.0 && pts_motion[seek + 1].1 > 0.0,
        "{pts_motion:?}"
    );
    // The frame before the seek was scored too, with its own motion.
    assert!(pts_motion[seek - 1].1 > 0.0, "{pts_motion:?}");
}
