//! `vramscale`: a filter that watches GPU memory and rescales frames to the current
//! quality tier (a box the frame is fitted into), renegotiating its output size
//! mid-stream as memory fills and frees. Frames that already fit pass through untouched.

use gst::glib;
use gst::prelude::*;

use crate::memory::tiers::{Tier, fit};

mod imp;

glib::wrapper! {
    pub struct VramScale(ObjectSubclass<imp::VramScale>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
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
