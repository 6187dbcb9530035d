//! `comparesink` under memory pressure: budget and tier fields, recovery from allocation
//! failures mid-stream, adaptive quality following the memory tier, a budget too small.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_video::VideoFormat;

/// Runs 24 frames of 160x120 I420 through `comparesink name=c` with `props`; `on_pair`
/// runs in the scoring thread as each `similarity` message is posted.
fn run_with(props: &str, on_pair: impl Fn(&gst::Element, u64) + Send + Sync + 'static) -> Run {
    init();
    let info = video_info(VideoFormat::I420, 160, 120, 25);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new(props, &caps, &caps);
    let sink = p.pipeline.by_name("c").unwrap();
    let bus = p.pipeline.bus().unwrap();
    bus.set_sync_handler(move |_, msg| {
        if let Some(s) = msg.structure().filter(|s| s.name() == "similarity") {
            on_pair(&sink, s.get::<u64>("frame").unwrap());
        }
        gst::BusSyncReply::Pass
    });
    let frames = |k: u32| {
        (0..24)
            .map(|i| timed(frame(&info, pattern(i * k)), Some(i as u64 * 40), Some(40)))
            .collect()
    };
    p.run(frames(2), frames(3))
}

#[test]
#[cfg(feature = "torch")]
fn messages_carry_the_memory_plan() {
    let run = run_with(
        "metrics=psnr+ssim memory-budget=1000000000 batch-size=4 backend=libtorch",
        |_, _| {},
    );
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 24);
    for s in &run.pairs {
        assert_eq!(s.get::<&str>("tier").unwrap(), "full");
        assert_eq!(s.get::<u32>("tiles").unwrap(), 1);
        assert!((1..=4).contains(&s.get::<u32>("batch").unwrap()));
        assert_eq!(s.get::<u64>("memory-budget").unwrap(), 1_000_000_000);
        let used = s.get::<u64>("memory-used").unwrap();
        assert!(used > 0 && used <= 1_000_000_000);
    }
    let summary = run.summary.unwrap();
    assert_eq!(summary.get::<u64>("oom-recoveries").unwrap(), 0);
    let peak = summary.get::<u64>("peak-memory").unwrap();
    assert_eq!(
        peak,
        run.pairs
            .iter()
            .map(|s| s.get::<u64>("memory-used").unwrap())
            .max()
            .unwrap()
    );
}

#[test]
#[cfg(feature = "torch")]
fn a_small_budget_scores_in_bands_with_the_same_result() {
    let props = "metrics=psnr+ssim+ms-ssim backend=libtorch";
    let whole = run_with(props, |_, _| {});
    let banded = run_with(&format!("{props} memory-budget=600000"), |_, _| {});
    assert_eq!(banded.error, None);
    assert_eq!(banded.pairs.len(), 24);
    for (w, b) in whole.pairs.iter().zip(&banded.pairs) {
        assert!(b.get::<u32>("tiles").unwrap() > 1, "{b}");
        assert!(b.get::<u64>("memory-used").unwrap() <= 600_000);
        for f in ["ssim", "ms-ssim"] {
            let (x, y) = (w.get::<f64>(f).unwrap(), b.get::<f64>(f).unwrap());
            assert!((x - y).abs() < 1e-6, "{f}: {x} vs {y}");
        }
        assert_eq!(w.get::<f64>("psnr").unwrap(), b.get::<f64>("psnr").unwrap());
    }
}

#[test]
#[cfg(feature = "torch")]
fn allocation_failures_mid_stream_lose_and_repeat_nothing() {
    let props = "metrics=psnr+ssim backend=libtorch batch-size=4";
    let clean = run_with(props, |_, _| {});
    let faulty = run_with(props, |sink, frame| {
        if frame == 7 {
            sink.set_property("inject-allocation-failures", 3u32);
        }
    });
    assert_eq!(faulty.error, None);
    let frames: Vec<u64> = faulty
        .pairs
        .iter()
        .map(|s| s.get::<u64>("frame").unwrap())
        .collect();
    assert_eq!(
        frames,
        (0..24).collect::<Vec<_>>(),
        "every pair once, in order"
    );
    for (a, b) in clean.pairs.iter().zip(&faulty.pairs) {
        assert!((a.get::<f64>("ssim").unwrap() - b.get::<f64>("ssim").unwrap()).abs() < 1e-6);
        assert_eq!(a.get::<u64>("pts").unwrap(), b.get::<u64>("pts").unwrap());
    }
    let summary = faulty.summary.unwrap();
    assert_eq!(summary.get::<u64>("oom-recoveries").unwrap(), 3);
    assert_eq!(summary.get::<u64>("frames").unwrap(), 24);
    // After the failures the batch shrank (4 -> 2 -> 1, then bands).
    let batches: Vec<u32> = faulty
        .pairs
        .iter()
        .map(|s| s.get::<u32>("batch").unwrap())
        .collect();
    assert!(batches[8..].contains(&1), "{batches:?}");
}

#[test]
fn adaptive_quality_follows_the_simulated_usage_through_the_tiers() {
    let props = "metrics=psnr+ssim quality=adaptive memory-source=simulated \
                 tiers=\"high:160x120:95,medium:80x60:85,low:40x30:75\"";
    let run = run_with(props, |sink, frame| {
        match frame {
            5 => sink.set_property("simulated-usage", 0.85),
            11 => sink.set_property("simulated-usage", 0.95),
            17 => {
                sink.set_property("simulated-usage", 0.1);
            }
            18 => std::thread::sleep(Duration::from_millis(1100)), // the default 1 s dwell
            _ => {}
        }
    });
    assert_eq!(run.error, None);
    let seen: Vec<(String, i32)> = run
        .pairs
        .iter()
        .map(|s| {
            (
                s.get::<String>("tier").unwrap(),
                s.get::<i32>("width").unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, i32)> = (0..24)
        .map(|i| match i {
            0..=5 => ("high", 160),
            6..=11 => ("medium", 80),
            12..=18 => ("low", 40),
            _ => ("high", 160),
        })
        .map(|(t, w)| (t.to_string(), w))
        .collect();
    assert_eq!(seen, expected);
    // Pinned tiers do not move.
    let pinned = run_with(
        "metrics=psnr quality=medium memory-source=simulated",
        |sink, _| sink.set_property("simulated-usage", 0.99),
    );
    assert!(
        pinned
            .pairs
            .iter()
            .all(|s| s.get::<&str>("tier").unwrap() == "medium")
    );
}

#[test]
fn adaptive_quality_follows_the_thresholds_set_on_the_element() {
    // Usage 0.4 is under the default warning threshold (0.8) but over the one set here,
    // and 0.55 over this critical threshold; back at 0.1 it steps up at once (no dwell).
    let props = "metrics=psnr quality=adaptive memory-source=simulated \
                 warning-threshold=0.3 critical-threshold=0.5 hysteresis=0.1 min-dwell=0 \
                 tiers=\"high:160x120:95,medium:80x60:85,low:40x30:75\"";
    let run = run_with(props, |sink, frame| match frame {
        3 => sink.set_property("simulated-usage", 0.4),
        9 => sink.set_property("simulated-usage", 0.55),
        15 => sink.set_property("simulated-usage", 0.1),
        _ => {}
    });
    assert_eq!(run.error, None);
    let tiers: Vec<String> = run
        .pairs
        .iter()
        .map(|s| s.get::<String>("tier").unwrap())
        .collect();
    let expected: Vec<&str> = (0..24)
        .map(|i| match i {
            0..=3 => "high",
            4..=9 => "medium",
            10..=15 => "low",
            _ => "high",
        })
        .collect();
    assert_eq!(tiers, expected);
}

#[test]
fn a_budget_too_small_for_one_band_is_a_clear_error() {
    for backend in backend_settings() {
        let run = run_with(&format!("{backend} memory-budget=1024"), |_, _| {});
        let e = run.error.expect("an error");
        assert!(e.contains("memory budget too small"), "{backend}: {e}");
        assert!(run.pairs.is_empty());
    }
}

#[test]
fn bad_tiers_fail_at_start_up() {
    let run = run_with("quality=adaptive tiers=bogus", |_, _| {});
    let e = run.error.expect("an error");
    assert!(e.contains("Invalid tiers"), "{e}");
}
