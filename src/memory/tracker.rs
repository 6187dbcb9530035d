//! The quality tier of one GPU over time: its memory monitor, the tier table, the policy
//! with hysteresis and dwell, and the latest reading. Both elements follow GPU memory
//! through one of these.

use std::time::Instant;

use super::tiers::{Thresholds, Tier, TierPolicy, TierTable};
use super::{Monitor, Reading};

pub struct TierTracker {
    monitor: Monitor,
    table: TierTable,
    policy: TierPolicy,
    reading: Reading,
}

impl TierTracker {
    /// Starts at the tier the monitor's current reading selects, with no history.
    pub fn new(monitor: Monitor, table: TierTable, thresholds: Thresholds) -> Result<Self, String> {
        thresholds.validate()?;
        let reading = monitor.latest();
        let mut policy = TierPolicy::new(thresholds);
        policy.reset(reading.usage);
        Ok(TierTracker {
            monitor,
            table,
            policy,
            reading,
        })
    }

    /// Takes a fresh reading at `now`; returns the new tier's index when it changed.
    pub fn update(&mut self, now: Instant) -> Option<usize> {
        self.reading = self.monitor.latest();
        self.policy.update(self.reading.usage, now)
    }

    /// The current tier.
    pub fn tier(&self) -> &Tier {
        &self.table.0[self.policy.current()]
    }

    pub fn table(&self) -> &TierTable {
        &self.table
    }

    /// The latest reading (as of the last [`update`](Self::update), or the start).
    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// A reading fresher than the tier's: the monitor's latest now.
    pub fn latest(&self) -> Reading {
        self.monitor.latest()
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::memory::{SimulatedUsage, SourceKind};

    fn tracker(sim: &SimulatedUsage, thresholds: Thresholds) -> TierTracker {
        let monitor = Monitor::open(
            SourceKind::Simulated,
            0,
            Duration::from_secs(1),
            sim.clone(),
        )
        .unwrap();
        TierTracker::new(monitor, TierTable::default(), thresholds).unwrap()
    }

    #[test]
    fn starts_at_the_tier_of_the_first_reading() {
        let sim = SimulatedUsage::default();
        sim.set(0.95);
        let t = tracker(&sim, Thresholds::default());
        assert_eq!(t.tier().name, "low");
        assert_eq!(t.reading().usage, 0.95);
    }

    #[test]
    fn follows_user_thresholds_down_at_once_and_up_after_the_dwell() {
        let sim = SimulatedUsage::default();
        let thresholds = Thresholds {
            warning: 0.3,
            critical: 0.6,
            hysteresis: 0.1,
            min_dwell: Duration::from_secs(5),
        };
        let mut t = tracker(&sim, thresholds);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(t.tier().name, "high");
        // 0.4 is under the default warning (0.8) but over this one.
        sim.set(0.4);
        assert_eq!(t.update(at(0)), Some(1));
        assert_eq!(t.tier().name, "medium");
        assert_eq!(t.reading().usage, 0.4);
        sim.set(0.7);
        assert_eq!(t.update(at(1)), Some(2));
        // Below critical − hysteresis (0.5) for the whole dwell before stepping up.
        sim.set(0.45);
        assert_eq!(t.update(at(2)), None);
        assert_eq!(t.update(at(6)), None);
        assert_eq!(t.update(at(7)), Some(1));
        assert_eq!(t.tier().name, "medium");
    }

    #[test]
    fn inconsistent_thresholds_are_refused() {
        let monitor = Monitor::open(
            SourceKind::None,
            0,
            Duration::from_secs(1),
            SimulatedUsage::default(),
        )
        .unwrap();
        let bad = Thresholds {
            warning: 0.9,
            critical: 0.5,
            ..Thresholds::default()
        };
        let e = TierTracker::new(monitor, TierTable::default(), bad).err();
        assert!(e.is_some_and(|e| e.contains("critical-threshold")));
    }
}
