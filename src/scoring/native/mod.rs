//! The CPU backend: a multi-threaded, cache-blocked kernel in f32.
//!
//! Each plane pair is cut into tiles (a strip of output rows by a block of columns),
//! scored in parallel by the kernel in [`kernel`], compiled for each instruction set in
//! [`lanes`] and chosen at run time ([`Simd`]). Samples are shifted by the reference plane's rough mean first, so that
//! E[x²] − E[x]² loses little to float32 cancellation.

mod kernel;
mod lanes;
mod simd;

use std::convert::Infallible;

use rayon::prelude::*;

pub(crate) use kernel::TILE_FLOATS;
pub use kernel::Terms;
use kernel::{BLOCK, KernelParams, Tile};
pub use simd::{SIMD_ENV, Simd};

use super::budget::{pooled_plane_bytes, tile_bytes};
use super::rows::{
    ImagePlane, Moments, Plane, RowSource, ms_ssim_pooled_lazily, rough_mean, squared_error_map,
    sse,
};
use super::window::{WINDOW, ms_ssim_scales};
use super::{
    Error, ImageView, MapKind, Options, PlaneGeometry, PlaneScores, QualityMap, Scores, Usage,
    combine, ms_ssim_combine, planes_for, ssim_constants,
};

/// SSIM, contrast-structure term and squared error of two planes of the same size, at
/// least [`WINDOW`] wide and high, in one pass, with the kernel compiled for `simd`
/// (which the CPU must support, or the portable kernel runs): the `terms` asked for (the
/// other is 0), and the SSIM map of the valid region into `map` when given
/// (`(width − 10) × (height − 10)` values, row by row).
pub fn ssim_cs_into<R: RowSource>(
    simd: Simd,
    terms: Terms,
    x: &R,
    y: &R,
    max_value: f64,
    map: Option<&mut [f32]>,
) -> Moments {
    debug_assert!(x.width() >= WINDOW && x.height() >= WINDOW);
    let simd = if simd.supported() {
        simd
    } else {
        Simd::Portable
    };
    let (c1, c2) = ssim_constants(max_value);
    let out_h = x.height() - (WINDOW - 1);
    let terms = Terms {
        ssim: terms.ssim || map.is_some(),
        ..terms
    };
    let params = KernelParams::new(terms, rough_mean(x), c1, c2);
    // Tiles of a strip of rows by a block of columns, at least eight per thread so that
    // they balance (four left 1080p's fifteen blocks split eight to seven, about 3% slower
    // in the pipeline), in as few strips as that allows: each strip filters ten rows more
    // than it outputs.
    let ow = x.width() - (WINDOW - 1);
    let n_blocks = ow.div_ceil(BLOCK);
    let wanted = (rayon::current_num_threads() * 8).div_ceil(n_blocks);
    let strip_rows = out_h.div_ceil(wanted).max(8);
    let n_strips = out_h.div_ceil(strip_rows);
    // Each tile writes its pieces of the map's rows.
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..n_strips * n_blocks).map(|_| Vec::new()).collect();
    if let Some(map) = map {
        for (r, row) in map.chunks_mut(ow).enumerate() {
            for (b, piece) in row.chunks_mut(BLOCK).enumerate() {
                pieces[r / strip_rows * n_blocks + b].push(piece);
            }
        }
    }
    let total = pieces
        .into_par_iter()
        .enumerate()
        .map(|(t, map)| {
            let s = t / n_blocks;
            let tile = Tile {
                rows: s * strip_rows..((s + 1) * strip_rows).min(out_h),
                last_rows: s + 1 == n_strips,
                c0: t % n_blocks * BLOCK,
                map,
            };
            score_tile(simd, x, y, tile, &params)
        })
        .reduce(Moments::default, |a, b| Moments {
            ssim: a.ssim + b.ssim,
            cs: a.cs + b.cs,
            sse: a.sse + b.sse,
        });
    let n = (out_h * ow) as f64;
    Moments {
        ssim: total.ssim / n,
        cs: total.cs / n,
        sse: total.sse,
    }
}

/// One tile, with the kernel of a supported instruction set.
fn score_tile<R: RowSource>(simd: Simd, x: &R, y: &R, t: Tile<'_>, p: &KernelParams) -> Moments {
    match simd {
        // SAFETY: `ssim_cs_into` checked that the CPU supports `simd`.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { tile_avx512(x, y, t, p) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { tile_avx2(x, y, t, p) },
        // SAFETY: the portable lanes need nothing of the CPU.
        _ => unsafe { kernel::tile::<lanes::Portable, R>(x, y, t, p) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<R: RowSource>(x: &R, y: &R, t: Tile<'_>, p: &KernelParams) -> Moments {
    // SAFETY: this function's features are those of the lanes.
    unsafe { kernel::tile::<lanes::Avx2, R>(x, y, t, p) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_avx512<R: RowSource>(x: &R, y: &R, t: Tile<'_>, p: &KernelParams) -> Moments {
    // SAFETY: this function's features are those of the lanes.
    unsafe { kernel::tile::<lanes::Avx512, R>(x, y, t, p) }
}

/// Scores of one plane pair. MS-SSIM's pooled planes are stored when `keep_pooled`, and
/// otherwise recomputed row by row from the full-size plane as they are read.
pub(crate) fn plane_scores<R: RowSource>(
    simd: Simd,
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
    // MS-SSIM needs the contrast-structure term of every scale but the last, and the SSIM
    // of the last only.
    let scales = if opts.metrics.ms_ssim {
        ms_ssim_scales(w, h)
    } else {
        0
    };
    let terms_at = |scale: u32| Terms {
        ssim: scale == 0 && opts.metrics.ssim || scale + 1 == scales,
        cs: scale + 1 < scales,
    };
    let first = ssim_cs_into(simd, terms_at(0), x, y, max_value, map.as_deref_mut());
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
            let mut cs = Vec::with_capacity(scales as usize);
            let mut last = first;
            let mut planes: Option<(Plane, Plane)> = None;
            for scale in 1..scales {
                cs.push(last.cs);
                let [bx, by] = pooled_buffers(scale);
                let (px, py) = match &planes {
                    None => rayon::join(|| Plane::pooled_into(x, bx), || Plane::pooled_into(y, by)),
                    Some((a, b)) => {
                        rayon::join(|| Plane::pooled_into(a, bx), || Plane::pooled_into(b, by))
                    }
                };
                last = ssim_cs_into(simd, terms_at(scale), &px, &py, max_value, None);
                if let Some((a, b)) = planes.replace((px, py)) {
                    keep_pooled_buffers(scale - 1, [a.data, b.data]);
                }
            }
            if let Some((a, b)) = planes {
                keep_pooled_buffers(scales - 1, [a.data, b.data]);
            }
            (ms_ssim_combine(&cs, last.ssim), scales)
        } else {
            let mut scale = 0;
            let Ok(v) = ms_ssim_pooled_lazily::<Infallible>(x, y, first, |px, py| {
                scale += 1;
                Ok(ssim_cs_into(
                    simd,
                    terms_at(scale),
                    &px,
                    &py,
                    max_value,
                    None,
                ))
            });
            v
        });
    }
    scores
}

thread_local! {
    /// MS-SSIM's pooled planes' buffers, one pair per scale, kept from frame to frame by
    /// the thread that scores: with frames of one size, they are neither reallocated nor
    /// cleared.
    static POOLED: std::cell::RefCell<Vec<[Vec<f32>; 2]>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn pooled_buffers(scale: u32) -> [Vec<f32>; 2] {
    POOLED
        .with_borrow_mut(|kept| kept.get_mut(scale as usize).map(std::mem::take))
        .unwrap_or_default()
}

fn keep_pooled_buffers(scale: u32, buffers: [Vec<f32>; 2]) {
    POOLED.with_borrow_mut(|kept| {
        let scale = scale as usize;
        if kept.len() <= scale {
            kept.resize_with(scale + 1, Default::default);
        }
        kept[scale] = buffers;
    });
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
    score_with(Simd::active(), reference, distorted, opts, budget)
}

/// [`score_within`] with the kernel compiled for `simd` (the portable one where the CPU
/// does not support `simd`).
pub fn score_with(
    simd: Simd,
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
    let base = tile_bytes();
    if budget > 0 && base > budget {
        return Err(Error::Budget(format!(
            "the CPU kernel needs {base} bytes, the budget is {budget}"
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
                simd,
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
    use crate::scoring::window::gaussian;

    const BOTH: Terms = Terms {
        ssim: true,
        cs: true,
    };

    fn ssim_cs<R: RowSource>(x: &R, y: &R, max_value: f64) -> Moments {
        ssim_cs_into(Simd::active(), BOTH, x, y, max_value, None)
    }

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

    /// Every instruction set this CPU has, and the dispatched one.
    fn each_kernel(mut f: impl FnMut(Simd)) {
        for simd in Simd::available() {
            f(simd);
        }
    }

    #[test]
    fn kernel_matches_the_definition() {
        // Wide enough for two column blocks and a partial vector; tall enough for strips.
        for (w, h) in [(53, 41), (2 * kernel::BLOCK + 27, 75)] {
            let x = plane(w, h, |i, j| ((i * 7 + j * 13) % 256) as f32);
            let y = plane(w, h, |i, j| ((i * 7 + j * 13 + (i * j) % 17) % 256) as f32);
            let (sd, cd) = ssim_direct(&x, &y, 255.0);
            each_kernel(|simd| {
                let m = ssim_cs_into(simd, BOTH, &x, &y, 255.0, None);
                assert!(
                    (m.ssim - sd).abs() < 2e-6,
                    "{simd:?} {w}x{h}: {} vs {sd}",
                    m.ssim
                );
                assert!(
                    (m.cs - cd).abs() < 2e-6,
                    "{simd:?} {w}x{h}: {} vs {cd}",
                    m.cs
                );
                assert_eq!(m.sse, sse(&x, &y), "{simd:?} {w}x{h}");
            });
        }
    }

    #[test]
    fn the_kernels_agree_and_write_the_same_map() {
        let (w, h) = (kernel::BLOCK + 45, 60);
        let x = plane(w, h, |i, j| ((i * 31 + j * 17 + i * j) % 1021) as f32);
        let y = plane(w, h, |i, j| ((i * 29 + j * 19) % 1021) as f32);
        let ow = w - (WINDOW - 1);
        let mut reference = vec![0f32; ow * (h - (WINDOW - 1))];
        let base = ssim_cs_into(Simd::Portable, BOTH, &x, &y, 1023.0, Some(&mut reference));
        let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / reference.len() as f64;
        assert!((mean - base.ssim).abs() < 1e-6);
        each_kernel(|simd| {
            let mut map = vec![f32::NAN; reference.len()];
            let m = ssim_cs_into(simd, BOTH, &x, &y, 1023.0, Some(&mut map));
            assert!((m.ssim - base.ssim).abs() < 1e-6, "{simd:?}");
            for (i, (a, b)) in map.iter().zip(&reference).enumerate() {
                assert!((a - b).abs() < 1e-5, "{simd:?} at {i}: {a} vs {b}");
            }
        });
    }

    #[test]
    fn identical_planes_score_one() {
        let x = plane(40, 30, |i, j| ((i * 31 + j * 17) % 251) as f32);
        let zero = plane(40, 30, |_, _| 0.0);
        for x in [x, zero] {
            each_kernel(|simd| {
                let m = ssim_cs_into(simd, BOTH, &x, &x, 255.0, None);
                assert_eq!((m.ssim, m.cs), (1.0, 1.0), "{simd:?}");
                assert_eq!(m.sse, 0.0);
            });
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
