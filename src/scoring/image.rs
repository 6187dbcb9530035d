//! Borrowed views of video frames and the planes the engine compares.

use std::ops::Range;

use super::{ChannelMode, Error};

/// The colour model of an image, which decides what "luma" means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorKind {
    /// One component: Y.
    Gray,
    /// Components Y, U, V (possibly subsampled).
    Yuv,
    /// Components R, G, B.
    Rgb,
}

/// An affine map from stored sample values to compared values: `value * gain + offset`.
/// It brings a distorted stream's samples to the reference's range and bit depth (full to
/// limited range, 8 to 10 bits, ...) in float, exactly, without a rounding step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleMap {
    pub gain: f32,
    pub offset: f32,
}

/// One colour component inside a buffer: the sample at column `x`, row `y` starts at byte
/// `offset + y * stride + x * pixel_stride` of `data`. 16-bit samples are little-endian.
#[derive(Clone, Copy, Debug)]
pub struct Component<'a> {
    pub data: &'a [u8],
    pub offset: usize,
    pub stride: usize,
    pub pixel_stride: usize,
    pub width: usize,
    pub height: usize,
    /// Bits the value sits above the bottom of its 16-bit word (P010: 6); shifted out.
    pub shift: u32,
    /// Applied after reading; `None` compares the samples as stored.
    pub map: Option<SampleMap>,
}

/// An image as the engine sees it: Gray has one component, Yuv and Rgb three (Y, U, V or
/// R, G, B; alpha is never compared).
#[derive(Clone, Debug)]
pub struct ImageView<'a> {
    pub kind: ColorKind,
    /// Bits per sample: 8, or up to 16 for two-byte samples.
    pub depth: u32,
    pub components: Vec<Component<'a>>,
}

/// Where a compared plane comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneSource {
    /// One component as it is.
    Component(usize),
    /// 0.299 R + 0.587 G + 0.114 B of components 0, 1, 2.
    RgbLuma,
}

/// Size of a compared plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlaneGeometry {
    pub width: usize,
    pub height: usize,
}

/// Luma weights for RGB (ITU-R BT.601).
pub const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// The planes compared for an image kind in a channel mode.
pub fn planes_for(kind: ColorKind, mode: ChannelMode) -> Vec<PlaneSource> {
    match (kind, mode) {
        (ColorKind::Rgb, ChannelMode::Luma) => vec![PlaneSource::RgbLuma],
        (ColorKind::Gray, _) | (ColorKind::Yuv, ChannelMode::Luma) => {
            vec![PlaneSource::Component(0)]
        }
        (_, ChannelMode::All) => (0..3).map(PlaneSource::Component).collect(),
    }
}

impl<'a> Component<'a> {
    /// Tightly packed 8-bit samples, `width`×`height`, from byte `offset` of `data`.
    pub fn packed8(data: &'a [u8], offset: usize, width: usize, height: usize) -> Self {
        Component {
            data,
            offset,
            stride: width,
            pixel_stride: 1,
            width,
            height,
            shift: 0,
            map: None,
        }
    }
}

impl Component<'_> {
    fn bytes_per_sample(depth: u32) -> usize {
        if depth > 8 { 2 } else { 1 }
    }

    fn check(&self, depth: u32) -> Result<(), Error> {
        if self.width == 0 || self.height == 0 {
            return Ok(());
        }
        let last = self.offset
            + (self.height - 1) * self.stride
            + (self.width - 1) * self.pixel_stride
            + Self::bytes_per_sample(depth);
        if last > self.data.len() {
            return Err(Error::Mismatch(format!(
                "a {}x{} component needs {last} bytes, the buffer has {}",
                self.width,
                self.height,
                self.data.len()
            )));
        }
        Ok(())
    }

    /// `n` samples of row `y` from column `x0` as stored, when they are 8-bit,
    /// contiguous and unmapped.
    pub(crate) fn bytes(&self, depth: u32, y: usize, x0: usize, n: usize) -> Option<&[u8]> {
        if depth > 8 || self.pixel_stride != 1 || self.map.is_some() {
            return None;
        }
        let start = self.offset + y * self.stride + x0;
        self.data.get(start..start + n)
    }

    /// Where the bytes of `n` samples of row `y` from column `x0` lie (nothing past the
    /// buffer).
    pub(crate) fn stored(
        &self,
        depth: u32,
        y: usize,
        x0: usize,
        n: usize,
    ) -> Option<Range<*const u8>> {
        let start = self.offset + y * self.stride + x0 * self.pixel_stride;
        let len = n.checked_sub(1)? * self.pixel_stride + Self::bytes_per_sample(depth);
        Some(self.data.get(start..start + len)?.as_ptr_range())
    }

    /// Writes `out.len()` samples of row `y` from column `x0` as f32 into `out`,
    /// shifted and mapped.
    pub(crate) fn span_f32(&self, depth: u32, y: usize, x0: usize, out: &mut [f32]) {
        self.raw_span_f32(depth, y, x0, out);
        if let Some(m) = self.map {
            // Unfused, as libtorch applies it on the device.
            for o in out.iter_mut() {
                *o = *o * m.gain + m.offset;
            }
        }
    }

    fn raw_span_f32(&self, depth: u32, y: usize, x0: usize, out: &mut [f32]) {
        let start = self.offset + y * self.stride + x0 * self.pixel_stride;
        if depth > 8 {
            let row = &self.data[start..];
            for (x, o) in out.iter_mut().enumerate() {
                let i = x * self.pixel_stride;
                *o = (u16::from_le_bytes([row[i], row[i + 1]]) >> self.shift) as f32;
            }
        } else if self.pixel_stride == 1 {
            let row = &self.data[start..start + out.len()];
            for (o, &v) in out.iter_mut().zip(row) {
                *o = v as f32;
            }
        } else {
            let row = &self.data[start..];
            for (x, o) in out.iter_mut().enumerate() {
                *o = row[x * self.pixel_stride] as f32;
            }
        }
    }

    /// Copies the samples, tightly packed, as raw little-endian bytes (not shifted or
    /// mapped).
    #[cfg(feature = "torch")]
    pub(crate) fn packed_bytes(&self, depth: u32) -> Vec<u8> {
        let bps = Self::bytes_per_sample(depth);
        let mut out = Vec::with_capacity(self.width * self.height * bps);
        for y in 0..self.height {
            let row = &self.data[self.offset + y * self.stride..];
            if self.pixel_stride == bps {
                out.extend_from_slice(&row[..self.width * bps]);
            } else {
                for x in 0..self.width {
                    let i = x * self.pixel_stride;
                    out.extend_from_slice(&row[i..i + bps]);
                }
            }
        }
        out
    }
}

impl<'a> ImageView<'a> {
    /// A view of tightly packed 8-bit grey samples, `width`×`height`.
    pub fn gray8(data: &'a [u8], width: usize, height: usize) -> Self {
        ImageView {
            kind: ColorKind::Gray,
            depth: 8,
            components: vec![Component::packed8(data, 0, width, height)],
        }
    }

    /// Largest sample value, the MAX of PSNR and the L of SSIM.
    pub fn max_value(&self) -> f64 {
        ((1u64 << self.depth) - 1) as f64
    }

    /// Checks that the components fit in their buffers and match the colour kind.
    pub fn validate(&self) -> Result<(), Error> {
        let needed = match self.kind {
            ColorKind::Gray => 1,
            ColorKind::Yuv | ColorKind::Rgb => 3,
        };
        if self.components.len() < needed {
            return Err(Error::Mismatch(format!(
                "{:?} needs {needed} components, got {}",
                self.kind,
                self.components.len()
            )));
        }
        if !(1..=16).contains(&self.depth) {
            return Err(Error::Mismatch(format!("unsupported depth {}", self.depth)));
        }
        self.components.iter().try_for_each(|c| c.check(self.depth))
    }

    /// Geometry of a compared plane.
    pub fn geometry(&self, source: PlaneSource) -> PlaneGeometry {
        let c = match source {
            PlaneSource::Component(i) => &self.components[i],
            PlaneSource::RgbLuma => &self.components[0],
        };
        PlaneGeometry {
            width: c.width,
            height: c.height,
        }
    }

    /// Checks that two images can be compared plane by plane.
    pub fn check_comparable(&self, other: &ImageView<'_>, mode: ChannelMode) -> Result<(), Error> {
        self.validate()?;
        other.validate()?;
        // Another depth is comparable once the samples are mapped to this one's scale.
        if self.depth != other.depth && other.components.iter().any(|c| c.map.is_none()) {
            return Err(Error::Mismatch(format!(
                "bit depths differ ({} and {}) and the samples are not mapped",
                self.depth, other.depth
            )));
        }
        let (a, b) = (planes_for(self.kind, mode), planes_for(other.kind, mode));
        if a.len() != b.len() {
            return Err(Error::Mismatch(format!(
                "{:?} and {:?} have different planes in {} mode",
                self.kind,
                other.kind,
                mode.as_str()
            )));
        }
        for (pa, pb) in a.iter().zip(&b) {
            let (ga, gb) = (self.geometry(*pa), other.geometry(*pb));
            if ga != gb {
                return Err(Error::Mismatch(format!(
                    "plane sizes differ ({}x{} and {}x{})",
                    ga.width, ga.height, gb.width, gb.height
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(data: &[u8], w: usize, h: usize) -> ImageView<'_> {
        ImageView::gray8(data, w, h)
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        let data = [0u8; 10];
        assert!(gray(&data, 4, 3).validate().is_err());
        assert!(gray(&data, 5, 2).validate().is_ok());
    }

    #[test]
    fn sizes_must_match() {
        let data = [0u8; 64];
        let err = gray(&data, 8, 8).check_comparable(&gray(&data, 4, 4), ChannelMode::Luma);
        assert!(matches!(err, Err(Error::Mismatch(_))));
    }

    #[test]
    fn strided_rows_and_16_bit_samples() {
        // Two 16-bit samples per row, pixel stride 4 (interleaved with another channel).
        let data = [1u8, 0, 9, 9, 0, 1, 9, 9];
        let c = Component {
            data: &data,
            offset: 0,
            stride: 8,
            pixel_stride: 4,
            width: 2,
            height: 1,
            shift: 0,
            map: None,
        };
        let mut row = [0f32; 2];
        c.span_f32(16, 0, 0, &mut row);
        assert_eq!(row, [1.0, 256.0]);
        // The two samples' bytes: from the first to the end of the second.
        assert_eq!(c.stored(16, 0, 0, 2), Some(data[..6].as_ptr_range()));
        #[cfg(feature = "torch")]
        assert_eq!(c.packed_bytes(16), vec![1, 0, 0, 1]);
    }

    #[test]
    fn msb_aligned_samples_are_shifted_and_maps_applied() {
        // P010-style: 10-bit values 1023 and 64 in the top bits of 16-bit words.
        let words = [1023u16 << 6, 64 << 6];
        let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut c = Component {
            data: &data,
            offset: 0,
            stride: 4,
            pixel_stride: 2,
            width: 2,
            height: 1,
            shift: 6,
            map: None,
        };
        let mut row = [0f32; 2];
        c.span_f32(10, 0, 0, &mut row);
        assert_eq!(row, [1023.0, 64.0]);
        // Full range to limited range at 10 bits: 64 + v * 876 / 1023.
        c.map = Some(SampleMap {
            gain: 876.0 / 1023.0,
            offset: 64.0,
        });
        c.span_f32(10, 0, 0, &mut row);
        assert_eq!(row[0], 940.0);
        assert!((row[1] - (64.0 + 64.0 * 876.0 / 1023.0)).abs() < 1e-4);
    }

    #[test]
    fn other_depths_need_a_map() {
        let data = [0u8; 128];
        let a = gray(&data, 8, 8);
        // The same size at 10 bits: two bytes a sample.
        let mut b = gray(&data, 8, 8);
        b.depth = 10;
        b.components[0].stride = 16;
        let err = a.check_comparable(&b, ChannelMode::Luma).unwrap_err();
        assert!(err.to_string().contains("not mapped"), "{err}");
        b.components[0].map = Some(SampleMap {
            gain: 0.25,
            offset: 0.0,
        });
        assert!(a.check_comparable(&b, ChannelMode::Luma).is_ok());
    }
}
