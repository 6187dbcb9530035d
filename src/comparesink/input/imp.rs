use std::sync::{Arc, Mutex, OnceLock};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::super::CAT;
use super::super::pairing::Side;
use super::super::session::{Frame, Refused, Session};

#[derive(Default)]
pub struct CompareInput {
    side: OnceLock<Side>,
    session: Mutex<Option<Arc<Session>>>,
    info: Mutex<Option<gst_video::VideoInfo>>,
}

impl CompareInput {
    pub(super) fn set_side(&self, side: Side) {
        let _ = self.side.set(side);
    }

    fn side(&self) -> Side {
        *self.side.get().unwrap_or(&Side::Reference)
    }

    pub(super) fn set_session(&self, session: Option<Arc<Session>>) {
        if let (Some(s), Some(info)) = (
            &session,
            self.info.lock().unwrap_or_else(|e| e.into_inner()).as_ref(),
        ) {
            s.set_frame_duration(self.side(), frame_duration(info));
        }
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = session;
    }

    fn session(&self) -> Option<Arc<Session>> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Nominal frame duration from the caps' frame rate, in ns.
fn frame_duration(info: &gst_video::VideoInfo) -> Option<u64> {
    let fps = info.fps();
    (fps.numer() > 0 && fps.denom() > 0).then(|| {
        gst::ClockTime::SECOND
            .nseconds()
            .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
            .unwrap_or(0)
    })
}

#[glib::object_subclass]
impl ObjectSubclass for CompareInput {
    const NAME: &'static str = "GstCompareSinkInput";
    type Type = super::CompareInput;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for CompareInput {}
impl GstObjectImpl for CompareInput {}

impl ElementImpl for CompareInput {
    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
            std::sync::LazyLock::new(|| {
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &super::caps(),
                    )
                    .expect("static pad template"),
                ]
            });
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for CompareInput {
    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let caps = super::offered_caps(filter);
        gst::trace!(CAT, imp = self, "offering {caps} for {filter:?}");
        Some(caps)
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid {} caps {caps}", self.side().name()))?;
        gst::debug!(CAT, imp = self, "{} caps {caps}", self.side().name());
        if let Some(s) = self.session() {
            s.set_frame_duration(self.side(), frame_duration(&info));
        }
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
        Ok(())
    }

    /// Every buffer passes here first, the preroll buffer too: the stall diagnosis counts
    /// a frame held for preroll as data.
    fn prepare(&self, _buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if let Some(s) = self.session() {
            s.note_data(self.side());
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(session) = self.session() else {
            return Err(gst::FlowError::Flushing);
        };
        let Some(info) = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let pts = buffer.pts();
        let running_time = segment.zip(pts).and_then(|(s, pts)| s.to_running_time(pts));
        let end = segment
            .zip(pts.opt_add(buffer.duration()))
            .and_then(|(s, end)| s.to_running_time(end));
        let duration = running_time
            .zip(end)
            .map(|(start, end)| end.nseconds().saturating_sub(start.nseconds()));
        gst::log!(
            CAT,
            imp = self,
            "{} frame pts {pts:?} running time {running_time:?}",
            self.side().name()
        );
        let frame = || Frame {
            buffer: buffer.clone(),
            info: info.clone(),
            pts: pts.map(|t| t.nseconds()),
            running_time: running_time.map(|t| t.nseconds()),
        };
        loop {
            match session.push(self.side(), frame(), duration) {
                Ok(()) => return Ok(gst::FlowSuccess::Ok),
                Err(Refused::Flushing) => return Err(gst::FlowError::Flushing),
                Err(Refused::Failed) => return Err(gst::FlowError::Error),
                Err(Refused::Unlocked) => {
                    // PLAYING to PAUSED while waiting for room: wait for PLAYING (or a
                    // flush) as base sinks do, then queue the same frame.
                    gst::debug!(
                        CAT,
                        imp = self,
                        "{} unlocked while waiting, waiting for preroll",
                        self.side().name()
                    );
                    match self.obj().wait_preroll()? {
                        gst::FlowSuccess::Ok => {}
                        other => return Ok(other),
                    }
                }
            }
        }
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Eos(_) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "{} reached end of stream",
                    self.side().name()
                );
                if let Some(s) = self.session() {
                    s.eos(self.side());
                }
            }
            gst::EventView::FlushStart(_) => {
                if let Some(s) = self.session() {
                    s.set_flushing(self.side(), true);
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(s) = self.session() {
                    s.flush(self.side());
                    s.set_flushing(self.side(), false);
                }
            }
            _ => {}
        }
        self.parent_event(event)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.session() {
            s.set_unlocked(self.side(), true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.session() {
            s.set_unlocked(self.side(), false);
        }
        Ok(())
    }
}
