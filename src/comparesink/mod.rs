//! `comparesink`: a sink with two pads, `reference` and `distorted`, that scores each frame
//! pair (MSE, PSNR, SSIM, MS-SSIM) and posts the scores on the bus.
//!
//! It is a bin: each pad leads to an internal sink ([`input`]) that prerolls, syncs and
//! handles end of stream like any sink; both feed one [`session`], which pairs frames by
//! running time and hands the pairs to a scoring thread ([`worker`]).

use gst::glib;
use gst::prelude::*;

mod frames;
mod heatmap;
mod imp;
mod input;
mod memory;
mod pacing;
pub mod pairing;
mod report;
mod session;
mod stats;
mod worker;

glib::wrapper! {
    pub struct CompareSink(ObjectSubclass<imp::CompareSink>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

/// The metrics computed for each pair.
#[glib::flags(name = "GstCompareSinkMetrics")]
pub enum CompareMetrics {
    #[flags_value(name = "Mean squared error", nick = "mse")]
    MSE = 0b0001,
    #[flags_value(name = "Peak signal-to-noise ratio (dB)", nick = "psnr")]
    PSNR = 0b0010,
    #[flags_value(name = "Structural similarity (Gaussian window)", nick = "ssim")]
    SSIM = 0b0100,
    #[flags_value(name = "Multi-scale structural similarity", nick = "ms-ssim")]
    MS_SSIM = 0b1000,
    #[flags_value(
        name = "Netflix's VMAF (the model in vmaf-model; scores come one frame late, as they need the next frame's motion)",
        nick = "vmaf"
    )]
    VMAF = 0b1_0000,
}

/// Which samples are compared.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCompareSinkChannels")]
pub enum CompareChannels {
    #[default]
    #[enum_value(
        name = "Luma only: the Y plane, or 0.299 R + 0.587 G + 0.114 B for RGB",
        nick = "luma"
    )]
    Luma = 0,
    #[enum_value(
        name = "Every colour plane, averaged weighted by sample count",
        nick = "all"
    )]
    All = 1,
}

/// Which implementation scores the frames.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCompareSinkBackend")]
pub enum CompareBackend {
    #[default]
    #[enum_value(
        name = "libtorch on a CUDA device, the native multi-threaded kernel on the CPU",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "Native multi-threaded CPU kernel (CPU only)", nick = "native")]
    Native = 1,
    #[enum_value(name = "libtorch, on the selected device", nick = "libtorch")]
    Libtorch = 2,
}

/// The resolution frames are compared at.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCompareSinkQuality")]
pub enum CompareQuality {
    #[enum_value(
        name = "Full resolution: exact scores (frames are split to fit memory)",
        nick = "full"
    )]
    Full = 0,
    #[enum_value(
        name = "The tier GPU memory usage selects (both frames scaled alike)",
        nick = "adaptive"
    )]
    Adaptive = 1,
    #[enum_value(name = "Always the high tier's box", nick = "high")]
    High = 2,
    #[enum_value(name = "Always the medium tier's box", nick = "medium")]
    Medium = 3,
    #[enum_value(name = "Always the low tier's box", nick = "low")]
    Low = 4,
    #[default]
    #[enum_value(
        name = "Full resolution for PSNR, SSIM, MS-SSIM and VMAF; a model sees the high tier's box",
        nick = "auto"
    )]
    Auto = 5,
}

/// How the `model` property's TorchScript model compares a pair.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstCompareSinkModelType")]
pub enum CompareModelType {
    #[default]
    #[enum_value(
        name = "forward(reference, distorted) returns [batch, ...]; the score is the mean over all but the batch (LPIPS, DISTS)",
        nick = "pair"
    )]
    Pair = 0,
    #[enum_value(
        name = "forward(image) returns [batch, features]; the score is the cosine similarity of the two embeddings (CLIP)",
        nick = "embedding"
    )]
    Embedding = 1,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "comparesink",
        gst::Rank::NONE,
        CompareSink::static_type(),
    )
}

pub(crate) static CAT: std::sync::LazyLock<gst::DebugCategory> = std::sync::LazyLock::new(|| {
    gst::DebugCategory::new(
        "comparesink",
        gst::DebugColorFlags::empty(),
        Some("Frame-pair similarity sink"),
    )
});
