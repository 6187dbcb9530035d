//! VMAF's motion features: how much the reference's luma changes from frame to frame.
//!
//! Each reference frame's luma is low-pass filtered (libvmaf's 5-tap filter, in both
//! directions, mirrored at the edges without repeating them), in units of 8-bit samples.
//! A frame's motion is the mean absolute difference between its filtered luma and the
//! previous frame's (0 for the first frame); its motion2, the feature the models read, is
//! the smaller of its own motion and the next frame's, so it is known one frame late, and
//! the last frame's is its own motion.

use rayon::prelude::*;

use super::{Luma, lanes_sum, madd, reflect, usable};
use crate::scoring::native::Simd;
use crate::scoring::rows::RowSource;

/// libvmaf's motion filter, as it gives it (to more digits than f32 holds).
const FILTER: [f32; 5] = {
    let f: [f64; 5] = [
        0.054488685,
        0.244201342,
        0.402619947,
        0.244201342,
        0.054488685,
    ];
    [
        f[0] as f32,
        f[1] as f32,
        f[2] as f32,
        f[3] as f32,
        f[4] as f32,
    ]
};
const RADIUS: usize = FILTER.len() / 2;

/// The filter's taps, for the libtorch backend.
#[cfg(feature = "torch")]
pub(crate) fn filter_taps() -> [f32; 5] {
    FILTER
}
/// Output rows a thread filters at a time.
const BAND: usize = 32;

/// The factor that brings samples of `depth` bits to 8-bit units, as libvmaf's features
/// work in them.
pub fn eight_bit_scale(depth: u32) -> f32 {
    1.0 / (1u32 << depth.saturating_sub(8)) as f32
}

/// Columns filtered at a time.
const CHUNK: usize = 16;

/// Output rows `rows` of `src` low-pass filtered, into `out` (those rows).
#[inline(always)]
fn filter_rows<const FMA: bool>(src: &Luma, rows: std::ops::Range<usize>, out: &mut [f32]) {
    let (w, h) = (src.w, src.h);
    // The vertical sums of a row, its mirrored ends either side, and room for a chunk.
    let mut column = vec![0f32; w + 2 * RADIUS + CHUNK];
    for (y, out) in rows.zip(out.chunks_mut(w)) {
        let window: [&[f32]; 5] =
            std::array::from_fn(|k| src.row(reflect(y as isize + k as isize - RADIUS as isize, h)));
        {
            let inner = &mut column[RADIUS..RADIUS + w];
            for x in 0..w {
                let mut acc = FILTER[0] * window[0][x];
                for k in 1..FILTER.len() {
                    acc = madd::<FMA>(FILTER[k], window[k][x], acc);
                }
                inner[x] = acc;
            }
        }
        for k in 1..=RADIUS {
            column[RADIUS - k] = column[RADIUS + reflect(-(k as isize), w)];
            column[RADIUS + w - 1 + k] = column[RADIUS + reflect((w - 1 + k) as isize, w)];
        }
        let mut c0 = 0;
        while c0 < w {
            let mut acc = [0f32; CHUNK];
            for (k, &t) in FILTER.iter().enumerate() {
                let src = &column[c0 + k..c0 + k + CHUNK];
                for l in 0..CHUNK {
                    acc[l] = madd::<FMA>(t, src[l], acc[l]);
                }
            }
            let n = CHUNK.min(w - c0);
            out[c0..c0 + n].copy_from_slice(&acc[..n]);
            c0 += CHUNK;
        }
    }
}

simd_variants! {
    /// [`filter_rows`] for an instruction set.
    fn filter_rows_for = filter_rows(src: &Luma, rows: std::ops::Range<usize>, out: &mut [f32]) -> ()
}

/// `luma` low-pass filtered into `out` (resized to its size).
pub fn filtered(simd: Simd, luma: &Luma, out: &mut Vec<f32>) {
    let (w, h) = (luma.w, luma.h);
    out.resize(w * h, 0.0);
    if w == 0 || h == 0 {
        return;
    }
    let simd = usable(simd);
    out.par_chunks_mut(BAND * w)
        .enumerate()
        .for_each(|(band, rows)| {
            let y0 = band * BAND;
            filter_rows_for(simd, luma, y0..y0 + rows.len() / w, rows);
        });
}

/// The mean absolute difference of two filtered planes of the same size.
pub fn mean_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    if a.is_empty() {
        return 0.0;
    }
    let sum: f64 = a
        .par_chunks(4096)
        .zip(b.par_chunks(4096))
        .map(|(a, b)| lanes_sum(a, b, |x, y| (x - y).abs()))
        .sum();
    sum / a.len() as f64
}

/// Motion2 over a stream, one frame late: [`MotionTracker::push`] takes each reference
/// frame's luma and gives the previous frame's motion2, [`MotionTracker::finish`] the
/// last frame's. Frames count from 0 at the start and after each finish (a flushing seek
/// restarts motion).
#[derive(Default)]
pub struct MotionTracker {
    /// The last frame's filtered luma, and the buffer the next one is filtered into.
    previous: Option<Vec<f32>>,
    spare: Vec<f32>,
    /// The last frame's index and motion, waiting for the next frame's.
    pending: Option<(u64, f64)>,
}

impl MotionTracker {
    /// Bytes its buffers hold.
    pub(crate) fn allocated_bytes(&self) -> u64 {
        let previous = self.previous.as_ref().map_or(0, Vec::capacity);
        ((previous + self.spare.capacity()) * 4) as u64
    }

    /// Takes the next frame's luma (`scale` brings its samples to 8-bit units); gives the
    /// previous frame's index and motion2, if there was a previous frame.
    pub fn push<R: RowSource>(&mut self, luma: &R, scale: f32) -> Option<(u64, f64)> {
        self.push_luma(Simd::active(), &Luma::of(luma, scale))
    }

    /// [`MotionTracker::push`] of a plane already read.
    pub fn push_luma(&mut self, simd: Simd, luma: &Luma) -> Option<(u64, f64)> {
        let mut current = std::mem::take(&mut self.spare);
        filtered(simd, luma, &mut current);
        let motion = match &self.previous {
            Some(prev) if prev.len() == current.len() => mean_abs_diff(&current, prev),
            // The first frame, or a frame of a new size: nothing to compare with.
            _ => 0.0,
        };
        if let Some(prev) = self.previous.replace(current) {
            self.spare = prev;
        }
        self.push_motion(motion)
    }

    /// Takes the next frame's motion, computed elsewhere (0 for a frame with nothing
    /// before it); gives the previous frame's index and motion2.
    pub fn push_motion(&mut self, motion: f64) -> Option<(u64, f64)> {
        let index = self.pending.map_or(0, |(i, _)| i + 1);
        let done = self
            .pending
            .map(|(i, m)| (i, if i == 0 { 0.0 } else { m.min(motion) }));
        self.pending = Some((index, motion));
        done
    }

    /// The last frame's index and motion2 (its own motion), at the end of the stream or
    /// of a segment: the next frame is frame 0 again.
    pub fn finish(&mut self) -> Option<(u64, f64)> {
        let last = self.pending.take();
        self.previous = None;
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::ImageView;
    use crate::scoring::image::PlaneSource;
    use crate::scoring::rows::{ImagePlane, Plane};

    #[test]
    fn a_flat_plane_stays_flat_and_the_filter_keeps_the_mean() {
        let data = vec![100u8; 37 * 23];
        let view = ImageView::gray8(&data, 37, 23);
        let plane = ImagePlane::new(&view, PlaneSource::Component(0));
        for simd in Simd::available() {
            let mut out = Vec::new();
            filtered(simd, &Luma::of(&plane, 1.0), &mut out);
            // In 8-bit units shifted by −128, as every feature reads luma.
            assert!(
                out.iter().all(|v| (v + 28.0).abs() < 1e-3),
                "{simd:?}: {:?}",
                &out[..4]
            );
            // 10-bit samples four times as large give the same values.
            let ten = Plane::from_fn(37, 23, |_, _| 400.0);
            let mut out10 = Vec::new();
            filtered(simd, &Luma::of(&ten, 0.25), &mut out10);
            assert_eq!(out, out10);
        }
    }

    #[test]
    fn motion2_comes_one_frame_late_and_restarts_after_a_finish() {
        let (w, h) = (16, 12);
        let frame = |v: u8| vec![v; w * h];
        let frames = [frame(10), frame(14), frame(15), frame(25)];
        let views: Vec<_> = frames.iter().map(|f| ImageView::gray8(f, w, h)).collect();
        let plane = |i: usize| ImagePlane::new(&views[i], PlaneSource::Component(0));
        let mut t = MotionTracker::default();
        let close = |got: Option<(u64, f64)>, want: (u64, f64)| {
            let (i, m) = got.unwrap();
            assert_eq!(i, want.0);
            assert!(
                (m - want.1).abs() < 1e-4,
                "frame {i}: {m} against {}",
                want.1
            );
        };
        // Motions 0, 4, 1, 10: motion2 0, min(4, 1), min(1, 10), and the last its own.
        assert_eq!(t.push(&plane(0), 1.0), None);
        close(t.push(&plane(1), 1.0), (0, 0.0));
        close(t.push(&plane(2), 1.0), (1, 1.0));
        close(t.push(&plane(3), 1.0), (2, 1.0));
        close(t.finish(), (3, 10.0));
        assert_eq!(t.finish(), None);
        // A seek finishes the segment: the next frame is frame 0, with no motion against
        // the frame before.
        t.push(&plane(0), 1.0);
        close(t.finish(), (0, 0.0));
        assert_eq!(t.push(&plane(3), 1.0), None);
        close(t.finish(), (0, 0.0));
    }
}
