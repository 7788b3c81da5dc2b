"""NMS benchmark: ``sdk.ops.nms`` vs ``torchvision.ops.nms`` and ``cv2.dnn.NMSBoxes``, in one run.

    python benchmarks/nms.py [--rounds 41] [--iou 0.5] [--torch-threads 1]

Targets: median time ratio sdk / torchvision <= 1.0 on detector-like clustered candidates,
<= 2.0 on the adversarial uniform set.

Fairness:
    * every round times each contender once, in rotating order, so a busy machine slows them alike;
      the table reports per-contender medians over the rounds;
    * torchvision gets torch tensors made once up front, cv2 gets its xywh float64 array made once;
      all three are called single-threaded (torch.set_num_threads, cv2.setNumThreads; numpy's
      elementwise code is single-threaded);
    * torchvision and sdk results are checked to be identical before timing; cv2's NMSBoxes has its
      own semantics (its kept count is shown for information).

Data:
    * clustered: N candidates around K objects (log-uniform sizes 16..300 px on a 640x640 image),
      centre jitter ~12% of the object size, scale jitter ~15%, scores = object confidence decaying
      with the jitter (like a detector's raw candidates);
    * uniform: boxes anywhere on the image, sizes 5..80 px, uniform scores: few overlaps, most boxes
      kept -- the worst case for a blocked algorithm.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.ops import batched_nms, nms  # noqa: E402

CLUSTERED_TARGET = 1.0
UNIFORM_TARGET = 2.0


def clustered(n: int, n_obj: int, rng: np.random.Generator, size: int = 640) -> Tuple[np.ndarray, np.ndarray]:
    """Detector-like candidates: (n, 4) float32 xyxy boxes and (n,) float32 scores."""
    boxes, scores, _ = _clustered(n, n_obj, rng, size)
    return boxes, scores


def _clustered(n: int, n_obj: int, rng: np.random.Generator,
               size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    wh = np.exp(rng.uniform(np.log(16), np.log(300), (n_obj, 2)))
    centre = rng.uniform(0, size, (n_obj, 2))
    conf = rng.uniform(0.3, 0.95, n_obj)
    obj = rng.integers(0, n_obj, n)
    jitter = rng.normal(0, 0.12, (n, 2)) * wh[obj]
    scale = np.exp(rng.normal(0, 0.15, (n, 2)))
    c = centre[obj] + jitter
    half = wh[obj] * scale / 2
    boxes = np.clip(np.concatenate([c - half, c + half], axis=1), 0, size)
    dist = np.linalg.norm(jitter / wh[obj], axis=1) + np.abs(np.log(scale)).sum(axis=1)
    scores = conf[obj] * np.exp(-2 * dist) * rng.uniform(0.7, 1.0, n)
    return boxes.astype(np.float32), scores.astype(np.float32), obj


def labelled(n: int, n_obj: int, n_classes: int, rng: np.random.Generator,
             size: int = 640) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered candidates with class ids, as a multi-class detector's raw output after the confidence
    filter: each candidate takes its object's class, 10% take a random other class (confusions)."""
    boxes, scores, obj = _clustered(n, n_obj, rng, size)
    cls = rng.integers(0, n_classes, n_obj)[obj]
    flip = rng.random(n) < 0.1
    cls[flip] = rng.integers(0, n_classes, int(flip.sum()))
    return boxes, scores, cls.astype(np.int64)


def weak(n: int, n_classes: int, rng: np.random.Generator,
         size: int = 320) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an anchor-based detector gives at an evaluation threshold like 0.001: candidates on anchors
    all over the image, low scores, several classes per anchor; most survive NMS."""
    xy = rng.uniform(0, size, (n, 2))
    wh = np.exp(rng.uniform(np.log(8), np.log(200), (n, 2)))
    boxes = np.clip(np.concatenate([xy - wh / 2, xy + wh / 2], axis=1), 0, size).astype(np.float32)
    scores = (0.001 + rng.exponential(0.02, n)).astype(np.float32)
    return boxes, scores, rng.integers(0, n_classes, n).astype(np.int64)


def uniform(n: int, rng: np.random.Generator, size: int = 640) -> Tuple[np.ndarray, np.ndarray]:
    """Adversarial set: (n, 4) float32 boxes spread over the image, (n,) uniform float32 scores."""
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), rng.random(n).astype(np.float32)


def time_interleaved(fns: Dict[str, Callable[[], object]], rounds: int) -> Dict[str, float]:
    """Median seconds per call of each function, calling them in rotating order every round."""
    names = list(fns)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        fns[name]()
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in times.items()}


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41, help="timed rounds per case (default 41)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import torchvision

    torch.set_num_threads(args.torch_threads)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency of the SDK
        cv2 = None

    rng = np.random.default_rng(args.seed)
    cases = [
        ("clustered", 300, 10),
        ("clustered", 1000, 30),
        ("clustered", 3000, 60),
        ("clustered", 8400, 100),
        ("uniform", 5000, 0),
    ]
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, opencv {cv2.__version__ if cv2 else 'n/a'}, "
          f"{os.cpu_count()} CPUs ({platform.machine()})")
    print(f"torch.set_num_threads({args.torch_threads}), cv2.setNumThreads(1), numpy single-threaded; "
          f"IoU threshold {args.iou}; median of {args.rounds} interleaved rounds; float32 inputs\n")
    header = (f"{'case':<22}{'kept':>6}{'sdk us':>10}{'tv us':>10}{'sdk/tv':>8}{'target':>8}"
              f"{'cv2 us':>10}{'sdk/cv2':>9}{'cv2 kept':>10}")
    print(header)
    print("-" * len(header))
    ok = True
    for kind, n, n_obj in cases:
        if kind == "clustered":
            boxes, scores = clustered(n, n_obj, rng)
            name, target = f"clustered {n} ({n_obj} obj)", CLUSTERED_TARGET
        else:
            boxes, scores = uniform(n, rng)
            name, target = f"uniform {n}", UNIFORM_TARGET
        tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
        expected = torchvision.ops.nms(tb, ts, args.iou).numpy()
        got = nms(boxes, scores, args.iou)
        if not np.array_equal(got, expected):
            print(f"{name}: MISMATCH with torchvision ({len(got)} vs {len(expected)} kept)")
            return 1
        fns = {
            "sdk": lambda: nms(boxes, scores, args.iou),
            "tv": lambda: torchvision.ops.nms(tb, ts, args.iou),
        }
        cv2_kept = "-"
        if cv2 is not None:
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
            fns["cv2"] = lambda: cv2.dnn.NMSBoxes(xywh, scores, 0.0, args.iou)
            cv2_kept = str(len(fns["cv2"]()))
        med = time_interleaved(fns, args.rounds)
        ratio = med["sdk"] / med["tv"]
        ok &= ratio <= target
        cv2_us = f"{med['cv2'] * 1e6:10.1f}" if "cv2" in med else f"{'-':>10}"
        cv2_ratio = f"{med['sdk'] / med['cv2']:9.2f}" if "cv2" in med else f"{'-':>9}"
        print(f"{name:<22}{len(got):>6}{med['sdk'] * 1e6:10.1f}{med['tv'] * 1e6:10.1f}{ratio:8.2f}"
              f"{'<=' + format(target, '.1f'):>8}{cv2_us}{cv2_ratio}{cv2_kept:>10}")
    print(f"\nclass-aware: sdk.ops.batched_nms vs torchvision.ops.batched_nms (no target; for information)\n")
    header = f"{'case':<32}{'kept':>6}{'sdk us':>10}{'tv us':>10}{'sdk/tv':>8}"
    print(header)
    print("-" * len(header))
    cases = [(f"labelled {n} ({n_obj} obj, {c} cls)", labelled(n, n_obj, c, rng))
             for n, n_obj, c in ((300, 10, 8), (1000, 30, 80), (3000, 60, 80), (8400, 100, 80))]
    cases.append(("weak 20000 (8 cls, SSD@0.001)", weak(20000, 8, rng)))
    for name, (boxes, scores, cls) in cases:
        n = len(boxes)
        tb, ts, tc = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(cls)
        expected = torchvision.ops.batched_nms(tb, ts, tc, args.iou).numpy()
        got = batched_nms(boxes, scores, cls, args.iou)
        # above 1000 boxes torchvision orders equal scores with an unstable sort: compare the kept sets
        same = (np.array_equal(got, expected) if n <= 1000 else
                (set(got.tolist()) == set(expected.tolist()) and np.array_equal(scores[got], scores[expected])))
        if not same:
            print(f"batched {n}: MISMATCH with torchvision ({len(got)} vs {len(expected)} kept)")
            return 1
        med = time_interleaved({"sdk": lambda: batched_nms(boxes, scores, cls, args.iou),
                                "tv": lambda: torchvision.ops.batched_nms(tb, ts, tc, args.iou)}, args.rounds)
        print(f"{name:<32}{len(got):>6}{med['sdk'] * 1e6:10.1f}{med['tv'] * 1e6:10.1f}{med['sdk'] / med['tv']:8.2f}")
    print("\nsdk results identical to torchvision on every case.")
    print("all targets met" if ok else "some targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
