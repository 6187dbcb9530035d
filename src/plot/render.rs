//! Drawing a [`Plot`]: plotters' SVG backend, rasterised by resvg for PNG.

use plotters::prelude::*;

use super::{Plot, Series};
use crate::scoring::Metric;

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 240;
const LINE: RGBColor = RGBColor(31, 119, 180);
const ALERT: RGBColor = RGBColor(214, 39, 40);

fn label(metric: Metric) -> &'static str {
    match metric {
        Metric::Mse => "MSE",
        Metric::Psnr => "PSNR (dB)",
        Metric::Ssim => "SSIM",
        Metric::MsSsim => "MS-SSIM",
        Metric::Vmaf => "VMAF",
        Metric::Model => "model",
    }
}

/// Infinite values (PSNR of identical frames) are drawn at the top of the panel: above
/// the largest finite value, or at 100 dB when there is none.
fn ceiling(series: &Series) -> f64 {
    let finite = series
        .points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(f64::NAN, f64::max);
    if finite.is_nan() { 100.0 } else { finite + 5.0 }
}

fn y_range(series: &Series, top: f64) -> (f64, f64) {
    let values = series
        .points
        .iter()
        .map(|p| p.1.min(top))
        .chain(series.threshold);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

fn mean_text(series: &Series) -> String {
    match series.mean {
        Some(m) if m.is_infinite() => "mean inf".into(),
        Some(m) if series.metric == Metric::Psnr || series.metric == Metric::Mse => {
            format!("mean {m:.2}")
        }
        Some(m) => format!("mean {m:.4}"),
        None => "no value".into(),
    }
}

type Error = String;

fn err<E: std::fmt::Display>(e: E) -> Error {
    format!("plotting failed: {e}")
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    plot: &Plot,
    series: &Series,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let xs = series.points.iter().map(|p| p.0);
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (x0, x1) = if !x0.is_finite() {
        (0.0, 1.0)
    } else if x1 <= x0 {
        (x0 - 0.5, x0 + 0.5)
    } else {
        (x0, x1)
    };
    let top = ceiling(series);
    let (y0, y1) = y_range(series, top);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(
            format!("{}: {}", plot.title, label(series.metric)),
            ("sans-serif", 16),
        )
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label.as_str())
        .y_desc(label(series.metric))
        .draw()
        .map_err(err)?;
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .map(|&(x, y)| (x, y.min(top)))
        .collect();
    chart
        .draw_series(LineSeries::new(points, LINE.stroke_width(2)))
        .map_err(err)?
        .label(format!("{} ({})", series.metric.name(), mean_text(series)))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LINE.stroke_width(2)));
    if let [(x, y)] = series.points[..] {
        // A line of one point (an image pair) draws nothing: mark it.
        chart
            .draw_series([Circle::new((x, y.min(top)), 4, LINE.filled())])
            .map_err(err)?;
    }
    if let Some(t) = series.threshold {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, t), (x1, t)],
                6,
                4,
                ALERT.stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("threshold {t}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ALERT));
    }
    if !series.alerts.is_empty() {
        let marks = series
            .alerts
            .iter()
            .map(|&(x, y)| Circle::new((x, y.min(top)), 4, ALERT.filled()));
        chart
            .draw_series(marks)
            .map_err(err)?
            .label(format!("alert ({})", series.alerts.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), 4, ALERT.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// The plot as SVG: one panel per metric, stacked.
pub fn svg(plot: &Plot) -> Result<String, Error> {
    if plot.series.is_empty() {
        return Err("nothing to plot: no metric has a value".into());
    }
    let mut out = String::new();
    {
        let height = PANEL_HEIGHT * plot.series.len() as u32;
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((plot.series.len(), 1));
        for (area, series) in panels.iter().zip(&plot.series) {
            panel(area, plot, series)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// An SVG document rasterised to PNG bytes, text in the system's fonts.
pub fn png(svg: &str) -> Result<Vec<u8>, Error> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // plotters asks for "sans-serif"; fontdb maps it to Arial, which Linux rarely has.
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let sans = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial"]
        .into_iter()
        .find(|f| families.iter().any(|n| n == f))
        .map(str::to_string)
        .or_else(|| families.first().cloned());
    if let Some(sans) = sans {
        fonts.set_sans_serif_family(sans);
    }
    let tree = usvg::Tree::from_str(svg, &options).map_err(err)?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| err("empty picture"))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, size.width(), size.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(err)?;
        // Opaque (the background is filled white), so premultiplied equals straight alpha.
        writer.write_image_data(pixmap.data()).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> Plot {
        Plot {
            title: "t".into(),
            x_label: "frame".into(),
            series: vec![
                Series {
                    metric: Metric::Psnr,
                    points: vec![(0.0, 30.0), (1.0, f64::INFINITY), (2.0, 35.0)],
                    mean: Some(32.0),
                    threshold: None,
                    alerts: vec![],
                },
                Series {
                    metric: Metric::Ssim,
                    points: vec![(0.0, 0.9), (1.0, 1.0), (2.0, 0.5)],
                    mean: Some(0.8),
                    threshold: Some(0.8),
                    alerts: vec![(2.0, 0.5)],
                },
            ],
        }
    }

    #[test]
    fn svg_has_a_line_per_metric_and_a_mark_per_alert() {
        let svg = svg(&plot()).unwrap();
        let lines = svg
            .match_indices("<polyline")
            .filter(|(i, _)| {
                let end = svg[*i..].find("/>").unwrap();
                svg[*i..*i + end].matches(',').count() == 3
            })
            .count();
        assert_eq!(lines, 2, "{svg}");
        assert!(svg.contains("ssim (mean 0.8000)"));
        assert!(svg.contains("threshold 0.8"));
        assert!(svg.contains("alert (1)"));
        // Alert mark plus its legend entry.
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn png_is_a_picture_of_the_svg() {
        let bytes = png(&svg(&plot()).unwrap()).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().width, WIDTH);
        assert_eq!(reader.info().height, 2 * PANEL_HEIGHT);
    }
}
