//! GPU memory (VRAM) monitoring and the quality-tier policy. GStreamer-free.
//!
//! A [`Monitor`] reads one GPU's memory usage from a [`Source`]: NVML (device-wide,
//! other processes included), the CUDA runtime's view, a simulated value, or none.
//! Real sources are polled by a background thread, so reading the latest value never
//! blocks a streaming thread for long. The [`tiers`] module turns usage into a quality
//! tier, with hysteresis.

pub mod cuda;
mod sources;
pub mod tiers;
mod tracker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use sources::{SIMULATED_TOTAL_BYTES, nvml_status};
pub use tracker::TierTracker;

/// Where memory readings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// NVML, then libtorch's CUDA view, then none: the first that works.
    #[default]
    Auto,
    Nvml,
    Cuda,
    Simulated,
    None,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Auto => "auto",
            SourceKind::Nvml => "nvml",
            SourceKind::Cuda => "cuda",
            SourceKind::Simulated => "simulated",
            SourceKind::None => "none",
        }
    }
}

/// One reading of one GPU's memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// (total − free) / total, in [0, 1]; 0 when nothing is known.
    pub usage: f64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// The source that produced it (never `Auto`).
    pub source: SourceKind,
}

impl Reading {
    pub fn from_free_total(free: u64, total: u64, source: SourceKind) -> Reading {
        let used = total.saturating_sub(free);
        Reading {
            usage: if total == 0 {
                0.0
            } else {
                used as f64 / total as f64
            },
            used_bytes: used,
            free_bytes: free.min(total),
            total_bytes: total,
            source,
        }
    }

    fn none() -> Reading {
        Reading::from_free_total(0, 0, SourceKind::None)
    }
}

/// A simulated usage value that tests, demos and users without a GPU set directly.
#[derive(Clone, Debug, Default)]
pub struct SimulatedUsage(Arc<AtomicU64>);

impl SimulatedUsage {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, usage: f64) {
        self.0
            .store(usage.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
}

/// Why a requested source cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Memory readings of one GPU.
pub struct Monitor {
    kind: SourceKind,
    simulated: SimulatedUsage,
    latest: Arc<Mutex<Reading>>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
    /// Why `Auto` did not use a better source (to log once), if it fell back.
    pub fallback_reason: Option<String>,
}

impl Monitor {
    /// Opens `kind` for GPU `device`, polled every `interval`. `Auto` falls back quietly
    /// (see `fallback_reason`); an explicit source that is unavailable is an error.
    pub fn open(
        kind: SourceKind,
        device: u32,
        interval: Duration,
        simulated: SimulatedUsage,
    ) -> Result<Monitor, Unavailable> {
        let mut fallback_reason = None;
        let resolved: Box<dyn sources::Source> = match kind {
            SourceKind::Simulated => Box::new(sources::Simulated(simulated.clone())),
            SourceKind::None => Box::new(sources::NoSource),
            SourceKind::Nvml => Box::new(sources::Nvml::open(device)?),
            SourceKind::Cuda => Box::new(sources::Cuda::open(device)?),
            SourceKind::Auto => match sources::Nvml::open(device) {
                Ok(s) => Box::new(s),
                Err(nvml) => match sources::Cuda::open(device) {
                    Ok(s) => {
                        fallback_reason = Some(format!("{nvml}; using libtorch's CUDA view"));
                        Box::new(s)
                    }
                    Err(cuda) => {
                        fallback_reason = Some(format!("{nvml}; {cuda}; no GPU memory readings"));
                        Box::new(sources::NoSource)
                    }
                },
            },
        };
        let kind = resolved.kind();
        let latest = Arc::new(Mutex::new(resolved.read().unwrap_or_else(Reading::none)));
        let stop = Arc::new(AtomicBool::new(false));
        // Simulated and absent sources are read directly; real ones by a poller.
        let poller = if matches!(kind, SourceKind::Nvml | SourceKind::Cuda) {
            let (latest, stop) = (latest.clone(), stop.clone());
            let interval = interval.max(Duration::from_millis(1));
            Some(
                std::thread::Builder::new()
                    .name("vram-monitor".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::park_timeout(interval);
                            if let Some(r) = resolved.read() {
                                *latest.lock().unwrap_or_else(|e| e.into_inner()) = r;
                            }
                        }
                    })
                    .map_err(|e| Unavailable(format!("cannot start the monitor thread: {e}")))?,
            )
        } else {
            None
        };
        Ok(Monitor {
            kind,
            simulated,
            latest,
            stop,
            poller,
            fallback_reason,
        })
    }

    /// The source in use (never `Auto`).
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The latest reading.
    pub fn latest(&self) -> Reading {
        match self.kind {
            SourceKind::Simulated => sources::Simulated(self.simulated.clone()).reading(),
            _ => *self.latest.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.poller.take() {
            p.thread().unpark();
            let _ = p.join();
        }
    }
}

/// A "kB" field of a /proc file (`/proc/meminfo`, `/proc/self/status`) in bytes.
pub fn proc_kb_field(path: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// One GPU as NVML sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuReading {
    /// NVML's index.
    pub index: u32,
    /// PCI bus id, as NVML writes it.
    pub bus_id: String,
    pub reading: Reading,
}

/// Every GPU NVML sees (empty without NVML).
pub fn all_devices() -> Vec<GpuReading> {
    sources::Nvml::all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_in_bytes() {
        assert!(proc_kb_field("/proc/meminfo", "MemTotal").is_some_and(|b| b > 1 << 20));
        assert_eq!(proc_kb_field("/proc/meminfo", "NoSuchField"), None);
        assert_eq!(proc_kb_field("/nonexistent", "MemTotal"), None);
    }

    #[test]
    fn usage_from_free_and_total() {
        let r = Reading::from_free_total(25, 100, SourceKind::Nvml);
        assert_eq!((r.usage, r.used_bytes, r.free_bytes), (0.75, 75, 25));
        assert_eq!(Reading::from_free_total(5, 0, SourceKind::None).usage, 0.0);
    }

    #[test]
    fn simulated_source_follows_its_value_at_once() {
        let sim = SimulatedUsage::default();
        let m = Monitor::open(
            SourceKind::Simulated,
            0,
            Duration::from_secs(10),
            sim.clone(),
        )
        .unwrap();
        assert_eq!(m.kind(), SourceKind::Simulated);
        sim.set(0.85);
        let r = m.latest();
        assert_eq!(r.usage, 0.85);
        assert_eq!(r.total_bytes, SIMULATED_TOTAL_BYTES);
        assert_eq!(r.source, SourceKind::Simulated);
        sim.set(7.0);
        assert_eq!(m.latest().usage, 1.0);
    }

    #[test]
    fn auto_falls_back_without_failing() {
        // On a machine without NVML or a GPU this is `none`, with a reason to log once;
        // on a GPU machine it is NVML.
        let m = Monitor::open(
            SourceKind::Auto,
            0,
            Duration::from_millis(50),
            SimulatedUsage::default(),
        )
        .unwrap();
        match m.kind() {
            SourceKind::Nvml => assert!(m.fallback_reason.is_none()),
            SourceKind::Cuda | SourceKind::None => assert!(m.fallback_reason.is_some()),
            other => panic!("auto resolved to {other:?}"),
        }
        let r = m.latest();
        assert!((0.0..=1.0).contains(&r.usage));
    }

    #[test]
    fn explicit_nvml_works_exactly_when_nvml_is_there() {
        let m = Monitor::open(
            SourceKind::Nvml,
            0,
            Duration::from_secs(1),
            SimulatedUsage::default(),
        );
        match nvml_status() {
            Ok(_) => assert_eq!(m.map(|m| m.kind()).ok(), Some(SourceKind::Nvml)),
            // No libnvidia-ml.so.1, no driver or no GPU: a clear error, not a panic.
            Err(_) => assert!(m.err().is_some_and(|e| e.0.contains("NVML"))),
        }
    }
}
