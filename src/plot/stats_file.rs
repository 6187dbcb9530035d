//! Reading comparesink's stats file back: CSV with a header row, or JSON lines ending with
//! a `{"type": "summary", ...}` record.

use std::collections::HashMap;

use super::{Plot, Series, pooled_mean, threshold_of, x_axis};
use crate::scoring::Metric;

/// One row: column name to cell text (numbers as written, `inf` included).
type Row = HashMap<String, String>;

fn json_rows(text: &str) -> Result<(Vec<Row>, Option<Row>), String> {
    let mut rows = Vec::new();
    let mut summary = None;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a JSON record: {e}", n + 1))?;
        let object = value
            .as_object()
            .ok_or_else(|| format!("line {}: not a JSON object", n + 1))?;
        let row: Row = object
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        if row.get("type").map(String::as_str) == Some("summary") {
            summary = Some(row);
        } else {
            rows.push(row);
        }
    }
    Ok((rows, summary))
}

fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("the file is empty")?
        .split(',')
        .collect();
    lines
        .enumerate()
        .map(|(n, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != header.len() {
                return Err(format!(
                    "row {} has {} cells, the header {}",
                    n + 1,
                    cells.len(),
                    header.len()
                ));
            }
            Ok(header
                .iter()
                .zip(cells)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect())
        })
        .collect()
}

pub(super) fn plot(title: &str, text: &str, thresholds: &[(Metric, f64)]) -> Result<Plot, String> {
    let json = text.trim_start().starts_with('{');
    let (rows, summary) = if json {
        json_rows(text)?
    } else {
        (csv_rows(text)?, None)
    };
    if rows.is_empty() {
        return Err("the stats file has no scored pair".into());
    }
    let number = |row: &Row, key: &str| -> Option<f64> {
        row.get(key).filter(|v| !v.is_empty())?.parse().ok()
    };
    let frames: Vec<u64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| number(r, "frame").map_or(i as u64, |f| f as u64))
        .collect();
    // pts is written as nanoseconds, empty or left out when unknown.
    let pts: Vec<Option<u64>> = rows
        .iter()
        .map(|r| number(r, "pts").map(|v| v as u64))
        .collect();
    let (x_label, x) = x_axis(&pts, &frames);
    let metrics: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| rows.iter().any(|r| r.contains_key(m.name())))
        .collect();
    if metrics.is_empty() {
        return Err("the stats file has no metric column (mse, psnr, ssim, ms-ssim)".into());
    }
    let any_threshold = metrics
        .iter()
        .any(|&m| threshold_of(thresholds, m).is_some());
    let series = metrics
        .into_iter()
        .map(|metric| {
            let threshold = threshold_of(thresholds, metric);
            let mut points = Vec::new();
            let mut alerts = Vec::new();
            for (row, &x) in rows.iter().zip(&x) {
                let Some(v) = number(row, metric.name()) else {
                    continue;
                };
                points.push((x, v));
                let alert = row.get("alert").map(String::as_str) == Some("true");
                let below = threshold.is_some_and(|t| v < t);
                if alert && (below || !any_threshold) {
                    alerts.push((x, v));
                }
            }
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            let mean = summary
                .as_ref()
                .and_then(|s| number(s, &format!("{}-mean", metric.name())))
                .or_else(|| pooled_mean(metric, &values));
            Series {
                metric,
                points,
                mean,
                threshold,
                alerts,
            }
        })
        .collect();
    Ok(Plot {
        title: title.to_string(),
        x_label,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_with_empty_cells_and_infinity() {
        let text =
            "frame,pts,psnr,ssim,alert\n0,0,inf,1,false\n1,40000000,30,0.5,true\n2,,31,,false\n";
        let plot = plot("t", text, &[(Metric::Ssim, 0.9)]).unwrap();
        // One pair has no pts: x is the frame number.
        assert_eq!(plot.x_label, "frame");
        let psnr = &plot.series[0];
        assert_eq!(psnr.metric, Metric::Psnr);
        assert_eq!(
            psnr.points,
            vec![(0.0, f64::INFINITY), (1.0, 30.0), (2.0, 31.0)]
        );
        assert!(
            psnr.alerts.is_empty(),
            "no PSNR threshold: not PSNR's alert"
        );
        let ssim = &plot.series[1];
        assert_eq!(ssim.points.len(), 2);
        assert_eq!(ssim.alerts, vec![(1.0, 0.5)]);
        assert_eq!(ssim.mean, Some(0.75));
    }

    #[test]
    fn reads_json_lines_and_takes_the_summary_means() {
        let text = concat!(
            "{\"frame\":0,\"pts\":0,\"ssim\":0.8,\"alert\":false}\n",
            "{\"frame\":1,\"pts\":500000000,\"ssim\":0.6,\"alert\":true}\n",
            "{\"type\":\"summary\",\"frames\":2,\"ssim-mean\":0.7}\n"
        );
        let plot = plot("t", text, &[]).unwrap();
        assert_eq!(plot.x_label, "time (s)");
        assert_eq!(plot.series.len(), 1);
        assert_eq!(plot.series[0].points, vec![(0.0, 0.8), (0.5, 0.6)]);
        assert_eq!(plot.series[0].mean, Some(0.7));
        // No threshold given: the alert is marked on every metric.
        assert_eq!(plot.series[0].alerts, vec![(0.5, 0.6)]);
    }

    #[test]
    fn a_file_without_scores_is_an_error() {
        assert!(plot("t", "", &[]).is_err());
        assert!(plot("t", "frame,pts\n0,0\n", &[]).is_err());
        assert!(plot("t", "frame,psnr\n0\n", &[]).is_err());
    }
}
