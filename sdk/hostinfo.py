"""What a latency number was measured on: host fingerprint, runtime versions, temperature, clocks.

Everything here reads files under ``/proc`` and ``/sys`` (and, on a Jetson, runs ``nvpmodel -q``
as an argument list with a timeout); anything unreadable is reported as ``None``, never raised.
Nothing runs at import.
"""
from __future__ import annotations

import glob
import importlib.metadata
import logging
import os
import platform
import shutil
import subprocess
import sys
from typing import Dict, Optional

__all__ = ["fingerprint", "runtime_versions", "thermal_c", "cpu_clocks", "power_mode"]

logger = logging.getLogger(__name__)

#: Distributions whose versions change latency results.
_DISTRIBUTIONS = ("numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "onnxruntime-gpu",
                  "openvino", "ai-edge-litert", "tflite-runtime", "tensorflow")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def runtime_versions() -> Dict[str, str]:
    """Installed versions of numpy, OpenCV and the inference runtimes (only those installed)."""
    out = {}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def thermal_c() -> Dict[str, float]:
    """Temperatures in °C by thermal zone type (``cpu-thermal`` on a Pi, ``CPU-therm``/``GPU-therm``
    on a Jetson); empty where the kernel exposes none (most VMs)."""
    out: Dict[str, float] = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        raw = _read(os.path.join(zone, "temp"))
        kind = _read(os.path.join(zone, "type")) or os.path.basename(zone)
        try:
            out[kind] = round(int(raw or "") / 1000.0, 1)
        except ValueError:
            continue
    return out


def cpu_clocks() -> Dict[str, Optional[object]]:
    """CPU frequency governor and current/max clock of cpu0 in MHz (None where not exposed)."""
    base = "/sys/devices/system/cpu/cpu0/cpufreq"

    def mhz(name: str) -> Optional[float]:
        raw = _read(os.path.join(base, name))
        try:
            return round(int(raw) / 1000.0, 1) if raw else None
        except ValueError:
            return None

    return {"governor": _read(os.path.join(base, "scaling_governor")), "cur_mhz": mhz("scaling_cur_freq"),
            "max_mhz": mhz("cpuinfo_max_freq")}


def power_mode() -> Optional[str]:
    """Jetson power mode (``nvpmodel -q``, first line naming the mode), None elsewhere."""
    exe = shutil.which("nvpmodel")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("nvpmodel -q failed: %s", exc)
        return None
    for line in done.stdout.splitlines():
        if "mode" in line.lower():
            return line.strip()
    return done.stdout.strip() or None


def fingerprint() -> Dict[str, object]:
    """The host a report was measured on: CPU model, cores, machine, OS, Python, runtime versions,
    board (device tree), L4T release, CPU flags that matter for int8 (VNNI/AMX/NEON dot product)."""
    from sdk.device import host_facts

    facts = host_facts()
    flags = ""
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("flags", "features")):
            flags = line.split(":", 1)[1]
            break
    int8_flags = sorted({f for f in flags.split() if f in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8",
                                                            "avx512f", "asimddp", "i8mm", "sve")})
    return {
        "cpu_model": facts.get("cpu_model") or None,
        "cores": os.cpu_count(),
        "machine": facts.get("machine"),
        "os": f"{platform.system()} {platform.release()}",
        "os_release": _os_pretty_name(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "runtimes": runtime_versions(),
        "device_tree_model": facts.get("device_tree_model") or None,
        "nv_tegra_release": (facts.get("nv_tegra_release") or "")[:80] or None,
        "cpu_flags": int8_flags,
    }


def _os_pretty_name() -> Optional[str]:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None
