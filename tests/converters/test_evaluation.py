"""Tests of converters.evaluation: COCO metrics (library agreement and hand-checkable cases), classification,
verification (against sklearn), ground-truth predictors, plots.

Imports nothing heavy at module level (no torch, no COCO library, no sklearn, no matplotlib).
"""
from __future__ import annotations

import hashlib
import json
import math
import types
from pathlib import Path

import numpy as np
import pytest

from converters.data import make_split
from converters.evaluation import (CallablePredictor, Predictor, calibrate_threshold, classification_metrics,
                                   coco_library, detection_metrics, embedding_distances, evaluate_classification,
                                   evaluate_detection, evaluate_embeddings, evaluate_verification, plot_confusion_matrix,
                                   plot_pr_curves, plot_recall_by_size, plot_roc, roc_curve, save_plots)
from converters.evaluation.detection_confusion import confusion_summary, detection_confusion_matrix, recall_by_size
from sdk.results import Classification, Detections, Embedding
from tests.conftest import has_module

LIBS = [lib for lib in ("faster_coco_eval", "pycocotools") if has_module(lib)]
needs_coco = pytest.mark.skipif(not LIBS, reason="neither faster-coco-eval nor pycocotools is installed")


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------- COCO: hand-checkable


def _one(boxes, scores, classes) -> tuple:
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
            np.asarray(classes, np.int64))


GT_SQUARE = [(np.array([[0, 0, 100, 100]], np.float32), np.array([0]))]

# (name, ground truth, predictions, expected {metric: value}); 101 recall points, 10 IoU thresholds.
HAND_CASES = [
    ("perfect", GT_SQUARE, [_one([[0, 0, 100, 100]], [0.9], [0])],
     {"map50_95": 1.0, "map50": 1.0, "map75": 1.0, "agnostic_map50": 1.0}),
    # shift by 20 px: IoU = 80*100 / (120*100) = 2/3 -> matched at IoU thresholds .50 .55 .60 .65 = 4 of 10
    ("iou_2_3", GT_SQUARE, [_one([[20, 0, 120, 100]], [0.9], [0])],
     {"map50_95": 0.4, "map50": 1.0, "map75": 0.0, "agnostic_map50_95": 0.4}),
    # shift by 25 px: IoU = 75/125 = 0.6 exactly; COCOeval matches when IoU >= threshold, so .50 .55 .60 = 3 of 10
    ("iou_0_6", GT_SQUARE, [_one([[25, 0, 125, 100]], [0.9], [0])], {"map50_95": 0.3, "map50": 1.0, "map75": 0.0}),
    # shift by 80 px: IoU = 20/180 < 0.5 -> no match anywhere
    ("iou_low", GT_SQUARE, [_one([[80, 0, 180, 100]], [0.9], [0])], {"map50_95": 0.0, "map50": 0.0}),
    # half the objects found, no false positive: precision 1 for recall 0 .. 0.5 -> 51 of 101 recall points
    ("half_found", [(np.array([[0, 0, 50, 50], [60, 60, 100, 100]], np.float32), np.array([0, 0]))],
     [_one([[0, 0, 50, 50]], [0.9], [0])], {"map50_95": 51 / 101, "map50": 51 / 101}),
    # a false positive scored above the true positive: precision 1/2 at recall 1 -> AP 0.5
    ("fp_first", GT_SQUARE, [_one([[200, 200, 250, 250], [0, 0, 100, 100]], [0.9, 0.8], [0, 0])],
     {"map50_95": 0.5, "map50": 0.5}),
    # the right box with the wrong class: class 0 has AP 0, class 1 has no ground truth and is left out
    # (class-agnostic, the box is perfect: what a wrong label costs shows as the gap)
    ("wrong_class", GT_SQUARE, [_one([[0, 0, 100, 100]], [0.9], [1])],
     {"map50_95": 0.0, "map50": 0.0, "agnostic_map50": 1.0, "agnostic_map50_95": 1.0}),
    ("no_predictions", GT_SQUARE, [Detections.empty()], {"map50_95": 0.0, "map50": 0.0}),
    # 10 false positives above the true positive: precision 1/11 at recall 1 -> AP 1/11
    ("ten_fps", GT_SQUARE, [_one([[0, 0, 100, 100]] + [[200 + 10 * k, 200, 205 + 10 * k, 205] for k in range(10)],
                                 [0.1] + [0.9] * 10, [0] * 11)], {"map50": 1 / 11, "map50_95": 1 / 11}),
]


@needs_coco
@pytest.mark.parametrize("library", LIBS)
@pytest.mark.parametrize("name, gt, preds, expected", HAND_CASES, ids=[c[0] for c in HAND_CASES])
def test_coco_hand_checkable(library: str, name: str, gt: list, preds: list, expected: dict) -> None:
    report = detection_metrics(gt, preds, class_names=["a", "b"], library=library)
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-6), (key, report[key])
    assert report["per_class"]["b"]["ap50"] is None      # no ground truth of class "b"
    assert report["n_gt"] == sum(len(g[1]) for g in gt) and report["n_images"] == 1
    assert report["library"].startswith(library)
    json.dumps(report)


def test_detection_confusion_matrix_hand_checked() -> None:
    """Two images, classes a/b: one hit, one right place but wrong class, one miss, one invented box, one box
    under the confidence threshold, and a duplicate that loses the one-to-one match."""
    gts = [(np.array([[0, 0, 100, 100], [200, 0, 300, 100], [0, 200, 50, 250]], np.float32), np.array([0, 0, 1])),
           (np.array([[10, 10, 60, 60]], np.float32), np.array([1]))]
    preds = [_one([[2, 0, 100, 100], [200, 0, 300, 98], [400, 400, 450, 450], [0, 200, 50, 250]],
                  [0.9, 0.8, 0.7, 0.1], [0, 1, 1, 1]),             # hit a, a called b, invented b, b below conf
             _one([[10, 10, 60, 60], [12, 10, 60, 60]], [0.9, 0.85], [1, 1])]   # hit b, duplicate b invented
    cm = detection_confusion_matrix(gts, preds, 2, conf=0.25, iou=0.45)
    #                     pred a  pred b  missed
    np.testing.assert_array_equal(cm, [[1, 1, 0],    # true a
                                       [0, 1, 1],    # true b (the one at 0.1 is below conf: missed)
                                       [0, 2, 0]])   # background: the invented box and the duplicate
    summary = confusion_summary(cm)
    assert summary == {"objects": 4, "found_right_class": 0.5, "found_wrong_class": 0.25, "missed": 0.25,
                       "detections": 5, "false_positives": 0.4}
    # a lower threshold lets the 0.1 box find its object
    assert detection_confusion_matrix(gts, preds, 2, conf=0.05)[1].tolist() == [0, 2, 0]
    # greedy by IoU, not by score: the better-placed of two candidates takes the object
    one = [(np.array([[0, 0, 100, 100]], np.float32), np.array([0]))]
    two = [_one([[30, 0, 130, 100], [5, 0, 105, 100]], [0.9, 0.5], [1, 0])]
    assert detection_confusion_matrix(one, two, 2).tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_detection_confusion_matrix_sums_and_errors() -> None:
    gts, preds = _random_case(3)
    cm = detection_confusion_matrix(gts, preds, 4, conf=0.3)
    n_gt = np.bincount(np.concatenate([g[1] for g in gts]), minlength=4)
    kept = np.concatenate([p.class_id[p.confidence >= 0.3] for p in preds])
    assert cm[:4].sum(1).tolist() == n_gt.tolist()                      # every object is found or missed once
    assert cm[:, :4].sum(0).tolist() == np.bincount(kept, minlength=4).tolist()   # every kept box counted once
    assert cm[4, 4] == 0
    with pytest.raises(ValueError, match="conf"):
        detection_confusion_matrix(gts, preds, 4, conf=1.5)
    with pytest.raises(ValueError, match="iou"):
        detection_confusion_matrix(gts, preds, 4, iou=0.0)
    with pytest.raises(ValueError, match="class ids in 0..1"):
        detection_confusion_matrix(gts, preds, 2)
    one = [(np.array([[0, 0, 10, 10]], np.float32), np.array([0]))]
    with pytest.raises(ValueError, match="prediction 0: expected finite boxes and scores"):
        detection_confusion_matrix(one, [_one([[0, 0, 10, 10]], [np.nan], [0])], 2)
    with pytest.raises(ValueError, match=r"prediction 0: expected boxes \(M, 4\), scores \(M,\)"):
        detection_confusion_matrix(one, [(np.zeros((2, 4)), np.ones(3), np.zeros(2))], 2)
    with pytest.raises(ValueError, match=r"ground truth 0: expected boxes \(N, 4\) and class_ids \(N,\)"):
        detection_confusion_matrix([(np.zeros((2, 4)), np.array([0]))], [_one([], [], [])], 2)


def test_recall_by_size_hand_checked() -> None:
    """Sizes as sqrt(w * h), binned in image pixels or at the network input (letterbox, stretch, center crop);
    each bin splits its objects into right class / wrong class / missed at the operating point."""
    gts = [(np.array([[0, 0, 6, 6], [100, 0, 120, 20], [0, 100, 60, 160], [200, 200, 210, 240]], np.float32),
            np.array([0, 1, 0, 1]))]                     # sides 6, 20, 60, 20 (10 x 40)
    preds = [_one([[0, 0, 6, 6], [100, 0, 120, 20], [0, 100, 60, 160]], [0.9, 0.9, 0.1], [0, 0, 0])]
    out = recall_by_size(gts, preds, 2, edges=(0, 8, 32))
    assert out["measure"] == "image px"
    assert [(b["min_px"], b["max_px"], b["objects"]) for b in out["bins"]] == [(0, 8, 1), (8, 32, 2), (32, None, 1)]
    assert [(b["found_right_class"], b["found_wrong_class"], b["missed"]) for b in out["bins"]] == \
        [(1.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.0, 0.0, 1.0)]   # the 60 px box scores under conf: missed
    # at a 160 px letterboxed input a 640x480 image shrinks 4x: sides 1.5, 5, 15, 5
    sizes = [(480, 640)]
    low = recall_by_size(gts, preds, 2, image_sizes=sizes, input_hw=(160, 160), edges=(0, 8, 32))
    assert low["measure"] == "input px" and [b["objects"] for b in low["bins"]] == [3, 1, 0]
    assert low["bins"][2]["found_right_class"] == 0.0          # an empty bin reports zeros, not NaN
    # stretch scales the axes apart (0.25 and 1/3: side x 0.289); center crop fills (x 1/3)
    st = recall_by_size(gts, preds, 2, image_sizes=sizes, input_hw=(160, 160), resize="stretch", edges=(0, 5.8, 32))
    assert [b["objects"] for b in st["bins"]] == [3, 1, 0]     # 60 * 0.289 = 17.3; 20 * 0.289 = 5.77
    cc = recall_by_size(gts, preds, 2, image_sizes=sizes, input_hw=(160, 160), resize="center_crop",
                        edges=(0, 6.5, 32))
    assert [b["objects"] for b in cc["bins"]] == [1, 3, 0]     # 6 / 3 = 2; 20 / 3 = 6.67
    cc = recall_by_size(gts, preds, 2, image_sizes=sizes, input_hw=(160, 160), resize="center_crop",
                        crop_fraction=0.5, edges=(0, 6.5, 32))
    assert [b["objects"] for b in cc["bins"]] == [1, 2, 1]     # x 2/3: 4, 13.3, 40, 13.3
    # the bins add up to the confusion matrix's rows
    rgts, rpreds = _random_case(5)
    cm = detection_confusion_matrix(rgts, rpreds, 4, conf=0.3)
    bins = recall_by_size(rgts, rpreds, 4, conf=0.3)["bins"]
    total = sum(b["objects"] for b in bins)
    right = sum(round(b["objects"] * b["found_right_class"]) for b in bins)
    missed = sum(round(b["objects"] * b["missed"]) for b in bins)
    assert (total, right, missed) == (int(cm[:4].sum()), int(np.trace(cm[:4, :4])), int(cm[:4, 4].sum()))
    for kwargs, match in (({"edges": (1, 8)}, "edges"), ({"edges": (0, 8, 8)}, "edges"),
                          ({"resize": "crop"}, "resize"), ({"input_hw": (160, 160)}, "image_sizes"),
                          ({"crop_fraction": 0.0}, "crop_fraction"),
                          ({"conf": -0.1}, "conf")):
        with pytest.raises(ValueError, match=match):
            recall_by_size(gts, preds, 2, **kwargs)


@needs_coco
def test_detection_report_carries_confusion_and_agnostic_map() -> None:
    gts, preds = _random_case(1)
    report = detection_metrics(gts, preds, class_names=["a", "b", "c", "d"], confusion_conf=0.3)
    conf = report["confusion"]
    assert conf["rows"][-1] == "background" and conf["columns"][-1] == "missed" and conf["conf"] == 0.3
    np.testing.assert_array_equal(conf["matrix"], detection_confusion_matrix(gts, preds, 4, conf=0.3))
    # the class-agnostic numbers are the one-class evaluation of the same boxes and scores
    merged = detection_metrics([(b, np.zeros_like(c)) for b, c in gts],
                               [(p.xyxy, p.confidence, np.zeros_like(p.class_id)) for p in preds], class_names=["obj"])
    assert report["agnostic_map50"] == pytest.approx(merged["map50"], abs=1e-12)
    assert report["agnostic_map50_95"] == pytest.approx(merged["map50_95"], abs=1e-12)
    assert merged["map50"] != pytest.approx(report["map50"], abs=1e-3)   # the case has class swaps
    assert report["by_size"] == recall_by_size(gts, preds, 4, conf=0.3)  # no input size given: image pixels
    json.dumps(report)


@needs_coco
@pytest.mark.parametrize("library", LIBS)
def test_coco_max_dets_and_empty_ground_truth(library: str) -> None:
    gt, preds = HAND_CASES[-1][1], HAND_CASES[-1][2]
    # with 10 detections kept per image, the lowest-scored true positive is cut: AP 0
    assert detection_metrics(gt, preds, class_names=["a"], max_dets=10, library=library)["map50"] == 0.0
    report = detection_metrics([(np.zeros((0, 4)), np.zeros(0))], preds, class_names=["a"], library=library)
    assert report["map50"] is None and report["map50_95"] is None and report["ap50_per_class"] == {"a": None}


@needs_coco
def test_coco_input_errors() -> None:
    with pytest.raises(ValueError, match="class ids in 0..0"):
        detection_metrics(GT_SQUARE, [_one([[0, 0, 1, 1]], [0.5], [3])], class_names=["a"])
    with pytest.raises(ValueError, match="one prediction per image"):
        detection_metrics(GT_SQUARE, [], class_names=["a"])
    with pytest.raises(ValueError, match="finite"):
        detection_metrics(GT_SQUARE, [_one([[0, 0, np.nan, 1]], [0.5], [0])], class_names=["a"])
    with pytest.raises(ValueError, match="library"):
        coco_library("detectron")


def _random_case(seed: int = 0, n_images: int = 30, n_classes: int = 4) -> tuple:
    """Ground truth and noisy predictions: jittered hits, misses, class swaps, false positives, empty images."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n_images):
        n = 0 if i % 7 == 3 else int(rng.integers(1, 8))
        xy = rng.uniform(0, 250, (n, 2))
        wh = rng.uniform(8, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        cls = rng.integers(0, n_classes - 1, n)          # the last class never has ground truth
        keep = rng.random(n) < 0.8
        jitter = rng.normal(0, 0.12, (n, 4)) * np.concatenate([wh, wh], 1)
        pb = (boxes + jitter)[keep]
        pc = np.where(rng.random(n) < 0.1, rng.integers(0, n_classes, n), cls)[keep]
        m = int(rng.integers(0, 4))
        fxy = rng.uniform(0, 300, (m, 2))
        fb = np.concatenate([fxy, fxy + rng.uniform(5, 60, (m, 2))], 1)
        pboxes = np.concatenate([pb, fb]).astype(np.float32)
        pcls = np.concatenate([pc, rng.integers(0, n_classes, m)]).astype(np.int64)
        scores = rng.uniform(0.05, 1.0, len(pcls)).round(3).astype(np.float32)   # rounded: some ties
        gts.append((boxes, cls))
        preds.append(Detections(pboxes, scores, pcls))
    return gts, preds


@pytest.mark.skipif(len(LIBS) < 2, reason="needs both faster-coco-eval and pycocotools to compare them")
def test_faster_coco_eval_agrees_with_pycocotools() -> None:
    gts, preds = _random_case()
    names = ["a", "b", "c", "d"]
    fast = detection_metrics(gts, preds, class_names=names, library="faster_coco_eval")
    ref = detection_metrics(gts, preds, class_names=names, library="pycocotools")
    assert 0.2 < ref["map50_95"] < 0.9 and ref["map50"] > ref["map50_95"]        # a non-trivial case
    for key in ("map50_95", "map50", "map75", "map_small", "map_medium", "map_large", "ar1", "ar10", "ar_max",
                "ar_small", "ar_medium", "ar_large"):
        assert (fast[key] is None) == (ref[key] is None), key
        if ref[key] is not None:
            assert abs(fast[key] - ref[key]) < 1e-6, (key, fast[key], ref[key])
    for name in names:
        for key in ("ap50", "ap50_95"):
            a, b = fast["per_class"][name][key], ref["per_class"][name][key]
            assert (a is None) == (b is None) and (a is None or abs(a - b) < 1e-6), (name, key, a, b)
        c, d = fast["pr_curves"]["precision_iou50"][name], ref["pr_curves"]["precision_iou50"][name]
        assert (c is None) == (d is None) and (c is None or np.allclose(c, d, atol=1e-4))
    assert ref["per_class"]["d"]["ap50"] is None and ref["per_class"]["d"]["n_dets"] > 0
    assert coco_library("auto") == "faster_coco_eval"


# ------------------------------------------------------------------------------- predictors from ground truth


class DetectionOracle:
    """Returns a dataset's ground truth for its images (looked up by content), optionally dropping boxes."""

    def __init__(self, dataset, drop_last: bool = False) -> None:
        self.truth = {}
        for i in range(len(dataset)):
            image, boxes, cls = dataset[i]
            if drop_last and len(cls) > 1:
                boxes, cls = boxes[:-1], cls[:-1]
            self.truth[_key(image)] = (boxes, cls)
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        boxes, cls = self.truth[_key(image)]
        return Detections(boxes, np.linspace(0.9, 0.5, len(cls)), cls)


@needs_coco
def test_evaluate_detection_with_ground_truth_predictor() -> None:
    ds = make_split("val", "detect", 6, size_hw=(128, 128), max_size=64)
    oracle = DetectionOracle(ds)
    assert isinstance(oracle, Predictor)
    report = evaluate_detection(oracle, ds, progress=False)
    assert oracle.calls == 6 and report["n_images"] == 6
    assert report["n_gt"] == report["n_dets"] == sum(len(ds[i][2]) for i in range(6))
    assert report["map50_95"] == pytest.approx(1.0, abs=1e-6) and report["map50"] == pytest.approx(1.0, abs=1e-6)
    assert report["class_names"] == list(ds.class_names) and report["predictor"] == "DetectionOracle"
    assert all(v is None or v == pytest.approx(1.0, abs=1e-6) for v in report["ap50_per_class"].values())
    json.loads(json.dumps(report))
    worse = evaluate_detection(CallablePredictor(DetectionOracle(ds, drop_last=True), name="drop"), ds,
                               class_names=ds.class_names, progress=False)
    assert worse["map50"] < 1.0 and worse["predictor"] == "drop"
    with pytest.raises(TypeError, match="expected the predictor to return Detections"):
        evaluate_detection(lambda im: Classification([0], [1.0]), ds, progress=False)
    # by_size: measured at the network input of a predictor with a contract; a dynamic input size (no one
    # size to measure at) or no contract keeps image pixels
    assert report["by_size"]["measure"] == "image px"
    assert sum(b["objects"] for b in report["by_size"]["bins"]) == report["n_gt"]
    from sdk.contract import InputContract

    oracle.contract = types.SimpleNamespace(input=InputContract(shape=(1, 3, 64, 64), resize="letterbox"))
    half = evaluate_detection(oracle, ds, progress=False)["by_size"]
    assert half["measure"] == "input px"
    small = sum(b["objects"] for b in half["bins"] if b["max_px"] is not None and b["max_px"] <= 16)
    assert small > sum(b["objects"] for b in report["by_size"]["bins"] if b["max_px"] is not None
                       and b["max_px"] <= 16)                 # a 128 px image at a 64 px input: sides halve
    oracle.contract = types.SimpleNamespace(input=InputContract(shape=(1, 3, None, None)))
    assert evaluate_detection(oracle, ds, progress=False)["by_size"]["measure"] == "image px"


def test_classification_with_ground_truth_predictor() -> None:
    ds = make_split("val", "classify", 16, size=24)
    truth = {_key(ds[i][0]): ds[i][1] for i in range(len(ds))}

    def oracle(image: np.ndarray) -> Classification:
        y = truth[_key(image)]
        ranked = [y] + [c for c in range(8) if c != y][:4]
        return Classification(ranked, [0.9, 0.04, 0.03, 0.02, 0.01])

    report = evaluate_classification(CallablePredictor(oracle), ds, num_classes=8, progress=False)
    assert report["top1"] == 1.0 and report["top5"] == 1.0 and report["n"] == 16
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (8, 8) and np.array_equal(cm, np.diag(np.diag(cm))) and cm.sum() == 16
    assert report["class_names"][0] == "circle"
    json.dumps(report)
    with pytest.raises(TypeError, match="Classification"):
        CallablePredictor(lambda im: 3)(ds[0][0])


def test_classification_metrics_hand_case() -> None:
    labels = [0, 1, 2, 2]
    preds = [np.array([0, 1, 2, 3, 4]), np.array([2, 1, 0, 3, 4]), np.array([3, 0, 1, 4, 5]),
             Classification([2, 0, 1, 3, 4], [0.5, 0.2, 0.1, 0.1, 0.1])]
    r = classification_metrics(labels, preds, num_classes=6)
    assert r["top1"] == 0.5 and r["top5"] == 0.75 and r["n"] == 4
    cm = np.array(r["confusion_matrix"])
    assert cm[0, 0] == 1 and cm[1, 2] == 1 and cm[2, 3] == 1 and cm[2, 2] == 1 and cm.sum() == 4
    assert r["per_class_accuracy"] == {"0": 1.0, "1": 0.0, "2": 0.5, "3": None, "4": None, "5": None}
    # only the top-1 class ranked: top-5 cannot be told
    short = classification_metrics(labels, [p[:1] if isinstance(p, np.ndarray) else p.class_id[:1] for p in preds],
                                   num_classes=6)
    assert short["top1"] == 0.5 and short["top5"] is None
    # fewer than 5 classes: ranking all of them is enough
    assert classification_metrics([1], [np.array([0, 1])], num_classes=2)["top5"] == 1.0
    with pytest.raises(ValueError, match="predicted class ids in 0..5"):
        classification_metrics([0], [np.array([7])], num_classes=6)


# ---------------------------------------------------------------------------------------------- verification


def test_verification_hand_case() -> None:
    same, diff = [0.1, 0.2, 0.3, 0.4], [0.35, 0.5, 0.6, 0.7]
    r = evaluate_verification(same, diff)
    assert r["roc_auc"] == pytest.approx(15 / 16)      # 15 of 16 (same, diff) pairs are ordered right
    assert r["eer"] == pytest.approx(0.25) and r["eer_threshold"] == pytest.approx(0.35)
    assert r["tar_at_far"] == {"0.01": None, "0.001": None}   # 4 impostor pairs: too few for FAR 1e-2
    assert calibrate_threshold(diff, 0.25) == np.nextafter(0.5, 0)
    assert calibrate_threshold(diff, 0.0) < 0.35 and calibrate_threshold(diff, 1.0) == math.inf
    far, tar, thr = roc_curve(same, diff)
    assert far[0] == tar[0] == 0 and far[-1] == tar[-1] == 1 and thr[0] == -math.inf
    perfect = evaluate_verification([0.1, 0.2], [0.8, 0.9])
    assert perfect["roc_auc"] == 1.0 and perfect["eer"] == 0.0
    with pytest.raises(ValueError, match="finite"):
        evaluate_verification([np.nan], [1.0])
    with pytest.raises(ValueError, match="target_far"):
        calibrate_threshold(diff, 1.5)


def test_verification_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    same = rng.normal(0.35, 0.15, 600).round(2)        # rounding makes ties, inside and across the classes
    diff = rng.normal(0.8, 0.2, 4000).round(2)
    r = evaluate_verification(same, diff)
    y = np.r_[np.ones(same.size), np.zeros(diff.size)]
    score = -np.r_[same, diff]                            # closer = more likely the same identity
    assert abs(r["roc_auc"] - metrics.roc_auc_score(y, score)) < 1e-12
    fpr, tpr, thr = metrics.roc_curve(y, score, drop_intermediate=False)
    far, tar, my_thr = roc_curve(same, diff)
    np.testing.assert_allclose(far, fpr, atol=1e-12)
    np.testing.assert_allclose(tar, tpr, atol=1e-12)
    np.testing.assert_allclose(my_thr[1:], -thr[1:])
    for f in (1e-2, 1e-3):
        assert r["tar_at_far"][f"{f:g}"] == pytest.approx(tpr[fpr <= f].max(), abs=1e-12)
        t = r["threshold_at_far"][f"{f:g}"]
        assert np.mean(diff <= t) <= f and np.mean(same <= t) == pytest.approx(r["tar_at_far"][f"{f:g}"])
    t = r["eer_threshold"]
    assert abs(np.mean(diff <= t) - r["eer"]) < 0.02 and abs(np.mean(same > t) - r["eer"]) < 0.02
    assert 0 < r["eer"] < 0.2 and r["n_same"] == 600 and r["n_diff"] == 4000
    json.dumps(r)


def test_evaluate_embeddings_with_ground_truth_predictor() -> None:
    ds = make_split("test", "identity", 12, size=32, identities=4)
    truth = {_key(ds[i][0]): ds[i][1] for i in range(len(ds))}
    index = {ident: k for k, ident in enumerate(sorted(set(truth.values())))}

    def oracle(image: np.ndarray) -> Embedding:
        v = np.full(8, 0.01, np.float32)
        v[index[truth[_key(image)]]] = 1.0
        return Embedding(v)

    report = evaluate_embeddings(CallablePredictor(oracle), ds, progress=False)
    assert report["roc_auc"] == 1.0 and report["eer"] == 0.0
    assert report["n_same"] == 4 * 3 and report["n_diff"] == 66 - 12          # 12 images of 4 identities
    capped = embedding_distances(oracle, ds, max_pairs=10, progress=False)
    assert capped[1].size == 10

    pairs = make_split("test", "pairs", 6, size=32)

    def mean_colour(image: np.ndarray) -> Embedding:
        return Embedding(image.reshape(-1, 3).mean(0) + 1.0)

    same, diff = embedding_distances(mean_colour, pairs, metric="euclidean", progress=False)
    assert same.size == 3 and diff.size == 3
    a, b, _ = pairs[0]
    va, vb = mean_colour(a).vector, mean_colour(b).vector
    assert same[0] == pytest.approx(float(np.linalg.norm(va - vb)), abs=1e-6)
    with pytest.raises(TypeError, match="Embedding"):
        embedding_distances(lambda im: Detections.empty(), pairs, progress=False)


# ------------------------------------------------------------------------------------------------------ plots


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 5000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not has_module("matplotlib"), reason="matplotlib missing")
def test_plots_written(tmp_path: Path) -> None:
    cls = classification_metrics([0, 1, 2, 2, 1], [[0], [1], [1], [2], [1]], num_classes=3,
                                 class_names=["circle", "square", "star"])
    assert _is_png(plot_confusion_matrix(cls, tmp_path / "cm.png"))
    assert _is_png(plot_confusion_matrix(cls, tmp_path / "cm_counts.png", normalize=False))
    rng = np.random.default_rng(0)
    ver = evaluate_verification(rng.normal(0.3, 0.15, 500), rng.normal(0.8, 0.2, 5000))
    assert _is_png(plot_roc(ver, tmp_path / "roc.png"))
    assert _is_png(plot_roc(ver, tmp_path / "roc_lin.png", log_far=False))
    paths = save_plots(cls, tmp_path / "all") + save_plots(ver, tmp_path / "all")
    if LIBS:
        gts, preds = _random_case()
        det = detection_metrics(gts, preds, class_names=["a", "b", "c", "d"])
        assert _is_png(plot_pr_curves(det, tmp_path / "pr.png"))
        paths += save_plots(det, tmp_path / "all")
    assert all(_is_png(p) for p in paths) and len(paths) == (6 if LIBS else 2)
    if LIBS:
        assert {tmp_path / "all" / "confusion_matrix.png", tmp_path / "all" / "recall_by_size.png"} <= set(paths)
    with pytest.raises(ValueError, match="pr_curves"):
        plot_pr_curves(cls, tmp_path / "x.png")
    with pytest.raises(ValueError, match="by_size"):
        plot_recall_by_size(cls, tmp_path / "x.png")


# ------------------------------------------------------------------------------- an artifact from sdk.load


def _mean_colour_classifier(path: Path) -> Path:
    """A 3-input-mean -> 8-logit ONNX classifier (built with onnx.helper, no torch) with its sidecar contract."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 4, (3, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["mw"]), helper.make_node("Add", ["mw", "b"], ["logits"])],
        "mean_colour", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8])], initializer=[w, b, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    from sdk.synthetic import CLASSES

    contract = {"schema_version": 1, "task": "classify", "labels": list(CLASSES),
                "input": {"shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32", "color": "RGB",
                          "resize": "stretch", "scale": 1.0 / 255.0},
                "outputs": ["logits"], "decoder": {"type": "classifier", "activation": "softmax"},
                "family": "edgesdk-test", "converter": {"name": "tests/converters/test_evaluation.py"},
                "precision": "fp32"}
    path.with_suffix(".json").write_text(json.dumps(contract))
    return path


@pytest.mark.skipif(not (has_module("onnx") and has_module("onnxruntime")), reason="onnx / onnxruntime missing")
def test_evaluate_classification_of_an_sdk_model(tmp_path: Path) -> None:
    import sdk

    model = sdk.load(_mean_colour_classifier(tmp_path / "mean_colour.onnx"))
    assert isinstance(model, Predictor)
    ds = make_split("val", "classify", 12, size=32)
    report = evaluate_classification(model, ds, progress=False)
    assert report["n"] == 12 and np.array(report["confusion_matrix"]).sum() == 12
    assert 0.0 <= report["top1"] <= report["top5"] <= 1.0          # the decoder ranks 5 classes
    assert report["predictor"].endswith("mean_colour.onnx")
    # The same numbers through a CallablePredictor around the model: one code path for any callable.
    again = evaluate_classification(CallablePredictor(lambda im: model(im)), ds, num_classes=8, progress=False)
    assert again["confusion_matrix"] == report["confusion_matrix"] and again["top5"] == report["top5"]
