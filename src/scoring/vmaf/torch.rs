//! VMAF's features with libtorch, on the engine's device (CUDA, or libtorch's CPU): the
//! definitions of [`super::adm`], [`super::vif`] and [`super::motion`] as tensor
//! operations on `[1, 1, h, w]` luma tensors (8-bit units, shifted by −128). Only the
//! features' sums come back to the host.

use tch::{Device, Kind, Tensor};

use super::Luma;
use crate::scoring::Error;

type Result<T> = std::result::Result<T, Error>;

/// A luma plane on `device`, as a `[1, 1, h, w]` tensor.
pub fn upload(luma: &Luma, device: Device) -> Result<Tensor> {
    let t = Tensor::f_from_slice(&luma.v)?
        .f_reshape([1, 1, luma.h as i64, luma.w as i64])?
        .f_to_device(device)?;
    Ok(t)
}

/// Sums left on the device until all of a frame's are known, then read back together:
/// one transfer (and one wait for the device) per frame.
#[derive(Default)]
struct Deferred {
    sums: Vec<Tensor>,
}

impl Deferred {
    /// Queues Σ t; its index in [`Deferred::read`]'s values.
    fn sum(&mut self, t: &Tensor) -> Result<usize> {
        self.sums.push(t.f_sum(Kind::Double)?);
        Ok(self.sums.len() - 1)
    }

    fn read(self) -> Result<Vec<f64>> {
        if self.sums.is_empty() {
            return Ok(Vec::new());
        }
        let all = Tensor::f_stack(&self.sums, 0)?.f_to_device(Device::Cpu)?;
        Ok(Vec::<f64>::try_from(&all)?)
    }
}

/// `x` filtered with the symmetric `taps` in both directions, edges mirrored without
/// repeating them (−1 → 1, n → n − 2): reflection padding.
fn filter_reflect(x: &Tensor, taps: &[f32]) -> Result<Tensor> {
    let r = (taps.len() / 2) as i64;
    let n = taps.len() as i64;
    let channels = x.size()[1];
    let k = Tensor::f_from_slice(taps)?.f_to_device(x.device())?;
    let horizontal = k.f_reshape([1, 1, 1, n])?.f_repeat([channels, 1, 1, 1])?;
    let vertical = k.f_reshape([1, 1, n, 1])?.f_repeat([channels, 1, 1, 1])?;
    let padded = x.f_reflection_pad2d([r, r, r, r])?;
    let v = padded.f_conv2d(&vertical, None::<Tensor>, [1, 1], [0, 0], [1, 1], channels)?;
    Ok(v.f_conv2d(
        &horizontal,
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        channels,
    )?)
}

/// Motion's low-pass filter of a luma tensor.
pub fn blurred(x: &Tensor) -> Result<Tensor> {
    filter_reflect(x, &super::motion::filter_taps())
}

/// The mean absolute difference of two filtered planes.
pub fn mean_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(a.f_sub(b)?
        .f_abs()?
        .f_mean(Kind::Double)?
        .f_double_value(&[])?)
}

/// The four VIF features, as [`super::vif::Vif::features_of`].
pub fn vif(x: &Tensor, y: &Tensor, gain_limit: f64) -> Result<[f64; 4]> {
    let mut d = Deferred::default();
    let at = vif_sums(x, y, gain_limit, &mut d)?;
    Ok(vif_of(&at, &d.read()?))
}

/// VIF from its sums' values: (num, den) of each scale that was computed.
fn vif_of(at: &[Option<(usize, usize)>; 4], values: &[f64]) -> [f64; 4] {
    at.map(|scale| match scale {
        Some((n, d)) if values[d] > 0.0 => values[n] / values[d],
        _ => 1.0,
    })
}

/// Queues each scale's Σ num and Σ den; their indices.
fn vif_sums(
    x: &Tensor,
    y: &Tensor,
    gain_limit: f64,
    deferred: &mut Deferred,
) -> Result<[Option<(usize, usize)>; 4]> {
    const SIGMA_NSQ: f64 = 2.0;
    const EPS: f64 = 1e-10;
    let mut out = [None; 4];
    let (mut x, mut y) = (x.shallow_clone(), y.shallow_clone());
    for (s, o) in out.iter_mut().enumerate() {
        let taps = super::vif::window(s);
        if s > 0 {
            let half = |t: &Tensor| -> Result<Tensor> {
                let f = filter_reflect(t, &taps)?;
                let (h, w) = (f.size()[2], f.size()[3]);
                Ok(f.f_slice(2, 0, 2 * (h / 2), 2)?
                    .f_slice(3, 0, 2 * (w / 2), 2)?)
            };
            (x, y) = (half(&x)?, half(&y)?);
        }
        let size = x.size();
        if size[2] <= (taps.len() / 2) as i64 || size[3] <= (taps.len() / 2) as i64 {
            break;
        }
        let maps = Tensor::f_cat(&[&x, &y, &x.f_mul(&x)?, &y.f_mul(&y)?, &x.f_mul(&y)?], 1)?;
        let f = filter_reflect(&maps, &taps)?;
        let m = |i: i64| f.f_narrow(1, i, 1);
        let (mx, my, xx, yy, xy) = (m(0)?, m(1)?, m(2)?, m(3)?, m(4)?);
        let s1 = xx.f_sub(&mx.f_mul(&mx)?)?.f_relu()?;
        let s2 = yy.f_sub(&my.f_mul(&my)?)?.f_relu()?;
        let s12 = xy.f_sub(&mx.f_mul(&my)?)?;
        let g = s12.f_div(&s1.f_add_scalar(EPS)?)?;
        let sv = s2.f_sub(&g.f_mul(&s12)?)?;
        // σ1² ≈ 0: no gain, all of σ2² is noise.
        let flat1 = s1.f_lt(EPS)?;
        let g = g.f_where_scalarother(&flat1.f_logical_not()?, 0.0)?;
        let sv = s2.f_where_self(&flat1, &sv)?;
        let s1 = s1.f_where_scalarother(&flat1.f_logical_not()?, 0.0)?;
        // σ2² ≈ 0: no gain and no noise.
        let flat2 = s2.f_lt(EPS)?;
        let g = g.f_where_scalarother(&flat2.f_logical_not()?, 0.0)?;
        let sv = sv.f_where_scalarother(&flat2.f_logical_not()?, 0.0)?;
        // A negative gain: none, and σ2² is noise.
        let negative = g.f_lt(0.0)?;
        let sv = s2.f_where_self(&negative, &sv)?;
        let g = g.f_clamp(0.0, gain_limit)?;
        let sv = sv.f_clamp_min(EPS)?;
        let num = g
            .f_mul(&g)?
            .f_mul(&s1)?
            .f_div(&sv.f_add_scalar(SIGMA_NSQ)?)?
            .f_add_scalar(1.0)?
            .f_log2()?;
        let num = num.f_where_scalarother(&s12.f_lt(0.0)?.f_logical_not()?, 0.0)?;
        let den = s1.f_div_scalar(SIGMA_NSQ)?.f_add_scalar(1.0)?.f_log2()?;
        // A flat reference.
        let low = s1.f_lt(SIGMA_NSQ)?;
        let flat_num = s2
            .f_mul_scalar(-SIGMA_NSQ * SIGMA_NSQ / (255.0 * 255.0))?
            .f_add_scalar(1.0)?;
        let num = flat_num.f_where_self(&low, &num)?;
        let den = den.f_where_scalarother(&low.f_logical_not()?, 1.0)?;
        *o = Some((deferred.sum(&num)?, deferred.sum(&den)?));
    }
    Ok(out)
}

/// Indices `2i − 1 + k` (k = 0..4) of the transform's taps for `n` inputs, mirrored
/// (−1 → 1, n → n − 1), one index tensor per tap.
fn dwt_indices(n: i64, device: Device) -> Result<[Tensor; 4]> {
    let half = (n + 1) / 2;
    let mirror = |k: i64| {
        if k < 0 {
            -k
        } else if k >= n {
            2 * n - k - 1
        } else {
            k
        }
    };
    let mut out = Vec::with_capacity(4);
    for k in 0..4 {
        let idx: Vec<i64> = (0..half)
            .map(|i| mirror(2 * i - 1 + k).clamp(0, n - 1))
            .collect();
        out.push(Tensor::f_from_slice(&idx)?.f_to_device(device)?);
    }
    out.try_into()
        .map_err(|_| Error::Backend("four transform taps".into()))
}

/// Σ f[k] · x.index_select(dim, idx[k]).
fn taps_along(x: &Tensor, dim: i64, idx: &[Tensor; 4], f: &[f32; 4]) -> Result<Tensor> {
    let mut acc = x
        .f_index_select(dim, &idx[0])?
        .f_mul_scalar(f64::from(f[0]))?;
    for k in 1..4 {
        acc = acc.f_add(
            &x.f_index_select(dim, &idx[k])?
                .f_mul_scalar(f64::from(f[k]))?,
        )?;
    }
    Ok(acc)
}

/// One level of the transform: the approximation and the H, V and D bands.
fn dwt(x: &Tensor) -> Result<(Tensor, [Tensor; 3])> {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (rows, cols) = (dwt_indices(h, x.device())?, dwt_indices(w, x.device())?);
    let (lo_f, hi_f) = (&super::adm::LO, &super::adm::HI);
    let lo = taps_along(x, 2, &rows, lo_f)?;
    let hi = taps_along(x, 2, &rows, hi_f)?;
    let a = taps_along(&lo, 3, &cols, lo_f)?;
    let v = taps_along(&lo, 3, &cols, hi_f)?;
    let hb = taps_along(&hi, 3, &cols, lo_f)?;
    let d = taps_along(&hi, 3, &cols, hi_f)?;
    Ok((a, [hb, v, d]))
}

/// `x` padded by one row and column each side, mirrored as the masking window reads it
/// (−1 → 1, n → n − 1).
fn pad_mask(x: &Tensor) -> Result<Tensor> {
    let pad = |t: &Tensor, dim: i64| -> Result<Tensor> {
        let n = t.size()[dim as usize];
        let mut idx = vec![1.min(n - 1)];
        idx.extend(0..n);
        idx.push(n - 1);
        let idx = Tensor::f_from_slice(&idx)?.f_to_device(t.device())?;
        Ok(t.f_index_select(dim, &idx)?)
    };
    pad(&pad(x, 2)?, 3)
}

/// The restored detail of one band, as [`super::adm`]'s `restored`.
fn restored(o: &Tensor, t: &Tensor, aligned: &Tensor, gain_limit: f64) -> Result<Tensor> {
    let k = t.f_div(&o.f_add_scalar(1e-30)?)?.f_clamp(0.0, 1.0)?;
    let rst = k.f_mul(o)?;
    let scaled = rst.f_mul_scalar(gain_limit)?;
    let boosted_pos = scaled.f_minimum(t)?;
    let boosted_neg = scaled.f_maximum(t)?;
    let boosted = boosted_pos.f_where_self(
        &rst.f_gt(0.0)?,
        &boosted_neg.f_where_self(&rst.f_lt(0.0)?, &rst)?,
    )?;
    Ok(boosted.f_where_self(aligned, &rst)?)
}

/// ADM2, as [`super::adm::Adm::adm2_of`].
pub fn adm2(x: &Tensor, y: &Tensor, gain_limit: f64) -> Result<f64> {
    let mut d = Deferred::default();
    let plan = adm_sums(x, y, gain_limit, &mut d)?;
    Ok(plan.adm2(&d.read()?))
}

/// Where ADM2's sums are: each level's area, and its bands' sums of cubes of the
/// reference's detail (the denominator) and of the masked restored detail (the numerator).
struct AdmSums {
    levels: Vec<(usize, [usize; 3], [usize; 3])>,
    /// The frame's samples.
    pixels: usize,
}

impl AdmSums {
    fn adm2(&self, values: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (area, d, n) in &self.levels {
            for b in 0..3 {
                den += super::adm::norm3(values[d[b]], *area);
                num += super::adm::norm3(values[n[b]], *area);
            }
        }
        super::adm::ratio(num, den, self.pixels)
    }
}

/// Queues ADM2's sums; where they are.
fn adm_sums(x: &Tensor, y: &Tensor, gain_limit: f64, deferred: &mut Deferred) -> Result<AdmSums> {
    let (h0, w0) = (x.size()[2], x.size()[3]);
    let cos_1deg_sq = 1f64.to_radians().cos().powi(2);
    let (mut x, mut y) = (x.shallow_clone(), y.shallow_clone());
    let mut plan = AdmSums {
        levels: Vec::with_capacity(4),
        pixels: (w0 * h0) as usize,
    };
    for level in 0..4 {
        let (xa, o) = dwt(&x)?;
        let (ya, t) = dwt(&y)?;
        let rf = super::adm::csf_weights(level).map(f64::from);
        let (h, w) = (o[0].size()[2] as usize, o[0].size()[3] as usize);
        let (rows, cols) = (super::adm::centre(h), super::adm::centre(w));
        let area = rows.len() * cols.len();
        let centre = |m: &Tensor| -> Result<Tensor> {
            Ok(m.f_narrow(2, rows.start as i64, rows.len() as i64)?
                .f_narrow(3, cols.start as i64, cols.len() as i64)?)
        };
        // The reference's weighted detail, for the denominator.
        let mut den = [0; 3];
        for (b, d) in den.iter_mut().enumerate() {
            *d = deferred.sum(&centre(
                &o[b].f_mul_scalar(rf[b])?.f_abs()?.f_pow_tensor_scalar(3)?,
            )?)?;
        }
        let dot = o[0].f_mul(&t[0])?.f_add(&o[1].f_mul(&t[1])?)?;
        let om = o[0].f_mul(&o[0])?.f_add(&o[1].f_mul(&o[1])?)?;
        let tm = t[0].f_mul(&t[0])?.f_add(&t[1].f_mul(&t[1])?)?;
        let aligned = dot.f_ge(0.0)?.f_logical_and(
            &dot.f_mul(&dot)?
                .f_ge_tensor(&om.f_mul(&tm)?.f_mul_scalar(cos_1deg_sq)?)?,
        )?;
        let mut rest = Vec::with_capacity(3);
        let mut mask = Tensor::f_zeros_like(&o[0])?;
        for b in 0..3 {
            let r = restored(&o[b], &t[b], &aligned, gain_limit)?;
            let a = t[b].f_sub(&r)?;
            mask = mask.f_add(&a.f_mul_scalar(rf[b])?.f_abs()?)?;
            rest.push(r);
        }
        let mask = mask.f_div_scalar(30.0)?;
        // The 3×3 sum of the masking values, plus the centre once more.
        let padded = pad_mask(&mask)?;
        let mut threshold = mask.shallow_clone();
        for dy in 0..3 {
            for dx in 0..3 {
                let shifted = padded
                    .f_narrow(2, dy, h as i64)?
                    .f_narrow(3, dx, w as i64)?;
                threshold = threshold.f_add(&shifted)?;
            }
        }
        let mut num = [0; 3];
        for (b, (r, n)) in rest.iter().zip(num.iter_mut()).enumerate() {
            let v = r
                .f_mul_scalar(rf[b])?
                .f_abs()?
                .f_sub(&threshold)?
                .f_relu()?;
            *n = deferred.sum(&centre(&v.f_pow_tensor_scalar(3)?)?)?;
        }
        plan.levels.push((area, den, num));
        (x, y) = (xa, ya);
    }
    Ok(plan)
}

/// A pair's spatial features and the reference's motion against `previous` (its filtered
/// luma, when there is one of the same size), with one read from the device; and the
/// reference's filtered luma, for the next pair.
pub fn features(
    x: &Tensor,
    y: &Tensor,
    previous: Option<&Tensor>,
    opts: super::FeatureOptions,
) -> Result<(f64, [f64; 4], f64, Tensor)> {
    let mut d = Deferred::default();
    let adm = adm_sums(x, y, opts.adm_enhn_gain_limit, &mut d)?;
    let vif = vif_sums(x, y, opts.vif_enhn_gain_limit, &mut d)?;
    let blurred = blurred(x)?;
    let motion = match previous.filter(|p| p.size() == blurred.size()) {
        Some(p) => Some(d.sum(&blurred.f_sub(p)?.f_abs()?)?),
        None => None,
    };
    let values = d.read()?;
    let motion = motion.map_or(0.0, |m| values[m] / blurred.numel() as f64);
    Ok((adm.adm2(&values), vif_of(&vif, &values), motion, blurred))
}
