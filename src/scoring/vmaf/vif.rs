//! VMAF's VIF features: visual information fidelity (Sheikh and Bovik) in the pixel
//! domain, at four scales, as libvmaf computes it.
//!
//! Scale s (0 to 3) uses a Gaussian window of N = 2^(4 − s) + 1 taps (σ = N / 5); from
//! scale 1 on, both luma planes are first filtered with it and every second row and column
//! kept. Filters mirror at the edges without repeating them (−1 → 1, n → n − 2), so every
//! scale keeps its full size. At each pixel, from the local means, variances σ1², σ2² and
//! covariance σ12 (reference 1, distorted 2):
//! - g = σ12 / σ1² and σv² = σ2² − g·σ12, with libvmaf's guards (σ1² ≈ 0: g = 0 and
//!   σv² = σ2²; σ2² ≈ 0: g = 0 and σv² = 0; g < 0: g = 0 and σv² = σ2²), g capped at the
//!   model's enhancement gain limit;
//! - num = log2(1 + g²σ1² / (σv² + σn²)) (0 where σ12 < 0), den = log2(1 + σ1² / σn²),
//!   with σn² = 2;
//! - where σ1² < σn² (flat reference), num = 1 − σ2²·σn⁴/255² and den = 1.
//!
//! The feature of scale s is Σ num / Σ den over its pixels. Samples are in 8-bit units.

use rayon::prelude::*;

use super::{Luma, log2_fast, madd, reflect, usable};
use crate::scoring::native::Simd;
use crate::scoring::rows::RowSource;

/// The noise variance σn², in 8-bit units.
const SIGMA_NSQ: f32 = 2.0;
const EPS: f32 = 1e-10;
/// Output rows a thread works on at a time.
const BAND: usize = 32;
const SCALES: usize = 4;
/// Taps of the widest window (scale 0's).
const MAX_TAPS: usize = 17;

/// The window of scale `s`, normalised.
pub(crate) fn window(s: usize) -> Vec<f32> {
    let n = (1usize << (4 - s)) + 1;
    let sd = n as f64 / 5.0;
    let centre = (n - 1) as f64 / 2.0;
    let g: Vec<f64> = (0..n)
        .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * sd * sd)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    g.iter().map(|v| (v / sum) as f32).collect()
}

impl Luma {
    /// The rows of the window of `taps` around row `row`, mirrored at the edges.
    fn window_rows<'a>(&'a self, taps: &[f32], row: usize) -> [&'a [f32]; MAX_TAPS] {
        let r = taps.len() / 2;
        std::array::from_fn(|k| {
            let src = reflect((row + k.min(taps.len() - 1)) as isize - r as isize, self.h);
            &self.v[src * self.w..(src + 1) * self.w]
        })
    }

    /// `src` filtered with `taps`, every second row and column kept.
    fn half_of(&mut self, simd: Simd, src: &Luma, taps: &[f32]) {
        let (w, h) = (src.w, src.h);
        self.reshape(w / 2, h / 2);
        let w2 = self.w;
        self.v
            .par_chunks_mut((w2 * BAND).max(1))
            .enumerate()
            .for_each(|(band, out)| half_rows_for(simd, src, taps, band * BAND, out));
    }
}

/// Output rows from `first` of `src` filtered with `taps` and halved, into `out`.
#[inline(always)]
fn half_rows<const FMA: bool>(src: &Luma, taps: &[f32], first: usize, out: &mut [f32]) {
    let w = src.w;
    let w2 = w / 2;
    let r = taps.len() / 2;
    // The vertical sums of a row, with its mirrored ends either side, and the same split
    // into even and odd columns.
    let mut column = vec![0f32; w + 2 * r + 2];
    let mut split = [vec![0f32; w / 2 + r + 1], vec![0f32; w / 2 + r + 1]];
    for (i, out) in out.chunks_mut(w2.max(1)).enumerate() {
        let rows = src.window_rows(taps, 2 * (first + i));
        let inner = &mut column[r..r + w];
        inner.fill(0.0);
        for (&t, row) in taps.iter().zip(rows) {
            for (c, s) in inner.iter_mut().zip(row) {
                *c = madd::<FMA>(t, *s, *c);
            }
        }
        for k in 1..=r {
            column[r - k] = column[r + reflect(-(k as isize), w)];
            column[r + w - 1 + k] = column[r + reflect((w - 1 + k) as isize, w)];
        }
        let [even, odd] = &mut split;
        for (p, pair) in column.chunks_exact(2).enumerate().take(even.len()) {
            (even[p], odd[p]) = (pair[0], pair[1]);
        }
        // Output column x2 is Σ taps[k] · column[2·x2 + k]: even taps read the even
        // columns, odd taps the odd ones, both contiguously.
        out.fill(0.0);
        for (k, &t) in taps.iter().enumerate() {
            let src = &split[k % 2][k / 2..k / 2 + w2];
            for (o, s) in out.iter_mut().zip(src) {
                *o = madd::<FMA>(t, *s, *o);
            }
        }
    }
}

simd_variants! {
    /// [`half_rows`] for an instruction set.
    fn half_rows_for = half_rows(src: &Luma, taps: &[f32], first: usize, out: &mut [f32]) -> ()
}

/// One pixel's numerator and denominator from its window's moments (means, second
/// moments), branch-free so that a row of them vectorises.
#[inline(always)]
fn statistic(mx: f32, my: f32, xx: f32, yy: f32, xy: f32, gain_limit: f32) -> (f32, f32) {
    let s1 = (xx - mx * mx).max(0.0);
    let s2 = (yy - my * my).max(0.0);
    let s12 = xy - mx * my;
    let g = s12 / (s1 + EPS);
    let sv = s2 - g * s12;
    // σ1² ≈ 0: no gain, and all of σ2² is noise.
    let flat1 = s1 < EPS;
    let (g, sv, s1) = (
        if flat1 { 0.0 } else { g },
        if flat1 { s2 } else { sv },
        if flat1 { 0.0 } else { s1 },
    );
    // σ2² ≈ 0: no gain and no noise.
    let flat2 = s2 < EPS;
    let (g, sv) = (if flat2 { 0.0 } else { g }, if flat2 { 0.0 } else { sv });
    // A negative gain: none, and σ2² is noise.
    let negative = g < 0.0;
    let (g, sv) = (
        if negative { 0.0 } else { g },
        if negative { s2 } else { sv },
    );
    let sv = sv.max(EPS);
    let g = g.min(gain_limit);
    let num = log2_fast(1.0 + g * g * s1 / (sv + SIGMA_NSQ));
    let num = if s12 < 0.0 { 0.0 } else { num };
    let den = log2_fast(1.0 + s1 / SIGMA_NSQ);
    // A flat reference.
    let low = s1 < SIGMA_NSQ;
    (
        if low {
            1.0 - s2 * (SIGMA_NSQ * SIGMA_NSQ / (255.0 * 255.0))
        } else {
            num
        },
        if low { 1.0 } else { den },
    )
}

/// Columns worked on at a time: the five moment sums of a chunk stay in registers.
const CHUNK: usize = 16;

/// The vertical window sums of the five moments at columns `c0 .. c0 + n` (n ≤
/// [`CHUNK`]; called with n = CHUNK, the loops become whole vectors) of the window's rows.
#[inline(always)]
fn vertical_chunk<const FMA: bool>(
    xs: &[&[f32]; MAX_TAPS],
    ys: &[&[f32]; MAX_TAPS],
    taps: &[f32],
    c0: usize,
    n: usize,
) -> [[f32; CHUNK]; 5] {
    let mut a = [[0f32; CHUNK]; 5];
    for ((&t, xr), yr) in taps.iter().zip(xs).zip(ys) {
        let (xr, yr) = (&xr[c0..c0 + n], &yr[c0..c0 + n]);
        for l in 0..n {
            let (p, q) = (xr[l], yr[l]);
            let (tp, tq) = (t * p, t * q);
            a[0][l] += tp;
            a[1][l] += tq;
            a[2][l] = madd::<FMA>(tp, p, a[2][l]);
            a[3][l] = madd::<FMA>(tq, q, a[3][l]);
            a[4][l] = madd::<FMA>(tp, q, a[4][l]);
        }
    }
    a
}

/// Σ num and Σ den over the output rows `rows` of one scale, written for the compiler to
/// vectorise: each row's five moment sums are filtered vertically, a chunk of columns at a
/// time, into five rows padded with their mirrored ends; then filtered horizontally and
/// turned into num and den, again a chunk at a time.
#[inline(always)]
fn band_sums<const FMA: bool>(
    x: &Luma,
    y: &Luma,
    taps: &[f32],
    gain_limit: f32,
    rows: std::ops::Range<usize>,
) -> (f64, f64) {
    let w = x.w;
    let r = taps.len() / 2;
    // Room for a whole chunk past the last column's window.
    let mut vertical: [Vec<f32>; 5] = std::array::from_fn(|_| vec![0f32; w + 2 * r + CHUNK]);
    let (mut num, mut den) = (0f64, 0f64);
    for row in rows {
        let (xs, ys) = (x.window_rows(taps, row), y.window_rows(taps, row));
        let mut c0 = 0;
        while c0 < w {
            let n = CHUNK.min(w - c0);
            let a = if n == CHUNK {
                vertical_chunk::<FMA>(&xs, &ys, taps, c0, CHUNK)
            } else {
                vertical_chunk::<FMA>(&xs, &ys, taps, c0, n)
            };
            for (v, a) in vertical.iter_mut().zip(&a) {
                v[r + c0..r + c0 + n].copy_from_slice(&a[..n]);
            }
            c0 += CHUNK;
        }
        for v in vertical.iter_mut() {
            for k in 1..=r {
                v[r - k] = v[r + reflect(-(k as isize), w)];
                v[r + w - 1 + k] = v[r + reflect((w - 1 + k) as isize, w)];
            }
        }
        let (mut num_lanes, mut den_lanes) = ([0f32; CHUNK], [0f32; CHUNK]);
        let mut c0 = 0;
        while c0 < w {
            // The five maps' sums side by side for each tap: five independent chains of
            // multiply-adds (one map's taps alone wait on each other's latency).
            let mut f = [[0f32; CHUNK]; 5];
            for (k, &t) in taps.iter().enumerate() {
                for (f, v) in f.iter_mut().zip(&vertical) {
                    let src = &v[c0 + k..c0 + k + CHUNK];
                    for l in 0..CHUNK {
                        f[l] = madd::<FMA>(t, src[l], f[l]);
                    }
                }
            }
            let n = CHUNK.min(w - c0);
            for l in 0..CHUNK {
                let (nv, dv) = statistic(f[0][l], f[1][l], f[2][l], f[3][l], f[4][l], gain_limit);
                // Lanes past the row's end hold other values: not counted.
                let inside = l < n;
                num_lanes[l] += if inside { nv } else { 0.0 };
                den_lanes[l] += if inside { dv } else { 0.0 };
            }
            c0 += CHUNK;
        }
        num += num_lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
        den += den_lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    (num, den)
}

simd_variants! {
    /// [`band_sums`] for an instruction set.
    fn band_sums_for = band_sums(
        x: &Luma,
        y: &Luma,
        taps: &[f32],
        gain_limit: f32,
        rows: std::ops::Range<usize>,
    ) -> (f64, f64)
}

/// Σ num and Σ den of one scale, in bands of rows on every thread.
fn scale_sums(simd: Simd, x: &Luma, y: &Luma, taps: &[f32], gain_limit: f32) -> (f64, f64) {
    let h = x.h;
    (0..h.div_ceil(BAND))
        .into_par_iter()
        .map(|band| {
            let rows = band * BAND..((band + 1) * BAND).min(h);
            band_sums_for(simd, x, y, taps, gain_limit, rows)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The buffers of [`Vif::features_of`], kept from frame to frame: the two planes of each
/// scale after the first.
#[derive(Default)]
pub struct Vif {
    scales: [(Luma, Luma); SCALES - 1],
}

impl Vif {
    /// Bytes its buffers hold.
    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.scales
            .iter()
            .map(|(x, y)| x.allocated_bytes() + y.allocated_bytes())
            .sum()
    }

    /// The four VIF features of a luma pair of the same size, with the model's
    /// enhancement gain limit.
    pub fn features_of(
        &mut self,
        simd: Simd,
        x: &Luma,
        y: &Luma,
        gain_limit: f64,
    ) -> [f64; SCALES] {
        let simd = usable(simd);
        let mut out = [1.0; SCALES];
        for (s, o) in out.iter_mut().enumerate() {
            let taps = window(s);
            let (x, y) = match s {
                0 => (x, y),
                _ => {
                    let (done, rest) = self.scales.split_at_mut(s - 1);
                    let (sx, sy) = match done.last() {
                        None => (x, y),
                        Some((px, py)) => (px, py),
                    };
                    let (nx, ny) = &mut rest[0];
                    nx.half_of(simd, sx, &taps);
                    ny.half_of(simd, sy, &taps);
                    (&*nx, &*ny)
                }
            };
            if x.w == 0 || x.h == 0 {
                break;
            }
            let (num, den) = scale_sums(simd, x, y, &taps, gain_limit as f32);
            *o = if den > 0.0 { num / den } else { 1.0 };
        }
        out
    }
}

/// [`Vif::features_of`] of two planes (`scale` brings their samples to 8-bit units), with
/// buffers of its own.
pub fn vif<R: RowSource>(
    simd: Simd,
    reference: &R,
    distorted: &R,
    scale: f32,
    gain_limit: f64,
) -> [f64; SCALES] {
    let (x, y) = (Luma::of(reference, scale), Luma::of(distorted, scale));
    Vif::default().features_of(simd, &x, &y, gain_limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::rows::Plane;

    #[test]
    fn the_windows_are_libvmafs() {
        let w0 = window(0);
        assert_eq!(w0.len(), 17);
        assert!((w0[0] - 0.007_456_269).abs() < 1e-8);
        assert_eq!(window(3).len(), 3);
        assert!((window(2)[2] - 0.402_619_95).abs() < 1e-7);
        for s in 0..SCALES {
            assert!((window(s).iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn identical_textured_planes_score_one_at_every_scale() {
        let p = Plane::from_fn(64, 48, |x, y| ((x * 7 + y * 13) % 29) as f32 * 8.0);
        let v = vif(Simd::active(), &p, &p, 1.0, 100.0);
        for s in v {
            assert!((s - 1.0).abs() < 1e-4, "{v:?}");
        }
    }

    #[test]
    fn noise_lowers_vif_and_the_gain_limit_caps_enhancement() {
        let p = Plane::from_fn(64, 48, |x, y| ((x * 7 + y * 13) % 29) as f32 * 8.0);
        let noisy = Plane::from_fn(64, 48, |x, y| {
            ((x * 7 + y * 13) % 29) as f32 * 8.0 + ((x * 31 + y * 17) % 11) as f32 * 3.0
        });
        let v = vif(Simd::active(), &p, &noisy, 1.0, 100.0);
        assert!(v[0] < 0.9, "{v:?}");
        // A contrast-enhanced copy scores above 1 unless the gain is limited to 1.
        let enhanced = Plane::from_fn(64, 48, |x, y| ((x * 7 + y * 13) % 29) as f32 * 8.0 * 1.3);
        let free = vif(Simd::active(), &p, &enhanced, 1.0, 100.0);
        let limited = vif(Simd::active(), &p, &enhanced, 1.0, 1.0);
        assert!(
            free[0] > 1.05 && limited[0] <= 1.0 + 1e-4,
            "{free:?} {limited:?}"
        );
    }
}
