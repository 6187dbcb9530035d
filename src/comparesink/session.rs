//! The state one running `comparesink` shares between its two inputs and its scoring
//! thread: the pairing queues, the pairs waiting to be scored, and the flags that stop
//! everyone. One mutex and one condition variable; nothing blocks while holding the lock
//! except `Condvar::wait`.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::CAT;
use super::pairing::{Outcome, Pairer, Side};

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
    /// Both inputs reached end of stream: post the summary.
    Finish,
}

/// Why an input's push did not go through.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Flushing,
    Failed,
}

struct State {
    pairer: Pairer<Frame>,
    pending: VecDeque<Job>,
    unpaired: [u64; 2],
    flushing: [bool; 2],
    stopping: bool,
    failed: bool,
    finish_queued: bool,
    finished: bool,
}

pub struct Session {
    state: Mutex<State>,
    changed: Condvar,
    /// Pairs waiting to be scored before the inputs are held back.
    max_pending: usize,
}

impl Session {
    pub fn new(batch_size: usize) -> Self {
        Session {
            state: Mutex::new(State {
                pairer: Pairer::default(),
                pending: VecDeque::new(),
                unpaired: [0; 2],
                flushing: [false; 2],
                stopping: false,
                failed: false,
                finish_queued: false,
                finished: false,
            }),
            changed: Condvar::new(),
            max_pending: 2 * batch_size.max(1),
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

    /// Queues a frame, waiting while the side's queue or the scoring backlog is full.
    pub fn push(&self, side: Side, frame: Frame, duration: Option<u64>) -> Result<(), Refused> {
        let mut st = self.lock();
        loop {
            if st.stopping || st.flushing[side as usize] {
                return Err(Refused::Flushing);
            }
            if st.failed {
                return Err(Refused::Failed);
            }
            if st.pairer.queued(side) < MAX_QUEUED_FRAMES && st.pending.len() < self.max_pending {
                break;
            }
            st = self.wait(st);
        }
        let start = frame.running_time;
        st.pairer.push(side, frame, start, duration);
        Self::resolve(&mut st);
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    fn resolve(st: &mut State) {
        for outcome in st.pairer.resolve() {
            match outcome {
                Outcome::Pair {
                    reference,
                    distorted,
                } => {
                    gst::log!(
                        CAT,
                        "paired reference at {:?} ns with distorted at {:?} ns",
                        reference.running_time,
                        distorted.running_time
                    );
                    st.pending.push_back(Job::Pair(Box::new(Pair {
                        reference,
                        distorted,
                    })))
                }
                Outcome::UnpairedReference => {
                    gst::debug!(CAT, "a reference frame has no distorted frame covering it");
                    st.unpaired[0] += 1;
                }
                Outcome::UnpairedDistorted => {
                    gst::debug!(
                        CAT,
                        "a distorted frame was not paired with any reference frame"
                    );
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
        Self::resolve(&mut st);
        self.changed.notify_all();
        if !st.finish_queued {
            return;
        }
        while !(st.finished || st.stopping || st.failed || st.flushing[side as usize]) {
            st = self.wait(st);
        }
    }

    pub fn set_flushing(&self, side: Side, flushing: bool) {
        self.lock().flushing[side as usize] = flushing;
        self.changed.notify_all();
    }

    /// Forgets a side's queued frames after a flush; a new stream starts.
    pub fn flush(&self, side: Side) {
        let mut st = self.lock();
        st.pairer.flush(side);
        st.finish_queued = false;
        st.finished = false;
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

    /// Waits for work: up to `batch` pairs (fewer only before a `Finish`), or a `Finish`
    /// alone. `None` once the session stops.
    pub fn next_jobs(&self, batch: usize) -> Option<Vec<Job>> {
        let mut st = self.lock();
        loop {
            if st.stopping {
                return None;
            }
            let ready =
                st.pending.len() >= batch || st.pending.iter().any(|j| matches!(j, Job::Finish));
            if ready && !st.pending.is_empty() {
                break;
            }
            st = self.wait(st);
        }
        let mut jobs = Vec::with_capacity(batch);
        if matches!(st.pending.front(), Some(Job::Finish)) {
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
}
