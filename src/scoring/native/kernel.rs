//! The strip kernel, written once over [`Lanes`] and compiled per instruction set.
//!
//! A strip of output rows is scored in blocks of [`BLOCK`] output columns. For each input
//! row, a block reads its samples (plus the window's ten columns of halo), forms the four
//! moment maps (x, y, x² + y² and xy, shifted by the plane's rough mean) and filters them
//! horizontally into a ring of eleven rows. Once the ring is full, each new row gives one
//! output row: the vertical filter, the SSIM and contrast-structure terms and their sums in
//! one pass. The block width keeps the ring (11 × 4 × 128 floats, 22 KiB) in a 32 KiB L1
//! data cache, which the vertical filter's eleven loads per value need: from L2 they bound
//! the kernel.
//!
//! The 11-tap Gaussian is symmetric, so each filtered value is five additions of mirrored
//! taps and six multiply-adds, which also spreads the work over the adder and FMA ports.

use std::ops::Range;

use super::lanes::Lanes;
use crate::scoring::rows::{Moments, RowSource, squared_difference_sum};
use crate::scoring::window::WINDOW;

/// The moment maps filtered: x, y, x² + y² (σx² + σy² needs only their sum) and xy.
pub(crate) const MAPS: usize = 4;
/// Output columns per block.
pub(crate) const BLOCK: usize = 128;
const HALO: usize = WINDOW - 1;
const CENTRE: usize = WINDOW / 2;
/// Lanes of the widest vector, and floats per 64-byte cache line.
const LINE: usize = 16;
/// Input columns of a block's rows: the block, its halo, and room for the widest vector
/// to run past the end, rounded to whole cache lines.
const SPAN: usize = (BLOCK + HALO + LINE).next_multiple_of(LINE);

/// The floats one strip works in: its six input rows and its ring, and the slack to start
/// them on a cache line. They do not depend on the plane's size.
pub(crate) const STRIP_FLOATS: usize = 6 * SPAN + WINDOW * MAPS * BLOCK + LINE;

/// The terms a pass sums: the SSIM, the contrast-structure term, or both. One term costs
/// one division per value, both two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub ssim: bool,
    pub cs: bool,
}

/// What every strip of a plane pair shares.
pub(crate) struct KernelParams {
    pub terms: Terms,
    pub g: [f32; WINDOW],
    /// The shift applied to the samples before the moments.
    pub offset: f32,
    pub c1: f32,
    pub c2: f32,
}

/// One strip of output rows: the squared error covers its own input rows, and the last
/// strip's also the window's tail; `map` takes its rows of the SSIM map when asked for.
pub(crate) struct Strip<'a> {
    pub rows: Range<usize>,
    pub last: bool,
    pub map: Option<&'a mut [f32]>,
}

thread_local! {
    /// Each scoring thread's strip buffers: reused from strip to strip and frame to frame.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Sums of one strip.
///
/// # Safety
/// The CPU has the instruction set `L` is made of.
#[inline(always)]
pub(super) unsafe fn strip<L: Lanes, R: RowSource>(
    x: &R,
    y: &R,
    s: Strip<'_>,
    p: &KernelParams,
) -> Moments {
    let w = x.width();
    let ow = w - HALO;
    // Not cleared between uses: the lanes past a block's samples hold earlier, finite
    // values, and their results are never used.
    let mut scratch = SCRATCH.take();
    scratch.resize(STRIP_FLOATS, 0.0);
    // Every row starts on a cache line, so that the ring's loads never straddle two.
    let skip = scratch.as_ptr().align_offset(4 * LINE).min(LINE);
    let (rows_in, ring) = scratch[skip..skip + STRIP_FLOATS - LINE].split_at_mut(6 * SPAN);
    let own_rows_end = if s.last {
        s.rows.end + HALO
    } else {
        s.rows.end
    };
    let mut total = Moments::default();
    let mut map = s.map;
    for c0 in (0..ow).step_by(BLOCK) {
        let bw = BLOCK.min(ow - c0);
        let n_in = bw + HALO;
        // The squared error covers the block's own columns, and the last block's halo.
        let own_cols = if c0 + bw == ow { n_in } else { bw };
        for i in s.rows.start..s.rows.end + HALO {
            let (raw, maps) = rows_in.split_at_mut(2 * SPAN);
            let (xr, yr) = raw.split_at_mut(SPAN);
            // SAFETY: as below.
            unsafe {
                read_samples::<L, R>(x, i, c0, &mut xr[..n_in]);
                read_samples::<L, R>(y, i, c0, &mut yr[..n_in]);
            }
            if i < own_rows_end {
                total.sse += squared_difference_sum(&xr[..own_cols], &yr[..own_cols]);
            }
            // SAFETY (all calls below): the CPU has L's instruction set (this function's
            // contract), and every vector lies inside its row (see SPAN).
            unsafe { moment_rows::<L>(xr, yr, maps, n_in, p.offset) };
            let slot = (i - s.rows.start) % WINDOW;
            let ring_row = &mut ring[slot * MAPS * BLOCK..(slot + 1) * MAPS * BLOCK];
            unsafe { horizontal::<L>(maps, ring_row, bw, &p.g) };
            if i < s.rows.start + HALO {
                continue;
            }
            // Output row o = i − HALO uses input rows o ..= i.
            let o = i - HALO;
            let slots = std::array::from_fn(|k| (o + k - s.rows.start) % WINDOW);
            let out = map.as_deref_mut().map(|m| {
                let start = (o - s.rows.start) * ow + c0;
                &mut m[start..start + bw]
            });
            let (ssim, cs) = unsafe {
                match (p.terms.ssim, p.terms.cs) {
                    (true, false) => vertical::<L, true, false>(ring, slots, bw, p, out),
                    (false, true) => vertical::<L, false, true>(ring, slots, bw, p, out),
                    _ => vertical::<L, true, true>(ring, slots, bw, p, out),
                }
            };
            total.ssim += ssim;
            total.cs += cs;
        }
    }
    SCRATCH.set(scratch);
    total
}

/// `out.len()` samples of row `i` from column `c0`: 8-bit samples converted here, with
/// the kernel's instructions, the others by the source.
#[inline(always)]
unsafe fn read_samples<L: Lanes, R: RowSource>(src: &R, i: usize, c0: usize, out: &mut [f32]) {
    let n = out.len();
    let Some(bytes) = src.bytes(i, c0, n) else {
        return src.read_span(i, c0, out);
    };
    let whole = n - n % L::N;
    for j in (0..whole).step_by(L::N) {
        // SAFETY: j + N <= n, the length of both slices.
        unsafe { L::load_u8(bytes.as_ptr().add(j)).store(out.as_mut_ptr().add(j)) };
    }
    for (o, &b) in out[whole..].iter_mut().zip(&bytes[whole..]) {
        *o = f32::from(b);
    }
}

/// The four moment maps of one block row from its samples: x and y shifted by `offset`,
/// x² + y² and xy.
#[inline(always)]
unsafe fn moment_rows<L: Lanes>(xr: &[f32], yr: &[f32], maps: &mut [f32], n: usize, offset: f32) {
    debug_assert!(n.next_multiple_of(L::N) <= SPAN && maps.len() == MAPS * SPAN);
    let (xr, yr, out) = (xr.as_ptr(), yr.as_ptr(), maps.as_mut_ptr());
    unsafe {
        let off = L::splat(offset);
        for j in (0..n).step_by(L::N) {
            let a = L::load(xr.add(j)).sub(off);
            let b = L::load(yr.add(j)).sub(off);
            a.store(out.add(j));
            b.store(out.add(SPAN + j));
            // Unfused, so that identical planes give x² + y² = 2·xy exactly.
            a.mul(a).add(b.mul(b)).store(out.add(2 * SPAN + j));
            a.mul(b).store(out.add(3 * SPAN + j));
        }
    }
}

/// The horizontal filter of the four maps of one block row into one ring row (`MAPS`
/// rows of `BLOCK` values).
#[inline(always)]
unsafe fn horizontal<L: Lanes>(maps: &[f32], ring_row: &mut [f32], bw: usize, g: &[f32; WINDOW]) {
    debug_assert!(bw.next_multiple_of(L::N) + HALO <= SPAN && ring_row.len() == MAPS * BLOCK);
    unsafe {
        let taps = splat_taps::<L>(g);
        for m in 0..MAPS {
            let src = maps.as_ptr().add(m * SPAN);
            let dst = ring_row.as_mut_ptr().add(m * BLOCK);
            for j in (0..bw).step_by(L::N) {
                let s = src.add(j);
                let mut acc = L::load(s.add(CENTRE)).mul(taps[CENTRE]);
                for k in 0..CENTRE {
                    let pair = L::load(s.add(k)).add(L::load(s.add(HALO - k)));
                    acc = pair.mul_add(taps[k], acc);
                }
                acc.store(dst.add(j));
            }
        }
    }
}

/// The taps up to the centre, in every lane.
#[inline(always)]
unsafe fn splat_taps<L: Lanes>(g: &[f32; WINDOW]) -> [L; CENTRE + 1] {
    unsafe {
        let mut taps = [L::splat(g[CENTRE]); CENTRE + 1];
        for (t, &v) in taps.iter_mut().zip(g) {
            *t = L::splat(v);
        }
        taps
    }
}

/// Where map `m`'s value at column `j` lies in a ring row.
#[inline(always)]
fn m_offset(m: usize, j: usize) -> usize {
    m * BLOCK + j
}

/// One vector of the vertical filter: the eleven ring rows at `at`.
#[inline(always)]
unsafe fn filter_column<L: Lanes>(
    rows: &[*const f32; WINDOW],
    at: usize,
    taps: &[L; CENTRE + 1],
) -> L {
    unsafe {
        let mut acc = L::load(rows[CENTRE].add(at)).mul(taps[CENTRE]);
        for k in 0..CENTRE {
            let pair = L::load(rows[k].add(at)).add(L::load(rows[HALO - k].add(at)));
            acc = pair.mul_add(taps[k], acc);
        }
        acc
    }
}

/// The vertical filter of the ring (its rows in window order at `slots`), then the SSIM
/// and contrast-structure terms of one output row of the block (those asked for; the
/// other sums to 0): their sums, and the SSIM values into `map` when given.
#[inline(always)]
unsafe fn vertical<L: Lanes, const SSIM: bool, const CS: bool>(
    ring: &[f32],
    slots: [usize; WINDOW],
    bw: usize,
    p: &KernelParams,
    mut map: Option<&mut [f32]>,
) -> (f64, f64) {
    debug_assert!(ring.len() == WINDOW * MAPS * BLOCK);
    unsafe {
        let taps = splat_taps::<L>(&p.g);
        let mut rows = [ring.as_ptr(); WINDOW];
        for (row, slot) in rows.iter_mut().zip(slots) {
            *row = ring.as_ptr().add(slot * MAPS * BLOCK);
        }
        let (off, c1, c2) = (L::splat(p.offset), L::splat(p.c1), L::splat(p.c2));
        let (mut ssim_sum, mut cs_sum) = (L::splat(0.0), L::splat(0.0));
        let (mut ssim_total, mut cs_total) = (0.0, 0.0);
        for j in (0..bw).step_by(L::N) {
            let mx = filter_column::<L>(&rows, m_offset(0, j), &taps);
            let my = filter_column::<L>(&rows, m_offset(1, j), &taps);
            let mss = filter_column::<L>(&rows, m_offset(2, j), &taps);
            let mxy = filter_column::<L>(&rows, m_offset(3, j), &taps);
            // Unfused throughout, so that identical planes give exactly 1: then
            // σx² + σy² = 2·σxy and μx² + μy² = 2·μxμy, bit for bit.
            let variances = mss.sub(mx.mul(mx).add(my.mul(my)));
            let cov = mxy.sub(mx.mul(my));
            let (cs_num, cs_den) = (cov.add(cov).add(c2), variances.add(c2));
            let (ssim, cs) = if SSIM {
                let (ux, uy) = (mx.add(off), my.add(off));
                let uxuy = ux.mul(uy);
                let l_num = uxuy.add(uxuy).add(c1);
                let l_den = ux.mul(ux).add(uy.mul(uy)).add(c1);
                if CS {
                    let cs = cs_num.div(cs_den);
                    (l_num.div(l_den).mul(cs), cs)
                } else {
                    (l_num.mul(cs_num).div(l_den.mul(cs_den)), L::splat(0.0))
                }
            } else {
                (L::splat(0.0), cs_num.div(cs_den))
            };
            let n = bw - j;
            if n >= L::N {
                ssim_sum = ssim_sum.add(ssim);
                cs_sum = cs_sum.add(cs);
                if let Some(m) = map.as_deref_mut() {
                    ssim.store(m.as_mut_ptr().add(j));
                }
            } else {
                // The block's last, partial vector: only its first n lanes are values.
                ssim_total += ssim.sum_first(n);
                cs_total += cs.sum_first(n);
                if let Some(m) = map.as_deref_mut() {
                    let mut tmp = [0f32; 16];
                    ssim.store(tmp.as_mut_ptr());
                    m[j..].copy_from_slice(&tmp[..n]);
                }
            }
        }
        (
            ssim_total + ssim_sum.sum_first(L::N),
            cs_total + cs_sum.sum_first(L::N),
        )
    }
}
