use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use super::CAT;
use crate::memory::{Reading, SimulatedUsage, TierTracker};
use crate::messages::VramTier;
use crate::tier_settings::{TierSettings, fit_in_tier};

const DEFAULT_POLL_INTERVAL_NS: u64 = 100_000_000;
const DEFAULT_METHOD: gst_video::VideoResamplerMethod = gst_video::VideoResamplerMethod::Linear;

#[derive(Debug, Clone)]
struct Settings {
    tier: TierSettings,
    device_index: u32,
    poll_interval_ns: u64,
    method: gst_video::VideoResamplerMethod,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tier: TierSettings::default(),
            device_index: 0,
            poll_interval_ns: DEFAULT_POLL_INTERVAL_NS,
            method: DEFAULT_METHOD,
        }
    }
}

/// Per-stream state, from start to stop.
struct State {
    tracker: TierTracker,
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
        Some(fit_in_tier(info, self.tracker.tier()))
    }

    fn report(&self) -> TierReport {
        let tier = self.tracker.tier();
        TierReport {
            tier: tier.name.clone(),
            quality: tier.quality,
            reading: self.tracker.reading(),
            size: self.output_size(),
        }
    }
}

impl VramScale {
    fn post_tier(&self, r: &TierReport, running_time: Option<gst::ClockTime>) {
        let (width, height) = r.size.unwrap_or((0, 0));
        let tier = VramTier {
            tier: r.tier.clone(),
            usage: r.reading.usage,
            used_bytes: r.reading.used_bytes,
            total_bytes: r.reading.total_bytes,
            source: r.reading.source.name().into(),
            width,
            height,
            quality: r.quality,
            running_time,
        };
        let s = gst::Structure::from(&tier);
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
            let mut props = vec![
                glib::ParamSpecUInt::builder("device-index")
                    .nick("Device index")
                    .blurb("Index of the GPU whose memory is watched")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("poll-interval")
                    .nick("Poll interval (ns)")
                    .blurb(
                        "How often NVML or CUDA is read, in nanoseconds (off the streaming thread)",
                    )
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
            props.extend(TierSettings::properties(
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
        if s.tier.set(pspec.name(), value) {
            if let Err(e) = s.tier.table() {
                // Refused again, as an error, when the element starts.
                gst::warning!(CAT, imp = self, "{e}");
            }
            gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
            return;
        }
        match pspec.name() {
            "device-index" => s.device_index = value.get().unwrap_or(0),
            "poll-interval" => s.poll_interval_ns = value.get().unwrap_or(DEFAULT_POLL_INTERVAL_NS),
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
                    .map(|st| st.tracker.tier().name.clone())
                    .to_value();
            }
            "usage" => {
                return lock(&self.state)
                    .as_ref()
                    .map_or(0.0, |st| st.tracker.reading().usage)
                    .to_value();
            }
            _ => {}
        }
        let s = lock(&self.settings);
        if let Some(v) = s.tier.get(pspec.name()) {
            return v;
        }
        match pspec.name() {
            "device-index" => s.device_index.to_value(),
            "poll-interval" => s.poll_interval_ns.to_value(),
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
        let tracker = settings
            .tier
            .tracker(
                settings.device_index,
                Duration::from_nanos(settings.poll_interval_ns),
                &self.simulated,
            )
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        let monitor = tracker.monitor();
        if let Some(reason) = &monitor.fallback_reason {
            gst::info!(CAT, imp = self, "{reason}");
        }
        gst::info!(
            CAT,
            imp = self,
            "watching GPU {} through {}, tiers {}",
            settings.device_index,
            monitor.kind().name(),
            tracker.table()
        );
        *lock(&self.state) = Some(State {
            tracker,
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
            let mut reports = Vec::new();
            if !st.announced {
                // The tier it started at, with the reading of this first frame.
                st.announced = true;
                let mut first = st.report();
                first.reading = st.tracker.latest();
                reports.push(first);
            }
            let update = st.tracker.update(Instant::now());
            if update.is_some() {
                gst::debug!(
                    CAT,
                    imp = self,
                    "usage {:.3}: tier {}",
                    st.tracker.reading().usage,
                    st.tracker.tier().name
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
