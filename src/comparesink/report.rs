//! What `comparesink` reports: the per-pair `similarity` message, the `similarity-alert`
//! message, and the `similarity-summary` message. Each is built from one ordered list of
//! fields, which the stats file writes under the same names.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::scoring::{Metrics, Scores, Usage, psnr};

/// An alert threshold, shared between the settings and the scoring thread so that it can
/// change while playing. 0 is off.
#[derive(Clone, Debug, Default)]
pub struct Threshold(Arc<AtomicU64>);

impl Threshold {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// The threshold when `value` is below it (never when the threshold is 0).
    pub fn crossed(&self, value: Option<f64>) -> Option<f64> {
        let t = self.get();
        (t > 0.0 && value.is_some_and(|v| v < t)).then_some(t)
    }
}

/// A field value, typed as in the message.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U64(u64),
    /// Nanoseconds; `None` is `G_MAXUINT64` in messages and empty in the stats file.
    Time(Option<u64>),
    U32(u32),
    I32(i32),
    F64(f64),
    Bool(bool),
    Str(String),
}

/// An ordered list of named fields.
pub type Fields = Vec<(String, Value)>;

/// Builds an element message structure from fields.
pub fn structure(name: &str, fields: &Fields) -> gst::Structure {
    let mut b = gst::Structure::builder(name);
    for (key, value) in fields {
        b = match value {
            Value::U64(v) => b.field(key.as_str(), *v),
            Value::Time(v) => b.field(key.as_str(), v.unwrap_or(u64::MAX)),
            Value::U32(v) => b.field(key.as_str(), *v),
            Value::I32(v) => b.field(key.as_str(), *v),
            Value::F64(v) => b.field(key.as_str(), *v),
            Value::Bool(v) => b.field(key.as_str(), *v),
            Value::Str(v) => b.field(key.as_str(), v.as_str()),
        };
    }
    b.build()
}

/// One scored pair, as reported.
pub struct PairReport<'a> {
    pub frame: u64,
    pub pts: Option<u64>,
    pub running_time: Option<u64>,
    pub distorted_pts: Option<u64>,
    pub distorted_running_time: Option<u64>,
    pub scores: &'a Scores,
    /// Names of the compared planes when they are reported one by one (`channels=all`).
    pub planes: Option<&'a [&'a str]>,
    pub format: &'a str,
    pub width: u32,
    pub height: u32,
    pub channels: &'a str,
    pub device: &'a str,
    pub alert: bool,
    /// `full`, or the quality tier the frames were compared at.
    pub tier: &'a str,
    pub usage: Usage,
    pub memory_budget: u64,
}

/// The enabled metrics of a pair as (name, value), in a fixed order; a metric that could
/// not be computed (a frame smaller than the window) is `None`.
fn metric_values(metrics: Metrics, s: &Scores) -> Vec<(&'static str, Option<f64>)> {
    let mut v = Vec::new();
    if metrics.mse {
        v.push(("mse", Some(s.mse)));
    }
    if metrics.psnr {
        v.push(("psnr", Some(s.psnr)));
    }
    if metrics.ssim {
        v.push(("ssim", s.ssim));
    }
    if metrics.ms_ssim {
        v.push(("ms-ssim", s.ms_ssim));
    }
    v
}

/// The per-plane values of one metric of a pair.
fn plane_values(name: &str, s: &Scores, plane: usize) -> Option<f64> {
    let p = s.planes.get(plane)?;
    match name {
        "mse" => Some(p.mse),
        "psnr" => Some(p.psnr),
        "ssim" => p.ssim,
        _ => p.ms_ssim,
    }
}

/// The fields of the `similarity` message, every possible one in order; `None` where the
/// pair has no value (the message leaves the field out, the stats file leaves it empty).
pub fn similarity_fields(metrics: Metrics, r: &PairReport<'_>) -> Vec<(String, Option<Value>)> {
    let mut f: Vec<(String, Option<Value>)> = vec![
        ("frame".into(), Some(Value::U64(r.frame))),
        ("pts".into(), Some(Value::Time(r.pts))),
        ("running-time".into(), Some(Value::Time(r.running_time))),
        ("distorted-pts".into(), Some(Value::Time(r.distorted_pts))),
        (
            "distorted-running-time".into(),
            Some(Value::Time(r.distorted_running_time)),
        ),
    ];
    let values = metric_values(metrics, r.scores);
    for (name, value) in &values {
        f.push((name.to_string(), value.map(Value::F64)));
    }
    if metrics.ms_ssim {
        let scales = r
            .scores
            .ms_ssim
            .map(|_| Value::U32(r.scores.ms_ssim_scales));
        f.push(("ms-ssim-scales".into(), scales));
    }
    for (name, _) in &values {
        for (i, plane) in r.planes.unwrap_or(&[]).iter().enumerate() {
            let value = plane_values(name, r.scores, i).map(Value::F64);
            f.push((format!("{name}-{plane}"), value));
        }
    }
    let rest = [
        ("format", Value::Str(r.format.into())),
        ("width", Value::I32(r.width as i32)),
        ("height", Value::I32(r.height as i32)),
        ("channels", Value::Str(r.channels.into())),
        ("device", Value::Str(r.device.into())),
        ("alert", Value::Bool(r.alert)),
        ("tier", Value::Str(r.tier.into())),
        ("batch", Value::U32(r.usage.batch as u32)),
        ("tiles", Value::U32(r.usage.tiles)),
        ("memory-used", Value::U64(r.usage.bytes)),
        ("memory-budget", Value::U64(r.memory_budget)),
    ];
    f.extend(rest.into_iter().map(|(k, v)| (k.to_string(), Some(v))));
    f
}

/// The fields present in a pair, for the message.
pub fn present(fields: &[(String, Option<Value>)]) -> Fields {
    fields
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect()
}

/// The `similarity-alert` message's fields: the metric that crossed its threshold.
pub fn alert_fields(
    frame: u64,
    pts: Option<u64>,
    metric: &str,
    value: f64,
    threshold: f64,
) -> Fields {
    vec![
        ("frame".into(), Value::U64(frame)),
        ("pts".into(), Value::Time(pts)),
        ("metric".into(), Value::Str(metric.into())),
        ("value".into(), Value::F64(value)),
        ("threshold".into(), Value::F64(threshold)),
    ]
}

/// Running statistics of one metric: mean, min, max and harmonic mean.
#[derive(Clone, Copy, Debug)]
struct Pool {
    sum: f64,
    /// Σ 1 / (1 + x), for libvmaf's harmonic mean.
    inverse_sum: f64,
    min: f64,
    max: f64,
    n: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            sum: 0.0,
            inverse_sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            n: 0,
        }
    }
}

impl Pool {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.inverse_sum += 1.0 / (1.0 + v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.n += 1;
    }

    /// `None` when no pair had the metric.
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// libvmaf's harmonic mean: 1 / mean(1 / (1 + x)) − 1.
    fn harmonic_mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.n as f64 / self.inverse_sum - 1.0)
    }
}

/// The pools of one compared plane.
#[derive(Default)]
struct PlanePools {
    mse: Pool,
    ssim: Pool,
    ms_ssim: Pool,
}

/// Pooled scores over a stream.
pub struct Summary {
    metrics: Metrics,
    max_value: f64,
    started: Instant,
    pub frames: u64,
    pub alerts: u64,
    /// Pairs not scored: late in a live pipeline, or left out by `subsample`.
    pub skipped: u64,
    pub subsampled: u64,
    peak_memory: u64,
    mse: Pool,
    psnr: Pool,
    ssim: Pool,
    ms_ssim: Pool,
    planes: Vec<(String, PlanePools)>,
}

impl Summary {
    pub fn new(metrics: Metrics) -> Self {
        Summary {
            metrics,
            max_value: 255.0,
            started: Instant::now(),
            frames: 0,
            alerts: 0,
            skipped: 0,
            subsampled: 0,
            peak_memory: 0,
            mse: Pool::default(),
            psnr: Pool::default(),
            ssim: Pool::default(),
            ms_ssim: Pool::default(),
            planes: Vec::new(),
        }
    }

    /// Adds a pair; `planes` names its planes when they are reported one by one.
    pub fn add(
        &mut self,
        s: &Scores,
        planes: Option<&[&str]>,
        max_value: f64,
        alert: bool,
        memory_used: u64,
    ) {
        self.frames += 1;
        self.peak_memory = self.peak_memory.max(memory_used);
        self.alerts += alert as u64;
        self.max_value = max_value;
        self.mse.add(s.mse);
        self.psnr.add(s.psnr);
        if let Some(v) = s.ssim {
            self.ssim.add(v);
        }
        if let Some(v) = s.ms_ssim {
            self.ms_ssim.add(v);
        }
        for (name, p) in planes.unwrap_or(&[]).iter().zip(&s.planes) {
            let i = match self.planes.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    self.planes.push((name.to_string(), PlanePools::default()));
                    self.planes.len() - 1
                }
            };
            let pools = &mut self.planes[i].1;
            pools.mse.add(p.mse);
            if let Some(v) = p.ssim {
                pools.ssim.add(v);
            }
            if let Some(v) = p.ms_ssim {
                pools.ms_ssim.add(v);
            }
        }
    }

    /// FFmpeg's pooled PSNR: the PSNR of the mean MSE.
    fn pooled_psnr(&self, mse: &Pool) -> Option<f64> {
        mse.mean().map(|m| psnr(m, self.max_value))
    }

    /// The `similarity-summary` message's fields.
    pub fn fields(&self, unpaired: [u64; 2], device: &str, oom_recoveries: u64) -> Fields {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut f: Fields = vec![
            ("frames".into(), Value::U64(self.frames)),
            ("unpaired-reference".into(), Value::U64(unpaired[0])),
            ("unpaired-distorted".into(), Value::U64(unpaired[1])),
            ("alerts".into(), Value::U64(self.alerts)),
            ("skipped".into(), Value::U64(self.skipped)),
            ("subsampled".into(), Value::U64(self.subsampled)),
        ];
        let m = self.metrics;
        let pools = [
            (m.mse, "mse", self.mse, self.mse.mean()),
            (m.psnr, "psnr", self.psnr, self.pooled_psnr(&self.mse)),
            (m.ssim, "ssim", self.ssim, self.ssim.mean()),
            (m.ms_ssim, "ms-ssim", self.ms_ssim, self.ms_ssim.mean()),
        ];
        // A metric no pair had (SSIM of frames under the window) is left out.
        for (_, name, pool, mean) in pools.into_iter().filter(|p| p.0) {
            let Some(mean) = mean else { continue };
            f.push((format!("{name}-mean"), Value::F64(mean)));
            f.push((format!("{name}-min"), Value::F64(pool.min)));
            f.push((format!("{name}-max"), Value::F64(pool.max)));
            if let Some(h) = pool.harmonic_mean() {
                f.push((format!("{name}-harmonic-mean"), Value::F64(h)));
            }
        }
        for (plane, p) in &self.planes {
            let means = [
                (m.mse, "mse", p.mse.mean()),
                (m.psnr, "psnr", self.pooled_psnr(&p.mse)),
                (m.ssim, "ssim", p.ssim.mean()),
                (m.ms_ssim, "ms-ssim", p.ms_ssim.mean()),
            ];
            for (_, name, mean) in means.into_iter().filter(|p| p.0) {
                if let Some(mean) = mean {
                    f.push((format!("{name}-{plane}-mean"), Value::F64(mean)));
                }
            }
        }
        let fps = if elapsed > 0.0 {
            self.frames as f64 / elapsed
        } else {
            0.0
        };
        f.extend([
            ("device".into(), Value::Str(device.into())),
            ("oom-recoveries".into(), Value::U64(oom_recoveries)),
            ("peak-memory".into(), Value::U64(self.peak_memory)),
            ("elapsed".into(), Value::F64(elapsed)),
            ("fps".into(), Value::F64(fps)),
        ]);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::PlaneResult;

    fn scores(mse: f64, ssim: f64) -> Scores {
        Scores {
            mse,
            psnr: psnr(mse, 255.0),
            ssim: Some(ssim),
            ms_ssim: None,
            ms_ssim_scales: 0,
            planes: vec![PlaneResult {
                mse,
                psnr: psnr(mse, 255.0),
                ssim: Some(ssim),
                ms_ssim: None,
            }],
        }
    }

    fn get(fields: &Fields, name: &str) -> f64 {
        match fields.iter().find(|(k, _)| k == name) {
            Some((_, Value::F64(v))) => *v,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn psnr_mean_is_the_psnr_of_the_mean_mse() {
        let mut s = Summary::new(Metrics::default());
        for mse in [1.0, 3.0] {
            s.add(&scores(mse, 0.5), Some(&["y"]), 255.0, false, 100);
        }
        let f = s.fields([0, 0], "cpu", 0);
        assert!((get(&f, "psnr-mean") - psnr(2.0, 255.0)).abs() < 1e-12);
        assert!((get(&f, "psnr-y-mean") - psnr(2.0, 255.0)).abs() < 1e-12);
        assert_eq!(get(&f, "psnr-min"), psnr(3.0, 255.0));
        assert!(f.contains(&("frames".into(), Value::U64(2))));
    }

    #[test]
    fn harmonic_mean_is_libvmafs() {
        let mut s = Summary::new(Metrics::default());
        // SSIM 0 and 1: 1 / mean(1/1, 1/2) − 1 = 1 / 0.75 − 1 = 1/3.
        s.add(&scores(1.0, 0.0), None, 255.0, false, 0);
        s.add(&scores(1.0, 1.0), None, 255.0, false, 0);
        let f = s.fields([0, 0], "cpu", 0);
        assert!((get(&f, "ssim-harmonic-mean") - 1.0 / 3.0).abs() < 1e-12);
        // Identical frames (PSNR +inf) count as 1 / (1 + inf) = 0.
        let mut s = Summary::new(Metrics::default());
        s.add(&scores(0.0, 1.0), None, 255.0, false, 0);
        s.add(&scores(1.0, 1.0), None, 255.0, false, 0);
        let p1 = psnr(1.0, 255.0);
        let expected = 2.0 / (1.0 / (1.0 + p1)) - 1.0;
        let f = s.fields([0, 0], "cpu", 0);
        assert!((get(&f, "psnr-harmonic-mean") - expected).abs() < 1e-9);
    }

    #[test]
    fn a_metric_no_pair_had_is_left_out_of_the_summary() {
        let mut s = Summary::new(Metrics {
            mse: true,
            ms_ssim: true,
            ..Metrics::default()
        });
        let mut small = scores(4.0, 0.0);
        small.ssim = None;
        small.planes[0].ssim = None;
        s.add(&small, Some(&["y"]), 255.0, false, 0);
        let f = s.fields([0, 0], "cpu", 0);
        for (name, value) in &f {
            assert!(
                !name.starts_with("ssim") && !name.starts_with("ms-ssim"),
                "{name} is there"
            );
            if let Value::F64(v) = value {
                assert!(!v.is_nan(), "{name} is NaN");
            }
        }
        assert!((get(&f, "mse-mean") - 4.0).abs() < 1e-12);
        assert!((get(&f, "psnr-y-mean") - psnr(4.0, 255.0)).abs() < 1e-12);
    }

    #[test]
    fn thresholds_are_crossed_only_when_on() {
        let t = Threshold::default();
        assert_eq!(t.crossed(Some(0.1)), None);
        t.set(0.9);
        assert_eq!(t.crossed(Some(0.5)), Some(0.9));
        assert_eq!(t.crossed(Some(0.95)), None);
        assert_eq!(t.crossed(None), None);
    }
}
