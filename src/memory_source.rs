//! The `memory-source` property type both elements share.

use gst::glib;

use crate::memory::SourceKind;

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
