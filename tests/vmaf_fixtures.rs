//! VMAF against libvmaf, on the fixture clips (tests/fixtures/generate_vmaf.py; libvmaf's
//! values are printed to six decimals): its regression (libvmaf's features must give
//! libvmaf's scores with the same model) and the features we compute. (The pooling is
//! tested where the element pools, in src/comparesink/report.rs.)

mod vmaf_clips;

use gstgpucompare::scoring::native::Simd;
use gstgpucompare::scoring::rows::ImagePlane;
use gstgpucompare::scoring::vmaf::adm::adm2;
use gstgpucompare::scoring::vmaf::motion::{MotionTracker, eight_bit_scale};
use gstgpucompare::scoring::vmaf::vif::vif;
use gstgpucompare::scoring::vmaf::{Features, Model};
use gstgpucompare::scoring::{ChannelMode, ColorKind, Component, ImageView, planes_for};
use serde_json::Value;

use vmaf_clips::{clip_file, expected};

fn features(v: &Value) -> Features {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Features {
        adm2: f("adm2"),
        motion2: f("motion2"),
        vif: [
            f("vif_scale0"),
            f("vif_scale1"),
            f("vif_scale2"),
            f("vif_scale3"),
        ],
    }
}

/// Each clip's frames under each model: (clip, model, libvmaf's frames, libvmaf's pooled).
fn cases(e: &Value) -> Vec<(String, String, Vec<Value>, Value)> {
    let mut out = Vec::new();
    for (clip, c) in e["clips"].as_object().expect("clips") {
        for (model, m) in c["models"].as_object().expect("models") {
            let frames = m["frames"].as_array().expect("frames").clone();
            out.push((clip.clone(), model.clone(), frames, m["pooled"].clone()));
        }
    }
    out
}

#[test]
fn libvmafs_features_give_libvmafs_scores() {
    let e = expected();
    let cases = cases(&e);
    assert_eq!(cases.len(), 15, "five clips, three models");
    for (clip, model, frames, _) in cases {
        let m = Model::load(&model).unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let got = m.predict(&features(&frame["features"]));
            let want = frame["vmaf"].as_f64().unwrap();
            // The features are printed to six decimals, which moves these scores by up
            // to about 6e-5 (and the scores themselves are rounded to 1e-6).
            assert!(
                (got - want).abs() < 2e-4,
                "{clip} {model} frame {i}: {got} against libvmaf's {want}"
            );
        }
    }
}

#[test]
fn a_model_file_path_loads_as_the_built_in_model() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/vmaf/vmaf_4k_v0.6.1.json");
    let from_file = Model::load(path).unwrap();
    let built_in = Model::load("vmaf_4k_v0.6.1").unwrap();
    assert_eq!(from_file, built_in);
    let f = Features {
        adm2: 0.9,
        motion2: 3.0,
        vif: [0.5, 0.8, 0.9, 0.95],
    };
    assert_eq!(from_file.predict(&f), built_in.predict(&f));
}

/// A clip's frames as I420 views (8-bit, or 16-bit little-endian words for more bits).
fn i420_frames(data: &[u8], w: usize, h: usize, depth: u32) -> Vec<ImageView<'_>> {
    let bytes = if depth > 8 { 2 } else { 1 };
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let frame = (w * h + 2 * cw * ch) * bytes;
    let plane = |data, offset, width, height| Component {
        data,
        offset,
        stride: width * bytes,
        pixel_stride: bytes,
        width,
        height,
        shift: 0,
        map: None,
    };
    data.chunks_exact(frame)
        .map(|f| ImageView {
            kind: ColorKind::Yuv,
            depth,
            components: vec![
                plane(f, 0, w, h),
                plane(f, w * h * bytes, cw, ch),
                plane(f, (w * h + cw * ch) * bytes, cw, ch),
            ],
        })
        .collect()
}

#[test]
fn motion2_equals_libvmafs() {
    let e = expected();
    for (name, clip) in e["clips"].as_object().expect("clips") {
        let dim = |k: &str| clip[k].as_u64().expect("clip dimensions") as usize;
        let (w, h, depth) = (dim("width"), dim("height"), dim("depth") as u32);
        let data = std::fs::read(clip_file(clip, "reference")).expect("reference clip");
        let frames = i420_frames(&data, w, h, depth);
        assert_eq!(frames.len() as u64, clip["frames"].as_u64().unwrap());
        let luma = planes_for(ColorKind::Yuv, ChannelMode::Luma)[0];
        let mut tracker = MotionTracker::default();
        let mut got = Vec::new();
        for f in &frames {
            got.extend(tracker.push(&ImagePlane::new(f, luma), eight_bit_scale(depth)));
        }
        got.extend(tracker.finish());
        let want = &clip["models"]["vmaf_v0.6.1"]["frames"];
        assert_eq!(got.len(), frames.len());
        for (i, (index, motion2)) in got.into_iter().enumerate() {
            assert_eq!(index, i as u64);
            let want = want[i]["features"]["motion2"].as_f64().unwrap();
            // libvmaf's integer motion against our float one: within 5e-5 here.
            assert!(
                (motion2 - want).abs() < 1e-3,
                "{name} frame {i}: motion2 {motion2} against libvmaf's {want}"
            );
        }
    }
}

/// Each clip's reference and distorted frames, with the clip's entry: the clips whose two
/// sides have the same size (the element scales the other; `comparesink_vmaf.rs`).
fn clips(e: &Value) -> Vec<(String, Value, Vec<u8>, Vec<u8>)> {
    e["clips"]
        .as_object()
        .expect("clips")
        .iter()
        .filter(|(_, clip)| clip.get("distorted_width").is_none())
        .map(|(name, clip)| {
            let read = |k: &str| std::fs::read(clip_file(clip, k)).expect("clip");
            (
                name.clone(),
                clip.clone(),
                read("reference"),
                read("distorted"),
            )
        })
        .collect()
}

/// The neg model's enhancement gain limits are 1, the others' 100.
const GAIN_LIMITS: [(&str, f64); 2] = [("vmaf_v0.6.1", 100.0), ("vmaf_v0.6.1neg", 1.0)];

/// Calls `check(clip, model, gain limit, simd, frame, reference luma, distorted luma,
/// scale, libvmaf's features)` for every frame pair of every clip, with each model of
/// [`GAIN_LIMITS`] and each instruction set.
fn each_pair_of_each_clip(
    mut check: impl FnMut(&str, &str, f64, Simd, usize, &ImagePlane, &ImagePlane, f32, &Value),
) {
    let e = expected();
    let luma = planes_for(ColorKind::Yuv, ChannelMode::Luma)[0];
    for (name, clip, ref_data, dist_data) in clips(&e) {
        let dim = |k: &str| clip[k].as_u64().expect("clip dimensions") as usize;
        let (w, h, depth) = (dim("width"), dim("height"), dim("depth") as u32);
        let refs = i420_frames(&ref_data, w, h, depth);
        let dists = i420_frames(&dist_data, w, h, depth);
        for (model, limit) in GAIN_LIMITS {
            let want = &clip["models"][model]["frames"];
            for simd in Simd::available() {
                for (i, (r, d)) in refs.iter().zip(&dists).enumerate() {
                    let (r, d) = (ImagePlane::new(r, luma), ImagePlane::new(d, luma));
                    let scale = eight_bit_scale(depth);
                    check(
                        &name,
                        model,
                        limit,
                        simd,
                        i,
                        &r,
                        &d,
                        scale,
                        &want[i]["features"],
                    );
                }
            }
        }
    }
}

#[test]
fn the_models_gain_limits_are_libvmafs() {
    for (model, limit) in GAIN_LIMITS {
        let opts = Model::load(model).unwrap().feature_options();
        assert_eq!(
            (opts.adm_enhn_gain_limit, opts.vif_enhn_gain_limit),
            (limit, limit)
        );
    }
}

#[test]
fn vif_equals_libvmafs() {
    each_pair_of_each_clip(|name, model, limit, simd, i, r, d, scale, want| {
        for (s, v) in vif(simd, r, d, scale, limit).iter().enumerate() {
            let want = want[format!("vif_scale{s}")].as_f64().unwrap();
            // libvmaf's integer VIF against our float one: within 4e-4 here.
            assert!(
                (v - want).abs() < 1e-3,
                "{name} {model} {simd:?} frame {i} scale {s}: {v} against {want}"
            );
        }
    });
}

#[test]
fn adm2_equals_libvmafs() {
    each_pair_of_each_clip(|name, model, limit, simd, i, r, d, scale, want| {
        let got = adm2(simd, r, d, scale, limit);
        let want = want["adm2"].as_f64().unwrap();
        // libvmaf's integer ADM against our float one: within 7e-6 here.
        assert!(
            (got - want).abs() < 1e-3,
            "{name} {model} {simd:?} frame {i}: adm2 {got} against {want}"
        );
    });
}

#[test]
fn vmaf_from_our_features_equals_libvmafs() {
    let e = expected();
    let luma = planes_for(ColorKind::Yuv, ChannelMode::Luma)[0];
    for (name, clip, ref_data, dist_data) in clips(&e) {
        let dim = |k: &str| clip[k].as_u64().expect("clip dimensions") as usize;
        let (w, h, depth) = (dim("width"), dim("height"), dim("depth") as u32);
        let refs = i420_frames(&ref_data, w, h, depth);
        let dists = i420_frames(&dist_data, w, h, depth);
        let scale = eight_bit_scale(depth);
        for (model_name, libvmaf) in clip["models"].as_object().expect("models") {
            let model = Model::load(model_name).unwrap();
            let opts = model.feature_options();
            let mut tracker = MotionTracker::default();
            let mut motion2 = Vec::new();
            let mut spatial = Vec::new();
            for (r, d) in refs.iter().zip(&dists) {
                let (r, d) = (ImagePlane::new(r, luma), ImagePlane::new(d, luma));
                motion2.extend(tracker.push(&r, scale).map(|(_, m)| m));
                spatial.push((
                    adm2(Simd::active(), &r, &d, scale, opts.adm_enhn_gain_limit),
                    vif(Simd::active(), &r, &d, scale, opts.vif_enhn_gain_limit),
                ));
            }
            motion2.extend(tracker.finish().map(|(_, m)| m));
            let scores: Vec<f64> = spatial
                .iter()
                .zip(&motion2)
                .map(|(&(adm2, vif), &motion2)| model.predict(&Features { adm2, motion2, vif }))
                .collect();
            let frames = libvmaf["frames"].as_array().expect("frames");
            assert_eq!(scores.len(), frames.len());
            for (i, (got, f)) in scores.iter().zip(frames).enumerate() {
                let want = f["vmaf"].as_f64().unwrap();
                // The bars: 0.05 per frame (0.018 here), 0.02 for the mean.
                assert!(
                    (got - want).abs() < 0.05,
                    "{name} {model_name} frame {i}: VMAF {got} against libvmaf's {want}"
                );
            }
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            let want = libvmaf["pooled"]["mean"].as_f64().unwrap();
            assert!(
                (mean - want).abs() < 0.02,
                "{name} {model_name}: mean VMAF {mean} against libvmaf's {want}"
            );
        }
    }
}

/// The device the libtorch tests run on: `GPUCOMPARE_TEST_DEVICE` (`cpu`, `cuda:N`).
#[cfg(feature = "torch")]
fn torch_device() -> tch::Device {
    match std::env::var("GPUCOMPARE_TEST_DEVICE").ok().as_deref() {
        Some(d) if d.starts_with("cuda") => {
            let n = d.strip_prefix("cuda:").and_then(|n| n.parse().ok());
            tch::Device::Cuda(n.unwrap_or(0))
        }
        _ => tch::Device::Cpu,
    }
}

#[test]
#[cfg(feature = "torch")]
fn libtorch_features_equal_libvmafs() {
    use gstgpucompare::scoring::vmaf::{Luma, torch};
    let e = expected();
    let device = torch_device();
    let luma = planes_for(ColorKind::Yuv, ChannelMode::Luma)[0];
    for (name, clip, ref_data, dist_data) in clips(&e) {
        let dim = |k: &str| clip[k].as_u64().expect("clip dimensions") as usize;
        let (w, h, depth) = (dim("width"), dim("height"), dim("depth") as u32);
        let scale = eight_bit_scale(depth);
        let refs = i420_frames(&ref_data, w, h, depth);
        let dists = i420_frames(&dist_data, w, h, depth);
        for (model, adm_limit, vif_limit) in
            [("vmaf_v0.6.1", 100.0, 100.0), ("vmaf_v0.6.1neg", 1.0, 1.0)]
        {
            let want = &clip["models"][model]["frames"];
            let mut previous: Option<tch::Tensor> = None;
            let mut motions = Vec::new();
            for (i, (r, d)) in refs.iter().zip(&dists).enumerate() {
                let x = Luma::of(&ImagePlane::new(r, luma), scale);
                let y = Luma::of(&ImagePlane::new(d, luma), scale);
                let (xt, yt) = (
                    torch::upload(&x, device).unwrap(),
                    torch::upload(&y, device).unwrap(),
                );
                let f = &want[i]["features"];
                let close = |got: f64, key: &str| {
                    let want = f[key].as_f64().unwrap();
                    assert!(
                        (got - want).abs() < 1e-3,
                        "{name} {model} frame {i} {key}: {got} against libvmaf's {want}"
                    );
                };
                close(torch::adm2(&xt, &yt, adm_limit).unwrap(), "adm2");
                for (s, v) in torch::vif(&xt, &yt, vif_limit).unwrap().iter().enumerate() {
                    close(*v, &format!("vif_scale{s}"));
                }
                let blurred = torch::blurred(&xt).unwrap();
                motions.push(match &previous {
                    Some(p) => torch::mean_abs_diff(&blurred, p).unwrap(),
                    None => 0.0,
                });
                previous = Some(blurred);
            }
            // motion2: the smaller of a frame's motion and the next's; the last its own.
            for (i, m) in motions.iter().enumerate() {
                let m2 = match motions.get(i + 1) {
                    Some(next) if i > 0 => m.min(*next),
                    _ => *m,
                };
                let want = want[i]["features"]["motion2"].as_f64().unwrap();
                assert!(
                    (m2 - want).abs() < 1e-3,
                    "{name} frame {i} motion2: {m2} against {want}"
                );
            }
        }
    }
}
