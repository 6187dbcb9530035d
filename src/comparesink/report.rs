//! What `comparesink` reports: the per-pair `similarity` message, the `similarity-summary`
//! message, and the optional stats file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::scoring::{Metrics, Scores, Usage, psnr};

/// The SSIM alert threshold, shared between the settings and the scoring thread so that
/// it can change while playing.
#[derive(Clone, Debug, Default)]
pub struct Threshold(Arc<AtomicU64>);

impl Threshold {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Whether a pair with this SSIM is an alert (never when the threshold is 0).
    pub fn alerts(&self, ssim: Option<f64>) -> bool {
        let t = self.get();
        t > 0.0 && ssim.is_some_and(|v| v < t)
    }
}

/// One scored pair, as reported.
pub struct PairReport<'a> {
    pub frame: u64,
    pub pts: Option<u64>,
    pub running_time: Option<u64>,
    pub scores: &'a Scores,
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

/// The enabled metrics of a pair as (field name, value), in a fixed order.
fn metric_values(metrics: Metrics, s: &Scores) -> Vec<(&'static str, f64)> {
    let mut v = Vec::new();
    if metrics.mse {
        v.push(("mse", s.mse));
    }
    if metrics.psnr {
        v.push(("psnr", s.psnr));
    }
    if let (true, Some(x)) = (metrics.ssim, s.ssim) {
        v.push(("ssim", x));
    }
    if let (true, Some(x)) = (metrics.ms_ssim, s.ms_ssim) {
        v.push(("ms-ssim", x));
    }
    v
}

/// The `similarity` element message's structure.
pub fn similarity_structure(metrics: Metrics, r: &PairReport<'_>) -> gst::Structure {
    let mut b = gst::Structure::builder("similarity")
        .field("frame", r.frame)
        .field("pts", r.pts.unwrap_or(u64::MAX))
        .field("running-time", r.running_time.unwrap_or(u64::MAX));
    for (name, value) in metric_values(metrics, r.scores) {
        b = b.field(name, value);
    }
    if metrics.ms_ssim && r.scores.ms_ssim.is_some() {
        b = b.field("ms-ssim-scales", r.scores.ms_ssim_scales);
    }
    b.field("width", r.width as i32)
        .field("height", r.height as i32)
        .field("channels", r.channels)
        .field("device", r.device)
        .field("alert", r.alert)
        .field("tier", r.tier)
        .field("batch", r.usage.batch as u32)
        .field("tiles", r.usage.tiles)
        .field("memory-used", r.usage.bytes)
        .field("memory-budget", r.memory_budget)
        .build()
}

#[derive(Clone, Copy, Debug)]
struct Pool {
    sum: f64,
    min: f64,
    max: f64,
    n: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            n: 0,
        }
    }
}

impl Pool {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.n += 1;
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.sum / self.n as f64
        }
    }
}

/// Pooled scores over a stream.
pub struct Summary {
    metrics: Metrics,
    max_value: f64,
    started: Instant,
    pub frames: u64,
    pub alerts: u64,
    peak_memory: u64,
    mse: Pool,
    psnr: Pool,
    ssim: Pool,
    ms_ssim: Pool,
}

impl Summary {
    pub fn new(metrics: Metrics) -> Self {
        Summary {
            metrics,
            max_value: 255.0,
            started: Instant::now(),
            frames: 0,
            alerts: 0,
            peak_memory: 0,
            mse: Pool::default(),
            psnr: Pool::default(),
            ssim: Pool::default(),
            ms_ssim: Pool::default(),
        }
    }

    pub fn add(&mut self, s: &Scores, max_value: f64, alert: bool, memory_used: u64) {
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
    }

    /// The `similarity-summary` element message's structure.
    pub fn structure(
        &self,
        unpaired: [u64; 2],
        device: &str,
        oom_recoveries: u64,
    ) -> gst::Structure {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut b = gst::Structure::builder("similarity-summary")
            .field("frames", self.frames)
            .field("unpaired-reference", unpaired[0])
            .field("unpaired-distorted", unpaired[1])
            .field("alerts", self.alerts);
        let mut pools = Vec::new();
        if self.metrics.mse {
            pools.push(("mse", self.mse, self.mse.mean()));
        }
        if self.metrics.psnr {
            // FFmpeg's convention: the PSNR of the mean MSE.
            let mean = if self.mse.n == 0 {
                f64::NAN
            } else {
                psnr(self.mse.mean(), self.max_value)
            };
            pools.push(("psnr", self.psnr, mean));
        }
        if self.metrics.ssim {
            pools.push(("ssim", self.ssim, self.ssim.mean()));
        }
        if self.metrics.ms_ssim {
            pools.push(("ms-ssim", self.ms_ssim, self.ms_ssim.mean()));
        }
        for (name, pool, mean) in pools {
            let (min, max) = if pool.n == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (pool.min, pool.max)
            };
            b = b
                .field(format!("{name}-mean"), mean)
                .field(format!("{name}-min"), min)
                .field(format!("{name}-max"), max);
        }
        b.field("device", device)
            .field("oom-recoveries", oom_recoveries)
            .field("peak-memory", self.peak_memory)
            .field("elapsed", elapsed)
            .field(
                "fps",
                if elapsed > 0.0 {
                    self.frames as f64 / elapsed
                } else {
                    0.0
                },
            )
            .build()
    }
}

/// Per-pair rows: CSV when the file name ends in `.csv`, JSON lines otherwise.
pub struct StatsFile {
    out: BufWriter<File>,
    csv: bool,
    metrics: Metrics,
}

impl StatsFile {
    /// Creates (truncates) the file; the error says why it cannot be written.
    pub fn create(path: &str, metrics: Metrics) -> std::io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        let csv = path.to_ascii_lowercase().ends_with(".csv");
        if csv {
            let names: Vec<&str> = metric_values(metrics, &all_present())
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            writeln!(
                out,
                "frame,pts,running_time,{},width,height,channels,device,alert,tier,batch,tiles,memory_used,memory_budget",
                names.join(",")
            )?;
        }
        Ok(StatsFile { out, csv, metrics })
    }

    pub fn write(&mut self, r: &PairReport<'_>) -> std::io::Result<()> {
        let values = metric_values(self.metrics, r.scores);
        if self.csv {
            let names = metric_values(self.metrics, &all_present());
            // A metric that could not be computed (frame smaller than the window) is empty.
            let cells: Vec<String> = names
                .iter()
                .map(|(n, _)| {
                    values
                        .iter()
                        .find(|(m, _)| m == n)
                        .map(|(_, v)| v.to_string())
                        .unwrap_or_default()
                })
                .collect();
            let time = |t: Option<u64>| t.map(|t| t.to_string()).unwrap_or_default();
            writeln!(
                self.out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.frame,
                time(r.pts),
                time(r.running_time),
                cells.join(","),
                r.width,
                r.height,
                r.channels,
                r.device,
                r.alert,
                r.tier,
                r.usage.batch,
                r.usage.tiles,
                r.usage.bytes,
                r.memory_budget
            )
        } else {
            let mut row = serde_json::Map::new();
            row.insert("frame".into(), r.frame.into());
            row.insert("pts".into(), r.pts.into());
            row.insert("running_time".into(), r.running_time.into());
            for (name, v) in values {
                // JSON has no infinity: PSNR of identical frames is written as "inf".
                let value = if v.is_finite() {
                    v.into()
                } else {
                    serde_json::Value::from(v.to_string())
                };
                row.insert(name.replace('-', "_"), value);
            }
            row.insert("width".into(), r.width.into());
            row.insert("height".into(), r.height.into());
            row.insert("channels".into(), r.channels.into());
            row.insert("device".into(), r.device.into());
            row.insert("alert".into(), r.alert.into());
            row.insert("tier".into(), r.tier.into());
            row.insert("batch".into(), r.usage.batch.into());
            row.insert("tiles".into(), r.usage.tiles.into());
            row.insert("memory_used".into(), r.usage.bytes.into());
            row.insert("memory_budget".into(), r.memory_budget.into());
            writeln!(self.out, "{}", serde_json::Value::Object(row))
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn all_present() -> Scores {
    Scores {
        mse: 0.0,
        psnr: 0.0,
        ssim: Some(0.0),
        ms_ssim: Some(0.0),
        ms_ssim_scales: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_mean_is_the_psnr_of_the_mean_mse() {
        let mut s = Summary::new(Metrics::default());
        for mse in [1.0, 3.0] {
            let scores = Scores {
                mse,
                psnr: psnr(mse, 255.0),
                ssim: Some(0.5),
                ms_ssim: None,
                ms_ssim_scales: 0,
            };
            s.add(&scores, 255.0, false, 100);
        }
        gst::init().unwrap();
        let st = s.structure([0, 0], "cpu", 0);
        let mean = st.get::<f64>("psnr-mean").unwrap();
        assert!((mean - psnr(2.0, 255.0)).abs() < 1e-12);
        assert_eq!(st.get::<f64>("psnr-min").unwrap(), psnr(3.0, 255.0));
        assert_eq!(st.get::<u64>("frames").unwrap(), 2);
    }
}
