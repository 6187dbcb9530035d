//! VMAF's ADM2 feature: the detail loss measure of Li et al. ("Image quality assessment
//! by separately evaluating detail losses and additive impairments", 2011), as libvmaf
//! computes it.
//!
//! Both luma planes (8-bit units, shifted by −128) go through four levels of a
//! Daubechies-2 wavelet transform; each level's approximation feeds the next. At each
//! level, the distorted detail bands (horizontal, vertical, diagonal) are split into what
//! is left of the reference's detail (restored: the reference scaled by the distorted/
//! reference ratio clipped to [0, 1], or, where the two (H, V) orientations point within
//! 1° of each other, the distorted itself up to the enhancement gain limit) and an
//! additive impairment (the rest). Both are weighted by Watson's contrast sensitivity for
//! a display 3 heights away, 1080 rows high. The restored detail is masked by the
//! impairment around it (a 3×3 window over all three bands) and summed as a 3-norm over
//! the frame's centre (a tenth of each side left out); the reference's detail, likewise,
//! gives the denominator. ADM2 is the ratio of the sums over the four levels.

use rayon::prelude::*;

use crate::scoring::rows::RowSource;

const LEVELS: usize = 4;
/// The part of each side left out of the sums.
const BORDER: f64 = 0.1;
/// Weight of the noise floor added to each band's sum.
const NOISE_WEIGHT: f64 = 0.03125;
/// Watson's display: the viewing distance in picture heights, and the rows.
const VIEW_DISTANCE: f64 = 3.0;
const DISPLAY_ROWS: f64 = 1080.0;
/// The Daubechies-2 analysis filters, low- and high-pass.
const LO: [f32; 4] = [0.482_962_9, 0.836_516_3, 0.224_143_87, -0.129_409_52];
const HI: [f32; 4] = [-0.129_409_52, -0.224_143_87, 0.836_516_3, -0.482_962_9];
/// The masking window: 1/30 around the centre, 1/15 at it.
const ONE_BY_30: f32 = 1.0 / 30.0;
const ONE_BY_15: f32 = 1.0 / 15.0;

/// Index `k` (at most one step outside `0..n`) mirrored into it: −1 → 1, n → n − 1.
fn mirror(k: isize, n: usize) -> usize {
    let n = n as isize;
    let m = if k < 0 {
        -k
    } else if k >= n {
        2 * n - k - 1
    } else {
        k
    };
    m.clamp(0, n - 1) as usize
}

/// A plane of floats, row by row.
#[derive(Clone)]
struct Grid {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Grid {
    fn at(&self, y: usize, x: usize) -> f32 {
        self.v[y * self.w + x]
    }
}

/// One level of the transform: the approximation and the three detail bands.
struct Level {
    a: Grid,
    /// Horizontal, vertical and diagonal detail.
    detail: [Grid; 3],
}

/// One level of the wavelet transform of `src`: (h + 1) / 2 rows of (w + 1) / 2.
fn dwt(src: &Grid) -> Level {
    let (w, h) = (src.w, src.h);
    let (w2, h2) = (w.div_ceil(2), h.div_ceil(2));
    let taps = |i: usize, n: usize| -> [usize; 4] {
        std::array::from_fn(|k| mirror(2 * i as isize - 1 + k as isize, n))
    };
    let rows: Vec<[Vec<f32>; 4]> = (0..h2)
        .into_par_iter()
        .map(|i| {
            let ys = taps(i, h);
            let (mut lo, mut hi) = (vec![0f32; w], vec![0f32; w]);
            for (x, (l, hh)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let s = ys.map(|y| src.at(y, x));
                *l = (0..4).fold(0.0, |acc, k| acc + LO[k] * s[k]);
                *hh = (0..4).fold(0.0, |acc, k| acc + HI[k] * s[k]);
            }
            let horizontal = |v: &[f32], f: &[f32; 4]| -> Vec<f32> {
                (0..w2)
                    .map(|j| {
                        let xs = taps(j, w);
                        (0..4).fold(0.0, |acc, k| acc + f[k] * v[xs[k]])
                    })
                    .collect()
            };
            // A; H (vertical high, horizontal low); V (vertical low, horizontal high); D.
            let out: [Vec<f32>; 4] = [
                horizontal(&lo, &LO),
                horizontal(&hi, &LO),
                horizontal(&lo, &HI),
                horizontal(&hi, &HI),
            ];
            out
        })
        .collect();
    let band = |b: usize| Grid {
        w: w2,
        h: h2,
        v: rows.iter().flat_map(|r| r[b].iter().copied()).collect(),
    };
    Level {
        a: band(0),
        detail: [band(1), band(2), band(3)],
    }
}

/// Watson's contrast sensitivity weights of level `level` for the horizontal and
/// vertical bands and for the diagonal one: the inverse of the quantisation step of his
/// 1997 model of 7/9 wavelet noise visibility (luma thresholds, basis amplitudes of
/// orientations 1 and 2).
fn csf_weights(level: usize) -> [f32; 3] {
    const AMPLITUDES: [[f64; 3]; LEVELS] = [
        [0.62171, 0.67234, 0.72709],
        [0.34537, 0.41317, 0.49428],
        [0.18004, 0.22727, 0.28688],
        [0.091401, 0.11792, 0.15214],
    ];
    let (a, k, f0, g) = (0.495, 0.466, 0.401, [1.501, 1.0, 0.534]);
    // Pixels per degree of visual angle.
    let r = VIEW_DISTANCE * DISPLAY_ROWS * std::f64::consts::PI / 180.0;
    let step = |theta: usize| {
        let t = (2f64.powi(level as i32 + 1) * f0 * g[theta] / r).log10();
        2.0 * a * 10f64.powf(k * t * t) / AMPLITUDES[level][theta]
    };
    let (hv, d) = ((1.0 / step(1)) as f32, (1.0 / step(2)) as f32);
    [hv, hv, d]
}

/// The rows and columns the sums cover: a tenth of each side left out.
fn centre(n: usize) -> std::ops::Range<usize> {
    let cut = (n as f64 * BORDER - 0.5).max(0.0) as usize;
    cut..n - cut
}

/// The 3-norm of one band's sum of cubes over the centre, plus the noise floor.
fn norm3(cubes: f64, area: usize) -> f64 {
    cubes.cbrt() + (area as f64 * NOISE_WEIGHT).cbrt()
}

/// The reference's detail split from the distorted's: (restored, additive) per band.
fn decouple(r: &[Grid; 3], d: &[Grid; 3], gain_limit: f32) -> ([Grid; 3], [Grid; 3]) {
    let cos_1deg_sq = (1f64.to_radians().cos().powi(2)) as f32;
    let n = r[0].v.len();
    let mut restored = [r[0].clone(), r[0].clone(), r[0].clone()];
    let mut additive = [r[0].clone(), r[0].clone(), r[0].clone()];
    for p in 0..n {
        let o = [r[0].v[p], r[1].v[p], r[2].v[p]];
        let t = [d[0].v[p], d[1].v[p], d[2].v[p]];
        let dot = o[0] * t[0] + o[1] * t[1];
        let (o_mag, t_mag) = (o[0] * o[0] + o[1] * o[1], t[0] * t[0] + t[1] * t[1]);
        let aligned = dot >= 0.0 && dot * dot >= cos_1deg_sq * o_mag * t_mag;
        for b in 0..3 {
            let k = (t[b] / (o[b] + 1e-30)).clamp(0.0, 1.0);
            let mut rst = k * o[b];
            if aligned && rst > 0.0 {
                rst = (rst * gain_limit).min(t[b]);
            } else if aligned && rst < 0.0 {
                rst = (rst * gain_limit).max(t[b]);
            }
            restored[b].v[p] = rst;
            additive[b].v[p] = t[b] - rst;
        }
    }
    (restored, additive)
}

/// One level's numerator and denominator.
fn level_sums(
    reference: &[Grid; 3],
    distorted: &[Grid; 3],
    level: usize,
    gain_limit: f32,
) -> (f64, f64) {
    let (w, h) = (reference[0].w, reference[0].h);
    let rf = csf_weights(level);
    let (rows, cols) = (centre(h), centre(w));
    let area = rows.len() * cols.len();
    let den: f64 = (0..3)
        .map(|b| {
            let cubes: f64 = rows
                .clone()
                .map(|y| {
                    cols.clone()
                        .map(|x| f64::from((rf[b] * reference[b].at(y, x)).abs()).powi(3))
                        .sum::<f64>()
                })
                .sum();
            norm3(cubes, area)
        })
        .sum();
    let (restored, additive) = decouple(reference, distorted, gain_limit);
    // The impairment, weighted, and its share of the masking threshold around a pixel.
    let csf_a: Vec<Grid> = (0..3)
        .map(|b| Grid {
            v: additive[b].v.iter().map(|v| rf[b] * v).collect(),
            ..additive[b].clone()
        })
        .collect();
    let csf_f: Vec<Grid> = csf_a
        .iter()
        .map(|g| Grid {
            v: g.v.iter().map(|v| ONE_BY_30 * v.abs()).collect(),
            ..g.clone()
        })
        .collect();
    let cubes = rows
        .clone()
        .into_par_iter()
        .map(|y| {
            let mut sums = [0f64; 3];
            for x in cols.clone() {
                let mut threshold = 0f32;
                for b in 0..3 {
                    let mut s = 0f32;
                    for dy in -1..=1isize {
                        for dx in -1..=1isize {
                            let (yy, xx) = (mirror(y as isize + dy, h), mirror(x as isize + dx, w));
                            s += if dy == 0 && dx == 0 {
                                ONE_BY_15 * csf_a[b].at(y, x).abs()
                            } else {
                                csf_f[b].at(yy, xx)
                            };
                        }
                    }
                    threshold += s;
                }
                for (b, sum) in sums.iter_mut().enumerate() {
                    let v = ((rf[b] * restored[b].at(y, x)).abs() - threshold).max(0.0);
                    *sum += f64::from(v).powi(3);
                }
            }
            sums
        })
        .reduce(|| [0.0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    let num = cubes.iter().map(|c| norm3(*c, area)).sum();
    (num, den)
}

/// ADM2 of a luma pair of the same size (`scale` brings the samples to 8-bit units), with
/// the model's enhancement gain limit.
pub fn adm2<R: RowSource>(reference: &R, distorted: &R, scale: f32, gain_limit: f64) -> f64 {
    let read = |plane: &R| {
        let (w, h) = (plane.width(), plane.height());
        let mut v = vec![0f32; w * h];
        v.par_chunks_mut(w.max(1)).enumerate().for_each(|(y, row)| {
            plane.read_row(y, row);
            for s in row.iter_mut() {
                *s = *s * scale - 128.0;
            }
        });
        Grid { w, h, v }
    };
    let (mut x, mut y) = (read(reference), read(distorted));
    if x.w == 0 || x.h == 0 {
        return 1.0;
    }
    let limit = 1e-10 * (x.w * x.h) as f64 / (1920.0 * 1080.0);
    let (mut num, mut den) = (0.0, 0.0);
    for level in 0..LEVELS {
        let (lx, ly) = (dwt(&x), dwt(&y));
        let (n, d) = level_sums(&lx.detail, &ly.detail, level, gain_limit as f32);
        num += n;
        den += d;
        (x, y) = (lx.a, ly.a);
    }
    let num = if num < limit { 0.0 } else { num };
    let den = if den < limit { 0.0 } else { den };
    if den == 0.0 { 1.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::rows::Plane;

    #[test]
    fn edges_mirror_as_the_transform_needs() {
        assert_eq!(mirror(-1, 8), 1);
        assert_eq!(mirror(8, 8), 7);
        assert_eq!(mirror(9, 8), 6);
        assert_eq!(mirror(3, 8), 3);
    }

    #[test]
    fn the_transform_keeps_a_flat_plane_flat_and_detail_free() {
        let g = Grid {
            w: 9,
            h: 7,
            v: vec![10.0; 63],
        };
        let l = dwt(&g);
        assert_eq!((l.a.w, l.a.h), (5, 4));
        // The low-pass filter sums to √2, so two passes double the level.
        assert!(l.a.v.iter().all(|v| (v - 20.0).abs() < 1e-4), "{:?}", l.a.v);
        for d in &l.detail {
            assert!(d.v.iter().all(|v| v.abs() < 1e-4));
        }
    }

    #[test]
    fn identical_planes_score_one_and_blur_scores_less() {
        let p = Plane::from_fn(96, 64, |x, y| ((x * 7 + y * 13) % 29) as f32 * 8.0);
        assert!((adm2(&p, &p, 1.0, 100.0) - 1.0).abs() < 1e-6);
        let flat = Plane::from_fn(96, 64, |x, y| ((x * 7 + y * 13) % 29) as f32 * 2.0 + 100.0);
        let lower = adm2(&p, &flat, 1.0, 100.0);
        assert!(lower < 0.9, "{lower}");
    }

    #[test]
    fn the_csf_weights_are_watsons() {
        // Level 0, orientation 1: 2·0.495·10^(0.466·log10(2·0.401/56.55)²)/0.67234.
        let r = 3.0 * 1080.0 * std::f64::consts::PI / 180.0;
        let t = (2.0 * 0.401 / r).log10();
        let q = 2.0 * 0.495 * 10f64.powf(0.466 * t * t) / 0.67234;
        assert!((f64::from(csf_weights(0)[0]) - 1.0 / q).abs() < 1e-7);
        // Coarser levels weigh more.
        assert!(csf_weights(3)[2] > csf_weights(0)[2]);
    }
}
