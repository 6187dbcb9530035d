//! comparesink through gst-validate's kind of scenarios: pause and resume in every mode
//! (sync or not, live or not, either branch lagging, both backends), a flushing seek while
//! paused, sustained allocation failures, live overload with skipping and sub-sampling,
//! and the stall warning. Frames are small so that the suite runs in CI.

mod common;
mod lifecycle;

use std::time::Duration;

use gst::prelude::*;
use lifecycle::{Watched, u64_field};

/// Frames per second of every source here: one frame every 10 ms.
const FPS: u64 = 100;
const FRAME_NS: u64 = 1_000_000_000 / FPS;

fn caps(w: u32, h: u32) -> String {
    format!("video/x-raw,format=I420,width={w},height={h},framerate={FPS}/1")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lagging {
    Reference,
    Distorted,
}

/// Two test sources into `comparesink name=c {props}`; the lagging branch is slower (a
/// sleep per frame) and later (a queue holding 200 ms).
fn two_sources(props: &str, live: bool, lagging: Option<Lagging>, extra: &str) -> String {
    let caps = caps(64, 48);
    let lag = |side| {
        if lagging == Some(side) {
            "identity sleep-time=2000 ! queue min-threshold-time=200000000 max-size-time=0 max-size-buffers=0 max-size-bytes=0 !"
        } else {
            "queue !"
        }
    };
    format!(
        "comparesink name=c {props} \
         videotestsrc is-live={live} {extra} ! {caps} ! {} c.reference \
         videotestsrc is-live={live} pattern=ball {extra} ! {caps} ! {} c.distorted",
        lag(Lagging::Reference),
        lag(Lagging::Distorted)
    )
}

/// Pauses and resumes a playing pipeline five times. Each pause completes (or reports no
/// preroll, live), each resume brings new pairs, and in a non-live pipeline no frame is
/// lost: pairs come at every frame time, numbered without gaps.
fn pause_resume(backend: &str, sync: bool, live: bool, lagging: Lagging) {
    let desc = two_sources(
        &format!("backend={backend} device=cpu sync={sync}"),
        live,
        Some(lagging),
        "",
    );
    let w = Watched::launch(&desc, |_, _| {});
    w.go(gst::State::Playing).expect("plays");
    assert!(
        w.wait_until(Duration::from_secs(10), |p| p.pairs.len() >= 5),
        "first pairs"
    );
    for cycle in 0..5 {
        let paused = w.go(gst::State::Paused);
        let expected = if live {
            gst::StateChangeSuccess::NoPreroll
        } else {
            gst::StateChangeSuccess::Success
        };
        assert_eq!(paused, Ok(expected), "cycle {cycle}: PAUSED completes");
        std::thread::sleep(Duration::from_millis(30));
        let before = w.pairs();
        w.go(gst::State::Playing).expect("plays again");
        assert!(
            w.wait_until(Duration::from_secs(10), |p| p.pairs.len() >= before + 5),
            "cycle {cycle}: pairs after resuming ({before} before, {} now)",
            w.pairs()
        );
    }
    w.go(gst::State::Null).expect("stops");
    let p = w.posted();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    for (i, s) in p.pairs.iter().enumerate() {
        assert_eq!(
            u64_field(s, "frame"),
            i as u64,
            "frames numbered without gaps"
        );
        if !live {
            assert_eq!(
                u64_field(s, "pts"),
                i as u64 * FRAME_NS,
                "frame {i}: none lost"
            );
            assert_eq!(u64_field(s, "distorted-pts"), i as u64 * FRAME_NS);
        }
    }
}

macro_rules! pause_resume_tests {
    ($($name:ident: $backend:expr, $sync:expr, $live:expr, $lagging:expr;)*) => {
        $(
            #[test]
            fn $name() {
                pause_resume($backend, $sync, $live, $lagging);
            }
        )*
    };
}

pause_resume_tests! {
    pause_resume_native_async_file_reference_lags: "native", false, false, Lagging::Reference;
    pause_resume_native_async_file_distorted_lags: "native", false, false, Lagging::Distorted;
    pause_resume_native_sync_file_reference_lags: "native", true, false, Lagging::Reference;
    pause_resume_native_sync_file_distorted_lags: "native", true, false, Lagging::Distorted;
    pause_resume_native_async_live_reference_lags: "native", false, true, Lagging::Reference;
    pause_resume_native_async_live_distorted_lags: "native", false, true, Lagging::Distorted;
    pause_resume_native_sync_live_reference_lags: "native", true, true, Lagging::Reference;
    pause_resume_native_sync_live_distorted_lags: "native", true, true, Lagging::Distorted;
}

#[cfg(feature = "torch")]
mod libtorch {
    use super::*;

    pause_resume_tests! {
        pause_resume_libtorch_async_file_reference_lags: "libtorch", false, false, Lagging::Reference;
        pause_resume_libtorch_async_file_distorted_lags: "libtorch", false, false, Lagging::Distorted;
        pause_resume_libtorch_sync_file_reference_lags: "libtorch", true, false, Lagging::Reference;
        pause_resume_libtorch_sync_file_distorted_lags: "libtorch", true, false, Lagging::Distorted;
        pause_resume_libtorch_async_live_reference_lags: "libtorch", false, true, Lagging::Reference;
        pause_resume_libtorch_async_live_distorted_lags: "libtorch", false, true, Lagging::Distorted;
        pause_resume_libtorch_sync_live_reference_lags: "libtorch", true, true, Lagging::Reference;
        pause_resume_libtorch_sync_live_distorted_lags: "libtorch", true, true, Lagging::Distorted;
    }
}

#[test]
fn a_flushing_seek_while_paused_restarts_both_pads_at_the_seek_position() {
    let w = Watched::launch(&two_sources("", false, None, ""), |_, _| {});
    let target = gst::ClockTime::from_seconds(2);
    let pairs = w.seek_while_paused(target);
    // Pairs made before the seek are still scored (nothing received is lost), then pairs
    // start at the seek position, the two pads paired frame for frame.
    let pts: Vec<(u64, u64)> = pairs
        .iter()
        .map(|s| (u64_field(s, "pts"), u64_field(s, "distorted-pts")))
        .collect();
    let seek = pts
        .iter()
        .position(|(r, _)| *r >= target.nseconds())
        .expect("pairs after the seek");
    assert!(seek >= 10, "{pts:?}");
    for (i, (r, d)) in pts[..seek].iter().enumerate() {
        assert_eq!((*r, *d), (i as u64 * FRAME_NS, *r), "{pts:?}");
    }
    for (i, (r, d)) in pts[seek..].iter().enumerate() {
        assert_eq!(
            (*r, *d),
            (target.nseconds() + i as u64 * FRAME_NS, *r),
            "{pts:?}"
        );
    }
}

#[test]
#[cfg(feature = "torch")]
fn sustained_allocation_failures_lose_no_pair_and_post_no_error() {
    let desc = two_sources(
        "backend=libtorch device=cpu batch-size=1 metrics=psnr+ssim+ms-ssim",
        false,
        None,
        "num-buffers=200",
    );
    // One allocation failure every five pairs, for the whole stream.
    let w = Watched::launch(&desc, |sink, s| {
        if u64_field(s, "frame") % 5 == 4 {
            sink.set_property("inject-allocation-failures", 1u32);
        }
    });
    w.play_to_eos(Duration::from_secs(60));
    let p = w.posted();
    assert_eq!(p.frames(), (0..200).collect::<Vec<_>>());
    assert!(p.pairs.iter().all(|s| s.get::<f64>("ms-ssim").is_ok()));
    let summary = p.summary.as_ref().expect("summary");
    assert!(u64_field(summary, "oom-recoveries") >= 39, "{summary}");
}

#[test]
fn subsample_scores_one_pair_in_n_and_counts_the_others() {
    let desc = two_sources("subsample=3", false, None, "num-buffers=20");
    let w = Watched::launch(&desc, |_, _| {});
    w.play_to_eos(Duration::from_secs(30));
    let p = w.posted();
    assert_eq!(p.frames(), [0, 3, 6, 9, 12, 15, 18]);
    let summary = p.summary.as_ref().expect("summary");
    assert_eq!(u64_field(summary, "frames"), 7);
    assert_eq!(u64_field(summary, "subsampled"), 13);
    assert_eq!(u64_field(summary, "skipped"), 0);
}

/// How far behind the pipeline's running time the last scored pair was when posted, in
/// ns.
fn lateness_of_posted_pairs(w: &Watched) -> u64 {
    let now = w
        .pipeline
        .current_running_time()
        .map_or(0, |t| t.nseconds());
    let p = w.posted();
    p.pairs
        .last()
        .map_or(0, |s| now.saturating_sub(u64_field(s, "running-time")))
}

#[test]
#[cfg(feature = "torch")]
fn an_overloaded_live_pipeline_skips_late_pairs_and_keeps_up() {
    // 640x360 at 60 frames/s with every metric on libtorch's CPU device: several times
    // slower than real time here. Without skipping, the last pairs would be scored
    // seconds after their running time.
    let caps = "video/x-raw,format=I420,width=640,height=360,framerate=60/1";
    let unbounded = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0";
    let desc = format!(
        "comparesink name=c backend=libtorch device=cpu metrics=psnr+ssim+ms-ssim max-lateness=300000000 \
         videotestsrc is-live=true num-buffers=300 ! {caps} ! {unbounded} ! c.reference \
         videotestsrc is-live=true num-buffers=300 pattern=ball ! {caps} ! {unbounded} ! c.distorted"
    );
    // How late each pair was when its message was posted.
    let lateness = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = lateness.clone();
    let w = Watched::launch(&desc, move |sink, s| {
        if let Some(now) = sink.current_running_time() {
            let late = now.nseconds().saturating_sub(u64_field(s, "running-time"));
            l.lock().unwrap().push(late);
        }
    });
    w.play_to_eos(Duration::from_secs(60));
    let p = w.posted();
    let summary = p.summary.as_ref().expect("summary");
    let (scored, skipped) = (u64_field(summary, "frames"), u64_field(summary, "skipped"));
    // Every frame is scored or skipped, but a frame at either end of two live sources that
    // started apart may have no partner.
    let unpaired = u64_field(summary, "unpaired-reference");
    assert!(
        skipped > 0 && scored + skipped + unpaired == 300,
        "{summary}"
    );
    // Pairs are late by at most max-lateness plus what scoring one takes (1.7 s allowed:
    // a loaded 2-core machine). Without skipping, pairs scored a few a second from a
    // 60 frames/s stream would end tens of seconds late.
    let bound = 0.3 + 1.7;
    let lateness = lateness.lock().unwrap();
    let worst = lateness.iter().max().copied().unwrap_or(0) as f64 / 1e9;
    eprintln!("scored {scored}, skipped {skipped}, at most {worst:.3} s late");
    assert!(worst < bound, "{lateness:?} over {bound} s");
    // Skipped pairs are gaps in the frame numbers; the warning came once.
    let frames = p.frames();
    assert!(frames.windows(2).any(|f| f[1] > f[0] + 1), "{frames:?}");
    let warned: Vec<_> = p
        .warnings
        .iter()
        .filter(|w| w.contains("behind the live stream"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", p.warnings);
}

#[test]
fn a_non_live_pipeline_never_skips() {
    // Both branches deliver a frame every 20 ms for frames 10 ms apart: 300 ms behind the
    // clock at the end, far over max-lateness, which only live pipelines apply.
    let desc = two_sources(
        "max-lateness=1 sync=false",
        false,
        None,
        "num-buffers=30 ! identity sleep-time=20000",
    );
    let w = Watched::launch(&desc, |_, _| {});
    w.play_to_eos(Duration::from_secs(60));
    assert!(
        lateness_of_posted_pairs(&w) > 100_000_000,
        "scoring was late"
    );
    let p = w.posted();
    let summary = p.summary.as_ref().expect("summary");
    assert_eq!(
        (u64_field(summary, "frames"), u64_field(summary, "skipped")),
        (30, 0)
    );
}

#[test]
fn a_tee_without_queues_gets_a_stall_warning_naming_the_silent_pad() {
    let desc = format!(
        "comparesink name=c videotestsrc ! {} ! tee name=t t. ! c.reference t. ! c.distorted",
        caps(64, 48)
    );
    let w = Watched::launch(&desc, |_, _| {});
    w.pipeline.set_state(gst::State::Playing).expect("starts");
    let stall = |p: &lifecycle::Posted| {
        p.warnings
            .iter()
            .filter(|w| w.contains("distorted pad"))
            .count()
    };
    assert!(
        w.wait_until(Duration::from_secs(8), |p| stall(p) >= 1),
        "{:?}",
        w.posted().warnings
    );
    std::thread::sleep(Duration::from_millis(1500));
    let p = w.posted();
    assert_eq!(stall(&p), 1, "once per stall: {:?}", p.warnings);
    assert!(
        p.warnings[0].contains("tee branch without a queue"),
        "{:?}",
        p.warnings
    );
    drop(p);
    // The stalled pipeline still stops.
    w.go(gst::State::Null).expect("stops");
}
