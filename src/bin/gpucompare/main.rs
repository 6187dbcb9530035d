//! `gpucompare`: compare a distorted video or image with its reference from the command
//! line, through comparesink. Exit status 0: every check passed; 1: a `--fail-below`
//! check failed; 2: a bad option or input.

mod args;
mod pipeline;
mod report;

use std::path::Path;
use std::process::ExitCode;

use gst::prelude::*;
use gstgpucompare::plot::Plot;
use gstgpucompare::scoring::Metric;

use args::{Cli, Compare, Sub};
use pipeline::Raw;

/// Exit status for a bad option or input.
const BAD_INPUT: u8 = 2;
const CHECK_FAILED: u8 = 1;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gpucompare: error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    gst::init().map_err(|e| format!("cannot initialise GStreamer: {e}"))?;
    gstgpucompare::plugin_register_static()
        .map_err(|e| format!("cannot register the gpucompare plugin: {e}"))?;
    let compare = gst::ElementFactory::make("comparesink")
        .name("compare")
        .build()
        .map_err(|e| format!("cannot make comparesink: {e}"))?;
    // --help and --version exit 0, usage errors 2 (clap's own codes).
    let (cli, properties) = args::parse(&compare, std::env::args_os()).unwrap_or_else(|e| e.exit());
    match cli {
        Cli {
            command:
                Some(Sub::Plot {
                    stats_file,
                    output,
                    threshold,
                    psnr_threshold,
                }),
            ..
        } => {
            let text = std::fs::read_to_string(&stats_file)
                .map_err(|e| format!("cannot read '{}': {e}", stats_file.display()))?;
            let thresholds = [
                (Metric::Ssim, threshold.unwrap_or(0.0)),
                (Metric::Psnr, psnr_threshold.unwrap_or(0.0)),
            ];
            let title = file_name(&stats_file);
            let plot = Plot::from_stats_file(&title, &text, &thresholds)
                .map_err(|e| format!("'{}': {e}", stats_file.display()))?;
            plot.write(&output)?;
            Ok(ExitCode::SUCCESS)
        }
        Cli { compare: args, .. } => compare_files(&compare, &args, &properties),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The enabled metrics, from the element's `metrics` property, and the model's score when
/// `--model` names one.
fn enabled_metrics(compare: &gst::Element) -> Vec<Metric> {
    let text = args::value_text(&compare.property_value("metrics"));
    let model = compare
        .property::<Option<String>>("model")
        .is_some_and(|m| !m.is_empty());
    Metric::ALL
        .into_iter()
        .filter(|&m| text.split('+').any(|n| n == m.name()) || (m == Metric::Model && model))
        .collect()
}

fn compare_files(
    compare: &gst::Element,
    args: &Compare,
    properties: &[(String, String)],
) -> Result<ExitCode, String> {
    for (name, text) in properties {
        pipeline::set_from_text(compare, name, text)?;
    }
    // A metric a check needs is computed even if --metrics leaves it out.
    for &(metric, _) in &args.fail_below {
        let enabled = enabled_metrics(compare);
        if !enabled.contains(&metric) {
            let names: Vec<&str> = enabled.iter().chain([&metric]).map(|m| m.name()).collect();
            pipeline::set_from_text(compare, "metrics", &names.join("+"))?;
        }
    }
    let path_text = |p: &Path| p.to_string_lossy().to_string();
    if let Some(stats) = &args.stats {
        compare.set_property("stats-file", path_text(stats));
    }
    if let Some(heatmap) = &args.heatmap {
        compare.set_property("heatmap-location", path_text(heatmap));
    }
    let (Some(reference), Some(distorted)) = (&args.reference, &args.distorted) else {
        return Err("give a REFERENCE and a DISTORTED file".into());
    };
    let raw = args.size.map(|(width, height)| Raw {
        width,
        height,
        format: args.format.clone(),
        fps: args.fps,
    });
    let outcome = pipeline::run(compare, reference, distorted, raw.as_ref())?;
    if outcome.frames.is_empty() {
        return Err(format!(
            "no frame pair was compared ('{}' and '{}' gave no pair of frames)",
            reference.display(),
            distorted.display()
        ));
    }
    let metrics = enabled_metrics(compare);
    let checks = report::checks(&outcome, &args.fail_below);
    if args.json {
        println!("{:#}", report::json(&outcome, &metrics, &checks));
    } else {
        print!("{}", report::text(&outcome, &metrics, args.frames, &checks));
    }
    if let Some(path) = &args.plot {
        let thresholds = [
            (Metric::Ssim, compare.property::<f64>("threshold")),
            (Metric::Psnr, compare.property::<f64>("psnr-threshold")),
        ];
        let title = format!("{} vs {}", file_name(distorted), file_name(reference));
        Plot::from_messages(
            &title,
            &metrics,
            &outcome.frames,
            &outcome.alerts,
            outcome.summary.as_ref(),
            &thresholds,
        )
        .write(path)?;
    }
    if checks.iter().all(report::Check::passed) {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(CHECK_FAILED))
    }
}
