//! Frames as the scoring engine sees them: a distorted frame brought to the reference's
//! format, size and colorimetry, and the engine's view of a mapped frame.
//!
//! A distorted frame with the reference's layout (colour model and chroma subsampling),
//! size, matrix, transfer, primaries and chroma siting is read as it is (no copy); a
//! different range or bit depth becomes an affine map of its samples, applied in float by
//! the engine. Anything else goes through GStreamer's `VideoConverter` (cached per
//! stream), which keeps the distorted range whenever it converts YUV to YUV: GStreamer
//! 1.22 leaves samples unchanged for a range-only change between YUV formats, so the range
//! is always the engine's job.

use gst_video::prelude::*;

use crate::scoring::{ColorKind, Component, ImageView, SampleMap};

pub type Mapped = gst_video::VideoFrame<gst_video::video_frame::Readable>;

/// A mapped frame and the maps that bring its samples to the reference's scale.
pub struct Prepared {
    pub frame: Mapped,
    pub maps: Option<[SampleMap; 3]>,
}

/// A converter for one input format, and the pool its output frames come from (so that
/// a stream's conversions reuse their buffers rather than allocate one per frame).
struct Conversion {
    input: gst_video::VideoInfo,
    output: gst_video::VideoInfo,
    converter: gst_video::VideoConverter,
    pool: gst::BufferPool,
}

impl Drop for Conversion {
    fn drop(&mut self) {
        // Frees the pool's idle buffers now; frames still out return to it and are freed.
        let _ = self.pool.set_active(false);
    }
}

/// A buffer pool of frames of `info`.
fn frame_pool(info: &gst_video::VideoInfo) -> Result<gst::BufferPool, String> {
    let caps = info
        .to_caps()
        .map_err(|e| format!("cannot describe the converted frame: {e}"))?;
    let size = u32::try_from(info.size()).map_err(|_| "the converted frame is too large")?;
    let pool = gst_video::VideoBufferPool::new().upcast::<gst::BufferPool>();
    let mut config = pool.config();
    config.set_params(Some(&caps), size, 2, 0);
    pool.set_config(config)
        .map_err(|e| format!("cannot configure the conversion buffer pool: {e}"))?;
    pool.set_active(true)
        .map_err(|e| format!("cannot start the conversion buffer pool: {e}"))?;
    Ok(pool)
}

/// One cached converter per slot (the two sides in the compared format, then the two
/// sides in RGB for a learned model), and the stream differences already reported.
#[derive(Default)]
pub struct Converters {
    cached: [Option<Conversion>; 4],
    /// The caps pair last looked at for differences, and the differences reported.
    last_compared: Option<(gst_video::VideoInfo, gst_video::VideoInfo)>,
    reported: Vec<String>,
}

fn color_kind(info: &gst_video::VideoInfo) -> Option<ColorKind> {
    let finfo = info.format_info();
    if finfo.is_gray() {
        Some(ColorKind::Gray)
    } else if finfo.is_rgb() {
        Some(ColorKind::Rgb)
    } else if finfo.is_yuv() {
        Some(ColorKind::Yuv)
    } else {
        None
    }
}

/// Whether the engine reads both formats' components alike: the same colour model and
/// the same subsampling of each component (I420, YV12, NV12, I420_10LE and P010 do).
fn same_layout(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let (fa, fb) = (a.format_info(), b.format_info());
    let n = fa.n_components().min(3) as usize;
    color_kind(a) == color_kind(b)
        && fa.n_components().min(3) == fb.n_components().min(3)
        && fa.w_sub()[..n] == fb.w_sub()[..n]
        && fa.h_sub()[..n] == fb.h_sub()[..n]
}

/// Whether two colorimetry values are known and differ. An unknown one (JPEG decoders
/// leave transfer and primaries unknown, caps colorimetry `1:4:0:0`) says nothing about
/// the samples: it is taken as the other stream's, and nothing is converted.
fn known_and_different<T: PartialEq>(a: T, b: T, unknown: T) -> bool {
    a != unknown && b != unknown && a != b
}

fn matrix_differs(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let unknown = gst_video::VideoColorMatrix::Unknown;
    known_and_different(a.colorimetry().matrix(), b.colorimetry().matrix(), unknown)
}

fn transfer_differs(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let unknown = gst_video::VideoTransferFunction::Unknown;
    known_and_different(
        a.colorimetry().transfer(),
        b.colorimetry().transfer(),
        unknown,
    )
}

fn primaries_differ(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let unknown = gst_video::VideoColorPrimaries::Unknown;
    known_and_different(
        a.colorimetry().primaries(),
        b.colorimetry().primaries(),
        unknown,
    )
}

fn siting_differs(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let unknown = gst_video::VideoChromaSite::empty();
    known_and_different(a.chroma_site(), b.chroma_site(), unknown)
}

/// Whether frames of `info` are read as they are against `like` at `width`×`height`, any
/// range or bit-depth difference mapped by the engine.
fn reads_in_place(
    info: &gst_video::VideoInfo,
    like: &gst_video::VideoInfo,
    width: u32,
    height: u32,
) -> bool {
    info.width() == width
        && info.height() == height
        && same_layout(info, like)
        && same_colour(info, like)
}

/// Whether the samples mean the same colours, the range aside.
fn same_colour(a: &gst_video::VideoInfo, b: &gst_video::VideoInfo) -> bool {
    let yuv = a.format_info().is_yuv() && b.format_info().is_yuv();
    !(yuv && (matrix_differs(a, b) || siting_differs(a, b))
        || transfer_differs(a, b)
        || primaries_differ(a, b))
}

/// The format colour conversions write: the reference's layout at 12 bits or more. Its
/// 8-bit matrix path is about a code off (BT.601 to BT.709 luma came out 1.1 codes low
/// against numpy and FFmpeg, 0.8 dB of PSNR); through 12 bits it is within 0.2 codes, and
/// the engine brings the samples to the reference's depth in float.
fn precise_format(like: &gst_video::VideoInfo) -> gst_video::VideoFormat {
    use gst_video::VideoFormat::*;
    let finfo = like.format_info();
    if finfo.depth()[0] >= 12 {
        return like.format();
    }
    match color_kind(like) {
        Some(ColorKind::Gray) => Gray16Le,
        Some(ColorKind::Yuv) => match (finfo.w_sub()[1], finfo.h_sub()[1]) {
            (1, 1) => I42012le,
            (1, 0) => I42212le,
            (0, 0) => Y44412le,
            _ => like.format(),
        },
        _ => like.format(),
    }
}

/// The maps taking samples of `from` to the range and bit depth of `to`, from GStreamer's
/// range offsets; `None` when they are the identity.
fn range_maps(from: &gst_video::VideoInfo, to: &gst_video::VideoInfo) -> Option<[SampleMap; 3]> {
    let (off_f, scale_f) = from.range_offsets(from.colorimetry().range());
    let (off_t, scale_t) = to.range_offsets(to.colorimetry().range());
    let maps: [SampleMap; 3] = std::array::from_fn(|c| {
        let gain = scale_t[c] as f64 / scale_f[c].max(1) as f64;
        SampleMap {
            gain: gain as f32,
            offset: (off_t[c] as f64 - off_f[c] as f64 * gain) as f32,
        }
    });
    let identity = maps.iter().all(|m| m.gain == 1.0 && m.offset == 0.0);
    (!identity).then_some(maps)
}

fn range_name(range: gst_video::VideoColorRange) -> &'static str {
    match range {
        gst_video::VideoColorRange::Range0_255 => "full",
        gst_video::VideoColorRange::Range16_235 => "limited",
        _ => "unknown",
    }
}

/// What differs between the distorted stream and the reference, as a sentence, or `None`.
pub fn differences(
    dist: &gst_video::VideoInfo,
    reference: &gst_video::VideoInfo,
) -> Option<String> {
    let (cd, cr) = (dist.colorimetry(), reference.colorimetry());
    let mut items = Vec::new();
    if dist.format() != reference.format() {
        items.push(format!(
            "format {} (reference {})",
            dist.format(),
            reference.format()
        ));
    }
    if (dist.width(), dist.height()) != (reference.width(), reference.height()) {
        items.push(format!(
            "size {}x{} (reference {}x{})",
            dist.width(),
            dist.height(),
            reference.width(),
            reference.height()
        ));
    }
    let both_yuv = dist.format_info().is_yuv() && reference.format_info().is_yuv();
    if cd.range() != cr.range() && color_kind(dist) != Some(ColorKind::Rgb) {
        items.push(format!(
            "range {} (reference {})",
            range_name(cd.range()),
            range_name(cr.range())
        ));
    }
    if both_yuv && matrix_differs(dist, reference) {
        items.push(format!(
            "matrix {:?} (reference {:?})",
            cd.matrix(),
            cr.matrix()
        ));
    }
    if transfer_differs(dist, reference) {
        items.push(format!(
            "transfer {:?} (reference {:?})",
            cd.transfer(),
            cr.transfer()
        ));
    }
    if primaries_differ(dist, reference) {
        items.push(format!(
            "primaries {:?} (reference {:?})",
            cd.primaries(),
            cr.primaries()
        ));
    }
    if both_yuv && siting_differs(dist, reference) {
        items.push(format!(
            "chroma siting {:?} (reference {:?})",
            dist.chroma_site(),
            reference.chroma_site()
        ));
    }
    if items.is_empty() {
        return None;
    }
    let direct = reads_in_place(dist, reference, reference.width(), reference.height());
    let mapped = cd.range() != cr.range()
        || dist.format_info().depth()[0] != reference.format_info().depth()[0];
    let how = match (direct, mapped) {
        (true, _) => {
            "its samples are mapped to the reference's range and bit depth as they are scored"
        }
        (false, true) => {
            "it is converted with GStreamer's VideoConverter, and its range and bit depth mapped as it is scored"
        }
        (false, false) => "it is converted with GStreamer's VideoConverter",
    };
    Some(format!(
        "The distorted stream differs from the reference: {}. It is compared in the \
         reference's format {} and colorimetry {}: {how}.",
        items.join(", "),
        reference.format(),
        cr
    ))
}

impl Converters {
    /// The differences between the two streams' caps, the first time they are seen. Only
    /// a new caps pair is looked at, not every frame.
    pub fn report(
        &mut self,
        dist: &gst_video::VideoInfo,
        reference: &gst_video::VideoInfo,
    ) -> Option<String> {
        if matches!(&self.last_compared, Some((d, r)) if d == dist && r == reference) {
            return None;
        }
        self.last_compared = Some((dist.clone(), reference.clone()));
        let text = differences(dist, reference)?;
        if self.reported.contains(&text) {
            return None;
        }
        self.reported.push(text.clone());
        Some(text)
    }

    /// Maps `buffer` and brings it to the format and colorimetry of `like` at
    /// `width`×`height`. `slot` keeps one converter per stream (0 reference, 1 distorted;
    /// 2 and 3 the same in a model's RGB).
    pub fn prepare(
        &mut self,
        slot: usize,
        buffer: &gst::Buffer,
        info: &gst_video::VideoInfo,
        target: (&gst_video::VideoInfo, u32, u32),
    ) -> Result<Prepared, String> {
        let src = gst_video::VideoFrame::from_buffer_readable(buffer.clone(), info)
            .map_err(|_| "cannot map a buffer".to_string())?;
        let (like, width, height) = target;
        if reads_in_place(info, like, width, height) {
            return Ok(Prepared {
                maps: range_maps(info, like),
                frame: src,
            });
        }
        // Through RGB the converter maps the range itself; between YUV (or grey) formats it
        // keeps this stream's range, and the engine maps it.
        let via_rgb =
            color_kind(info) == Some(ColorKind::Rgb) || color_kind(like) == Some(ColorKind::Rgb);
        let lc = like.colorimetry();
        let range = if via_rgb {
            lc.range()
        } else {
            info.colorimetry().range()
        };
        let format = if via_rgb || !same_colour(info, like) {
            precise_format(like)
        } else {
            like.format()
        };
        let out_info = gst_video::VideoInfo::builder(format, width, height)
            .fps(info.fps())
            .par(info.par())
            .interlace_mode(info.interlace_mode())
            .colorimetry(&gst_video::VideoColorimetry::new(
                range,
                lc.matrix(),
                lc.transfer(),
                lc.primaries(),
            ))
            .chroma_site(like.chroma_site())
            .build()
            .map_err(|e| format!("cannot describe the converted frame: {e}"))?;
        let cache = &mut self.cached[slot.min(3)];
        if !matches!(cache, Some(c) if c.input == *info && c.output == out_info) {
            let mut config = gst_video::VideoConverterConfig::new();
            config.set_threads(std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
            // Transfer and primaries are converted when they differ (the defaults leave
            // them; remapping the gamma otherwise would scale in linear light, unlike
            // FFmpeg and libvmaf), and no dither noise is added to the scored samples.
            if transfer_differs(info, &out_info) {
                config.set_gamma_mode(gst_video::VideoGammaMode::Remap);
            }
            if primaries_differ(info, &out_info) {
                config.set_primaries_mode(gst_video::VideoPrimariesMode::Fast);
            }
            config.set_dither_method(gst_video::VideoDitherMethod::None);
            let converter = gst_video::VideoConverter::new(info, &out_info, Some(config))
                .map_err(|e| format!("cannot convert {info:?} to {out_info:?}: {e}"))?;
            *cache = Some(Conversion {
                input: info.clone(),
                output: out_info.clone(),
                converter,
                pool: frame_pool(&out_info)?,
            });
        }
        let Some(Conversion {
            converter, pool, ..
        }) = cache.as_ref()
        else {
            return Err("no converter".into());
        };
        let buffer = pool
            .acquire_buffer(None)
            .map_err(|e| format!("cannot get a buffer for the converted frame: {e}"))?;
        let mut dest = gst_video::VideoFrame::from_buffer_writable(buffer, &out_info)
            .map_err(|_| "cannot map the conversion buffer".to_string())?;
        converter.frame(&src, &mut dest);
        let frame = gst_video::VideoFrame::from_buffer_readable(dest.into_buffer(), &out_info)
            .map_err(|_| "cannot map the converted buffer".to_string())?;
        Ok(Prepared {
            maps: range_maps(&out_info, like),
            frame,
        })
    }
}

/// The engine's view of a prepared frame.
pub fn image_view(prepared: &Prepared) -> Result<ImageView<'_>, String> {
    let frame = &prepared.frame;
    let finfo = frame.format_info();
    let kind = color_kind(frame.info())
        .ok_or_else(|| format!("unsupported format {:?}", frame.format()))?;
    let count = if kind == ColorKind::Gray { 1 } else { 3 };
    let components = (0..count)
        .map(|c| {
            Ok(Component {
                data: frame.comp_data(c).map_err(|e| e.to_string())?,
                offset: two_byte_offset_fix(finfo, c as usize),
                stride: frame.comp_stride(c) as usize,
                pixel_stride: frame.comp_pstride(c) as usize,
                width: frame.comp_width(c) as usize,
                height: frame.comp_height(c) as usize,
                shift: finfo.shift()[c as usize],
                map: prepared.maps.map(|m| m[c as usize]),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ImageView {
        kind,
        depth: finfo.depth()[0],
        components,
    })
}

/// Bytes to add to GStreamer's offset of a component. GStreamer 1.22 places P010's V
/// sample 1 byte into its 4-byte U/V pair, as NV12's (its own packing code does not use
/// that offset); two-byte samples start on even bytes, so it is 2.
fn two_byte_offset_fix(finfo: gst_video::VideoFormatInfo, c: usize) -> usize {
    let poffset = finfo.poffset()[c] as usize;
    if finfo.bits() > 8 && poffset % 2 == 1 {
        poffset
    } else {
        0
    }
}

/// The names of the compared planes, for per-plane fields: y, u, v or r, g, b.
pub fn plane_names(kind: ColorKind) -> &'static [&'static str] {
    match kind {
        ColorKind::Gray => &["y"],
        ColorKind::Yuv => &["y", "u", "v"],
        ColorKind::Rgb => &["r", "g", "b"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p010_chroma_samples_start_on_even_bytes() {
        gst::init().unwrap();
        let p010 = gst_video::VideoFormatInfo::from_format(gst_video::VideoFormat::P01010le);
        let corrected: Vec<usize> = (0..3)
            .map(|c| p010.poffset()[c] as usize + two_byte_offset_fix(p010, c))
            .collect();
        assert_eq!(corrected, [0, 0, 2]);
        let nv12 = gst_video::VideoFormatInfo::from_format(gst_video::VideoFormat::Nv12);
        assert_eq!(two_byte_offset_fix(nv12, 2), 0);
    }

    #[test]
    fn converted_frames_reuse_their_buffers() {
        gst::init().unwrap();
        let reference = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 64, 48)
            .build()
            .unwrap();
        let rgb = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, 64, 48)
            .build()
            .unwrap();
        let buffer = gst::Buffer::from_mut_slice(vec![90u8; rgb.size()]);
        let mut converters = Converters::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..6 {
            let p = converters
                .prepare(1, &buffer, &rgb, (&reference, 64, 48))
                .unwrap();
            assert_ne!(p.frame.format(), gst_video::VideoFormat::Bgrx);
            // SAFETY: reads a field of a live buffer.
            let pool = unsafe { (*p.frame.buffer().as_ptr()).pool };
            assert!(!pool.is_null(), "the converted frame is not from a pool");
            seen.insert(p.frame.plane_data(0).unwrap().as_ptr() as usize);
        }
        // Frames converted one at a time cycle through the pool's two buffers.
        assert!(seen.len() <= 2, "{} buffers for six frames", seen.len());
    }

    #[test]
    fn range_maps_follow_gstreamers_offsets() {
        gst::init().unwrap();
        let info = |format, range| {
            gst_video::VideoInfo::builder(format, 64, 48)
                .colorimetry(&gst_video::VideoColorimetry::new(
                    range,
                    gst_video::VideoColorMatrix::Bt709,
                    gst_video::VideoTransferFunction::Bt709,
                    gst_video::VideoColorPrimaries::Bt709,
                ))
                .build()
                .unwrap()
        };
        use gst_video::VideoColorRange::{Range0_255 as Full, Range16_235 as Limited};
        use gst_video::VideoFormat::{I420, I42010le};
        assert_eq!(range_maps(&info(I420, Limited), &info(I420, Limited)), None);
        // 8-bit limited to 10-bit limited is × 4, luma and chroma alike.
        let m = range_maps(&info(I420, Limited), &info(I42010le, Limited)).unwrap();
        for c in m {
            assert!(
                (c.gain - 4.0).abs() < 1e-6 && c.offset.abs() < 1e-4,
                "{c:?}"
            );
        }
        // Full to limited: Y 16 + 219/255 y, C 128 + 224/255 (c − 128).
        let m = range_maps(&info(I420, Full), &info(I420, Limited)).unwrap();
        assert!((m[0].gain - 219.0 / 255.0).abs() < 1e-6 && (m[0].offset - 16.0).abs() < 1e-4);
        let c = 200.0 * m[1].gain + m[1].offset;
        assert!((c - (128.0 + 72.0 * 224.0 / 255.0)).abs() < 1e-4, "{c}");
    }
}
