//! The internal sink behind each `comparesink` pad: a `BaseSink` (so prerolling, clock
//! sync, live sources and EOS behave as in any sink) that hands its frames to the session.

use std::sync::Arc;

use gst::glib;
use gst::subclass::prelude::*;

use super::pairing::Side;
use super::session::Session;

mod imp;

glib::wrapper! {
    pub struct CompareInput(ObjectSubclass<imp::CompareInput>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

impl CompareInput {
    pub fn new(side: Side) -> Self {
        let input: CompareInput = glib::Object::builder()
            .property("name", format!("{}-input", side.name()))
            .property("sync", false)
            .property("enable-last-sample", false)
            .build();
        input.imp().set_side(side);
        input
    }

    /// Connects the input to a running session, or disconnects it (`None`).
    pub fn set_session(&self, session: Option<Arc<Session>>) {
        self.imp().set_session(session);
    }
}

/// The caps both pads accept.
pub fn caps() -> gst::Caps {
    use gst_video::VideoFormat::*;
    gst_video::VideoCapsBuilder::new()
        .format_list([
            Gray8, Gray16Le, I420, Yv12, Nv12, Nv21, Y42b, Y444, Rgb, Bgr, Rgba, Bgra, Rgbx, Bgrx,
            Argb, Abgr, Xrgb, Xbgr,
        ])
        .build()
}
