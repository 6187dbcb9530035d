use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use super::{CAT, fit_in_tier};
use crate::memory::tiers::{Thresholds, TierPolicy, TierTable};
use crate::memory::{Monitor, Reading, SimulatedUsage};
use crate::memory_source::{MemorySource, memory_properties};

const DEFAULT_WARNING: f64 = 0.8;
const DEFAULT_CRITICAL: f64 = 0.9;
const DEFAULT_HYSTERESIS: f64 = 0.05;
const DEFAULT_MIN_DWELL_NS: u64 = 1_000_000_000;
const DEFAULT_POLL_INTERVAL_NS: u64 = 100_000_000;
const DEFAULT_METHOD: gst_video::VideoResamplerMethod = gst_video::VideoResamplerMethod::Linear;

#[derive(Debug, Clone)]
struct Settings {
    memory_source: MemorySource,
    device_index: u32,
    warning: f64,
    critical: f64,
    hysteresis: f64,
    min_dwell_ns: u64,
    poll_interval_ns: u64,
    tiers: String,
    method: gst_video::VideoResamplerMethod,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            memory_source: MemorySource::default(),
            device_index: 0,
            warning: DEFAULT_WARNING,
            critical: DEFAULT_CRITICAL,
            hysteresis: DEFAULT_HYSTERESIS,
            min_dwell_ns: DEFAULT_MIN_DWELL_NS,
            poll_interval_ns: DEFAULT_POLL_INTERVAL_NS,
            tiers: TierTable::default().to_string(),
            method: DEFAULT_METHOD,
        }
    }
}

impl Settings {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            warning: self.warning,
            critical: self.critical,
            hysteresis: self.hysteresis,
            min_dwell: Duration::from_nanos(self.min_dwell_ns),
        }
    }
}

/// Per-stream state, from start to stop.
struct State {
    monitor: Monitor,
    policy: TierPolicy,
    table: TierTable,
    reading: Reading,
    in_info: Option<gst_video::VideoInfo>,
    announced: bool,
}

/// What a `vram-tier` message reports.
struct TierReport {
    tier: String,
    quality: u32,
    reading: Reading,
    size: Option<(u32, u32)>,
}

#[derive(Default)]
pub struct VramScale {
    settings: Mutex<Settings>,
    simulated: SimulatedUsage,
    state: Mutex<Option<State>>,
    converter: Mutex<Option<gst_video::VideoConverter>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// The output size of the current input at the current tier.
    fn output_size(&self) -> Option<(u32, u32)> {
        let info = self.in_info.as_ref()?;
        Some(fit_in_tier(info, &self.table.0[self.policy.current()]))
    }

    fn report(&self) -> TierReport {
        let tier = &self.table.0[self.policy.current()];
        TierReport {
            tier: tier.name.clone(),
            quality: tier.quality,
            reading: self.reading,
            size: self.output_size(),
        }
    }
}

impl VramScale {
    fn post_tier(&self, r: &TierReport, running_time: Option<gst::ClockTime>) {
        let (w, h) = r.size.unwrap_or((0, 0));
        let s = gst::Structure::builder("vram-tier")
            .field("tier", &r.tier)
            .field("usage", r.reading.usage)
            .field("used-bytes", r.reading.used_bytes)
            .field("total-bytes", r.reading.total_bytes)
            .field("source", r.reading.source.name())
            .field("width", w as i32)
            .field("height", h as i32)
            .field("quality", r.quality as i32)
            .field(
                "running-time",
                running_time.map_or(u64::MAX, |t| t.nseconds()),
            )
            .build();
        gst::info!(CAT, imp = self, "{s}");
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}

#[glib::object_subclass]
impl ObjectSubclass for VramScale {
    const NAME: &'static str = "GstVramScale";
    type Type = super::VramScale;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for VramScale {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let ratio = |name: &str, nick: &str, blurb: &str, default: f64| {
                glib::ParamSpecDouble::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            let mut props = vec![
                glib::ParamSpecUInt::builder("device-index")
                    .nick("Device index")
                    .blurb("Index of the GPU whose memory is watched")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                ratio("warning-threshold", "Warning threshold", "Usage above this selects the middle tier", DEFAULT_WARNING),
                ratio("critical-threshold", "Critical threshold", "Usage above this selects the lowest tier", DEFAULT_CRITICAL),
                glib::ParamSpecDouble::builder("hysteresis")
                    .nick("Hysteresis")
                    .blurb("Stepping back up needs usage below the threshold minus this (for min-dwell)")
                    .minimum(0.0)
                    .maximum(0.5)
                    .default_value(DEFAULT_HYSTERESIS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("min-dwell")
                    .nick("Minimum dwell (ns)")
                    .blurb("How long usage must stay low before stepping back up a tier, in nanoseconds")
                    .default_value(DEFAULT_MIN_DWELL_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("poll-interval")
                    .nick("Poll interval (ns)")
                    .blurb("How often NVML or CUDA is read, in nanoseconds (off the streaming thread)")
                    .minimum(1_000_000)
                    .default_value(DEFAULT_POLL_INTERVAL_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("method", DEFAULT_METHOD)
                    .nick("Method")
                    .blurb("Scaling method")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tier")
                    .nick("Tier")
                    .blurb("The current tier's name")
                    .read_only()
                    .build(),
                glib::ParamSpecDouble::builder("usage")
                    .nick("Usage")
                    .blurb("The latest GPU memory usage reading (0-1)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .read_only()
                    .build(),
            ];
            props.extend(memory_properties(
                "Where GPU memory usage is read from",
                "Three tiers, highest first, as name:WIDTHxHEIGHT:quality,... (frames are fitted inside WIDTHxHEIGHT; quality is a JPEG-quality hint)",
            ));
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "simulated-usage" {
            self.simulated.set(value.get().unwrap_or(0.0));
            gst::debug!(CAT, imp = self, "simulated usage {}", self.simulated.get());
            return;
        }
        let mut s = lock(&self.settings);
        match pspec.name() {
            "memory-source" => s.memory_source = value.get().unwrap_or_default(),
            "device-index" => s.device_index = value.get().unwrap_or(0),
            "warning-threshold" => s.warning = value.get().unwrap_or(DEFAULT_WARNING),
            "critical-threshold" => s.critical = value.get().unwrap_or(DEFAULT_CRITICAL),
            "hysteresis" => s.hysteresis = value.get().unwrap_or(DEFAULT_HYSTERESIS),
            "min-dwell" => s.min_dwell_ns = value.get().unwrap_or(DEFAULT_MIN_DWELL_NS),
            "poll-interval" => s.poll_interval_ns = value.get().unwrap_or(DEFAULT_POLL_INTERVAL_NS),
            "tiers" => {
                let tiers = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                if let Err(e) = tiers.parse::<TierTable>() {
                    // Refused again, as an error, when the element starts.
                    gst::warning!(CAT, imp = self, "invalid tiers '{tiers}': {e}");
                }
                s.tiers = tiers;
            }
            "method" => s.method = value.get().unwrap_or(DEFAULT_METHOD),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
        gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "simulated-usage" => return self.simulated.get().to_value(),
            "tier" => {
                return lock(&self.state)
                    .as_ref()
                    .map(|st| st.table.0[st.policy.current()].name.clone())
                    .to_value();
            }
            "usage" => {
                return lock(&self.state)
                    .as_ref()
                    .map_or(0.0, |st| st.reading.usage)
                    .to_value();
            }
            _ => {}
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "memory-source" => s.memory_source.to_value(),
            "device-index" => s.device_index.to_value(),
            "warning-threshold" => s.warning.to_value(),
            "critical-threshold" => s.critical.to_value(),
            "hysteresis" => s.hysteresis.to_value(),
            "min-dwell" => s.min_dwell_ns.to_value(),
            "poll-interval" => s.poll_interval_ns.to_value(),
            "tiers" => s.tiers.to_value(),
            "method" => s.method.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for VramScale {}

impl ElementImpl for VramScale {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "GPU-memory-adaptive scaler",
                "Filter/Converter/Video/Scaler",
                "Watches GPU memory (NVML) and scales frames down to the current quality tier \
                 as it fills, posting 'vram-tier' messages",
                "gst-plugin-gpucompare developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            use gst_video::VideoFormat::*;
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([
                    I420, Yv12, Nv12, Nv21, Y42b, Y444, Y41b, Yuy2, Uyvy, Yvyu, Ayuv, Rgb, Bgr,
                    Rgba, Bgra, Rgbx, Bgrx, Argb, Abgr, Xrgb, Xbgr, Gray8, Gray16Le, Gray16Be,
                    I42010le, I42210le, Y44410le, P01010le, I42012le, Y44412le,
                ])
                .build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .map(|dir| {
                    let name = if dir == gst::PadDirection::Src {
                        "src"
                    } else {
                        "sink"
                    };
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps)
                        .expect("static pad template")
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for VramScale {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let table: TierTable = settings.tiers.parse().map_err(|e| {
            gst::error_msg!(
                gst::LibraryError::Settings,
                ("Invalid tiers '{}': {e}", settings.tiers)
            )
        })?;
        let thresholds = settings.thresholds();
        thresholds
            .validate()
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        let kind = settings.memory_source.kind();
        let monitor = Monitor::open(
            kind,
            settings.device_index,
            Duration::from_nanos(settings.poll_interval_ns),
            self.simulated.clone(),
        )
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("memory-source={} cannot be used: {e}", kind.name())
            )
        })?;
        if let Some(reason) = &monitor.fallback_reason {
            gst::info!(CAT, imp = self, "{reason}");
        }
        let reading = monitor.latest();
        let mut policy = TierPolicy::new(thresholds);
        policy.reset(reading.usage);
        gst::info!(
            CAT,
            imp = self,
            "watching GPU {} through {}, tiers {table}",
            settings.device_index,
            monitor.kind().name()
        );
        *lock(&self.state) = Some(State {
            monitor,
            policy,
            table,
            reading,
            in_info: None,
            announced: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        *lock(&self.converter) = None;
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        // Any size on the other side; format and pixel aspect ratio stay.
        let mut other = caps.clone();
        for s in other.make_mut().iter_mut() {
            s.set("width", gst::IntRange::new(1, i32::MAX));
            s.set("height", gst::IntRange::new(1, i32::MAX));
        }
        gst::trace!(CAT, imp = self, "{direction:?} {caps} -> {other}");
        Some(match filter {
            Some(f) => f.intersect_with_mode(&other, gst::CapsIntersectMode::First),
            None => other,
        })
    }

    fn fixate_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        othercaps: gst::Caps,
    ) -> gst::Caps {
        if direction != gst::PadDirection::Sink {
            return self.parent_fixate_caps(direction, caps, othercaps);
        }
        let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
            return self.parent_fixate_caps(direction, caps, othercaps);
        };
        let target = {
            let mut st = lock(&self.state);
            st.as_mut().and_then(|st| {
                st.in_info = Some(info.clone());
                st.output_size()
            })
        };
        let (w, h) = target.unwrap_or((info.width(), info.height()));
        let mut out = othercaps;
        out.truncate();
        if let Some(s) = out.make_mut().structure_mut(0) {
            s.fixate_field_nearest_int("width", w as i32);
            s.fixate_field_nearest_int("height", h as i32);
            let par = info.par();
            if s.has_field("pixel-aspect-ratio") {
                s.fixate_field_nearest_fraction("pixel-aspect-ratio", par);
            } else {
                s.set("pixel-aspect-ratio", par);
            }
        }
        out.fixate();
        gst::debug!(
            CAT,
            imp = self,
            "output caps for {}x{}: {out}",
            info.width(),
            info.height()
        );
        out
    }

    fn before_transform(&self, buffer: &gst::BufferRef) {
        let running_time = self
            .obj()
            .segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(buffer.pts()));
        let mut changed = false;
        let reports = {
            let mut guard = lock(&self.state);
            let Some(st) = guard.as_mut() else { return };
            st.reading = st.monitor.latest();
            let mut reports = Vec::new();
            if !st.announced {
                st.announced = true;
                reports.push(st.report());
            }
            if let Some(tier) = st.policy.update(st.reading.usage, Instant::now()) {
                gst::debug!(
                    CAT,
                    imp = self,
                    "usage {:.3}: tier {}",
                    st.reading.usage,
                    st.table.0[tier].name
                );
                changed = true;
                reports.push(st.report());
            }
            reports
        };
        // Outside the lock: messages, and renegotiation before the next buffer.
        for r in &reports {
            self.post_tier(r, running_time);
        }
        if changed {
            self.obj().reconfigure_src();
        }
    }
}

impl VideoFilterImpl for VramScale {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if let Some(st) = lock(&self.state).as_mut() {
            st.in_info = Some(in_info.clone());
        }
        let same = in_info.width() == out_info.width() && in_info.height() == out_info.height();
        let converter = if same {
            None
        } else {
            let mut config = gst_video::VideoConverterConfig::new();
            config.set_threads(std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
            config.set_resampler_method(lock(&self.settings).method);
            Some(
                gst_video::VideoConverter::new(in_info, out_info, Some(config)).map_err(|e| {
                    gst::loggable_error!(CAT, "cannot scale {in_info:?} to {out_info:?}: {e}")
                })?,
            )
        };
        gst::info!(
            CAT,
            imp = self,
            "{}x{} -> {}x{}{}",
            in_info.width(),
            in_info.height(),
            out_info.width(),
            out_info.height(),
            if same { " (passthrough)" } else { "" }
        );
        *lock(&self.converter) = converter;
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let converter = lock(&self.converter);
        let Some(c) = converter.as_ref() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("No scaler for the negotiated sizes")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        c.frame_ref(inframe, outframe);
        Ok(gst::FlowSuccess::Ok)
    }
}
