"""sdk.metrics (live mAP without pycocotools) against pycocotools / faster-coco-eval on the same data."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.metrics import DetectionAccumulator


def _scene(rng: np.random.Generator, n_classes: int):
    """Ground truth and noisy detections (jittered copies, duplicates, misses, false positives)."""
    n = int(rng.integers(0, 7))
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(8, 120, (n, 2))
    gt = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    gc = rng.integers(0, n_classes, n)
    dets, scores, dc = [], [], []
    for box, c in zip(gt, gc):
        for _ in range(int(rng.integers(0, 3))):          # 0 (miss), 1 or 2 (duplicate) detections
            dets.append(box + rng.normal(0, 0.08, 4) * np.r_[box[2:] - box[:2], box[2:] - box[:2]])
            scores.append(rng.uniform(0.05, 1.0))
            dc.append(c if rng.uniform() > 0.1 else rng.integers(0, n_classes))
    for _ in range(int(rng.integers(0, 4))):               # false positives
        p = rng.uniform(0, 500, 2)
        dets.append(np.r_[p, p + rng.uniform(8, 80, 2)])
        scores.append(rng.uniform(0.0, 0.6))
        dc.append(rng.integers(0, n_classes))
    scores = np.round(np.asarray(scores, np.float64), 2)   # ties in score on purpose
    return (gt, gc), (np.asarray(dets, np.float32).reshape(-1, 4), scores, np.asarray(dc, np.int64))


@pytest.mark.parametrize("library", ["pycocotools", "faster_coco_eval"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_live_map_equals_coco_library(library: str, seed: int):
    pytest.importorskip(library)
    from converters.evaluation import detection_metrics

    rng = np.random.default_rng(seed)
    n_classes = 4
    gts, preds = zip(*[_scene(rng, n_classes) for _ in range(60)])
    acc = DetectionAccumulator(n_classes)
    for (gb, gc), (db, ds, dc) in zip(gts, preds):
        acc.add(db, ds, dc, gb, gc)
    ours = acc.compute()
    ref = detection_metrics(list(gts), list(preds), class_names=[f"c{i}" for i in range(n_classes)],
                            library=library)
    assert ours["map"] == pytest.approx(ref["map50_95"], abs=1e-6)
    assert ours["map50"] == pytest.approx(ref["map50"], abs=1e-6)
    assert ours["map75"] == pytest.approx(ref["map75"], abs=1e-6)
    for k in range(n_classes):
        want = ref["ap50_per_class"][f"c{k}"]
        got = ours["per_class_ap50"][k]
        assert (got is None) == (want is None)
        if want is not None:
            assert got == pytest.approx(want, abs=1e-6)
    assert 0.2 < ours["map50"] < 0.95                      # the data is neither trivial nor hopeless


def test_perfect_and_empty_cases():
    acc = DetectionAccumulator(2)
    gt = np.array([[0, 0, 10, 10], [20, 20, 40, 50]], np.float32)
    acc.add(gt, [0.9, 0.8], [0, 1], gt, [0, 1])
    acc.add(np.zeros((0, 4)), [], [], np.zeros((0, 4)), [])      # an image with nothing at all
    out = acc.compute()
    assert out["map"] == pytest.approx(1.0) and out["map50"] == pytest.approx(1.0)
    assert out["images"] == 2 and out["ground_truth"] == 2
    miss = DetectionAccumulator(3)
    miss.add(np.zeros((0, 4)), [], [], gt, [0, 1])
    res = miss.compute()
    assert res["map50"] == 0.0 and res["per_class_ap50"][2] is None
    assert np.isnan(DetectionAccumulator(1).compute()["map"])


def test_bad_input_messages():
    acc = DetectionAccumulator(2)
    with pytest.raises(ValueError, match=r"of one length, got 1, 2, 1"):
        acc.add([[0, 0, 1, 1]], [0.5, 0.4], [0], np.zeros((0, 4)), [])
    with pytest.raises(ValueError, match=r"gt_class_ids: expected values in 0..1, got 0..5"):
        acc.add(np.zeros((0, 4)), [], [], [[0, 0, 1, 1], [1, 1, 2, 2]], [0, 5])
    with pytest.raises(ValueError, match="num_classes"):
        DetectionAccumulator(0)
