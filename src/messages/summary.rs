//! `similarity-summary`: the pooled scores of a stream, posted at its end.

use super::{Field, ParseError, PlaneValues, Reader, Value, plane_values, some, structure};
use crate::scoring::Metric;

const NAME: &str = "similarity-summary";

/// One metric pooled over the stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pooled {
    /// For PSNR: the PSNR of the mean MSE, as FFmpeg pools it.
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// libvmaf's: 1 / mean(1 / (1 + x)) − 1.
    pub harmonic_mean: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimilaritySummary {
    pub frames: u64,
    pub unpaired_reference: u64,
    pub unpaired_distorted: u64,
    pub alerts: u64,
    /// Pairs not scored because they were late in a live pipeline.
    pub skipped: u64,
    /// Pairs left out by `subsample`.
    pub subsampled: u64,
    /// The enabled metrics that some pair had, in message order.
    pub pooled: Vec<(Metric, Pooled)>,
    /// Each plane's mean of each metric (`channels=all`).
    pub planes: Vec<PlaneValues>,
    /// The learned model's name (its file's stem), when one scored.
    pub model_name: Option<String>,
    pub device: String,
    pub oom_recoveries: u64,
    pub peak_memory: u64,
    /// Seconds from start to the summary.
    pub elapsed: f64,
    pub fps: f64,
}

impl SimilaritySummary {
    /// One metric's pooled values, when some pair had it.
    pub fn pooled_of(&self, metric: Metric) -> Option<&Pooled> {
        self.pooled
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, p)| p)
    }

    pub fn fields(&self) -> Vec<Field> {
        let mut f = vec![
            some("frames", Value::U64(self.frames)),
            some("unpaired-reference", Value::U64(self.unpaired_reference)),
            some("unpaired-distorted", Value::U64(self.unpaired_distorted)),
            some("alerts", Value::U64(self.alerts)),
            some("skipped", Value::U64(self.skipped)),
            some("subsampled", Value::U64(self.subsampled)),
        ];
        for (m, p) in &self.pooled {
            let name = m.name();
            f.push(some(&format!("{name}-mean"), Value::F64(p.mean)));
            f.push(some(&format!("{name}-min"), Value::F64(p.min)));
            f.push(some(&format!("{name}-max"), Value::F64(p.max)));
            f.push(some(
                &format!("{name}-harmonic-mean"),
                Value::F64(p.harmonic_mean),
            ));
        }
        for p in &self.planes {
            for m in Metric::ALL {
                if let Some(v) = p.values.get(m) {
                    f.push(some(
                        &format!("{}-{}-mean", m.name(), p.name),
                        Value::F64(v),
                    ));
                }
            }
        }
        if let Some(name) = &self.model_name {
            f.push(some("model-name", Value::Str(name.clone())));
        }
        f.extend([
            some("device", Value::Str(self.device.clone())),
            some("oom-recoveries", Value::U64(self.oom_recoveries)),
            some("peak-memory", Value::U64(self.peak_memory)),
            some("elapsed", Value::F64(self.elapsed)),
            some("fps", Value::F64(self.fps)),
        ]);
        f
    }
}

impl From<&SimilaritySummary> for gst::Structure {
    fn from(s: &SimilaritySummary) -> Self {
        structure(NAME, &s.fields())
    }
}

/// The metric and plane of a per-plane mean (`psnr-y-mean`).
fn plane_mean(name: &str) -> Option<(Metric, &str)> {
    let rest = name.strip_suffix("-mean")?;
    Metric::ALL.into_iter().find_map(|m| {
        let plane = rest.strip_prefix(m.name())?.strip_prefix('-')?;
        (plane != "harmonic").then_some((m, plane))
    })
}

impl TryFrom<&gst::StructureRef> for SimilaritySummary {
    type Error = ParseError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, ParseError> {
        let r = Reader::new(s, NAME)?;
        let mut pooled = Vec::new();
        for m in Metric::ALL {
            let name = m.name();
            let Some(mean) = r.optional(&format!("{name}-mean"))? else {
                continue;
            };
            pooled.push((
                m,
                Pooled {
                    mean,
                    min: r.get(&format!("{name}-min"))?,
                    max: r.get(&format!("{name}-max"))?,
                    harmonic_mean: r.get(&format!("{name}-harmonic-mean"))?,
                },
            ));
        }
        let planes = plane_values(&r, plane_mean)?;
        Ok(SimilaritySummary {
            frames: r.get("frames")?,
            unpaired_reference: r.get("unpaired-reference")?,
            unpaired_distorted: r.get("unpaired-distorted")?,
            alerts: r.get("alerts")?,
            skipped: r.get("skipped")?,
            subsampled: r.get("subsampled")?,
            pooled,
            planes,
            model_name: r.optional("model-name")?,
            device: r.get("device")?,
            oom_recoveries: r.get("oom-recoveries")?,
            peak_memory: r.get("peak-memory")?,
            elapsed: r.get("elapsed")?,
            fps: r.get("fps")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::MetricValues;

    #[test]
    fn round_trips() {
        gst::init().unwrap();
        let pool = |mean| Pooled {
            mean,
            min: mean - 1.0,
            max: mean + 1.0,
            harmonic_mean: mean - 0.5,
        };
        let plane = |name: &str| PlaneValues {
            name: name.into(),
            values: MetricValues::of(&[Metric::Psnr, Metric::Ssim], |m| {
                Some(if m == Metric::Psnr { 40.0 } else { 0.9 })
            }),
        };
        let summary = SimilaritySummary {
            frames: 10,
            unpaired_reference: 1,
            unpaired_distorted: 0,
            alerts: 2,
            skipped: 3,
            subsampled: 4,
            pooled: vec![(Metric::Psnr, pool(40.0)), (Metric::Ssim, pool(0.9))],
            planes: vec![plane("y"), plane("u"), plane("v")],
            model_name: Some("lpips".into()),
            device: "cuda:0".into(),
            oom_recoveries: 5,
            peak_memory: 1 << 30,
            elapsed: 1.5,
            fps: 6.67,
        };
        let s = gst::Structure::from(&summary);
        assert_eq!(s.get::<f64>("ssim-harmonic-mean"), Ok(0.4));
        assert_eq!(s.get::<f64>("psnr-v-mean"), Ok(40.0));
        assert_eq!(SimilaritySummary::try_from(s.as_ref()), Ok(summary));
    }
}
