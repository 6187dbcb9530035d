//! GStreamer elements that compare video frames on the GPU (or CPU) within bounded memory.
//!
//! - `comparesink`: scores reference/distorted frame pairs (MSE, PSNR, SSIM, MS-SSIM).
//! - `vramscale`: rescales frames to a quality tier chosen from GPU memory usage.
//!
//! The scoring engine ([`scoring`]) is GStreamer-free and can be used on its own; [`plot`]
//! (the `cli` cargo feature) draws the scores of a stream, as the `gpucompare` command does.

use gst::glib;

pub mod comparesink;
pub mod memory;
pub mod messages;
#[cfg(feature = "cli")]
pub mod plot;
pub mod scoring;
mod tier_settings;
pub mod vramscale;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    comparesink::register(plugin)?;
    vramscale::register(plugin)
}

gst::plugin_define!(
    gpucompare,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    "2026-11-24"
);
