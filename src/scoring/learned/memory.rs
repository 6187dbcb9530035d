//! A learned model's working memory: measured around its forwards on the device, learned as
//! bytes per input pixel, and used to plan how many pairs (and at which tier) fit a budget.
//!
//! A network's activations grow with the pixels it sees, and unlike SSIM it cannot be
//! split into exact bands, so the plan is a batch size and, when even one pair does not
//! fit, a lower tier. The estimate only rises: from the probe at load, from every batch
//! measured while it runs, and from allocation failures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::memory::cuda::cuda_runtime;
use crate::memory::proc_kb_field;
use crate::scoring::Device;

/// Input pixels (frames × width × height) below which a measurement teaches nothing: fixed
/// costs (kernels' workspaces, allocator rounding) would dominate the per-pixel figure.
pub const MIN_PIXELS: u64 = 1 << 16;

/// Bytes per input pixel that any model needs: its float RGB input.
const INPUT_BYTES_PER_PIXEL: f64 = 12.0;

/// Bytes per source pixel of a frame fitted into a smaller box on the device: the 8-bit
/// RGB upload and its float copy, alive while the fitted frame is made (one frame at a
/// time).
pub const SOURCE_BYTES_PER_PIXEL: u64 = 3 + 12;

/// What the device has in use, read around a forward to measure its working memory.
#[derive(Clone, Copy, Debug)]
pub enum Gauge {
    /// The process's resident memory: its peak (`VmHWM`) and samples of `VmRSS` taken while
    /// the forward runs, above the resident memory before it. Other threads' allocations
    /// count too, which only makes the figure larger.
    Cpu,
    /// The memory in use on a CUDA device (`cudaMemGetInfo`). libtorch's caching allocator
    /// keeps what a forward reserved, so the growth is its peak beyond what was cached
    /// (other processes' allocations on the device count too).
    Cuda(usize),
}

impl Gauge {
    pub fn for_device(device: Device) -> Self {
        match device {
            Device::Cpu => Gauge::Cpu,
            Device::Cuda(n) => Gauge::Cuda(n),
        }
    }

    /// Runs `f` and returns its result and the working memory it was seen to take, or
    /// `None` when the gauge saw no growth (it stayed within memory already held).
    pub fn measure<T>(self, f: impl FnOnce() -> T) -> (T, Option<u64>) {
        match self {
            Gauge::Cpu => measure_resident(f),
            Gauge::Cuda(ordinal) => {
                let used = || {
                    cuda_runtime()
                        .ok()?
                        .mem_get_info(ordinal)
                        .map(|(free, total)| total.saturating_sub(free))
                };
                let before = used();
                let out = f();
                tch::Cuda::synchronize(ordinal as i64);
                let grown = before.zip(used()).map(|(b, a)| a.saturating_sub(b));
                (out, grown.filter(|&g| g > 0))
            }
        }
    }
}

fn resident() -> Option<u64> {
    proc_kb_field("/proc/self/status", "VmRSS")
}

fn resident_peak() -> Option<u64> {
    proc_kb_field("/proc/self/status", "VmHWM")
}

/// The CPU gauge: a thread samples the resident memory while `f` runs (large tensors are
/// mapped and unmapped around each operation, so they show only while alive), and the
/// process's peak counts when `f` raised it.
fn measure_resident<T>(f: impl FnOnce() -> T) -> (T, Option<u64>) {
    let (Some(before), Some(peak_before)) = (resident(), resident_peak()) else {
        return (f(), None);
    };
    let done = AtomicBool::new(false);
    let (out, sampled) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut high = before;
            while !done.load(Ordering::Relaxed) {
                high = high.max(resident().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(1));
            }
            high
        });
        let out = f();
        done.store(true, Ordering::Relaxed);
        (out, sampler.join().unwrap_or(before))
    });
    let peak = resident_peak().filter(|&p| p > peak_before).unwrap_or(0);
    let grown = sampled.max(peak).saturating_sub(before);
    (out, (grown > 0).then_some(grown))
}

/// Runs `f` at least `runs` times and for at least `span`, measuring all of it: the CPU
/// gauge samples, and a short forward would slip between its samples.
pub fn measure_repeated<E>(
    gauge: Gauge,
    runs: usize,
    span: Duration,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Option<u64>, E> {
    let (out, bytes) = gauge.measure(|| {
        let start = Instant::now();
        let mut n = 0;
        while n < runs || start.elapsed() < span {
            f()?;
            n += 1;
        }
        Ok(())
    });
    out.map(|()| bytes)
}

/// The learned working memory of a model, per input pixel (a pair's two frames count).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WorkingMemory {
    per_pixel: Option<f64>,
}

impl WorkingMemory {
    /// A model known to take `per_pixel` bytes an input pixel.
    pub fn known(per_pixel: f64) -> Self {
        WorkingMemory {
            per_pixel: Some(per_pixel.max(INPUT_BYTES_PER_PIXEL)),
        }
    }

    /// Bytes an input pixel, once anything was learned.
    pub fn per_pixel(&self) -> Option<f64> {
        self.per_pixel
    }

    /// A forward over `pixels` input pixels took `bytes`.
    pub fn observe(&mut self, pixels: u64, bytes: u64) {
        if pixels >= MIN_PIXELS {
            self.raise(bytes as f64 / pixels as f64);
        }
    }

    /// A forward over `pixels` input pixels ran out of memory with `budget` bytes (0:
    /// unknown) planned for it: it needs more than the budget.
    pub fn failed(&mut self, pixels: u64, budget: u64) {
        if budget > 0 && pixels > 0 {
            self.raise(budget as f64 / pixels as f64 * 1.25);
        }
    }

    fn raise(&mut self, per_pixel: f64) {
        let per_pixel = per_pixel.max(INPUT_BYTES_PER_PIXEL);
        self.per_pixel = Some(self.per_pixel.map_or(per_pixel, |p| p.max(per_pixel)));
    }

    /// The working memory of a forward over `pixels` input pixels, when known.
    pub fn bytes(&self, pixels: u64) -> Option<u64> {
        self.per_pixel.map(|p| (p * pixels as f64).ceil() as u64)
    }

    /// How many pairs of `pair_pixels` input pixels each (both frames) to score together,
    /// up to `wanted`, within `budget` bytes (0: unlimited), the batch also taking `extra`
    /// bytes beyond the model (a source frame being fitted into a box). `None` when not
    /// even one pair fits; `wanted` while nothing is known.
    pub fn batch(&self, pair_pixels: u64, extra: u64, wanted: usize, budget: u64) -> Option<usize> {
        let wanted = wanted.max(1);
        match self.bytes(pair_pixels) {
            Some(one) if budget > 0 => {
                let fits = (budget.saturating_sub(extra) / one.max(1)) as usize;
                (fits >= 1).then(|| fits.min(wanted))
            }
            _ => Some(wanted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_known_plans_the_wanted_batch() {
        let m = WorkingMemory::default();
        assert_eq!(m.batch(1 << 20, 0, 8, 1 << 20), Some(8));
        assert_eq!(m.bytes(100), None);
    }

    #[test]
    fn batches_fit_the_budget_and_none_when_one_pair_does_not() {
        let m = WorkingMemory::known(100.0);
        let pair = 2 * 1024 * 1024;
        let one = 100 * pair;
        assert_eq!(m.batch(pair, 0, 8, 0), Some(8));
        assert_eq!(m.batch(pair, 0, 8, 3 * one + one / 2), Some(3));
        assert_eq!(m.batch(pair, 0, 2, 10 * one), Some(2));
        assert_eq!(m.batch(pair, 0, 8, one), Some(1));
        assert_eq!(m.batch(pair, 0, 8, one - 1), None);
        // What the batch takes beyond the model counts too.
        assert_eq!(m.batch(pair, one, 8, 4 * one), Some(3));
        assert_eq!(m.batch(pair, one, 8, 2 * one - 1), None);
    }

    #[test]
    fn the_estimate_only_rises_and_small_forwards_teach_nothing() {
        let mut m = WorkingMemory::default();
        m.observe(MIN_PIXELS - 1, 1 << 30);
        assert_eq!(m.per_pixel(), None);
        m.observe(MIN_PIXELS, 200 * MIN_PIXELS);
        assert_eq!(m.per_pixel(), Some(200.0));
        m.observe(MIN_PIXELS, 100 * MIN_PIXELS);
        assert_eq!(m.per_pixel(), Some(200.0));
        // Never below the float input itself.
        let mut m = WorkingMemory::default();
        m.observe(MIN_PIXELS, MIN_PIXELS);
        assert_eq!(m.per_pixel(), Some(INPUT_BYTES_PER_PIXEL));
    }

    #[test]
    fn a_failure_makes_the_failed_batch_not_fit_again() {
        let mut m = WorkingMemory::known(50.0);
        let pair = 2 * 512 * 512;
        let budget = 4 * 100 * pair;
        assert_eq!(m.batch(pair, 0, 8, budget), Some(8));
        m.failed(8 * pair, budget);
        let next = m.batch(pair, 0, 8, budget).unwrap();
        assert!(next < 8, "{next}");
        // An unknown budget teaches nothing.
        let mut m = WorkingMemory::default();
        m.failed(pair, 0);
        assert_eq!(m.per_pixel(), None);
    }

    #[test]
    fn the_cpu_gauge_sees_a_large_allocation() {
        let size = 256usize << 20;
        let (_, seen) = Gauge::Cpu.measure(|| {
            // Touched, so that it is resident, and alive long enough to be sampled.
            let block = vec![1u8; size];
            std::thread::sleep(Duration::from_millis(30));
            std::hint::black_box(&block);
        });
        let seen = seen.expect("a 256 MiB allocation shows");
        assert!(seen >= size as u64 * 3 / 4, "{seen}");
    }

    #[test]
    fn repeated_short_forwards_are_seen() {
        // Each run maps, fills and frees 64 MiB, as a forward's large tensors come and go.
        let size = 64usize << 20;
        let mut runs = 0;
        let seen = measure_repeated(Gauge::Cpu, 3, Duration::from_millis(50), || {
            runs += 1;
            std::hint::black_box(vec![1u8; size]);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(runs >= 3);
        let seen = seen.expect("64 MiB blocks show");
        assert!(seen >= size as u64 / 2, "{seen}");
        // An error ends the runs and is returned.
        assert_eq!(
            measure_repeated(Gauge::Cpu, 3, Duration::ZERO, || Err::<(), _>("failed")),
            Err("failed")
        );
    }
}
