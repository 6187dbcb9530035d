//! `similarity`: the scores of one frame pair.

use gst::ClockTime;

use super::{Field, ParseError, Reader, Value, plane_values, some, structure};
use crate::scoring::vmaf::Features;
use crate::scoring::{Metric, PlaneResult, Scores};

const NAME: &str = "similarity";

/// One value per metric, `None` where it was not computed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricValues([Option<f64>; Metric::ALL.len()]);

impl MetricValues {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.0[metric as usize]
    }

    pub fn set(&mut self, metric: Metric, value: Option<f64>) {
        self.0[metric as usize] = value;
    }

    /// The values of `metrics` in a pair's (or plane's) scores; the others are `None`.
    pub fn of(metrics: &[Metric], get: impl Fn(Metric) -> Option<f64>) -> Self {
        let mut v = MetricValues::default();
        for &m in metrics {
            v.set(m, get(m));
        }
        v
    }
}

/// What a learned model saw of a pair: the tier whose box the frames were fitted into
/// (`full`: the compared size) and the size it scored.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSeen {
    pub tier: String,
    pub width: u32,
    pub height: u32,
}

/// One compared plane's values (`channels=all`).
#[derive(Clone, Debug, PartialEq)]
pub struct PlaneValues {
    /// `y`, `u`, `v`, `r`, `g`, `b`, ...
    pub name: String,
    pub values: MetricValues,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Similarity {
    /// The pair's number in the stream, counting pairs not scored.
    pub frame: u64,
    pub pts: Option<ClockTime>,
    pub running_time: Option<ClockTime>,
    pub distorted_pts: Option<ClockTime>,
    pub distorted_running_time: Option<ClockTime>,
    pub values: MetricValues,
    /// Scales MS-SSIM used, when it was computed.
    pub ms_ssim_scales: Option<u32>,
    /// Each plane's values with `channels=all`; empty otherwise.
    pub planes: Vec<PlaneValues>,
    pub format: String,
    /// The compared size.
    pub width: u32,
    pub height: u32,
    pub channels: String,
    pub device: String,
    pub alert: bool,
    /// `full`, or the quality tier the pair was compared at.
    pub tier: String,
    pub batch: u32,
    pub tiles: u32,
    pub memory_used: u64,
    pub memory_budget: u64,
    /// The features VMAF came from, with `vmaf-features=true`.
    pub vmaf_features: Option<Features>,
    /// With a model: the tier and size it scored the pair at.
    pub model_seen: Option<ModelSeen>,
}

impl Similarity {
    /// The values of the enabled `metrics` in `scores`, with `planes` naming the planes
    /// when they are reported one by one.
    pub fn set_scores(&mut self, metrics: &[Metric], scores: &Scores, planes: Option<&[&str]>) {
        self.values = MetricValues::of(metrics, |m| scores.get(m));
        self.ms_ssim_scales = scores.ms_ssim.map(|_| scores.ms_ssim_scales);
        self.planes = planes
            .unwrap_or(&[])
            .iter()
            .zip(&scores.planes)
            .map(|(name, p): (&&str, &PlaneResult)| PlaneValues {
                name: name.to_string(),
                values: MetricValues::of(metrics, |m| p.get(m)),
            })
            .collect();
    }

    /// Every field in message order, with a column for each of `metrics` (and each plane
    /// of each) whether or not this pair has a value.
    pub fn fields(&self, metrics: &[Metric]) -> Vec<Field> {
        let mut f = vec![
            some("frame", Value::U64(self.frame)),
            some("pts", Value::Time(self.pts)),
            some("running-time", Value::Time(self.running_time)),
            some("distorted-pts", Value::Time(self.distorted_pts)),
            some(
                "distorted-running-time",
                Value::Time(self.distorted_running_time),
            ),
        ];
        for &m in metrics {
            f.push((m.name().into(), self.values.get(m).map(Value::F64)));
        }
        if metrics.contains(&Metric::MsSsim) {
            f.push(("ms-ssim-scales".into(), self.ms_ssim_scales.map(Value::U32)));
        }
        if let Some(v) = &self.vmaf_features {
            f.push(some("vmaf-adm2", Value::F64(v.adm2)));
            for (s, x) in v.vif.iter().enumerate() {
                f.push(some(&format!("vmaf-vif-scale{s}"), Value::F64(*x)));
            }
            f.push(some("vmaf-motion2", Value::F64(v.motion2)));
        }
        if let Some(m) = &self.model_seen {
            f.push(some("model-tier", Value::Str(m.tier.clone())));
            f.push(some("model-width", Value::I32(m.width as i32)));
            f.push(some("model-height", Value::I32(m.height as i32)));
        }
        for &m in metrics {
            for p in &self.planes {
                let name = format!("{}-{}", m.name(), p.name);
                f.push((name, p.values.get(m).map(Value::F64)));
            }
        }
        f.extend([
            some("format", Value::Str(self.format.clone())),
            some("width", Value::I32(self.width as i32)),
            some("height", Value::I32(self.height as i32)),
            some("channels", Value::Str(self.channels.clone())),
            some("device", Value::Str(self.device.clone())),
            some("alert", Value::Bool(self.alert)),
            some("tier", Value::Str(self.tier.clone())),
            some("batch", Value::U32(self.batch)),
            some("tiles", Value::U32(self.tiles)),
            some("memory-used", Value::U64(self.memory_used)),
            some("memory-budget", Value::U64(self.memory_budget)),
        ]);
        f
    }
}

impl From<&Similarity> for gst::Structure {
    fn from(s: &Similarity) -> Self {
        structure(NAME, &s.fields(&Metric::ALL))
    }
}

/// The metric and plane of a per-plane field name (`ssim-y`).
fn plane_field(name: &str) -> Option<(Metric, &str)> {
    if name == "ms-ssim-scales" || name.starts_with("vmaf-") || name.starts_with("model-") {
        return None;
    }
    Metric::ALL.into_iter().find_map(|m| {
        let plane = name.strip_prefix(m.name())?.strip_prefix('-')?;
        Some((m, plane))
    })
}

impl TryFrom<&gst::StructureRef> for Similarity {
    type Error = ParseError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, ParseError> {
        let r = Reader::new(s, NAME)?;
        let mut values = MetricValues::default();
        for m in Metric::ALL {
            values.set(m, r.optional(m.name())?);
        }
        let planes = plane_values(&r, plane_field)?;
        let size = |f| r.get::<i32>(f).map(|v| v.max(0) as u32);
        Ok(Similarity {
            frame: r.get("frame")?,
            pts: r.time("pts")?,
            running_time: r.time("running-time")?,
            distorted_pts: r.time("distorted-pts")?,
            distorted_running_time: r.time("distorted-running-time")?,
            values,
            ms_ssim_scales: r.optional("ms-ssim-scales")?,
            planes,
            format: r.get("format")?,
            width: size("width")?,
            height: size("height")?,
            channels: r.get("channels")?,
            device: r.get("device")?,
            alert: r.get("alert")?,
            tier: r.get("tier")?,
            batch: r.get("batch")?,
            tiles: r.get("tiles")?,
            memory_used: r.get("memory-used")?,
            memory_budget: r.get("memory-budget")?,
            vmaf_features: match r.optional::<f64>("vmaf-adm2")? {
                None => None,
                Some(adm2) => Some(Features {
                    adm2,
                    motion2: r.get("vmaf-motion2")?,
                    vif: [
                        r.get("vmaf-vif-scale0")?,
                        r.get("vmaf-vif-scale1")?,
                        r.get("vmaf-vif-scale2")?,
                        r.get("vmaf-vif-scale3")?,
                    ],
                }),
            },
            model_seen: match r.optional::<String>("model-tier")? {
                None => None,
                Some(tier) => Some(ModelSeen {
                    tier,
                    width: size("model-width")?,
                    height: size("model-height")?,
                }),
            },
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn example() -> Similarity {
        let mut values = MetricValues::default();
        values.set(Metric::Psnr, Some(f64::INFINITY));
        values.set(Metric::Ssim, Some(0.93));
        values.set(Metric::MsSsim, Some(0.97));
        let plane = |name: &str, ssim| PlaneValues {
            name: name.into(),
            values: MetricValues::of(&[Metric::Psnr, Metric::Ssim, Metric::MsSsim], |m| {
                Some(match m {
                    Metric::Ssim => ssim,
                    _ => 40.0,
                })
            }),
        };
        Similarity {
            frame: 3,
            pts: Some(ClockTime::from_mseconds(120)),
            running_time: Some(ClockTime::from_mseconds(120)),
            distorted_pts: None,
            distorted_running_time: Some(ClockTime::ZERO),
            values,
            ms_ssim_scales: Some(5),
            planes: vec![plane("y", 0.9), plane("u", 0.8), plane("v", 0.7)],
            format: "I420".into(),
            width: 320,
            height: 240,
            channels: "all".into(),
            device: "cpu".into(),
            alert: true,
            tier: "full".into(),
            batch: 1,
            tiles: 1,
            memory_used: 12345,
            memory_budget: 0,
            vmaf_features: None,
            model_seen: None,
        }
    }

    #[test]
    fn round_trips() {
        gst::init().unwrap();
        let sim = example();
        let s = gst::Structure::from(&sim);
        assert!(!s.has_field("mse"));
        assert_eq!(s.get::<f64>("ssim-u"), Ok(0.8));
        assert_eq!(s.get::<u64>("distorted-pts"), Ok(u64::MAX));
        assert_eq!(Similarity::try_from(s.as_ref()), Ok(sim));
        let mut luma = example();
        luma.planes.clear();
        luma.ms_ssim_scales = None;
        luma.values.set(Metric::MsSsim, None);
        let s = gst::Structure::from(&luma);
        assert!(!s.has_field("ms-ssim-scales"));
        assert_eq!(Similarity::try_from(s.as_ref()), Ok(luma));
        let mut vmaf = example();
        vmaf.values.set(Metric::Vmaf, Some(87.5));
        vmaf.vmaf_features = Some(Features {
            adm2: 0.9,
            motion2: 3.5,
            vif: [0.4, 0.8, 0.9, 0.95],
        });
        let s = gst::Structure::from(&vmaf);
        assert_eq!(s.get::<f64>("vmaf"), Ok(87.5));
        assert_eq!(s.get::<f64>("vmaf-vif-scale2"), Ok(0.9));
        assert_eq!(Similarity::try_from(s.as_ref()), Ok(vmaf));
        let mut model = example();
        model.values.set(Metric::Model, Some(0.25));
        model.model_seen = Some(ModelSeen {
            tier: "high".into(),
            width: 1024,
            height: 576,
        });
        let s = gst::Structure::from(&model);
        assert_eq!(s.get::<f64>("model"), Ok(0.25));
        assert_eq!(s.get::<&str>("model-tier"), Ok("high"));
        assert_eq!(s.get::<i32>("model-height"), Ok(576));
        assert_eq!(Similarity::try_from(s.as_ref()), Ok(model));
    }

    #[test]
    fn columns_stay_for_enabled_metrics_without_values() {
        let mut sim = example();
        sim.values.set(Metric::Ssim, None);
        let f = sim.fields(&[Metric::Mse, Metric::Ssim]);
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[5..9], ["mse", "ssim", "mse-y", "mse-u"]);
        assert_eq!(f[6], ("ssim".to_string(), None));
        assert!(!names.contains(&"psnr"));
    }
}
