//! What the command prints: a short summary (and a line per pair with `--frames`), or one
//! JSON document; and the `--fail-below` checks.

use gstgpucompare::messages::{Similarity, json_object};
use gstgpucompare::scoring::Metric;

use crate::pipeline::Outcome;

/// One `--fail-below` check against the pooled mean.
pub struct Check {
    pub metric: Metric,
    pub minimum: f64,
    /// `None` when no pair had a value (frames smaller than the SSIM window).
    pub mean: Option<f64>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.mean.is_some_and(|m| m >= self.minimum)
    }

    pub fn describe(&self) -> String {
        let name = self.metric.name();
        match self.mean {
            Some(m) if self.passed() => format!("{name} mean {m:.4} >= {}: pass", self.minimum),
            Some(m) => format!("{name} mean {m:.4} is below {}: FAIL", self.minimum),
            None => format!("{name} has no value (no pair could be scored for it): FAIL"),
        }
    }
}

pub fn checks(outcome: &Outcome, wanted: &[(Metric, f64)]) -> Vec<Check> {
    wanted
        .iter()
        .map(|&(metric, minimum)| Check {
            metric,
            minimum,
            mean: outcome
                .summary
                .as_ref()
                .and_then(|s| s.pooled_of(metric))
                .map(|p| p.mean),
        })
        .collect()
}

fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Psnr if v.is_infinite() => "inf dB".into(),
        Metric::Psnr => format!("{v:.3} dB"),
        Metric::Mse => format!("{v:.3}"),
        _ => format!("{v:.5}"),
    }
}

fn frame_line(f: &Similarity, metrics: &[Metric]) -> String {
    let pts = f.pts.map_or("-".to_string(), |t| {
        format!("{:.3}s", t.nseconds() as f64 / 1e9)
    });
    let mut line = format!("frame {:>5}  pts {pts:>9}", f.frame);
    for &m in metrics {
        if let Some(v) = f.values.get(m) {
            line += &format!("  {} {}", m.name(), value(m, v));
        }
    }
    if f.alert {
        line += "  ALERT";
    }
    line
}

/// The human-readable report.
pub fn text(outcome: &Outcome, metrics: &[Metric], frames: bool, checks: &[Check]) -> String {
    let mut out = String::new();
    if frames {
        for f in &outcome.frames {
            out += &frame_line(f, metrics);
            out.push('\n');
        }
    }
    if let Some(first) = outcome.frames.first() {
        out += &format!(
            "compared {}x{} {} ({}) on {}\n",
            first.width, first.height, first.format, first.channels, first.device
        );
        if let Some(seen) = &first.model_seen {
            let name = outcome
                .summary
                .as_ref()
                .and_then(|s| s.model_name.as_deref());
            out += &format!(
                "model {} saw {}x{} (tier {})\n",
                name.unwrap_or("model"),
                seen.width,
                seen.height,
                seen.tier
            );
        }
    }
    if let Some(s) = &outcome.summary {
        out += &format!(
            "{} pairs in {:.2} s ({:.1} pairs/s)",
            s.frames, s.elapsed, s.fps
        );
        if s.unpaired_reference + s.unpaired_distorted > 0 {
            out += &format!(
                "; unpaired frames: {} reference, {} distorted",
                s.unpaired_reference, s.unpaired_distorted
            );
        }
        out.push('\n');
        for (m, p) in &s.pooled {
            out += &format!(
                "  {:<8} mean {:>12}  min {:>12}  max {:>12}\n",
                m.name(),
                value(*m, p.mean),
                value(*m, p.min),
                value(*m, p.max)
            );
        }
        if s.alerts > 0 {
            out += &format!("  alerts: {}\n", s.alerts);
        }
    }
    for c in checks {
        out += &format!("check: {}\n", c.describe());
    }
    out
}

/// The JSON report: every pair, the alerts, the summary and the checks.
pub fn json(outcome: &Outcome, metrics: &[Metric], checks: &[Check]) -> serde_json::Value {
    let frames: Vec<serde_json::Value> = outcome
        .frames
        .iter()
        .map(|f| json_object(&f.fields(metrics)).into())
        .collect();
    let alerts: Vec<serde_json::Value> = outcome
        .alerts
        .iter()
        .map(|a| json_object(&a.fields()).into())
        .collect();
    let passed = checks.iter().all(Check::passed);
    let checks: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "metric": c.metric.name(),
                "minimum": c.minimum,
                "mean": c.mean.map(|m| if m.is_finite() { m.into() } else { serde_json::Value::from(m.to_string()) }),
                "passed": c.passed(),
            })
        })
        .collect();
    serde_json::json!({
        "frames": frames,
        "alerts": alerts,
        "summary": outcome.summary.as_ref().map(|s| json_object(&s.fields())),
        "passed": passed,
        "checks": checks,
    })
}
