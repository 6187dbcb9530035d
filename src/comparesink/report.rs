//! What `comparesink` pools over a stream for its `similarity-summary` message, and the
//! alert thresholds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::messages::{MetricValues, PlaneValues, Pooled, SimilaritySummary};
use crate::scoring::{Metric, Metrics, Scores, psnr};

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
    /// Whole frames only: a plane's stays empty.
    vmaf: Pool,
    model: Pool,
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
    vmaf: Pool,
    model: Pool,
    /// The learned model's name, when one scores.
    pub model_name: Option<String>,
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
            vmaf: Pool::default(),
            model: Pool::default(),
            model_name: None,
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
        if let Some(v) = s.vmaf {
            self.vmaf.add(v);
        }
        if let Some(v) = s.model {
            self.model.add(v);
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

    /// One metric's pool, and its mean as the summary reports it.
    fn pool(&self, m: Metric, pools: &PlanePools, psnr_pool: &Pool) -> (Pool, Option<f64>) {
        match m {
            Metric::Mse => (pools.mse, pools.mse.mean()),
            Metric::Psnr => (*psnr_pool, self.pooled_psnr(&pools.mse)),
            Metric::Ssim => (pools.ssim, pools.ssim.mean()),
            Metric::MsSsim => (pools.ms_ssim, pools.ms_ssim.mean()),
            Metric::Vmaf => (pools.vmaf, pools.vmaf.mean()),
            Metric::Model => (pools.model, pools.model.mean()),
        }
    }

    /// The `similarity-summary` message.
    pub fn summary(
        &self,
        unpaired: [u64; 2],
        device: &str,
        oom_recoveries: u64,
    ) -> SimilaritySummary {
        let elapsed = self.started.elapsed().as_secs_f64();
        let enabled = self.metrics.enabled();
        let whole = PlanePools {
            mse: self.mse,
            ssim: self.ssim,
            ms_ssim: self.ms_ssim,
            vmaf: self.vmaf,
            model: self.model,
        };
        // A metric no pair had (SSIM of frames under the window) is left out.
        let pooled = enabled
            .iter()
            .filter_map(|&m| {
                let (pool, mean) = self.pool(m, &whole, &self.psnr);
                let pooled = Pooled {
                    mean: mean?,
                    min: pool.min,
                    max: pool.max,
                    harmonic_mean: pool.harmonic_mean()?,
                };
                Some((m, pooled))
            })
            .collect();
        let planes = self
            .planes
            .iter()
            .map(|(name, p)| PlaneValues {
                name: name.clone(),
                values: MetricValues::of(&enabled, |m| self.pool(m, p, &Pool::default()).1),
            })
            .collect();
        SimilaritySummary {
            frames: self.frames,
            unpaired_reference: unpaired[0],
            unpaired_distorted: unpaired[1],
            alerts: self.alerts,
            skipped: self.skipped,
            subsampled: self.subsampled,
            pooled,
            planes,
            model_name: self.model_name.clone(),
            device: device.into(),
            oom_recoveries,
            peak_memory: self.peak_memory,
            elapsed,
            fps: if elapsed > 0.0 {
                self.frames as f64 / elapsed
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Field, Value};
    use crate::scoring::PlaneResult;

    fn scores(mse: f64, ssim: f64) -> Scores {
        Scores {
            mse,
            psnr: psnr(mse, 255.0),
            ssim: Some(ssim),
            ms_ssim: None,
            ms_ssim_scales: 0,
            vmaf: None,
            model: None,
            planes: vec![PlaneResult {
                mse,
                psnr: psnr(mse, 255.0),
                ssim: Some(ssim),
                ms_ssim: None,
            }],
            map: None,
        }
    }

    fn get(fields: &[Field], name: &str) -> f64 {
        match fields.iter().find(|(k, _)| k == name) {
            Some((_, Some(Value::F64(v)))) => *v,
            other => panic!("{name}: {other:?}"),
        }
    }

    /// libvmaf's own per-frame scores of the VMAF fixtures pool to libvmaf's pooled values
    /// (tests/fixtures/generate_vmaf.py; printed to six decimals).
    #[test]
    fn vmaf_pools_as_libvmaf_does() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vmaf/expected.json"
        ))
        .unwrap();
        let e: serde_json::Value = serde_json::from_str(&text).unwrap();
        let metrics = Metrics {
            vmaf: true,
            ..Metrics::default()
        };
        let mut checked = 0;
        for clip in e["clips"].as_object().unwrap().values() {
            for libvmaf in clip["models"].as_object().unwrap().values() {
                let mut summary = Summary::new(metrics);
                for f in libvmaf["frames"].as_array().unwrap() {
                    let s = Scores {
                        vmaf: f["vmaf"].as_f64(),
                        ..scores(1.0, 0.9)
                    };
                    summary.add(&s, None, 255.0, false, 0);
                }
                let fields = summary.summary([0, 0], "cpu", 0).fields();
                for key in ["mean", "min", "max", "harmonic-mean"] {
                    let want = libvmaf["pooled"][key.replace('-', "_")].as_f64().unwrap();
                    let got = get(&fields, &format!("vmaf-{key}"));
                    assert!((got - want).abs() < 2e-6, "{key}: {got} against {want}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 60, "five clips, three models, four poolings");
    }

    #[test]
    fn psnr_mean_is_the_psnr_of_the_mean_mse() {
        let mut s = Summary::new(Metrics::default());
        for mse in [1.0, 3.0] {
            s.add(&scores(mse, 0.5), Some(&["y"]), 255.0, false, 100);
        }
        let f = s.summary([0, 0], "cpu", 0).fields();
        assert!((get(&f, "psnr-mean") - psnr(2.0, 255.0)).abs() < 1e-12);
        assert!((get(&f, "psnr-y-mean") - psnr(2.0, 255.0)).abs() < 1e-12);
        assert_eq!(get(&f, "psnr-min"), psnr(3.0, 255.0));
        assert!(f.contains(&("frames".into(), Some(Value::U64(2)))));
    }

    #[test]
    fn harmonic_mean_is_libvmafs() {
        let mut s = Summary::new(Metrics::default());
        // SSIM 0 and 1: 1 / mean(1/1, 1/2) − 1 = 1 / 0.75 − 1 = 1/3.
        s.add(&scores(1.0, 0.0), None, 255.0, false, 0);
        s.add(&scores(1.0, 1.0), None, 255.0, false, 0);
        let f = s.summary([0, 0], "cpu", 0).fields();
        assert!((get(&f, "ssim-harmonic-mean") - 1.0 / 3.0).abs() < 1e-12);
        // Identical frames (PSNR +inf) count as 1 / (1 + inf) = 0.
        let mut s = Summary::new(Metrics::default());
        s.add(&scores(0.0, 1.0), None, 255.0, false, 0);
        s.add(&scores(1.0, 1.0), None, 255.0, false, 0);
        let p1 = psnr(1.0, 255.0);
        let expected = 2.0 / (1.0 / (1.0 + p1)) - 1.0;
        let f = s.summary([0, 0], "cpu", 0).fields();
        assert!((get(&f, "psnr-harmonic-mean") - expected).abs() < 1e-9);
    }

    #[test]
    fn a_metric_no_pair_had_is_left_out_of_the_summary() {
        let mut s = Summary::new(Metrics {
            mse: true,
            ms_ssim: true,
            vmaf: false,
            model: false,
            ..Metrics::default()
        });
        let mut small = scores(4.0, 0.0);
        small.ssim = None;
        small.planes[0].ssim = None;
        s.add(&small, Some(&["y"]), 255.0, false, 0);
        let f = s.summary([0, 0], "cpu", 0).fields();
        for (name, value) in &f {
            assert!(
                !name.starts_with("ssim") && !name.starts_with("ms-ssim"),
                "{name} is there"
            );
            if let Some(Value::F64(v)) = value {
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
