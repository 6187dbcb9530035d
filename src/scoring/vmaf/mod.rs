//! VMAF (Netflix's Video Multi-method Assessment Fusion): a model fuses a frame's
//! features (ADM2, VIF at four scales, motion2) into a score from 0 to 100.
//!
//! GStreamer-free. This part holds the models ([`Model`], libvmaf's JSON format, the
//! built-in `vmaf_v0.6.1`, `vmaf_v0.6.1neg` and `vmaf_4k_v0.6.1` among them) and their
//! regression; the features: motion ([`motion`]), VIF ([`vif`]) and ADM2 ([`adm`]), natively
//! or with libtorch (`torch`); and their use over a stream, each score one pair late
//! ([`VmafStream`]).

/// Defines `$name(simd, args…)`, which runs `$inner::<FMA>(args…)` compiled for the
/// instruction set `simd` (AVX-512, AVX2 with FMA, or the build's baseline), so that the
/// compiler vectorises the loops of `$inner` (an `#[inline(always)]` function) for it.
/// `simd` must be supported by the CPU: the features' entry points check.
macro_rules! simd_variants {
    ($(#[$doc:meta])* fn $name:ident = $inner:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        $(#[$doc])*
        fn $name(simd: $crate::scoring::native::Simd, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) -> $ret {
                $inner::<true>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) -> $ret {
                $inner::<true>($($arg),*)
            }
            match simd {
                // SAFETY: the caller checked that the CPU has the instruction set.
                #[cfg(target_arch = "x86_64")]
                $crate::scoring::native::Simd::Avx512 => unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::scoring::native::Simd::Avx2 => unsafe { avx2($($arg),*) },
                _ => $inner::<false>($($arg),*),
            }
        }
    };
}

pub mod adm;
mod model;
pub mod motion;
pub mod stream;
mod svm;
#[cfg(feature = "torch")]
pub mod torch;
pub mod vif;

use std::fmt;

use serde_json::Value;

pub use model::Model;
pub use stream::VmafStream;

/// `a · b + c`, fused where the instruction set has it (elsewhere `mul_add` is a call).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// The instruction set a feature runs with: `simd`, or the baseline where the CPU lacks it.
pub(crate) fn usable(simd: crate::scoring::native::Simd) -> crate::scoring::native::Simd {
    if simd.supported() {
        simd
    } else {
        crate::scoring::native::Simd::Portable
    }
}

/// log2 of a positive, finite, normal `x`, to about 1e-7 relative, without a call: an
/// exponent from the bits and a series in (m − 1) / (m + 1) for the mantissa m in
/// [√½, √2), so that rows of them vectorise.
#[inline(always)]
pub(crate) fn log2_fast(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = (if big { m * 0.5 } else { m }, if big { e + 1 } else { e });
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // 2 / ln 2 · (t + t³/3 + t⁵/5 + t⁷/7 + t⁹/9); the next term is below 1e-9.
    const K: f32 = 2.0 / std::f32::consts::LN_2;
    let series = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 / 9.0))));
    e as f32 + K * series
}

/// Row or column `i` mirrored into `0..n` without repeating the edge (−1 → 1, n → n − 2),
/// as VIF's and motion's filters read beyond the plane; mirrored again for planes
/// narrower than the window.
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    loop {
        if i < 0 {
            i = -i;
        } else if i >= n {
            i = 2 * n - i - 2;
        } else {
            return i as usize;
        }
        if n == 1 {
            return 0;
        }
    }
}

/// Σ f(a, b) over paired slices in sixteen f32 lanes, then in f64: the loop vectorises,
/// and a row's sum loses little to rounding.
#[inline(always)]
pub(crate) fn lanes_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    const L: usize = 16;
    let mut acc = [0f32; L];
    let (mut ca, mut cb) = (a.chunks_exact(L), b.chunks_exact(L));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..L {
            acc[l] += f(x[l], y[l]);
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(tail)
}

/// A luma plane as the features read it: in 8-bit units, shifted by −128 (as libvmaf
/// does; no variance, covariance, wavelet detail or motion sees the shift, and it keeps
/// float32 from losing variances to E[x²] − E[x]²), row by row.
#[derive(Clone, Default)]
pub struct Luma {
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) v: Vec<f32>,
}

impl Luma {
    /// Resized for a `w`×`h` plane, keeping the allocation.
    pub(crate) fn reshape(&mut self, w: usize, h: usize) {
        (self.w, self.h) = (w, h);
        self.v.resize(w * h, 0.0);
    }

    /// Bytes its buffer holds.
    pub(crate) fn allocated_bytes(&self) -> u64 {
        (self.v.capacity() * 4) as u64
    }

    pub(crate) fn row(&self, y: usize) -> &[f32] {
        &self.v[y * self.w..(y + 1) * self.w]
    }

    /// Reads `plane`, whose samples `scale` brings to 8-bit units
    /// ([`motion::eight_bit_scale`]), keeping the allocation.
    pub fn read_from<R: crate::scoring::rows::RowSource>(&mut self, plane: &R, scale: f32) {
        use rayon::prelude::*;
        self.reshape(plane.width(), plane.height());
        self.v
            .par_chunks_mut(self.w.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                plane.read_row(y, row);
                for s in row.iter_mut() {
                    *s = *s * scale - 128.0;
                }
            });
    }

    pub fn of<R: crate::scoring::rows::RowSource>(plane: &R, scale: f32) -> Luma {
        let mut l = Luma::default();
        l.read_from(plane, scale);
        l
    }
}

/// A feature a model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Adm2,
    Motion2,
    /// VIF at scale 0 (full size) to 3.
    Vif(u8),
}

impl Feature {
    /// The feature libvmaf's model files name `VMAF_integer_feature_<name>_score` (its
    /// integer extractors) or `VMAF_feature_<name>_score` (its float ones).
    fn from_model_name(full: &str) -> Result<Feature, ModelError> {
        let name = full
            .strip_prefix("VMAF_integer_feature_")
            .or_else(|| full.strip_prefix("VMAF_feature_"))
            .and_then(|n| n.strip_suffix("_score"));
        match name {
            Some("adm2") => Ok(Feature::Adm2),
            Some("motion2") => Ok(Feature::Motion2),
            Some(vif) => match vif.strip_prefix("vif_scale").and_then(|s| s.parse().ok()) {
                Some(scale @ 0..=3) => Ok(Feature::Vif(scale)),
                _ => Err(ModelError::unsupported_feature(full)),
            },
            None => Err(ModelError::unsupported_feature(full)),
        }
    }
}

/// One frame's features.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Features {
    pub adm2: f64,
    pub motion2: f64,
    pub vif: [f64; 4],
}

impl Features {
    pub fn get(&self, f: Feature) -> f64 {
        match f {
            Feature::Adm2 => self.adm2,
            Feature::Motion2 => self.motion2,
            Feature::Vif(scale) => self.vif[usize::from(scale)],
        }
    }
}

/// How a model's features are computed: the enhancement gain limits of ADM and VIF, which
/// libvmaf's `neg` models set to 1 (no credit for enhancement) and others leave at 100.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureOptions {
    pub adm_enhn_gain_limit: f64,
    pub vif_enhn_gain_limit: f64,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            adm_enhn_gain_limit: 100.0,
            vif_enhn_gain_limit: 100.0,
        }
    }
}

impl FeatureOptions {
    /// The options of a model's `feature_opts_dicts` (one dictionary per feature, in the
    /// order of `features`). Options this implementation does not have are refused.
    fn from_model(
        dicts: Option<&Value>,
        features: &[(Feature, f64, f64)],
    ) -> Result<Self, ModelError> {
        let mut opts = FeatureOptions::default();
        let Some(dicts) = dicts else {
            return Ok(opts);
        };
        let bad = |what: String| ModelError::Invalid(format!("feature_opts_dicts: {what}"));
        let dicts = dicts
            .as_array()
            .filter(|d| d.len() == features.len())
            .ok_or_else(|| bad(format!("not a list of {} dictionaries", features.len())))?;
        let (mut adm, mut vif) = (None, None);
        for (dict, (feature, ..)) in dicts.iter().zip(features) {
            let dict = dict
                .as_object()
                .ok_or_else(|| bad("an entry is not a dictionary".into()))?;
            for (key, value) in dict {
                let (slot, wanted) = match (key.as_str(), feature) {
                    ("adm_enhn_gain_limit", Feature::Adm2) => (&mut adm, *feature),
                    ("vif_enhn_gain_limit", Feature::Vif(_)) => (&mut vif, *feature),
                    _ => return Err(bad(format!("option {key} of {feature:?} is not supported"))),
                };
                let v = value
                    .as_f64()
                    .filter(|v| *v >= 1.0)
                    .ok_or_else(|| bad(format!("{key} of {wanted:?} is not a number ≥ 1")))?;
                if slot.is_some_and(|old| old != v) {
                    return Err(bad(format!("{key} differs between VIF scales")));
                }
                *slot = Some(v);
            }
        }
        opts.adm_enhn_gain_limit = adm.unwrap_or(opts.adm_enhn_gain_limit);
        opts.vif_enhn_gain_limit = vif.unwrap_or(opts.vif_enhn_gain_limit);
        Ok(opts)
    }
}

/// Why a model cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    Read { path: String, reason: String },
    Invalid(String),
}

impl ModelError {
    fn unsupported_feature(name: &str) -> Self {
        ModelError::Invalid(format!(
            "its feature {name} is not one computed here (adm2, motion2, vif_scale0 to vif_scale3)"
        ))
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Read { path, reason } => write!(
                f,
                "cannot read the VMAF model '{path}' ({reason}); give a libvmaf JSON model file or one of: {}",
                Model::built_in_names().collect::<Vec<_>>().join(", ")
            ),
            ModelError::Invalid(what) => write!(f, "the VMAF model is not usable: {what}"),
        }
    }
}

impl std::error::Error for ModelError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_mirror_without_repeating() {
        assert_eq!(reflect(-1, 10), 1);
        assert_eq!(reflect(-2, 10), 2);
        assert_eq!(reflect(10, 10), 8);
        assert_eq!(reflect(11, 10), 7);
        assert_eq!(reflect(4, 10), 4);
        assert_eq!(reflect(-9, 4), 3);
        assert_eq!(reflect(-2, 2), 0);
        assert_eq!(reflect(3, 1), 0);
    }

    #[test]
    fn log2_fast_is_log2() {
        let mut worst = 0f64;
        let mut x = 1e-6f32;
        while x < 1e9 {
            let err = (f64::from(log2_fast(x)) - f64::from(x).log2()).abs();
            worst = worst.max(err / f64::from(x).log2().abs().max(1.0));
            x *= 1.0137;
        }
        assert!(worst < 3e-7, "{worst}");
        assert_eq!(log2_fast(1.0), 0.0);
        assert_eq!(log2_fast(8.0), 3.0);
    }

    #[test]
    fn model_feature_names_map_to_features() {
        let f = |n: &str| Feature::from_model_name(n);
        assert_eq!(f("VMAF_integer_feature_adm2_score"), Ok(Feature::Adm2));
        assert_eq!(f("VMAF_feature_motion2_score"), Ok(Feature::Motion2));
        assert_eq!(
            f("VMAF_integer_feature_vif_scale3_score"),
            Ok(Feature::Vif(3))
        );
        assert!(f("VMAF_integer_feature_vif_scale4_score").is_err());
        assert!(f("VMAF_feature_adm3_score").is_err());
        assert!(f("adm2").is_err());
    }

    #[test]
    fn unknown_feature_options_are_refused() {
        let feats = [(Feature::Adm2, 1.0, 0.0), (Feature::Vif(0), 1.0, 0.0)];
        let opts = |v: Value| FeatureOptions::from_model(Some(&v), &feats);
        let ok = opts(serde_json::json!([{"adm_enhn_gain_limit": 1.2}, {}])).unwrap();
        assert_eq!(
            (ok.adm_enhn_gain_limit, ok.vif_enhn_gain_limit),
            (1.2, 100.0)
        );
        assert!(opts(serde_json::json!([{"adm_csf_mode": 1}, {}])).is_err());
        assert!(opts(serde_json::json!([{"vif_enhn_gain_limit": 1.0}, {}])).is_err());
        assert!(opts(serde_json::json!([{}])).is_err());
    }
}
