"""What this host's CPU offers for INT8 (the reason an INT8 model is or is not faster here)."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Dict

__all__ = ["host_info", "INT8_DOT_FLAGS"]

#: /proc/cpuinfo flags of x86 int8 dot-product instructions, best first.
INT8_DOT_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


def host_info() -> Dict[str, object]:
    """CPU model, core count, SIMD level and int8 dot-product support.

    Returns:
        ``{"cpu", "cores", "machine", "simd", "int8_dot"}``; ``int8_dot`` is the best of
        :data:`INT8_DOT_FLAGS` present, ``"asimddp"`` on Arm with dot-product, or ``"none"``.
    """
    text = ""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        pass
    flags: set = set()
    model = platform.processor() or "?"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "cpu model", "hardware") and model in ("?", "", platform.machine()):
            model = value.strip()
    dot = next((f for f in INT8_DOT_FLAGS if f in flags), "asimddp" if "asimddp" in flags else "none")
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2", "asimd", "neon") if f in flags), "?")
    return {"cpu": model, "cores": os.cpu_count(), "machine": platform.machine(), "simd": simd, "int8_dot": dot}
