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

/// The YUV and grey formats both pads accept, in order of preference.
fn yuv_and_gray_formats() -> Vec<gst_video::VideoFormat> {
    use gst_video::VideoFormat::*;
    vec![
        I420, Yv12, Nv12, Nv21, Y42b, Y444, I42010le, I42210le, Y44410le, P01010le, I42012le,
        Y44412le, Gray8, Gray16Le,
    ]
}

/// Every format both pads accept: YUV and grey first, then RGB.
fn all_formats() -> Vec<gst_video::VideoFormat> {
    use gst_video::VideoFormat::*;
    let mut formats = yuv_and_gray_formats();
    formats.extend([Rgb, Bgr, Rgba, Bgra, Rgbx, Bgrx, Argb, Abgr, Xrgb, Xbgr]);
    formats
}

/// The caps both pads accept (the pad templates).
pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(all_formats())
        .build()
}

/// One structure per format, in order: an intersection in upstream's order (a capsfilter's)
/// keeps our order then, since it walks our structures within each of upstream's.
fn one_structure_each(formats: impl IntoIterator<Item = gst_video::VideoFormat>) -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    let list = caps.make_mut();
    for format in formats {
        list.append(gst_video::VideoCapsBuilder::new().format(format).build());
    }
    caps
}

/// What a pad offers upstream for `filter` (what upstream can produce): the YUV and grey
/// formats alone, in our order, whenever upstream can produce one of them, so that a
/// converter keeps its input's YUV format (its least-loss choice) and a test source picks
/// I420 rather than its first, RGB, format; RGB only when upstream produces nothing else.
pub fn offered_caps(filter: Option<&gst::Caps>) -> gst::Caps {
    let Some(filter) = filter else {
        return one_structure_each(all_formats());
    };
    let preferred = one_structure_each(yuv_and_gray_formats())
        .intersect_with_mode(filter, gst::CapsIntersectMode::First);
    if preferred.is_empty() {
        one_structure_each(all_formats()).intersect_with_mode(filter, gst::CapsIntersectMode::First)
    } else {
        preferred
    }
}
