//! The `gpucompare` command: its numbers against the element's and the fixtures' (scikit-
//! image, pytorch_msssim, FFmpeg), its outputs, its exit codes, the heat-map and the plot.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gst::prelude::*;
use serde_json::Value;

/// A scratch directory for one test, removed when it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("gpucompare-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gpucompare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpucompare"))
        .args(args)
        .output()
        .expect("gpucompare runs")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Runs the command with `--json` and returns its document, checking it exited with 0.
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = gpucompare(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// comparesink's scores of two files, in a pipeline built here.
fn element_scores(reference: &str, distorted: &str, props: &str) -> gst::Structure {
    common::init();
    let description = format!(
        "comparesink name=cmp {props} \
         filesrc location={reference} ! decodebin ! queue ! cmp.reference \
         filesrc location={distorted} ! decodebin ! queue ! cmp.distorted"
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let run = common::run(&pipeline, "cmp", || {});
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 1);
    run.pairs[0].clone()
}

#[test]
fn png_pairs_give_the_elements_numbers_and_scikit_images() {
    for case in ["gray_200x180", "rgb_odd_171x165"] {
        let (r, d) = (
            fixture(&format!("{case}_ref.png")),
            fixture(&format!("{case}_dist.png")),
        );
        let doc = json(&[&r, &d, "--metrics", "psnr+ssim+ms-ssim"]);
        let frames = doc["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 1);
        let element = element_scores(&r, &d, "metrics=psnr+ssim+ms-ssim");
        let expected = common::expected(case, "luma");
        for (field, key) in [("psnr", "psnr"), ("ssim", "ssim"), ("ms-ssim", "ms_ssim")] {
            let got = number(&frames[0][field]);
            // The same number, up to JSON's last digit.
            let theirs = element.get::<f64>(field).unwrap();
            assert!(
                (got - theirs).abs() < 1e-12,
                "{case} {field}: {got} vs {theirs}"
            );
            let reference = expected[key].as_f64().unwrap();
            assert!(
                (got - reference).abs() < 1e-4,
                "{case} {field}: {got} vs {reference}"
            );
        }
        assert_eq!(number(&doc["summary"]["frames"]), 1.0);
        assert_eq!(doc["passed"], true);
    }
}

/// Frames in the test videos, at 12 fps: Matroska's 1 ms timestamps round those.
const FRAMES: usize = 12;

/// Encodes the test pattern with `encoder` (an encoder and a muxer) into `path`.
fn encode(path: &Path, encoder: &str) {
    common::init();
    let description = format!(
        "videotestsrc num-buffers={FRAMES} pattern=smpte ! \
         video/x-raw,format=I420,width=160,height=96,framerate=12/1 ! \
         {encoder} ! filesink location={}",
        path.display()
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("encoding ends");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A reference in motion JPEG (AVI, exact timestamps) and an encode in VP8 (WebM,
/// timestamps rounded to 1 ms).
fn videos(dir: &Scratch) -> (String, String) {
    let (r, d) = (dir.path("ref.avi"), dir.path("dist.webm"));
    encode(&r, "jpegenc quality=98 ! avimux");
    encode(&d, "vp8enc target-bitrate=100000 deadline=1 ! webmmux");
    (r.display().to_string(), d.display().to_string())
}

#[test]
fn two_videos_give_a_summary_and_every_frame_in_json() {
    let dir = Scratch::new("videos");
    let (r, d) = videos(&dir);
    let out = gpucompare(&[&r, &d, "--frames"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines = stdout.lines().filter(|l| l.starts_with("frame")).count();
    assert_eq!(lines, FRAMES, "{stdout}");
    // Every frame paired, though the two containers time them differently.
    assert!(stdout.contains(&format!("{FRAMES} pairs in")), "{stdout}");
    assert!(!stdout.contains("unpaired"), "{stdout}");
    assert!(stdout.contains("compared 160x96 I420 (luma)"), "{stdout}");
    let mean_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("ssim"))
        .unwrap();
    assert!(mean_line.contains("mean"), "{stdout}");

    let doc = json(&[&r, &d]);
    let frames = doc["frames"].as_array().unwrap();
    assert_eq!(frames.len(), FRAMES);
    let mut ssims = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(number(&f["frame"]), i as f64);
        // The reference's pts, and the distorted frame's (WebM: rounded to 1 ms).
        let pts = number(&f["pts"]);
        assert!(
            (pts - i as f64 * 1e9 / 12.0).abs() < 1.0,
            "frame {i}: {pts}"
        );
        let distorted = number(&f["distorted-pts"]);
        assert!(
            (distorted - pts).abs() <= 1e6,
            "frame {i}: {distorted} vs {pts}"
        );
        let ssim = number(&f["ssim"]);
        assert!(ssim > 0.3 && ssim < 1.0, "{f}");
        ssims.push(ssim);
        assert!(number(&f["psnr"]).is_finite());
    }
    let summary = &doc["summary"];
    assert_eq!(number(&summary["frames"]), FRAMES as f64);
    assert_eq!(number(&summary["unpaired-reference"]), 0.0);
    assert_eq!(number(&summary["unpaired-distorted"]), 0.0);
    let mean = ssims.iter().sum::<f64>() / FRAMES as f64;
    assert!((number(&summary["ssim-mean"]) - mean).abs() < 1e-12);
}

#[test]
fn fail_below_exits_1_when_a_pooled_mean_is_below() {
    let (r, d) = (
        fixture("gray_200x180_ref.png"),
        fixture("gray_200x180_dist.png"),
    );
    // SSIM 0.5688, PSNR 24.07 dB (scikit-image, numpy).
    let pass = gpucompare(&[
        &r,
        &d,
        "--fail-below",
        "ssim=0.5",
        "--fail-below",
        "psnr=24",
    ]);
    assert_eq!(pass.status.code(), Some(0), "{}", text(&pass.stdout));
    let fail = gpucompare(&[
        &r,
        &d,
        "--fail-below",
        "ssim=0.5",
        "--fail-below",
        "psnr=30",
    ]);
    assert_eq!(fail.status.code(), Some(1));
    let stdout = text(&fail.stdout);
    assert!(
        stdout.contains("psnr mean 24.0695 is below 30: FAIL"),
        "{stdout}"
    );
    assert!(stdout.contains("ssim mean 0.5688 >= 0.5: pass"), "{stdout}");
    // A metric left out of --metrics is computed for its check.
    let ms = gpucompare(&[&r, &d, "--metrics", "psnr", "--fail-below", "ms-ssim=0.96"]);
    assert_eq!(ms.status.code(), Some(1));
    assert!(text(&ms.stdout).contains("ms-ssim mean 0.9510 is below 0.96"));
    // The JSON document says the same.
    let out = gpucompare(&[&r, &d, "--json", "--fail-below", "ssim=0.6"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["checks"][0]["metric"], "ssim");
}

#[test]
fn bad_inputs_and_options_exit_2_with_a_message() {
    let (r, d) = (
        fixture("gray_200x180_ref.png"),
        fixture("gray_200x180_dist.png"),
    );
    let not_media = fixture("expected.json");
    let cases: [(&[&str], &str); 7] = [
        (
            &["missing.png", &d],
            "cannot read 'missing.png': no such file",
        ),
        (&[&r, &not_media], "text file"),
        (
            &[&r, &d, "--metrics", "lpips"],
            "--metrics lpips: not a valid value",
        ),
        (
            &[&r, &d, "--batch-size", "0"],
            "--batch-size 0: not a valid value: out of range",
        ),
        (&[&r, &d, "--fail-below", "ssim"], "is not METRIC=VALUE"),
        (&[&r, &d, "--device", "tpu"], "tpu"),
        (&[&r], "required"),
    ];
    for (args, message) in cases {
        let out = gpucompare(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A textured grey frame, and the same with a box blur inside the square [40, 80)².
fn blurred_square_pair(dir: &Scratch) -> (String, String) {
    let (w, h) = (128u32, 112u32);
    let a = image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([((x * 37 + y * 91 + (x * y) % 23) % 256) as u8])
    });
    let mut b = a.clone();
    for y in 40..80 {
        for x in 40..80 {
            let mut sum = 0u32;
            for dy in 0..5 {
                for dx in 0..5 {
                    sum += a.get_pixel(x + dx - 2, y + dy - 2)[0] as u32;
                }
            }
            b.put_pixel(x, y, image::Luma([(sum / 25) as u8]));
        }
    }
    let (r, d) = (dir.path("square_ref.png"), dir.path("square_dist.png"));
    a.save(&r).unwrap();
    b.save(&d).unwrap();
    (r.display().to_string(), d.display().to_string())
}

#[test]
fn the_heat_map_is_darkest_inside_the_blurred_square_with_both_backends() {
    let dir = Scratch::new("heatmap");
    let (r, d) = blurred_square_pair(&dir);
    for backend in common::backend_settings() {
        let heatmap = dir.path("heat.png").display().to_string();
        let mut args = vec![r.as_str(), d.as_str(), "--heatmap", heatmap.as_str()];
        let options: Vec<String> = backend
            .split(' ')
            .flat_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                [format!("--{k}"), v.to_string()]
            })
            .collect();
        args.extend(options.iter().map(String::as_str));
        let out = gpucompare(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{backend}: {}",
            text(&out.stderr)
        );
        let file = std::fs::File::open(&heatmap).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(file));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info().clone();
        // The compared size.
        assert_eq!((info.width, info.height), (128, 112), "{backend}");
        let text_chunk = |key: &str| {
            info.uncompressed_latin1_text
                .iter()
                .find(|t| t.keyword == key)
                .map(|t| t.text.clone())
        };
        assert_eq!(text_chunk("frame").as_deref(), Some("0"));
        assert_eq!(text_chunk("metric").as_deref(), Some("ssim"));
        let mut rgb = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut rgb).unwrap();
        let luma = |x: usize, y: usize| {
            let p = &rgb[(y * 128 + x) * 3..][..3];
            0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
        };
        // Inside the valid region (5 pixels in): the darkest pixel is in the square.
        let mut darkest = (0, 0, f64::MAX);
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        for y in 5..107 {
            for x in 5..123 {
                let l = luma(x, y);
                if l < darkest.2 {
                    darkest = (x, y, l);
                }
                let near = |v: usize| (35..85).contains(&v);
                if (40..80).contains(&x) && (40..80).contains(&y) {
                    inside.push(l);
                } else if !(near(x) && near(y)) {
                    outside.push(l);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            (40..80).contains(&darkest.0) && (40..80).contains(&darkest.1),
            "{backend}: darkest at {darkest:?}"
        );
        assert!(mean(&inside) + 50.0 < mean(&outside), "{backend}");
        // The margin SSIM's window cannot reach is hatched grey.
        let corner = &rgb[..3];
        assert!(
            corner[0] == corner[1] && corner[1] == corner[2],
            "{corner:?}"
        );
    }
}

/// The `<polyline>`s of an SVG document with exactly `n` points.
fn polylines_with(svg: &str, n: usize) -> usize {
    let doc = roxmltree::Document::parse(svg).expect("the plot is SVG");
    doc.descendants()
        .filter(|e| e.has_tag_name("polyline"))
        .filter(|e| e.attribute("points").map(|p| p.split_whitespace().count()) == Some(n))
        .count()
}

#[test]
fn the_plot_has_one_series_per_metric_with_a_point_per_frame() {
    let dir = Scratch::new("plot");
    let (r, d) = videos(&dir);
    let (plot, stats) = (dir.path("scores.svg"), dir.path("scores.csv"));
    let out = gpucompare(&[
        &r,
        &d,
        "--metrics",
        "psnr+ssim+ms-ssim",
        "--threshold",
        "0.99",
        "--plot",
        plot.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&plot).unwrap();
    let lines = polylines_with(&svg, FRAMES);
    assert_eq!(lines, 3, "one line of a point per frame for each metric");
    assert!(svg.contains("threshold 0.99"));
    assert!(
        svg.contains(&format!("alert ({FRAMES})")),
        "every SSIM is below 0.99"
    );
    assert!(svg.contains("ssim (mean "));
    // The same plot from the stats file.
    let again = dir.path("again.svg");
    let out = gpucompare(&[
        "plot",
        stats.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
        "--threshold",
        "0.99",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&again).unwrap();
    assert_eq!(polylines_with(&svg, FRAMES), 3);
    assert!(svg.contains(&format!("alert ({FRAMES})")));
    // PNG by extension.
    let png_plot = dir.path("scores.png");
    let out = gpucompare(&[
        "plot",
        stats.to_str().unwrap(),
        "-o",
        png_plot.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::read(&png_plot).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn raw_yuv_frames_score_as_ffmpeg_does() {
    let e = common::video_expected();
    let doc = json(&[
        &fixture("video/planes_ref.yuv"),
        &fixture("video/planes_dist.yuv"),
        "--size",
        "96x64",
        "--format",
        "i420",
        "--fps",
        "25",
        "--channels",
        "all",
        "--metrics",
        "psnr",
    ]);
    let frames = doc["frames"].as_array().unwrap();
    let ffmpeg = e["ffmpeg_planes"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), ffmpeg.len());
    for (i, (f, expected)) in frames.iter().zip(ffmpeg).enumerate() {
        assert_eq!(number(&f["pts"]), i as f64 * 4e7);
        for plane in ["y", "u", "v"] {
            let got = number(&f[format!("psnr-{plane}").as_str()]);
            let want = expected[plane].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-4,
                "frame {i} {plane}: {got} vs {want}"
            );
        }
    }
    // A size that does not divide the file is reported, not scored.
    let out = gpucompare(&[
        &fixture("video/planes_ref.yuv"),
        &fixture("video/planes_dist.yuv"),
        "--size",
        "0x64",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--model`: the model's score of each pair (PyTorch's, from the fixture), what it saw,
/// and its pooled mean and name in the summary, in JSON and in the text report.
#[cfg(feature = "torch")]
#[test]
fn a_model_scores_raw_rgb_frames_as_pytorch_does() {
    let dir = Scratch::new("model");
    let model = |name: &str| fixture(&format!("model/{name}"));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(model("expected.json")).unwrap()).unwrap();
    let frame = 96 * 64 * 3;
    let data = std::fs::read(model("frames.rgb")).unwrap();
    let (mut reference, mut distorted) = (Vec::new(), Vec::new());
    for pair in data.chunks(2 * frame) {
        reference.extend_from_slice(&pair[..frame]);
        distorted.extend_from_slice(&pair[frame..]);
    }
    let (r, d) = (dir.path("ref.rgb"), dir.path("dist.rgb"));
    std::fs::write(&r, reference).unwrap();
    std::fs::write(&d, distorted).unwrap();
    let (r, d) = (r.to_str().unwrap(), d.to_str().unwrap());
    let args = [
        r,
        d,
        "--size",
        "96x64",
        "--format",
        "rgb",
        "--metrics",
        "psnr",
        "--model",
        &model("pair.pt"),
    ];
    let doc = json(&args);
    let want: Vec<f64> = expected["pair"]["native"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let frames = doc["frames"].as_array().unwrap();
    assert_eq!(frames.len(), want.len());
    for (i, (f, want)) in frames.iter().zip(&want).enumerate() {
        let got = number(&f["model"]);
        assert!((got - want).abs() < 1e-4, "pair {i}: {got} vs {want}");
        assert_eq!(f["model-tier"], "high");
        assert_eq!(
            (number(&f["model-width"]), number(&f["model-height"])),
            (96.0, 64.0)
        );
        assert!(number(&f["psnr"]) > 0.0);
    }
    let summary = &doc["summary"];
    assert_eq!(summary["model-name"], "pair");
    let mean = want.iter().sum::<f64>() / want.len() as f64;
    assert!((number(&summary["model-mean"]) - mean).abs() < 1e-4);
    // The text report: the model's line, and its values in the pooled table and per pair.
    let mut text_args = args.to_vec();
    text_args.push("--frames");
    let out = gpucompare(&text_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("model pair saw 96x64 (tier high)"),
        "{report}"
    );
    assert!(report.contains("  model    mean"), "{report}");
    assert_eq!(report.matches("  model 0.").count(), 3, "{report}");
}
