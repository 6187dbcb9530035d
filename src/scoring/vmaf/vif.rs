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

use crate::scoring::rows::RowSource;

/// The noise variance σn², in 8-bit units.
const SIGMA_NSQ: f32 = 2.0;
const EPS: f32 = 1e-10;
/// Output rows a thread works on at a time.
const BAND: usize = 16;
const SCALES: usize = 4;

/// The window of scale `s`, normalised.
fn window(s: usize) -> Vec<f32> {
    let n = (1usize << (4 - s)) + 1;
    let sd = n as f64 / 5.0;
    let centre = (n - 1) as f64 / 2.0;
    let g: Vec<f64> = (0..n)
        .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * sd * sd)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    g.iter().map(|v| (v / sum) as f32).collect()
}

/// Row or column `i` mirrored into `0..n` (−1 → 1, n → n − 2), again for planes narrower
/// than the window.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    loop {
        if i < 0 {
            i = -i;
        } else if i >= n {
            i = 2 * n - i - 2;
        } else {
            return i as usize;
        }
        if n == 1 {
            return 0;
        }
    }
}

/// A plane of samples in 8-bit units, shifted by a constant (which no variance or
/// covariance sees, and which keeps float32 from losing them to E[x²] − E[x]²).
struct Samples {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Samples {
    fn read<R: RowSource>(plane: &R, scale: f32) -> Samples {
        let (w, h) = (plane.width(), plane.height());
        let mut v = vec![0f32; w * h];
        v.par_chunks_mut(w.max(1)).enumerate().for_each(|(y, row)| {
            plane.read_row(y, row);
            for s in row.iter_mut() {
                *s = *s * scale - 128.0;
            }
        });
        Samples { w, h, v }
    }

    /// Filtered with `taps` and every second row and column kept.
    fn filtered_half(&self, taps: &[f32]) -> Samples {
        let (w2, h2) = (self.w / 2, self.h / 2);
        let mut v = vec![0f32; w2 * h2];
        let r = taps.len() / 2;
        v.par_chunks_mut(w2.max(1))
            .enumerate()
            .for_each(|(y2, out)| {
                let y = 2 * y2;
                let mut column = vec![0f32; self.w];
                for (k, t) in taps.iter().enumerate() {
                    let src = reflect(y as isize + k as isize - r as isize, self.h);
                    for (c, s) in column
                        .iter_mut()
                        .zip(&self.v[src * self.w..(src + 1) * self.w])
                    {
                        *c += t * s;
                    }
                }
                for (x2, o) in out.iter_mut().enumerate() {
                    let x = 2 * x2;
                    *o = taps
                        .iter()
                        .enumerate()
                        .map(|(k, t)| {
                            t * column[reflect(x as isize + k as isize - r as isize, self.w)]
                        })
                        .sum();
                }
            });
        Samples { w: w2, h: h2, v }
    }
}

/// The five moments of a reference and a distorted sample, and their window sums.
#[derive(Clone, Copy, Default)]
struct Moments {
    x: f32,
    y: f32,
    xx: f32,
    yy: f32,
    xy: f32,
}

impl Moments {
    fn of(x: f32, y: f32) -> Moments {
        Moments {
            x,
            y,
            xx: x * x,
            yy: y * y,
            xy: x * y,
        }
    }

    fn add_scaled(&mut self, t: f32, m: &Moments) {
        self.x += t * m.x;
        self.y += t * m.y;
        self.xx += t * m.xx;
        self.yy += t * m.yy;
        self.xy += t * m.xy;
    }
}

/// One pixel's numerator and denominator from its window's moments.
fn statistic(m: &Moments, gain_limit: f32) -> (f32, f32) {
    let mut s1 = (m.xx - m.x * m.x).max(0.0);
    let s2 = (m.yy - m.y * m.y).max(0.0);
    let s12 = m.xy - m.x * m.y;
    let mut g = s12 / (s1 + EPS);
    let mut sv = s2 - g * s12;
    if s1 < EPS {
        g = 0.0;
        sv = s2;
        s1 = 0.0;
    }
    if s2 < EPS {
        g = 0.0;
        sv = 0.0;
    }
    if g < 0.0 {
        sv = s2;
        g = 0.0;
    }
    let sv = sv.max(EPS);
    let g = g.min(gain_limit);
    if s1 < SIGMA_NSQ {
        return (1.0 - s2 * SIGMA_NSQ * SIGMA_NSQ / (255.0 * 255.0), 1.0);
    }
    let num = if s12 < 0.0 {
        0.0
    } else {
        (1.0 + g * g * s1 / (sv + SIGMA_NSQ)).log2()
    };
    (num, (1.0 + s1 / SIGMA_NSQ).log2())
}

/// Σ num and Σ den of one scale.
fn scale_sums(x: &Samples, y: &Samples, taps: &[f32], gain_limit: f32) -> (f64, f64) {
    let (w, h) = (x.w, x.h);
    let r = taps.len() / 2;
    (0..h.div_ceil(BAND))
        .into_par_iter()
        .map(|band| {
            let mut column = vec![Moments::default(); w];
            let (mut num, mut den) = (0f64, 0f64);
            for row in band * BAND..((band + 1) * BAND).min(h) {
                column.fill(Moments::default());
                for (k, t) in taps.iter().enumerate() {
                    let src = reflect(row as isize + k as isize - r as isize, h) * w;
                    let (xr, yr) = (&x.v[src..src + w], &y.v[src..src + w]);
                    for ((c, a), b) in column.iter_mut().zip(xr).zip(yr) {
                        c.add_scaled(*t, &Moments::of(*a, *b));
                    }
                }
                let (mut row_num, mut row_den) = (0f32, 0f32);
                for col in 0..w {
                    let mut m = Moments::default();
                    for (k, t) in taps.iter().enumerate() {
                        m.add_scaled(
                            *t,
                            &column[reflect(col as isize + k as isize - r as isize, w)],
                        );
                    }
                    let (n, d) = statistic(&m, gain_limit);
                    row_num += n;
                    row_den += d;
                }
                num += f64::from(row_num);
                den += f64::from(row_den);
            }
            (num, den)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The four VIF features of a luma pair of the same size (`scale` brings the samples to
/// 8-bit units), with the model's enhancement gain limit.
pub fn vif<R: RowSource>(
    reference: &R,
    distorted: &R,
    scale: f32,
    gain_limit: f64,
) -> [f64; SCALES] {
    let mut x = Samples::read(reference, scale);
    let mut y = Samples::read(distorted, scale);
    let mut out = [1.0; SCALES];
    for (s, o) in out.iter_mut().enumerate() {
        let taps = window(s);
        if s > 0 {
            x = x.filtered_half(&taps);
            y = y.filtered_half(&taps);
        }
        if x.w == 0 || x.h == 0 {
            break;
        }
        let (num, den) = scale_sums(&x, &y, &taps, gain_limit as f32);
        *o = if den > 0.0 { num / den } else { 1.0 };
    }
    out
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
        let v = vif(&p, &p, 1.0, 100.0);
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
        let v = vif(&p, &noisy, 1.0, 100.0);
        assert!(v[0] < 0.9, "{v:?}");
        // A contrast-enhanced copy scores above 1 unless the gain is limited to 1.
        let enhanced = Plane::from_fn(64, 48, |x, y| ((x * 7 + y * 13) % 29) as f32 * 8.0 * 1.3);
        let free = vif(&p, &enhanced, 1.0, 100.0);
        let limited = vif(&p, &enhanced, 1.0, 1.0);
        assert!(
            free[0] > 1.05 && limited[0] <= 1.0 + 1e-4,
            "{free:?} {limited:?}"
        );
    }

    #[test]
    fn edges_mirror_without_repeating() {
        assert_eq!(reflect(-1, 10), 1);
        assert_eq!(reflect(10, 10), 8);
        assert_eq!(reflect(-9, 4), 3);
        assert_eq!(reflect(3, 1), 0);
    }
}
