"""A local RTSP test server (gst-rtsp-server through python3-gi), for tests, benchmarks and for checking a
client set-up without a camera.

It serves a moving GStreamer test pattern at ``rtsp://HOST:PORT/test``. It needs Debian's (or your
distribution's) GObject introspection bindings, which a virtual environment usually cannot import, so run it
with the system Python::

    /usr/bin/python3 sdk/sources/testserver.py --port 8554 --size 640x480 --fps 30 --codec h264

Prints ``READY rtsp://...`` on stdout once it accepts clients, then serves until killed (SIGTERM/SIGINT).
This file imports nothing from ``sdk`` so that it runs outside the SDK's environment.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import List, Optional

__all__ = ["launch_description", "main"]

_CODECS = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=2000 ! rtph264pay name=pay0 pt=96 config-interval=1",
    "jpeg": "jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26",
}


def launch_description(width: int, height: int, fps: int, codec: str, pattern: str = "ball") -> str:
    """The gst-rtsp-server launch line of the test stream (a pure function).

    Raises:
        ValueError: unknown codec or non-positive sizes.
    """
    if codec not in _CODECS:
        raise ValueError(f"codec: expected one of {', '.join(_CODECS)}, got {codec!r}")
    if width <= 0 or height <= 0 or fps <= 0:
        raise ValueError(f"expected positive width, height and fps, got {width}x{height} @ {fps}")
    return (f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},"
            f"framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420 ! " + _CODECS[codec].format(fps=fps) + " )")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/test")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--codec", choices=sorted(_CODECS), default="h264")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    import gi  # only the system Python has these bindings

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_description(width, height, args.fps, args.codec))
    factory.set_shared(True)
    factory.set_latency(0)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"ERROR could not listen on {args.host}:{args.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://{args.host}:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
