//! The state one running `comparesink` shares between its two inputs and its scoring
//! thread: the pairing queues, the pairs waiting to be scored, when each side last had
//! data, and the flags that stop everyone. One mutex and one condition variable; nothing
//! blocks while holding the lock except `Condvar::wait`.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::pairing::{Outcome, Pairer, Side};
use super::{CAT, CompareSink};

/// Frames a side may queue while it waits for the other side (backpressure beyond this).
pub const MAX_QUEUED_FRAMES: usize = 16;

/// A frame as the inputs hand it over.
#[derive(Clone, Debug)]
pub struct Frame {
    pub buffer: gst::Buffer,
    pub info: gst_video::VideoInfo,
    pub pts: Option<u64>,
    pub running_time: Option<u64>,
}

/// A reference frame and the distorted frame paired with it.
pub struct Pair {
    pub reference: Frame,
    pub distorted: Frame,
}

/// Work for the scoring thread, in stream order.
pub enum Job {
    Pair(Box<Pair>),
    /// An input was flushed: the stream starts again (VMAF's motion restarts).
    Restart,
    /// Both inputs reached end of stream: post the summary.
    Finish,
}

/// Why an input's push did not go through.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Flushing,
    Failed,
    /// The input's base sink asked its render to return (PLAYING to PAUSED): the frame
    /// was not queued; wait for preroll, then push it again.
    Unlocked,
}

struct State {
    pairer: Pairer<Frame>,
    pending: VecDeque<Job>,
    unpaired: [u64; 2],
    /// Between FLUSH_START and FLUSH_STOP.
    flushing: [bool; 2],
    /// Between the base sink's `unlock` and `unlock_stop`.
    unlocked: [bool; 2],
    stopping: bool,
    failed: bool,
    finish_queued: bool,
    finished: bool,
    /// When each side last had a frame (queued, or held for preroll).
    arrived: [Option<Instant>; 2],
    /// Whether a stall of each side was already reported.
    stall_reported: [bool; 2],
    /// Whether each side is waiting in `push` for room.
    waiting: [bool; 2],
}

pub struct Session {
    state: Mutex<State>,
    changed: Condvar,
    /// Pairs waiting to be scored before the inputs are held back.
    max_pending: usize,
    /// The element the pairing logs for.
    element: glib::WeakRef<CompareSink>,
    started: Instant,
}

impl Session {
    pub fn new(batch_size: usize, element: &CompareSink) -> Self {
        Session {
            state: Mutex::new(State {
                pairer: Pairer::default(),
                pending: VecDeque::new(),
                unpaired: [0; 2],
                flushing: [false; 2],
                unlocked: [false; 2],
                stopping: false,
                failed: false,
                finish_queued: false,
                finished: false,
                arrived: [None; 2],
                stall_reported: [false; 2],
                waiting: [false; 2],
            }),
            changed: Condvar::new(),
            max_pending: 2 * batch_size.max(1),
            element: element.downgrade(),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the streaming threads down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_frame_duration(&self, side: Side, duration: Option<u64>) {
        self.lock().pairer.set_frame_duration(side, duration);
    }

    /// Queues a frame, waiting while the side's queue or the scoring backlog is full. A
    /// wait ends without queueing when the input is unlocked (`Refused::Unlocked`).
    pub fn push(&self, side: Side, frame: Frame, duration: Option<u64>) -> Result<(), Refused> {
        let mut st = self.lock();
        Self::note_arrival(&mut st, side);
        let refused = loop {
            if st.stopping || st.flushing[side as usize] {
                break Some(Refused::Flushing);
            }
            if st.failed {
                break Some(Refused::Failed);
            }
            if st.pairer.queued(side) < MAX_QUEUED_FRAMES && st.pending.len() < self.max_pending {
                break None;
            }
            if st.unlocked[side as usize] {
                break Some(Refused::Unlocked);
            }
            // A side waiting here has data: it is not the silent one of a stall.
            st.waiting[side as usize] = true;
            st = self.wait(st);
        };
        st.waiting[side as usize] = false;
        if let Some(refused) = refused {
            return Err(refused);
        }
        let start = frame.running_time;
        st.pairer.push(side, frame, start, duration);
        self.resolve(&mut st);
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    fn note_arrival(st: &mut State, side: Side) {
        st.arrived[side as usize] = Some(Instant::now());
        st.stall_reported[side as usize] = false;
    }

    /// A side has a frame before it is queued (held for preroll).
    pub fn note_data(&self, side: Side) {
        Self::note_arrival(&mut self.lock(), side);
    }

    fn resolve(&self, st: &mut State) {
        let element = self.element.upgrade();
        for outcome in st.pairer.resolve() {
            match outcome {
                Outcome::Pair {
                    reference,
                    distorted,
                } => {
                    if let Some(element) = &element {
                        gst::log!(
                            CAT,
                            obj = element,
                            "paired reference at {:?} ns with distorted at {:?} ns",
                            reference.running_time,
                            distorted.running_time
                        );
                    }
                    st.pending.push_back(Job::Pair(Box::new(Pair {
                        reference,
                        distorted,
                    })))
                }
                Outcome::UnpairedReference => {
                    if let Some(element) = &element {
                        gst::debug!(
                            CAT,
                            obj = element,
                            "a reference frame has no distorted frame covering it"
                        );
                    }
                    st.unpaired[0] += 1;
                }
                Outcome::UnpairedDistorted => {
                    if let Some(element) = &element {
                        gst::debug!(
                            CAT,
                            obj = element,
                            "a distorted frame was not paired with any reference frame"
                        );
                    }
                    st.unpaired[1] += 1;
                }
            }
        }
        if st.pairer.is_eos(Side::Reference)
            && st.pairer.is_eos(Side::Distorted)
            && !st.finish_queued
        {
            st.finish_queued = true;
            st.pending.push_back(Job::Finish);
        }
    }

    /// A side reached end of stream. Once both have, waits until the summary is posted
    /// (so that it comes before the sink's EOS), unless the session stops or fails first.
    pub fn eos(&self, side: Side) {
        let mut st = self.lock();
        st.pairer.set_eos(side);
        self.resolve(&mut st);
        self.changed.notify_all();
        if !st.finish_queued {
            return;
        }
        while !(st.finished || st.stopping || st.failed || st.flushing[side as usize]) {
            st = self.wait(st);
        }
    }

    /// FLUSH_START (true) and FLUSH_STOP (false): pushes are refused while flushing.
    pub fn set_flushing(&self, side: Side, flushing: bool) {
        self.lock().flushing[side as usize] = flushing;
        self.changed.notify_all();
    }

    /// The base sink's `unlock` (true) and `unlock_stop` (false): a blocked push returns so
    /// that the render can wait for preroll; unlike a flush, nothing is dropped.
    pub fn set_unlocked(&self, side: Side, unlocked: bool) {
        self.lock().unlocked[side as usize] = unlocked;
        self.changed.notify_all();
    }

    /// Forgets a side's queued frames after a flush; a new stream starts.
    pub fn flush(&self, side: Side) {
        let mut st = self.lock();
        st.pairer.flush(side);
        st.finish_queued = false;
        st.finished = false;
        if !matches!(st.pending.back(), Some(Job::Restart)) {
            st.pending.push_back(Job::Restart);
        }
        self.changed.notify_all();
    }

    /// Wakes and stops everyone: inputs return flushing, the scoring thread exits.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.changed.notify_all();
    }

    /// The scoring thread gave up (the error is already on the bus).
    pub fn fail(&self) {
        self.lock().failed = true;
        self.changed.notify_all();
    }

    /// The scoring thread posted the summary.
    pub fn mark_finished(&self) {
        self.lock().finished = true;
        self.changed.notify_all();
    }

    pub fn unpaired(&self) -> [u64; 2] {
        self.lock().unpaired
    }

    /// Waits for work: up to `batch` pairs (fewer only before a `Restart` or `Finish`), or
    /// a `Restart` or `Finish` alone; an empty list when `timeout` passes first. `None`
    /// once the session stops.
    pub fn next_jobs(&self, batch: usize, timeout: Duration) -> Option<Vec<Job>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if st.stopping {
                return None;
            }
            let ready =
                st.pending.len() >= batch || st.pending.iter().any(|j| !matches!(j, Job::Pair(_)));
            if ready && !st.pending.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(Vec::new());
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let mut jobs = Vec::with_capacity(batch);
        if !matches!(st.pending.front(), Some(Job::Pair(_))) {
            jobs.extend(st.pending.pop_front());
        } else {
            while jobs.len() < batch && matches!(st.pending.front(), Some(Job::Pair(_))) {
                jobs.extend(st.pending.pop_front());
            }
        }
        drop(st);
        self.changed.notify_all();
        Some(jobs)
    }

    /// A side that has had no frame for `after` while the other side has had one since
    /// (or ever, when the silent side never had any), not yet reported and not at end of
    /// stream. Reported once per stall: the side's next frame ends it.
    pub fn new_stall(&self, after: Duration) -> Option<Side> {
        let mut st = self.lock();
        let now = Instant::now();
        for side in [Side::Reference, Side::Distorted] {
            let (s, o) = (side as usize, side.other() as usize);
            if st.stall_reported[s] || st.waiting[s] || st.pairer.is_eos(side) {
                continue;
            }
            let silent_since = st.arrived[s].unwrap_or(self.started);
            // `None < Some`: the other side had a frame later, or ever when this one never.
            let other_since = st.arrived[o] > st.arrived[s];
            if other_since && now.duration_since(silent_since) >= after {
                st.stall_reported[s] = true;
                return Some(side);
            }
        }
        None
    }
}
