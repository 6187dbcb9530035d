//! VMAF over a stream of frame pairs: each pair's spatial features when it comes, its
//! score once the next pair's motion is known (or at the end of the stream).

use super::adm::Adm;
use super::motion::{MotionTracker, eight_bit_scale};
use super::vif::Vif;
use super::{Features, Luma, Model};
use crate::scoring::Error;
use crate::scoring::native::Simd;
use crate::scoring::rows::RowSource;

/// The working memory VMAF keeps for `width`×`height` frames, in bytes, from frame to
/// frame: the luma pair (8 bytes a pixel), VIF's smaller scales (under 2.7), ADM's four
/// levels of two transforms and its masking sums (under 11.7), and motion's two filtered
/// planes (8); 31 bytes a pixel in all, besides a few rows per thread.
pub fn working_bytes(width: usize, height: usize) -> u64 {
    let pixels = (width as u64 + 1) * (height as u64 + 1);
    31 * pixels
}

/// A pair's VMAF and the features it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub vmaf: f64,
    pub features: Features,
}

/// The model, the features' buffers, the reference's motion, and the pair waiting for
/// its motion2, with `T`: what the caller reports with the pair's score.
pub struct VmafStream<T> {
    model: Model,
    simd: Simd,
    vif: Vif,
    adm: Adm,
    motion: MotionTracker,
    /// The pair's luma planes, read once for every feature.
    planes: (Luma, Luma),
    /// The waiting pair's item and spatial features.
    waiting: Option<(T, Features)>,
    /// With the libtorch backend: its device, and the last reference's filtered luma there.
    #[cfg(feature = "torch")]
    torch: Option<(tch::Device, Option<tch::Tensor>)>,
}

impl<T> VmafStream<T> {
    pub fn new(model: Model, simd: Simd) -> Self {
        VmafStream {
            model,
            simd,
            vif: Vif::default(),
            adm: Adm::default(),
            motion: MotionTracker::default(),
            planes: (Luma::default(), Luma::default()),
            waiting: None,
            #[cfg(feature = "torch")]
            torch: None,
        }
    }

    /// Computes the features with libtorch on `device` rather than with the native code.
    #[cfg(feature = "torch")]
    pub fn on_libtorch(mut self, device: crate::scoring::Device) -> Self {
        self.torch = Some((crate::scoring::torch::tch_device(device), None));
        self
    }

    /// Bytes its buffers hold (at most [`working_bytes`] of the frames it has seen).
    pub fn allocated_bytes(&self) -> u64 {
        self.planes.0.allocated_bytes()
            + self.planes.1.allocated_bytes()
            + self.vif.allocated_bytes()
            + self.adm.allocated_bytes()
            + self.motion.allocated_bytes()
    }

    /// Takes the next pair's luma planes (of `depth` bits) and its `item`; gives back
    /// the previous pair's item, scored, now that its motion2 is known. Only libtorch
    /// fails (out of memory, a lost device).
    pub fn push<R: RowSource>(
        &mut self,
        reference: &R,
        distorted: &R,
        depth: u32,
        item: T,
    ) -> Result<Option<(T, Scored)>, Error> {
        let scale = eight_bit_scale(depth);
        let (x, y) = &mut self.planes;
        x.read_from(reference, scale);
        y.read_from(distorted, scale);
        let (features, done) = self.features()?;
        let previous = self.waiting.replace((item, features));
        Ok(self.score(previous, done))
    }

    /// ADM2 and VIF of the pair in `planes` (motion2 still 0), and the motion2 of the pair
    /// before it, if there was one: with libtorch where it scores, else natively.
    fn features(&mut self) -> Result<(Features, Option<(u64, f64)>), Error> {
        let opts = self.model.feature_options();
        let (x, y) = (&self.planes.0, &self.planes.1);
        #[cfg(feature = "torch")]
        if let Some((device, previous)) = &mut self.torch {
            let (xt, yt) = (
                super::torch::upload(x, *device)?,
                super::torch::upload(y, *device)?,
            );
            let (adm2, vif, motion, blurred) =
                super::torch::features(&xt, &yt, previous.as_ref(), opts)?;
            *previous = Some(blurred);
            let done = self.motion.push_motion(motion);
            return Ok((
                Features {
                    adm2,
                    motion2: 0.0,
                    vif,
                },
                done,
            ));
        }
        let (simd, adm, vif, motion) = (self.simd, &mut self.adm, &mut self.vif, &mut self.motion);
        // The three features side by side: each one's smaller scales leave threads idle
        // that the others' work fills.
        let ((adm2, vif), done) = rayon::join(
            || {
                rayon::join(
                    || adm.adm2_of(simd, x, y, opts.adm_enhn_gain_limit),
                    || vif.features_of(simd, x, y, opts.vif_enhn_gain_limit),
                )
            },
            || motion.push_luma(simd, x),
        );
        Ok((
            Features {
                adm2,
                motion2: 0.0,
                vif,
            },
            done,
        ))
    }

    /// The end of the stream, or of a segment that a flush ends: the waiting pair, scored
    /// with its own motion as its motion2. The next pair starts the motion afresh.
    pub fn finish(&mut self) -> Option<(T, Scored)> {
        let done = self.motion.finish();
        #[cfg(feature = "torch")]
        if let Some((_, previous)) = &mut self.torch {
            *previous = None;
        }
        let waiting = self.waiting.take();
        self.score(waiting, done)
    }

    fn score(
        &self,
        waiting: Option<(T, Features)>,
        motion: Option<(u64, f64)>,
    ) -> Option<(T, Scored)> {
        let (item, mut features) = waiting?;
        features.motion2 = motion.map_or(0.0, |(_, m)| m);
        Some((
            item,
            Scored {
                vmaf: self.model.predict(&features),
                features,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::rows::Plane;

    /// Three moving frames through `s`: the pairs' scores, checked for their timing.
    fn three_frames(mut s: VmafStream<&'static str>) -> Vec<Scored> {
        let frame = |shift: usize| {
            Plane::from_fn(64, 48, move |x, y| {
                (((x + shift) * 7 + y * 13) % 29) as f32 * 8.0
            })
        };
        let (a, b, c) = (frame(0), frame(2), frame(5));
        assert!(s.push(&a, &a, 8, "first").unwrap().is_none());
        let (item, first) = s.push(&b, &b, 8, "second").unwrap().unwrap();
        assert_eq!(item, "first");
        // The first frame's motion2 is 0; identical pairs keep every other feature at 1.
        assert_eq!(first.features.motion2, 0.0);
        assert!((first.features.adm2 - 1.0).abs() < 1e-6);
        let (item, second) = s.push(&c, &c, 8, "third").unwrap().unwrap();
        assert_eq!(item, "second");
        assert!(second.features.motion2 > 0.0);
        let (item, third) = s.finish().unwrap();
        assert_eq!(item, "third");
        assert!(third.features.motion2 >= second.features.motion2);
        assert!(third.vmaf > 90.0, "{third:?}");
        assert_eq!(s.finish(), None);
        // After a finish (a flush), motion starts again.
        assert!(s.push(&c, &c, 8, "again").unwrap().is_none());
        let (_, again) = s.finish().unwrap();
        assert_eq!(again.features.motion2, 0.0);
        vec![first, second, third]
    }

    #[test]
    fn scores_come_one_pair_late_and_the_last_at_the_end() {
        let model = Model::load("vmaf_v0.6.1").unwrap();
        three_frames(VmafStream::new(model, Simd::active()));
    }

    #[test]
    #[cfg(feature = "torch")]
    fn libtorch_scores_as_the_native_code() {
        let model = Model::load("vmaf_v0.6.1").unwrap();
        let native = three_frames(VmafStream::new(model.clone(), Simd::active()));
        let torch = three_frames(
            VmafStream::new(model, Simd::active()).on_libtorch(crate::scoring::Device::Cpu),
        );
        for (n, t) in native.iter().zip(&torch) {
            assert!((n.vmaf - t.vmaf).abs() < 1e-3, "{n:?} {t:?}");
        }
    }

    #[test]
    fn the_buffers_stay_within_the_working_memory_accounted() {
        for (w, h) in [(64, 48), (37, 23), (1920, 1080), (641, 359)] {
            let mut s = VmafStream::new(Model::load("vmaf_v0.6.1").unwrap(), Simd::active());
            let p = Plane::from_fn(w, h, |x, y| ((x * 7 + y * 13) % 29) as f32);
            for item in 0..3 {
                s.push(&p, &p, 8, item).unwrap();
            }
            let (held, bound) = (s.allocated_bytes(), working_bytes(w, h));
            assert!(held <= bound, "{w}x{h}: {held} held, {bound} accounted");
            assert!(held > bound / 2, "{w}x{h}: {held} held, {bound} accounted");
        }
    }
}
