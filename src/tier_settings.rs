//! The memory and tier settings both elements share: `memory-source`, `simulated-usage`,
//! `tiers`, `warning-threshold`, `critical-threshold`, `hysteresis` and `min-dwell`; the
//! tier tracker built from them; and the size a video frame gets inside a tier.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::memory::tiers::{Thresholds, Tier, TierTable, fit};
use crate::memory::{Monitor, SimulatedUsage, SourceKind, TierTracker};

const DEFAULT_MIN_DWELL_NS: u64 = 1_000_000_000;

/// The shared settings (`simulated-usage` lives outside, changeable while playing).
#[derive(Debug, Clone)]
pub struct TierSettings {
    pub memory_source: MemorySource,
    pub thresholds: Thresholds,
    pub tiers: String,
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings {
            memory_source: MemorySource::default(),
            thresholds: Thresholds::default(),
            tiers: TierTable::default().to_string(),
        }
    }
}

impl TierSettings {
    /// The properties, with the element's own blurbs for `memory-source` and `tiers`.
    pub fn properties(source_blurb: &str, tiers_blurb: &str) -> Vec<glib::ParamSpec> {
        let d = Thresholds::default();
        let ratio = |name: &str, nick: &str, blurb: &str, default: f64| {
            glib::ParamSpecDouble::builder(name)
                .nick(nick)
                .blurb(blurb)
                .minimum(0.0)
                .maximum(1.0)
                .default_value(default)
                .mutable_ready()
                .build()
        };
        vec![
            glib::ParamSpecEnum::builder_with_default("memory-source", MemorySource::default())
                .nick("Memory source")
                .blurb(source_blurb)
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("simulated-usage")
                .nick("Simulated usage")
                .blurb("GPU memory usage (0-1) reported by memory-source=simulated; changeable while playing")
                .minimum(0.0)
                .maximum(1.0)
                .default_value(0.0)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("tiers")
                .nick("Tiers")
                .blurb(tiers_blurb)
                .default_value(Some(TierTable::default().to_string().as_str()))
                .mutable_ready()
                .build(),
            ratio("warning-threshold", "Warning threshold", "GPU memory usage above this selects the middle tier", d.warning),
            ratio("critical-threshold", "Critical threshold", "GPU memory usage above this selects the lowest tier", d.critical),
            glib::ParamSpecDouble::builder("hysteresis")
                .nick("Hysteresis")
                .blurb("Stepping back up needs usage below the threshold minus this (for min-dwell)")
                .minimum(0.0)
                .maximum(0.5)
                .default_value(d.hysteresis)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt64::builder("min-dwell")
                .nick("Minimum dwell (ns)")
                .blurb("How long usage must stay low before stepping back up a tier, in nanoseconds")
                .default_value(DEFAULT_MIN_DWELL_NS)
                .mutable_ready()
                .build(),
        ]
    }

    /// Sets one of the properties; false when `name` is not one of them.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let d = Thresholds::default();
        let t = &mut self.thresholds;
        match name {
            "memory-source" => self.memory_source = value.get().unwrap_or_default(),
            "tiers" => {
                self.tiers = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "warning-threshold" => t.warning = value.get().unwrap_or(d.warning),
            "critical-threshold" => t.critical = value.get().unwrap_or(d.critical),
            "hysteresis" => t.hysteresis = value.get().unwrap_or(d.hysteresis),
            "min-dwell" => {
                t.min_dwell = Duration::from_nanos(value.get().unwrap_or(DEFAULT_MIN_DWELL_NS))
            }
            _ => return false,
        }
        true
    }

    /// The value of one of the properties, if `name` is one.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        let t = &self.thresholds;
        Some(match name {
            "memory-source" => self.memory_source.to_value(),
            "tiers" => self.tiers.to_value(),
            "warning-threshold" => t.warning.to_value(),
            "critical-threshold" => t.critical.to_value(),
            "hysteresis" => t.hysteresis.to_value(),
            "min-dwell" => (t.min_dwell.as_nanos() as u64).to_value(),
            _ => return None,
        })
    }

    /// The tier table, or a sentence saying what is wrong with it.
    pub fn table(&self) -> Result<TierTable, String> {
        self.tiers
            .parse()
            .map_err(|e| format!("Invalid tiers '{}': {e}", self.tiers))
    }

    /// A tracker of GPU `device` (NVML's index), read every `interval`. The error is a
    /// sentence for the user.
    pub fn tracker(
        &self,
        device: u32,
        interval: Duration,
        simulated: &SimulatedUsage,
    ) -> Result<TierTracker, String> {
        let table = self.table()?;
        self.thresholds.validate()?;
        let kind = self.memory_source.kind();
        let monitor = Monitor::open(kind, device, interval, simulated.clone())
            .map_err(|e| format!("memory-source={} cannot be used: {e}", kind.name()))?;
        TierTracker::new(monitor, table, self.thresholds)
    }
}

/// The size a frame of `info` gets inside `tier`'s box: display aspect ratio kept, never
/// upscaled, rounded down for the format's chroma subsampling.
pub fn fit_in_tier(info: &gst_video::VideoInfo, tier: &Tier) -> (u32, u32) {
    let finfo = info.format_info();
    let align = |sub: &[u32]| 1u32 << sub.iter().copied().max().unwrap_or(0);
    let par = info.par();
    fit(
        info.width(),
        info.height(),
        (par.numer(), par.denom()),
        tier.width,
        tier.height,
        (align(finfo.w_sub()), align(finfo.h_sub())),
    )
}

/// Where GPU memory usage is read from.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstGpuCompareMemorySource")]
pub enum MemorySource {
    #[default]
    #[enum_value(name = "NVML, else libtorch's CUDA view, else none", nick = "auto")]
    Auto = 0,
    #[enum_value(name = "NVML (device-wide, other processes included)", nick = "nvml")]
    Nvml = 1,
    #[enum_value(
        name = "The CUDA runtime libtorch uses (cudaMemGetInfo)",
        nick = "cuda"
    )]
    Cuda = 2,
    #[enum_value(name = "The simulated-usage property", nick = "simulated")]
    Simulated = 3,
    #[enum_value(name = "None: usage stays 0", nick = "none")]
    None = 4,
}

impl MemorySource {
    pub fn kind(self) -> SourceKind {
        match self {
            MemorySource::Auto => SourceKind::Auto,
            MemorySource::Nvml => SourceKind::Nvml,
            MemorySource::Cuda => SourceKind::Cuda,
            MemorySource::Simulated => SourceKind::Simulated,
            MemorySource::None => SourceKind::None,
        }
    }
}
