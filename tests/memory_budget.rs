//! The scoring engine within memory budgets: banded frames give the whole-frame result,
//! the accounting stays under the budget, allocation failures are recovered from, and a
//! budget too small for one band is a clear error. The libtorch backend runs on the device
//! `GPUCOMPARE_TEST_DEVICE` names (default cpu); builds without libtorch skip this file.
#![cfg(feature = "torch")]

mod common;

use gstgpucompare::scoring::budget::{band_bytes, tile_bytes};
use gstgpucompare::scoring::budgeted::{BudgetedScorer, SMALLEST_ATTEMPTS};
use gstgpucompare::scoring::parse_device;
use gstgpucompare::scoring::torch::TorchScorer;
use gstgpucompare::scoring::{ChannelMode, Error, ImageView, Metrics, Options, native};

const MIB: u64 = 1 << 20;

fn gray(data: &[u8], w: usize, h: usize) -> ImageView<'_> {
    ImageView::gray8(data, w, h)
}

/// A textured frame and a noisy, shifted copy of it.
fn pair(w: usize, h: usize, seed: u32) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_mul(2654435761).max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 23) as i32 - 11
    };
    let a: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            ((x * 3 + y * 5 + (x / 7) * (y / 11)) % 256) as u8
        })
        .collect();
    let b = a
        .iter()
        .map(|&v| (v as i32 + noise()).clamp(0, 255) as u8)
        .collect();
    (a, b)
}

fn scorer() -> BudgetedScorer {
    let device = parse_device(&common::test_device()).expect("a device name");
    BudgetedScorer::new(TorchScorer::new(device).expect("libtorch on the test device"))
}

/// MSE, PSNR, SSIM and MS-SSIM.
fn every_metric() -> Options {
    opts(Metrics {
        mse: true,
        psnr: true,
        ssim: true,
        ms_ssim: true,
        vmaf: false,
        model: false,
    })
}

/// GRAY8 views of frame pairs.
fn gray_views(
    frames: &[(Vec<u8>, Vec<u8>)],
    w: usize,
    h: usize,
) -> Vec<(ImageView<'_>, ImageView<'_>)> {
    frames
        .iter()
        .map(|(a, b)| (gray(a, w, h), gray(b, w, h)))
        .collect()
}

fn opts(metrics: Metrics) -> Options {
    Options {
        metrics,
        channels: ChannelMode::Luma,
        map: false,
    }
}

#[test]
fn an_8192_square_pair_in_64_mib_equals_the_unconstrained_score() {
    let (w, h) = (8192, 8192);
    let (a, b) = pair(w, h, 1);
    let views = [(gray(&a, w, h), gray(&b, w, h))];
    let o = opts(Metrics {
        mse: true,
        psnr: true,
        ssim: true,
        ms_ssim: false,
        vmaf: false,
        model: false,
    });
    let budget = 64 * MIB;
    let mut banded = scorer();
    let got = banded.score(&views, &o, 1, budget, |_| {}).unwrap();
    let usage = got[0].usage;
    assert!(usage.tiles > 1, "{usage:?}");
    assert!(
        usage.bytes <= budget && banded.peak_bytes <= budget,
        "{usage:?}"
    );
    // Unconstrained: the whole frame at once.
    let mut whole = scorer();
    let want = whole.score(&views, &o, 1, 0, |_| {}).unwrap();
    assert_eq!(want[0].usage.tiles, 1);
    assert!(want[0].usage.bytes > budget);
    let (g, e) = (&got[0].scores, &want[0].scores);
    assert!(
        (g.ssim.unwrap() - e.ssim.unwrap()).abs() < 1e-6,
        "{g:?} vs {e:?}"
    );
    assert_eq!(g.mse, e.mse);
    assert_eq!(g.psnr, e.psnr);
}

#[test]
fn a_budget_too_small_for_one_band_is_a_clear_error() {
    let (w, h) = (4096, 64);
    let (a, b) = pair(w, h, 2);
    let views = [(gray(&a, w, h), gray(&b, w, h))];
    let o = opts(Metrics::default());
    let err = scorer()
        .score(&views, &o, 1, band_bytes(w, 1) - 1, |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::Budget(m) if m.contains("cannot hold even one band")),
        "{err}"
    );
    assert!(
        scorer()
            .score(&views, &o, 1, band_bytes(w, 1), |_| {})
            .is_ok()
    );
    // The CPU kernel refuses a budget below its strip buffers, too.
    let err = native::score_within(&views[0].0, &views[0].1, &o, 1024).unwrap_err();
    assert!(matches!(err, Error::Budget(_)), "{err}");
}

#[test]
fn allocation_failures_are_recovered_with_every_pair_scored_once() {
    let (w, h) = (96, 64);
    let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..6).map(|i| pair(w, h, 10 + i)).collect();
    let views = gray_views(&frames, w, h);
    let o = every_metric();
    let want = scorer().score(&views, &o, 4, 0, |_| {}).unwrap();
    let mut s = scorer();
    // The first batch of four fails, then the batch of two, then the single frame.
    s.torch.inject_allocation_failures(3);
    let mut retries = Vec::new();
    let got = s
        .score(&views, &o, 4, 0, |r| retries.push(r.retry))
        .unwrap();
    assert_eq!(s.recoveries, 3);
    let plans: Vec<(usize, Option<usize>)> =
        retries.iter().map(|p| (p.batch, p.band_rows)).collect();
    assert_eq!(plans, [(2, None), (1, None), (1, Some(27))]);
    assert_eq!(got.len(), 6);
    for (g, e) in got.iter().zip(&want) {
        assert!((g.scores.ssim.unwrap() - e.scores.ssim.unwrap()).abs() < 1e-6);
        assert!((g.scores.ms_ssim.unwrap() - e.scores.ms_ssim.unwrap()).abs() < 1e-6);
        assert_eq!(g.scores.mse, e.scores.mse);
    }
    // The first pair went in bands of 27 rows: two at full size (54 output rows), one at
    // each of MS-SSIM's two smaller scales.
    assert_eq!(got[0].usage.tiles, 4);
    assert!(
        got[5].usage.tiles < got[0].usage.tiles,
        "bands grow back once batches succeed: {:?}",
        got.iter().map(|g| g.usage.tiles).collect::<Vec<_>>()
    );
}

#[test]
fn a_steady_rate_of_failures_never_ends_the_stream() {
    let (w, h) = (64, 48);
    let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..8).map(|i| pair(w, h, 30 + i)).collect();
    let views = gray_views(&frames, w, h);
    let o = every_metric();
    let want = scorer().score(&views, &o, 1, 0, |_| {}).unwrap();
    let mut s = scorer();
    // One pair at a time, as the element scores with batch-size=1; one allocation fails
    // every third pair, faster than the bands can grow back.
    for i in 0..200 {
        if i % 3 == 0 {
            s.torch.inject_allocation_failures(1);
        }
        let k = i % views.len();
        let got = s
            .score(&views[k..k + 1], &o, 1, 0, |_| {})
            .unwrap_or_else(|e| panic!("pair {i}: {e}"));
        assert_eq!(got.len(), 1);
        assert!((got[0].scores.ssim.unwrap() - want[k].scores.ssim.unwrap()).abs() < 1e-6);
        assert_eq!(got[0].scores.mse, want[k].scores.mse);
    }
    assert!(s.recoveries >= 66, "{}", s.recoveries);
}

#[test]
fn the_smallest_band_is_retried_before_giving_up() {
    let (w, h) = (32, 12); // two output rows: bands of 1 row after one halving
    let (a, b) = pair(w, h, 3);
    let views = [(gray(&a, w, h), gray(&b, w, h))];
    let o = opts(Metrics::default());
    let want = scorer().score(&views, &o, 1, 0, |_| {}).unwrap();
    // Whole frame, then the one-row band twice: the third try of the band goes through.
    let mut s = scorer();
    s.torch.inject_allocation_failures(SMALLEST_ATTEMPTS);
    let got = s.score(&views, &o, 1, 0, |_| {}).unwrap();
    assert_eq!(got[0].scores.mse, want[0].scores.mse);
    assert_eq!(s.recoveries, SMALLEST_ATTEMPTS as u64);
}

#[test]
fn running_out_of_memory_at_the_smallest_band_is_an_error() {
    let (w, h) = (32, 12); // two output rows: bands of 1 row after one halving
    let (a, b) = pair(w, h, 3);
    let views = [(gray(&a, w, h), gray(&b, w, h))];
    let mut s = scorer();
    s.torch.inject_allocation_failures(1000);
    let err = s
        .score(&views, &opts(Metrics::default()), 1, 0, |_| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("times in a row on the same frame, even in the smallest bands"),
        "{err}"
    );
}

#[test]
fn the_cpu_kernel_stays_in_its_budget_and_gives_the_same_scores() {
    let (w, h) = (640, 480);
    let (a, b) = pair(w, h, 4);
    let (x, y) = (gray(&a, w, h), gray(&b, w, h));
    let o = every_metric();
    let (free, free_usage) = native::score_within(&x, &y, &o, 0).unwrap();
    // Enough for the strips but not for stored pooled planes: they are recomputed.
    let budget = tile_bytes() + 1024;
    let (tight, usage) = native::score_within(&x, &y, &o, budget).unwrap();
    assert!(
        usage.bytes <= budget && free_usage.bytes > budget,
        "{usage:?} {free_usage:?}"
    );
    assert_eq!(tight, free);
}

/// The largest difference between banded and whole-frame scores, SSIM and MS-SSIM.
fn banded_against_whole(views: &[(ImageView<'_>, ImageView<'_>)], band_rows: usize) -> f64 {
    let o = every_metric();
    let s = scorer();
    let whole = s.torch.score_batch(views, &o).unwrap();
    let mut worst = 0f64;
    for ((r, d), w) in views.iter().zip(&whole) {
        let (banded, usage) = s.torch.score_banded(r, d, &o, band_rows).unwrap();
        assert!(usage.tiles > 40, "{usage:?}");
        assert_eq!(banded.mse, w.mse);
        worst = worst
            .max((banded.ssim.unwrap() - w.ssim.unwrap()).abs())
            .max((banded.ms_ssim.unwrap() - w.ms_ssim.unwrap()).abs());
    }
    worst
}

#[test]
fn banded_scores_equal_whole_frame_scores_to_1e_6() {
    // Even and odd sizes (odd sides are padded when pooled), a batch of two.
    for (w, h) in [(320, 240), (321, 243)] {
        let frames: Vec<(Vec<u8>, Vec<u8>)> = (0..2).map(|i| pair(w, h, 50 + i)).collect();
        let views = gray_views(&frames, w, h);
        let worst = banded_against_whole(&views, 5);
        eprintln!("{w}x{h}: banded - whole at most {worst:e}");
        assert!(worst <= 1e-6, "{w}x{h}: {worst:e}");
    }
}

#[test]
fn identical_frames_score_exactly_one_on_both_backends() {
    let (w, h) = (64, 48);
    let zeros = vec![0u8; w * h];
    let (texture, _) = pair(w, h, 9);
    let o = every_metric();
    for data in [&zeros, &texture] {
        let v = gray(data, w, h);
        let native = native::score(&v, &v, &o).unwrap();
        let torch = scorer()
            .torch
            .score_batch(&[(v.clone(), v.clone())], &o)
            .unwrap();
        for s in [&native, &torch[0]] {
            assert_eq!((s.ssim, s.ms_ssim, s.mse), (Some(1.0), Some(1.0), 0.0));
        }
    }
}
