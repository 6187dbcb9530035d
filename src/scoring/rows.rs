//! Rows of samples as f32, read on demand, and what both backends compute from them on
//! the host: squared differences, the shift before the moments, 2×2 pooling and MS-SSIM
//! over lazily pooled scales.

use std::ops::Range;

use rayon::prelude::*;

use super::image::{LUMA_WEIGHTS, PlaneSource};
use super::window::{ms_ssim_scales, pooled};
use super::{ImageView, MapKind, QualityMap, ms_ssim_combine};

/// Rows of samples as f32, read on demand: a plane of an image (converted row by row, so
/// no full-size float copy is made) or a pooled plane.
pub trait RowSource: Sync {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Writes `out.len()` samples of row `y`, from column `x0`, into `out`.
    fn read_span(&self, y: usize, x0: usize, out: &mut [f32]);

    /// `n` samples of row `y` from column `x0` as stored, when they are 8-bit, contiguous
    /// and read unchanged (so that the kernel can convert them with its own instructions).
    fn bytes(&self, _y: usize, _x0: usize, _n: usize) -> Option<&[u8]> {
        None
    }

    /// `n` samples of row `y` from column `x0`, when they are stored as f32 (so that the
    /// kernel reads them where they are).
    fn floats(&self, _y: usize, _x0: usize, _n: usize) -> Option<&[f32]> {
        None
    }

    /// Where the bytes that hold `n` samples of row `y` from column `x0` lie, in whatever
    /// format they are stored, when they are stored (so that the kernel can prefetch them).
    fn stored(&self, y: usize, x0: usize, n: usize) -> Option<Range<*const u8>> {
        self.bytes(y, x0, n).map(<[u8]>::as_ptr_range).or_else(|| {
            let f = self.floats(y, x0, n)?.as_ptr_range();
            Some(f.start.cast()..f.end.cast())
        })
    }

    /// Writes row `y` into `out` (`out.len() == width`).
    fn read_row(&self, y: usize, out: &mut [f32]) {
        self.read_span(y, 0, out)
    }
}

/// References and boxes of row sources read the same rows.
impl<P> RowSource for P
where
    P: std::ops::Deref + Sync,
    P::Target: RowSource,
{
    #[inline]
    fn width(&self) -> usize {
        (**self).width()
    }

    #[inline]
    fn height(&self) -> usize {
        (**self).height()
    }

    #[inline]
    fn read_span(&self, y: usize, x0: usize, out: &mut [f32]) {
        (**self).read_span(y, x0, out)
    }

    #[inline]
    fn bytes(&self, y: usize, x0: usize, n: usize) -> Option<&[u8]> {
        (**self).bytes(y, x0, n)
    }

    #[inline]
    fn floats(&self, y: usize, x0: usize, n: usize) -> Option<&[f32]> {
        (**self).floats(y, x0, n)
    }

    #[inline]
    fn stored(&self, y: usize, x0: usize, n: usize) -> Option<Range<*const u8>> {
        (**self).stored(y, x0, n)
    }
}

/// A 2×2-average-pooled view of a row source, computed row by row when read (no pooled
/// plane is stored): the same values as [`Plane::pooled`].
pub struct Pooled<'a> {
    src: Box<dyn RowSource + 'a>,
}

impl<'a> Pooled<'a> {
    pub fn new(src: Box<dyn RowSource + 'a>) -> Self {
        Pooled { src }
    }
}

impl RowSource for Pooled<'_> {
    fn width(&self) -> usize {
        pooled(self.src.width())
    }

    fn height(&self) -> usize {
        pooled(self.src.height())
    }

    fn read_span(&self, j: usize, x0: usize, out: &mut [f32]) {
        // Pooled column i averages padded source columns 2i and 2i + 1, where padded
        // column p is source column p − px, and padded row r source row r − py (zero
        // outside the plane). Read in chunks so that the source rows fit on the stack.
        const CHUNK: usize = 64;
        let (w, h) = (self.src.width(), self.src.height());
        let (px, py) = (w % 2, h % 2);
        let source_rows = [0, 1].map(|dy| (2 * j + dy).checked_sub(py).filter(|y| *y < h));
        let mut rows = [[0f32; 2 * CHUNK]; 2];
        for (c, out) in out.chunks_mut(CHUNK).enumerate() {
            let p0 = 2 * (x0 + c * CHUNK);
            let p1 = p0 + 2 * out.len();
            let (v0, v1) = (p0.max(px), p1.min(w + px));
            if let ([Some(top), Some(bottom)], true) = (source_rows, (v0, v1) == (p0, p1))
                && self.pool_bytes([top, bottom], p0 - px, out)
            {
                continue;
            }
            for (row, y) in rows.iter_mut().zip(source_rows) {
                let row = &mut row[..p1 - p0];
                match y.filter(|_| v0 < v1) {
                    Some(y) => {
                        // Zeros only where the padding is.
                        row[..v0 - p0].fill(0.0);
                        row[v1 - p0..].fill(0.0);
                        self.src.read_span(y, v0 - px, &mut row[v0 - p0..v1 - p0]);
                    }
                    None => row.fill(0.0),
                }
            }
            let [top, bottom] = &rows;
            for (i, o) in out.iter_mut().enumerate() {
                let x = 2 * i;
                *o = (top[x] + top[x + 1] + bottom[x] + bottom[x + 1]) / 4.0;
            }
        }
    }
}

impl Pooled<'_> {
    /// Pools `2 · out.len()` source columns from `x0` of two source rows, no padding
    /// involved, straight from 8-bit samples when the source has them: the integer sums
    /// are the values the float path adds. Says whether it did.
    fn pool_bytes(&self, [top, bottom]: [usize; 2], x0: usize, out: &mut [f32]) -> bool {
        let n = 2 * out.len();
        let (Some(top), Some(bottom)) = (self.src.bytes(top, x0, n), self.src.bytes(bottom, x0, n))
        else {
            return false;
        };
        for ((o, t), b) in out
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            let sum = u32::from(t[0]) + u32::from(t[1]) + u32::from(b[0]) + u32::from(b[1]);
            *o = sum as f32 / 4.0;
        }
        true
    }
}

/// One compared plane of an image.
pub struct ImagePlane<'v, 'a> {
    view: &'v ImageView<'a>,
    source: PlaneSource,
    width: usize,
    height: usize,
}

impl<'v, 'a> ImagePlane<'v, 'a> {
    pub fn new(view: &'v ImageView<'a>, source: PlaneSource) -> Self {
        let g = view.geometry(source);
        ImagePlane {
            view,
            source,
            width: g.width,
            height: g.height,
        }
    }
}

impl RowSource for ImagePlane<'_, '_> {
    fn width(&self) -> usize {
        self.width
    }

    fn height(&self) -> usize {
        self.height
    }

    fn bytes(&self, y: usize, x0: usize, n: usize) -> Option<&[u8]> {
        match self.source {
            PlaneSource::Component(c) => self.view.components[c].bytes(self.view.depth, y, x0, n),
            PlaneSource::RgbLuma => None,
        }
    }

    fn stored(&self, y: usize, x0: usize, n: usize) -> Option<Range<*const u8>> {
        // RGB's luma: the red samples' span also covers green and blue when packed.
        let c = match self.source {
            PlaneSource::Component(c) => c,
            PlaneSource::RgbLuma => 0,
        };
        self.view.components[c].stored(self.view.depth, y, x0, n)
    }

    fn read_span(&self, y: usize, x0: usize, out: &mut [f32]) {
        let (depth, components) = (self.view.depth, &self.view.components);
        match self.source {
            PlaneSource::Component(c) => components[c].span_f32(depth, y, x0, out),
            PlaneSource::RgbLuma => {
                // In chunks, so that the green and blue samples fit on the stack.
                const CHUNK: usize = 256;
                let [wr, wg, wb] = LUMA_WEIGHTS;
                let (mut g, mut b) = ([0f32; CHUNK], [0f32; CHUNK]);
                for (c, out) in out.chunks_mut(CHUNK).enumerate() {
                    let (x, n) = (x0 + c * CHUNK, out.len());
                    components[0].span_f32(depth, y, x, out);
                    components[1].span_f32(depth, y, x, &mut g[..n]);
                    components[2].span_f32(depth, y, x, &mut b[..n]);
                    for ((o, g), b) in out.iter_mut().zip(&g).zip(&b) {
                        *o = *o * wr + g * wg + b * wb;
                    }
                }
            }
        }
    }
}

/// A plane of samples as f32, tightly packed.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl RowSource for Plane {
    fn width(&self) -> usize {
        self.width
    }

    fn height(&self) -> usize {
        self.height
    }

    fn read_span(&self, y: usize, x0: usize, out: &mut [f32]) {
        let start = y * self.width + x0;
        out.copy_from_slice(&self.data[start..start + out.len()]);
    }

    fn floats(&self, y: usize, x0: usize, n: usize) -> Option<&[f32]> {
        let start = y * self.width + x0;
        self.data.get(start..start + n)
    }
}

impl Plane {
    /// A `width`×`height` plane whose sample at (x, y) is `f(x, y)`.
    pub fn from_fn(width: usize, height: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        let data = (0..width * height)
            .map(|i| f(i % width, i / width))
            .collect();
        Plane {
            width,
            height,
            data,
        }
    }

    /// 2×2 average pooling of a row source; odd sides are zero-padded by one sample on
    /// both ends, and the padding counts in the average (PyTorch's
    /// `avg_pool2d(x, 2, padding=n % 2)`).
    pub fn pooled<R: RowSource>(src: &R) -> Plane {
        Plane::pooled_into(src, Vec::new())
    }

    /// [`Plane::pooled`] into `buffer`'s memory (its contents are replaced).
    pub fn pooled_into<R: RowSource>(src: &R, mut buffer: Vec<f32>) -> Plane {
        let view = Pooled::new(Box::new(src));
        let (pw, ph) = (view.width(), view.height());
        // Every value is written below: a reused buffer is not cleared first.
        buffer.resize(pw * ph, 0.0);
        buffer
            .par_chunks_mut(pw.max(1))
            .enumerate()
            .for_each(|(j, out)| view.read_row(j, out));
        Plane {
            width: pw,
            height: ph,
            data: buffer,
        }
    }
}

/// The squared-error map of two planes of the same size.
pub fn squared_error_map<R: RowSource + ?Sized>(x: &R, y: &R) -> QualityMap {
    let w = x.width();
    let mut values = vec![0f32; w * x.height()];
    values.par_chunks_mut(w.max(1)).enumerate().for_each_init(
        || (vec![0f32; w], vec![0f32; w]),
        |(a, b), (row, out)| {
            x.read_row(row, a);
            y.read_row(row, b);
            for ((o, p), q) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
                *o = (p - q) * (p - q);
            }
        },
    );
    QualityMap::new(MapKind::SquaredError, w, x.height(), values)
}

/// Sum of squared differences, accumulated in f64.
pub fn sse<R: RowSource>(x: &R, y: &R) -> f64 {
    let w = x.width();
    (0..x.height())
        .into_par_iter()
        .map_init(
            || (vec![0f32; w], vec![0f32; w]),
            |(a, b), row| {
                x.read_row(row, a);
                y.read_row(row, b);
                squared_difference_sum(a, b)
            },
        )
        .sum()
}

/// Σ (a − b)² in f64, over paired samples.
#[inline(always)]
pub fn squared_difference_sum(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (qa, qb) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            let d = (qa[l] - qb[l]) as f64;
            acc[l] += d * d;
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| ((p - q) as f64).powi(2))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// A rough mean of a plane (every eighth row), the shift applied before the moments.
pub fn rough_mean<R: RowSource>(x: &R) -> f32 {
    let mut row = Vec::new();
    let (mut sum, mut n) = (0f64, 0usize);
    for y in (0..x.height()).step_by(8) {
        // 8-bit samples are summed as stored: the kernel waits for this pass.
        if let Some(bytes) = x.bytes(y, 0, x.width()) {
            sum += bytes.iter().map(|&v| u64::from(v)).sum::<u64>() as f64;
        } else {
            row.resize(x.width(), 0.0);
            x.read_row(y, &mut row);
            sum += lane_sum(&row) as f64;
        }
        n += x.width();
    }
    (sum / n.max(1) as f64) as f32
}

/// SSIM, contrast-structure and squared-error sums of one pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct Moments {
    /// Mean SSIM over the valid region.
    pub ssim: f64,
    /// Mean contrast-structure term over the valid region.
    pub cs: f64,
    /// Sum of squared differences over the whole plane.
    pub sse: f64,
}

/// Sum of a slice in f32 with eight independent lanes (vectorisable, and more exact than a
/// single running sum).
#[inline(always)]
pub fn lane_sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// MS-SSIM over the scales of a plane pair whose first scale gave `first`, each smaller
/// scale pooled row by row as it is read; `moments` scores one scale.
pub fn ms_ssim_pooled_lazily<'a, E>(
    x: &'a dyn RowSource,
    y: &'a dyn RowSource,
    first: Moments,
    mut moments: impl FnMut(&dyn RowSource, &dyn RowSource) -> Result<Moments, E>,
) -> Result<(f64, u32), E> {
    let scales = ms_ssim_scales(x.width(), x.height());
    let mut cs = Vec::with_capacity(scales as usize);
    let mut last = first;
    let mut px: Box<dyn RowSource + 'a> = Box::new(x);
    let mut py: Box<dyn RowSource + 'a> = Box::new(y);
    for _ in 1..scales {
        cs.push(last.cs);
        px = Box::new(Pooled::new(px));
        py = Box::new(Pooled::new(py));
        last = moments(&*px, &*py)?;
    }
    Ok((ms_ssim_combine(&cs, last.ssim), scales))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        Plane::from_fn(w, h, f)
    }

    #[test]
    fn pooling_pads_odd_sides_with_zeros() {
        let x = plane(3, 2, |i, j| (1 + i + 3 * j) as f32); // [[1,2,3],[4,5,6]]
        let p = Plane::pooled(&x);
        assert_eq!((p.width, p.height), (2, 1));
        // Windows over columns [-1,0] and [1,2]: (0+1+0+4)/4 and (2+3+5+6)/4.
        assert_eq!(p.data, vec![1.25, 4.0]);
    }

    #[test]
    fn pooling_8bit_samples_directly_gives_the_float_values() {
        for (w, h) in [(150, 21), (151, 20), (149, 23)] {
            let bytes: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
            let view = ImageView::gray8(&bytes, w, h);
            let direct = Plane::pooled(&ImagePlane::new(&view, PlaneSource::Component(0)));
            let floats = plane(w, h, |i, j| bytes[j * w + i] as f32);
            assert_eq!(direct, Plane::pooled(&floats), "{w}x{h}");
        }
    }

    #[test]
    fn stored_spans_cover_the_samples_and_nothing_past_the_buffer() {
        let bytes = vec![0u8; 6 * 4];
        let view = ImageView::gray8(&bytes, 6, 4);
        let gray = ImagePlane::new(&view, PlaneSource::Component(0));
        let span = gray.stored(2, 1, 3).expect("inside the plane");
        assert_eq!(span, bytes[13..16].as_ptr_range());
        assert_eq!(gray.stored(3, 4, 3), None, "past the buffer's end");
        let floats = plane(5, 2, |i, _| i as f32);
        let span = floats.stored(1, 2, 3).expect("inside the plane");
        let f = floats.data[7..10].as_ptr_range();
        assert_eq!(span, f.start.cast()..f.end.cast());
    }

    #[test]
    fn sse_is_exact_for_integers() {
        let x = plane(100, 3, |i, _| i as f32);
        let y = plane(100, 3, |i, _| i as f32 + 2.0);
        assert_eq!(sse(&x, &y), 1200.0);
    }
}
