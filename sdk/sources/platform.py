"""What this host can capture with: board (Jetson, Raspberry Pi), OpenCV's build, GStreamer and ffmpeg tools."""
from __future__ import annotations

import functools
import glob
import logging
import re
import shutil
import subprocess
import sys
from typing import Mapping, Optional

__all__ = ["detect_board", "opencv_has_gstreamer", "opencv_has_ffmpeg", "find_tool", "gst_has_element",
           "list_video_devices", "picamera2_available", "capabilities"]

logger = logging.getLogger(__name__)


def detect_board(facts: Optional[Mapping[str, str]] = None) -> str:
    """``"jetson"`` (``/etc/nv_tegra_release`` exists), ``"raspberry-pi"`` (device-tree model says so) or ``"other"``.

    Args:
        facts: host facts as returned by :func:`sdk.device.host_facts` (read from this host when None).
    """
    if facts is None:
        from sdk.device import host_facts

        facts = host_facts()
    if (facts.get("nv_tegra_release") or "").strip():
        return "jetson"
    if "raspberry pi" in (facts.get("device_tree_model") or "").lower():
        return "raspberry-pi"
    return "other"


def _build_flag(name: str) -> bool:
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        m = re.match(rf"\s*{name}:\s*(\S+)", line)
        if m:
            return m.group(1).upper() == "YES"
    return False


@functools.lru_cache(maxsize=None)
def opencv_has_gstreamer() -> bool:
    """True when the installed OpenCV was built with GStreamer (pip's wheels are not; JetPack's is)."""
    return _build_flag("GStreamer")


@functools.lru_cache(maxsize=None)
def opencv_has_ffmpeg() -> bool:
    """True when the installed OpenCV can decode files and streams through FFmpeg (pip's wheels can)."""
    return _build_flag("FFMPEG")


def find_tool(name: str) -> Optional[str]:
    """Absolute path of an executable on PATH, or None."""
    return shutil.which(name)


@functools.lru_cache(maxsize=None)
def gst_has_element(name: str) -> bool:
    """True when ``gst-inspect-1.0`` knows the element (e.g. ``rtspsrc``, ``nvarguscamerasrc``)."""
    tool = find_tool("gst-inspect-1.0")
    if tool is None:
        return False
    try:
        return subprocess.run([tool, "--exists", name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def list_video_devices() -> list:
    """The ``/dev/video*`` device nodes that exist now, in numeric order."""
    def number(path: str) -> int:
        tail = path[len("/dev/video"):]
        return int(tail) if tail.isdigit() else 1 << 30

    return sorted(glob.glob("/dev/video*"), key=number)


def picamera2_available() -> bool:
    """True when the ``picamera2`` package can be imported (Raspberry Pi OS ships it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("picamera2") is not None
    except (ImportError, ValueError):
        return False


def capabilities() -> dict:
    """Everything above in one dict (for ``describe()`` and bug reports)."""
    return {"board": detect_board(), "platform": sys.platform, "opencv_gstreamer": opencv_has_gstreamer(),
            "opencv_ffmpeg": opencv_has_ffmpeg(), "gst_launch": find_tool("gst-launch-1.0"),
            "ffmpeg": find_tool("ffmpeg"), "picamera2": picamera2_available(), "video_devices": list_video_devices()}
