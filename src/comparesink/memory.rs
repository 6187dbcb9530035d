//! How much memory `comparesink` may use and at which resolution it compares: the memory
//! budget (fixed, or what the GPU has free), and the quality tier (full resolution, pinned,
//! or following GPU memory usage through the shared tier table).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::CompareQuality;
use crate::memory::tiers::{Thresholds, Tier, TierPolicy, TierTable};
use crate::memory::{Monitor, SimulatedUsage, SourceKind, proc_kb_field};

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
    monitor: Monitor,
    quality: CompareQuality,
    table: TierTable,
    policy: TierPolicy,
    budget: u64,
    /// Taken the first time the automatic budget is asked for on the CPU.
    cpu_share: OnceLock<CpuShare>,
    /// Fault injection requested through the element, not yet handed to the engine.
    pub pending_failures: Arc<AtomicU32>,
}

impl MemoryPolicy {
    pub fn new(
        source: SourceKind,
        device_index: u32,
        simulated: SimulatedUsage,
        quality: CompareQuality,
        tiers: &str,
        budget: u64,
        pending_failures: Arc<AtomicU32>,
    ) -> Result<Self, String> {
        let table: TierTable = tiers
            .parse()
            .map_err(|e| format!("Invalid tiers '{tiers}': {e}"))?;
        let monitor = Monitor::open(source, device_index, Duration::from_millis(100), simulated)
            .map_err(|e| format!("memory-source={} cannot be used: {e}", source.name()))?;
        let mut policy = TierPolicy::new(Thresholds::default());
        policy.reset(monitor.latest().usage);
        Ok(MemoryPolicy {
            monitor,
            quality,
            table,
            policy,
            budget,
            cpu_share: OnceLock::new(),
            pending_failures,
        })
    }

    /// Why the automatic memory source fell back, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.monitor.fallback_reason.as_deref()
    }

    /// The tier frames are compared at now; `None` for full resolution.
    pub fn tier(&mut self) -> Option<&Tier> {
        let index = match self.quality {
            CompareQuality::Full => return None,
            CompareQuality::High => 0,
            CompareQuality::Medium => 1,
            CompareQuality::Low => 2,
            CompareQuality::Adaptive => {
                let usage = self.monitor.latest().usage;
                self.policy.update(usage, Instant::now());
                self.policy.current()
            }
        };
        Some(&self.table.0[index])
    }

    /// The working-memory budget for the next batch, in bytes (0 = unlimited): the
    /// `memory-budget` property, or else what the GPU (or simulated GPU) has free minus a
    /// margin, or on the CPU an equal share of half the available RAM among the instances
    /// of the process that score there.
    pub fn budget(&self, on_gpu: bool) -> u64 {
        if self.budget > 0 {
            return self.budget;
        }
        let reading = self.monitor.latest();
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

    #[test]
    fn cpu_budget_is_half_the_available_ram() {
        let b = cpu_budget();
        assert!(b > 0, "/proc/meminfo has MemAvailable on Linux");
    }

    fn policy(source: SourceKind, sim: &SimulatedUsage) -> MemoryPolicy {
        MemoryPolicy::new(
            source,
            0,
            sim.clone(),
            CompareQuality::Full,
            &TierTable::default().to_string(),
            0,
            Arc::default(),
        )
        .unwrap()
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
        let p = MemoryPolicy::new(
            SourceKind::Simulated,
            0,
            sim.clone(),
            CompareQuality::Full,
            &TierTable::default().to_string(),
            0,
            Arc::default(),
        )
        .unwrap();
        sim.set(0.5);
        let half = p.budget(false);
        assert_eq!(half, (8u64 << 30) - margin(16 << 30));
        sim.set(0.99);
        assert_eq!(p.budget(false), MIN_AUTO_BUDGET);
    }
}
