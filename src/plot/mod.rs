//! Score plots: every metric over time, one panel per metric, its alert threshold drawn,
//! alerts marked and its pooled mean in the legend. SVG, or PNG by the file's extension.
//!
//! GStreamer-free apart from reading the element's messages: a [`Plot`] is built from
//! `similarity` messages ([`Plot::from_messages`]) or from a stats file
//! ([`Plot::from_stats_file`]).

mod render;
mod stats_file;

use crate::messages::{Similarity, SimilarityAlert, SimilaritySummary};
use crate::scoring::Metric;

/// One metric over the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub metric: Metric,
    /// (x, value), one per scored pair that has a value.
    pub points: Vec<(f64, f64)>,
    /// The pooled mean (for PSNR, the PSNR of the mean MSE).
    pub mean: Option<f64>,
    /// The alert threshold, when one was set.
    pub threshold: Option<f64>,
    /// Pairs that raised an alert on this metric: (x, value).
    pub alerts: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub title: String,
    /// What x is: `frame` or `time (s)`.
    pub x_label: String,
    pub series: Vec<Series>,
}

/// x of each pair: its pts in seconds when every pair has one, else its frame number.
fn x_axis(pts: &[Option<u64>], frames: &[u64]) -> (String, Vec<f64>) {
    if !pts.is_empty() && pts.iter().all(Option::is_some) {
        let x = pts.iter().map(|p| p.unwrap_or(0) as f64 / 1e9).collect();
        ("time (s)".into(), x)
    } else {
        ("frame".into(), frames.iter().map(|&f| f as f64).collect())
    }
}

/// The pooled mean of one metric's values, as the element pools it.
pub fn pooled_mean(metric: Metric, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    Some(match metric {
        // PSNR of the mean MSE: MSE_i = MAX²·10^(−PSNR_i/10), and MAX cancels out.
        Metric::Psnr => {
            let mean = values.iter().map(|p| 10f64.powf(-p / 10.0)).sum::<f64>() / n;
            -10.0 * mean.log10()
        }
        _ => values.iter().sum::<f64>() / n,
    })
}

impl Plot {
    /// A plot of the `metrics` of the pairs in `frames`, with the alerts raised, the
    /// pooled means of `summary` (computed from the pairs when there is none), and each
    /// metric's threshold (0 = none).
    pub fn from_messages(
        title: &str,
        metrics: &[Metric],
        frames: &[Similarity],
        alerts: &[SimilarityAlert],
        summary: Option<&SimilaritySummary>,
        thresholds: &[(Metric, f64)],
    ) -> Plot {
        let pts: Vec<Option<u64>> = frames.iter().map(|f| f.pts.map(|t| t.nseconds())).collect();
        let numbers: Vec<u64> = frames.iter().map(|f| f.frame).collect();
        let (x_label, x) = x_axis(&pts, &numbers);
        // Pairs come in frame order: an alert's pair is found by bisection.
        let x_of = |frame: u64| numbers.binary_search(&frame).ok().map(|i| x[i]);
        let series = metrics
            .iter()
            .map(|&metric| {
                let points: Vec<(f64, f64)> = frames
                    .iter()
                    .zip(&x)
                    .filter_map(|(f, &x)| Some((x, f.values.get(metric)?)))
                    .collect();
                let values: Vec<f64> = points.iter().map(|p| p.1).collect();
                let mean = summary
                    .and_then(|s| s.pooled_of(metric))
                    .map(|p| p.mean)
                    .or_else(|| pooled_mean(metric, &values));
                Series {
                    metric,
                    mean,
                    threshold: threshold_of(thresholds, metric),
                    alerts: alerts
                        .iter()
                        .filter(|a| a.metric == metric)
                        .filter_map(|a| Some((x_of(a.frame)?, a.value)))
                        .collect(),
                    points,
                }
            })
            .collect();
        Plot {
            title: title.to_string(),
            x_label,
            series,
        }
    }

    /// A plot of a stats file's rows (CSV or JSON lines, as comparesink writes them).
    /// Alerts on a row are marked on each metric below its threshold, or on every metric
    /// when no threshold is given.
    pub fn from_stats_file(
        title: &str,
        text: &str,
        thresholds: &[(Metric, f64)],
    ) -> Result<Plot, String> {
        stats_file::plot(title, text, thresholds)
    }

    /// Writes the plot: PNG when `path` ends in `.png`, SVG otherwise.
    pub fn write(&self, path: &std::path::Path) -> Result<(), String> {
        let svg = self.svg()?;
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        let result = if png {
            render::png(&svg)
                .and_then(|bytes| std::fs::write(path, bytes).map_err(|e| e.to_string()))
        } else {
            std::fs::write(path, svg).map_err(|e| e.to_string())
        };
        result.map_err(|e| format!("cannot write the plot '{}': {e}", path.display()))
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        render::svg(self)
    }
}

fn threshold_of(thresholds: &[(Metric, f64)], metric: Metric) -> Option<f64> {
    thresholds
        .iter()
        .find(|(m, t)| *m == metric && *t > 0.0)
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_pools_as_the_psnr_of_the_mean_mse() {
        // MSEs of 1 and 3 at 8 bits: PSNR of MSE 2.
        let p = |mse: f64| 10.0 * (255f64 * 255.0 / mse).log10();
        let pooled = pooled_mean(Metric::Psnr, &[p(1.0), p(3.0)]).unwrap();
        assert!((pooled - p(2.0)).abs() < 1e-9);
        assert_eq!(
            pooled_mean(Metric::Psnr, &[f64::INFINITY]),
            Some(f64::INFINITY)
        );
        assert_eq!(pooled_mean(Metric::Ssim, &[0.5, 1.0]), Some(0.75));
        assert_eq!(pooled_mean(Metric::Ssim, &[]), None);
    }

    #[test]
    fn x_is_time_only_when_every_pair_has_a_pts() {
        let (label, x) = x_axis(&[Some(0), Some(500_000_000)], &[0, 1]);
        assert_eq!((label.as_str(), x), ("time (s)", vec![0.0, 0.5]));
        let (label, x) = x_axis(&[Some(0), None], &[3, 4]);
        assert_eq!((label.as_str(), x), ("frame", vec![3.0, 4.0]));
    }
}
