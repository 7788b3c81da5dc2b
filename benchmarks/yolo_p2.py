"""What YOLO-nano's stride-4 level (``p2=True``) costs: latency and file size next to the plain model, one run.

    python benchmarks/yolo_p2.py [--formats onnx,openvino,tflite] [--precisions fp32,int8] [--runs 60]
                                 [--plain W.pt --p2 W.pt] [--threads 1]

Both models are converted with the same settings, loaded once, then timed in alternating rounds on the
same 1280x720 frame through ``sdk.Model`` (letterbox to 320, inference, decoding); medians over the
rounds. The exported head and float tail are the demo's: the NMS-free one-to-one head (``yolo_end2end``),
and in INT8 the last two convolutions of each head branch kept in float. Default weights: random (seed 0),
the shipped model's architecture; ``--plain`` / ``--p2`` take trained checkpoints (realistic INT8
calibration). The ratio is printed, not asserted: the level adds 6,400 anchors (2,100 → 8,500) and
stride-4 convolutions, and what that costs depends on the CPU.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The shipped detector's architecture (converters/zoo/weights/yolo_nano_shapes.md).
ARCH = {"input_size": 320, "width_mult": 0.25, "depth_mult": 0.34, "end2end": True}


def _size(path: Path) -> int:
    return path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)


def _alternate(a, b, frame: np.ndarray, runs: int) -> Dict[str, float]:
    for m in (a, b):
        m.warmup(3)
    ta: List[float] = []
    tb: List[float] = []
    for i in range(runs):
        for m, acc in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            t0 = time.perf_counter()
            m(frame)
            acc.append((time.perf_counter() - t0) * 1e3)
    return {"plain": float(np.median(ta)), "p2": float(np.median(tb))}


def _model(weights: Optional[Path], p2: bool):
    from converters.zoo import build_model, load_model

    if weights is None:
        return build_model("yolo_nano", seed=0, p2=p2, **ARCH).eval()
    model = load_model(weights).eval()
    if bool(getattr(model, "config", {}).get("p2", False)) != p2:
        raise SystemExit(f"{weights}: expected a model {'with' if p2 else 'without'} p2, got the other")
    return model


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="onnx,openvino,tflite")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--calib", type=int, default=64, help="calibration images of the int8 conversions")
    parser.add_argument("--plain", type=Path, help="trained plain checkpoint (default: random weights)")
    parser.add_argument("--p2", type=Path, help="trained p2 checkpoint (default: random weights)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the conversion")
    parser.add_argument("--out", type=Path, help="keep the artifacts here (default: a temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    import torch

    import converters
    import sdk
    from converters.export.host import host_info

    torch.set_num_threads(args.threads)
    host = host_info()
    print(f"host: {host['cpu']} | {host['cores']} cores | SIMD {host['simd']}")
    models = {"plain": _model(args.plain, False), "p2": _model(args.p2, True)}
    for name, m in models.items():
        n = sum(p.numel() for p in m.parameters())
        print(f"{name}: {n:,} parameters, strides {tuple(m.strides)}")
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgesdk-bench-p2-") as tmp:
        root = args.out or Path(tmp)
        res = {}
        for name, m in models.items():
            t0 = time.perf_counter()
            res[name] = converters.export(m, to=args.formats, precision=args.precisions, out=root / name,
                                          force=True, calib_count=args.calib, val=None, latency_runs=3, keep_float=2,
                                          progress=False)
            print(f"{name}: converted {len(res[name].rows)} artifacts in {time.perf_counter() - t0:.0f} s")
        for fmt in args.formats.split(","):
            for prec in args.precisions.split(","):
                pa, pb = res["plain"].artifact(fmt, prec), res["p2"].artifact(fmt, prec)
                with sdk.load(pa) as a, sdk.load(pb) as b:
                    lat = _alternate(a, b, frame, args.runs)
                rows.append((fmt, prec, _size(pa), _size(pb), lat))
    print()
    print(f"{'backend':<10} {'prec':<5} {'plain MB':>9} {'p2 MB':>7} {'plain ms':>9} {'p2 ms':>7} {'p2 / plain':>11}")
    for fmt, prec, sa, sb, lat in rows:
        print(f"{fmt:<10} {prec:<5} {sa / 1e6:9.2f} {sb / 1e6:7.2f} {lat['plain']:9.2f} {lat['p2']:7.2f} "
              f"{lat['p2'] / lat['plain']:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
