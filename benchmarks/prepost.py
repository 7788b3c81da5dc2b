"""Pre- and post-processing benchmark: SDK vs a naive numpy reference, measured in one run.

    python benchmarks/prepost.py [--iters 300]

Targets (2-core x86 CPU):
  * preprocess: 1280x720 BGR frame → 640x640 float32 NCHW letterbox, RGB, /255 in <= 1.5 ms median;
  * decode: YOLOv8 output [1, 84, 8400] (detector-like scores: mostly tiny, a few hundred above 0.25),
    confidence 0.25, class-aware NMS, in <= 1 ms median.

Calls are interleaved (each round times every contender once) so a busy machine slows them alike.
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, List

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.decoders import PostprocessOptions, get_decoder  # noqa: E402
from sdk.preprocess import PreprocessConfig, Preprocessor  # noqa: E402

PRE_TARGET_MS = 1.5
DECODE_TARGET_MS = 1.0


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def camera_like_frame(h: int = 720, w: int = 1280, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), np.uint8)
    frame = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(frame.astype(np.int16) + rng.integers(-8, 9, frame.shape), 0, 255).astype(np.uint8)


def detector_like_output(nc: int = 80, n: int = 8400, objects: int = 20, per_object: int = 15,
                         seed: int = 0) -> np.ndarray:
    """[1, 4 + nc, n]: sigmoid scores mostly ~1e-4, clusters of 15 high-scoring anchors on 20 objects."""
    rng = np.random.default_rng(seed)
    out = np.empty((1, 4 + nc, n), np.float32)
    out[0, 0:2] = rng.uniform(0, 640, (2, n))
    out[0, 2:4] = rng.uniform(4, 200, (2, n))
    out[0, 4:] = 1 / (1 + np.exp(-rng.normal(-9, 1.5, (nc, n))))
    cols = rng.choice(n, objects * per_object, replace=False).reshape(objects, per_object)
    for k in range(objects):
        c = rng.integers(nc)
        center, size = rng.uniform(50, 590, 2), rng.uniform(20, 200, 2)
        for j in cols[k]:
            out[0, 0:2, j] = center + rng.normal(0, 3, 2)
            out[0, 2:4, j] = size * rng.uniform(0.9, 1.1, 2)
            out[0, 4 + c, j] = rng.uniform(0.2, 0.95)
    return out


# --------------------------------------------------------------------------------------------------
# Naive references (what a straightforward port of Ultralytics' numpy path does)
# --------------------------------------------------------------------------------------------------


def naive_preprocess(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    r = min(640 / h, 640 / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = (640 - nw) / 2, (640 - nh) / 2
    img = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = cv2.copyMakeBorder(img, int(round(dh - 0.1)), int(round(dh + 0.1)), int(round(dw - 0.1)),
                             int(round(dw + 0.1)), cv2.BORDER_CONSTANT, value=(114, 114, 114))
    img = np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)[None])
    return img.astype(np.float32) / 255.0


def naive_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        b = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
        order = rest[inter / (a + b - inter) <= iou]
    return np.asarray(keep, np.int64)


def naive_decode(out: np.ndarray, conf_thres: float = 0.25, iou: float = 0.45, max_det: int = 300):
    x = out[0].T                                   # (8400, 84)
    conf = x[:, 4:].max(1)
    cls = x[:, 4:].argmax(1)
    keep = conf > conf_thres
    x, conf, cls = x[keep], conf[keep], cls[keep]
    b = np.stack([x[:, 0] - x[:, 2] / 2, x[:, 1] - x[:, 3] / 2, x[:, 0] + x[:, 2] / 2, x[:, 1] + x[:, 3] / 2], 1)
    k = naive_nms(b + cls[:, None] * 7680.0, conf, iou)[:max_det]       # Ultralytics' class offset trick
    return b[k], conf[k], cls[k]


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def interleaved_medians(contenders: Dict[str, Callable[[], object]], iters: int, warmup: int = 20) -> Dict[str, float]:
    times: Dict[str, List[float]] = {k: [] for k in contenders}
    for _ in range(warmup):
        for f in contenders.values():
            f()
    for _ in range(iters):
        for name, f in contenders.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def matrix_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Stand-in for sdk.ops.nms while it does not exist: one IoU matrix, then a greedy walk over keeps."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    over = inter > iou * (area[:, None] + area[None, :] - inter)
    alive = np.ones(len(b), bool)
    keep = []
    i = 0
    while i < len(b):
        keep.append(i)
        alive &= ~over[i]
        alive[i] = False
        rest = np.flatnonzero(alive[i + 1:])
        if rest.size == 0:
            break
        i = i + 1 + int(rest[0])
    return order[np.asarray(keep, np.int64)]


def ensure_ops() -> str:
    try:
        from sdk.ops import batched_nms, nms  # noqa: F401
        return "sdk.ops"
    except ImportError:
        fake = types.ModuleType("sdk.ops")
        fake.nms = matrix_nms  # type: ignore[attr-defined]
        fake.batched_nms = lambda b, s, c, iou: matrix_nms(  # type: ignore[attr-defined]
            b + c[:, None].astype(b.dtype) * 7680.0, s, iou)
        sys.modules["sdk.ops"] = fake
        return "benchmark's own IoU-matrix stand-in: sdk.ops is not available yet"


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300)
    args = parser.parse_args(argv)

    frame = camera_like_frame()
    fresh = Preprocessor(PreprocessConfig(size_hw=(640, 640)))
    reuse = Preprocessor(PreprocessConfig(size_hw=(640, 640)), reuse_output=True)
    ref = naive_preprocess(frame)
    for pre in (fresh, reuse):
        err = float(np.abs(pre(frame)[0] - ref).max())
        if err > 1e-6:
            print(f"preprocess mismatch vs naive reference: max |diff| = {err}")
            return 1

    nms_source = ensure_ops()
    out = detector_like_output()
    opts = PostprocessOptions(conf_threshold=0.25, iou_threshold=0.45)
    dec = get_decoder({"type": "yolo"}, output_names=["output0"], labels=[str(i) for i in range(80)])
    dets = dec({"output0": out}, input_hw=(640, 640), options=opts)
    rb, rs, rc = naive_decode(out)
    if len(dets) != len(rb) or not np.allclose(dets.xyxy, rb, atol=1e-3) or not np.array_equal(dets.class_id, rc):
        print(f"decode mismatch vs naive reference: {len(dets)} vs {len(rb)} boxes")
        return 1
    candidates = int((out[0, 4:].max(0) > 0.25).sum())

    pre_t = interleaved_medians({
        "naive numpy": lambda: naive_preprocess(frame),
        "sdk Preprocessor": lambda: fresh(frame),
        "sdk Preprocessor(reuse_output=True)": lambda: reuse(frame),
    }, args.iters)
    ops = sys.modules["sdk.ops"]
    real_nms, real_batched = ops.nms, ops.batched_nms
    no_nms = {"nms": lambda b, s, iou: np.argsort(-s), "batched_nms": lambda b, s, c, iou: np.argsort(-s)}

    def decode_without_nms() -> object:
        ops.nms, ops.batched_nms = no_nms["nms"], no_nms["batched_nms"]
        try:
            return dec({"output0": out}, input_hw=(640, 640), options=opts)
        finally:
            ops.nms, ops.batched_nms = real_nms, real_batched

    dec_t = interleaved_medians({
        "naive numpy": lambda: naive_decode(out),
        "sdk yolo decoder": lambda: dec({"output0": out}, input_hw=(640, 640), options=opts),
        "  of which decoding (NMS swapped for a sort)": decode_without_nms,
    }, args.iters)

    print(f"numpy {np.__version__}, OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}, "
          f"{args.iters} interleaved iterations, medians")
    print()
    print("preprocess: 1280x720 BGR uint8 -> (1, 3, 640, 640) float32, letterbox, RGB, /255")
    _table(pre_t, "naive numpy", PRE_TARGET_MS)
    print()
    print(f"decode: YOLOv8 [1, 84, 8400], {candidates} candidates > 0.25, {len(dets)} boxes after NMS "
          f"(NMS: {nms_source})")
    _table(dec_t, "naive numpy", DECODE_TARGET_MS)
    ok = pre_t["sdk Preprocessor"] <= PRE_TARGET_MS and dec_t["sdk yolo decoder"] <= DECODE_TARGET_MS
    print()
    print("targets met" if ok else "TARGET MISSED (a busy machine inflates every number alike: compare the ratios)")
    return 0


def _table(times: Dict[str, float], baseline: str, target: float) -> None:
    width = max(len(k) for k in times)
    for name, ms in times.items():
        ratio = times[baseline] / ms
        mark = "" if name == baseline or name.startswith(" ") else \
            f"   target {target:.2f} ms: {'ok' if ms <= target else 'MISSED'}"
        print(f"  {name:<{width}}  {ms:7.3f} ms   x{ratio:4.1f} vs naive{mark}")


if __name__ == "__main__":
    raise SystemExit(main())
