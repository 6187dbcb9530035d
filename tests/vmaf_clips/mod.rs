//! The VMAF fixture clips' files: checked in under tests/fixtures/vmaf, or, for the clips
//! too large to check in, made again with FFmpeg from the arguments in expected.json and
//! checked against the hash the fixture script recorded.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vmaf");

pub fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/expected.json")).expect("fixtures");
    serde_json::from_str(&text).expect("fixtures are JSON")
}

/// The 64-bit FNV-1a hash, as the fixture script computes it.
fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The path of a clip's `reference` or `distorted` file.
pub fn clip_file(clip: &Value, key: &str) -> PathBuf {
    let name = clip[key].as_str().expect("clip file name");
    let Some(generate) = clip.get("generate") else {
        return PathBuf::from(format!("{FIXTURES}/{name}"));
    };
    let hash = clip["fnv1a64"][key].as_str().expect("clip hash");
    let dir = std::env::temp_dir().join("gpucompare-vmaf-fixtures");
    let path = dir.join(format!("{hash}-{name}"));
    if std::fs::read(&path).is_ok_and(|d| fnv1a64(&d) == hash) {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("a folder for the made clips");
    // The distorted clip is made from the reference.
    let reference = (key == "distorted").then(|| clip_file(clip, "reference"));
    let args: Vec<String> = generate[key]
        .as_array()
        .expect("FFmpeg arguments")
        .iter()
        .filter_map(Value::as_str)
        .map(|a| match &reference {
            Some(r) => a.replace("{ref}", &r.to_string_lossy()),
            None => a.to_string(),
        })
        .collect();
    // Written aside and renamed: tests running side by side never read half a file.
    let partial = dir.join(format!("{hash}-{name}.{}", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(&args)
        .arg(&partial)
        .status()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
    let made = std::fs::read(&partial).expect("the clip FFmpeg made");
    assert_eq!(
        fnv1a64(&made),
        hash,
        "FFmpeg made a different {name} than the fixture script's FFmpeg did: regenerate the \
         fixtures (tests/fixtures/generate_vmaf.py) with this FFmpeg"
    );
    std::fs::rename(&partial, &path).expect("the made clip in place");
    path
}
