//! The CPU backend: a multi-threaded, cache-blocked kernel in f32.
//!
//! SSIM runs as a separable Gaussian filter over strips of rows: each strip filters its
//! input rows horizontally into a ring of eleven rows of four moment maps (x, y, x² + y²,
//! xy: SSIM needs σx² + σy² only as a sum), then filters that ring vertically and reduces
//! the SSIM and contrast-structure maps row by row. Samples are shifted by the reference plane's mean first, so that
//! E[x²] − E[x]² loses little to float32 cancellation.

use std::convert::Infallible;
use std::ops::Range;

use rayon::prelude::*;

use super::budget::{pooled_plane_bytes, strip_bytes, strip_floats};
use super::rows::{
    ImagePlane, Moments, Plane, RowSource, lane_sum, ms_ssim_pooled_lazily, rough_mean,
    squared_difference_sum, squared_error_map, sse,
};
use super::window::{WINDOW, gaussian, ms_ssim_scales};
use super::{
    Error, ImageView, MapKind, Options, PlaneGeometry, PlaneScores, QualityMap, Scores, Usage,
    combine, ms_ssim_combine, planes_for, ssim_constants,
};

/// SSIM, contrast-structure term and squared error of two planes of the same size, at
/// least [`WINDOW`] wide and high, in one pass.
pub fn ssim_cs<R: RowSource>(x: &R, y: &R, max_value: f64) -> Moments {
    ssim_cs_into(x, y, max_value, None)
}

/// [`ssim_cs`], also writing the SSIM map of the valid region into `map` when given
/// (`(width − 10) × (height − 10)` values, row by row).
pub fn ssim_cs_into<R: RowSource>(
    x: &R,
    y: &R,
    max_value: f64,
    map: Option<&mut [f32]>,
) -> Moments {
    debug_assert!(x.width() >= WINDOW && x.height() >= WINDOW);
    let (c1, c2) = ssim_constants(max_value);
    let out_h = x.height() - (WINDOW - 1);
    let params = KernelParams {
        g: gaussian().map(|v| v as f32),
        offset: rough_mean(x),
        c1: c1 as f32,
        c2: c2 as f32,
    };
    let strips = rayon::current_num_threads() * 4;
    let strip_rows = out_h.div_ceil(strips).max(8);
    let n_strips = out_h.div_ceil(strip_rows);
    let ow = x.width() - (WINDOW - 1);
    // Each strip writes its own rows of the map.
    let outputs: Vec<Option<&mut [f32]>> = match map {
        Some(map) => map.chunks_mut(strip_rows * ow).map(Some).collect(),
        None => (0..n_strips).map(|_| None).collect(),
    };
    let total = outputs
        .into_par_iter()
        .enumerate()
        .map(|(s, map)| {
            let rows = s * strip_rows..((s + 1) * strip_rows).min(out_h);
            let last = s + 1 == n_strips;
            strip(x, y, Strip { rows, last, map }, &params)
        })
        .reduce(Moments::default, |a, b| Moments {
            ssim: a.ssim + b.ssim,
            cs: a.cs + b.cs,
            sse: a.sse + b.sse,
        });
    let n = (out_h * (x.width() - (WINDOW - 1))) as f64;
    Moments {
        ssim: total.ssim / n,
        cs: total.cs / n,
        sse: total.sse,
    }
}

struct KernelParams {
    g: [f32; WINDOW],
    offset: f32,
    c1: f32,
    c2: f32,
}

/// One strip of output rows: the squared error covers its own input rows, and the last
/// strip's also the window's tail; `map` takes its rows of the SSIM map when asked for.
struct Strip<'a> {
    rows: Range<usize>,
    last: bool,
    map: Option<&'a mut [f32]>,
}

/// Sums of one strip.
fn strip<R: RowSource>(x: &R, y: &R, s: Strip<'_>, p: &KernelParams) -> Moments {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { strip_avx2_fma(x, y, s, p) };
    }
    strip_generic::<Separate, R>(x, y, s, p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn strip_avx2_fma<R: RowSource>(x: &R, y: &R, s: Strip<'_>, p: &KernelParams) -> Moments {
    strip_generic::<Fused, R>(x, y, s, p)
}

/// a·b + c, fused where the CPU has FMA.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}
struct Separate;
struct Fused;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// `out[j] = Σ_k g[k]·src[k][j]` over the eleven taps, with the taps unrolled so that
/// each output is accumulated in a register.
#[inline(always)]
fn weighted_sum<M: MulAdd>(out: &mut [f32], g: &[f32; WINDOW], src: [&[f32]; WINDOW]) {
    let n = out.len();
    let s: [&[f32]; WINDOW] = src.map(|s| &s[..n]);
    for (j, o) in out.iter_mut().enumerate() {
        let mut acc = s[0][j] * g[0];
        for k in 1..WINDOW {
            acc = M::mul_add(s[k][j], g[k], acc);
        }
        *o = acc;
    }
}

/// The moment maps filtered: x, y, x² + y² (σx² + σy² needs only their sum) and xy.
pub(crate) const MAPS: usize = 4;

#[inline(always)]
fn strip_generic<M: MulAdd, R: RowSource>(x: &R, y: &R, s: Strip<'_>, p: &KernelParams) -> Moments {
    let Strip {
        rows,
        last,
        mut map,
    } = s;
    let w = x.width();
    let ow = w - (WINDOW - 1);
    // The thread's scratch, reused from strip to strip and frame to frame: every value is
    // written before it is read, so it is neither cleared nor given back.
    let mut scratch = SCRATCH.take();
    scratch.resize(strip_floats(w), 0.0);
    // ring[slot][map] holds one horizontally filtered row of one moment map.
    let (ring, rest) = scratch.split_at_mut(WINDOW * MAPS * ow);
    let (src, rest) = rest.split_at_mut(MAPS * w);
    let (acc, rest) = rest.split_at_mut(MAPS * ow);
    let (ssim_row, rest) = rest.split_at_mut(ow);
    let cs_row = &mut rest[..ow];
    let mut m = Moments::default();
    let off = p.offset;
    let own_rows = if last {
        rows.end + WINDOW - 1
    } else {
        rows.end
    };
    for i in rows.start..rows.end + WINDOW - 1 {
        {
            let (xs, rest) = src.split_at_mut(w);
            let (ys, rest) = rest.split_at_mut(w);
            let (ss, xy) = rest.split_at_mut(w);
            x.read_row(i, xs);
            y.read_row(i, ys);
            if i < own_rows {
                m.sse += squared_difference_sum(xs, ys);
            }
            for j in 0..w {
                let (a, b) = (xs[j] - off, ys[j] - off);
                xs[j] = a;
                ys[j] = b;
                ss[j] = a * a + b * b;
                xy[j] = a * b;
            }
        }
        let slot = (i - rows.start) % WINDOW;
        let ring_row = &mut ring[slot * MAPS * ow..(slot + 1) * MAPS * ow];
        for m in 0..MAPS {
            let input = &src[m * w..(m + 1) * w];
            let taps = std::array::from_fn(|k| &input[k..k + ow]);
            weighted_sum::<M>(&mut ring_row[m * ow..(m + 1) * ow], &p.g, taps);
        }
        if i < rows.start + WINDOW - 1 {
            continue;
        }
        // Output row o = i - (WINDOW - 1) uses input rows o ..= i.
        let first = i + 1 - WINDOW;
        for m in 0..MAPS {
            let taps = std::array::from_fn(|k| {
                let s = (first + k - rows.start) % WINDOW;
                &ring[(s * MAPS + m) * ow..(s * MAPS + m + 1) * ow]
            });
            weighted_sum::<M>(&mut acc[m * ow..(m + 1) * ow], &p.g, taps);
        }
        let (mx, rest) = acc.split_at(ow);
        let (my, rest) = rest.split_at(ow);
        let (mss, mxy) = rest.split_at(ow);
        for j in 0..ow {
            let (ax, ay) = (mx[j], my[j]);
            // σx² + σy², so that identical planes give exactly 2·cov here.
            let variances = mss[j] - (ax * ax + ay * ay);
            let cov = mxy[j] - ax * ay;
            let (ux, uy) = (ax + off, ay + off);
            let (cs_num, cs_den) = (2.0 * cov + p.c2, variances + p.c2);
            let (l_num, l_den) = (2.0 * ux * uy + p.c1, ux * ux + uy * uy + p.c1);
            // Two divisions, so that identical planes give exactly 1 (as libtorch does).
            let cs = cs_num / cs_den;
            cs_row[j] = cs;
            ssim_row[j] = l_num / l_den * cs;
        }
        if let Some(map) = map.as_deref_mut() {
            let o = first - rows.start;
            map[o * ow..(o + 1) * ow].copy_from_slice(ssim_row);
        }
        m.ssim += lane_sum(ssim_row) as f64;
        m.cs += lane_sum(cs_row) as f64;
    }
    SCRATCH.set(scratch);
    m
}

thread_local! {
    /// Each scoring thread's strip buffers (see `strip_generic`).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Scores of one plane pair. MS-SSIM's pooled planes are stored when `keep_pooled`, and
/// otherwise recomputed row by row from the full-size plane as they are read.
pub(crate) fn plane_scores<R: RowSource>(
    x: &R,
    y: &R,
    opts: &Options,
    max_value: f64,
    keep_pooled: bool,
) -> PlaneScores {
    let samples = (x.width() * x.height()) as u64;
    let fits = x.width() >= WINDOW && x.height() >= WINDOW;
    if !fits || !(opts.metrics.ssim || opts.metrics.ms_ssim) {
        return PlaneScores {
            sse: sse(x, y),
            samples,
            map: opts.map.then(|| squared_error_map(x, y)),
            ..Default::default()
        };
    }
    let ssim_map = opts.map && opts.metrics.ssim;
    let (w, h) = (x.width(), x.height());
    let mut map = ssim_map.then(|| vec![0f32; (w - (WINDOW - 1)) * (h - (WINDOW - 1))]);
    let first = ssim_cs_into(x, y, max_value, map.as_deref_mut());
    let map = match map {
        Some(values) => Some(QualityMap::new(MapKind::Ssim, w, h, values)),
        None => opts.map.then(|| squared_error_map(x, y)),
    };
    let mut scores = PlaneScores {
        sse: first.sse,
        samples,
        ssim: opts.metrics.ssim.then_some(first.ssim),
        ms_ssim: None,
        map,
    };
    if opts.metrics.ms_ssim {
        scores.ms_ssim = Some(if keep_pooled {
            let scales = ms_ssim_scales(x.width(), x.height());
            let mut cs = Vec::with_capacity(scales as usize);
            let mut last = first;
            let mut planes: Option<(Plane, Plane)> = None;
            for _ in 1..scales {
                cs.push(last.cs);
                let (px, py) = match &planes {
                    None => rayon::join(|| Plane::pooled(x), || Plane::pooled(y)),
                    Some((a, b)) => rayon::join(|| Plane::pooled(a), || Plane::pooled(b)),
                };
                last = ssim_cs(&px, &py, max_value);
                planes = Some((px, py));
            }
            (ms_ssim_combine(&cs, last.ssim), scales)
        } else {
            let Ok(v) = ms_ssim_pooled_lazily::<Infallible>(x, y, first, |px, py| {
                Ok(ssim_cs(&px, &py, max_value))
            });
            v
        });
    }
    scores
}

/// Scores one image pair on the CPU.
pub fn score(
    reference: &ImageView<'_>,
    distorted: &ImageView<'_>,
    opts: &Options,
) -> Result<Scores, Error> {
    score_within(reference, distorted, opts, 0).map(|(s, _)| s)
}

/// Scores one image pair on the CPU within `budget` bytes of working memory (0 =
/// unlimited), and says how much it used.
pub fn score_within(
    reference: &ImageView<'_>,
    distorted: &ImageView<'_>,
    opts: &Options,
    budget: u64,
) -> Result<(Scores, Usage), Error> {
    reference.check_comparable(distorted, opts.channels)?;
    let max_value = reference.max_value();
    let sources: Vec<_> = planes_for(reference.kind, opts.channels)
        .into_iter()
        .zip(planes_for(distorted.kind, opts.channels))
        .collect();
    let widest = sources
        .iter()
        .map(|(s, _)| reference.geometry(*s))
        .max_by_key(|g| g.width * g.height)
        .unwrap_or(PlaneGeometry {
            width: 0,
            height: 0,
        });
    let base = strip_bytes(widest.width);
    if budget > 0 && base > budget {
        return Err(Error::Budget(format!(
            "the CPU kernel needs {base} bytes for {}-pixel-wide planes, the budget is {budget}",
            widest.width
        )));
    }
    let pooled = if opts.metrics.ms_ssim {
        pooled_plane_bytes(widest.width, widest.height)
    } else {
        0
    };
    let keep_pooled = budget == 0 || base + pooled <= budget;
    let planes: Vec<PlaneScores> = sources
        .into_iter()
        .map(|(sa, sb)| {
            plane_scores(
                &ImagePlane::new(reference, sa),
                &ImagePlane::new(distorted, sb),
                opts,
                max_value,
                keep_pooled,
            )
        })
        .collect();
    let usage = Usage {
        tiles: 1,
        bytes: base + if keep_pooled { pooled } else { 0 },
        batch: 1,
    };
    Ok((combine(planes, max_value), usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        Plane::from_fn(w, h, f)
    }

    /// Direct, unoptimised SSIM in f64, straight from the definition.
    fn ssim_direct(x: &Plane, y: &Plane, max_value: f64) -> (f64, f64) {
        let g = gaussian();
        let (c1, c2) = ssim_constants(max_value);
        let (ow, oh) = (x.width - 10, x.height - 10);
        let (mut s, mut c) = (0.0, 0.0);
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut mx, mut my, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for ky in 0..11 {
                    for kx in 0..11 {
                        let wgt = g[ky] * g[kx];
                        let a = x.data[(oy + ky) * x.width + ox + kx] as f64;
                        let b = y.data[(oy + ky) * x.width + ox + kx] as f64;
                        mx += wgt * a;
                        my += wgt * b;
                        xx += wgt * a * a;
                        yy += wgt * b * b;
                        xy += wgt * a * b;
                    }
                }
                let (vx, vy, cov) = (xx - mx * mx, yy - my * my, xy - mx * my);
                let cs = (2.0 * cov + c2) / (vx + vy + c2);
                s += (2.0 * mx * my + c1) / (mx * mx + my * my + c1) * cs;
                c += cs;
            }
        }
        let n = (ow * oh) as f64;
        (s / n, c / n)
    }

    #[test]
    fn kernel_matches_the_definition() {
        let x = plane(53, 41, |i, j| ((i * 7 + j * 13) % 256) as f32);
        let y = plane(53, 41, |i, j| {
            ((i * 7 + j * 13 + (i * j) % 17) % 256) as f32
        });
        let m = ssim_cs(&x, &y, 255.0);
        let (sd, cd) = ssim_direct(&x, &y, 255.0);
        assert!((m.ssim - sd).abs() < 2e-6, "{} vs {sd}", m.ssim);
        assert!((m.cs - cd).abs() < 2e-6, "{} vs {cd}", m.cs);
        // The portable path agrees with the dispatched one.
        let p = KernelParams {
            g: gaussian().map(|v| v as f32),
            offset: rough_mean(&x),
            c1: ssim_constants(255.0).0 as f32,
            c2: ssim_constants(255.0).1 as f32,
        };
        let whole = Strip {
            rows: 0..31,
            last: true,
            map: None,
        };
        let g = strip_generic::<Separate, Plane>(&x, &y, whole, &p);
        assert!((g.ssim / (43.0 * 31.0) - sd).abs() < 2e-6);
        assert_eq!(g.sse, sse(&x, &y));
    }

    #[test]
    fn identical_planes_score_one() {
        let x = plane(40, 30, |i, j| ((i * 31 + j * 17) % 251) as f32);
        let zero = plane(40, 30, |_, _| 0.0);
        for x in [x, zero] {
            let m = ssim_cs(&x, &x, 255.0);
            assert_eq!((m.ssim, m.cs), (1.0, 1.0));
            assert_eq!(m.sse, 0.0);
            assert_eq!(sse(&x, &x), 0.0);
        }
    }

    #[test]
    fn squared_error_of_the_strips_covers_every_row_once() {
        // Tall enough for many strips.
        let x = plane(23, 517, |i, j| ((i * 7 + j * 3) % 256) as f32);
        let y = plane(23, 517, |i, j| ((i * 5 + j * 11) % 256) as f32);
        assert_eq!(ssim_cs(&x, &y, 255.0).sse, sse(&x, &y));
    }

    #[test]
    fn anti_correlated_planes_give_a_finite_negative_ssim() {
        let x = plane(32, 32, |i, j| if (i + j) % 2 == 0 { 255.0 } else { 0.0 });
        let y = plane(32, 32, |i, j| if (i + j) % 2 == 0 { 0.0 } else { 255.0 });
        let s = ssim_cs(&x, &y, 255.0).ssim;
        assert!(s.is_finite() && s < -0.9, "{s}");
    }
}
