//! A VMAF model: libvmaf's JSON format (`model_dict`), read and applied as libvmaf does.
//!
//! A frame's score is: each feature rescaled (`slopes[i + 1]·f + intercepts[i + 1]`), the
//! SVR's prediction, rescaled back (`(p − intercepts[0]) / slopes[0]`), then the score
//! transform (a polynomial, a piecewise-linear map and a rectification; only where the
//! model enables it, which none of the built-in ones does), then the clip to
//! `score_clip`.

use std::path::Path;

use serde_json::Value;

use super::svm::Svr;
use super::{Feature, FeatureOptions, Features, ModelError};

/// The models built into the plugin (`data/vmaf`), by libvmaf's names for them.
const BUILT_IN: [(&str, &str); 3] = [
    (
        "vmaf_v0.6.1",
        include_str!("../../../data/vmaf/vmaf_v0.6.1.json"),
    ),
    (
        "vmaf_v0.6.1neg",
        include_str!("../../../data/vmaf/vmaf_v0.6.1neg.json"),
    ),
    (
        "vmaf_4k_v0.6.1",
        include_str!("../../../data/vmaf/vmaf_4k_v0.6.1.json"),
    ),
];

/// What the regression does after the SVR, where a model enables it.
#[derive(Clone, Debug, PartialEq)]
struct Transform {
    /// p0 + p1·y + p2·y², each term only where the model gives it.
    polynomial: [Option<f64>; 3],
    /// (x, y) knots of a piecewise-linear map.
    knots: Vec<(f64, f64)>,
    out_lte_in: bool,
    out_gte_in: bool,
}

impl Transform {
    fn apply(&self, y_in: f64) -> f64 {
        let mut y = y_in;
        if self.polynomial.iter().any(Option::is_some) {
            let [p0, p1, p2] = self.polynomial.map(|p| p.unwrap_or(0.0));
            y = p0 + p1 * y + p2 * y * y;
        }
        if self.knots.len() > 1 {
            y = piecewise_linear(&self.knots, y);
        }
        if self.out_lte_in && y > y_in {
            y = y_in;
        }
        if self.out_gte_in && y < y_in {
            y = y_in;
        }
        y
    }
}

/// The piecewise-linear map through `knots` (ascending), extended past the ends by the
/// first and last segments.
fn piecewise_linear(knots: &[(f64, f64)], x: f64) -> f64 {
    let last = knots.len() - 2;
    let segment = knots
        .windows(2)
        .position(|w| x <= w[1].0)
        .unwrap_or(last)
        .min(last);
    let ((x0, y0), (x1, y1)) = (knots[segment], knots[segment + 1]);
    if x1 == x0 {
        return y0;
    }
    y0 + (x - x0) * (y1 - y0) / (x1 - x0)
}

/// A loaded model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    name: String,
    /// The model's features in its SVR's order, with their rescaling (slope, intercept).
    features: Vec<(Feature, f64, f64)>,
    /// The prediction's rescaling (slope, intercept).
    output: (f64, f64),
    svr: Svr,
    transform: Option<Transform>,
    clip: Option<(f64, f64)>,
    options: FeatureOptions,
}

impl Model {
    /// The names of the built-in models.
    pub fn built_in_names() -> impl Iterator<Item = &'static str> {
        BUILT_IN.iter().map(|(name, _)| *name)
    }

    /// A built-in model by name, or a model file: a name that is not built in is read as
    /// a path to a libvmaf JSON model.
    pub fn load(name_or_path: &str) -> Result<Model, ModelError> {
        match BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
            Some((name, json)) => Model::from_json(name, json),
            None => Model::from_file(Path::new(name_or_path)),
        }
    }

    /// A libvmaf JSON model file; the model takes the file's stem as its name.
    pub fn from_file(path: &Path) -> Result<Model, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map_or("vmaf".into(), |s| s.to_string_lossy().into_owned());
        Model::from_json(&name, &text).map_err(|e| match e {
            ModelError::Invalid(what) => ModelError::Invalid(format!("{}: {what}", path.display())),
            other => other,
        })
    }

    /// A model from the text of a libvmaf JSON model.
    pub fn from_json(name: &str, text: &str) -> Result<Model, ModelError> {
        let bad = |what: &str| ModelError::Invalid(what.to_string());
        let root: Value =
            serde_json::from_str(text).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let dict = root
            .get("model_dict")
            .ok_or_else(|| bad("no model_dict (only libvmaf's JSON models are read)"))?;
        let numbers = |key: &str| -> Result<Vec<f64>, ModelError> {
            dict.get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                .ok_or_else(|| bad(&format!("{key} is not a list of numbers")))
        };
        match dict.get("model_type").and_then(Value::as_str) {
            Some("LIBSVMNUSVR") => {}
            other => {
                return Err(bad(&format!(
                    "model_type {other:?} is not supported (only LIBSVMNUSVR)"
                )));
            }
        }
        let names: Vec<&str> = dict
            .get("feature_names")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad("feature_names is not a list of names"))?;
        let n = names.len();
        let (slopes, intercepts) = match dict.get("norm_type").and_then(Value::as_str) {
            Some("linear_rescale") => (numbers("slopes")?, numbers("intercepts")?),
            Some("none") => (vec![1.0; n + 1], vec![0.0; n + 1]),
            other => return Err(bad(&format!("norm_type {other:?} is not supported"))),
        };
        if slopes.len() != n + 1 || intercepts.len() != n + 1 || slopes.contains(&0.0) {
            return Err(bad(&format!(
                "{n} features need {} non-zero slopes and as many intercepts",
                n + 1
            )));
        }
        let features = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                Ok((
                    Feature::from_model_name(name)?,
                    slopes[i + 1],
                    intercepts[i + 1],
                ))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let svr_text = dict
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no SVM model text"))?;
        let clip = match dict.get("score_clip") {
            None => None,
            Some(_) => match numbers("score_clip")?.as_slice() {
                [lo, hi] => Some((*lo, *hi)),
                _ => return Err(bad("score_clip is not [min, max]")),
            },
        };
        Ok(Model {
            name: name.to_string(),
            svr: Svr::parse(svr_text, n)?,
            output: (slopes[0], intercepts[0]),
            transform: dict
                .get("score_transform")
                .map(transform)
                .transpose()?
                .flatten(),
            options: FeatureOptions::from_model(dict.get("feature_opts_dicts"), &features)?,
            features,
            clip,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the features this model was trained on are computed.
    pub fn feature_options(&self) -> FeatureOptions {
        self.options
    }

    /// The score of one frame's features.
    pub fn predict(&self, f: &Features) -> f64 {
        let x: Vec<f64> = self
            .features
            .iter()
            .map(|&(feature, slope, intercept)| slope * f.get(feature) + intercept)
            .collect();
        let (slope, intercept) = self.output;
        let mut score = (self.svr.predict(&x) - intercept) / slope;
        if let Some(t) = &self.transform {
            score = t.apply(score);
        }
        if let Some((lo, hi)) = self.clip {
            score = score.clamp(lo, hi);
        }
        score
    }
}

/// The score transform, where `"enabled": true` (libvmaf leaves it off otherwise).
fn transform(v: &Value) -> Result<Option<Transform>, ModelError> {
    if v.get("enabled").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let flag = |key| v.get(key).and_then(Value::as_str) == Some("true");
    let knots = match v.get("knots").and_then(Value::as_array) {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|k| match k.as_array().map(Vec::as_slice) {
                Some([x, y]) => Some((x.as_f64()?, y.as_f64()?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|k| k.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1))
            .ok_or_else(|| {
                ModelError::Invalid("score_transform's knots are not ascending [x, y] pairs".into())
            })?,
    };
    Ok(Some(Transform {
        polynomial: ["p0", "p1", "p2"].map(|p| v.get(p).and_then(Value::as_f64)),
        knots,
        out_lte_in: flag("out_lte_in"),
        out_gte_in: flag("out_gte_in"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_models_load() {
        for name in Model::built_in_names() {
            let m = Model::load(name).unwrap();
            assert_eq!(m.name(), name);
            assert_eq!(m.features.len(), 6);
            assert_eq!(m.clip, Some((0.0, 100.0)));
            // libvmaf leaves their score transform off: no "enabled" in the files.
            assert_eq!(m.transform, None);
        }
        let neg = Model::load("vmaf_v0.6.1neg").unwrap().feature_options();
        assert_eq!(
            (neg.adm_enhn_gain_limit, neg.vif_enhn_gain_limit),
            (1.0, 1.0)
        );
        let plain = Model::load("vmaf_v0.6.1").unwrap().feature_options();
        assert_eq!(plain, FeatureOptions::default());
    }

    #[test]
    fn a_bad_model_is_a_sentence() {
        let err = |name: &str| Model::load(name).unwrap_err().to_string();
        let missing = err("/nonexistent/model.json");
        assert!(missing.contains("/nonexistent/model.json"), "{missing}");
        let json = include_str!("../../../data/vmaf/vmaf_v0.6.1.json");
        let edit = |from: &str, to: &str| {
            assert!(json.contains(from));
            Model::from_json("m", &json.replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert!(edit("\"LIBSVMNUSVR\"", "\"RESIDUEBOOTSTRAP\"").contains("LIBSVMNUSVR"));
        assert!(edit("adm2_score", "ansnr_score").contains("ansnr"));
        assert!(edit("\"linear_rescale\"", "\"clip_0to1\"").contains("norm_type"));
        assert!(
            Model::from_json("m", "{")
                .unwrap_err()
                .to_string()
                .contains("JSON")
        );
    }

    #[test]
    fn the_transform_follows_libvmafs_order() {
        let t = Transform {
            polynomial: [Some(1.0), Some(2.0), None],
            knots: vec![(0.0, 0.0), (10.0, 5.0), (20.0, 25.0)],
            out_lte_in: false,
            out_gte_in: true,
        };
        // 1 + 2·3 = 7, then the knots: 3.5, above the input.
        assert_eq!(t.apply(3.0), 3.5);
        // 1 + 2·8 = 17 → 5 + 7·2 = 19.
        assert_eq!(t.apply(8.0), 19.0);
        // Past the last knot the last segment goes on: 1 + 2·12 = 25 → 35.
        assert_eq!(t.apply(12.0), 35.0);
        let lte = Transform {
            out_lte_in: true,
            out_gte_in: false,
            ..t.clone()
        };
        assert_eq!(lte.apply(8.0), 8.0);
        // Halved and rectified up to the input.
        let halve = Transform {
            polynomial: [None, Some(0.5), None],
            knots: Vec::new(),
            ..t
        };
        assert_eq!(halve.apply(8.0), 8.0);
        assert_eq!(halve.apply(-8.0), -4.0);
    }
}
