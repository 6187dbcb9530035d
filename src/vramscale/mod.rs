//! `vramscale`: a filter that watches GPU memory and rescales frames to the current
//! quality tier (a box the frame is fitted into), renegotiating its output size
//! mid-stream as memory fills and frees. Frames that already fit pass through untouched.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VramScale(ObjectSubclass<imp::VramScale>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Where `vramscale` reads GPU memory usage from.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVramScaleMemorySource")]
pub enum VramScaleMemorySource {
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
    #[enum_value(
        name = "None: usage stays 0 and the highest tier applies",
        nick = "none"
    )]
    None = 4,
}

pub(crate) static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "vramscale",
        gst::DebugColorFlags::empty(),
        Some("GPU-memory-adaptive scaler"),
    )
});

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "vramscale",
        gst::Rank::NONE,
        VramScale::static_type(),
    )
}
