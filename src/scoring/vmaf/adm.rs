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

use super::{Luma, lanes_sum, madd, usable};
use crate::scoring::native::Simd;
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
pub(crate) const LO: [f32; 4] = [0.482_962_9, 0.836_516_3, 0.224_143_87, -0.129_409_52];
pub(crate) const HI: [f32; 4] = [-0.129_409_52, -0.224_143_87, 0.836_516_3, -0.482_962_9];
/// The masking window's weight: 1/30 around the centre, twice that at it.
const ONE_BY_30: f32 = 1.0 / 30.0;

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

/// One level of the transform: the approximation and the three detail bands
/// (horizontal, vertical, diagonal).
#[derive(Default)]
struct Level {
    a: Luma,
    detail: [Luma; 3],
}

/// Output rows a thread works on at a time.
const BAND: usize = 16;

/// Filters a row, padded so that `p[m]` is column m − 1 (mirrored), with the four taps at
/// every second column: `out[j] = Σ f[k]·p[2j + k]`, read from its even and odd columns so
/// that the loads are contiguous.
#[inline(always)]
fn decimate_row<const FMA: bool>(even: &[f32], odd: &[f32], f: &[f32; 4], out: &mut [f32]) {
    let n = out.len();
    let (e0, o0, e1, o1) = (&even[..n], &odd[..n], &even[1..n + 1], &odd[1..n + 1]);
    for j in 0..n {
        let acc = f[0] * e0[j];
        let acc = madd::<FMA>(f[1], o0[j], acc);
        let acc = madd::<FMA>(f[2], e1[j], acc);
        out[j] = madd::<FMA>(f[3], o1[j], acc);
    }
}

/// Rows `rows` of one level of the wavelet transform of `src` into `bands` (A, H, V, D:
/// slices of those rows).
#[inline(always)]
fn dwt_rows<const FMA: bool>(src: &Luma, rows: std::ops::Range<usize>, bands: [&mut [f32]; 4]) {
    let (w, h) = (src.w, src.h);
    let w2 = w.div_ceil(2);
    let padded = w + 3;
    let mut lo = vec![0f32; padded];
    let mut hi = vec![0f32; padded];
    let half = padded.div_ceil(2);
    let mut split = [
        vec![0f32; half],
        vec![0f32; half],
        vec![0f32; half],
        vec![0f32; half],
    ];
    let [a, hb, vb, d] = bands;
    for (r, i) in rows.enumerate() {
        let ys: [&[f32]; 4] =
            std::array::from_fn(|k| src.row(mirror(2 * i as isize - 1 + k as isize, h)));
        {
            let (lo, hi) = (&mut lo[1..w + 1], &mut hi[1..w + 1]);
            let (s0, s1, s2, s3) = (&ys[0][..w], &ys[1][..w], &ys[2][..w], &ys[3][..w]);
            for x in 0..w {
                let l = LO[0] * s0[x];
                let l = madd::<FMA>(LO[1], s1[x], l);
                let l = madd::<FMA>(LO[2], s2[x], l);
                lo[x] = madd::<FMA>(LO[3], s3[x], l);
                let g = HI[0] * s0[x];
                let g = madd::<FMA>(HI[1], s1[x], g);
                let g = madd::<FMA>(HI[2], s2[x], g);
                hi[x] = madd::<FMA>(HI[3], s3[x], g);
            }
        }
        for row in [&mut lo, &mut hi] {
            row[0] = row[1 + mirror(-1, w)];
            row[w + 1] = row[1 + mirror(w as isize, w)];
            row[w + 2] = row[1 + mirror(w as isize + 1, w)];
        }
        let [le, lodd, he, hodd] = &mut split;
        for (q, (l, g)) in lo.chunks_exact(2).zip(hi.chunks_exact(2)).enumerate() {
            (le[q], lodd[q], he[q], hodd[q]) = (l[0], l[1], g[0], g[1]);
        }
        if padded % 2 == 1 {
            le[half - 1] = lo[padded - 1];
            he[half - 1] = hi[padded - 1];
        }
        let at = r * w2..(r + 1) * w2;
        decimate_row::<FMA>(&split[0], &split[1], &LO, &mut a[at.clone()]);
        decimate_row::<FMA>(&split[0], &split[1], &HI, &mut vb[at.clone()]);
        decimate_row::<FMA>(&split[2], &split[3], &LO, &mut hb[at.clone()]);
        decimate_row::<FMA>(&split[2], &split[3], &HI, &mut d[at]);
    }
}

simd_variants! {
    /// [`dwt_rows`] for an instruction set.
    fn dwt_rows_for = dwt_rows(src: &Luma, rows: std::ops::Range<usize>, bands: [&mut [f32]; 4]) -> ()
}

/// One level of the wavelet transform of `src` into `out`: (h + 1) / 2 rows of
/// (w + 1) / 2.
fn dwt(simd: Simd, src: &Luma, out: &mut Level) {
    let (w2, h2) = (src.w.div_ceil(2), src.h.div_ceil(2));
    out.a.reshape(w2, h2);
    for d in out.detail.iter_mut() {
        d.reshape(w2, h2);
    }
    let [hb, vb, db] = &mut out.detail;
    let chunk = (w2 * BAND).max(1);
    out.a
        .v
        .par_chunks_mut(chunk)
        .zip(hb.v.par_chunks_mut(chunk))
        .zip(vb.v.par_chunks_mut(chunk))
        .zip(db.v.par_chunks_mut(chunk))
        .enumerate()
        .for_each(|(band, (((a, hb), vb), db))| {
            let rows = band * BAND..(band * BAND + a.len() / w2.max(1)).min(h2);
            dwt_rows_for(simd, src, rows, [a, hb, vb, db]);
        });
}

/// Watson's contrast sensitivity weights of level `level` for the horizontal and
/// vertical bands and for the diagonal one: the inverse of the quantisation step of his
/// 1997 model of 7/9 wavelet noise visibility (luma thresholds, basis amplitudes of
/// orientations 1 and 2).
pub(crate) fn csf_weights(level: usize) -> [f32; 3] {
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
pub(crate) fn centre(n: usize) -> std::ops::Range<usize> {
    let cut = (n as f64 * BORDER - 0.5).max(0.0) as usize;
    cut..n - cut
}

/// The 3-norm of one band's sum of cubes over the centre, plus the noise floor.
pub(crate) fn norm3(cubes: f64, area: usize) -> f64 {
    cubes.cbrt() + (area as f64 * NOISE_WEIGHT).cbrt()
}

/// The distorted detail `t` that is the reference's `o` carried over (the restored
/// detail): `o` scaled by t / o clipped to [0, 1], or, where the orientations are
/// `aligned`, `t` itself up to the gain limit times that.
#[inline(always)]
fn restored(o: f32, t: f32, aligned: bool, gain_limit: f32) -> f32 {
    let k = (t / (o + 1e-30)).clamp(0.0, 1.0);
    let rst = k * o;
    let boosted = if rst > 0.0 {
        (rst * gain_limit).min(t)
    } else if rst < 0.0 {
        (rst * gain_limit).max(t)
    } else {
        rst
    };
    if aligned { boosted } else { rst }
}

/// Whether the (H, V) orientations of the reference's and the distorted detail are within
/// 1° of each other.
#[inline(always)]
fn aligned(o: [f32; 3], t: [f32; 3]) -> bool {
    // cos²(1°).
    const COS_1DEG_SQ: f32 = 0.999_695_4;
    let dot = o[0] * t[0] + o[1] * t[1];
    let (om, tm) = (o[0] * o[0] + o[1] * o[1], t[0] * t[0] + t[1] * t[1]);
    dot >= 0.0 && dot * dot >= COS_1DEG_SQ * om * tm
}

/// A row of the masking sum: Σ over the bands of |csf-weighted impairment| / 30.
#[inline(always)]
fn mask_row<const FMA: bool>(
    refs: [&[f32]; 3],
    dists: [&[f32]; 3],
    rf: [f32; 3],
    gain_limit: f32,
    out: &mut [f32],
) {
    for (x, s) in out.iter_mut().enumerate() {
        let o = [refs[0][x], refs[1][x], refs[2][x]];
        let t = [dists[0][x], dists[1][x], dists[2][x]];
        let al = aligned(o, t);
        let mut sum = 0f32;
        for b in 0..3 {
            let a = t[b] - restored(o[b], t[b], al, gain_limit);
            sum += (rf[b] * a).abs();
        }
        *s = sum * ONE_BY_30;
    }
}

/// The cubes of row `y`'s masked, weighted restored detail over columns `cols`, per band;
/// `mask` is the row's masking sum and those above and below it.
#[inline(always)]
fn detail_row<const FMA: bool>(
    refs: [&[f32]; 3],
    dists: [&[f32]; 3],
    mask: [&[f32]; 3],
    cols: std::ops::Range<usize>,
    rf: [f32; 3],
    gain_limit: f32,
) -> [f64; 3] {
    let w = mask[1].len();
    let mut sums = [0f32; 3];
    for x in cols {
        let (l, r) = (mirror(x as isize - 1, w), mirror(x as isize + 1, w));
        let column = |c: usize| mask[0][c] + mask[1][c] + mask[2][c];
        // The 3×3 sum, plus the centre once more: 2/30 at the centre, 1/30 around.
        let threshold = column(l) + column(x) + column(r) + mask[1][x];
        let o = [refs[0][x], refs[1][x], refs[2][x]];
        let t = [dists[0][x], dists[1][x], dists[2][x]];
        let al = aligned(o, t);
        for b in 0..3 {
            let v = ((rf[b] * restored(o[b], t[b], al, gain_limit)).abs() - threshold).max(0.0);
            sums[b] = madd::<FMA>(v * v, v, sums[b]);
        }
    }
    sums.map(f64::from)
}

simd_variants! {
    /// [`mask_row`] for an instruction set.
    fn mask_row_for = mask_row(
        refs: [&[f32]; 3],
        dists: [&[f32]; 3],
        rf: [f32; 3],
        gain_limit: f32,
        out: &mut [f32],
    ) -> ()
}

simd_variants! {
    /// [`detail_row`] for an instruction set.
    fn detail_row_for = detail_row(
        refs: [&[f32]; 3],
        dists: [&[f32]; 3],
        mask: [&[f32]; 3],
        cols: std::ops::Range<usize>,
        rf: [f32; 3],
        gain_limit: f32,
    ) -> [f64; 3]
}

/// One level's numerator and denominator; `mask` is scratch.
fn level_sums(
    simd: Simd,
    reference: &[Luma; 3],
    distorted: &[Luma; 3],
    level: usize,
    gain_limit: f32,
    mask: &mut Luma,
) -> (f64, f64) {
    let (w, h) = (reference[0].w, reference[0].h);
    let rf = csf_weights(level);
    let (rows, cols) = (centre(h), centre(w));
    let area = rows.len() * cols.len();
    let ref_rows = |y: usize| [0, 1, 2].map(|b| reference[b].row(y));
    let dist_rows = |y: usize| [0, 1, 2].map(|b| distorted[b].row(y));
    let den_cubes = rows
        .clone()
        .into_par_iter()
        .map(|y| {
            let refs = ref_rows(y);
            let mut sums = [0f64; 3];
            for (b, sum) in sums.iter_mut().enumerate() {
                let row = &refs[b][cols.clone()];
                *sum = lanes_sum(row, row, |v, _| {
                    let a = (rf[b] * v).abs();
                    a * a * a
                });
            }
            sums
        })
        .reduce(|| [0.0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    mask.reshape(w, h);
    mask.v
        .par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, out)| mask_row_for(simd, ref_rows(y), dist_rows(y), rf, gain_limit, out));
    let mask = &*mask;
    let num_cubes = rows
        .clone()
        .into_par_iter()
        .map(|y| {
            let around = [-1isize, 0, 1].map(|d| mask.row(mirror(y as isize + d, h)));
            detail_row_for(
                simd,
                ref_rows(y),
                dist_rows(y),
                around,
                cols.clone(),
                rf,
                gain_limit,
            )
        })
        .reduce(|| [0.0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    let num = num_cubes.iter().map(|c| norm3(*c, area)).sum();
    let den = den_cubes.iter().map(|c| norm3(*c, area)).sum();
    (num, den)
}

/// The buffers of [`Adm::adm2_of`], kept from frame to frame: each level of both
/// transforms, and the masking sums.
#[derive(Default)]
pub struct Adm {
    levels: [(Level, Level); LEVELS],
    mask: Luma,
}

impl Adm {
    /// Bytes its buffers hold.
    pub(crate) fn allocated_bytes(&self) -> u64 {
        let level = |l: &Level| {
            l.a.allocated_bytes() + l.detail.iter().map(Luma::allocated_bytes).sum::<u64>()
        };
        let levels: u64 = self.levels.iter().map(|(x, y)| level(x) + level(y)).sum();
        levels + self.mask.allocated_bytes()
    }

    /// ADM2 of a luma pair of the same size, with the model's enhancement gain limit.
    pub fn adm2_of(&mut self, simd: Simd, x: &Luma, y: &Luma, gain_limit: f64) -> f64 {
        let simd = usable(simd);
        let (w, h) = (x.w, x.h);
        if w == 0 || h == 0 {
            return 1.0;
        }
        let (mut num, mut den) = (0.0, 0.0);
        for level in 0..LEVELS {
            let (done, rest) = self.levels.split_at_mut(level);
            let (lx, ly) = &mut rest[0];
            let (sx, sy) = match done.last() {
                None => (x, y),
                Some((px, py)) => (&px.a, &py.a),
            };
            dwt(simd, sx, lx);
            dwt(simd, sy, ly);
            let (n, d) = level_sums(
                simd,
                &lx.detail,
                &ly.detail,
                level,
                gain_limit as f32,
                &mut self.mask,
            );
            num += n;
            den += d;
        }
        ratio(num, den, w * h)
    }
}

/// ADM2 from the levels' summed numerators and denominators of a `pixels`-sample frame:
/// sums below libvmaf's floor (1e-10 for a 1080p frame, in proportion) count as 0, and a
/// frame without detail scores 1.
pub(crate) fn ratio(num: f64, den: f64, pixels: usize) -> f64 {
    let floor = 1e-10 * pixels as f64 / (1920.0 * 1080.0);
    let num = if num < floor { 0.0 } else { num };
    let den = if den < floor { 0.0 } else { den };
    if den == 0.0 { 1.0 } else { num / den }
}

/// [`Adm::adm2_of`] of two planes (`scale` brings their samples to 8-bit units), with
/// buffers of its own.
pub fn adm2<R: RowSource>(
    simd: Simd,
    reference: &R,
    distorted: &R,
    scale: f32,
    gain_limit: f64,
) -> f64 {
    let (x, y) = (Luma::of(reference, scale), Luma::of(distorted, scale));
    Adm::default().adm2_of(simd, &x, &y, gain_limit)
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
        let g = Luma {
            w: 9,
            h: 7,
            v: vec![10.0; 63],
        };
        let mut l = Level::default();
        dwt(Simd::active(), &g, &mut l);
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
        assert!((adm2(Simd::active(), &p, &p, 1.0, 100.0) - 1.0).abs() < 1e-6);
        let flat = Plane::from_fn(96, 64, |x, y| ((x * 7 + y * 13) % 29) as f32 * 2.0 + 100.0);
        let lower = adm2(Simd::active(), &p, &flat, 1.0, 100.0);
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
