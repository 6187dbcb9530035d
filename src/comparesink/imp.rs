//! Lock order: `state` (the running session) before the [`Session`]'s own lock, and an
//! input's caps/info lock before the Session's; `settings` is never held while taking
//! another lock, posting a message or calling into a child element.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::heatmap::Heatmap;
use super::input::{CompareInput, caps};
use super::memory::MemoryPolicy;
use super::pacing::{AUTO_MAX_LATENESS, Pacing};
use super::pairing::Side;
use super::session::Session;
use super::stats::StatsFile;
use super::worker::{Scorer, Thresholds, spawn};
use super::{
    CAT, CompareBackend, CompareChannels, CompareMetrics, CompareModelType, CompareQuality,
};
use crate::memory::SimulatedUsage;
#[cfg(feature = "torch")]
use crate::scoring::learned::{LearnedModel, ModelKind};
use crate::scoring::vmaf::Model;
use crate::scoring::{BackendChoice, ChannelMode, Engine, FaultInjection, Metrics, Options};
use crate::tier_settings::TierSettings;

const DEFAULT_METRICS: CompareMetrics = CompareMetrics::PSNR.union(CompareMetrics::SSIM);
const DEFAULT_DEVICE: &str = "auto";
const DEFAULT_BATCH_SIZE: u32 = 1;
const MAX_BATCH_SIZE: u32 = 256;
const DEFAULT_THRESHOLD: f64 = 0.0;
const MAX_PSNR_THRESHOLD: f64 = 200.0;
const DEFAULT_VMAF_MODEL: &str = "vmaf_v0.6.1";

#[derive(Debug, Clone)]
pub(super) struct Settings {
    metrics: CompareMetrics,
    channels: CompareChannels,
    device: String,
    backend: CompareBackend,
    batch_size: u32,
    thresholds: Thresholds,
    /// `subsample` and `max-lateness`, shared with the scoring thread.
    pacing: Pacing,
    stats_file: Option<String>,
    heatmap_location: Option<String>,
    sync: bool,
    is_async: bool,
    memory_budget: u64,
    quality: CompareQuality,
    tier: TierSettings,
    /// A built-in VMAF model's name, or a model file's path.
    vmaf_model: String,
    vmaf_features: bool,
    /// A TorchScript model file scored as the `model` metric.
    model: Option<String>,
    model_type: CompareModelType,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            metrics: DEFAULT_METRICS,
            channels: CompareChannels::default(),
            device: DEFAULT_DEVICE.into(),
            backend: CompareBackend::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            thresholds: Thresholds::default(),
            pacing: Pacing::default(),
            stats_file: None,
            heatmap_location: None,
            sync: false,
            is_async: true,
            memory_budget: 0,
            quality: CompareQuality::default(),
            tier: TierSettings::default(),
            vmaf_model: DEFAULT_VMAF_MODEL.into(),
            vmaf_features: false,
            model: None,
            model_type: CompareModelType::default(),
        }
    }
}

impl Settings {
    /// A threshold set on a metric that is not computed, as a sentence.
    fn threshold_error(&self) -> Option<String> {
        let ssim = self.thresholds.ssim.get();
        let psnr = self.thresholds.psnr.get();
        let nick = |m: CompareMetrics| {
            glib::FlagsClass::with_type(CompareMetrics::static_type())
                .map(|c| c.to_nick_string(m.bits()))
                .unwrap_or_default()
        };
        if ssim > 0.0 && !self.metrics.contains(CompareMetrics::SSIM) {
            return Some(format!(
                "threshold={ssim} alerts on SSIM, but metrics={} does not compute it: add ssim \
                 (metrics={}) or set threshold=0",
                nick(self.metrics),
                nick(self.metrics | CompareMetrics::SSIM)
            ));
        }
        if psnr > 0.0 && !self.metrics.contains(CompareMetrics::PSNR) {
            return Some(format!(
                "psnr-threshold={psnr} alerts on PSNR, but metrics={} does not compute it: add \
                 psnr (metrics={}) or set psnr-threshold=0",
                nick(self.metrics),
                nick(self.metrics | CompareMetrics::PSNR)
            ));
        }
        None
    }

    fn options(&self) -> Options {
        Options {
            metrics: Metrics {
                mse: self.metrics.contains(CompareMetrics::MSE),
                psnr: self.metrics.contains(CompareMetrics::PSNR),
                ssim: self.metrics.contains(CompareMetrics::SSIM),
                ms_ssim: self.metrics.contains(CompareMetrics::MS_SSIM),
                vmaf: self.metrics.contains(CompareMetrics::VMAF),
                model: self.model.is_some(),
            },
            channels: match self.channels {
                CompareChannels::Luma => ChannelMode::Luma,
                CompareChannels::All => ChannelMode::All,
            },
            map: self.heatmap_location.is_some(),
        }
    }
}

/// A file name property's value; empty is none.
fn optional_path(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .filter(|p| !p.is_empty())
}

/// A running session and its scoring thread (READY→PAUSED until PAUSED→READY).
struct Running {
    session: Arc<Session>,
    worker: JoinHandle<()>,
}

pub struct CompareSink {
    settings: Mutex<Settings>,
    simulated: SimulatedUsage,
    faults: FaultInjection,
    state: Mutex<Option<Running>>,
    inputs: [CompareInput; 2],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for CompareSink {
    fn default() -> Self {
        CompareSink {
            settings: Mutex::default(),
            simulated: SimulatedUsage::default(),
            faults: FaultInjection::default(),
            state: Mutex::default(),
            inputs: [
                CompareInput::new(Side::Reference),
                CompareInput::new(Side::Distorted),
            ],
        }
    }
}

impl CompareSink {
    /// Creates an output file a property names, at start-up so that an unwritable path
    /// fails at once with an error saying which.
    fn open_output<T>(
        &self,
        path: Option<&str>,
        what: &str,
        create: impl Fn(&str) -> std::io::Result<T>,
    ) -> Result<Option<T>, gst::StateChangeError> {
        let Some(path) = path else { return Ok(None) };
        create(path).map(Some).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::OpenWrite,
                ("Cannot write the {what} '{path}': {e}")
            );
            gst::StateChangeError
        })
    }

    /// Builds the scorer from the settings: device, stats file, heat-map. Errors go to the bus.
    fn start(&self) -> Result<(), gst::StateChangeError> {
        let settings = lock(&self.settings).clone();
        let options = settings.options();
        if let Some(e) = settings.threshold_error() {
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{e}"));
            return Err(gst::StateChangeError);
        }
        let backend = match settings.backend {
            CompareBackend::Auto => BackendChoice::Auto,
            CompareBackend::Native => BackendChoice::Native,
            CompareBackend::Libtorch => BackendChoice::Libtorch,
        };
        let engine = Engine::new(&settings.device, backend, self.faults.clone()).map_err(|e| {
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{e}"));
            gst::StateChangeError
        })?;
        let stats = self.open_output(
            settings.stats_file.as_deref(),
            "stats file",
            StatsFile::create,
        )?;
        let heatmap = self.open_output(
            settings.heatmap_location.as_deref(),
            "heat-map",
            Heatmap::create,
        )?;
        let memory = MemoryPolicy::new(
            &settings.tier,
            engine.monitor_index(),
            &self.simulated,
            settings.quality,
            settings.memory_budget,
        )
        .map_err(|e| {
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{e}"));
            gst::StateChangeError
        })?;
        if let Some(reason) = memory.fallback_reason() {
            gst::info!(CAT, imp = self, "{reason}");
        }
        // A model that cannot be used stops the start, not the first frame.
        let vmaf = match options.metrics.vmaf {
            false => None,
            true => Some(Model::load(&settings.vmaf_model).map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Settings,
                    ("vmaf-model={}: {e}", settings.vmaf_model)
                );
                gst::StateChangeError
            })?),
        };
        let model = self.load_model(&settings, engine.device())?;
        let mut scorer = Scorer::new(
            engine,
            options,
            settings.thresholds.clone(),
            settings.pacing.clone(),
            stats,
            settings.batch_size as usize,
            memory,
        );
        scorer.heatmap = heatmap;
        scorer.set_vmaf(vmaf, settings.vmaf_features);
        scorer.set_model(model);
        gst::info!(
            CAT,
            imp = self,
            "scoring {:?} on {} ({}), batch size {}",
            options.metrics,
            scorer.device(),
            scorer.engine.backend_name(),
            scorer.batch_size
        );
        let session = Arc::new(Session::new(scorer.batch_size, &self.obj()));
        let worker = spawn(&self.obj(), session.clone(), scorer).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::CoreError::Thread,
                ("Cannot start the scoring thread: {e}")
            );
            gst::StateChangeError
        })?;
        for input in &self.inputs {
            input.set_session(Some(session.clone()));
        }
        *lock(&self.state) = Some(Running { session, worker });
        Ok(())
    }

    /// Loads the `model` property's TorchScript model on the engine's device, checked on a
    /// probe batch; errors go to the bus.
    #[cfg(feature = "torch")]
    fn load_model(
        &self,
        settings: &Settings,
        device: crate::scoring::Device,
    ) -> Result<Option<LearnedModel>, gst::StateChangeError> {
        let Some(path) = settings.model.as_deref() else {
            return Ok(None);
        };
        let kind = match settings.model_type {
            CompareModelType::Pair => ModelKind::Pair,
            CompareModelType::Embedding => ModelKind::Embedding,
        };
        let model = LearnedModel::load(std::path::Path::new(path), kind, device)
            .map_err(|e| {
                gst::element_imp_error!(self, gst::ResourceError::Settings, ("model={path}: {e}"));
                gst::StateChangeError
            })?
            .with_faults(self.faults.clone());
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}) loaded on {device}",
            model.name(),
            kind.name()
        );
        Ok(Some(model))
    }

    #[cfg(not(feature = "torch"))]
    fn load_model(
        &self,
        settings: &Settings,
        _device: crate::scoring::Device,
    ) -> Result<Option<()>, gst::StateChangeError> {
        let Some(path) = settings.model.as_deref() else {
            return Ok(None);
        };
        gst::element_imp_error!(
            self,
            gst::ResourceError::Settings,
            ("model={path}: a TorchScript model needs libtorch, and this build of the plugin \
                 was built without the 'torch' cargo feature")
        );
        Err(gst::StateChangeError)
    }

    /// Disconnects the inputs, wakes everything that waits and joins the scoring thread.
    fn stop(&self) {
        let running = lock(&self.state).take();
        for input in &self.inputs {
            input.set_session(None);
        }
        if let Some(r) = running {
            r.session.stop();
            if r.worker.join().is_err() {
                gst::error!(CAT, imp = self, "the scoring thread panicked");
            }
        }
    }

    /// Whether upstream is live decides whether late pairs may be skipped; its latency,
    /// from when they count as late.
    fn note_liveness(&self) {
        let (mut live, mut latency) = (false, 0);
        for input in &self.inputs {
            if let Ok((_, true, min, _)) = input.query_latency() {
                live = true;
                latency = latency.max(min.map_or(0, |t| t.nseconds()));
            }
        }
        gst::debug!(
            CAT,
            imp = self,
            "upstream is live: {live}, latency {latency} ns"
        );
        lock(&self.settings).pacing.set_live(live, latency);
    }

    fn wake(&self) {
        if let Some(r) = lock(&self.state).as_ref() {
            r.session.stop();
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for CompareSink {
    const NAME: &'static str = "GstCompareSink";
    type Type = super::CompareSink;
    type ParentType = gst::Bin;
}

impl ObjectImpl for CompareSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = vec![
                glib::ParamSpecFlags::builder::<CompareMetrics>("metrics")
                    .nick("Metrics")
                    .blurb("Metrics computed for each frame pair")
                    .default_value(DEFAULT_METRICS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("channels", CompareChannels::default())
                    .nick("Channels")
                    .blurb("Samples compared: luma (Y plane; 0.299 R + 0.587 G + 0.114 B for RGB) or all colour planes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Where to score: auto (the CUDA device with the most free memory when libtorch has CUDA and a GPU is there, else the CPU), cpu, cuda or cuda:N (CUDA numbering, after CUDA_VISIBLE_DEVICES)")
                    .default_value(Some(DEFAULT_DEVICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", CompareBackend::default())
                    .nick("Backend")
                    .blurb("Scoring implementation: auto (libtorch on CUDA, native kernel on CPU), native, or libtorch")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb("Frame pairs scored together on the device (1 = no batching)")
                    .minimum(1)
                    .maximum(MAX_BATCH_SIZE)
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("SSIM alert threshold")
                    .blurb("A pair whose SSIM is below this is an alert: 'alert' is set and a 'similarity-alert' message posted (0 = off; needs ssim in metrics)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("psnr-threshold")
                    .nick("PSNR alert threshold")
                    .blurb("A pair whose PSNR is below this many dB is an alert: 'alert' is set and a 'similarity-alert' message posted (0 = off; needs psnr in metrics)")
                    .minimum(0.0)
                    .maximum(MAX_PSNR_THRESHOLD)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("subsample")
                    .nick("Subsample")
                    .blurb("Score one pair in N (frames 0, N, 2N, ...); the others are counted as 'subsampled' in the summary and leave gaps in 'frame'")
                    .minimum(1)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt64::builder("max-lateness")
                    .nick("Max lateness")
                    .blurb("In live pipelines, pairs that scoring reaches more than this many ns after their running time plus the pipeline latency are skipped before scoring, counted as 'skipped' in the summary, and leave gaps in 'frame' (-1 = 1 s when upstream is live; 0 = never skip). Non-live pipelines never skip: upstream waits")
                    .minimum(-1)
                    .default_value(AUTO_MAX_LATENESS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("stats-file")
                    .nick("Stats file")
                    .blurb("Optional file with one row per pair, written as it is scored, under the 'similarity' message's field names: CSV when the name ends in .csv, JSON lines otherwise (ending with a {\"type\": \"summary\", ...} record)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("heatmap-location")
                    .nick("Heat-map location")
                    .blurb("Optional PNG file written at the end of the stream (or when the element stops): the per-pixel SSIM map (the squared-error map when SSIM is off) of the worst-scoring pair, at the compared size, colour-mapped with viridis (dark = worse), the border SSIM's window cannot reach hatched in grey, and the pair's frame, pts and score in PNG text chunks")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("vmaf-model")
                    .nick("VMAF model")
                    .blurb("The model metrics=vmaf scores with: vmaf_v0.6.1 (1080p TV viewing), vmaf_v0.6.1neg (no credit for enhancement), vmaf_4k_v0.6.1 (4K TV), or the path of a libvmaf JSON model file")
                    .default_value(Some(DEFAULT_VMAF_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("vmaf-features")
                    .nick("VMAF features")
                    .blurb("Also post the features each VMAF score comes from: vmaf-adm2, vmaf-vif-scale0 to vmaf-vif-scale3 and vmaf-motion2")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Optional TorchScript model file (torch.jit.save) scored as the 'model' metric on the engine's device, beside the metrics: it sees RGB float32 in [0, 1], NCHW, both frames fitted into the quality tier's box (quality=auto: the high tier's). Loaded at start and checked on probe batches, which measure its working memory per pixel; batches, and a lower tier when one pair does not fit, are planned against the memory budget with it")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model-type", CompareModelType::default())
                    .nick("Model type")
                    .blurb("How the model compares a pair: pair (forward(reference, distorted) -> [batch, ...], score = mean over all but the batch) or embedding (forward(image) -> [batch, features], score = cosine similarity)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("sync")
                    .nick("Sync")
                    .blurb("Render frames at their running time against the clock")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("memory-budget")
                    .nick("Memory budget")
                    .blurb("Working memory a batch may use, in bytes; batches shrink and frames are scored in bands to stay under it (0 = automatic: the GPU's free memory minus a margin, or half the available RAM on the CPU)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("quality", CompareQuality::default())
                    .nick("Quality")
                    .blurb("Compare resolution: auto (full resolution, and a model sees the high tier's box), full (exact scores; a model sees the full frame too), adaptive (the tier GPU memory usage selects), or a pinned tier (high, medium, low)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("inject-allocation-failures")
                    .nick("Inject allocation failures")
                    .blurb("Testing: the next N device allocations of the libtorch backend fail as out of memory")
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("async")
                    .nick("Async")
                    .blurb("Go to PAUSED asynchronously, once both pads have prerolled")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
            ];
            props.extend(TierSettings::properties(
                "Where GPU memory usage is read from (for the automatic budget and quality=adaptive)",
                "Quality tiers for quality=adaptive/high/medium/low, highest first, as name:WIDTHxHEIGHT:quality,... (as vramscale's)",
            ));
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "simulated-usage" => return self.simulated.set(value.get().unwrap_or(0.0)),
            "inject-allocation-failures" => {
                let n = value.get().unwrap_or(0);
                gst::debug!(CAT, imp = self, "injecting {n} allocation failures");
                return self.faults.inject(n);
            }
            _ => {}
        }
        let mut s = lock(&self.settings);
        if s.tier.set(pspec.name(), value) {
            gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
            return;
        }
        match pspec.name() {
            "metrics" => s.metrics = value.get().unwrap_or(DEFAULT_METRICS),
            "channels" => s.channels = value.get().unwrap_or_default(),
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| DEFAULT_DEVICE.into())
            }
            "backend" => s.backend = value.get().unwrap_or_default(),
            "batch-size" => s.batch_size = value.get().unwrap_or(DEFAULT_BATCH_SIZE),
            "threshold" => s
                .thresholds
                .ssim
                .set(value.get().unwrap_or(DEFAULT_THRESHOLD)),
            "psnr-threshold" => s
                .thresholds
                .psnr
                .set(value.get().unwrap_or(DEFAULT_THRESHOLD)),
            "memory-budget" => s.memory_budget = value.get().unwrap_or(0),
            "subsample" => s.pacing.set_subsample(value.get().unwrap_or(1)),
            "max-lateness" => s
                .pacing
                .set_max_lateness(value.get().unwrap_or(AUTO_MAX_LATENESS)),
            "quality" => s.quality = value.get().unwrap_or_default(),
            "stats-file" => s.stats_file = optional_path(value),
            "heatmap-location" => s.heatmap_location = optional_path(value),
            "vmaf-model" => {
                s.vmaf_model = optional_path(value).unwrap_or_else(|| DEFAULT_VMAF_MODEL.into())
            }
            "vmaf-features" => s.vmaf_features = value.get().unwrap_or(false),
            "model" => s.model = optional_path(value),
            "model-type" => s.model_type = value.get().unwrap_or_default(),
            "sync" | "async" => {
                let on = value.get().unwrap_or(pspec.name() == "async");
                if pspec.name() == "sync" {
                    s.sync = on;
                } else {
                    s.is_async = on;
                }
                drop(s);
                // Forwarded to the internal sinks, outside the settings lock.
                for input in &self.inputs {
                    input.set_property(pspec.name(), on);
                }
                return;
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "simulated-usage" => return self.simulated.get().to_value(),
            "inject-allocation-failures" => {
                return self.faults.pending().to_value();
            }
            _ => {}
        }
        let s = lock(&self.settings);
        if let Some(v) = s.tier.get(pspec.name()) {
            return v;
        }
        match pspec.name() {
            "metrics" => s.metrics.to_value(),
            "channels" => s.channels.to_value(),
            "device" => s.device.to_value(),
            "backend" => s.backend.to_value(),
            "batch-size" => s.batch_size.to_value(),
            "threshold" => s.thresholds.ssim.get().to_value(),
            "psnr-threshold" => s.thresholds.psnr.get().to_value(),
            "stats-file" => s.stats_file.to_value(),
            "heatmap-location" => s.heatmap_location.to_value(),
            "vmaf-model" => s.vmaf_model.to_value(),
            "vmaf-features" => s.vmaf_features.to_value(),
            "model" => s.model.to_value(),
            "model-type" => s.model_type.to_value(),
            "sync" => s.sync.to_value(),
            "async" => s.is_async.to_value(),
            "memory-budget" => s.memory_budget.to_value(),
            "subsample" => s.pacing.subsample().to_value(),
            "max-lateness" => s.pacing.max_lateness().to_value(),
            "quality" => s.quality.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_element_flags(gst::ElementFlags::SINK);
        for (input, name) in self.inputs.iter().zip(["reference", "distorted"]) {
            if obj.add(input).is_err() {
                gst::error!(CAT, imp = self, "cannot add the {name} input");
                continue;
            }
            let (Some(target), Some(templ)) = (input.static_pad("sink"), obj.pad_template(name))
            else {
                continue;
            };
            let ghost = gst::GhostPad::builder_from_template_with_target(&templ, &target)
                .map(|b| b.name(name).build());
            match ghost {
                Ok(pad) => {
                    let _ = obj.add_pad(&pad);
                }
                Err(e) => gst::error!(CAT, imp = self, "cannot create the {name} pad: {e}"),
            }
        }
    }
}

impl GstObjectImpl for CompareSink {}

impl ElementImpl for CompareSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Frame similarity sink",
                "Sink/Video",
                "Scores reference/distorted frame pairs (MSE, PSNR, SSIM, MS-SSIM) with libtorch \
                 (CUDA when there is a GPU) and posts 'similarity' messages",
                "gst-plugin-gpucompare developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            ["reference", "distorted"]
                .into_iter()
                .map(|name| {
                    gst::PadTemplate::new(
                        name,
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps(),
                    )
                    .expect("static pad template")
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "{transition:?}");
        match transition {
            gst::StateChange::ReadyToPaused => self.start()?,
            gst::StateChange::PausedToReady => self.wake(),
            _ => {}
        }
        let result = self.parent_change_state(transition);
        match transition {
            gst::StateChange::PausedToPlaying => self.note_liveness(),
            gst::StateChange::PausedToReady => self.stop(),
            gst::StateChange::ReadyToPaused if result.is_err() => self.stop(),
            _ => {}
        }
        result
    }
}

impl BinImpl for CompareSink {}
