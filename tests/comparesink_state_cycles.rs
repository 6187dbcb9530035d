//! 1,000 NULL↔PLAYING cycles of a comparesink pipeline: resident memory does not grow.
//! A test binary of its own, so that no other test allocates in the process meanwhile.

mod common;

use gst::prelude::*;

/// Resident memory of this process in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn cycle(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Playing).expect("plays");
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(5));
    assert!(result.is_ok(), "{result:?}");
    pipeline.set_state(gst::State::Null).expect("stops");
}

#[test]
fn a_thousand_state_cycles_keep_resident_memory_flat() {
    // One malloc arena: with one per thread, a streaming thread that lands on a fresh
    // arena makes the resident size jump by what that arena touches, whatever leaks.
    // SAFETY: mallopt only changes allocator parameters; nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    common::init();
    let caps = "video/x-raw,format=I420,width=64,height=48,framerate=100/1";
    let pipeline = gst::parse::launch(&format!(
        "comparesink name=c metrics=psnr+ssim+ms-ssim \
         videotestsrc ! {caps} ! queue ! c.reference \
         videotestsrc pattern=ball ! {caps} ! queue ! c.distorted"
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    // Warm-up: caches, thread pools and the allocator's arenas settle first.
    for _ in 0..500 {
        cycle(&pipeline);
    }
    let before = resident();
    for i in 0..1000 {
        cycle(&pipeline);
        if std::env::var("TRACE_RSS").is_ok() && i % 100 == 99 {
            eprintln!("{i}: {}", resident() as i64 - before as i64);
        }
    }
    let grown = resident().saturating_sub(before);
    eprintln!("resident memory grew by {grown} bytes over 1,000 cycles");
    assert!(grown < 1 << 20, "grew by {grown} bytes");
}
