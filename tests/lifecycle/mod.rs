//! A pipeline watched from its bus's sync handler, for the lifecycle scenarios: what it
//! posted, collected while it runs, without a main loop.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::prelude::*;

#[derive(Default)]
pub struct Posted {
    pub pairs: Vec<gst::Structure>,
    pub summary: Option<gst::Structure>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub eos: bool,
}

impl Posted {
    /// The `frame` numbers of the pairs posted.
    pub fn frames(&self) -> Vec<u64> {
        self.pairs.iter().map(|s| u64_field(s, "frame")).collect()
    }
}

pub struct Watched {
    pub pipeline: gst::Pipeline,
    posted: Arc<Mutex<Posted>>,
}

impl Watched {
    /// Parses `desc`, whose comparesink is named `c`. `on_pair` runs in the scoring thread
    /// for each `similarity` message, with the element (to change it as it runs).
    pub fn launch(
        desc: &str,
        on_pair: impl Fn(&gst::Element, &gst::StructureRef) + Send + Sync + 'static,
    ) -> Self {
        crate::common::init();
        let pipeline = gst::parse::launch(desc)
            .expect("pipeline parses")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let posted = Arc::new(Mutex::new(Posted::default()));
        let sink = pipeline.by_name("c").expect("comparesink named c");
        let p = posted.clone();
        pipeline
            .bus()
            .expect("bus")
            .set_sync_handler(move |_, msg| {
                let lock = || p.lock().unwrap_or_else(|e| e.into_inner());
                match msg.view() {
                    gst::MessageView::Element(e) => {
                        if let Some(s) = e.structure() {
                            match s.name().as_str() {
                                "similarity" => {
                                    on_pair(&sink, s);
                                    lock().pairs.push(s.to_owned());
                                }
                                "similarity-summary" => lock().summary = Some(s.to_owned()),
                                _ => {}
                            }
                        }
                    }
                    gst::MessageView::Warning(w) => lock().warnings.push(format!(
                        "{} ({})",
                        w.error(),
                        w.debug().unwrap_or_default()
                    )),
                    gst::MessageView::Error(e) => lock().errors.push(format!(
                        "{} ({})",
                        e.error(),
                        e.debug().unwrap_or_default()
                    )),
                    gst::MessageView::Eos(_) => lock().eos = true,
                    _ => {}
                }
                gst::BusSyncReply::Drop
            });
        Watched { pipeline, posted }
    }

    pub fn posted(&self) -> MutexGuard<'_, Posted> {
        self.posted.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pairs(&self) -> usize {
        self.posted().pairs.len()
    }

    /// Polls until `done` holds, at most `timeout`.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Posted) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            {
                let p = self.posted();
                if done(&p) || !p.errors.is_empty() {
                    return done(&p);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Plays until end of stream (at most `timeout`), which must come without an error.
    pub fn play_to_eos(&self, timeout: Duration) {
        self.go(gst::State::Playing).expect("plays");
        assert!(self.wait_until(timeout, |p| p.eos), "reaches EOS");
        let p = self.posted();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }

    /// Plays until 10 pairs are posted, pauses, seeks to `target` with a flush while
    /// paused (the pipeline must preroll again), plays until 10 more pairs, and stops.
    /// Returns the pairs posted.
    pub fn seek_while_paused(&self, target: gst::ClockTime) -> Vec<gst::Structure> {
        self.go(gst::State::Playing).expect("plays");
        assert!(self.wait_until(Duration::from_secs(10), |p| p.pairs.len() >= 10));
        self.go(gst::State::Paused).expect("pauses");
        self.pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, target)
            .expect("seeks");
        let (result, _, _) = self.pipeline.state(gst::ClockTime::from_seconds(5));
        assert_eq!(
            result,
            Ok(gst::StateChangeSuccess::Success),
            "prerolls again"
        );
        let before = self.pairs();
        self.go(gst::State::Playing).expect("plays again");
        assert!(self.wait_until(Duration::from_secs(10), |p| p.pairs.len() >= before + 10));
        self.go(gst::State::Null).expect("stops");
        let p = self.posted();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.pairs.clone()
    }

    /// Changes state and waits for it (at most 5 s); the result of `get_state`.
    pub fn go(&self, state: gst::State) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        self.pipeline.set_state(state)?;
        let (result, current, pending) = self.pipeline.state(gst::ClockTime::from_seconds(5));
        if result.is_ok() && pending == gst::State::VoidPending {
            assert_eq!(current, state, "{state:?} reached");
        }
        result
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A field of a message as u64 (frame numbers, times).
pub fn u64_field(s: &gst::StructureRef, name: &str) -> u64 {
    s.get::<u64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}
