//! VMAF's motion features: how much the reference's luma changes from frame to frame.
//!
//! Each reference frame's luma is low-pass filtered (libvmaf's 5-tap filter, in both
//! directions, mirrored at the edges without repeating them), in units of 8-bit samples.
//! A frame's motion is the mean absolute difference between its filtered luma and the
//! previous frame's (0 for the first frame); its motion2, the feature the models read, is
//! the smaller of its own motion and the next frame's, so it is known one frame late, and
//! the last frame's is its own motion.

use rayon::prelude::*;

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
/// Output rows a thread filters at a time.
const BAND: usize = 32;

/// Row or column `i` (which may lie up to [`RADIUS`] outside `0..n`) mirrored into it:
/// −1 → 1 and n → n − 2.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = if i < 0 {
        -i
    } else if i >= n {
        2 * n - i - 2
    } else {
        i
    };
    // Planes narrower than the filter mirror again.
    m.clamp(0, n - 1) as usize
}

/// The factor that brings samples of `depth` bits to 8-bit units, as libvmaf's features
/// work in them.
pub fn eight_bit_scale(depth: u32) -> f32 {
    1.0 / (1u32 << depth.saturating_sub(8)) as f32
}

/// `plane` low-pass filtered into `out` (resized to width × height), its samples scaled
/// by `scale` first ([`eight_bit_scale`]).
pub fn filtered<R: RowSource>(plane: &R, scale: f32, out: &mut Vec<f32>) {
    let (w, h) = (plane.width(), plane.height());
    out.resize(w * h, 0.0);
    if w == 0 || h == 0 {
        return;
    }
    out.par_chunks_mut(BAND * w)
        .enumerate()
        .for_each(|(band, rows)| {
            let y0 = band * BAND;
            let n = rows.len() / w;
            // The input rows this band reads, read once: y0 − 2 ..= y0 + n + 1, mirrored.
            let mut input = vec![0f32; (n + 2 * RADIUS) * w];
            for (k, row) in input.chunks_mut(w).enumerate() {
                plane.read_row(reflect((y0 + k) as isize - RADIUS as isize, h), row);
            }
            let mut column = vec![0f32; w + 2 * RADIUS];
            for (r, out_row) in rows.chunks_mut(w).enumerate() {
                // Vertical, into the middle of `column`; then its mirrored ends; then
                // horizontal.
                for (x, c) in column[RADIUS..RADIUS + w].iter_mut().enumerate() {
                    *c = FILTER
                        .iter()
                        .enumerate()
                        .map(|(k, f)| f * input[(r + k) * w + x])
                        .sum::<f32>()
                        * scale;
                }
                for k in 1..=RADIUS {
                    column[RADIUS - k] = column[RADIUS + reflect(-(k as isize), w)];
                    column[RADIUS + w - 1 + k] = column[RADIUS + reflect((w - 1 + k) as isize, w)];
                }
                for (x, o) in out_row.iter_mut().enumerate() {
                    *o = FILTER
                        .iter()
                        .zip(&column[x..x + FILTER.len()])
                        .map(|(f, v)| f * v)
                        .sum();
                }
            }
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
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() as f64)
                .sum::<f64>()
        })
        .sum();
    sum / a.len() as f64
}

/// Motion2 over a stream, one frame late: [`MotionTracker::push`] takes each reference
/// frame's luma and gives the previous frame's motion2, [`MotionTracker::finish`] the
/// last frame's. Frames count from 0 at the start and after each [`MotionTracker::reset`]
/// (a flushing seek restarts motion).
#[derive(Default)]
pub struct MotionTracker {
    /// The last frame's filtered luma, and the buffer the next one is filtered into.
    previous: Option<Vec<f32>>,
    spare: Vec<f32>,
    /// The last frame's index and motion, waiting for the next frame's.
    pending: Option<(u64, f64)>,
}

impl MotionTracker {
    /// Takes the next frame's luma (`scale` as for [`filtered`]); gives the previous
    /// frame's index and motion2, if there was a previous frame.
    pub fn push<R: RowSource>(&mut self, luma: &R, scale: f32) -> Option<(u64, f64)> {
        let mut current = std::mem::take(&mut self.spare);
        filtered(luma, scale, &mut current);
        let index = self.pending.map_or(0, |(i, _)| i + 1);
        let motion = match &self.previous {
            Some(prev) if prev.len() == current.len() => mean_abs_diff(&current, prev),
            // The first frame, or a frame of a new size: nothing to compare with.
            _ => 0.0,
        };
        if let Some(prev) = self.previous.replace(current) {
            self.spare = prev;
        }
        let done = self
            .pending
            .map(|(i, m)| (i, if i == 0 { 0.0 } else { m.min(motion) }));
        self.pending = Some((index, motion));
        done
    }

    /// The last frame's index and motion2 (its own motion), at the end of the stream.
    pub fn finish(&mut self) -> Option<(u64, f64)> {
        let last = self.pending.take();
        self.previous = None;
        last
    }

    /// Forgets the stream: the next frame is frame 0 again.
    pub fn reset(&mut self) {
        self.previous = None;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::ImageView;
    use crate::scoring::image::PlaneSource;
    use crate::scoring::rows::{ImagePlane, Plane};

    #[test]
    fn edges_mirror_without_repeating() {
        assert_eq!(reflect(-1, 10), 1);
        assert_eq!(reflect(-2, 10), 2);
        assert_eq!(reflect(10, 10), 8);
        assert_eq!(reflect(11, 10), 7);
        assert_eq!(reflect(4, 10), 4);
        assert_eq!(reflect(-2, 2), 1);
    }

    #[test]
    fn a_flat_plane_stays_flat_and_the_filter_keeps_the_mean() {
        let data = vec![100u8; 37 * 23];
        let view = ImageView::gray8(&data, 37, 23);
        let mut out = Vec::new();
        filtered(
            &ImagePlane::new(&view, PlaneSource::Component(0)),
            1.0,
            &mut out,
        );
        assert!(
            out.iter().all(|v| (v - 100.0).abs() < 1e-3),
            "{:?}",
            &out[..4]
        );
        // 10-bit samples four times as large give the same values.
        let plane = Plane::from_fn(37, 23, |_, _| 400.0);
        let mut out10 = Vec::new();
        filtered(&plane, 0.25, &mut out10);
        assert_eq!(out, out10);
    }

    #[test]
    fn motion2_comes_one_frame_late_and_restarts_after_a_reset() {
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
        // A seek: the next frame is frame 0, with no motion against the frame before.
        t.push(&plane(0), 1.0);
        t.reset();
        assert_eq!(t.push(&plane(3), 1.0), None);
        close(t.finish(), (0, 0.0));
    }
}
