//! The command line. The scoring options are comparesink's own properties, read from the
//! element: one `--NAME VALUE` per property, documented with its blurb and default.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches, Parser, Subcommand};
use gst::glib;
use gst::prelude::*;
use gstgpucompare::scoring::Metric;

/// comparesink properties that are not options: GStreamer's own, the ones the command
/// sets itself (`--stats`, `--heatmap`, never syncing to a clock), and test hooks.
const NOT_OPTIONS: [&str; 9] = [
    "name",
    "parent",
    "async-handling",
    "message-forward",
    "sync",
    "async",
    "stats-file",
    "heatmap-location",
    "inject-allocation-failures",
];

#[derive(Parser, Debug)]
#[command(
    name = "gpucompare",
    version,
    about = "Compare a distorted video or image with its reference: PSNR, SSIM and MS-SSIM, \
             on the GPU when there is one",
    long_about = "Compare a distorted video or image with its reference: PSNR, SSIM and \
                  MS-SSIM, on the GPU when there is one. Inside it is a GStreamer pipeline \
                  ending in comparesink, so it gives the element's numbers.\n\n\
                  Exit status: 0 when every --fail-below check passes, 1 when one fails, 2 \
                  on a bad option or input.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub compare: Compare,
}

#[derive(Args, Debug)]
pub struct Compare {
    /// The reference: an image (PNG, JPEG, ...), a video file (anything decodebin opens),
    /// or raw video with --size
    #[arg(required = true)]
    pub reference: Option<PathBuf>,
    /// The distorted image or video, of the same kind as the reference
    #[arg(required = true)]
    pub distorted: Option<PathBuf>,
    /// Both inputs are raw video of this size (no header), e.g. 1920x1080
    #[arg(long, value_name = "WxH", value_parser = parse_size, help_heading = "Raw video")]
    pub size: Option<(u32, u32)>,
    /// The raw video's sample format, as GStreamer names it (i420, nv12, i420_10le, gray8, rgb, ...)
    #[arg(long, default_value = "i420", help_heading = "Raw video")]
    pub format: String,
    /// The raw video's frame rate: N or N/D
    #[arg(long, default_value = "25", value_parser = parse_fps, help_heading = "Raw video")]
    pub fps: (i32, i32),
    /// Print one line per frame pair before the summary
    #[arg(long, help_heading = "Output")]
    pub frames: bool,
    /// Print one JSON document (every frame pair, the alerts, the summary, the checks) instead of text
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Write comparesink's stats file: CSV when FILE ends in .csv, JSON lines otherwise
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub stats: Option<PathBuf>,
    /// Write the heat-map of the worst pair (PNG): the per-pixel SSIM map, dark = worse
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub heatmap: Option<PathBuf>,
    /// Plot every metric over time: SVG, or PNG when FILE ends in .png
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub plot: Option<PathBuf>,
    /// Exit with status 1 when METRIC's pooled mean is below VALUE (repeatable: ssim=0.95,
    /// psnr=38, ms-ssim=0.98, vmaf=80); the metric is computed even if --metrics leaves it
    /// out
    #[arg(long, value_name = "METRIC=VALUE", value_parser = parse_check, help_heading = "Checks")]
    pub fail_below: Vec<(Metric, f64)>,
}

#[derive(Subcommand, Debug)]
pub enum Sub {
    /// Plot an existing stats file (comparesink's stats-file, or gpucompare --stats)
    Plot {
        /// The stats file: CSV or JSON lines
        stats_file: PathBuf,
        /// The plot: SVG, or PNG when it ends in .png
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Draw this SSIM alert threshold
        #[arg(long, value_name = "SSIM")]
        threshold: Option<f64>,
        /// Draw this PSNR alert threshold
        #[arg(long, value_name = "DB")]
        psnr_threshold: Option<f64>,
    },
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("'{s}' is not WIDTHxHEIGHT"))?;
    let n = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("'{v}' is not a positive size"))
    };
    Ok((n(w)?, n(h)?))
}

fn parse_fps(s: &str) -> Result<(i32, i32), String> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    match (n.parse::<i32>(), d.parse::<i32>()) {
        (Ok(n), Ok(d)) if n > 0 && d > 0 => Ok((n, d)),
        _ => Err(format!("'{s}' is not a frame rate (N or N/D)")),
    }
}

fn parse_check(s: &str) -> Result<(Metric, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not METRIC=VALUE"))?;
    let known = "psnr, ssim, ms-ssim, vmaf";
    let metric = match Metric::from_name(name) {
        Some(Metric::Mse) => {
            return Err("mse: lower is better, so it has no minimum; use psnr".into());
        }
        Some(Metric::Model) => {
            return Err(
                "model: whether higher is better depends on the model (a distance for LPIPS, \
                 a similarity for CLIP), so it has no check yet"
                    .into(),
            );
        }
        Some(m) => m,
        None => return Err(format!("unknown metric '{name}' (known: {known})")),
    };
    let value = value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{value}' is not a number"))?;
    Ok((metric, value))
}

/// A property's values, for its help: an enum's nicks, a flags' nicks joined by `+`.
fn choices(pspec: &glib::ParamSpec) -> Option<String> {
    let t = pspec.value_type();
    if let Some(class) = glib::EnumClass::with_type(t) {
        let nicks: Vec<&str> = class.values().iter().map(|v| v.nick()).collect();
        return Some(format!("one of: {}", nicks.join(", ")));
    }
    if let Some(class) = glib::FlagsClass::with_type(t) {
        let nicks: Vec<&str> = class.values().iter().map(|v| v.nick()).collect();
        return Some(format!("any of {} joined by +", nicks.join(", ")));
    }
    None
}

/// A value as the command line takes it: flags by their nicks joined by `+`, enums by
/// their nick, everything else as GStreamer serialises it.
pub fn value_text(value: &glib::Value) -> String {
    if let Some((_, flags)) = glib::FlagsValue::from_value(value) {
        let nicks: Vec<&str> = flags.iter().map(|f| f.nick()).collect();
        return nicks.join("+");
    }
    if let Some((_, v)) = glib::EnumValue::from_value(value) {
        return v.nick().to_string();
    }
    if let Ok(v) = value.get::<f64>() {
        return v.to_string();
    }
    if let Ok(v) = value.get::<Option<String>>() {
        return v.unwrap_or_default();
    }
    value.serialize().map(|s| s.to_string()).unwrap_or_default()
}

/// The element's properties that are options.
pub fn option_properties(element: &gst::Element) -> Vec<glib::ParamSpec> {
    element
        .list_properties()
        .iter()
        .filter(|p| p.flags().contains(glib::ParamFlags::WRITABLE))
        .filter(|p| !NOT_OPTIONS.contains(&p.name()))
        .cloned()
        .collect()
}

/// One option per property, its help the property's blurb, values and default.
fn element_args(element: &gst::Element) -> Vec<Arg> {
    option_properties(element)
        .iter()
        .map(|p| {
            let default = value_text(p.default_value());
            let mut help = p.blurb().unwrap_or_default().to_string();
            if let Some(c) = choices(p) {
                help += &format!(" ({c})");
            }
            if !default.is_empty() {
                help += &format!(" [default: {default}]");
            }
            Arg::new(p.name().to_string())
                .long(p.name().to_string())
                .value_name("VALUE")
                .help(help)
                .help_heading("Scoring (comparesink's properties)")
        })
        .collect()
}

/// The command line, with `comparesink`'s properties as options.
pub fn command(element: &gst::Element) -> Command {
    <Cli as clap::CommandFactory>::command().args(element_args(element))
}

/// Parses the command line: the fixed options, and each property given as `(name, text)`.
pub fn parse(
    element: &gst::Element,
    argv: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(Cli, Vec<(String, String)>), clap::Error> {
    let matches: ArgMatches = command(element).try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let properties = option_properties(element)
        .iter()
        .filter_map(|p| {
            let v = matches.get_one::<String>(p.name())?;
            Some((p.name().to_string(), v.clone()))
        })
        .collect();
    Ok((cli, properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_sizes_and_rates_parse() {
        assert_eq!(parse_check("ssim=0.95"), Ok((Metric::Ssim, 0.95)));
        assert_eq!(parse_check("ms-ssim=0.9"), Ok((Metric::MsSsim, 0.9)));
        assert!(parse_check("mse=3").is_err());
        assert_eq!(parse_check("vmaf=90"), Ok((Metric::Vmaf, 90.0)));
        assert!(parse_check("model=0.5").is_err_and(|e| e.contains("depends on the model")));
        assert!(
            parse_check("vif=0.9")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(parse_check("ssim").is_err());
        assert!(parse_check("ssim=high").is_err());
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert!(parse_size("1920").is_err());
        assert!(parse_size("0x10").is_err());
        assert_eq!(parse_fps("30000/1001"), Ok((30000, 1001)));
        assert_eq!(parse_fps("25"), Ok((25, 1)));
        assert!(parse_fps("0").is_err());
    }
}
