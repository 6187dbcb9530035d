//! How much memory `comparesink` may use and at which resolution it compares: the memory
//! budget (fixed, or what the GPU has free), and the quality tier (full resolution, pinned,
//! or following GPU memory usage through the shared tier table).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::CompareQuality;
use crate::memory::tiers::Tier;
use crate::memory::{SimulatedUsage, SourceKind, TierTracker, proc_kb_field};
use crate::tier_settings::TierSettings;

/// Margin kept free on the device under an automatic budget: a tenth of it, at least
/// 256 MiB.
fn margin(total: u64) -> u64 {
    (total / 10).max(256 << 20)
}

/// The smallest automatic budget (banding makes it enough for any frame size).
const MIN_AUTO_BUDGET: u64 = 64 << 20;

/// Half of the RAM the kernel says is available, for CPU scoring by all instances.
fn cpu_budget() -> u64 {
    proc_kb_field("/proc/meminfo", "MemAvailable").map_or(0, |b| b / 2)
}

/// Instances of this process scoring on the CPU under an automatic budget: they share
/// [`cpu_budget`] equally rather than each taking all of it.
static CPU_SHARERS: AtomicUsize = AtomicUsize::new(0);

/// One instance's share of the automatic CPU budget, held while its policy lives.
#[derive(Debug)]
struct CpuShare;

impl CpuShare {
    fn join() -> Self {
        CPU_SHARERS.fetch_add(1, Ordering::SeqCst);
        CpuShare
    }

    fn bytes(&self) -> u64 {
        cpu_budget() / CPU_SHARERS.load(Ordering::SeqCst).max(1) as u64
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        CPU_SHARERS.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct MemoryPolicy {
    tracker: TierTracker,
    quality: CompareQuality,
    budget: u64,
    /// Taken the first time the automatic budget is asked for on the CPU.
    cpu_share: OnceLock<CpuShare>,
}

impl MemoryPolicy {
    /// Watches GPU `device_index` (NVML's) as `tiers` says; the error is a sentence.
    pub fn new(
        tiers: &TierSettings,
        device_index: u32,
        simulated: &SimulatedUsage,
        quality: CompareQuality,
        budget: u64,
    ) -> Result<Self, String> {
        let tracker = tiers.tracker(device_index, Duration::from_millis(100), simulated)?;
        Ok(MemoryPolicy {
            tracker,
            quality,
            budget,
            cpu_share: OnceLock::new(),
        })
    }

    /// Why the automatic memory source fell back, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.tracker.monitor().fallback_reason.as_deref()
    }

    /// The tier frames are compared at now; `None` for full resolution.
    pub fn tier(&mut self) -> Option<&Tier> {
        let index = match self.quality {
            CompareQuality::Full | CompareQuality::Auto => return None,
            CompareQuality::High => 0,
            CompareQuality::Medium => 1,
            CompareQuality::Low => 2,
            CompareQuality::Adaptive => {
                self.tracker.update(Instant::now());
                return Some(self.tracker.tier());
            }
        };
        Some(&self.tracker.table().0[index])
    }

    /// The tier table, highest first.
    #[cfg(feature = "torch")]
    pub fn tiers(&self) -> &[Tier] {
        &self.tracker.table().0
    }

    /// The tier whose box a learned model sees when frames are compared at `frame_tier`:
    /// the same, but the high tier's for `quality=auto` (full resolution for the rest).
    #[cfg(feature = "torch")]
    pub fn model_tier(&self, frame_tier: Option<&Tier>) -> Option<Tier> {
        match (self.quality, frame_tier) {
            (CompareQuality::Auto, _) => self.tracker.table().0.first().cloned(),
            (_, tier) => tier.cloned(),
        }
    }

    /// The working-memory budget for the next batch, in bytes (0 = unlimited): the
    /// `memory-budget` property, or else what the GPU (or simulated GPU) has free minus a
    /// margin, or on the CPU an equal share of half the available RAM among the instances
    /// of the process that score there.
    pub fn budget(&self, on_gpu: bool) -> u64 {
        if self.budget > 0 {
            return self.budget;
        }
        let reading = self.tracker.latest();
        let gpu_reading = reading.total_bytes > 0 && reading.source != SourceKind::None;
        if gpu_reading && (on_gpu || reading.source == SourceKind::Simulated) {
            return reading
                .free_bytes
                .saturating_sub(margin(reading.total_bytes))
                .max(MIN_AUTO_BUDGET);
        }
        if on_gpu {
            0
        } else {
            self.cpu_share.get_or_init(CpuShare::join).bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier_settings::MemorySource;

    #[test]
    fn cpu_budget_is_half_the_available_ram() {
        let b = cpu_budget();
        assert!(b > 0, "/proc/meminfo has MemAvailable on Linux");
    }

    fn policy(source: SourceKind, sim: &SimulatedUsage) -> MemoryPolicy {
        let tiers = TierSettings {
            memory_source: match source {
                SourceKind::Simulated => MemorySource::Simulated,
                _ => MemorySource::None,
            },
            ..TierSettings::default()
        };
        MemoryPolicy::new(&tiers, 0, sim, CompareQuality::Full, 0).unwrap()
    }

    #[test]
    fn instances_share_the_automatic_cpu_budget() {
        let sim = SimulatedUsage::default();
        let one = policy(SourceKind::None, &sim);
        let alone = one.budget(false);
        let two = policy(SourceKind::None, &sim);
        let second = two.budget(false); // takes its share
        let shared = [one.budget(false), second];
        // Other tests of this process may hold shares too: never more than half of what
        // one had, give or take what MemAvailable moved meanwhile.
        for b in shared {
            assert!(b > 0 && b <= alone / 2 + alone / 20, "{b} of {alone}");
        }
        drop(two);
        assert!(one.budget(false) > shared[0]);
    }

    #[test]
    fn automatic_budget_follows_simulated_free_memory() {
        let sim = SimulatedUsage::default();
        let p = policy(SourceKind::Simulated, &sim);
        sim.set(0.5);
        let half = p.budget(false);
        assert_eq!(half, (8u64 << 30) - margin(16 << 30));
        sim.set(0.99);
        assert_eq!(p.budget(false), MIN_AUTO_BUDGET);
    }
}
