//! Frames as the scoring engine sees them: mapping, conversion to a common format and
//! size (GStreamer's VideoConverter, cached), and the engine's view of a mapped frame.

use gst_video::prelude::*;

use crate::scoring::{ColorKind, Component, ImageView};

pub type Mapped = gst_video::VideoFrame<gst_video::video_frame::Readable>;

/// One cached converter per input side.
#[derive(Default)]
pub struct Converters {
    cached: [Option<(
        gst_video::VideoInfo,
        gst_video::VideoInfo,
        gst_video::VideoConverter,
    )>; 2],
}

impl Converters {
    /// Maps `buffer` and, unless it already is, converts it to `format` at `width`×`height`.
    /// `slot` keeps one converter per stream (0 reference, 1 distorted).
    pub fn map_as(
        &mut self,
        slot: usize,
        buffer: &gst::Buffer,
        info: &gst_video::VideoInfo,
        target: (&gst_video::VideoInfo, u32, u32),
    ) -> Result<Mapped, String> {
        let src = gst_video::VideoFrame::from_buffer_readable(buffer.clone(), info)
            .map_err(|_| "cannot map a buffer".to_string())?;
        let (like, width, height) = target;
        if info.format() == like.format() && info.width() == width && info.height() == height {
            return Ok(src);
        }
        let out_info = gst_video::VideoInfo::builder(like.format(), width, height)
            .fps(info.fps())
            .par(info.par())
            .interlace_mode(info.interlace_mode())
            .colorimetry(&like.colorimetry())
            .chroma_site(like.chroma_site())
            .build()
            .map_err(|e| format!("cannot describe the converted frame: {e}"))?;
        let cache = &mut self.cached[slot.min(1)];
        if !matches!(cache, Some((i, o, _)) if i == info && *o == out_info) {
            let mut config = gst_video::VideoConverterConfig::new();
            config.set_threads(std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
            let converter = gst_video::VideoConverter::new(info, &out_info, Some(config))
                .map_err(|e| format!("cannot convert {info:?} to {out_info:?}: {e}"))?;
            *cache = Some((info.clone(), out_info.clone(), converter));
        }
        let Some((_, _, converter)) = cache.as_ref() else {
            return Err("no converter".into());
        };
        let buffer = gst::Buffer::with_size(out_info.size()).map_err(|e| e.to_string())?;
        let mut dest = gst_video::VideoFrame::from_buffer_writable(buffer, &out_info)
            .map_err(|_| "cannot map the conversion buffer".to_string())?;
        converter.frame(&src, &mut dest);
        gst_video::VideoFrame::from_buffer_readable(dest.into_buffer(), &out_info)
            .map_err(|_| "cannot map the converted buffer".to_string())
    }
}

/// The engine's view of a mapped frame.
pub fn image_view(frame: &Mapped) -> Result<ImageView<'_>, String> {
    let finfo = frame.format_info();
    let kind = if finfo.is_gray() {
        ColorKind::Gray
    } else if finfo.is_rgb() {
        ColorKind::Rgb
    } else if finfo.is_yuv() {
        ColorKind::Yuv
    } else {
        return Err(format!("unsupported format {:?}", frame.format()));
    };
    let count = if kind == ColorKind::Gray { 1 } else { 3 };
    let components = (0..count)
        .map(|c| {
            Ok(Component {
                data: frame.comp_data(c).map_err(|e| e.to_string())?,
                offset: 0,
                stride: frame.comp_stride(c) as usize,
                pixel_stride: frame.comp_pstride(c) as usize,
                width: frame.comp_width(c) as usize,
                height: frame.comp_height(c) as usize,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ImageView {
        kind,
        depth: finfo.depth()[0],
        components,
    })
}
