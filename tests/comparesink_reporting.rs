//! What `comparesink` says about what it compared: the negotiated format, alerts and their
//! thresholds, a stats file that keeps every scored pair when the pipeline stops, and the
//! worst pair's heat-map.

mod common;

use common::*;
use gst::prelude::*;

fn f64_field(s: &gst::Structure, name: &str) -> f64 {
    s.get::<f64>(name)
        .unwrap_or_else(|e| panic!("{name} in {s}: {e}"))
}

/// The `format` of the first pair when `branch` feeds both pads.
fn negotiated(branch: &str) -> String {
    init();
    let desc =
        format!("{branch} ! c.reference {branch} ! c.distorted comparesink name=c metrics=psnr");
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let run = run(&pipeline, "c", || {});
    assert_eq!(run.error, None, "{desc}");
    run.pairs[0].get::<String>("format").unwrap()
}

#[test]
fn negotiation_prefers_the_upstream_yuv_format_then_i420() {
    let src = "videotestsrc num-buffers=2";
    let size = "width=64,height=48";
    // A test source offers every format: I420, not its first (RGB) one, straight into the
    // pads or through a capsfilter.
    assert_eq!(negotiated(src), "I420");
    assert_eq!(negotiated(&format!("{src} ! video/x-raw,{size}")), "I420");
    // A converter keeps its input's YUV or grey format, at its depth.
    for format in ["Y444_10LE", "NV12", "GRAY8", "I420_12LE", "P010_10LE"] {
        let branch = format!("{src} ! video/x-raw,format={format},{size} ! videoconvert");
        assert_eq!(negotiated(&branch), format, "{branch}");
    }
    // From RGB through a converter: a YUV format, not RGB.
    let branch = format!("{src} ! video/x-raw,format=ABGR,{size} ! videoconvert");
    let format = negotiated(&branch);
    let info = gst_video::VideoFormatInfo::from_format(format.parse().unwrap());
    assert!(info.is_yuv(), "{branch}: {format}");
    // RGB when upstream offers nothing else.
    let branch = format!("{src} ! video/x-raw,format=ABGR,{size}");
    assert_eq!(negotiated(&branch), "ABGR");
}

#[test]
fn the_pads_accept_high_bit_depth_formats() {
    init();
    let sink = gst::ElementFactory::make("comparesink").build().unwrap();
    for pad in ["reference", "distorted"] {
        let caps = sink.static_pad(pad).unwrap().pad_template_caps();
        for format in [
            "I420_10LE",
            "I422_10LE",
            "Y444_10LE",
            "P010_10LE",
            "I420_12LE",
            "Y444_12LE",
            "GRAY16_LE",
        ] {
            let wanted = gst::Caps::builder("video/x-raw")
                .field("format", format)
                .build();
            assert!(caps.can_intersect(&wanted), "{pad}: {format} in {caps}");
        }
    }
}

#[test]
fn both_thresholds_alert_and_post_alert_messages() {
    let run = alternating_run("metrics=psnr+ssim threshold=0.999 psnr-threshold=60");
    assert_eq!(run.error, None);
    let alerted: Vec<bool> = run
        .pairs
        .iter()
        .map(|s| s.get::<bool>("alert").unwrap())
        .collect();
    assert_eq!(alerted, [false, true, false, true]);
    let alerts: Vec<(u64, String)> = run
        .alerts
        .iter()
        .map(|a| {
            (
                a.get::<u64>("frame").unwrap(),
                a.get::<String>("metric").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        alerts,
        [
            (1, "ssim".to_string()),
            (1, "psnr".to_string()),
            (3, "ssim".to_string()),
            (3, "psnr".to_string())
        ]
    );
    for a in &run.alerts {
        let frame = a.get::<u64>("frame").unwrap() as usize;
        let metric = a.get::<String>("metric").unwrap();
        let pair = &run.pairs[frame];
        assert_eq!(f64_field(a, "value"), f64_field(pair, &metric));
        let threshold = if metric == "ssim" { 0.999 } else { 60.0 };
        assert_eq!(f64_field(a, "threshold"), threshold);
        assert!(f64_field(a, "value") < threshold);
        assert_eq!(
            a.get::<u64>("pts").unwrap(),
            pair.get::<u64>("pts").unwrap()
        );
    }
    assert_eq!(run.summary.unwrap().get::<u64>("alerts").unwrap(), 2);

    // The PSNR threshold alone: the shifted pairs are near 10 dB, so 5 dB never alerts.
    let run = alternating_run("metrics=psnr psnr-threshold=5");
    assert_eq!(run.error, None);
    assert!(run.alerts.is_empty());
    let run = alternating_run("metrics=psnr psnr-threshold=30");
    assert_eq!(run.alerts.len(), 2);
}

#[test]
fn a_threshold_on_a_metric_not_computed_fails_at_start_up() {
    for (props, needs) in [
        (
            "metrics=psnr threshold=0.95",
            "threshold=0.95 alerts on SSIM",
        ),
        (
            "metrics=ssim psnr-threshold=30",
            "psnr-threshold=30 alerts on PSNR",
        ),
    ] {
        let run = alternating_run(props);
        let e = run.error.expect("the pipeline fails to start");
        assert!(e.contains(needs), "{props}: {e}");
        assert!(run.pairs.is_empty());
    }
}

/// Plays two endless live-like test sources into comparesink with a stats file (and a
/// heat-map next to it, `path` + `.png`), collects `similarity` messages until `n`, sets
/// the pipeline to NULL, and returns them.
fn stop_mid_stream(path: &std::path::Path, n: usize) -> Vec<gst::Structure> {
    init();
    let branch = "videotestsrc pattern=ball ! video/x-raw,format=I420,width=160,height=120";
    let desc = format!(
        "{branch} ! queue ! c.reference {branch} ! videobalance brightness=0.1 ! queue ! c.distorted \
         comparesink name=c metrics=psnr+ssim channels=all stats-file={} heatmap-location={}.png",
        path.display(),
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut pairs = Vec::new();
    while pairs.len() < n {
        let msg = bus
            .timed_pop(gst::ClockTime::from_seconds(30))
            .expect("messages");
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "similarity") {
                    pairs.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    pairs
}

#[test]
fn the_stats_file_holds_every_scored_pair_after_a_stop() {
    let dir = std::env::temp_dir().join(format!("comparesink-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["rows.csv", "rows.jsonl"] {
        let path = dir.join(name);
        let pairs = stop_mid_stream(&path, 40);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'), "every row is whole");
        let frames: Vec<u64> = if name.ends_with(".csv") {
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            assert!(header.contains(&"psnr-u") && header.contains(&"ssim-v"));
            lines
                .map(|l| l.split(',').next().unwrap().parse().unwrap())
                .collect()
        } else {
            text.lines()
                .map(|l| {
                    let row: serde_json::Value = serde_json::from_str(l).unwrap();
                    row["frame"].as_u64().unwrap()
                })
                .collect()
        };
        // Every pair posted is in the file (rows are written before the message), in order.
        assert!(
            frames.len() >= pairs.len(),
            "{} rows, {} pairs",
            frames.len(),
            pairs.len()
        );
        let expected: Vec<u64> = (0..frames.len() as u64).collect();
        assert_eq!(frames, expected);
        // The heat-map of the worst pair scored before the stop is written too.
        let (size, chunk) = heatmap_info(&dir.join(format!("{name}.png")));
        assert_eq!(size, (160, 120));
        let frame: u64 = chunk("frame").unwrap().parse().unwrap();
        assert!(frame < frames.len() as u64, "{frame}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The PNG text chunk `key` of a heat-map, and its size.
fn heatmap_info(path: &std::path::Path) -> ((u32, u32), impl Fn(&str) -> Option<String> + use<>) {
    let file = std::fs::File::open(path).unwrap();
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let info = reader.info();
    let size = (info.width, info.height);
    let chunks: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    let chunk = move |key: &str| {
        chunks
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    (size, chunk)
}

#[test]
fn the_heat_map_is_the_worst_pair_at_the_compared_size() {
    // Pair 2 differs most (alternating_run's pattern 1 is a shifted pattern 0; here pair
    // 2's distorted frame is pattern 5). Compared in a pinned 32×32 tier: 32×24.
    init();
    let dir = std::env::temp_dir().join(format!("comparesink-heatmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let info = video_info(gst_video::VideoFormat::I420, 64, 48, 25);
    let caps = info.to_caps().unwrap();
    for metrics in ["psnr+ssim", "psnr"] {
        let path = dir.join(format!("{metrics}.png"));
        let p = AppPipeline::new(
            &format!(
                "metrics={metrics} heatmap-location={} quality=low \
                 tiers=high:1024x1024:95,medium:800x800:85,low:32x32:75",
                path.display()
            ),
            &caps,
            &caps,
        );
        let reference = (0..4)
            .map(|i| timed(frame(&info, pattern(0)), Some(i * 40), Some(40)))
            .collect();
        let distorted = (0..4u64)
            .map(|i| {
                let k = [0, 1, 5, 1][i as usize];
                timed(frame(&info, pattern(k)), Some(i * 40), Some(40))
            })
            .collect();
        let run = p.run(reference, distorted);
        assert_eq!(run.error, None);
        let (size, chunk) = heatmap_info(&path);
        assert_eq!(size, (32, 24), "{metrics}");
        assert_eq!(chunk("frame").as_deref(), Some("2"), "{metrics}");
        assert_eq!(chunk("pts").as_deref(), Some("80000000"));
        let (metric, map) = if metrics.contains("ssim") {
            ("ssim", "ssim")
        } else {
            ("mse", "squared-error")
        };
        assert_eq!(chunk("metric").as_deref(), Some(metric));
        assert_eq!(chunk("map").as_deref(), Some(map));
        // The score written is the worst pair's.
        let worst = &run.pairs[2];
        let score: f64 = chunk("score").unwrap().parse().unwrap();
        let field = if metric == "ssim" { "ssim" } else { "psnr" };
        let value = f64_field(worst, field);
        if metric == "ssim" {
            assert_eq!(score, value);
        } else {
            // PSNR from the MSE written: 10·log10(255² / MSE).
            assert!((10.0 * (255.0f64 * 255.0 / score).log10() - value).abs() < 1e-9);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_heat_map_fails_at_start_up() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=1 ! c.reference videotestsrc num-buffers=1 ! c.distorted \
         comparesink name=c heatmap-location=/nonexistent-dir/heat.png",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let run = run(&pipeline, "c", || {});
    let error = run.error.expect("an error");
    assert!(error.contains("/nonexistent-dir/heat.png"), "{error}");
    assert!(run.pairs.is_empty());
}
