//! The scoring engine against scores computed independently by scikit-image (SSIM),
//! pytorch_msssim (MS-SSIM) and numpy (MSE, PSNR): see tests/fixtures/generate.py. The
//! libtorch backend runs on the device `GPUCOMPARE_TEST_DEVICE` names (default cpu).

mod common;

#[cfg(feature = "torch")]
use gstgpucompare::scoring::torch::TorchScorer;
use gstgpucompare::scoring::{
    ChannelMode, ColorKind, Component, ImageView, Metrics, Options, Scores, native,
};
use serde_json::Value;

struct Image {
    kind: ColorKind,
    depth: u32,
    width: usize,
    height: usize,
    channels: usize,
    bytes: Vec<u8>,
}

impl Image {
    fn load(name: &str) -> Image {
        let path = format!("{}/tests/fixtures/{name}.png", env!("CARGO_MANIFEST_DIR"));
        let img = image::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (width, height) = (img.width() as usize, img.height() as usize);
        match img {
            image::DynamicImage::ImageLuma8(b) => Image {
                kind: ColorKind::Gray,
                depth: 8,
                width,
                height,
                channels: 1,
                bytes: b.into_raw(),
            },
            image::DynamicImage::ImageLuma16(b) => Image {
                kind: ColorKind::Gray,
                depth: 16,
                width,
                height,
                channels: 1,
                bytes: b.into_raw().iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
            image::DynamicImage::ImageRgb8(b) => Image {
                kind: ColorKind::Rgb,
                depth: 8,
                width,
                height,
                channels: 3,
                bytes: b.into_raw(),
            },
            other => panic!("{path}: unexpected pixel type {:?}", other.color()),
        }
    }

    fn view(&self) -> ImageView<'_> {
        let bps = if self.depth > 8 { 2 } else { 1 };
        ImageView {
            kind: self.kind,
            depth: self.depth,
            components: (0..self.channels)
                .map(|c| Component {
                    data: &self.bytes,
                    offset: c * bps,
                    stride: self.width * self.channels * bps,
                    pixel_stride: self.channels * bps,
                    width: self.width,
                    height: self.height,
                    shift: 0,
                    map: None,
                })
                .collect(),
        }
    }
}

#[cfg(feature = "torch")]
fn device() -> gstgpucompare::scoring::Device {
    let name = common::test_device();
    gstgpucompare::scoring::parse_device(&name).unwrap_or_else(|| panic!("bad device {name}"))
}

#[test]
#[cfg(feature = "torch")]
fn the_test_device_is_usable() {
    // On a GPU machine this fails when libtorch's CUDA backend was not linked.
    gstgpucompare::scoring::torch::check_device(device()).unwrap();
}

fn expected() -> Value {
    let path = format!(
        "{}/tests/fixtures/expected.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const ALL_METRICS: Metrics = Metrics {
    mse: true,
    psnr: true,
    ssim: true,
    ms_ssim: true,
    vmaf: false,
    model: false,
};

fn check(case: &str, mode: ChannelMode, got: &Scores, backend: &str) {
    let e = &expected()[case][mode.as_str()];
    let ctx = format!("{case} {} on {backend}", mode.as_str());
    let mse = e["mse"].as_f64().unwrap();
    assert!(
        (got.mse - mse).abs() <= 1e-6 * mse.max(1.0),
        "{ctx}: mse {} vs {mse}",
        got.mse
    );
    let psnr = e["psnr"].as_f64().unwrap();
    assert!(
        (got.psnr - psnr).abs() < 1e-3,
        "{ctx}: psnr {} vs {psnr}",
        got.psnr
    );
    match e["ssim"].as_f64() {
        Some(v) => {
            let s = got.ssim.unwrap_or_else(|| panic!("{ctx}: no ssim"));
            assert!((s - v).abs() < 1e-4, "{ctx}: ssim {s} vs {v}");
        }
        None => assert_eq!(got.ssim, None, "{ctx}"),
    }
    match e["ms_ssim"].as_f64() {
        Some(v) => {
            let s = got.ms_ssim.unwrap_or_else(|| panic!("{ctx}: no ms-ssim"));
            assert!((s - v).abs() < 1e-4, "{ctx}: ms-ssim {s} vs {v}");
            assert_eq!(
                got.ms_ssim_scales as u64,
                e["ms_ssim_scales"].as_u64().unwrap(),
                "{ctx}"
            );
        }
        None => assert_eq!(got.ms_ssim, None, "{ctx}"),
    }
}

fn run_case(case: &str, mode: ChannelMode) {
    let (r, d) = (
        Image::load(&format!("{case}_ref")),
        Image::load(&format!("{case}_dist")),
    );
    let opts = Options {
        metrics: ALL_METRICS,
        channels: mode,
        map: false,
    };
    // Every kernel this CPU can run (portable, AVX2, AVX-512), against the fixtures and
    // against libtorch.
    for simd in native::Simd::available() {
        let (native, _) = native::score_with(simd, &r.view(), &d.view(), &opts, 0).unwrap();
        check(case, mode, &native, &format!("native {}", simd.name()));
        #[cfg(feature = "torch")]
        check_libtorch(case, mode, &r, &d, &native);
    }
}

/// libtorch on the test device: the fixtures, and within 1e-5 of the native kernel.
#[cfg(feature = "torch")]
fn check_libtorch(case: &str, mode: ChannelMode, r: &Image, d: &Image, native: &Scores) {
    let opts = Options {
        metrics: ALL_METRICS,
        channels: mode,
        map: false,
    };
    let torch = TorchScorer::new(device()).unwrap();
    // Twice in one batch: batched pairs must not mix.
    let got = torch
        .score_batch(&[(r.view(), d.view()), (r.view(), d.view())], &opts)
        .unwrap();
    let name = format!("libtorch {}", common::test_device());
    check(case, mode, &got[0], &name);
    assert_eq!(got[0], got[1]);
    // The two backends agree more closely than either agrees with the reference.
    for (a, b) in [(native.ssim, got[0].ssim), (native.ms_ssim, got[0].ms_ssim)] {
        if let (Some(a), Some(b)) = (a, b) {
            assert!((a - b).abs() < 1e-5, "{case}: native {a} vs {name} {b}");
        }
    }
    let (a, b) = (native.mse, got[0].mse);
    assert!(
        (a - b).abs() <= 1e-5 * a.max(1.0),
        "{case}: native mse {a} vs {name} {b}"
    );
}

#[test]
fn gray8_five_scales() {
    run_case("gray_200x180", ChannelMode::Luma);
}

#[test]
fn gray8_odd_size_with_fewer_scales() {
    run_case("gray_odd_37x23", ChannelMode::Luma);
}

#[test]
fn gray8_smaller_than_the_window_gets_psnr_only() {
    run_case("gray_tiny_9x7", ChannelMode::Luma);
}

#[test]
fn gray16() {
    run_case("gray16_64x48", ChannelMode::Luma);
}

#[test]
fn rgb_luma() {
    run_case("rgb_odd_171x165", ChannelMode::Luma);
}

#[test]
fn rgb_all_channels() {
    run_case("rgb_odd_171x165", ChannelMode::All);
}

#[test]
fn identical_frames() {
    let r = Image::load("rgb_odd_171x165_ref");
    let opts = Options {
        metrics: ALL_METRICS,
        channels: ChannelMode::All,
        map: false,
    };
    #[cfg_attr(not(feature = "torch"), allow(unused_mut))]
    let mut scored = vec![native::score(&r.view(), &r.view(), &opts).unwrap()];
    #[cfg(feature = "torch")]
    {
        let torch = TorchScorer::new(device()).unwrap();
        scored.extend(torch.score_batch(&[(r.view(), r.view())], &opts).unwrap());
    }
    for got in &scored {
        assert_eq!(got.mse, 0.0);
        assert_eq!(got.psnr, f64::INFINITY);
        assert!((got.ssim.unwrap() - 1.0).abs() < 1e-6);
        assert!((got.ms_ssim.unwrap() - 1.0).abs() < 1e-6);
    }
}
