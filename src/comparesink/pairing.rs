//! Pairs reference and distorted frames by running time. GStreamer-free.
//!
//! For each reference frame, the distorted frame that covers its start is its partner: a
//! distorted frame with a duration covers `[start, start + duration)`; one without covers
//! half a frame duration either side of its start (the frame duration comes from the
//! caps, or else from the gap to the previous frame). A distorted frame may serve several
//! reference frames (a lower frame rate); one that serves none is counted as unpaired, and
//! so is a reference frame that no distorted frame covers. Frames without timestamps are
//! paired in arrival order.

use std::collections::VecDeque;

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
        let window = start.map(|start| {
            let known = duration.filter(|d| *d > 0);
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
            // Distorted frames that end before this reference frame starts are done.
            while let Some(d) = dists.front() {
                match d.window {
                    Some((_, hi)) if hi <= rs => {
                        if !d.used {
                            out.push(Outcome::UnpairedDistorted);
                        }
                        dists.pop_front();
                    }
                    _ => break,
                }
            }
            match dists.front_mut() {
                Some(d) if d.window.is_none_or(|(lo, _)| lo <= rs) => {
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
                    // The first distorted frame starts after this one: nothing covers it.
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
