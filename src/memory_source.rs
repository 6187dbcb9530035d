//! The memory properties both elements share: `memory-source` (and its type),
//! `simulated-usage` and `tiers`.

use gst::glib;
use gst::prelude::*;

use crate::memory::SourceKind;
use crate::memory::tiers::TierTable;

/// `memory-source`, `simulated-usage` and `tiers`, with the element's own blurbs.
pub fn memory_properties(source_blurb: &str, tiers_blurb: &str) -> [glib::ParamSpec; 3] {
    [
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
    ]
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
