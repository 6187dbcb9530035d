//! `comparesink` on the pixels real media carry: colour range and matrix, 10- and 12-bit
//! video, per-plane scores, against values computed independently by numpy, scikit-image
//! and FFmpeg (tests/fixtures/generate_video.py). The libtorch backend runs on the device
//! `GPUCOMPARE_TEST_DEVICE` names (default cpu).

mod common;

use common::*;
use gst_video::{
    VideoColorMatrix as Matrix, VideoColorPrimaries as Primaries, VideoColorRange as Range,
    VideoColorimetry, VideoFormat, VideoTransferFunction as Transfer,
};
use serde_json::Value;

fn f64_field(s: &gst::Structure, name: &str) -> f64 {
    s.get::<f64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

fn info(format: VideoFormat, range: Range, matrix: Matrix) -> gst_video::VideoInfo {
    init();
    let size = &video_expected()["size"];
    gst_video::VideoInfo::builder(
        format,
        size["width"].as_u64().unwrap() as u32,
        size["height"].as_u64().unwrap() as u32,
    )
    .fps(gst::Fraction::new(25, 1))
    .colorimetry(&VideoColorimetry::new(
        range,
        matrix,
        Transfer::Bt709,
        Primaries::Bt709,
    ))
    .build()
    .unwrap()
}

fn limited(format: VideoFormat) -> gst_video::VideoInfo {
    info(format, Range::Range16_235, Matrix::Bt709)
}

/// Scores one pair of raw fixture frames; returns the message and the warnings.
fn score(
    props: &str,
    (ref_file, ref_info): (&str, &gst_video::VideoInfo),
    (dist_file, dist_info): (&str, &gst_video::VideoInfo),
) -> (gst::Structure, Vec<String>) {
    init();
    let p = AppPipeline::new(
        props,
        &ref_info.to_caps().unwrap(),
        &dist_info.to_caps().unwrap(),
    );
    let run = p.run(
        vec![timed(raw_frame(ref_file, ref_info, 0), Some(0), Some(40))],
        vec![timed(raw_frame(dist_file, dist_info, 0), Some(0), Some(40))],
    );
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 1);
    (run.pairs[0].clone(), run.warnings)
}

/// Checks the message against a case's expected luma or pooled scores.
fn check(s: &gst::Structure, expected: &Value, psnr_tolerance: f64, ssim_tolerance: f64) {
    let psnr = expected["psnr"].as_f64().unwrap();
    let ssim = expected["ssim"].as_f64().unwrap();
    assert!(
        (f64_field(s, "psnr") - psnr).abs() < psnr_tolerance,
        "psnr: expected {psnr}, {s}"
    );
    assert!(
        (f64_field(s, "ssim") - ssim).abs() < ssim_tolerance,
        "ssim: expected {ssim}, {s}"
    );
}

const BOTH: &str = "metrics=psnr+ssim";

#[test]
fn full_range_against_limited_range_is_converted_and_reported() {
    let e = video_expected();
    let reference = ("range_ref_i420_limited.yuv", &limited(VideoFormat::I420));
    let full = info(VideoFormat::I420, Range::Range0_255, Matrix::Bt709);
    for backend in &backend_settings() {
        let (s, warnings) = score(
            &format!("{BOTH} {backend}"),
            reference,
            ("range_dist_i420_full.yuv", &full),
        );
        check(&s, &e["range"]["luma"], 0.1, 1e-3);
        // Unconverted, the same samples score about 6 dB lower.
        let unconverted = e["range"]["unconverted_psnr_y"].as_f64().unwrap();
        assert!(f64_field(&s, "psnr") > unconverted + 5.0, "{s}");
        assert_eq!(
            warnings.len(),
            1,
            "one warning for the whole stream: {warnings:?}"
        );
        assert!(
            warnings[0].contains("range full (reference limited)"),
            "{warnings:?}"
        );
        let (all, _) = score(
            &format!("{BOTH} channels=all {backend}"),
            reference,
            ("range_dist_i420_full.yuv", &full),
        );
        check(&all, &e["range"]["all"], 0.1, 1e-3);
    }
}

#[test]
fn unknown_transfer_and_primaries_are_taken_as_the_references() {
    // As JPEG decoders label frames (caps colorimetry 1:4:0:0): the full-range frame must
    // score as when transfer and primaries are stated, and only the range is reported.
    let e = video_expected();
    let size = &e["size"];
    let jpeg_like = gst_video::VideoInfo::builder(
        VideoFormat::I420,
        size["width"].as_u64().unwrap() as u32,
        size["height"].as_u64().unwrap() as u32,
    )
    .fps(gst::Fraction::new(25, 1))
    .colorimetry(&VideoColorimetry::new(
        Range::Range0_255,
        Matrix::Bt709,
        Transfer::Unknown,
        Primaries::Unknown,
    ))
    .build()
    .unwrap();
    let (s, warnings) = score(
        BOTH,
        ("range_ref_i420_limited.yuv", &limited(VideoFormat::I420)),
        ("range_dist_i420_full.yuv", &jpeg_like),
    );
    check(&s, &e["range"]["luma"], 0.1, 1e-3);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        !warnings[0].contains("transfer") && !warnings[0].contains("primaries"),
        "{warnings:?}"
    );
}

#[test]
fn bt601_against_bt709_is_converted() {
    let e = video_expected();
    let bt601 = info(VideoFormat::I420, Range::Range16_235, Matrix::Bt601);
    let (s, warnings) = score(
        BOTH,
        ("range_ref_i420_limited.yuv", &limited(VideoFormat::I420)),
        ("matrix_dist_i420_bt601.yuv", &bt601),
    );
    check(&s, &e["matrix"]["luma"], 0.1, 1e-3);
    let unconverted = e["matrix"]["unconverted_psnr_y"].as_f64().unwrap();
    assert!(f64_field(&s, "psnr") > unconverted + 5.0, "{s}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("matrix Bt601 (reference Bt709)")),
        "{warnings:?}"
    );
}

#[test]
fn ten_bit_pairs_score_on_a_1023_scale() {
    let e = &video_expected()["i420_10le"];
    let i420 = limited(VideoFormat::I42010le);
    let p010 = limited(VideoFormat::P01010le);
    let pairs = [
        (("i420_10le_ref.yuv", &i420), ("i420_10le_dist.yuv", &i420)),
        (("p010_ref.yuv", &p010), ("p010_dist.yuv", &p010)),
        (("p010_ref.yuv", &p010), ("i420_10le_dist.yuv", &i420)),
    ];
    for backend in &backend_settings() {
        for (reference, distorted) in pairs {
            let (s, warnings) = score(&format!("{BOTH} {backend}"), reference, distorted);
            check(&s, &e["luma"], 1e-3, 1e-4);
            assert_eq!(
                s.get::<&str>("format").unwrap(),
                reference.1.format().to_str()
            );
            // P010 against I420_10LE: another format, the same samples, no conversion.
            assert_eq!(warnings.len(), (reference.1 != distorted.1) as usize);
            let (all, _) = score(
                &format!("{BOTH} channels=all {backend}"),
                reference,
                distorted,
            );
            check(&all, &e["all"], 1e-3, 1e-4);
            for plane in ["y", "u", "v"] {
                let expected = &e["planes"][plane];
                let ssim = expected["ssim"].as_f64().unwrap();
                let psnr = expected["psnr"].as_f64().unwrap();
                assert!((f64_field(&all, &format!("ssim-{plane}")) - ssim).abs() < 1e-4);
                assert!((f64_field(&all, &format!("psnr-{plane}")) - psnr).abs() < 1e-3);
            }
        }
    }
}

#[test]
fn twelve_bit_pair_scores_on_a_4095_scale() {
    let e = &video_expected()["i420_12le"];
    let i420 = limited(VideoFormat::I42012le);
    let (s, _) = score(
        BOTH,
        ("i420_12le_ref.yuv", &i420),
        ("i420_12le_dist.yuv", &i420),
    );
    check(&s, &e["luma"], 1e-3, 1e-4);
    assert_eq!(s.get::<&str>("format").unwrap(), "I420_12LE");
}

#[test]
fn eight_bit_distorted_against_ten_bit_reference() {
    let e = &video_expected()["depth_10_vs_8"];
    let (s, warnings) = score(
        &format!("{BOTH} channels=all"),
        ("i420_10le_ref.yuv", &limited(VideoFormat::I42010le)),
        ("depth_dist_i420.yuv", &limited(VideoFormat::I420)),
    );
    check(&s, &e["all"], 1e-3, 1e-4);
    assert_eq!(s.get::<&str>("format").unwrap(), "I420_10LE");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("format I420 (reference I420_10LE)")),
        "{warnings:?}"
    );
}

/// Runs the three 8-bit pairs FFmpeg scored, with `props`.
fn ffmpeg_planes_run(props: &str) -> Run {
    init();
    let info = limited(VideoFormat::I420);
    let caps = info.to_caps().unwrap();
    let p = AppPipeline::new(props, &caps, &caps);
    let frames = |file: &str| {
        (0..3)
            .map(|i| timed(raw_frame(file, &info, i), Some(i as u64 * 40), Some(40)))
            .collect()
    };
    let run = p.run(frames("planes_ref.yuv"), frames("planes_dist.yuv"));
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 3);
    run
}

#[test]
fn per_plane_psnr_equals_ffmpegs() {
    let e = video_expected();
    let run = ffmpeg_planes_run("metrics=mse+psnr+ssim channels=all");
    let ffmpeg = e["ffmpeg_planes"]["frames"].as_array().unwrap();
    for (s, f) in run.pairs.iter().zip(ffmpeg) {
        for plane in ["y", "u", "v"] {
            let expected = f[plane].as_f64().unwrap();
            let got = f64_field(s, &format!("psnr-{plane}"));
            assert!(
                (got - expected).abs() < 1e-4,
                "{plane}: {got} vs {expected}"
            );
            f64_field(s, &format!("ssim-{plane}"));
            f64_field(s, &format!("mse-{plane}"));
        }
        assert!(!s.has_field("ms-ssim-y"), "ms-ssim is not enabled: {s}");
    }
    // The summary: per-plane means, the PSNR ones FFmpeg's way (the PSNR of the mean MSE).
    let sum = run.summary.unwrap();
    for plane in ["y", "u", "v"] {
        let mses: Vec<f64> = run
            .pairs
            .iter()
            .map(|s| f64_field(s, &format!("mse-{plane}")))
            .collect();
        let mean = mses.iter().sum::<f64>() / 3.0;
        let psnr = 10.0 * (255f64 * 255.0 / mean).log10();
        assert!((f64_field(&sum, &format!("psnr-{plane}-mean")) - psnr).abs() < 1e-9);
        f64_field(&sum, &format!("ssim-{plane}-mean"));
    }
}

#[test]
fn harmonic_means_follow_libvmafs_definition() {
    let run = ffmpeg_planes_run("metrics=mse+psnr+ssim");
    let sum = run.summary.unwrap();
    for metric in ["mse", "psnr", "ssim"] {
        let values: Vec<f64> = run.pairs.iter().map(|s| f64_field(s, metric)).collect();
        let inverse = values.iter().map(|x| 1.0 / (1.0 + x)).sum::<f64>() / values.len() as f64;
        let expected = 1.0 / inverse - 1.0;
        let got = f64_field(&sum, &format!("{metric}-harmonic-mean"));
        assert!(
            (got - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{metric}: {got} vs {expected}"
        );
        // Below the mean, as a harmonic mean of unequal values is.
        assert!(got < values.iter().sum::<f64>() / values.len() as f64);
    }
}
