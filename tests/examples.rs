//! The README's examples run as a user would: the Python example (PyGObject) on still
//! images and on live streams stopped with Ctrl-C, and the still-image pipeline.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// A plugin directory holding only the plugin these tests were built with (cargo builds it
/// next to them), and a registry of its own.
fn plugin_env() -> Vec<(String, PathBuf)> {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(plugin_dir);
    vec![
        ("GST_PLUGIN_PATH".into(), dir.clone()),
        ("GST_REGISTRY".into(), dir.join("registry.bin")),
    ]
}

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let plugin = exe
        .parent()
        .expect("deps directory")
        .join("libgstgpucompare.so");
    assert!(plugin.exists(), "{} was not built", plugin.display());
    let dir = std::env::temp_dir().join(format!("gpucompare-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("libgstgpucompare.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&plugin, &link).unwrap();
    dir
}

/// Debian's python3 has PyGObject (python3-gi, installed by scripts/setup.sh); another
/// python3 first on the PATH may not.
fn python() -> &'static str {
    let has_gi = |p: &str| {
        Command::new(p)
            .args(["-c", "import gi"])
            .status()
            .is_ok_and(|s| s.success())
    };
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| has_gi(p))
        .expect("a python3 with PyGObject (Debian: python3-gi; scripts/setup.sh installs it)")
}

fn example(args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(format!(
        "{}/examples/compare.py",
        env!("CARGO_MANIFEST_DIR")
    ))
    .args(args)
    .envs(plugin_env())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}.png", env!("CARGO_MANIFEST_DIR"))
}

/// `name=value` from a line the example printed.
fn value(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn python_example_compares_two_images() {
    init();
    let out = example(&[
        &fixture("rgb_odd_171x165_ref"),
        &fixture("rgb_odd_171x165_dist"),
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = stdout
        .lines()
        .find(|l| l.starts_with("frame 0 RGB"))
        .expect(&stdout);
    let e = expected("rgb_odd_171x165", "luma");
    // Printed with four decimals.
    assert!((value(frame, "psnr") - e["psnr"].as_f64().unwrap()).abs() < 1e-3);
    assert!((value(frame, "ssim") - e["ssim"].as_f64().unwrap()).abs() < 2e-4);
    assert!(stdout.contains("summary similarity-summary, frames=(guint64)1"));
}

#[test]
fn python_example_ends_live_streams_cleanly_on_ctrl_c() {
    let mut child = example(&[]).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("frame"))
        .count()
        < 5
    {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => lines.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no frames from the live example ({e}): {lines:?}");
            }
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    // The stream drains: the summary comes, then the example exits by itself.
    let summary = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("summary") => break line,
            Ok(line) => lines.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no summary after Ctrl-C ({e}): {lines:?}");
            }
        }
    };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let frames: u64 = summary
        .split("frames=(guint64)")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .expect(&summary);
    assert!(frames >= 5, "{summary}");
    // Live test streams negotiate I420 (see the negotiation tests).
    assert!(
        lines.iter().any(|l| l.starts_with("frame 0 I420")),
        "{lines:?}"
    );
}

/// The README's still-image pipeline, on two fixture images.
#[test]
fn readme_still_image_pipeline() {
    init();
    let desc = format!(
        "comparesink name=cmp metrics=psnr+ssim+ms-ssim \
         filesrc location={} ! decodebin ! queue ! cmp.reference \
         filesrc location={} ! decodebin ! queue ! cmp.distorted",
        fixture("rgb_odd_171x165_ref"),
        fixture("rgb_odd_171x165_dist")
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let run = run(&pipeline, "cmp", || {});
    assert_eq!(run.error, None);
    assert_eq!(run.pairs.len(), 1);
    let s = &run.pairs[0];
    let e = expected("rgb_odd_171x165", "luma");
    assert_eq!(s.get::<&str>("format").unwrap(), "RGB");
    for (field, key) in [("psnr", "psnr"), ("ssim", "ssim"), ("ms-ssim", "ms_ssim")] {
        let got = s.get::<f64>(field).unwrap();
        let want = e[key].as_f64().unwrap();
        assert!((got - want).abs() < 1e-3, "{field}: {got} vs {want}");
    }
}
