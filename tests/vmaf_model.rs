//! VMAF's regression and pooling against libvmaf: each fixture frame's features, as
//! libvmaf computed them (tests/fixtures/generate_vmaf.py, to its six printed decimals),
//! must give libvmaf's score with the same model, and the scores must pool to libvmaf's.

use gstgpucompare::scoring::vmaf::{Features, Model, Pooled};
use serde_json::Value;

fn expected() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vmaf/expected.json"
    ))
    .expect("the VMAF fixtures");
    serde_json::from_str(&text).expect("the VMAF fixtures are JSON")
}

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
    assert_eq!(cases.len(), 6, "two clips, three models");
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
fn scores_pool_as_libvmafs() {
    for (clip, model, frames, pooled) in cases(&expected()) {
        let scores: Vec<f64> = frames.iter().map(|f| f["vmaf"].as_f64().unwrap()).collect();
        let got = Pooled::of(&scores).unwrap();
        for (name, value) in [
            ("mean", got.mean),
            ("min", got.min),
            ("max", got.max),
            ("harmonic_mean", got.harmonic_mean),
        ] {
            let want = pooled[name].as_f64().unwrap();
            assert!(
                (value - want).abs() < 2e-6,
                "{clip} {model} {name}: {value} against libvmaf's {want}"
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
