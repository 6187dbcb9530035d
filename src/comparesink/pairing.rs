//! Pairs reference and distorted frames by running time. GStreamer-free.
//!
//! For each reference frame, the distorted frame that covers its start is its partner: a
//! distorted frame with a duration covers `[start, start + duration)`; one without covers
//! half a frame duration either side of its start (the frame duration comes from the
//! caps, or else from the gap to the previous frame). A distorted frame may serve several
//! reference frames (a lower frame rate); one that serves none is counted as unpaired, and
//! so is a reference frame that no distorted frame covers. Frames without timestamps are
//! paired in arrival order.
//!
//! Containers round timestamps (Matroska and WebM to 1 ms): 12 fps frames stored at 0, 83,
//! 167 ms, with durations rounded too, leave gaps or overlaps of a millisecond around an
//! exactly timed reference frame (166.67 ms). So for frames with a duration, a distorted
//! frame that starts within [`ROUNDING_SLACK`] after a reference frame's start is its
//! partner, and one that ends within the slack before it still covers it (but the last).

use std::collections::VecDeque;

/// How far a timestamp may be off by container rounding (Matroska's 1 ms).
pub const ROUNDING_SLACK: u64 = 1_000_000;

/// Which input a frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Reference = 0,
    Distorted = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Reference => Side::Distorted,
            Side::Distorted => Side::Reference,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Reference => "reference",
            Side::Distorted => "distorted",
        }
    }
}

/// What resolving the queues produced, in order.
#[derive(Debug, PartialEq)]
pub enum Outcome<T> {
    Pair { reference: T, distorted: T },
    UnpairedReference,
    UnpairedDistorted,
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    /// Running time this frame starts at (reference) or the window it covers (distorted);
    /// `None` for frames without a timestamp.
    window: Option<(u64, u64)>,
    /// How far the window's edges may be off: [`ROUNDING_SLACK`] for a window from the
    /// frame's own duration, 0 for one derived from the frame rate (those have no gaps).
    slack: u64,
    used: bool,
}

/// The two input queues and the pairing rule.
#[derive(Debug)]
pub struct Pairer<T> {
    queues: [VecDeque<Entry<T>>; 2],
    eos: [bool; 2],
    frame_duration: [Option<u64>; 2],
    last_start: [Option<u64>; 2],
}

impl<T> Default for Pairer<T> {
    fn default() -> Self {
        Pairer {
            queues: [VecDeque::new(), VecDeque::new()],
            eos: [false; 2],
            frame_duration: [None; 2],
            last_start: [None; 2],
        }
    }
}

impl<T: Clone> Pairer<T> {
    /// The nominal frame duration of a side (from its caps), used for frames that carry
    /// no duration.
    pub fn set_frame_duration(&mut self, side: Side, duration: Option<u64>) {
        self.frame_duration[side as usize] = duration.filter(|d| *d > 0);
    }

    /// Frames waiting on a side.
    pub fn queued(&self, side: Side) -> usize {
        self.queues[side as usize].len()
    }

    pub fn is_eos(&self, side: Side) -> bool {
        self.eos[side as usize]
    }

    /// Queues a frame starting at running time `start` (ns), lasting `duration` (ns).
    pub fn push(&mut self, side: Side, item: T, start: Option<u64>, duration: Option<u64>) {
        let s = side as usize;
        let known = duration.filter(|d| *d > 0);
        let window = start.map(|start| {
            let gap = self.last_start[s]
                .and_then(|prev| start.checked_sub(prev))
                .filter(|g| *g > 0);
            match (known, self.frame_duration[s].or(gap)) {
                (Some(d), _) => (start, start.saturating_add(d)),
                (None, Some(d)) => (
                    start.saturating_sub(d / 2),
                    start.saturating_add(d.div_ceil(2)),
                ),
                (None, None) => (start, start.saturating_add(1)),
            }
        });
        if start.is_some() {
            self.last_start[s] = start;
        }
        self.queues[s].push_back(Entry {
            item,
            window,
            slack: if known.is_some() { ROUNDING_SLACK } else { 0 },
            used: false,
        });
    }

    /// Marks a side as finished: frames still waiting for it get resolved.
    pub fn set_eos(&mut self, side: Side) {
        self.eos[side as usize] = true;
    }

    /// Forgets a side's frames and end of stream (after a flush).
    pub fn flush(&mut self, side: Side) {
        let s = side as usize;
        self.queues[s].clear();
        self.eos[s] = false;
        self.last_start[s] = None;
    }

    /// Pairs what can be paired now.
    pub fn resolve(&mut self) -> Vec<Outcome<T>> {
        let mut out = Vec::new();
        let [refs, dists] = &mut self.queues;
        let [ref_eos, dist_eos] = self.eos;
        while let Some(r) = refs.front() {
            let Some((rs, _)) = r.window else {
                // No timestamp: arrival order.
                match dists.pop_front() {
                    Some(d) => out.push(pair(refs, d.item)),
                    None if dist_eos => {
                        refs.pop_front();
                        out.push(Outcome::UnpairedReference);
                    }
                    None => break,
                }
                continue;
            };
            // Distorted frames that end before this reference frame starts (by more than
            // their rounding) are done.
            while let Some(d) = dists.front() {
                match d.window {
                    Some((_, hi)) if hi.saturating_add(d.slack) <= rs => {
                        if !d.used {
                            out.push(Outcome::UnpairedDistorted);
                        }
                        dists.pop_front();
                    }
                    _ => break,
                }
            }
            // A later frame that starts by this one's start (within its rounding) is the
            // partner: the frames before it are done.
            while let Some(Some((lo, _))) = dists.get(1).map(|n| n.window)
                && lo <= rs.saturating_add(dists[1].slack)
            {
                if dists.front().is_some_and(|d| !d.used) {
                    out.push(Outcome::UnpairedDistorted);
                }
                dists.pop_front();
            }
            // The front frame ends within its rounding of this start: the next frame may
            // yet start there. Wait for it, or for the end of the stream.
            let ends_near = |d: &Entry<T>| {
                d.window
                    .is_some_and(|(_, hi)| hi <= rs.saturating_add(d.slack))
            };
            if dists.len() == 1 && !dist_eos && dists.front().is_some_and(ends_near) {
                break;
            }
            let more = dists.len() > 1;
            match dists.front_mut() {
                Some(d)
                    if d.window.is_none_or(|(lo, hi)| {
                        lo <= rs.saturating_add(d.slack) && (rs < hi || more)
                    }) =>
                {
                    if d.window.is_none() {
                        let d = dists.pop_front().map(|d| d.item);
                        out.extend(d.map(|d| pair(refs, d)));
                    } else {
                        d.used = true;
                        let item = d.item.clone();
                        out.push(pair(refs, item));
                    }
                }
                Some(_) => {
                    // Nothing covers this frame: the first distorted frame starts after it,
                    // or the distorted stream ended before it.
                    refs.pop_front();
                    out.push(Outcome::UnpairedReference);
                }
                None if dist_eos => {
                    refs.pop_front();
                    out.push(Outcome::UnpairedReference);
                }
                None => break,
            }
        }
        if ref_eos && refs.is_empty() {
            for d in dists.drain(..) {
                if !d.used {
                    out.push(Outcome::UnpairedDistorted);
                }
            }
        }
        out
    }
}

fn pair<T>(refs: &mut VecDeque<Entry<T>>, distorted: T) -> Outcome<T> {
    match refs.pop_front() {
        Some(r) => Outcome::Pair {
            reference: r.item,
            distorted,
        },
        None => Outcome::UnpairedDistorted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn pairs(out: &[Outcome<u32>]) -> Vec<(u32, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Pair {
                    reference,
                    distorted,
                } => Some((*reference, *distorted)),
                _ => None,
            })
            .collect()
    }

    fn count(out: &[Outcome<u32>], which: Outcome<u32>) -> usize {
        out.iter().filter(|o| **o == which).count()
    }

    /// Feeds both sides completely, then EOS, resolving after every push.
    fn run(
        reference: &[(u32, Option<u64>, Option<u64>)],
        distorted: &[(u32, Option<u64>, Option<u64>)],
    ) -> Vec<Outcome<u32>> {
        let mut p = Pairer::default();
        let mut out = Vec::new();
        let n = reference.len().max(distorted.len());
        for i in 0..n {
            if let Some(&(id, s, d)) = reference.get(i) {
                p.push(Side::Reference, id, s, d);
                out.extend(p.resolve());
            }
            if let Some(&(id, s, d)) = distorted.get(i) {
                p.push(Side::Distorted, id, s, d);
                out.extend(p.resolve());
            }
        }
        p.set_eos(Side::Reference);
        p.set_eos(Side::Distorted);
        out.extend(p.resolve());
        assert_eq!(p.queued(Side::Reference) + p.queued(Side::Distorted), 0);
        out
    }

    fn stream(n: u32, period: u64, duration: Option<u64>) -> Vec<(u32, Option<u64>, Option<u64>)> {
        (0..n)
            .map(|i| (i, Some(i as u64 * period), duration))
            .collect()
    }

    #[test]
    fn same_rate_pairs_one_to_one() {
        let out = run(
            &stream(5, 40 * MS, Some(40 * MS)),
            &stream(5, 40 * MS, Some(40 * MS)),
        );
        assert_eq!(pairs(&out), (0..5).map(|i| (i, i)).collect::<Vec<_>>());
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn lower_distorted_rate_reuses_frames() {
        // Reference at 30 fps, distorted at 15 fps.
        let out = run(
            &stream(6, 33 * MS, Some(33 * MS)),
            &stream(3, 66 * MS, Some(66 * MS)),
        );
        assert_eq!(
            pairs(&out),
            vec![(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]
        );
    }

    #[test]
    fn higher_distorted_rate_counts_skipped_frames() {
        // Reference at 25 fps, distorted at 50 fps: every other distorted frame is unused.
        let out = run(
            &stream(4, 40 * MS, Some(40 * MS)),
            &stream(8, 20 * MS, Some(20 * MS)),
        );
        assert_eq!(pairs(&out), vec![(0, 0), (1, 2), (2, 4), (3, 6)]);
        assert_eq!(count(&out, Outcome::UnpairedDistorted), 4);
    }

    #[test]
    fn shorter_distorted_stream_leaves_reference_unpaired() {
        let out = run(
            &stream(5, 40 * MS, Some(40 * MS)),
            &stream(3, 40 * MS, Some(40 * MS)),
        );
        assert_eq!(pairs(&out).len(), 3);
        assert_eq!(count(&out, Outcome::UnpairedReference), 2);
        let out = run(
            &stream(2, 40 * MS, Some(40 * MS)),
            &stream(5, 40 * MS, Some(40 * MS)),
        );
        assert_eq!(pairs(&out).len(), 2);
        assert_eq!(count(&out, Outcome::UnpairedDistorted), 3);
    }

    #[test]
    fn unknown_durations_use_half_a_frame() {
        let mut p = Pairer::default();
        p.set_frame_duration(Side::Distorted, Some(40 * MS));
        p.push(Side::Distorted, 0, Some(0), None);
        p.push(Side::Distorted, 1, Some(40 * MS), None);
        // 19 ms is within half a frame of distorted 0; 21 ms is nearer distorted 1.
        p.push(Side::Reference, 10, Some(19 * MS), None);
        p.push(Side::Reference, 11, Some(21 * MS), None);
        let out = p.resolve();
        assert_eq!(pairs(&out), vec![(10, 0), (11, 1)]);
    }

    #[test]
    fn untimed_frames_pair_in_arrival_order() {
        let out = run(
            &[(0, None, None), (1, None, None), (2, None, None)],
            &[(7, None, None), (8, None, None)],
        );
        assert_eq!(pairs(&out), vec![(0, 7), (1, 8)]);
        assert_eq!(count(&out, Outcome::UnpairedReference), 1);
    }

    #[test]
    fn distorted_starting_late_leaves_early_reference_unpaired() {
        let refs = stream(4, 40 * MS, Some(40 * MS));
        let dists: Vec<_> = (0..2)
            .map(|i| (i, Some((i as u64 + 2) * 40 * MS), Some(40 * MS)))
            .collect();
        let out = run(&refs, &dists);
        assert_eq!(pairs(&out), vec![(2, 0), (3, 1)]);
        assert_eq!(count(&out, Outcome::UnpairedReference), 2);
    }

    /// A stream's timestamps and durations as Matroska stores them: rounded to 1 ms.
    fn rounded(n: u32, period: f64) -> Vec<(u32, Option<u64>, Option<u64>)> {
        let ms = |t: f64| (t / MS as f64).round() as u64 * MS;
        (0..n)
            .map(|i| {
                let start = i as f64 * period;
                (i, Some(ms(start)), Some(ms(start + period) - ms(start)))
            })
            .collect()
    }

    #[test]
    fn timestamps_rounded_by_the_container_still_pair_one_to_one() {
        // 12 fps: exact in the reference, rounded to 1 ms in the distorted stream (0, 83,
        // 167, 250, ... with durations 83 or 84 ms), and the other way round.
        let period = 1e9 / 12.0;
        let exact: Vec<_> = (0..24)
            .map(|i| {
                let start = (i as f64 * period) as u64;
                (
                    i,
                    Some(start),
                    Some(((i + 1) as f64 * period) as u64 - start),
                )
            })
            .collect();
        let one_to_one: Vec<(u32, u32)> = (0..24).map(|i| (i, i)).collect();
        for (r, d) in [
            (&exact, &rounded(24, period)),
            (&rounded(24, period), &exact),
        ] {
            let out = run(r, d);
            assert_eq!(pairs(&out), one_to_one);
            assert_eq!(out.len(), 24, "nothing unpaired: {out:?}");
        }
        // 30000/1001 fps, both rounded differently (one stream starts 0.4 ms later).
        let period = 1e9 * 1001.0 / 30000.0;
        let late: Vec<_> = rounded(30, period)
            .into_iter()
            .map(|(i, s, d)| (i, s.map(|s| s + 400_000), d))
            .collect();
        assert_eq!(pairs(&run(&rounded(30, period), &late)).len(), 30);
    }

    #[test]
    fn the_slack_does_not_pair_frames_a_real_gap_apart() {
        // Distorted frames 2 ms apart from the reference frame's start on either side:
        // more than rounding, so the reference frame is unpaired.
        let out = run(
            &[(0, Some(10 * MS), Some(MS))],
            &[(0, Some(0), Some(8 * MS)), (1, Some(12 * MS), Some(8 * MS))],
        );
        assert_eq!(pairs(&out), vec![]);
        assert_eq!(count(&out, Outcome::UnpairedReference), 1);
        // Within the slack after the last frame's end: past the end of the stream.
        let out = run(
            &[(0, Some(8 * MS + 500_000), None)],
            &[(0, Some(0), Some(8 * MS))],
        );
        assert_eq!(pairs(&out), vec![]);
        // Within the slack of the next frame's start: that frame.
        let out = run(
            &[(0, Some(8 * MS + 500_000), None)],
            &[(0, Some(0), Some(8 * MS)), (1, Some(9 * MS), Some(8 * MS))],
        );
        assert_eq!(pairs(&out), vec![(0, 1)]);
        assert_eq!(count(&out, Outcome::UnpairedDistorted), 1);
    }

    #[test]
    fn waits_for_the_other_side() {
        let mut p = Pairer::default();
        p.push(Side::Reference, 0, Some(0), Some(10));
        assert!(p.resolve().is_empty());
        assert_eq!(p.queued(Side::Reference), 1);
        p.flush(Side::Reference);
        assert_eq!(p.queued(Side::Reference), 0);
    }
}
