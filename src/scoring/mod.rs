//! The scoring engine: MSE, PSNR, SSIM and MS-SSIM between two images.
//!
//! GStreamer-free. Images come in as borrowed views of 8- or 16-bit sample planes
//! ([`ImageView`]); the [`Engine`] picks the device, the planes the [`ChannelMode`] asks
//! for, and scores them on the CPU with a multi-threaded native kernel ([`native`]) or with
//! libtorch (`torch`, the CUDA path; the `torch` cargo feature), within a memory budget
//! ([`budget`]). Both backends read rows through [`rows`] and follow the same definitions:
//!
//! - SSIM: Wang et al. 2004, 11-tap Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
//!   population covariance, mean of the map over the valid region (no padding).
//! - MS-SSIM: up to five scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
//!   2×2 average pooling between scales (zero padding on odd sides), relu on the terms;
//!   frames too small for five scales use as many as fit, with renormalised weights.
//! - PSNR = 10·log10(MAX²/MSE) over all compared samples; +inf for identical inputs.

pub mod budget;
#[cfg(feature = "torch")]
pub mod budgeted;
pub mod device;
mod engine;
mod image;
#[cfg(feature = "torch")]
pub mod learned;
mod map;
pub mod native;
pub mod rows;
#[cfg(feature = "torch")]
pub mod torch;
pub mod vmaf;
mod window;

pub use device::{Device, parse_device};
pub use engine::{BackendChoice, Engine};
pub use image::{ColorKind, Component, ImageView, PlaneGeometry, SampleMap, planes_for};
pub use map::{MapKind, QualityMap};
pub use window::{MS_SSIM_WEIGHTS, WINDOW, ms_ssim_scales};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// One metric, as messages and files name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    Mse,
    Psnr,
    Ssim,
    MsSsim,
    /// Netflix's VMAF, from the luma of the pair and the reference's motion ([`vmaf`]).
    Vmaf,
    /// A learned metric: a TorchScript model's score of the pair (`learned`).
    Model,
}

impl Metric {
    /// Every metric, in the order messages list them.
    pub const ALL: [Metric; 6] = [
        Metric::Mse,
        Metric::Psnr,
        Metric::Ssim,
        Metric::MsSsim,
        Metric::Vmaf,
        Metric::Model,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Mse => "mse",
            Metric::Psnr => "psnr",
            Metric::Ssim => "ssim",
            Metric::MsSsim => "ms-ssim",
            Metric::Vmaf => "vmaf",
            Metric::Model => "model",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Which metrics to compute. MSE is always computed internally (PSNR derives from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metrics {
    pub mse: bool,
    pub psnr: bool,
    pub ssim: bool,
    pub ms_ssim: bool,
    /// Computed outside the engine, which leaves [`Scores::vmaf`] empty.
    pub vmaf: bool,
    /// A learned model's score, computed outside the engine like VMAF.
    pub model: bool,
}

impl Metrics {
    /// The enabled metrics, in message order.
    pub fn enabled(self) -> Vec<Metric> {
        let on = [
            self.mse,
            self.psnr,
            self.ssim,
            self.ms_ssim,
            self.vmaf,
            self.model,
        ];
        Metric::ALL
            .into_iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(m, _)| m)
            .collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            mse: false,
            psnr: true,
            ssim: true,
            ms_ssim: false,
            vmaf: false,
            model: false,
        }
    }
}

/// Which samples are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelMode {
    /// The Y plane of YUV and grey formats; Y = 0.299 R + 0.587 G + 0.114 B for RGB.
    #[default]
    Luma,
    /// Every colour plane; metrics are averaged over planes weighted by sample count.
    All,
}

impl ChannelMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelMode::Luma => "luma",
            ChannelMode::All => "all",
        }
    }
}

/// The scores of one image pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    pub mse: f64,
    pub psnr: f64,
    /// `None` when SSIM was not asked for, or the image is smaller than the window.
    pub ssim: Option<f64>,
    /// `None` when MS-SSIM was not asked for, or the image is smaller than the window.
    pub ms_ssim: Option<f64>,
    /// How many scales MS-SSIM used (0 when it was not computed).
    pub ms_ssim_scales: u32,
    /// VMAF, which the engine leaves to its caller (it needs the stream's motion).
    pub vmaf: Option<f64>,
    /// A learned model's score, which the engine also leaves to its caller.
    pub model: Option<f64>,
    /// Each compared plane's own scores, in plane order (one plane for luma).
    pub planes: Vec<PlaneResult>,
    /// With [`Options::map`]: the SSIM map (the squared-error map when SSIM is off or the
    /// frame is smaller than its window) of the first compared plane, averaged with the
    /// other planes of its size.
    pub map: Option<QualityMap>,
}

/// The scores of one compared plane.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaneResult {
    pub mse: f64,
    pub psnr: f64,
    pub ssim: Option<f64>,
    pub ms_ssim: Option<f64>,
}

impl Scores {
    /// One metric's value (`None` when it was not computed).
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Vmaf => return self.vmaf,
            Metric::Model => return self.model,
            _ => {}
        }
        let pooled = PlaneResult {
            mse: self.mse,
            psnr: self.psnr,
            ssim: self.ssim,
            ms_ssim: self.ms_ssim,
        };
        pooled.get(metric)
    }
}

impl PlaneResult {
    /// One metric's value on this plane (`None` when it was not computed).
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Mse => Some(self.mse),
            Metric::Psnr => Some(self.psnr),
            Metric::Ssim => self.ssim,
            Metric::MsSsim => self.ms_ssim,
            // VMAF and a model score the whole frame, not a plane.
            Metric::Vmaf | Metric::Model => None,
        }
    }
}

/// Scores of one plane, before planes are combined.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlaneScores {
    pub sse: f64,
    pub samples: u64,
    pub ssim: Option<f64>,
    pub ms_ssim: Option<(f64, u32)>,
    pub map: Option<QualityMap>,
}

/// Errors of the scoring engine.
#[derive(Debug)]
pub enum Error {
    /// The two images cannot be compared (different sizes, kinds or depths).
    Mismatch(String),
    /// The backend failed (for libtorch: out of memory, missing device, ...).
    Backend(String),
    /// The memory budget cannot hold the smallest unit of work.
    Budget(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Mismatch(s) => write!(f, "images cannot be compared: {s}"),
            Error::Backend(s) => write!(f, "scoring backend failed: {s}"),
            Error::Budget(s) => write!(f, "memory budget too small: {s}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether this is a memory allocation failure worth retrying with less memory.
    pub fn is_out_of_memory(&self) -> bool {
        match self {
            Error::Backend(s) => {
                let s = s.to_ascii_lowercase();
                s.contains("out of memory") || s.contains("can't allocate memory")
            }
            _ => false,
        }
    }
}

/// Memory a scored pair used, by the engine's own accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bands each plane was split into (1: whole frames).
    pub tiles: u32,
    /// Peak working bytes of the batch the pair was scored in.
    pub bytes: u64,
    /// Pairs scored together.
    pub batch: usize,
}

/// A scored pair and the memory its batch used.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub scores: Scores,
    pub usage: Usage,
}

/// A recovery from an allocation failure, for the caller to log.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    pub error: String,
    pub retry: budget::Plan,
}

/// Makes coming device allocations fail as out of memory, to test recovery. Clones share
/// one count, so it can be armed from another thread while the engine scores.
#[derive(Clone, Debug, Default)]
pub struct FaultInjection(Arc<AtomicU32>);

impl FaultInjection {
    /// The next `n` device allocations fail.
    pub fn inject(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// Failures still to come.
    pub fn pending(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }

    /// Whether this allocation is to fail (counting it).
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Options shared by every backend.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    pub metrics: Metrics,
    pub channels: ChannelMode,
    /// Also return each pair's per-pixel map ([`Scores::map`]). Off, the backends store
    /// no map at all.
    pub map: bool,
}

/// PSNR in dB from an MSE and the peak sample value; +inf when `mse` is 0.
pub fn psnr(mse: f64, max_value: f64) -> f64 {
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (max_value * max_value / mse).log10()
    }
}

/// Combines per-plane scores into one result, weighting planes by sample count.
pub(crate) fn combine(mut planes: Vec<PlaneScores>, max_value: f64) -> Scores {
    let maps: Vec<QualityMap> = planes.iter_mut().filter_map(|p| p.map.take()).collect();
    let map = QualityMap::combine(maps);
    let samples: u64 = planes.iter().map(|p| p.samples).sum();
    let total = samples.max(1) as f64;
    let mse = planes.iter().map(|p| p.sse).sum::<f64>() / total;
    let weighted = |f: &dyn Fn(&PlaneScores) -> Option<f64>| -> Option<f64> {
        let mut acc = 0.0;
        for p in &planes {
            acc += f(p)? * p.samples as f64;
        }
        Some(acc / total)
    };
    let ssim = weighted(&|p| p.ssim);
    let ms_ssim = weighted(&|p| p.ms_ssim.map(|(v, _)| v));
    let ms_ssim_scales = if ms_ssim.is_some() {
        planes
            .iter()
            .filter_map(|p| p.ms_ssim.map(|(_, n)| n))
            .min()
            .unwrap_or(0)
    } else {
        0
    };
    let planes = planes
        .iter()
        .map(|p| {
            let mse = p.sse / p.samples.max(1) as f64;
            PlaneResult {
                mse,
                psnr: psnr(mse, max_value),
                ssim: p.ssim,
                ms_ssim: p.ms_ssim.map(|(v, _)| v),
            }
        })
        .collect();
    Scores {
        mse,
        psnr: psnr(mse, max_value),
        ssim,
        ms_ssim,
        ms_ssim_scales,
        vmaf: None,
        model: None,
        planes,
        map,
    }
}

/// SSIM stabilising constants (C1, C2) for a peak value.
pub fn ssim_constants(max_value: f64) -> (f64, f64) {
    ((0.01 * max_value).powi(2), (0.03 * max_value).powi(2))
}

/// Combines per-scale contrast-structure terms and the last scale's SSIM into MS-SSIM.
/// `cs` holds the terms of every scale but the last; relu is applied to all terms.
/// Fewer than five scales use the first weights, renormalised to sum to 1.
pub fn ms_ssim_combine(cs: &[f64], last_ssim: f64) -> f64 {
    let scales = cs.len() + 1;
    let weights = &MS_SSIM_WEIGHTS[..scales];
    // Five scales use the published weights as they are; fewer are renormalised to sum 1.
    let sum: f64 = if scales == MS_SSIM_WEIGHTS.len() {
        1.0
    } else {
        weights.iter().sum()
    };
    let mut value = 1.0;
    for (term, w) in cs.iter().chain(std::iter::once(&last_ssim)).zip(weights) {
        value *= term.max(0.0).powf(w / sum);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_closed_form() {
        assert_eq!(psnr(0.0, 255.0), f64::INFINITY);
        // MSE of 1 at 8 bits: 10·log10(65025) = 48.1308 dB.
        assert!((psnr(1.0, 255.0) - 48.130_803_608).abs() < 1e-6);
        assert!((psnr(65025.0, 255.0)).abs() < 1e-12);
    }

    #[test]
    fn ms_ssim_combine_is_weighted_product() {
        assert!((ms_ssim_combine(&[1.0; 4], 1.0) - 1.0).abs() < 1e-12);
        // One scale: the weight renormalises to 1, so the result is the SSIM itself.
        assert!((ms_ssim_combine(&[], 0.7) - 0.7).abs() < 1e-12);
        // Negative terms are clamped to 0.
        assert_eq!(ms_ssim_combine(&[-0.2], 0.9), 0.0);
        let v = ms_ssim_combine(&[0.5], 0.8);
        let (a, b) = (0.0448 / 0.3304, 0.2856 / 0.3304);
        assert!((v - 0.5f64.powf(a) * 0.8f64.powf(b)).abs() < 1e-12);
    }

    #[test]
    fn combine_weights_planes_by_samples() {
        let p = |sse, samples, ssim| PlaneScores {
            sse,
            samples,
            ssim: Some(ssim),
            ms_ssim: None,
            map: None,
        };
        let s = combine(
            vec![p(400.0, 100, 0.9), p(0.0, 25, 0.4), p(0.0, 25, 0.4)],
            255.0,
        );
        assert!((s.mse - 400.0 / 150.0).abs() < 1e-12);
        assert!((s.ssim.unwrap() - (90.0 + 10.0 + 10.0) / 150.0).abs() < 1e-12);
        assert_eq!(s.ms_ssim, None);
        assert_eq!(s.planes.len(), 3);
        assert_eq!(s.planes[0].mse, 4.0);
        assert_eq!(s.planes[1].psnr, f64::INFINITY);
        assert_eq!(s.planes[2].ssim, Some(0.4));
    }
}
