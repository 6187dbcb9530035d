//! `comparesink` in real pipelines: scores, pairing, conversion, messages, stats files,
//! errors.

mod common;

use common::*;
use gst::prelude::*;
use gst_video::VideoFormat;

fn f64_field(s: &gst::Structure, name: &str) -> f64 {
    s.get::<f64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

fn u64_field(s: &gst::Structure, name: &str) -> u64 {
    s.get::<u64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

/// One fixture pair through the element, checked against the independent scores.
fn fixture_through_element(case: &str, channels: &str) {
    init();
    let (ri, rb) = png_frame(&format!("{case}_ref"));
    let (di, db) = png_frame(&format!("{case}_dist"));
    let p = AppPipeline::new(
        &format!("metrics=mse+psnr+ssim+ms-ssim channels={channels}"),
        &ri.to_caps().unwrap(),
        &di.to_caps().unwrap(),
    );
    let run = p.run(
        vec![timed(rb, Some(0), Some(40))],
        vec![timed(db, Some(0), Some(40))],
    );
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 1);
    let s = &run.pairs[0];
    let e = expected(case, channels);
    let mse = e["mse"].as_f64().unwrap();
    assert!((f64_field(s, "mse") - mse).abs() < 1e-6 * mse, "{s}");
    assert!(
        (f64_field(s, "psnr") - e["psnr"].as_f64().unwrap()).abs() < 1e-3,
        "{s}"
    );
    assert!(
        (f64_field(s, "ssim") - e["ssim"].as_f64().unwrap()).abs() < 1e-4,
        "{s}"
    );
    assert!(
        (f64_field(s, "ms-ssim") - e["ms_ssim"].as_f64().unwrap()).abs() < 1e-4,
        "{s}"
    );
    assert_eq!(
        s.get::<u32>("ms-ssim-scales").unwrap() as u64,
        e["ms_ssim_scales"].as_u64().unwrap()
    );
    assert_eq!(s.get::<i32>("width").unwrap(), ri.width() as i32);
    assert_eq!(s.get::<&str>("channels").unwrap(), channels);
}

#[test]
fn gray8_fixture_scores() {
    fixture_through_element("gray_200x180", "luma");
}

#[test]
fn rgb_fixture_scores_luma_and_all_channels() {
    fixture_through_element("rgb_odd_171x165", "luma");
    fixture_through_element("rgb_odd_171x165", "all");
}

#[test]
fn gray16_fixture_scores() {
    fixture_through_element("gray16_64x48", "luma");
}

#[test]
fn frames_smaller_than_the_window_get_psnr_and_a_warning() {
    init();
    let (ri, rb) = png_frame("gray_tiny_9x7_ref");
    let (_, db) = png_frame("gray_tiny_9x7_dist");
    let caps = ri.to_caps().unwrap();
    let p = AppPipeline::new("metrics=psnr+ssim+ms-ssim", &caps, &caps);
    let run = p.run(
        vec![timed(rb, Some(0), Some(40))],
        vec![timed(db, Some(0), Some(40))],
    );
    assert_eq!(run.error, None);
    let s = &run.pairs[0];
    let e = expected("gray_tiny_9x7", "luma");
    assert!((f64_field(s, "psnr") - e["psnr"].as_f64().unwrap()).abs() < 1e-3);
    assert!(!s.has_field("ssim") && !s.has_field("ms-ssim"), "{s}");
    assert!(
        run.warnings.iter().any(|w| w.contains("smaller than")),
        "{:?}",
        run.warnings
    );
}

#[test]
fn identical_frames_give_infinite_psnr_and_ssim_one() {
    init();
    let info = video_info(VideoFormat::I420, 64, 48, 25);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new("metrics=psnr+ssim+ms-ssim channels=all", &caps, &caps);
    let frames = || {
        (0..3)
            .map(|i| timed(frame(&info, pattern(i)), Some(i as u64 * 40), Some(40)))
            .collect()
    };
    let run = p.run(frames(), frames());
    assert_eq!(run.pairs.len(), 3);
    for s in &run.pairs {
        assert_eq!(f64_field(s, "psnr"), f64::INFINITY);
        assert!((f64_field(s, "ssim") - 1.0).abs() < 1e-6);
        assert!((f64_field(s, "ms-ssim") - 1.0).abs() < 1e-6);
    }
    let summary = run.summary.expect("summary");
    assert_eq!(f64_field(&summary, "psnr-mean"), f64::INFINITY);
}

/// Reference frames at `ref_ms` intervals; distorted frame j shows the reference content
/// of time j·dist_ms, so a pair is identical exactly when the times match.
fn paired_run(ref_n: u32, ref_ms: u64, dist_n: u32, dist_ms: u64, timed_frames: bool) -> Run {
    init();
    let info = video_info(VideoFormat::Gray8, 48, 32, 0);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new("metrics=psnr", &caps, &caps);
    let t = |i: u32, ms: u64| timed_frames.then_some(i as u64 * ms);
    let d = |ms: u64| timed_frames.then_some(ms);
    let reference = (0..ref_n)
        .map(|i| {
            timed(
                frame(&info, pattern((i as u64 * ref_ms) as u32)),
                t(i, ref_ms),
                d(ref_ms),
            )
        })
        .collect();
    let distorted = (0..dist_n)
        .map(|j| {
            timed(
                frame(&info, pattern((j as u64 * dist_ms) as u32)),
                t(j, dist_ms),
                d(dist_ms),
            )
        })
        .collect();
    let run = p.run(reference, distorted);
    assert_eq!(run.error, None);
    assert!(run.eos && run.summary_before_eos);
    run
}

fn identical(s: &gst::Structure) -> bool {
    f64_field(s, "psnr") == f64::INFINITY
}

#[test]
fn pairs_by_running_time_across_frame_rates() {
    // Reference 30 fps against distorted 15 fps: each distorted frame serves two.
    let run = paired_run(10, 33, 5, 66, true);
    assert_eq!(run.pairs.len(), 10);
    for (i, s) in run.pairs.iter().enumerate() {
        assert_eq!(u64_field(s, "frame"), i as u64);
        assert_eq!(u64_field(s, "pts"), i as u64 * 33_000_000);
        assert_eq!(identical(s), i % 2 == 0, "frame {i}: {s}");
    }
    let summary = run.summary.unwrap();
    assert_eq!(u64_field(&summary, "unpaired-reference"), 0);
    assert_eq!(u64_field(&summary, "unpaired-distorted"), 0);

    // Reference 25 fps against distorted 50 fps: every other distorted frame is unused.
    let run = paired_run(5, 40, 10, 20, true);
    assert_eq!(run.pairs.len(), 5);
    assert!(run.pairs.iter().all(identical));
    assert_eq!(
        u64_field(run.summary.as_ref().unwrap(), "unpaired-distorted"),
        5
    );
}

#[test]
fn a_shorter_stream_leaves_frames_unpaired() {
    let run = paired_run(10, 40, 6, 40, true);
    assert_eq!(run.pairs.len(), 6);
    assert!(run.pairs.iter().all(identical));
    let summary = run.summary.unwrap();
    assert_eq!(u64_field(&summary, "frames"), 6);
    assert_eq!(u64_field(&summary, "unpaired-reference"), 4);
    let run = paired_run(3, 40, 7, 40, true);
    assert_eq!(run.pairs.len(), 3);
    assert_eq!(
        u64_field(run.summary.as_ref().unwrap(), "unpaired-distorted"),
        4
    );
}

#[test]
fn frames_without_timestamps_pair_in_arrival_order() {
    let run = paired_run(5, 40, 4, 40, false);
    assert_eq!(run.pairs.len(), 4);
    assert!(run.pairs.iter().all(identical));
    for s in &run.pairs {
        assert_eq!(u64_field(s, "pts"), u64::MAX);
    }
    assert_eq!(
        u64_field(run.summary.as_ref().unwrap(), "unpaired-reference"),
        1
    );
}

#[test]
fn messages_and_summary_carry_every_field() {
    init();
    // Frames 0 and 2 identical, 1 and 3 shifted: alerts on 1 and 3.
    let run = alternating_run("metrics=mse+psnr+ssim+ms-ssim threshold=0.999");
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 4);
    for (i, s) in run.pairs.iter().enumerate() {
        assert_eq!(u64_field(s, "frame"), i as u64);
        assert_eq!(u64_field(s, "running-time"), i as u64 * 40_000_000);
        for f in ["mse", "psnr", "ssim", "ms-ssim"] {
            f64_field(s, f);
        }
        assert_eq!(s.get::<i32>("height").unwrap(), 48);
        assert_eq!(s.get::<&str>("device").unwrap(), "cpu");
        assert_eq!(s.get::<&str>("channels").unwrap(), "luma");
        assert_eq!(s.get::<bool>("alert").unwrap(), i % 2 == 1, "{s}");
    }
    let sum = run.summary.unwrap();
    assert_eq!(u64_field(&sum, "frames"), 4);
    assert_eq!(u64_field(&sum, "alerts"), 2);
    let mses: Vec<f64> = run.pairs.iter().map(|s| f64_field(s, "mse")).collect();
    let mean_mse = mses.iter().sum::<f64>() / 4.0;
    assert!((f64_field(&sum, "mse-mean") - mean_mse).abs() < 1e-9);
    assert_eq!(f64_field(&sum, "mse-min"), 0.0);
    assert!(
        (f64_field(&sum, "psnr-mean") - 10.0 * (255f64 * 255.0 / mean_mse).log10()).abs() < 1e-9
    );
    for f in [
        "ssim-mean",
        "ssim-min",
        "ssim-max",
        "ms-ssim-mean",
        "psnr-max",
        "elapsed",
        "fps",
    ] {
        f64_field(&sum, f);
    }
    assert_eq!(sum.get::<&str>("device").unwrap(), "cpu");
}

#[test]
fn stats_file_as_csv_and_json_lines() {
    init();
    let dir = std::env::temp_dir().join(format!("comparesink-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let info = video_info(VideoFormat::Gray8, 32, 32, 25);
    let caps = info.to_caps().unwrap();
    for name in ["rows.csv", "rows.jsonl"] {
        let path = dir.join(name);
        let p = AppPipeline::new(
            &format!("metrics=psnr+ssim stats-file={}", path.display()),
            &caps,
            &caps,
        );
        let frames = |k: u32| {
            (0..3)
                .map(|i| timed(frame(&info, pattern(i * k)), Some(i as u64 * 40), Some(40)))
                .collect()
        };
        let run = p.run(frames(1), frames(2));
        assert_eq!(run.error, None);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        if name.ends_with(".csv") {
            // The columns are exactly the message's fields, in its order.
            let columns: Vec<&str> = lines[0].split(',').collect();
            let fields: Vec<&str> = run.pairs[0].fields().map(|f| f.as_str()).collect();
            assert_eq!(columns, fields);
            assert_eq!(lines.len(), 4);
            for (line, s) in lines[1..].iter().zip(&run.pairs) {
                let cell = |name: &str| {
                    let i = columns.iter().position(|c| *c == name).unwrap();
                    line.split(',').nth(i).unwrap().to_string()
                };
                let psnr = f64_field(s, "psnr");
                let value: f64 = cell("psnr").parse().unwrap();
                assert!(
                    value == psnr || (value - psnr).abs() < 1e-9,
                    "{line} vs {s}"
                );
                assert_eq!(cell("ssim").parse::<f64>().unwrap(), f64_field(s, "ssim"));
                assert_eq!(cell("tier"), "full");
                assert_eq!(cell("format"), "GRAY8");
                assert_eq!(
                    cell("memory-used").parse::<u64>().unwrap(),
                    u64_field(s, "memory-used")
                );
                assert_eq!(
                    cell("distorted-running-time").parse::<u64>().unwrap(),
                    u64_field(s, "distorted-running-time")
                );
            }
        } else {
            // Three rows, then the summary record.
            assert_eq!(lines.len(), 4);
            for (line, s) in lines.iter().zip(&run.pairs) {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                let keys: Vec<&str> = row
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str())
                    .collect();
                let mut fields: Vec<&str> = s.fields().map(|f| f.as_str()).collect();
                fields.sort();
                assert_eq!(keys, fields);
                assert_eq!(row["frame"].as_u64().unwrap(), u64_field(s, "frame"));
                assert_eq!(row["ssim"].as_f64().unwrap(), f64_field(s, "ssim"));
                assert_eq!(row["tiles"].as_u64().unwrap(), 1);
                assert_eq!(
                    row["memory-budget"].as_u64().unwrap(),
                    u64_field(s, "memory-budget")
                );
                let psnr = f64_field(s, "psnr");
                if psnr.is_finite() {
                    assert_eq!(row["psnr"].as_f64().unwrap(), psnr);
                } else {
                    assert_eq!(row["psnr"], "inf");
                }
            }
            let summary: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
            let expected = run.summary.as_ref().unwrap();
            assert_eq!(summary["type"], "summary");
            assert_eq!(summary["frames"].as_u64().unwrap(), 3);
            assert_eq!(
                summary["ssim-mean"].as_f64().unwrap(),
                f64_field(expected, "ssim-mean")
            );
            assert!(summary.get("psnr-harmonic-mean").is_some(), "{summary}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn start_error(props: &str) -> String {
    init();
    let info = video_info(VideoFormat::Gray8, 16, 16, 25);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new(props, &caps, &caps);
    let run = p.run(
        vec![frame(&info, pattern(0))],
        vec![frame(&info, pattern(0))],
    );
    assert!(run.pairs.is_empty());
    run.error.expect("the pipeline fails to start")
}

#[test]
fn bad_settings_fail_at_start_up_with_a_clear_error() {
    let e = start_error("device=gpu");
    assert!(e.contains("invalid device 'gpu'"), "{e}");
    let e = start_error("stats-file=/nonexistent-dir/rows.csv");
    assert!(e.contains("Cannot write the stats file"), "{e}");
}

#[test]
fn an_unavailable_cuda_device_is_a_clear_error() {
    let count = common::cuda_device_count();
    let e = start_error(&format!("device=cuda:{count}"));
    assert!(e.contains("CUDA"), "{e}");
}

#[test]
fn bad_property_values_are_refused() {
    init();
    assert!(gst::parse::launch("fakesrc ! comparesink metrics=bogus").is_err());
    assert!(gst::parse::launch("fakesrc ! comparesink channels=chroma").is_err());
    let sink = gst::ElementFactory::make("comparesink").build().unwrap();
    // Out of range: GObject refuses the value and the property keeps its default.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink.set_property("batch-size", 0u32)
    }));
    if result.is_ok() {
        assert_eq!(sink.property::<u32>("batch-size"), 1);
    }
}

#[test]
#[cfg(feature = "torch")]
fn libtorch_backend_matches_the_native_kernel_with_batches() {
    init();
    let ri = video_info(VideoFormat::I420, 96, 72, 25);
    let di = video_info(VideoFormat::Bgrx, 96, 72, 25);
    let scores = |props: &str| {
        let p = AppPipeline::new(props, &ri.to_caps().unwrap(), &di.to_caps().unwrap());
        let reference = (0..7)
            .map(|i| timed(frame(&ri, pattern(i)), Some(i as u64 * 40), Some(40)))
            .collect();
        let distorted = (0..7)
            .map(|i| timed(frame(&di, pattern(i + 1)), Some(i as u64 * 40), Some(40)))
            .collect();
        let run = p.run(reference, distorted);
        assert_eq!(run.error, None);
        run.pairs
    };
    let common = "metrics=mse+psnr+ssim+ms-ssim channels=all";
    let native = scores(&format!("{common} device=cpu backend=native"));
    let device = test_device();
    let torch = scores(&format!(
        "{common} device={device} backend=libtorch batch-size=4"
    ));
    assert_eq!(native.len(), 7);
    assert_eq!(torch.len(), 7);
    for (a, b) in native.iter().zip(&torch) {
        for f in ["ssim", "ms-ssim"] {
            assert!(
                (f64_field(a, f) - f64_field(b, f)).abs() < 1e-5,
                "{f}: {a} vs {b}"
            );
        }
        // The distorted BGRx frame comes to I420 through 12 bits, mapped to the
        // reference's range in f32: each backend rounds that mapping its own way (AVX2's
        // FMA, the portable kernel's multiply and add, libtorch), about 1e-7 of the MSE.
        assert!(
            (f64_field(a, "mse") - f64_field(b, "mse")).abs() < 1e-6 * f64_field(a, "mse"),
            "mse: {} vs {}",
            f64_field(a, "mse"),
            f64_field(b, "mse")
        );
        assert_eq!(u64_field(a, "frame"), u64_field(b, "frame"));
        assert_eq!(b.get::<&str>("device").unwrap(), device);
    }
}

#[test]
fn auto_device_uses_cuda_exactly_when_libtorch_has_it() {
    init();
    let info = video_info(VideoFormat::Gray8, 32, 32, 25);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new("device=auto", &caps, &caps);
    let run = p.run(
        vec![timed(frame(&info, pattern(0)), Some(0), Some(40))],
        vec![timed(frame(&info, pattern(1)), Some(0), Some(40))],
    );
    assert_eq!(run.error, None);
    let expected = if common::cuda_device_count() > 0 {
        "cuda:0"
    } else {
        "cpu"
    };
    assert_eq!(run.pairs[0].get::<&str>("device").unwrap(), expected);
    assert_eq!(
        run.summary.unwrap().get::<&str>("device").unwrap(),
        expected
    );
}
