//! The scoring thread: maps paired frames, brings them to the reference's format at the
//! compare resolution, scores batches within the memory budget, and posts the results.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use std::sync::atomic::Ordering;

use super::frames::{Converters, image_view, plane_names};
use super::memory::MemoryPolicy;
use super::pacing::{Pacing, Verdict};
use super::report::{
    PairReport, Summary, Threshold, alert_fields, present, similarity_fields, structure,
};
use super::session::{Job, Pair, Session};
use super::stats::StatsFile;
use super::{CAT, CompareBackend, CompareSink};
use crate::memory::all_devices;
use crate::scoring::budgeted::{BudgetedScorer, Scored};
use crate::scoring::torch::{
    TorchScorer, check_device, default_cuda_device, device_name, parse_device,
};
use crate::scoring::{ChannelMode, Options, native};
use crate::vramscale::fit_in_tier;

/// Where the scores are computed.
pub enum Backend {
    Native,
    Torch(Box<BudgetedScorer>),
}

/// The CUDA device with the most free memory (NVML), when there are several.
fn roomiest_cuda_device() -> Option<tch::Device> {
    let cuda = default_cuda_device()?;
    let readings = all_devices();
    let count = tch::Cuda::device_count().max(0) as usize;
    if count < 2 || readings.len() != count {
        return Some(cuda);
    }
    let best = (0..count).max_by_key(|&i| readings[i].free_bytes)?;
    Some(tch::Device::Cuda(best))
}

impl Backend {
    /// Resolves the `device` and `backend` properties; the error is a user-facing sentence.
    pub fn choose(device: &str, backend: CompareBackend) -> Result<Backend, String> {
        let torch = |d| {
            TorchScorer::new(d)
                .map(|t| Backend::Torch(Box::new(BudgetedScorer::new(t))))
                .map_err(|e| e.to_string())
        };
        if device == "auto" {
            return match (backend, roomiest_cuda_device()) {
                (CompareBackend::Native, _) => Ok(Backend::Native),
                (_, Some(cuda)) => torch(cuda),
                (CompareBackend::Libtorch, None) => torch(tch::Device::Cpu),
                (CompareBackend::Auto, None) => Ok(Backend::Native),
            };
        }
        let parsed = parse_device(device).ok_or_else(|| {
            format!("invalid device '{device}': expected auto, cpu, cuda or cuda:N")
        })?;
        match (parsed, backend) {
            (tch::Device::Cpu, CompareBackend::Libtorch) => torch(parsed),
            (tch::Device::Cpu, _) => Ok(Backend::Native),
            (_, CompareBackend::Native) => {
                check_device(parsed).map_err(|e| e.to_string())?;
                Err(format!(
                    "backend=native runs on the CPU only; use device=cpu, or backend=auto to score on {device}"
                ))
            }
            _ => torch(parsed),
        }
    }

    pub fn device_name(&self) -> String {
        match self {
            Backend::Native => "cpu".into(),
            Backend::Torch(t) => device_name(t.torch.device()),
        }
    }

    fn on_gpu(&self) -> bool {
        matches!(self, Backend::Torch(t) if t.torch.device().is_cuda())
    }
}

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
    pub backend: Backend,
    pub options: Options,
    pub thresholds: Thresholds,
    pub pacing: Pacing,
    pub stats: Option<StatsFile>,
    pub batch_size: usize,
    pub memory: MemoryPolicy,
    device: String,
    summary: Summary,
    next_frame: u64,
    converters: Converters,
    warned_small: bool,
    warned_late: bool,
}

impl Scorer {
    pub fn new(
        backend: Backend,
        options: Options,
        thresholds: Thresholds,
        pacing: Pacing,
        stats: Option<StatsFile>,
        batch_size: usize,
        memory: MemoryPolicy,
    ) -> Self {
        Scorer {
            pacing,
            device: backend.device_name(),
            summary: Summary::new(options.metrics),
            backend,
            options,
            thresholds,
            stats,
            batch_size: batch_size.max(1),
            memory,
            next_frame: 0,
            converters: Converters::default(),
            warned_small: false,
            warned_late: false,
        }
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    fn oom_recoveries(&self) -> u64 {
        match &self.backend {
            Backend::Torch(t) => t.recoveries,
            Backend::Native => 0,
        }
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
                Job::Finish => {
                    let fields = scorer.summary.fields(
                        session.unpaired(),
                        &scorer.device,
                        scorer.oom_recoveries(),
                    );
                    if let Some(stats) = scorer.stats.as_mut()
                        && let Err(e) = stats.write_summary(&fields)
                    {
                        gst::element_imp_warning!(
                            element.imp(),
                            gst::ResourceError::Write,
                            ("Could not write the summary to the stats file: {e}")
                        );
                    }
                    let s = structure("similarity-summary", &fields);
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
    let budget = scorer.memory.budget(scorer.backend.on_gpu());
    let scored: Vec<Scored> = match &mut scorer.backend {
        Backend::Native => views
            .iter()
            .map(|(r, d)| {
                native::score_within(r, d, &scorer.options, budget)
                    .map(|(scores, usage)| Scored { scores, usage })
            })
            .collect::<Result<_, _>>(),
        Backend::Torch(t) => {
            let injected = scorer.memory.pending_failures.swap(0, Ordering::SeqCst);
            if injected > 0 {
                t.torch.inject_allocation_failures(injected);
            }
            t.score(&views, &scorer.options, scorer.batch_size, budget, |r| {
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
        }
    }
    .map_err(|e| e.to_string())?;

    let metrics = scorer.options.metrics;
    let tier_name = tier.as_ref().map_or("full", |t| t.name.as_str());
    for (((frame, pair), (view, _)), s) in pairs.iter().zip(&views).zip(&scored) {
        let (usage, s) = (s.usage, &s.scores);
        let (r, d) = (&pair.reference, &pair.distorted);
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
        let alerts: Vec<(&str, f64, f64)> = [
            ("ssim", s.ssim, scorer.thresholds.ssim.crossed(s.ssim)),
            (
                "psnr",
                metrics.psnr.then_some(s.psnr),
                scorer.thresholds.psnr.crossed(Some(s.psnr)),
            ),
        ]
        .into_iter()
        .filter_map(|(metric, value, threshold)| Some((metric, value?, threshold?)))
        .collect();
        let planes = (scorer.options.channels == ChannelMode::All).then(|| plane_names(view.kind));
        let report = PairReport {
            frame: *frame,
            pts: r.pts,
            running_time: r.running_time,
            distorted_pts: d.pts,
            distorted_running_time: d.running_time,
            scores: s,
            planes,
            format: r.info.format().to_str(),
            width: view.components[0].width as u32,
            height: view.components[0].height as u32,
            channels: scorer.options.channels.as_str(),
            device: &scorer.device,
            alert: !alerts.is_empty(),
            tier: tier_name,
            usage,
            memory_budget: budget,
        };
        scorer
            .summary
            .add(s, planes, view.max_value(), report.alert, usage.bytes);
        let fields = similarity_fields(metrics, &report);
        if let Some(stats) = scorer.stats.as_mut()
            && let Err(e) = stats.write_pair(&fields)
        {
            scorer.stats = None;
            gst::element_imp_warning!(
                element.imp(),
                gst::ResourceError::Write,
                ("Could not write the stats file, no more rows will be written: {e}")
            );
        }
        let s = structure("similarity", &present(&fields));
        gst::log!(CAT, obj = element, "{s}");
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
        for (metric, value, threshold) in alerts {
            let fields = alert_fields(report.frame, r.pts, metric, value, threshold);
            gst::debug!(
                CAT,
                obj = element,
                "alert: {metric} {value} below {threshold}"
            );
            let s = structure("similarity-alert", &fields);
            let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
        }
    }
    Ok(())
}
