//! The libtorch backend: the same definitions as the native CPU kernel, as tensor operations,
//! on CUDA when there is a GPU (it also runs on libtorch's CPU device, slowly).
//!
//! Samples go to the device as 8-bit (or 16-bit) integers; colour handling, filtering and
//! reductions happen there, and the scores of a whole batch come back in one read.

use tch::{Kind, Tensor};

use super::budget::band_bytes;
use super::image::{Component, LUMA_WEIGHTS, PlaneSource};
use super::rows::{
    ImagePlane, Moments, RowSource, ms_ssim_pooled_lazily, rough_mean, squared_difference_sum,
    squared_error_map,
};
use super::window::{WINDOW, gaussian, ms_ssim_scales};
use super::{
    Device, Error, FaultInjection, ImageView, MapKind, Options, PlaneScores, QualityMap, Scores,
    Usage, combine, ms_ssim_combine, planes_for, ssim_constants,
};

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Backend(e.to_string())
    }
}

pub(crate) fn tch_device(device: Device) -> tch::Device {
    match device {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda(n) => tch::Device::Cuda(n),
    }
}

/// The five moment maps filtered together: x, y, x², y², xy.
const MAPS: i64 = 5;

/// Scores image pairs with libtorch on one device.
pub struct TorchScorer {
    device: tch::Device,
    /// Depthwise separable Gaussian: [MAPS, 1, 1, 11] and [MAPS, 1, 11, 1].
    horizontal: Tensor,
    vertical: Tensor,
    /// Fault injection: coming device allocations that fail as out of memory.
    faults: FaultInjection,
}

/// CUDA devices libtorch can use (0 without a driver, a GPU, or a CUDA build of libtorch).
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// Checks that libtorch can run on `device`.
pub fn check_device(device: Device) -> Result<(), Error> {
    if let Device::Cuda(n) = device {
        let count = cuda_device_count();
        if count == 0 {
            return Err(Error::Backend(format!(
                "{device} was requested, but libtorch finds no CUDA device (no GPU, no driver, or a \
                 libtorch built without CUDA)"
            )));
        }
        if n >= count {
            return Err(Error::Backend(format!(
                "{device} was requested, but there are only {count} CUDA devices"
            )));
        }
    }
    Ok(())
}

impl TorchScorer {
    pub fn new(device: Device) -> Result<Self, Error> {
        check_device(device)?;
        let device = tch_device(device);
        let g: Vec<f32> = gaussian().iter().map(|&v| v as f32).collect();
        let g = Tensor::f_from_slice(&g)?;
        let horizontal = g
            .f_view([1, 1, 1, WINDOW as i64])?
            .f_repeat([MAPS, 1, 1, 1])?
            .f_to_device(device)?;
        let vertical = g
            .f_view([1, 1, WINDOW as i64, 1])?
            .f_repeat([MAPS, 1, 1, 1])?
            .f_to_device(device)?;
        Ok(TorchScorer {
            device,
            horizontal,
            vertical,
            faults: FaultInjection::default(),
        })
    }

    /// Takes its injected failures from `faults` (shared with whoever arms them).
    pub fn with_faults(mut self, faults: FaultInjection) -> Self {
        self.faults = faults;
        self
    }

    /// Makes the next `n` device allocations fail as if the device were out of memory
    /// (for testing recovery).
    pub fn inject_allocation_failures(&self, n: u32) {
        self.faults.inject(n);
    }

    /// Where the engine allocates on the device: fails when a failure is injected.
    fn allocation_point(&self) -> Result<(), Error> {
        if self.faults.take() {
            return Err(Error::Backend(
                "injected allocation failure: out of memory".into(),
            ));
        }
        Ok(())
    }

    pub fn device(&self) -> Device {
        match self.device {
            tch::Device::Cuda(n) => Device::Cuda(n),
            _ => Device::Cpu,
        }
    }

    /// Scores a batch of pairs. Consecutive pairs of the same geometry are stacked and
    /// scored together.
    pub fn score_batch(
        &self,
        pairs: &[(ImageView<'_>, ImageView<'_>)],
        opts: &Options,
    ) -> Result<Vec<Scores>, Error> {
        for (r, d) in pairs {
            r.check_comparable(d, opts.channels)?;
        }
        let mut out = Vec::with_capacity(pairs.len());
        let mut start = 0;
        while start < pairs.len() {
            let mut end = start + 1;
            while end < pairs.len() && same_layout(&pairs[start], &pairs[end], opts) {
                end += 1;
            }
            out.extend(self.score_group(&pairs[start..end], opts)?);
            start = end;
        }
        Ok(out)
    }

    fn score_group(
        &self,
        pairs: &[(ImageView<'_>, ImageView<'_>)],
        opts: &Options,
    ) -> Result<Vec<Scores>, Error> {
        let _guard = tch::no_grad_guard();
        let (first_ref, first_dist) = &pairs[0];
        let max_value = first_ref.max_value();
        let sources: Vec<(PlaneSource, PlaneSource)> = planes_for(first_ref.kind, opts.channels)
            .into_iter()
            .zip(planes_for(first_dist.kind, opts.channels))
            .collect();
        // Per plane: the scores as [batch] tensors in a fixed order, read back together.
        let mut columns: Vec<Tensor> = Vec::new();
        let mut layout: Vec<PlaneLayout> = Vec::new();
        for &(sr, sd) in &sources {
            let x = self.upload_plane(pairs.iter().map(|p| &p.0), sr)?;
            let y = self.upload_plane(pairs.iter().map(|p| &p.1), sd)?;
            let (height, width) = (x.size()[2] as usize, x.size()[3] as usize);
            // The shift before the moments: the banded path's, from the same host rows, so
            // that both compute the same values (see `shift_offsets`).
            let offset = shift_offsets(pairs.iter().map(|p| &p.0), sr, self.device)?;
            let diff = x.f_sub(&y)?;
            columns.push(diff.f_square()?.f_sum_dim_intlist(
                &[1i64, 2, 3][..],
                false,
                Kind::Double,
            )?);
            let mut plane = PlaneLayout {
                samples: (width * height) as u64,
                ssim: None,
                ms_ssim: None,
                sources: (sr, sd),
                ssim_map: None,
            };
            if width >= WINDOW && height >= WINDOW && (opts.metrics.ssim || opts.metrics.ms_ssim) {
                let (ssim_map, cs_map) = self.ssim_cs_maps(&x, &y, &offset, max_value)?;
                let (ssim, cs) = (per_image_mean(&ssim_map)?, per_image_mean(&cs_map)?);
                if opts.map && opts.metrics.ssim {
                    plane.ssim_map = Some(ssim_map);
                }
                if opts.metrics.ssim {
                    plane.ssim = Some(columns.len());
                    columns.push(ssim.shallow_clone());
                }
                if opts.metrics.ms_ssim {
                    let scales = ms_ssim_scales(width, height);
                    let first_column = columns.len();
                    let (mut px, mut py) = (x, y);
                    let mut last = (ssim, cs);
                    for scale in 0..scales {
                        if scale > 0 {
                            px = pool(&px)?;
                            py = pool(&py)?;
                            last = self.ssim_cs(&px, &py, &offset, max_value)?;
                        }
                        if scale + 1 < scales {
                            columns.push(last.1.shallow_clone());
                        }
                    }
                    columns.push(last.0);
                    plane.ms_ssim = Some((first_column, scales));
                }
            }
            layout.push(plane);
        }
        // One device-to-host read for the whole batch: [columns, batch].
        let table = Tensor::f_stack(&columns, 0)?.f_to_device(tch::Device::Cpu)?;
        let values: Vec<f64> = Vec::try_from(&table.f_to_kind(Kind::Double)?.f_flatten(0, -1)?)?;
        let batch = pairs.len();
        let at = |column: usize, b: usize| values[column * batch + b];
        // The SSIM maps asked for, one read per plane: [batch, rows, columns].
        let ssim_maps = layout
            .iter()
            .map(|plane| {
                plane
                    .ssim_map
                    .as_ref()
                    .map(|m| -> Result<Vec<f32>, Error> {
                        Ok(Vec::try_from(
                            &m.f_to_device(tch::Device::Cpu)?.f_flatten(0, -1)?,
                        )?)
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut column = 0;
        let mut sse_columns = Vec::new();
        for plane in &layout {
            sse_columns.push(column);
            column +=
                1 + plane.ssim.map_or(0, |_| 1) + plane.ms_ssim.map_or(0, |(_, n)| n as usize);
        }
        Ok((0..batch)
            .map(|b| {
                let planes: Vec<PlaneScores> = layout
                    .iter()
                    .zip(&sse_columns)
                    .zip(&ssim_maps)
                    .map(|((plane, &sse), ssim_map)| PlaneScores {
                        sse: at(sse, b),
                        samples: plane.samples,
                        ssim: plane.ssim.map(|c| at(c, b)),
                        ms_ssim: plane.ms_ssim.map(|(first, scales)| {
                            let cs: Vec<f64> =
                                (0..scales as usize - 1).map(|s| at(first + s, b)).collect();
                            (
                                ms_ssim_combine(&cs, at(first + scales as usize - 1, b)),
                                scales,
                            )
                        }),
                        map: opts
                            .map
                            .then(|| plane.map_of(&pairs[b], ssim_map.as_deref(), b)),
                    })
                    .collect();
                combine(planes, max_value)
            })
            .collect())
    }

    /// Uploads one plane of every image as a float tensor [batch, 1, height, width].
    fn upload_plane<'a, 'b: 'a>(
        &self,
        images: impl Iterator<Item = &'a ImageView<'b>> + Clone,
        source: PlaneSource,
    ) -> Result<Tensor, Error> {
        match source {
            PlaneSource::Component(c) => {
                self.upload_components(images.map(|i| (&i.components[c], i.depth)))
            }
            PlaneSource::RgbLuma => {
                let mut luma: Option<Tensor> = None;
                for (c, weight) in LUMA_WEIGHTS.iter().enumerate() {
                    let channel = self
                        .upload_components(images.clone().map(|i| (&i.components[c], i.depth)))?
                        .f_mul_scalar(*weight as f64)?;
                    luma = Some(match luma {
                        None => channel,
                        Some(l) => l.f_add(&channel)?,
                    });
                }
                luma.ok_or_else(|| Error::Backend("no RGB components".into()))
            }
        }
    }

    fn upload_components<'a, 'b: 'a>(
        &self,
        components: impl Iterator<Item = (&'a Component<'b>, u32)>,
    ) -> Result<Tensor, Error> {
        self.allocation_point()?;
        let mut bytes = Vec::new();
        let (mut batch, mut width, mut height, mut depth) = (0i64, 0, 0, 8);
        // The components of a group share their sample layout (see `same_layout`).
        let (mut shift, mut map) = (0, None);
        for (c, d) in components {
            bytes.extend_from_slice(&c.packed_bytes(d));
            batch += 1;
            (width, height, depth) = (c.width as i64, c.height as i64, d);
            (shift, map) = (c.shift, c.map);
        }
        let shape = [batch, 1, height, width];
        let samples = if depth > 8 {
            // Two-byte samples travel as int16 and are widened on the device.
            let words: Vec<i16> = bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            Tensor::f_from_slice(&words)?
                .f_view(shape)?
                .f_to_device(self.device)?
                .f_to_kind(Kind::Int)?
                .f_bitwise_and(0xffff)?
        } else {
            Tensor::f_from_slice(&bytes)?
                .f_view(shape)?
                .f_to_device(self.device)?
        };
        let mut samples = samples.f_to_kind(Kind::Float)?;
        if shift > 0 {
            samples = samples.f_div_scalar((1u32 << shift) as f64)?.f_floor()?;
        }
        if let Some(m) = map {
            samples = samples
                .f_mul_scalar(m.gain as f64)?
                .f_add_scalar(m.offset as f64)?;
        }
        Ok(samples)
    }

    /// Per-image mean SSIM and mean contrast-structure term, as two [batch] tensors.
    fn ssim_cs(
        &self,
        x: &Tensor,
        y: &Tensor,
        offset: &Tensor,
        max_value: f64,
    ) -> Result<(Tensor, Tensor), Error> {
        let (ssim, cs) = self.ssim_cs_maps(x, y, offset, max_value)?;
        Ok((per_image_mean(&ssim)?, per_image_mean(&cs)?))
    }

    /// The SSIM and contrast-structure maps over the valid region, samples shifted by
    /// `offset` (a scalar or one value per image).
    fn ssim_cs_maps(
        &self,
        x: &Tensor,
        y: &Tensor,
        offset: &Tensor,
        max_value: f64,
    ) -> Result<(Tensor, Tensor), Error> {
        self.allocation_point()?;
        let (c1, c2) = ssim_constants(max_value);
        let filtered = {
            let xs = x.f_sub(offset)?;
            let ys = y.f_sub(offset)?;
            let maps = Tensor::f_cat(
                &[&xs, &ys, &xs.f_mul(&xs)?, &ys.f_mul(&ys)?, &xs.f_mul(&ys)?],
                1,
            )?;
            self.filter(&maps)?
        };
        let map = |i: i64| filtered.f_narrow(1, i, 1);
        let (mx, my, mxx, myy, mxy) = (map(0)?, map(1)?, map(2)?, map(3)?, map(4)?);
        let vx = mxx.f_sub(&mx.f_mul(&mx)?)?;
        let vy = myy.f_sub(&my.f_mul(&my)?)?;
        let cov = mxy.f_sub(&mx.f_mul(&my)?)?;
        let ux = mx.f_add(offset)?;
        let uy = my.f_add(offset)?;
        let cs = cov
            .f_mul_scalar(2.0)?
            .f_add_scalar(c2)?
            .f_div(&vx.f_add(&vy)?.f_add_scalar(c2)?)?;
        let luminance = ux
            .f_mul(&uy)?
            .f_mul_scalar(2.0)?
            .f_add_scalar(c1)?
            .f_div(&ux.f_mul(&ux)?.f_add(&uy.f_mul(&uy)?)?.f_add_scalar(c1)?)?;
        Ok((luminance.f_mul(&cs)?, cs))
    }

    /// Scores one pair in horizontal bands of `band_rows` output rows (plus the window's
    /// halo), plane by plane and, for MS-SSIM, scale by scale: the sums over bands equal
    /// the whole-frame result. Pooled scales are computed on the host as they are read.
    pub fn score_banded(
        &self,
        reference: &ImageView<'_>,
        distorted: &ImageView<'_>,
        opts: &Options,
        band_rows: usize,
    ) -> Result<(Scores, Usage), Error> {
        reference.check_comparable(distorted, opts.channels)?;
        let _guard = tch::no_grad_guard();
        let max_value = reference.max_value();
        let mut usage = Usage {
            tiles: 0,
            bytes: 0,
            batch: 1,
        };
        let mut planes = Vec::new();
        for (sa, sb) in planes_for(reference.kind, opts.channels)
            .into_iter()
            .zip(planes_for(distorted.kind, opts.channels))
        {
            let x = ImagePlane::new(reference, sa);
            let y = ImagePlane::new(distorted, sb);
            planes.push(self.plane_banded(&x, &y, opts, max_value, band_rows, &mut usage)?);
        }
        Ok((combine(planes, max_value), usage))
    }

    fn plane_banded(
        &self,
        x: &dyn RowSource,
        y: &dyn RowSource,
        opts: &Options,
        max_value: f64,
        band_rows: usize,
        usage: &mut Usage,
    ) -> Result<PlaneScores, Error> {
        let samples = (x.width() * x.height()) as u64;
        let fits = x.width() >= WINDOW && x.height() >= WINDOW;
        let structural = fits && (opts.metrics.ssim || opts.metrics.ms_ssim);
        let offset = Tensor::from(rough_mean(&x)).f_to_device(self.device)?;
        let mut ssim_map = (opts.map && fits && opts.metrics.ssim).then(Vec::new);
        let first = self.moments_banded(
            x,
            y,
            &offset,
            max_value,
            band_rows,
            structural,
            usage,
            ssim_map.as_mut(),
        )?;
        let map = match ssim_map {
            Some(values) => Some(QualityMap::new(
                MapKind::Ssim,
                x.width(),
                x.height(),
                values,
            )),
            None => opts.map.then(|| squared_error_map(x, y)),
        };
        let mut scores = PlaneScores {
            sse: first.sse,
            samples,
            ssim: (fits && opts.metrics.ssim).then_some(first.ssim),
            ms_ssim: None,
            map,
        };
        if fits && opts.metrics.ms_ssim {
            scores.ms_ssim = Some(ms_ssim_pooled_lazily(x, y, first, |px, py| {
                self.moments_banded(px, py, &offset, max_value, band_rows, true, usage, None)
            })?);
        }
        Ok(scores)
    }

    /// Mean SSIM and CS and the squared error of one plane pair, band by band, samples
    /// shifted by `offset`; each band's SSIM map is appended to `map` when given.
    #[allow(clippy::too_many_arguments)]
    fn moments_banded(
        &self,
        x: &dyn RowSource,
        y: &dyn RowSource,
        offset: &Tensor,
        max_value: f64,
        band_rows: usize,
        with_ssim: bool,
        usage: &mut Usage,
        mut map: Option<&mut Vec<f32>>,
    ) -> Result<Moments, Error> {
        let (w, h) = (x.width(), x.height());
        let halo = if with_ssim { WINDOW - 1 } else { 0 };
        let out_h = h - halo;
        let mut m = Moments::default();
        let band_rows = band_rows.max(1);
        let mut r0 = 0;
        while r0 < out_h {
            let r1 = (r0 + band_rows).min(out_h);
            let rows = r1 - r0 + halo;
            let mut xb = vec![0f32; rows * w];
            let mut yb = vec![0f32; rows * w];
            for (i, (xr, yr)) in xb.chunks_mut(w).zip(yb.chunks_mut(w)).enumerate() {
                x.read_row(r0 + i, xr);
                y.read_row(r0 + i, yr);
            }
            // The squared error of the band's own rows (the last band's halo too).
            let own = if r1 == out_h { rows } else { r1 - r0 };
            m.sse += squared_difference_sum(&xb[..own * w], &yb[..own * w]);
            usage.tiles += 1;
            usage.bytes = usage.bytes.max(band_bytes(w, rows - halo));
            if with_ssim {
                self.allocation_point()?;
                let shape = [1, 1, rows as i64, w as i64];
                let xt = Tensor::f_from_slice(&xb)?
                    .f_view(shape)?
                    .f_to_device(self.device)?;
                let yt = Tensor::f_from_slice(&yb)?
                    .f_view(shape)?
                    .f_to_device(self.device)?;
                let (ssim, cs) = self.ssim_cs_maps(&xt, &yt, offset, max_value)?;
                if let Some(map) = map.as_deref_mut() {
                    let band: Vec<f32> =
                        Vec::try_from(&ssim.f_to_device(tch::Device::Cpu)?.f_flatten(0, -1)?)?;
                    map.extend(band);
                }
                let sums =
                    Tensor::f_stack(&[ssim.f_sum(Kind::Double)?, cs.f_sum(Kind::Double)?], 0)?;
                let sums: Vec<f64> = Vec::try_from(&sums.f_to_device(tch::Device::Cpu)?)?;
                m.ssim += sums[0];
                m.cs += sums[1];
            }
            r0 = r1;
        }
        if with_ssim {
            let n = (out_h * (w - (WINDOW - 1))) as f64;
            m.ssim /= n;
            m.cs /= n;
        }
        Ok(m)
    }

    /// Valid-region separable Gaussian over the MAPS channels, in full float32 (no TF32).
    fn filter(&self, maps: &Tensor) -> Result<Tensor, Error> {
        let conv = |input: &Tensor, weight: &Tensor| {
            input.f_internal_convolution(
                weight,
                None::<Tensor>,
                [1i64, 1],
                [0i64, 0],
                [1i64, 1],
                false,
                [0i64, 0],
                MAPS,
                false,
                false,
                true,
                false,
            )
        };
        Ok(conv(&conv(maps, &self.horizontal)?, &self.vertical)?)
    }
}

/// Where a plane's scores sit among the columns read back from the device.
struct PlaneLayout {
    samples: u64,
    ssim: Option<usize>,
    ms_ssim: Option<(usize, u32)>,
    /// The reference's and the distorted image's source of the plane.
    sources: (PlaneSource, PlaneSource),
    /// The batch's SSIM maps, [batch, 1, rows, columns], when a map was asked for.
    ssim_map: Option<Tensor>,
}

impl PlaneLayout {
    /// Pair `b`'s map: its slice of the batch's SSIM maps read back (`ssim_maps`), or
    /// the squared error computed on the host when there is no SSIM map.
    fn map_of(
        &self,
        pair: &(ImageView<'_>, ImageView<'_>),
        ssim_maps: Option<&[f32]>,
        b: usize,
    ) -> QualityMap {
        let x = ImagePlane::new(&pair.0, self.sources.0);
        let y = ImagePlane::new(&pair.1, self.sources.1);
        match ssim_maps {
            Some(all) => {
                let (w, h) = (x.width(), x.height());
                let n = (w - (WINDOW - 1)) * (h - (WINDOW - 1));
                QualityMap::new(MapKind::Ssim, w, h, all[b * n..(b + 1) * n].to_vec())
            }
            None => squared_error_map(&x, &y),
        }
    }
}

/// The mean of each image's map, as a [batch] tensor.
fn per_image_mean(map: &Tensor) -> Result<Tensor, Error> {
    Ok(map.f_mean_dim(&[1i64, 2, 3][..], false, Kind::Double)?)
}

/// 2×2 average pooling, zero padding on odd sides counted in the average, with the
/// host's operations in the host's order ([`super::rows::Pooled`]), so that pooled
/// scales are the same whether they were made here or row by row for bands.
fn pool(x: &Tensor) -> Result<Tensor, Error> {
    let size = x.size();
    let (ph, pw) = (size[2] % 2, size[3] % 2);
    let x = if ph + pw > 0 {
        x.f_constant_pad_nd([pw, pw, ph, ph])?
    } else {
        x.shallow_clone()
    };
    // Every other row and column from (dy, dx): h×w samples.
    let (h, w) = ((size[2] + 2 * ph) / 2, (size[3] + 2 * pw) / 2);
    let tap = |dy: i64, dx: i64| -> Result<Tensor, Error> {
        Ok(x.f_slice(2, dy, Some(dy + 2 * h), 2)?
            .f_slice(3, dx, Some(dx + 2 * w), 2)?)
    };
    Ok(tap(0, 0)?
        .f_add(&tap(0, 1)?)?
        .f_add(&tap(1, 0)?)?
        .f_add(&tap(1, 1)?)?
        .f_div_scalar(4.0)?)
}

/// The shift applied before the moments of one plane, per image as [batch, 1, 1, 1]: the
/// rough mean of the reference's plane, read from the host as bands read it, and kept for
/// every MS-SSIM scale (pooling keeps the mean), so that E[x²] − E[x]² keeps its precision.
fn shift_offsets<'a, 'b: 'a>(
    references: impl Iterator<Item = &'a ImageView<'b>>,
    source: PlaneSource,
    device: tch::Device,
) -> Result<Tensor, Error> {
    let offsets: Vec<f32> = references
        .map(|r| rough_mean(&ImagePlane::new(r, source)))
        .collect();
    let n = offsets.len() as i64;
    Ok(Tensor::f_from_slice(&offsets)?
        .f_view([n, 1, 1, 1])?
        .f_to_device(device)?)
}

fn same_layout(
    a: &(ImageView<'_>, ImageView<'_>),
    b: &(ImageView<'_>, ImageView<'_>),
    opts: &Options,
) -> bool {
    let geometry = |v: &ImageView<'_>| -> Vec<_> {
        planes_for(v.kind, opts.channels)
            .into_iter()
            .map(|s| v.geometry(s))
            .collect()
    };
    let samples =
        |v: &ImageView<'_>| -> Vec<_> { v.components.iter().map(|c| (c.shift, c.map)).collect() };
    a.0.kind == b.0.kind
        && a.1.kind == b.1.kind
        && a.0.depth == b.0.depth
        && a.1.depth == b.1.depth
        && geometry(&a.0) == geometry(&b.0)
        && samples(&a.0) == samples(&b.0)
        && samples(&a.1) == samples(&b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cuda_device_is_an_error() {
        let count = cuda_device_count();
        assert!(check_device(Device::Cuda(count)).is_err());
        assert!(check_device(Device::Cpu).is_ok());
    }
}
