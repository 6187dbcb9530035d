//! Which pairs are scored: every `subsample`-th one, and in live pipelines none that
//! scoring reaches more than `max-lateness` after its running time. Both properties can
//! change while playing, so they live in atomics shared with the scoring thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// `max-lateness` default: automatic.
pub const AUTO_MAX_LATENESS: i64 = -1;
/// The automatic `max-lateness` of live pipelines, in ns.
pub const LIVE_MAX_LATENESS: i64 = 1_000_000_000;

#[derive(Debug)]
struct Shared {
    subsample: AtomicU32,
    max_lateness: AtomicI64,
    /// Whether upstream is live, and its minimum latency in ns (set when the element goes
    /// to PLAYING): a live frame is due at its running time plus that latency.
    live: AtomicBool,
    latency: AtomicU64,
}

/// The pacing settings, shared between the element and its scoring thread.
#[derive(Clone, Debug)]
pub struct Pacing(Arc<Shared>);

impl Default for Pacing {
    fn default() -> Self {
        Pacing(Arc::new(Shared {
            subsample: AtomicU32::new(1),
            max_lateness: AtomicI64::new(AUTO_MAX_LATENESS),
            live: AtomicBool::new(false),
            latency: AtomicU64::new(0),
        }))
    }
}

/// What to do with a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Score,
    /// Not one of every `subsample`-th pairs.
    Subsampled,
    /// Scoring reached it this many ns after its running time, over the limit.
    Late(u64),
}

impl Pacing {
    pub fn subsample(&self) -> u32 {
        self.0.subsample.load(Ordering::Relaxed)
    }

    pub fn set_subsample(&self, n: u32) {
        self.0.subsample.store(n.max(1), Ordering::Relaxed);
    }

    pub fn max_lateness(&self) -> i64 {
        self.0.max_lateness.load(Ordering::Relaxed)
    }

    pub fn set_max_lateness(&self, ns: i64) {
        self.0.max_lateness.store(ns, Ordering::Relaxed);
    }

    pub fn set_live(&self, live: bool, latency: u64) {
        self.0.live.store(live, Ordering::Relaxed);
        self.0.latency.store(latency, Ordering::Relaxed);
    }

    /// The lateness over which pairs are skipped, in ns: `None` never skips. Only live
    /// pipelines skip; others hold upstream back instead.
    pub fn limit(&self) -> Option<u64> {
        if !self.0.live.load(Ordering::Relaxed) {
            return None;
        }
        match self.max_lateness() {
            AUTO_MAX_LATENESS => Some(LIVE_MAX_LATENESS as u64),
            n if n > 0 => Some(n as u64),
            _ => None,
        }
    }

    /// Pair `frame` (its index in the stream), with the running time `now` and the pair's
    /// running time `at`, when both are known. Lateness counts from when the frame was due:
    /// its running time plus the pipeline's latency.
    pub fn judge(&self, frame: u64, now: Option<u64>, at: Option<u64>) -> Verdict {
        if !frame.is_multiple_of(self.subsample().max(1) as u64) {
            return Verdict::Subsampled;
        }
        if let (Some(limit), Some(now), Some(at)) = (self.limit(), now, at) {
            let late = now.saturating_sub(at + self.0.latency.load(Ordering::Relaxed));
            if late > limit {
                return Verdict::Late(late);
            }
        }
        Verdict::Score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn every_nth_pair_is_scored() {
        let p = Pacing::default();
        p.set_subsample(3);
        let scored: Vec<u64> = (0..10)
            .filter(|&f| p.judge(f, None, None) == Verdict::Score)
            .collect();
        assert_eq!(scored, [0, 3, 6, 9]);
    }

    #[test]
    fn only_live_pipelines_skip_late_pairs() {
        let p = Pacing::default();
        assert_eq!(p.judge(0, Some(10 * S), Some(0)), Verdict::Score);
        p.set_live(true, 0);
        assert_eq!(p.judge(0, Some(10 * S), Some(0)), Verdict::Late(10 * S));
        // Latency is not lateness.
        p.set_live(true, 2 * S);
        assert_eq!(p.judge(0, Some(3 * S), Some(0)), Verdict::Score);
        assert_eq!(p.judge(0, Some(10 * S), Some(0)), Verdict::Late(8 * S));
        p.set_live(true, 0);
        assert_eq!(p.judge(0, Some(S), Some(S / 2)), Verdict::Score);
        p.set_max_lateness(S as i64 / 4);
        assert_eq!(p.judge(0, Some(S), Some(S / 2)), Verdict::Late(S / 2));
        // 0 turns skipping off; unknown times are never late.
        p.set_max_lateness(0);
        assert_eq!(p.judge(0, Some(10 * S), Some(0)), Verdict::Score);
        p.set_max_lateness(AUTO_MAX_LATENESS);
        assert_eq!(p.judge(0, None, Some(0)), Verdict::Score);
    }
}
