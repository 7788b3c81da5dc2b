"""Frame sources: cameras, CSI sensors, RTSP, pipelines, files, image folders and a synthetic scene.

::

    with sdk.open_source("rtsp://cam.local/stream") as source:   # latest-frame, reconnecting
        for frame in source:                                      # sdk.Frame: image, index, t_capture, source
            ...
    source.backend        # "gst-launch" / "ffmpeg" / "opencv-v4l2" / "opencv-gstreamer" / ...
    source.dropped, source.events, source.describe()

See :func:`open_source` for the URIs and options, :mod:`sdk.sources.policy` for ``latest`` /
``queue(N)`` / ``every``, and :mod:`sdk.sources.pipelines` for the Jetson and Raspberry Pi pipelines.
"""
from __future__ import annotations

from .base import Reader, SourceInterrupted
from .factory import BACKENDS, backend_candidates, open_source
from .frame import EVENT_KINDS, Frame, SourceEvent
from .platform import capabilities, list_video_devices
from .policy import FrameBuffer, Policy, parse_policy
from .source import Source
from .uri import SourceSpec, parse_uri

__all__ = ["open_source", "Frame", "Source", "SourceEvent", "EVENT_KINDS", "Policy", "FrameBuffer", "parse_policy", "parse_uri",
           "SourceSpec", "Reader", "SourceInterrupted", "BACKENDS", "backend_candidates", "list_video_devices",
           "capabilities"]
