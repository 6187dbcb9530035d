//! The scoring thread: maps paired frames, brings the distorted frame to the reference's
//! format and size, scores batches, and posts the results.

use std::sync::Arc;
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;

use super::report::{PairReport, StatsFile, Summary, Threshold, similarity_structure};
use super::session::{Frame, Job, Pair, Session};
use super::{CAT, CompareBackend, CompareSink};
use crate::scoring::torch::{
    TorchScorer, check_device, default_cuda_device, device_name, parse_device,
};
use crate::scoring::{ColorKind, Component, ImageView, Options, Scores, native};

/// Where the scores are computed.
pub enum Backend {
    Native,
    Torch(TorchScorer),
}

impl Backend {
    /// Resolves the `device` and `backend` properties; the error is a user-facing sentence.
    pub fn choose(device: &str, backend: CompareBackend) -> Result<Backend, String> {
        let torch = |d| {
            TorchScorer::new(d)
                .map(Backend::Torch)
                .map_err(|e| e.to_string())
        };
        if device == "auto" {
            return match (backend, default_cuda_device()) {
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
            Backend::Torch(t) => device_name(t.device()),
        }
    }
}

/// Everything the scoring thread owns.
pub struct Scorer {
    pub backend: Backend,
    pub options: Options,
    pub threshold: Threshold,
    pub stats: Option<StatsFile>,
    pub batch_size: usize,
    device: String,
    summary: Summary,
    next_frame: u64,
    converter: Option<(
        gst_video::VideoInfo,
        gst_video::VideoInfo,
        gst_video::VideoConverter,
    )>,
    warned_small: bool,
}

impl Scorer {
    pub fn new(
        backend: Backend,
        options: Options,
        threshold: Threshold,
        stats: Option<StatsFile>,
        batch_size: usize,
    ) -> Self {
        Scorer {
            device: backend.device_name(),
            summary: Summary::new(options.metrics),
            backend,
            options,
            threshold,
            stats,
            batch_size: batch_size.max(1),
            next_frame: 0,
            converter: None,
            warned_small: false,
        }
    }

    pub fn device(&self) -> &str {
        &self.device
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
    while let Some(jobs) = session.next_jobs(scorer.batch_size) {
        let Some(element) = element.upgrade() else {
            return;
        };
        let mut pairs = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Pair(pair) => pairs.push(*pair),
                Job::Finish => {
                    if let Some(stats) = scorer.stats.as_mut()
                        && let Err(e) = stats.flush()
                    {
                        gst::element_imp_warning!(
                            element.imp(),
                            gst::ResourceError::Write,
                            ("Could not write the stats file: {e}")
                        );
                    }
                    let s = scorer.summary.structure(session.unpaired(), &scorer.device);
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
        if let Err(e) = score_pairs(&element, &mut scorer, &pairs) {
            gst::element_imp_error!(
                element.imp(),
                gst::StreamError::Failed,
                ("Could not score frame {}: {e}", scorer.next_frame)
            );
            session.fail();
            return;
        }
    }
}

fn score_pairs(element: &CompareSink, scorer: &mut Scorer, pairs: &[Pair]) -> Result<(), String> {
    let mut mapped = Vec::with_capacity(pairs.len());
    for Pair {
        reference: r,
        distorted: d,
    } in pairs
    {
        let reference = gst_video::VideoFrame::from_buffer_readable(r.buffer.clone(), &r.info)
            .map_err(|_| "cannot map the reference buffer".to_string())?;
        let distorted = matched_distorted(element, scorer, &r.info, d)?;
        mapped.push((reference, distorted));
    }
    let views = mapped
        .iter()
        .map(|(r, d)| Ok((image_view(r)?, image_view(d)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let scores: Vec<Scores> = match &scorer.backend {
        Backend::Native => views
            .iter()
            .map(|(r, d)| native::score(r, d, &scorer.options))
            .collect::<Result<_, _>>(),
        Backend::Torch(t) => t.score_batch(&views, &scorer.options),
    }
    .map_err(|e| e.to_string())?;

    let metrics = scorer.options.metrics;
    for ((Pair { reference: r, .. }, (view, _)), s) in pairs.iter().zip(&views).zip(&scores) {
        if (metrics.ssim && s.ssim.is_none() || metrics.ms_ssim && s.ms_ssim.is_none())
            && !scorer.warned_small
        {
            scorer.warned_small = true;
            gst::element_imp_warning!(
                element.imp(),
                gst::StreamError::Format,
                (
                    "Frames of {}x{} are smaller than the 11x11 SSIM window: only MSE and PSNR are reported",
                    r.info.width(),
                    r.info.height()
                )
            );
        }
        let alert = scorer.threshold.alerts(s.ssim);
        let report = PairReport {
            frame: scorer.next_frame,
            pts: r.pts,
            running_time: r.running_time,
            scores: s,
            width: r.info.width(),
            height: r.info.height(),
            channels: scorer.options.channels.as_str(),
            device: &scorer.device,
            alert,
        };
        scorer.next_frame += 1;
        scorer.summary.add(s, view.max_value(), alert);
        if let Some(stats) = scorer.stats.as_mut()
            && let Err(e) = stats.write(&report)
        {
            scorer.stats = None;
            gst::element_imp_warning!(
                element.imp(),
                gst::ResourceError::Write,
                ("Could not write the stats file, no more rows will be written: {e}")
            );
        }
        let s = similarity_structure(metrics, &report);
        gst::debug!(CAT, obj = element, "{s}");
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }
    Ok(())
}

/// The distorted frame in the reference's format and size (converted when they differ).
fn matched_distorted(
    element: &CompareSink,
    scorer: &mut Scorer,
    target: &gst_video::VideoInfo,
    d: &Frame,
) -> Result<gst_video::VideoFrame<gst_video::video_frame::Readable>, String> {
    let src = gst_video::VideoFrame::from_buffer_readable(d.buffer.clone(), &d.info)
        .map_err(|_| "cannot map the distorted buffer".to_string())?;
    let same = d.info.format() == target.format()
        && d.info.width() == target.width()
        && d.info.height() == target.height();
    if same {
        return Ok(src);
    }
    let out_info = gst_video::VideoInfo::builder(target.format(), target.width(), target.height())
        .fps(d.info.fps())
        .par(d.info.par())
        .interlace_mode(d.info.interlace_mode())
        .colorimetry(&target.colorimetry())
        .chroma_site(target.chroma_site())
        .build()
        .map_err(|e| format!("cannot describe the converted frame: {e}"))?;
    let cached = matches!(&scorer.converter, Some((i, o, _)) if *i == d.info && *o == out_info);
    if !cached {
        gst::debug!(
            CAT,
            obj = element,
            "converting distorted {:?} {}x{} to {:?} {}x{}",
            d.info.format(),
            d.info.width(),
            d.info.height(),
            out_info.format(),
            out_info.width(),
            out_info.height()
        );
        let mut config = gst_video::VideoConverterConfig::new();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        config.set_threads(threads);
        let converter = gst_video::VideoConverter::new(&d.info, &out_info, Some(config))
            .map_err(|e| format!("cannot convert the distorted frame: {e}"))?;
        scorer.converter = Some((d.info.clone(), out_info.clone(), converter));
    }
    let Some((_, _, converter)) = &scorer.converter else {
        return Err("no converter".into());
    };
    let buffer = gst::Buffer::with_size(out_info.size()).map_err(|e| e.to_string())?;
    let mut dest = gst_video::VideoFrame::from_buffer_writable(buffer, &out_info)
        .map_err(|_| "cannot map the conversion buffer".to_string())?;
    converter.frame(&src, &mut dest);
    gst_video::VideoFrame::from_buffer_readable(dest.into_buffer(), &out_info)
        .map_err(|_| "cannot map the converted buffer".to_string())
}

/// The engine's view of a mapped frame.
fn image_view<'a>(
    frame: &'a gst_video::VideoFrame<gst_video::video_frame::Readable>,
) -> Result<ImageView<'a>, String> {
    let finfo = frame.format_info();
    let kind = if finfo.is_gray() {
        ColorKind::Gray
    } else if finfo.is_rgb() {
        ColorKind::Rgb
    } else if finfo.is_yuv() {
        ColorKind::Yuv
    } else {
        return Err(format!("unsupported format {:?}", frame.format()));
    };
    let count = if kind == ColorKind::Gray { 1 } else { 3 };
    let components = (0..count)
        .map(|c| {
            Ok(Component {
                data: frame.comp_data(c).map_err(|e| e.to_string())?,
                offset: 0,
                stride: frame.comp_stride(c) as usize,
                pixel_stride: frame.comp_pstride(c) as usize,
                width: frame.comp_width(c) as usize,
                height: frame.comp_height(c) as usize,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ImageView {
        kind,
        depth: finfo.depth()[0],
        components,
    })
}
