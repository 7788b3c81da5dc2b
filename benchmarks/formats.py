"""FP32 vs INT8 per backend: file size and latency through ``sdk``, measured side by side in one run.

    python benchmarks/formats.py [--families mobilenet,yolo_nano] [--runs 50] [--calib 100] [--out DIR]

Targets (printed, not asserted): INT8 file size <= 0.3x FP32; INT8 p50 latency <= 0.8x FP32 on at least
two backends. Where a backend's INT8 is not faster here, the reason is printed: the CPU's int8
dot-product support (``/proc/cpuinfo`` flags ``avx512_vnni`` / ``avx_vnni`` / ``amx_int8``; without them
x86 int8 convolutions run on AVX2 ``vpmaddubsw`` + ``vpmaddwd`` sequences, barely faster than FP32 FMA,
and the quantise/dequantise at the float tail costs extra).

Fairness: both precisions of a backend are loaded once, then timed in alternating rounds on the same
frame (pre-processing + inference + decoding through ``sdk.Model``); medians over the rounds. File
size: the model file (OpenVINO: ``.xml`` + ``.bin``; the weights-only ratio is shown too).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE_TARGET = 0.3
LATENCY_TARGET = 0.8
CONFIGS = {
    "mobilenet": {"variant": "v3_large", "input_size": 224},
    "yolo_nano": {"input_size": 320},
    "ssdlite": {"input_size": 320},
    "siamese": {"input_size": 96},
}
BACKENDS = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "tflite (XNNPACK)"}


def _size(path: Path) -> Dict[str, int]:
    if path.suffix == ".xml":
        weights = path.with_suffix(".bin").stat().st_size
        return {"file": path.stat().st_size + weights, "weights": weights}
    return {"file": path.stat().st_size, "weights": path.stat().st_size}


def _alternate(m32, m8, frame, runs: int) -> Dict[str, float]:
    for m in (m32, m8):
        m.warmup(3)
    t32, t8 = [], []
    for i in range(runs):
        for m, acc in ((m32, t32), (m8, t8)) if i % 2 == 0 else ((m8, t8), (m32, t32)):
            t0 = time.perf_counter()
            m(frame)
            acc.append((time.perf_counter() - t0) * 1e3)
    return {"fp32": float(np.median(t32)), "int8": float(np.median(t8))}


def _why_not_faster(fmt: str, host: Dict[str, object]) -> str:
    dot = host["int8_dot"]
    if dot == "none":
        return (f"this CPU ({host['cpu']}, {host['simd']}) has no int8 dot-product instruction (no avx512_vnni / "
                f"avx_vnni / amx_int8 in /proc/cpuinfo): int8 convolutions use AVX2 vpmaddubsw+vpmaddwd, about "
                f"as fast as FP32 FMA, plus quantise/dequantise around the float tail")
    return f"the CPU has {dot}; the {fmt} runtime did not pick an int8 kernel for every layer (small layers, float tail)"


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="mobilenet,yolo_nano")
    parser.add_argument("--formats", default="onnx,openvino,tflite")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--calib", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the conversion")
    parser.add_argument("--out", type=Path, help="keep the artifacts here (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    import torch

    import converters
    import sdk
    from converters.export.host import host_info
    from converters.zoo import build_model

    torch.set_num_threads(args.threads)
    host = host_info()
    print(f"host: {host['cpu']} | {host['cores']} cores | SIMD {host['simd']} | int8 dot-product: {host['int8_dot']}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgesdk-bench-formats-") as tmp:
        root = args.out or Path(tmp)
        for family in args.families.split(","):
            model = build_model(family, seed=0, **CONFIGS[family]).eval()
            t0 = time.perf_counter()
            res = converters.export(model, to=args.formats, precision="fp32,int8", out=root / family, force=True,
                                    calib_count=args.calib, val=None, latency_runs=3, progress=False)
            print(f"{family}: converted {len(res.rows)} artifacts in {time.perf_counter() - t0:.0f} s")
            h, w = model.input_hw
            frame = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
            for fmt in args.formats.split(","):
                p32, p8 = res.artifact(fmt, "fp32"), res.artifact(fmt, "int8")
                s32, s8 = _size(p32), _size(p8)
                with sdk.load(p32) as m32, sdk.load(p8) as m8:
                    lat = _alternate(m32, m8, frame, args.runs)
                rows.append({"family": family, "fmt": fmt, "s32": s32, "s8": s8, "lat": lat})

    print()
    print(f"{'model':<10} {'backend':<17} {'FP32 MB':>8} {'INT8 MB':>8} {'size x':>7} {'(wts x)':>8} "
          f"{'FP32 ms':>8} {'INT8 ms':>8} {'lat x':>6}  targets")
    faster: Dict[str, List[bool]] = {}
    for r in rows:
        size_ratio = r["s8"]["file"] / r["s32"]["file"]
        wts_ratio = r["s8"]["weights"] / r["s32"]["weights"]
        lat_ratio = r["lat"]["int8"] / r["lat"]["fp32"]
        faster.setdefault(r["fmt"], []).append(lat_ratio <= LATENCY_TARGET)
        marks = f"size {'ok' if size_ratio <= SIZE_TARGET else 'MISS'}, latency {'ok' if lat_ratio <= LATENCY_TARGET else 'MISS'}"
        print(f"{r['family']:<10} {BACKENDS[r['fmt']]:<17} {r['s32']['file'] / 1e6:8.2f} {r['s8']['file'] / 1e6:8.2f} "
              f"{size_ratio:7.2f} {wts_ratio:8.2f} {r['lat']['fp32']:8.2f} {r['lat']['int8']:8.2f} {lat_ratio:6.2f}  "
              f"{marks}")
    good = [f for f, v in faster.items() if all(v)]
    print()
    print(f"INT8 <= {LATENCY_TARGET}x FP32 on {len(good)} backend(s) ({', '.join(good) or 'none'}); target: >= 2 -> "
          f"{'met' if len(good) >= 2 else 'NOT met'}")
    for fmt, v in faster.items():
        if not all(v):
            print(f"  {fmt}: INT8 not faster here: {_why_not_faster(fmt, host)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
