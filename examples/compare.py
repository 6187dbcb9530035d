#!/usr/bin/env python3
"""Compares two images or videos with comparesink and prints every pair's scores and the
summary. Without files, compares two live test streams until Ctrl-C, which ends the
stream cleanly: the pipeline drains and the summary is still printed.

    compare.py REFERENCE DISTORTED [--metrics psnr+ssim] [--threshold 0.9]
    compare.py                      # live test streams; stop with Ctrl-C

Needs PyGObject (Debian: python3-gi) and the plugin on GST_PLUGIN_PATH.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def branch(location, pad):
    if location is None:
        # A moving pattern, and a brighter copy of it as the distorted stream.
        balance = "videobalance brightness=0.05 ! " if pad == "distorted" else ""
        return (f"videotestsrc is-live=true pattern=ball ! "
                f"video/x-raw,width=320,height=240,framerate=30/1 ! {balance}queue ! cmp.{pad} ")
    location = location.replace('"', '\\"')
    return f'filesrc location="{location}" ! decodebin ! queue ! cmp.{pad} '


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?")
    parser.add_argument("distorted", nargs="?")
    parser.add_argument("--metrics", default="psnr+ssim")
    parser.add_argument("--threshold", type=float, default=0.0, help="SSIM alert threshold")
    args = parser.parse_args()
    if (args.reference is None) != (args.distorted is None):
        parser.error("give two files, or none for live test streams")

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"comparesink name=cmp metrics={args.metrics} threshold={args.threshold} "
        + branch(args.reference, "reference") + branch(args.distorted, "distorted"))
    loop = GLib.MainLoop()
    status = {"code": 0}

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.get_name() == "similarity":
                scores = " ".join(f"{m}={s.get_value(m):.4f}" for m in ("psnr", "ssim", "ms-ssim")
                                  if s.has_field(m))
                print(f"frame {s.get_value('frame')} {s.get_value('format')} {scores}"
                      + (" ALERT" if s.get_value("alert") else ""), flush=True)
            elif s.get_name() == "similarity-summary":
                print("summary " + s.to_string(), flush=True)
        elif msg.type == Gst.MessageType.WARNING:
            print(f"warning: {msg.parse_warning()[0].message}", file=sys.stderr, flush=True)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"error: {err.message} ({debug})", file=sys.stderr, flush=True)
            status["code"] = 1
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()
        return True

    def on_interrupt():
        # The first Ctrl-C ends the stream (the summary follows); a second one quits.
        if status.get("interrupted"):
            loop.quit()
            return GLib.SOURCE_REMOVE
        status["interrupted"] = True
        print("interrupted: ending the stream", file=sys.stderr, flush=True)
        pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, on_interrupt)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        status["code"] = 1
    else:
        loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
