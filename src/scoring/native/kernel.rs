//! The SSIM kernel, written once over [`Lanes`] and compiled per instruction set.
//!
//! A plane pair is scored in tiles: a strip of output rows by a block of [`BLOCK`] output
//! columns. For each input row, a tile reads its samples (plus the window's ten columns of
//! halo), forms the four moment maps (the sum s = x + y, shifted by twice the plane's
//! rough mean, the difference d = x − y, s² and d²) and sums the squared differences in
//! one pass, then filters the maps horizontally into a ring of twelve rows. Once the ring
//! holds a window, every second row gives two output rows: the vertical filter of each
//! map into a staging buffer, then the SSIM and contrast-structure terms and their sums.
//! The block width keeps the ring (12 × 4 × 128 floats, 24 KiB) in a 32 KiB L1 data
//! cache, which the vertical filter's loads need: blocks of 256 columns (a 48 KiB ring)
//! made the whole kernel 1.5 times slower.
//!
//! The 11-tap Gaussian is symmetric and scaled to a centre tap of 1, so each filtered
//! value is five additions of mirrored taps and five multiply-adds, which also spreads the
//! work over the adder and FMA ports.

use std::ops::Range;

use super::lanes::Lanes;
use crate::scoring::rows::{Moments, RowSource};
use crate::scoring::window::{WINDOW, gaussian};

/// The moment maps filtered: s = x + y, d = x − y, s² and d².
///
/// SSIM in their terms: with σs² = σx² + σy² + 2σxy and σd² = σx² + σy² − 2σxy,
/// cs = (σs² − σd² + 2C2) / (σs² + σd² + 2C2), and with μs = μx + μy and μd = μx − μy,
/// l = (μs² − μd² + 2C1) / (μs² + μd² + 2C1). Numerator and denominator share all but a
/// sign, so the terms take ten operations fewer than from x, y, x² + y² and xy; and
/// identical planes give d = 0, so both terms are exactly 1 without care for rounding.
pub(crate) const MAPS: usize = 4;
/// Output columns per block.
pub(crate) const BLOCK: usize = 128;
const HALO: usize = WINDOW - 1;
const CENTRE: usize = WINDOW / 2;
/// Lanes of the widest vector, and floats per 64-byte cache line.
const LINE: usize = 16;
const LINE_BYTES: usize = 64;
/// Input columns of a block's rows: the block, its halo, and room for the widest vector
/// to run past the end, rounded to whole cache lines.
const SPAN: usize = (BLOCK + HALO + LINE).next_multiple_of(LINE);

/// The floats one tile works in: its six input rows, its ring, the vertical sums of two
/// staged rows and the slack to start them on a cache line. They do not depend on the
/// plane's size.
pub(crate) const TILE_FLOATS: usize = 6 * SPAN + (RING + 2) * MAPS * BLOCK + LINE;
/// Rows of the ring: the window, and one more so that output rows are made in pairs.
const RING: usize = WINDOW + 1;

/// The terms a pass sums: the SSIM, the contrast-structure term, or both. One term costs
/// one division per value, both two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub ssim: bool,
    pub cs: bool,
}

/// What every tile of a plane pair shares.
///
/// Both filter passes use the Gaussian scaled so that its centre tap is 1 (one multiply
/// fewer per value and pass), so the filtered moments come out `gain` times too large:
/// the constants are scaled to match, and the SSIM terms take the gain out where the
/// moments are combined.
pub(crate) struct KernelParams {
    pub terms: Terms,
    /// The outer taps, relative to the centre's.
    taps: [f32; CENTRE],
    /// The gain of the two passes, 1 / centre².
    gain: f32,
    /// The shift applied to the samples before the moments.
    offset: f32,
    /// The sum's shift, 2·C1 and 2·C2 at the filtered moments' scale.
    scaled: [f32; 3],
}

impl KernelParams {
    pub fn new(terms: Terms, offset: f32, c1: f64, c2: f64) -> Self {
        let g = gaussian();
        let gain = 1.0 / (g[CENTRE] * g[CENTRE]);
        KernelParams {
            terms,
            taps: std::array::from_fn(|k| (g[k] / g[CENTRE]) as f32),
            gain: gain as f32,
            offset,
            scaled: [
                (2.0 * offset as f64 * gain) as f32,
                (2.0 * c1 * gain * gain) as f32,
                (2.0 * c2 * gain * gain) as f32,
            ],
        }
    }
}

/// One tile of output: a strip of rows of one block of columns. Its squared error covers
/// its own input rows and columns, and those of the window's tail where the tile is the
/// last of its rows (`last_rows`) or columns. `map` takes its pieces of the SSIM map's rows
/// when asked for (one per output row, else empty).
pub(crate) struct Tile<'a> {
    pub rows: Range<usize>,
    pub last_rows: bool,
    /// The block's first output column.
    pub c0: usize,
    pub map: Vec<&'a mut [f32]>,
}

thread_local! {
    /// Each scoring thread's tile buffers: reused from tile to tile and frame to frame.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Sums of one tile.
///
/// # Safety
/// The CPU has the instruction set `L` is made of.
#[inline(always)]
pub(super) unsafe fn tile<L: Lanes, R: RowSource>(
    x: &R,
    y: &R,
    t: Tile<'_>,
    p: &KernelParams,
) -> Moments {
    let w = x.width();
    let ow = w - HALO;
    // Not cleared between uses: the lanes past a block's samples hold earlier, finite
    // values, and their results are never used.
    let mut scratch = SCRATCH.take();
    scratch.resize(TILE_FLOATS, 0.0);
    // Every row starts on a cache line, so that the ring's loads never straddle two.
    let skip = scratch.as_ptr().align_offset(4 * LINE).min(LINE);
    let (rows_in, rest) = scratch[skip..skip + TILE_FLOATS - LINE].split_at_mut(6 * SPAN);
    let (ring, stage) = rest.split_at_mut(RING * MAPS * BLOCK);
    let rows = t.rows;
    let own_rows_end = if t.last_rows {
        rows.end + HALO
    } else {
        rows.end
    };
    let mut total = Moments::default();
    let mut map = t.map;
    let c0 = t.c0;
    let bw = BLOCK.min(ow - c0);
    let n_in = bw + HALO;
    // The squared error covers the block's own columns, and the last block's halo.
    let own_cols = if c0 + bw == ow { n_in } else { bw };
    for i in rows.start..rows.end + HALO {
        // Each row of a block is a few cache lines a plane's stride apart, a pattern the
        // CPU's own prefetchers miss: frames that come from memory are asked for ahead.
        prefetch(x, i + PREFETCH_ROWS, c0, n_in);
        prefetch(y, i + PREFETCH_ROWS, c0, n_in);
        let (raw, maps) = rows_in.split_at_mut(2 * SPAN);
        let (xr, yr) = raw.split_at_mut(SPAN);
        // SAFETY (all calls below): the CPU has L's instruction set (this function's
        // contract), and every vector lies inside its row (see SPAN).
        let samples = samples((x, y), i, c0, (&mut xr[..n_in], &mut yr[..n_in]));
        let own = if i < own_rows_end { own_cols } else { 0 };
        total.sse += unsafe { moment_rows::<L>(samples, maps, own, p.offset) };
        let slot = (i - rows.start) % RING;
        let ring_row = &mut ring[slot * MAPS * BLOCK..(slot + 1) * MAPS * BLOCK];
        unsafe { horizontal::<L>(maps, ring_row, bw, &p.taps) };
        // Output row o uses input rows o ..= o + HALO: k is the newest output row the ring
        // can make. Rows are made in pairs, which share eleven of their twelve ring rows
        // (an odd last row alone).
        let Some(k) = (i - rows.start).checked_sub(HALO) else {
            continue;
        };
        let first = if k % 2 == 1 {
            k - 1
        } else if k + 1 == rows.len() {
            k
        } else {
            continue;
        };
        let slots = std::array::from_fn(|r| (first + r) % RING);
        let pair = first < k;
        let outs = match map.get_mut(first..=k) {
            Some([a, b]) => Some((&mut **a, Some(&mut **b))),
            Some([a]) => Some((&mut **a, None)),
            _ => None,
        };
        let (ssim, cs) = unsafe {
            match (p.terms.ssim, p.terms.cs) {
                (true, false) => vertical::<L, true, false>(ring, stage, slots, pair, bw, p, outs),
                (false, true) => vertical::<L, false, true>(ring, stage, slots, pair, bw, p, outs),
                _ => vertical::<L, true, true>(ring, stage, slots, pair, bw, p, outs),
            }
        };
        total.ssim += ssim;
        total.cs += cs;
    }
    SCRATCH.set(scratch);
    total
}

/// How many rows ahead of the one being read the next are prefetched.
const PREFETCH_ROWS: usize = 4;

/// Asks the CPU to bring row `i`'s samples into its cache.
#[inline(always)]
fn prefetch<R: RowSource>(src: &R, i: usize, c0: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(span) = src.stored(i, c0, n) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut line = span.start.wrapping_sub(span.start as usize % LINE_BYTES);
        while line < span.end {
            // SAFETY: a prefetch changes nothing the program can observe, even for an
            // address it cannot reach.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast()) };
            line = line.wrapping_add(LINE_BYTES);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, i, c0, n);
}

/// A block row's samples of both planes: 8-bit samples as stored, converted by the
/// kernel with its own instructions, or f32 samples (as stored, or converted by the source
/// into scratch rows).
#[derive(Clone, Copy)]
enum Samples<'a> {
    Bytes(&'a [u8], &'a [u8]),
    Floats(&'a [f32], &'a [f32]),
}

/// `xr.len()` samples of row `i` of both planes from column `c0`: where they are stored,
/// or read into `xr` and `yr`.
#[inline(always)]
fn samples<'a, R: RowSource>(
    (x, y): (&'a R, &'a R),
    i: usize,
    c0: usize,
    (xr, yr): (&'a mut [f32], &'a mut [f32]),
) -> Samples<'a> {
    let n = xr.len();
    if let (Some(a), Some(b)) = (x.bytes(i, c0, n), y.bytes(i, c0, n)) {
        return Samples::Bytes(a, b);
    }
    Samples::Floats(floats(x, i, c0, xr), floats(y, i, c0, yr))
}

/// `out.len()` samples of row `i` from column `c0` as f32: where they are stored, or read
/// into `out`.
#[inline(always)]
fn floats<'a, R: RowSource>(src: &'a R, i: usize, c0: usize, out: &'a mut [f32]) -> &'a [f32] {
    if let Some(stored) = src.floats(i, c0, out.len()) {
        return stored;
    }
    src.read_span(i, c0, out);
    out
}

/// A sample type the lanes load.
trait Sample: Copy + Default {
    /// # Safety
    /// As [`Lanes`].
    unsafe fn load<L: Lanes>(p: *const Self) -> L;
}

impl Sample for u8 {
    #[inline(always)]
    unsafe fn load<L: Lanes>(p: *const u8) -> L {
        unsafe { L::load_u8(p) }
    }
}

impl Sample for f32 {
    #[inline(always)]
    unsafe fn load<L: Lanes>(p: *const f32) -> L {
        unsafe { L::load(p) }
    }
}

/// The vector from column `j` of a row shorter than `j + N`: lanes past it hold zeros (the
/// plane may end with the row, so nothing past it is read).
#[inline(always)]
unsafe fn tail<L: Lanes, S: Sample>(row: &[S], j: usize) -> L {
    let mut tail = [S::default(); 16];
    tail[..row.len() - j].copy_from_slice(&row[j..]);
    unsafe { S::load::<L>(tail.as_ptr()) }
}

/// The four moment maps of one block row: s = x + y shifted by twice `offset`, d = x − y,
/// s² and d²; and the sum of squared differences over its first `own` columns, summed in
/// f32 lanes per row (exact for 8-bit and 10-bit samples).
#[inline(always)]
unsafe fn moment_rows<L: Lanes>(
    samples: Samples<'_>,
    maps: &mut [f32],
    own: usize,
    offset: f32,
) -> f64 {
    unsafe {
        match samples {
            Samples::Bytes(x, y) => moments_of::<L, u8>(x, y, maps, own, offset),
            Samples::Floats(x, y) => moments_of::<L, f32>(x, y, maps, own, offset),
        }
    }
}

/// [`moment_rows`] of one sample type. The whole vectors run in a loop of their own: the
/// partial last one copies (a call), and a call in the loop would keep the running sum
/// in memory rather than in a register.
#[inline(always)]
unsafe fn moments_of<L: Lanes, S: Sample>(
    x: &[S],
    y: &[S],
    maps: &mut [f32],
    own: usize,
    offset: f32,
) -> f64 {
    let n = x.len();
    debug_assert!(y.len() == n && n.next_multiple_of(L::N) <= SPAN);
    debug_assert!(maps.len() == MAPS * SPAN && own <= n);
    let out = maps.as_mut_ptr();
    unsafe {
        let off = L::splat(2.0 * offset);
        let (mut sse, mut sse_tail) = (L::splat(0.0), 0.0);
        let whole = n - n % L::N;
        for j in (0..whole).step_by(L::N) {
            let (a, b) = (
                S::load::<L>(x.as_ptr().add(j)),
                S::load::<L>(y.as_ptr().add(j)),
            );
            moments_at(a, b, j, own, off, out, (&mut sse, &mut sse_tail));
        }
        if whole < n {
            let (a, b) = (tail::<L, S>(x, whole), tail::<L, S>(y, whole));
            moments_at(a, b, whole, own, off, out, (&mut sse, &mut sse_tail));
        }
        sse_tail + sse.sum_first(L::N)
    }
}

/// The moments of the vectors `x` and `y` at column `j` into the maps at `out` (`off` is
/// the sum's shift), and their squared differences within the first `own` columns into
/// the sums.
#[inline(always)]
unsafe fn moments_at<L: Lanes>(
    x: L,
    y: L,
    j: usize,
    own: usize,
    off: L,
    out: *mut f32,
    (sse, sse_tail): (&mut L, &mut f64),
) {
    unsafe {
        let d = x.sub(y);
        if j < own {
            if j + L::N <= own {
                *sse = d.mul_add(d, *sse);
            } else {
                *sse_tail += d.mul(d).sum_first(own - j);
            }
        }
        let s = x.add(y).sub(off);
        s.store(out.add(j));
        d.store(out.add(SPAN + j));
        s.mul(s).store(out.add(2 * SPAN + j));
        d.mul(d).store(out.add(3 * SPAN + j));
    }
}

/// The horizontal filter of the four maps of one block row into one ring row (`MAPS`
/// rows of `BLOCK` values).
#[inline(always)]
unsafe fn horizontal<L: Lanes>(maps: &[f32], ring_row: &mut [f32], bw: usize, g: &[f32; CENTRE]) {
    debug_assert!(bw.next_multiple_of(L::N) + HALO <= SPAN && ring_row.len() == MAPS * BLOCK);
    unsafe {
        let taps = splat_taps::<L>(g);
        for m in 0..MAPS {
            let src = maps.as_ptr().add(m * SPAN);
            let dst = ring_row.as_mut_ptr().add(m * BLOCK);
            for j in (0..bw).step_by(L::N) {
                L::filter11(src.add(j), &taps).store(dst.add(j));
            }
        }
    }
}

/// The outer taps, in every lane.
#[inline(always)]
unsafe fn splat_taps<L: Lanes>(g: &[f32; CENTRE]) -> [L; CENTRE] {
    unsafe {
        let mut taps = [L::splat(0.0); CENTRE];
        for (t, &v) in taps.iter_mut().zip(g) {
            *t = L::splat(v);
        }
        taps
    }
}

/// One vector of the vertical filter of two consecutive output rows: the twelve ring
/// rows at `at`.
#[inline(always)]
unsafe fn filter_pair<L: Lanes>(
    rows: &[*const f32; RING],
    at: usize,
    taps: &[L; CENTRE],
) -> (L, L) {
    unsafe {
        let row = |k: usize| rows[k].add(at);
        let mut a = L::load(row(CENTRE));
        let mut b = L::load(row(CENTRE + 1));
        for (k, &tap) in taps.iter().enumerate() {
            a = L::load(row(k)).add(L::load(row(HALO - k))).mul_add(tap, a);
            b = L::load(row(k + 1))
                .add(L::load(row(HALO + 1 - k)))
                .mul_add(tap, b);
        }
        (a, b)
    }
}

/// One vector of the vertical filter of one output row: the first eleven ring rows at
/// `at`.
#[inline(always)]
unsafe fn filter_one<L: Lanes>(rows: &[*const f32; RING], at: usize, taps: &[L; CENTRE]) -> L {
    unsafe {
        let row = |k: usize| rows[k].add(at);
        let mut acc = L::load(row(CENTRE));
        for (k, &tap) in taps.iter().enumerate() {
            acc = L::load(row(k))
                .add(L::load(row(HALO - k)))
                .mul_add(tap, acc);
        }
        acc
    }
}

/// The SSIM and contrast-structure terms from the filtered moments of s, d, s² and d²
/// (each 0 unless asked for; see [`MAPS`]). Identical planes give d = 0 and so exactly 1.
/// The moments are `gain` times too large (see [`KernelParams`]), and `off`, `c1` and `c2`
/// (the sum's shift, 2·C1 and 2·C2) scaled to match: the variances come out gain² too
/// large, as the constants they meet.
#[inline(always)]
unsafe fn ssim_terms<L: Lanes, const SSIM: bool, const CS: bool>(
    ms: L,
    md: L,
    mss: L,
    mdd: L,
    &[off, c1, c2, gain]: &[L; 4],
) -> (L, L) {
    unsafe {
        // σs² + 2·C2 and σd².
        let vs = mss.mul_add(gain, ms.neg_mul_add(ms, c2));
        let vd = md.neg_mul_add(md, mdd.mul(gain));
        let (cs_num, cs_den) = (vs.sub(vd), vs.add(vd));
        if !SSIM {
            return (L::splat(0.0), cs_num.div(cs_den));
        }
        // μs² + 2·C1, then ∓ μd².
        let us = ms.add(off);
        let lum = us.mul_add(us, c1);
        let (l_num, l_den) = (md.neg_mul_add(md, lum), md.mul_add(md, lum));
        if CS {
            let cs = cs_num.div(cs_den);
            (l_num.div(l_den).mul(cs), cs)
        } else {
            (l_num.mul(cs_num).div(l_den.mul(cs_den)), L::splat(0.0))
        }
    }
}

/// Running sums of one block's SSIM and contrast-structure values.
struct Sums<L> {
    ssim: L,
    cs: L,
    /// The partial vectors', in f64.
    tail: (f64, f64),
}

impl<L: Lanes> Sums<L> {
    #[inline(always)]
    unsafe fn new() -> Self {
        Sums {
            ssim: unsafe { L::splat(0.0) },
            cs: unsafe { L::splat(0.0) },
            tail: (0.0, 0.0),
        }
    }

    /// Adds the values of columns j.. of a block `bw` wide (only the first `bw − j` lanes
    /// when fewer than a vector are left), and writes the SSIM values to `map`.
    #[inline(always)]
    unsafe fn add(&mut self, (ssim, cs): (L, L), j: usize, bw: usize, map: Option<&mut [f32]>) {
        unsafe {
            let n = bw - j;
            if n >= L::N {
                self.ssim = self.ssim.add(ssim);
                self.cs = self.cs.add(cs);
                if let Some(m) = map {
                    ssim.store(m.as_mut_ptr().add(j));
                }
            } else {
                self.tail.0 += ssim.sum_first(n);
                self.tail.1 += cs.sum_first(n);
                if let Some(m) = map {
                    let mut tmp = [0f32; 16];
                    ssim.store(tmp.as_mut_ptr());
                    m[j..].copy_from_slice(&tmp[..n]);
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn total(self) -> (f64, f64) {
        unsafe {
            (
                self.tail.0 + self.ssim.sum_first(L::N),
                self.tail.1 + self.cs.sum_first(L::N),
            )
        }
    }
}

/// The vertical filter of the ring (its rows in window order at `slots`) for one output
/// row of the block, or two when `pair`, then their SSIM and contrast-structure terms:
/// their sums, and the SSIM values into `map`'s rows when given.
///
/// Each map is filtered on its own into `stage` first, so that only one map's rows are
/// live in registers: filtering the four maps and making the terms in one pass keeps the
/// shared rows of a pair alive across it, and they spill (about 10% slower).
#[inline(always)]
unsafe fn vertical<L: Lanes, const SSIM: bool, const CS: bool>(
    ring: &[f32],
    stage: &mut [f32],
    slots: [usize; RING],
    pair: bool,
    bw: usize,
    p: &KernelParams,
    mut map: Option<(&mut [f32], Option<&mut [f32]>)>,
) -> (f64, f64) {
    debug_assert!(ring.len() == RING * MAPS * BLOCK && stage.len() == 2 * MAPS * BLOCK);
    unsafe {
        let taps = splat_taps::<L>(&p.taps);
        let mut rows = [ring.as_ptr(); RING];
        for (row, slot) in rows.iter_mut().zip(slots) {
            *row = ring.as_ptr().add(slot * MAPS * BLOCK);
        }
        let (s0, s1) = (stage.as_mut_ptr(), stage.as_mut_ptr().add(MAPS * BLOCK));
        for m in 0..MAPS {
            for j in (0..bw).step_by(L::N) {
                let at = m * BLOCK + j;
                if pair {
                    let (a, b) = filter_pair::<L>(&rows, at, &taps);
                    a.store(s0.add(at));
                    b.store(s1.add(at));
                } else {
                    filter_one::<L>(&rows, at, &taps).store(s0.add(at));
                }
            }
        }
        let [off, c1, c2] = p.scaled;
        let consts = [L::splat(off), L::splat(c1), L::splat(c2), L::splat(p.gain)];
        let (mut first, mut second) = (Sums::<L>::new(), Sums::<L>::new());
        for j in (0..bw).step_by(L::N) {
            let (m0, m1) = match map.as_mut() {
                Some((a, b)) => (Some(&mut **a), b.as_deref_mut()),
                None => (None, None),
            };
            let [ms, md, mss, mdd] = staged::<L>(s0, j);
            first.add(
                ssim_terms::<L, SSIM, CS>(ms, md, mss, mdd, &consts),
                j,
                bw,
                m0,
            );
            if pair {
                let [ms, md, mss, mdd] = staged::<L>(s1, j);
                second.add(
                    ssim_terms::<L, SSIM, CS>(ms, md, mss, mdd, &consts),
                    j,
                    bw,
                    m1,
                );
            }
        }
        let ((s0, c0), (s1, c1)) = (first.total(), second.total());
        (s0 + s1, c0 + c1)
    }
}

/// The four filtered maps of one staged output row, at column `j`.
#[inline(always)]
unsafe fn staged<L: Lanes>(row: *const f32, j: usize) -> [L; MAPS] {
    unsafe {
        let at = row.add(j);
        [
            L::load(at),
            L::load(at.add(BLOCK)),
            L::load(at.add(2 * BLOCK)),
            L::load(at.add(3 * BLOCK)),
        ]
    }
}
