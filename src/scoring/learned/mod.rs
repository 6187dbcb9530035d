//! Learned similarity: a TorchScript model as a metric. GStreamer-free.
//!
//! Every model sees the same input: RGB float32 in [0, 1], NCHW, on the engine's device.
//! A model that wants other scaling or normalisation carries it in its own wrapper.
//!
//! - [`ModelKind::Pair`]: `forward(reference, distorted)` returns a tensor whose first
//!   dimension is the batch; a pair's score is the mean over the other dimensions (LPIPS
//!   and DISTS are shaped so).
//! - [`ModelKind::Embedding`]: `forward(image)` returns `[batch, features]`; a pair's
//!   score is the cosine similarity of its two embeddings.
//!
//! Frames are resized on the device to fit a box (aspect kept, never upscaled) with
//! antialiased bilinear interpolation, PyTorch's `interpolate(..., antialias=True)`.
//!
//! The model's working memory is measured at load and on every batch ([`memory`]), and
//! batches (and, when one pair does not fit, the tier) are planned against a budget.

pub mod memory;

use std::path::Path;
use std::time::Duration;

use tch::{Kind, Tensor};

use super::torch::{check_device, tch_device};
use super::{Device, Error, FaultInjection};
use crate::memory::tiers::fit;
use memory::{Gauge, SOURCE_BYTES_PER_PIXEL, WorkingMemory, measure_repeated};

/// How a model compares two frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelKind {
    /// `forward(reference, distorted)`: a distance per pair (LPIPS, DISTS).
    #[default]
    Pair,
    /// `forward(image)`: an embedding per frame, compared by cosine similarity (CLIP).
    Embedding,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Pair => "pair",
            ModelKind::Embedding => "embedding",
        }
    }
}

/// A packed 8-bit RGB frame (three bytes a pixel, rows `stride` bytes apart).
#[derive(Clone, Copy, Debug)]
pub struct RgbFrame<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// A pair's model score and the size the model saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelScore {
    pub value: f64,
    pub width: u32,
    pub height: u32,
}

/// A step down from the tier or batch asked for, while scoring within memory.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// An allocation failure; the largest batch and the box (tier index) tried next.
    Recovered {
        error: String,
        batch: usize,
        tier: usize,
    },
    /// One pair at box `from` would need `needed` bytes, over the `budget`: box `tier` is
    /// taken instead, before trying.
    Planned {
        from: usize,
        tier: usize,
        needed: u64,
        budget: u64,
    },
}

/// The side of the square frames the model is checked with at load.
const PROBE_SIDE: i64 = 32;
/// The side of the frames its working memory is measured with at load: two pairs of them
/// are [`memory::MIN_PIXELS`] input pixels.
const MEASURE_SIDE: i64 = 128;

/// A loaded TorchScript model on one device.
pub struct LearnedModel {
    module: tch::CModule,
    kind: ModelKind,
    device: tch::Device,
    gauge: Gauge,
    memory: WorkingMemory,
    name: String,
    faults: FaultInjection,
}

impl LearnedModel {
    /// Loads `path` on `device` and checks it on a probe batch of two frames; the error is
    /// a sentence that names the file.
    pub fn load(path: &Path, kind: ModelKind, device: Device) -> Result<Self, Error> {
        check_device(device)?;
        let shown = path.display();
        if !path.is_file() {
            return Err(Error::Backend(format!("model file {shown} does not exist")));
        }
        let tdev = tch_device(device);
        let mut module = tch::CModule::load_on_device(path, tdev).map_err(|e| {
            Error::Backend(format!(
                "{shown} is not a TorchScript model (save one with torch.jit.save): {}",
                first_line(&e.to_string())
            ))
        })?;
        module.set_eval();
        let name = path
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        let mut model = LearnedModel {
            module,
            kind,
            device: tdev,
            gauge: Gauge::for_device(device),
            memory: WorkingMemory::default(),
            name,
            faults: FaultInjection::default(),
        };
        // A small batch checks the model (and sets up the device's kernels, whose own
        // memory is not the model's); a larger one, run a few times for the CPU gauge's
        // samples, measures its working memory.
        let fails = |side: i64, e: Error| {
            Error::Backend(format!(
                "{shown} fails on a probe batch of two {side}x{side} RGB frames as a {} \
                 model: {e}",
                kind.name()
            ))
        };
        let probe = |side: i64| -> Result<(), Error> {
            let x = Tensor::f_rand([2, 3, side, side], (Kind::Float, tdev))?;
            let y = Tensor::f_rand([2, 3, side, side], (Kind::Float, tdev))?;
            tch::no_grad(|| model.forward(&x, &y)).map(drop)
        };
        probe(PROBE_SIDE).map_err(|e| fails(PROBE_SIDE, e))?;
        let (runs, span) = match device {
            Device::Cpu => (3, Duration::from_millis(20)),
            Device::Cuda(_) => (1, Duration::ZERO),
        };
        let seen = measure_repeated(model.gauge, runs, span, || probe(MEASURE_SIDE))
            .map_err(|e| fails(MEASURE_SIDE, e))?;
        if let Some(bytes) = seen {
            model
                .memory
                .observe(4 * (MEASURE_SIDE * MEASURE_SIDE) as u64, bytes);
        }
        Ok(model)
    }

    /// What was learned of the model's working memory so far.
    pub fn working_memory(&self) -> WorkingMemory {
        self.memory
    }

    /// Plans with `memory` instead of what was learned (tests, and callers that know).
    pub fn with_working_memory(mut self, memory: WorkingMemory) -> Self {
        self.memory = memory;
        self
    }

    /// Takes its injected allocation failures from `faults`.
    pub fn with_faults(mut self, faults: FaultInjection) -> Self {
        self.faults = faults;
        self
    }

    /// The file's stem, as messages name the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Scores `pairs` as one batch, each frame fitted into `fit_box` (none: as it is). A
    /// pair's frames are the same size.
    pub fn score(
        &self,
        pairs: &[(RgbFrame<'_>, RgbFrame<'_>)],
        fit_box: Option<(u32, u32)>,
    ) -> Result<Vec<ModelScore>, Error> {
        let Some((first, _)) = pairs.first() else {
            return Ok(Vec::new());
        };
        let (w, h) = (first.width, first.height);
        if pairs
            .iter()
            .any(|(r, d)| (r.width, r.height, d.width, d.height) != (w, h, w, h))
        {
            return Err(Error::Mismatch(
                "a model batch needs frames of one size".into(),
            ));
        }
        let (ow, oh) = fitted(first, fit_box);
        if self.faults.take() {
            return Err(Error::Backend(
                "injected allocation failure: out of memory".into(),
            ));
        }
        tch::no_grad(|| {
            let reference = self.batch(pairs.iter().map(|p| &p.0), (ow, oh))?;
            let distorted = self.batch(pairs.iter().map(|p| &p.1), (ow, oh))?;
            let scores = self.forward(&reference, &distorted)?;
            let values = Vec::<f64>::try_from(scores.f_to_kind(Kind::Double)?)?;
            Ok(values
                .into_iter()
                .map(|value| ModelScore {
                    value,
                    width: ow,
                    height: oh,
                })
                .collect())
        })
    }

    /// Scores `pairs` in order within device memory: in batches of at most `batch`, each
    /// frame fitted into `boxes[start]` (none: as it is), planned against `budget` bytes
    /// (0: unlimited) with the learned working memory. When not even one pair fits a box,
    /// the next box in `boxes` (a lower tier) is taken before trying. On an allocation
    /// failure the batch is halved, then at one pair a batch the next box is taken, and the
    /// same pairs are tried again. `on_step` hears of each step down. Every pair is scored
    /// once, with the index of the box it was scored in; an error comes only when the last
    /// box fails at one pair a batch, or for anything but memory.
    pub fn score_within_memory(
        &mut self,
        pairs: &[(RgbFrame<'_>, RgbFrame<'_>)],
        boxes: &[Option<(u32, u32)>],
        start: usize,
        batch: usize,
        budget: u64,
        mut on_step: impl FnMut(&Step),
    ) -> Result<Vec<(ModelScore, usize)>, Error> {
        let last = boxes.len().saturating_sub(1);
        let (mut tier, mut cap) = (start.min(last), batch.max(1));
        let mut out = Vec::with_capacity(pairs.len());
        while let Some((first, _)) = pairs.get(out.len()) {
            let fit_box = boxes.get(tier).copied().flatten();
            let (w, h) = fitted(first, fit_box);
            let pair_pixels = 2 * w as u64 * h as u64;
            // Frames fitted into a box are uploaded whole, one at a time.
            let source = if (w as usize, h as usize) == (first.width, first.height) {
                0
            } else {
                (first.width * first.height) as u64 * SOURCE_BYTES_PER_PIXEL
            };
            let planned = match self.memory.batch(pair_pixels, source, cap, budget) {
                Some(n) => n,
                None if tier < last => {
                    on_step(&Step::Planned {
                        from: tier,
                        tier: tier + 1,
                        needed: self.memory.bytes(pair_pixels).unwrap_or(0) + source,
                        budget,
                    });
                    tier += 1;
                    continue;
                }
                // The lowest tier may still fit: the estimate is the largest ever seen.
                None => 1,
            };
            let chunk = &pairs[out.len()..pairs.len().min(out.len() + planned)];
            let pixels = pair_pixels * chunk.len() as u64;
            let (scored, seen) = self.gauge.measure(|| self.score(chunk, fit_box));
            match scored {
                Ok(scores) => {
                    if let Some(bytes) = seen {
                        self.memory.observe(pixels, bytes.saturating_sub(source));
                    }
                    out.extend(scores.into_iter().map(|s| (s, tier)));
                }
                Err(e) if e.is_out_of_memory() => {
                    self.memory.failed(pixels, budget);
                    if chunk.len() > 1 {
                        cap = chunk.len() / 2;
                    } else if tier < last {
                        tier += 1;
                    } else {
                        return Err(e);
                    }
                    on_step(&Step::Recovered {
                        error: e.to_string(),
                        batch: cap,
                        tier,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Frames as one NCHW float batch on the device, resized to `size`. Each is uploaded,
    /// made float and fitted on its own, so that only one full-size frame is alive at once.
    fn batch<'a>(
        &self,
        frames: impl Iterator<Item = &'a RgbFrame<'a>>,
        (ow, oh): (u32, u32),
    ) -> Result<Tensor, Error> {
        let mut fitted = Vec::new();
        for f in frames {
            let row = f.width * 3;
            // Rows padded to a stride are packed first; packed frames are copied once.
            let packed: std::borrow::Cow<[u8]> = if f.stride == row {
                std::borrow::Cow::Borrowed(&f.data[..row * f.height])
            } else {
                (0..f.height)
                    .flat_map(|y| &f.data[y * f.stride..y * f.stride + row])
                    .copied()
                    .collect()
            };
            let x = Tensor::f_from_slice(&packed)?
                .f_view([f.height as i64, f.width as i64, 3])?
                .f_to_device(self.device)?
                .f_permute([2, 0, 1])?
                .f_unsqueeze(0)?
                .f_to_kind(Kind::Float)?
                .f_div_scalar(255.0)?;
            fitted.push(if (ow as usize, oh as usize) == (f.width, f.height) {
                x
            } else {
                x.f_internal_upsample_bilinear2d_aa([oh as i64, ow as i64], false, None, None)?
            });
        }
        Ok(Tensor::f_cat(&fitted, 0)?)
    }

    /// One score per pair of the batch, as a 1-D tensor.
    fn forward(&self, reference: &Tensor, distorted: &Tensor) -> Result<Tensor, Error> {
        let batch = reference.size()[0];
        match self.kind {
            ModelKind::Pair => {
                let out = self.module.forward_ts(&[reference, distorted])?;
                if out.dim() == 0 || out.size()[0] != batch {
                    return Err(Error::Backend(format!(
                        "a pair model must return a tensor with the batch ({batch}) as its \
                         first dimension, and this one returned shape {:?}",
                        out.size()
                    )));
                }
                Ok(out
                    .f_to_kind(Kind::Double)?
                    .f_reshape([batch, -1])?
                    .f_mean_dim(1, false, Kind::Double)?)
            }
            ModelKind::Embedding => {
                let both = Tensor::f_cat(&[reference, distorted], 0)?;
                let out = self.module.forward_ts(&[both])?;
                if out.dim() != 2 || out.size()[0] != 2 * batch {
                    return Err(Error::Backend(format!(
                        "an embedding model must return [batch, features] ([{}, N] here), and \
                         this one returned shape {:?}",
                        2 * batch,
                        out.size()
                    )));
                }
                let out = out.f_to_kind(Kind::Double)?;
                let (r, d) = (out.f_narrow(0, 0, batch)?, out.f_narrow(0, batch, batch)?);
                Ok(Tensor::f_cosine_similarity(&r, &d, 1, 1e-8)?)
            }
        }
    }
}

/// The size `frame` is scored at in `fit_box` (none: its own).
fn fitted(frame: &RgbFrame<'_>, fit_box: Option<(u32, u32)>) -> (u32, u32) {
    let (w, h) = (frame.width as u32, frame.height as u32);
    match fit_box {
        Some((bw, bh)) => fit(w, h, (1, 1), bw, bh, (1, 1)),
        None => (w, h),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/model")
            .join(name)
    }

    fn expected() -> serde_json::Value {
        let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The fixture's frames, reference and distorted, as packed RGB.
    fn frames() -> Vec<(Vec<u8>, Vec<u8>)> {
        let e = expected();
        let (w, h) = (e["width"].as_u64().unwrap(), e["height"].as_u64().unwrap());
        let size = (w * h * 3) as usize;
        let data = std::fs::read(fixture("frames.rgb")).unwrap();
        data.chunks(2 * size)
            .map(|c| (c[..size].to_vec(), c[size..].to_vec()))
            .collect()
    }

    fn frame(data: &[u8]) -> RgbFrame<'_> {
        RgbFrame {
            data,
            width: 96,
            height: 64,
            stride: 96 * 3,
        }
    }

    fn check(kind: ModelKind, file: &str, key: &str, fit_box: Option<(u32, u32)>) {
        let model = LearnedModel::load(&fixture(file), kind, Device::Cpu).unwrap();
        let frames = frames();
        let pairs: Vec<_> = frames.iter().map(|(r, d)| (frame(r), frame(d))).collect();
        let want = &expected()[kind.name()][key];
        // As one batch, and one pair at a time.
        let batched = model.score(&pairs, fit_box).unwrap();
        for (i, pair) in pairs.iter().enumerate() {
            let single = model.score(std::slice::from_ref(pair), fit_box).unwrap()[0];
            let want = want[i].as_f64().unwrap();
            for got in [batched[i], single] {
                assert!(
                    (got.value - want).abs() < 1e-4,
                    "{file} {key} {i}: {got:?} vs {want}"
                );
            }
        }
        assert_eq!(
            (batched[0].width, batched[0].height),
            fit_box.map_or((96, 64), |_| (48, 32))
        );
    }

    #[test]
    fn pair_models_reproduce_pytorch() {
        check(ModelKind::Pair, "pair.pt", "native", None);
        check(ModelKind::Pair, "pair.pt", "box48", Some((48, 48)));
    }

    #[test]
    fn embedding_models_reproduce_pytorch() {
        check(ModelKind::Embedding, "embedding.pt", "native", None);
        check(
            ModelKind::Embedding,
            "embedding.pt",
            "box48",
            Some((48, 48)),
        );
    }

    #[test]
    fn never_upscaled() {
        let model = LearnedModel::load(&fixture("pair.pt"), ModelKind::Pair, Device::Cpu).unwrap();
        let frames = frames();
        let (r, d) = &frames[0];
        let s = model
            .score(&[(frame(r), frame(d))], Some((1024, 1024)))
            .unwrap();
        assert_eq!((s[0].width, s[0].height), (96, 64));
    }

    fn pairs_of(frames: &[(Vec<u8>, Vec<u8>)]) -> Vec<(RgbFrame<'_>, RgbFrame<'_>)> {
        frames.iter().map(|(r, d)| (frame(r), frame(d))).collect()
    }

    fn recovered(step: &Step) -> Option<(usize, usize)> {
        match step {
            Step::Recovered { batch, tier, .. } => Some((*batch, *tier)),
            Step::Planned { .. } => None,
        }
    }

    #[test]
    fn allocation_failures_halve_the_batch_then_step_down_a_tier() {
        let faults = FaultInjection::default();
        let mut model = LearnedModel::load(&fixture("pair.pt"), ModelKind::Pair, Device::Cpu)
            .unwrap()
            .with_faults(faults.clone());
        let frames = frames();
        let pairs = pairs_of(&frames);
        let boxes = [None, Some((48, 48))];
        // Batch 3 fails, 1 fails (3 / 2 = 1), then the 48x48 tier scores every pair.
        faults.inject(2);
        let mut steps = Vec::new();
        let scored = model
            .score_within_memory(&pairs, &boxes, 0, 3, 0, |s| steps.push(recovered(s)))
            .unwrap();
        assert_eq!(steps, [Some((1, 0)), Some((1, 1))]);
        let want = &expected()["pair"]["box48"];
        assert_eq!(scored.len(), 3);
        for (i, (s, tier)) in scored.iter().enumerate() {
            assert_eq!((*tier, s.width, s.height), (1, 48, 32));
            assert!((s.value - want[i].as_f64().unwrap()).abs() < 1e-4);
        }
        // A failure at the lowest tier and one pair a batch is an error.
        faults.inject(1);
        let e = model.score_within_memory(&pairs[..1], &boxes, 1, 1, 0, |_| {});
        assert!(e.is_err_and(|e| e.is_out_of_memory()));
        // One failure at batch 2: the first pair alone, then the rest one at a time,
        // each scored once, in order, at the first tier.
        faults.inject(1);
        let scored = model
            .score_within_memory(&pairs, &boxes, 0, 2, 0, |_| {})
            .unwrap();
        let want = &expected()["pair"]["native"];
        assert_eq!(scored.len(), 3);
        for (i, (s, tier)) in scored.iter().enumerate() {
            assert_eq!(*tier, 0);
            assert!((s.value - want[i].as_f64().unwrap()).abs() < 1e-4);
        }
    }

    #[test]
    fn load_measures_the_working_memory_on_a_probe() {
        // hungry.pt holds 200 copies of each frame, its difference and its square: about
        // 3.6 KB per input pixel (both frames of a pair count).
        // Other tests' allocations at the same time can only add to what the gauge sees.
        let model =
            LearnedModel::load(&fixture("hungry.pt"), ModelKind::Pair, Device::Cpu).unwrap();
        let p = model.working_memory().per_pixel().expect("measured");
        assert!((3000.0..7200.0).contains(&p), "{p} bytes a pixel");
    }

    #[test]
    fn batches_and_tiers_are_planned_within_the_budget() {
        let per_pixel = 1000.0;
        let mut model = LearnedModel::load(&fixture("pair.pt"), ModelKind::Pair, Device::Cpu)
            .unwrap()
            .with_working_memory(WorkingMemory::known(per_pixel));
        let frames = frames();
        let pairs = pairs_of(&frames);
        let boxes = [None, Some((48, 48)), Some((24, 24))];
        let native = 2 * 96 * 64 * per_pixel as u64;
        // A fitted batch also holds one native frame, uploaded and in float.
        let box48 = 2 * 48 * 32 * per_pixel as u64 + 96 * 64 * SOURCE_BYTES_PER_PIXEL;
        // Two native pairs fit: every pair at the first tier, no step.
        let mut steps = Vec::new();
        let scored = model
            .score_within_memory(&pairs, &boxes, 0, 8, 2 * native, |s| steps.push(s.clone()))
            .unwrap();
        assert!(steps.is_empty(), "{steps:?}");
        assert!(scored.iter().all(|(_, tier)| *tier == 0));
        // Not one native pair fits, one 48x32 pair does: planned down to the 48 box before
        // trying, with no allocation failure.
        let scored = model
            .score_within_memory(&pairs, &boxes, 0, 8, box48, |s| steps.push(s.clone()))
            .unwrap();
        assert_eq!(
            steps,
            [Step::Planned {
                from: 0,
                tier: 1,
                needed: native,
                budget: box48
            }]
        );
        let want = &expected()["pair"]["box48"];
        for (i, (s, tier)) in scored.iter().enumerate() {
            assert_eq!((*tier, s.width, s.height), (1, 48, 32));
            assert!((s.value - want[i].as_f64().unwrap()).abs() < 1e-4);
        }
        // Nothing fits: the lowest tier is tried all the same.
        steps.clear();
        let scored = model
            .score_within_memory(&pairs, &boxes, 0, 8, 1, |s| steps.push(s.clone()))
            .unwrap();
        assert_eq!(steps.len(), 2);
        assert!(scored.iter().all(|(_, tier)| *tier == 2));
    }

    #[test]
    fn a_failure_teaches_the_plan() {
        let faults = FaultInjection::default();
        let mut model = LearnedModel::load(&fixture("pair.pt"), ModelKind::Pair, Device::Cpu)
            .unwrap()
            .with_working_memory(WorkingMemory::known(12.0))
            .with_faults(faults.clone());
        let frames = frames();
        let pairs = pairs_of(&frames);
        let boxes = [None];
        let budget = 3 * 2 * 96 * 64 * 12;
        // Three pairs fit by the estimate, but the batch fails: the estimate rises so that
        // the next call plans fewer pairs from the start.
        faults.inject(1);
        let mut steps = 0;
        model
            .score_within_memory(&pairs, &boxes, 0, 3, budget, |_| steps += 1)
            .unwrap();
        assert_eq!(steps, 1);
        let planned = model
            .working_memory()
            .batch(2 * 96 * 64, 0, 3, budget)
            .unwrap();
        assert!(planned < 3, "{planned}");
    }

    #[test]
    fn bad_models_are_sentences() {
        let err = |path: &Path, kind| {
            LearnedModel::load(path, kind, Device::Cpu)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let missing = fixture("no_such_model.pt");
        assert!(err(&missing, ModelKind::Pair).contains("does not exist"));
        let not_torchscript = fixture("expected.json");
        assert!(err(&not_torchscript, ModelKind::Pair).contains("is not a TorchScript model"));
        let m = err(&fixture("wrong_shape.pt"), ModelKind::Pair);
        assert!(m.contains("batch (2) as its first dimension"), "{m}");
        // A pair model given one input fails its forward.
        let m = err(&fixture("pair.pt"), ModelKind::Embedding);
        assert!(m.contains("fails on a probe batch"), "{m}");
        // An embedding model takes one input, not two.
        assert!(
            LearnedModel::load(&fixture("embedding.pt"), ModelKind::Pair, Device::Cpu).is_err()
        );
    }
}
