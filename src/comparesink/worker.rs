//! The scoring thread: maps paired frames, brings them to the reference's format at the
//! compare resolution, scores batches within the memory budget, and posts the results.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::frames::{Converters, image_view, plane_names};
use super::heatmap::Heatmap;
use super::memory::MemoryPolicy;
use super::pacing::{Pacing, Verdict};
use super::report::{Summary, Threshold};
use super::session::{Job, Pair, Session};
use super::stats::StatsFile;
use super::{CAT, CompareSink};
use crate::memory::tiers::Tier;
use crate::messages::{ModelSeen, Similarity, SimilarityAlert};
use crate::scoring::native::Simd;
use crate::scoring::rows::ImagePlane;
use crate::scoring::vmaf::stream::{Scored as VmafScored, working_bytes as vmaf_working_bytes};
use crate::scoring::vmaf::{Model, VmafStream};
use crate::scoring::{ChannelMode, Engine, Metric, Options, Scored, Scores, planes_for};
use crate::tier_settings::fit_in_tier;

#[cfg(feature = "torch")]
type LearnedModel = crate::scoring::learned::LearnedModel;
/// Without libtorch there is no model (the element refuses to start with one).
#[cfg(not(feature = "torch"))]
type LearnedModel = ();

/// The alert thresholds (0 = off), changeable while playing.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    pub ssim: Threshold,
    pub psnr: Threshold,
}

/// How long one pad may stay silent while the other has data before a warning says so.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// Everything the scoring thread owns.
pub struct Scorer {
    pub engine: Engine,
    pub options: Options,
    pub thresholds: Thresholds,
    pub pacing: Pacing,
    pub stats: Option<StatsFile>,
    pub batch_size: usize,
    pub memory: MemoryPolicy,
    /// The worst pair's map, for `heatmap-location`.
    pub heatmap: Option<Heatmap>,
    device: String,
    summary: Summary,
    next_frame: u64,
    converters: Converters,
    warned_small: bool,
    warned_late: bool,
    /// With metrics=vmaf: the model, its state over the stream, and the pair whose report
    /// waits for its VMAF (the next pair's motion).
    vmaf: Option<VmafStream<Finished>>,
    vmaf_features: bool,
    /// The `model` property's TorchScript model, and the allocation failures it recovered
    /// from.
    model: Option<LearnedModel>,
    model_recoveries: u64,
}

/// A scored pair's report, and what the summary, the stats file and the alerts need of
/// it: ready to publish, but for its VMAF when that is on.
pub struct Finished {
    report: Similarity,
    scores: Scores,
    planes: Option<&'static [&'static str]>,
    max_value: f64,
    alerts: Vec<(Metric, f64, f64)>,
}

impl Scorer {
    pub fn new(
        engine: Engine,
        options: Options,
        thresholds: Thresholds,
        pacing: Pacing,
        stats: Option<StatsFile>,
        batch_size: usize,
        memory: MemoryPolicy,
    ) -> Self {
        Scorer {
            pacing,
            device: engine.device().to_string(),
            summary: Summary::new(options.metrics),
            engine,
            options,
            thresholds,
            stats,
            batch_size: batch_size.max(1),
            memory,
            heatmap: None,
            next_frame: 0,
            converters: Converters::default(),
            warned_small: false,
            warned_late: false,
            vmaf: None,
            vmaf_features: false,
            model: None,
            model_recoveries: 0,
        }
    }

    /// Scores VMAF with `model` (none: VMAF is off); `features` adds its features to the
    /// messages.
    pub fn set_vmaf(&mut self, model: Option<Model>, features: bool) {
        let device = self.engine.device();
        let on_libtorch = self.engine.uses_libtorch();
        self.vmaf = model.map(|m| {
            let stream = VmafStream::new(m, Simd::active());
            // VMAF's features where the other metrics are scored.
            #[cfg(feature = "torch")]
            let stream = if on_libtorch {
                stream.on_libtorch(device)
            } else {
                stream
            };
            #[cfg(not(feature = "torch"))]
            let _ = (on_libtorch, device);
            stream
        });
        self.vmaf_features = features;
    }

    /// Scores pairs with `model` too (none: no model).
    pub fn set_model(&mut self, model: Option<LearnedModel>) {
        #[cfg(feature = "torch")]
        {
            self.summary.model_name = model.as_ref().map(|m| m.name().to_string());
        }
        self.model = model;
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    fn oom_recoveries(&self) -> u64 {
        self.engine.recoveries() + self.model_recoveries
    }
}

/// Starts the scoring thread.
pub fn spawn(
    element: &CompareSink,
    session: Arc<Session>,
    scorer: Scorer,
) -> std::io::Result<JoinHandle<()>> {
    let weak = element.downgrade();
    std::thread::Builder::new()
        .name("comparesink-score".into())
        .spawn(move || run(weak, session, scorer))
}

fn run(element: glib::WeakRef<CompareSink>, session: Arc<Session>, mut scorer: Scorer) {
    // Wakes at least once a second to look for stalls.
    while let Some(jobs) = session.next_jobs(scorer.batch_size, Duration::from_secs(1)) {
        let Some(element) = element.upgrade() else {
            return;
        };
        report_stall(&element, &session);
        let mut pairs = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Pair(pair) => pairs.push(*pair),
                Job::Restart => finish_vmaf(&element, &mut scorer),
                Job::Finish => {
                    finish_vmaf(&element, &mut scorer);
                    let summary = scorer.summary.summary(
                        session.unpaired(),
                        &scorer.device,
                        scorer.oom_recoveries(),
                    );
                    if let Some(stats) = scorer.stats.as_mut()
                        && let Err(e) = stats.write_summary(&summary.fields())
                    {
                        gst::element_imp_warning!(
                            element.imp(),
                            gst::ResourceError::Write,
                            ("Could not write the summary to the stats file: {e}")
                        );
                    }
                    write_heatmap(&element, &mut scorer);
                    let s = gst::Structure::from(&summary);
                    gst::info!(CAT, obj = element, "summary: {s}");
                    let _ = element
                        .post_message(gst::message::Element::builder(s).src(&element).build());
                    session.mark_finished();
                }
            }
        }
        if pairs.is_empty() {
            continue;
        }
        let pairs = pace(&element, &mut scorer, pairs);
        let Some(&(first, _)) = pairs.first() else {
            continue;
        };
        if let Err(e) = score_pairs(&element, &mut scorer, &pairs) {
            gst::element_imp_error!(
                element.imp(),
                gst::StreamError::Failed,
                ("Could not score frame {first}: {e}")
            );
            session.fail();
            return;
        }
    }
}

/// Writes the heat-map file, if one was asked for.
fn write_heatmap(element: &CompareSink, scorer: &mut Scorer) {
    let Some(heatmap) = scorer.heatmap.as_mut() else {
        return;
    };
    match heatmap.finish() {
        Ok(Some(frame)) => gst::info!(CAT, obj = element, "heat-map of frame {frame} written"),
        Ok(None) => gst::info!(CAT, obj = element, "no pair was scored: no heat-map"),
        Err(e) => gst::element_imp_warning!(
            element.imp(),
            gst::ResourceError::Write,
            ("Could not write the heat-map: {e}")
        ),
    }
}

/// Warns once per stall when one pad has had no frame for [`STALL_AFTER`] while the other
/// has, as long as the element is playing or prerolling (a paused pipeline is quiet).
fn report_stall(element: &CompareSink, session: &Session) {
    let busy = element.current_state() == gst::State::Playing
        || element.pending_state() != gst::State::VoidPending;
    if !busy {
        return;
    }
    let Some(silent) = session.new_stall(STALL_AFTER) else {
        return;
    };
    let (silent, other) = (silent.name(), silent.other().name());
    gst::element_imp_warning!(
        element.imp(),
        gst::StreamError::Failed,
        (
            "No frame has reached the {silent} pad for {} s, while the {other} pad has had frames: comparesink waits for pairs",
            STALL_AFTER.as_secs()
        ),
        [
            "Usual causes: a tee branch without a queue (put a queue at the start of each tee branch), an unlinked {silent} pad, or a {silent} source that stalled"
        ]
    );
}

/// Numbers the pairs in stream order and keeps those to score: one in `subsample`, and in
/// a live pipeline none that came more than `max-lateness` after their running time.
fn pace(element: &CompareSink, scorer: &mut Scorer, pairs: Vec<Pair>) -> Vec<(u64, Pair)> {
    let now = element.current_running_time().map(|t| t.nseconds());
    let mut kept = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let frame = scorer.next_frame;
        scorer.next_frame += 1;
        match scorer.pacing.judge(frame, now, pair.reference.running_time) {
            Verdict::Score => kept.push((frame, pair)),
            Verdict::Subsampled => scorer.summary.subsampled += 1,
            Verdict::Late(late) => {
                scorer.summary.skipped += 1;
                gst::debug!(
                    CAT,
                    obj = element,
                    "skipping frame {frame}, {:.3} s late",
                    late as f64 / 1e9
                );
                if !scorer.warned_late {
                    scorer.warned_late = true;
                    let limit = scorer.pacing.limit().unwrap_or(0) as f64 / 1e9;
                    gst::element_imp_warning!(
                        element.imp(),
                        gst::CoreError::Clock,
                        (
                            "Scoring is {:.2} s behind the live stream: pairs more than {limit:.2} s late are skipped and counted as 'skipped'",
                            late as f64 / 1e9
                        ),
                        [
                            "Score fewer metrics, compare at a lower quality tier, set subsample to score one pair in N, or raise max-lateness (0 never skips)"
                        ]
                    );
                }
            }
        }
    }
    kept
}

fn score_pairs(
    element: &CompareSink,
    scorer: &mut Scorer,
    pairs: &[(u64, Pair)],
) -> Result<(), String> {
    // The compare resolution: the reference's, or its fit inside the current tier's box.
    let tier = scorer.memory.tier().cloned();
    let mut prepared = Vec::with_capacity(pairs.len());
    for (
        _,
        Pair {
            reference: r,
            distorted: d,
        },
    ) in pairs
    {
        if let Some(text) = scorer.converters.report(&d.info, &r.info) {
            gst::element_imp_warning!(element.imp(), gst::StreamError::Format, ("{text}"));
        }
        let (w, h) = match &tier {
            Some(t) => fit_in_tier(&r.info, t),
            None => (r.info.width(), r.info.height()),
        };
        let target = (&r.info, w, h);
        let reference = scorer.converters.prepare(0, &r.buffer, &r.info, target)?;
        let distorted = scorer.converters.prepare(1, &d.buffer, &d.info, target)?;
        prepared.push((reference, distorted));
    }
    let views = prepared
        .iter()
        .map(|(r, d)| Ok((image_view(r)?, image_view(d)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let budget = scorer.memory.budget(scorer.engine.device().is_cuda());
    let scored: Vec<Scored> = scorer
        .engine
        .score(&views, &scorer.options, budget, |r| {
            gst::warning!(
                CAT,
                obj = element,
                "recovered from an allocation failure ({}): retrying with a batch of {}{}",
                r.error,
                r.retry.batch,
                r.retry
                    .band_rows
                    .map(|rows| format!(", bands of {rows} rows"))
                    .unwrap_or_default()
            );
        })
        .map_err(|e| e.to_string())?;

    let model_scores = score_model(element, scorer, pairs, tier.as_ref())?;

    let metrics = scorer.options.metrics;
    let tier_name = tier.as_ref().map_or("full", |t| t.name.as_str());
    for ((((frame, pair), (view, dist_view)), mut s), model) in
        pairs.iter().zip(&views).zip(scored).zip(model_scores)
    {
        s.scores.model = model.as_ref().map(|(v, _)| *v);
        if let Some(heatmap) = scorer.heatmap.as_mut() {
            heatmap.offer(*frame, pair.reference.pts, &mut s.scores);
        }
        let (usage, s) = (s.usage, s.scores);
        let (r, d) = (&pair.reference, &pair.distorted);
        let (w, h) = (view.components[0].width, view.components[0].height);
        // VMAF's buffers, kept on the CPU beside the other metrics' working memory.
        let vmaf_bytes = scorer.vmaf.as_ref().map_or(0, |_| vmaf_working_bytes(w, h));
        let on_cpu = !scorer.engine.device().is_cuda();
        if on_cpu && vmaf_bytes > 0 && budget > 0 && usage.bytes + vmaf_bytes > budget {
            return Err(format!(
                "VMAF of {w}x{h} frames needs {vmaf_bytes} bytes of working memory besides the \
                 {} the other metrics use, and the memory budget is {budget} bytes: raise \
                 memory-budget, or compare at a lower quality tier",
                usage.bytes
            ));
        }
        if (metrics.ssim && s.ssim.is_none() || metrics.ms_ssim && s.ms_ssim.is_none())
            && !scorer.warned_small
        {
            scorer.warned_small = true;
            gst::element_imp_warning!(
                element.imp(),
                gst::StreamError::Format,
                (
                    "Frames of {}x{} are smaller than the 11x11 SSIM window: only MSE and PSNR are reported",
                    view.components[0].width,
                    view.components[0].height
                )
            );
        }
        let alerts: Vec<(Metric, f64, f64)> = [
            (Metric::Ssim, s.ssim, scorer.thresholds.ssim.crossed(s.ssim)),
            (
                Metric::Psnr,
                metrics.psnr.then_some(s.psnr),
                scorer.thresholds.psnr.crossed(Some(s.psnr)),
            ),
        ]
        .into_iter()
        .filter_map(|(metric, value, threshold)| Some((metric, value?, threshold?)))
        .collect();
        let planes = (scorer.options.channels == ChannelMode::All).then(|| plane_names(view.kind));
        let time = |ns: Option<u64>| ns.map(gst::ClockTime::from_nseconds);
        let mut report = Similarity {
            frame: *frame,
            pts: time(r.pts),
            running_time: time(r.running_time),
            distorted_pts: time(d.pts),
            distorted_running_time: time(d.running_time),
            values: Default::default(),
            ms_ssim_scales: None,
            planes: Vec::new(),
            format: r.info.format().to_str().to_string(),
            width: view.components[0].width as u32,
            height: view.components[0].height as u32,
            channels: scorer.options.channels.as_str().into(),
            device: scorer.device.clone(),
            alert: !alerts.is_empty(),
            tier: tier_name.into(),
            batch: usage.batch as u32,
            tiles: usage.tiles,
            memory_used: usage.bytes + vmaf_bytes,
            memory_budget: budget,
            vmaf_features: None,
            model_seen: model.map(|(_, seen)| seen),
        };
        report.set_scores(&metrics.enabled(), &s, planes);
        let finished = Finished {
            report,
            scores: s,
            planes,
            max_value: view.max_value(),
            alerts,
        };
        // With VMAF, the pair waits for the next one's motion, and the one before it goes.
        let ready = match scorer.vmaf.as_mut() {
            None => Some((finished, None)),
            Some(stream) => {
                let luma = planes_for(view.kind, ChannelMode::Luma)[0];
                let (rl, dl) = (
                    ImagePlane::new(view, luma),
                    ImagePlane::new(dist_view, luma),
                );
                stream
                    .push(&rl, &dl, view.depth, finished)
                    .map_err(|e| format!("VMAF: {e}"))?
                    .map(|(f, v)| (f, Some(v)))
            }
        };
        if let Some((finished, vmaf)) = ready {
            publish(element, scorer, finished, vmaf);
        }
    }
    Ok(())
}

/// The model's score of each pair and what it saw, when there is a model: both frames in
/// RGB at the reference's size, fitted on the device into the model's tier (stepping down
/// tiers and halving the batch on allocation failures).
#[cfg(feature = "torch")]
fn score_model(
    element: &CompareSink,
    scorer: &mut Scorer,
    pairs: &[(u64, Pair)],
    frame_tier: Option<&Tier>,
) -> Result<Vec<Option<(f64, ModelSeen)>>, String> {
    use crate::scoring::learned::{RgbFrame, Step};
    use gst_video::prelude::*;
    let Some(model) = scorer.model.as_mut() else {
        return Ok(pairs.iter().map(|_| None).collect());
    };
    // Full resolution, then the tiers from the highest: where allocation failures step.
    let ladder: Vec<(String, Option<(u32, u32)>)> = std::iter::once(("full".to_string(), None))
        .chain(
            scorer
                .memory
                .tiers()
                .iter()
                .map(|t| (t.name.clone(), Some((t.width, t.height)))),
        )
        .collect();
    let start = scorer
        .memory
        .model_tier(frame_tier)
        .and_then(|t| ladder.iter().position(|(name, _)| *name == t.name))
        .unwrap_or(0);
    let mut rgb = Vec::with_capacity(pairs.len());
    for (
        _,
        Pair {
            reference: r,
            distorted: d,
        },
    ) in pairs
    {
        // The reference's own size: the device fits both into the model's box.
        let (w, h) = (r.info.width(), r.info.height());
        let like = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
            .build()
            .map_err(|e| format!("cannot describe an RGB frame of {w}x{h}: {e}"))?;
        let target = (&like, w, h);
        let reference = scorer.converters.prepare(2, &r.buffer, &r.info, target)?;
        let distorted = scorer.converters.prepare(3, &d.buffer, &d.info, target)?;
        rgb.push((reference, distorted));
    }
    fn frame(p: &super::frames::Prepared) -> Result<RgbFrame<'_>, String> {
        let f = &p.frame;
        Ok(RgbFrame {
            data: f.plane_data(0).map_err(|e| e.to_string())?,
            width: f.width() as usize,
            height: f.height() as usize,
            stride: f.plane_stride()[0] as usize,
        })
    }
    let frames = rgb
        .iter()
        .map(|(r, d)| Ok((frame(r)?, frame(d)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let boxes: Vec<_> = ladder.iter().map(|(_, b)| *b).collect();
    let budget = scorer.memory.budget(scorer.engine.device().is_cuda());
    let mut recoveries = 0;
    let scored = model
        .score_within_memory(&frames, &boxes, start, scorer.batch_size, budget, |step| {
            match step {
                Step::Recovered { error, batch, tier } => {
                    recoveries += 1;
                    gst::warning!(
                        CAT,
                        obj = element,
                        "model: recovered from an allocation failure ({error}): retrying with up to {batch} pairs a batch at tier {}",
                        ladder[*tier].0
                    );
                }
                Step::Planned {
                    from,
                    tier,
                    needed,
                    budget,
                } => gst::info!(
                    CAT,
                    obj = element,
                    "model: one pair at tier {} would need about {needed} bytes, over the budget of {budget}: scoring at tier {}",
                    ladder[*from].0,
                    ladder[*tier].0
                ),
            }
        })
        .map_err(|e| format!("model {}: {e}", model.name()))?;
    scorer.model_recoveries += recoveries;
    Ok(scored
        .into_iter()
        .map(|(s, tier)| {
            let seen = ModelSeen {
                tier: ladder[tier].0.clone(),
                width: s.width,
                height: s.height,
            };
            Some((s.value, seen))
        })
        .collect())
}

#[cfg(not(feature = "torch"))]
fn score_model(
    _element: &CompareSink,
    _scorer: &mut Scorer,
    pairs: &[(u64, Pair)],
    _frame_tier: Option<&Tier>,
) -> Result<Vec<Option<(f64, ModelSeen)>>, String> {
    Ok(pairs.iter().map(|_| None).collect())
}

/// Publishes the pair waiting for its VMAF, scored with its own motion: at the end of
/// the stream, and before a flush restarts it.
fn finish_vmaf(element: &CompareSink, scorer: &mut Scorer) {
    if let Some((finished, vmaf)) = scorer.vmaf.as_mut().and_then(VmafStream::finish) {
        publish(element, scorer, finished, Some(vmaf));
    }
}

/// Counts a scored pair in the summary, writes its stats row, and posts its message and
/// its alerts; `vmaf` is its VMAF, when that is on.
fn publish(element: &CompareSink, scorer: &mut Scorer, mut f: Finished, vmaf: Option<VmafScored>) {
    let enabled = scorer.options.metrics.enabled();
    if let Some(v) = vmaf {
        f.scores.vmaf = Some(v.vmaf);
        f.report.values.set(Metric::Vmaf, Some(v.vmaf));
        f.report.vmaf_features = scorer.vmaf_features.then_some(v.features);
    }
    let report = f.report;
    scorer.summary.add(
        &f.scores,
        f.planes,
        f.max_value,
        report.alert,
        report.memory_used,
    );
    if let Some(stats) = scorer.stats.as_mut()
        && let Err(e) = stats.write_pair(&report.fields(&enabled))
    {
        scorer.stats = None;
        gst::element_imp_warning!(
            element.imp(),
            gst::ResourceError::Write,
            ("Could not write the stats file, no more rows will be written: {e}")
        );
    }
    let s = gst::Structure::from(&report);
    gst::log!(CAT, obj = element, "{s}");
    let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    for (metric, value, threshold) in f.alerts {
        let alert = SimilarityAlert {
            frame: report.frame,
            pts: report.pts,
            metric,
            value,
            threshold,
        };
        gst::debug!(
            CAT,
            obj = element,
            "alert: {} {value} below {threshold}",
            metric.name()
        );
        let s = gst::Structure::from(&alert);
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }
}
