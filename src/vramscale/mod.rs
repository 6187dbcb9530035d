//! `vramscale`: a filter that watches GPU memory and rescales frames to the current
//! quality tier (a box the frame is fitted into), renegotiating its output size
//! mid-stream as memory fills and frees. Frames that already fit pass through untouched.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VramScale(ObjectSubclass<imp::VramScale>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
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
