//! Memory planning: how many pairs to score together and whether to split frames into
//! bands so that the working memory of a batch stays under a budget.
//!
//! The figures are the engine's own accounting of what it allocates: for libtorch, a
//! per-pixel cost calibrated against the measured peak resident memory of the libtorch CPU
//! backend (`examples/memory_bench.rs`): the float32 tensors alive at the peak of the SSIM
//! step (inputs, shifted copies, products, the stacked maps, the map arithmetic) are about
//! 128 bytes per pixel, and the convolutions' own workspaces about as much again; for the
//! native kernel, its per-thread tile buffers and any pooled planes it keeps.

use super::native::TILE_FLOATS;
use super::window::{WINDOW, pooled};

/// libtorch working memory per compared pixel of one pair, in bytes (80 f32 values).
pub const TORCH_BYTES_PER_PIXEL: u64 = 320;
/// Host buffers of a band (two float rows per sample row).
pub const BAND_HOST_BYTES_PER_PIXEL: u64 = 8;
/// Rows a band needs beyond its output rows (the window's halo).
pub const HALO: usize = WINDOW - 1;

/// How a batch is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Pairs scored together (whole frames), or 1 when banded.
    pub batch: usize,
    /// Output rows per band; `None` scores whole frames.
    pub band_rows: Option<usize>,
}

/// Working memory of `batch` whole frames of `pixels` compared samples each. MS-SSIM keeps
/// the pooled planes of the next scale alive too (a quarter more, and so on).
pub fn whole_frame_bytes(pixels: u64, batch: usize, ms_ssim: bool) -> u64 {
    let per_pair = pixels * TORCH_BYTES_PER_PIXEL;
    let per_pair = if ms_ssim {
        per_pair + per_pair / 3
    } else {
        per_pair
    };
    per_pair * batch as u64
}

/// Working memory of one band of `rows` output rows of a `width`-wide plane.
pub fn band_bytes(width: usize, rows: usize) -> u64 {
    ((rows + HALO) * width) as u64 * (TORCH_BYTES_PER_PIXEL + BAND_HOST_BYTES_PER_PIXEL)
}

/// Native kernel: working memory of the tiles that run at once (each a few rows of a
/// block of columns, whatever the plane's size).
pub fn tile_bytes() -> u64 {
    (rayon::current_num_threads() * TILE_FLOATS * 4) as u64
}

/// Native kernel: memory of the pooled planes MS-SSIM keeps for a `width`×`height` plane
/// pair, the two planes of one scale while the next is made.
pub fn pooled_plane_bytes(width: usize, height: usize) -> u64 {
    let scale1 = (pooled(width) * pooled(height)) as u64;
    2 * 4 * (scale1 + scale1 / 4)
}

/// Plans a batch of up to `wanted` pairs of `pixels` compared samples, planes at most
/// `width` wide, within `budget` bytes (0 = unlimited). `max_band_rows` caps the band
/// height (after allocation failures).
pub fn plan(
    pixels: u64,
    width: usize,
    wanted: usize,
    budget: u64,
    ms_ssim: bool,
    max_band_rows: Option<usize>,
) -> Result<Plan, String> {
    let wanted = wanted.max(1);
    if max_band_rows.is_none() {
        if budget == 0 {
            return Ok(Plan {
                batch: wanted,
                band_rows: None,
            });
        }
        let one = whole_frame_bytes(pixels, 1, ms_ssim).max(1);
        let fits = (budget / one) as usize;
        if fits >= 1 {
            return Ok(Plan {
                batch: fits.min(wanted),
                band_rows: None,
            });
        }
    }
    let per_row = band_bytes(width, 1) - band_bytes(width, 0);
    let rows = if budget == 0 {
        usize::MAX
    } else {
        (budget.saturating_sub(band_bytes(width, 0)) / per_row.max(1)) as usize
    };
    let rows = rows.min(max_band_rows.unwrap_or(usize::MAX));
    if rows == 0 {
        return Err(format!(
            "a memory budget of {budget} bytes cannot hold even one band of a {width}-pixel-wide \
             plane, which needs {} bytes",
            band_bytes(width, 1)
        ));
    }
    Ok(Plan {
        batch: 1,
        band_rows: Some(rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames_while_they_fit_then_smaller_batches_then_bands() {
        let (w, h) = (1920usize, 1080usize);
        let px = (w * h) as u64;
        let one = whole_frame_bytes(px, 1, false);
        assert_eq!(
            plan(px, w, 8, 0, false, None).unwrap(),
            Plan {
                batch: 8,
                band_rows: None
            }
        );
        assert_eq!(
            plan(px, w, 8, 8 * one, false, None).unwrap(),
            Plan {
                batch: 8,
                band_rows: None
            }
        );
        assert_eq!(
            plan(px, w, 8, 3 * one + 5, false, None).unwrap(),
            Plan {
                batch: 3,
                band_rows: None
            }
        );
        let banded = plan(px, w, 8, one / 2, false, None).unwrap();
        assert_eq!(banded.batch, 1);
        let rows = banded.band_rows.unwrap();
        assert!(band_bytes(w, rows) <= one / 2 && band_bytes(w, rows + 1) > one / 2);
        // After failures, bands are capped.
        assert_eq!(
            plan(px, w, 8, 0, false, Some(64)).unwrap().band_rows,
            Some(64)
        );
    }

    #[test]
    fn a_budget_below_one_band_is_an_error() {
        let e = plan(8192 * 8192, 8192, 1, 1024, false, None).unwrap_err();
        assert!(e.contains("cannot hold even one band"), "{e}");
        assert!(plan(8192 * 8192, 8192, 1, band_bytes(8192, 1), false, None).is_ok());
    }
}
