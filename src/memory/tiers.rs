//! Quality tiers: a table of three boxes with JPEG-quality hints, the policy that picks
//! one from memory usage (stepping down at once, back up with hysteresis and a dwell
//! time), and the size a frame gets inside a tier's box.

use std::fmt;
use std::time::{Duration, Instant};

/// One tier: frames are fitted inside `width`×`height`; `quality` is a JPEG-quality hint
/// for encoders downstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub quality: u32,
}

/// Three tiers, highest quality first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierTable(pub [Tier; 3]);

impl Default for TierTable {
    /// The original system's tiers: 1024×1024 q95, 800×800 q85, 512×512 q75.
    fn default() -> Self {
        let t = |name: &str, side, quality| Tier {
            name: name.into(),
            width: side,
            height: side,
            quality,
        };
        TierTable([t("high", 1024, 95), t("medium", 800, 85), t("low", 512, 75)])
    }
}

impl fmt::Display for TierTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|t| format!("{}:{}x{}:{}", t.name, t.width, t.height, t.quality))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl std::str::FromStr for TierTable {
    type Err = String;

    /// Parses `name:WIDTHxHEIGHT:quality,…`: exactly three tiers, highest first.
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected three tiers as name:WIDTHxHEIGHT:quality, highest first, \
                        e.g. high:1920x1080:95,medium:1280x720:85,low:640x360:75";
        let tiers = s
            .split(',')
            .map(|part| {
                let fields: Vec<&str> = part.trim().split(':').collect();
                let [name, size, quality] = fields[..] else {
                    return Err(format!("'{part}' is not name:WIDTHxHEIGHT:quality"));
                };
                let (w, h) = size
                    .split_once(['x', 'X'])
                    .ok_or_else(|| format!("'{size}' in '{part}' is not WIDTHxHEIGHT"))?;
                let dim = |v: &str| match v.trim().parse::<u32>() {
                    Ok(n) if (2..=32768).contains(&n) => Ok(n),
                    _ => Err(format!("'{v}' in '{part}' is not a size from 2 to 32768")),
                };
                let quality = match quality.trim().parse::<u32>() {
                    Ok(q) if (1..=100).contains(&q) => q,
                    _ => {
                        return Err(format!(
                            "quality '{quality}' in '{part}' is not from 1 to 100"
                        ));
                    }
                };
                if name.trim().is_empty() {
                    return Err(format!("'{part}' has no name"));
                }
                Ok(Tier {
                    name: name.trim().to_string(),
                    width: dim(w)?,
                    height: dim(h)?,
                    quality,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| format!("{e}: {expected}"))?;
        let tiers: [Tier; 3] = tiers
            .try_into()
            .map_err(|v: Vec<Tier>| format!("{} tiers given: {expected}", v.len()))?;
        for pair in tiers.windows(2) {
            if pair[1].width > pair[0].width || pair[1].height > pair[0].height {
                return Err(format!(
                    "tier '{}' is larger than '{}' before it: {expected}",
                    pair[1].name, pair[0].name
                ));
            }
        }
        Ok(TierTable(tiers))
    }
}

/// When the policy switches tiers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Usage above this selects the middle tier.
    pub warning: f64,
    /// Usage above this selects the lowest tier.
    pub critical: f64,
    /// Stepping back up needs usage below the threshold minus this…
    pub hysteresis: f64,
    /// …for at least this long.
    pub min_dwell: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning: 0.8,
            critical: 0.9,
            hysteresis: 0.05,
            min_dwell: Duration::from_secs(1),
        }
    }
}

impl Thresholds {
    /// Checks that the thresholds make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.warning >= self.critical || self.warning.is_nan() || self.critical.is_nan() {
            return Err(format!(
                "warning-threshold ({}) must be below critical-threshold ({})",
                self.warning, self.critical
            ));
        }
        if self.hysteresis >= self.warning {
            return Err(format!(
                "hysteresis ({}) must be below warning-threshold ({})",
                self.hysteresis, self.warning
            ));
        }
        Ok(())
    }

    /// The tier usage selects with no history: 0 high, 1 medium, 2 low.
    pub fn tier_for(&self, usage: f64) -> usize {
        if usage > self.critical {
            2
        } else if usage > self.warning {
            1
        } else {
            0
        }
    }
}

/// Picks the tier from successive usage readings.
#[derive(Debug)]
pub struct TierPolicy {
    thresholds: Thresholds,
    current: usize,
    /// Since when usage has been low enough to step up.
    calm_since: Option<Instant>,
}

impl TierPolicy {
    pub fn new(thresholds: Thresholds) -> Self {
        TierPolicy {
            thresholds,
            current: 0,
            calm_since: None,
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    /// Starts at the tier `usage` selects, with no history.
    pub fn reset(&mut self, usage: f64) -> usize {
        self.current = self.thresholds.tier_for(usage);
        self.calm_since = None;
        self.current
    }

    /// Feeds one reading; returns the new tier when it changed.
    pub fn update(&mut self, usage: f64, now: Instant) -> Option<usize> {
        let target = self.thresholds.tier_for(usage);
        if target > self.current {
            // Memory is filling: step down at once.
            self.current = target;
            self.calm_since = None;
            return Some(target);
        }
        // Stepping up needs usage below the threshold minus the hysteresis, for the dwell
        // time without interruption.
        let up = self.thresholds.tier_for(usage + self.thresholds.hysteresis);
        if up >= self.current {
            self.calm_since = None;
            return None;
        }
        let since = *self.calm_since.get_or_insert(now);
        if now.duration_since(since) < self.thresholds.min_dwell {
            return None;
        }
        self.current = up;
        self.calm_since = None;
        Some(up)
    }
}

/// The size of a `width`×`height` frame with pixel aspect ratio `par` fitted inside a
/// `box_w`×`box_h` box: display aspect ratio kept (the pixel aspect ratio stays the same),
/// never upscaled, dimensions rounded down to multiples of `align` (chroma subsampling).
pub fn fit(
    width: u32,
    height: u32,
    par: (i32, i32),
    box_w: u32,
    box_h: u32,
    align: (u32, u32),
) -> (u32, u32) {
    let (pn, pd) = (par.0.max(1) as f64, par.1.max(1) as f64);
    let display_w = width as f64 * pn / pd;
    let scale = (box_w as f64 / display_w)
        .min(box_h as f64 / height as f64)
        .min(1.0);
    if scale >= 1.0 {
        return (width, height);
    }
    let round = |v: f64, a: u32| {
        let a = a.max(1);
        (((v.round() as u32) / a) * a).max(a)
    };
    (
        round(width as f64 * scale, align.0),
        round(height as f64 * scale, align.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_round_trips() {
        let t = TierTable::default();
        assert_eq!(
            t.to_string(),
            "high:1024x1024:95,medium:800x800:85,low:512x512:75"
        );
        assert_eq!(t.to_string().parse::<TierTable>().unwrap(), t);
        let custom: TierTable = "high:1920x1080:95,medium:1280x720:85,low:640x360:75"
            .parse()
            .unwrap();
        assert_eq!(custom.0[1].width, 1280);
        assert_eq!(custom.0[2].quality, 75);
    }

    #[test]
    fn bad_tables_are_errors() {
        for bad in [
            "",
            "high:1920x1080:95",
            "high:1920x1080:95,medium:1280x720:85",
            "high:1920x1080:95,medium:1280x720:85,low:640x360:75,extra:2x2:1",
            "high:1920x1080:95,medium:1280-720:85,low:640x360:75",
            "high:1920x1080:95,medium:1280x720:101,low:640x360:75",
            "high:1920x1080:95,medium:1280x720,low:640x360:75",
            "high:0x1080:95,medium:1280x720:85,low:640x360:75",
            "high:640x360:95,medium:1280x720:85,low:640x360:75",
            ":1920x1080:95,medium:1280x720:85,low:640x360:75",
        ] {
            let e = bad.parse::<TierTable>().unwrap_err();
            assert!(e.contains("expected three tiers"), "{bad}: {e}");
        }
    }

    #[test]
    fn tier_at_each_threshold() {
        let t = Thresholds::default();
        assert_eq!(t.tier_for(0.0), 0);
        assert_eq!(t.tier_for(0.8), 0);
        assert_eq!(t.tier_for(0.8001), 1);
        assert_eq!(t.tier_for(0.9), 1);
        assert_eq!(t.tier_for(0.9001), 2);
        assert_eq!(t.tier_for(1.0), 2);
        assert!(
            Thresholds {
                warning: 0.9,
                critical: 0.8,
                ..t
            }
            .validate()
            .is_err()
        );
        assert!(
            Thresholds {
                hysteresis: 0.85,
                ..t
            }
            .validate()
            .is_err()
        );
        assert!(t.validate().is_ok());
    }

    #[test]
    fn steps_down_at_once_and_up_after_the_dwell() {
        let mut p = TierPolicy::new(Thresholds::default());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(p.update(0.5, at(0)), None);
        assert_eq!(p.update(0.95, at(10)), Some(2));
        // 0.87 is below critical but not below critical − hysteresis (0.85): stay low.
        assert_eq!(p.update(0.87, at(20)), None);
        assert_eq!(p.update(0.87, at(5000)), None);
        // Below 0.85: medium, after one second.
        assert_eq!(p.update(0.84, at(5010)), None);
        assert_eq!(p.update(0.84, at(5500)), None);
        assert_eq!(p.update(0.84, at(6010)), Some(1));
        // Far below: high after another second.
        assert_eq!(p.update(0.3, at(6020)), None);
        assert_eq!(p.update(0.3, at(7020)), Some(0));
    }

    #[test]
    fn jitter_around_a_threshold_does_not_flap() {
        let mut p = TierPolicy::new(Thresholds::default());
        let t0 = Instant::now();
        let mut changes = Vec::new();
        // Usage jitters ±3 % around the warning threshold every 10 ms for 10 s.
        for i in 0..1000u64 {
            let usage = if i % 2 == 0 { 0.83 } else { 0.77 };
            if let Some(t) = p.update(usage, t0 + Duration::from_millis(10 * i)) {
                changes.push(t);
            }
        }
        assert_eq!(
            changes,
            vec![1],
            "one step down, never back up while it jitters"
        );
        // Once it settles below 0.75 it steps up after the dwell, once.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(p.update(0.7, t1), None);
        assert_eq!(p.update(0.7, t1 + Duration::from_millis(999)), None);
        assert_eq!(p.update(0.7, t1 + Duration::from_millis(1000)), Some(0));
    }

    #[test]
    fn a_brief_calm_restarts_the_dwell() {
        let mut p = TierPolicy::new(Thresholds::default());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(p.update(0.85, at(0)), Some(1));
        assert_eq!(p.update(0.5, at(100)), None);
        assert_eq!(p.update(0.82, at(600)), None); // back above 0.75: the dwell restarts
        assert_eq!(p.update(0.5, at(700)), None);
        assert_eq!(p.update(0.5, at(1600)), None);
        assert_eq!(p.update(0.5, at(1700)), Some(0));
    }

    #[test]
    fn fitting_keeps_the_aspect_ratio_and_never_upscales() {
        assert_eq!(fit(3840, 2160, (1, 1), 1024, 1024, (2, 2)), (1024, 576));
        assert_eq!(fit(1080, 1920, (1, 1), 1024, 1024, (2, 2)), (576, 1024));
        assert_eq!(fit(640, 480, (1, 1), 1024, 1024, (2, 2)), (640, 480));
        // Odd sizes round down to the chroma alignment.
        assert_eq!(fit(1001, 999, (1, 1), 512, 512, (2, 2)), (512, 510));
        assert_eq!(fit(1001, 999, (1, 1), 512, 512, (1, 1)), (512, 511));
        // Anamorphic 720×576 with PAR 64:45 displays as 1024×576: the display size fits.
        assert_eq!(fit(720, 576, (64, 45), 1024, 1024, (2, 2)), (720, 576));
        assert_eq!(fit(720, 576, (64, 45), 512, 512, (2, 2)), (360, 288));
    }
}
