//! Per-pixel maps (`Options::map`, for the heat-map): both backends return the same map,
//! it averages to the pair's score, and it locates a local distortion. The libtorch
//! backend runs on the device `GPUCOMPARE_TEST_DEVICE` names (default cpu).

mod common;

use gstgpucompare::scoring::{
    ChannelMode, ImageView, MapKind, Metrics, Options, QualityMap, Scores, native,
};

const W: usize = 96;
const H: usize = 80;
/// The blurred square: x and y from 30 to 59.
const SQUARE: std::ops::Range<usize> = 30..60;

/// A textured frame, and the same frame with a 5×5 box blur inside [`SQUARE`] only.
fn pair() -> (Vec<u8>, Vec<u8>) {
    let a: Vec<u8> = (0..W * H)
        .map(|i| {
            let (x, y) = (i % W, i / W);
            ((x * 37 + y * 91 + (x * y) % 23) % 256) as u8
        })
        .collect();
    let mut b = a.clone();
    for y in SQUARE {
        for x in SQUARE {
            let mut sum = 0u32;
            for dy in 0..5 {
                for dx in 0..5 {
                    sum += a[(y + dy - 2) * W + x + dx - 2] as u32;
                }
            }
            b[y * W + x] = (sum / 25) as u8;
        }
    }
    (a, b)
}

fn options(ssim: bool, map: bool) -> Options {
    Options {
        metrics: Metrics {
            ssim,
            ..Metrics::default()
        },
        channels: ChannelMode::Luma,
        map,
    }
}

fn native_scores(opts: &Options) -> Scores {
    let (a, b) = pair();
    native::score(
        &ImageView::gray8(&a, W, H),
        &ImageView::gray8(&b, W, H),
        opts,
    )
    .unwrap()
}

/// The pixel of the map's lowest (SSIM) or highest (squared error) value.
fn worst_pixel(map: &QualityMap) -> (usize, usize) {
    let mut worst = (0, 0, f32::NAN);
    for y in 0..map.height {
        for x in 0..map.width {
            if let Some(v) = map.at(x, y) {
                let bad = if map.kind == MapKind::Ssim { -v } else { v };
                if worst.2.is_nan() || bad > worst.2 {
                    worst = (x, y, bad);
                }
            }
        }
    }
    (worst.0, worst.1)
}

#[test]
fn no_map_unless_asked_for() {
    assert_eq!(native_scores(&options(true, false)).map, None);
}

#[test]
fn the_ssim_map_averages_to_the_score_and_finds_the_blurred_square() {
    let s = native_scores(&options(true, true));
    let map = s.map.clone().expect("a map was asked for");
    assert_eq!(map.kind, MapKind::Ssim);
    assert_eq!((map.width, map.height), (W, H));
    assert_eq!(map.values.len(), (W - 10) * (H - 10));
    let mean = map.values.iter().map(|&v| v as f64).sum::<f64>() / map.values.len() as f64;
    assert!((mean - s.ssim.unwrap()).abs() < 1e-5, "{mean} vs {s:?}");
    let (x, y) = worst_pixel(&map);
    assert!(SQUARE.contains(&x) && SQUARE.contains(&y), "({x}, {y})");
    // Far from the square (beyond the window's reach) the frames are identical.
    assert_eq!(map.at(10, 10), Some(1.0));
}

#[test]
fn without_ssim_the_map_is_the_squared_error() {
    let (a, b) = pair();
    let s = native_scores(&options(false, true));
    let map = s.map.unwrap();
    assert_eq!(map.kind, MapKind::SquaredError);
    assert_eq!(map.values.len(), W * H);
    for (i, (&p, &q)) in a.iter().zip(&b).enumerate() {
        let d = p as f32 - q as f32;
        assert_eq!(map.values[i], d * d);
    }
    let sse: f64 = map.values.iter().map(|&v| v as f64).sum();
    assert!((sse / (W * H) as f64 - s.mse).abs() < 1e-9);
}

#[cfg(feature = "torch")]
mod libtorch {
    use super::*;
    use gstgpucompare::scoring::torch::TorchScorer;

    fn assert_close(a: &QualityMap, b: &QualityMap) {
        assert_eq!((a.kind, a.width, a.height), (b.kind, b.width, b.height));
        let worst = a
            .values
            .iter()
            .zip(&b.values)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "maps differ by {worst}");
    }

    #[test]
    fn libtorch_returns_the_native_map_whole_and_in_bands() {
        let device = gstgpucompare::scoring::parse_device(&common::test_device()).unwrap();
        let torch = TorchScorer::new(device).unwrap();
        let (a, b) = pair();
        let (ra, rb) = (ImageView::gray8(&a, W, H), ImageView::gray8(&b, W, H));
        for ssim in [true, false] {
            let opts = options(ssim, true);
            let native = native_scores(&opts).map.unwrap();
            // Two pairs in one batch: each gets its own map.
            let batch = torch
                .score_batch(&[(ra.clone(), rb.clone()), (ra.clone(), ra.clone())], &opts)
                .unwrap();
            assert_close(batch[0].map.as_ref().unwrap(), &native);
            let identical = batch[1].map.as_ref().unwrap();
            assert!(
                identical
                    .values
                    .iter()
                    .all(|&v| v == if ssim { 1.0 } else { 0.0 })
            );
            let (banded, usage) = torch.score_banded(&ra, &rb, &opts, 7).unwrap();
            assert!(usage.tiles > 1);
            assert_close(banded.map.as_ref().unwrap(), &native);
        }
        let plain = torch
            .score_batch(&[(ra.clone(), rb.clone())], &options(true, false))
            .unwrap();
        assert_eq!(plain[0].map, None);
    }
}
