"""COCO detection metrics (mAP@[.5:.95], mAP50, per-class AP) computed by faster-coco-eval or pycocotools.

The metric is not re-implemented here: ground truth and predictions become in-memory COCO objects and the
library's ``COCOeval`` (``iouType="bbox"``) does the matching and the 101-point interpolated AP.

Box convention. Boxes are ``x1, y1, x2, y2`` pixels in the pixel-edge convention (``x2`` = last covered
column + 1), so a COCO ``bbox`` is ``[x1, y1, x2 - x1, y2 - y1]`` with no ``+ 1`` -- the same convention as
modern pycocotools, whose IoU is ``inter / union`` of those ``w * h`` rectangles. ``area`` is ``w * h`` for
ground truth and predictions alike (predictions get it from the library's ``loadRes`` rule), which drives the
small / medium / large split (32**2 and 96**2 pixels); ``iscrowd`` is 0. Ground truth with ``iscrowd`` is
not supported (the readers skip crowd annotations).
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from typing import Any, Optional, Sequence

import numpy as np

from sdk.results import Detections

from ..data._common import detection_item, progress as _progress
from .detection_confusion import SIZE_EDGES, _by_size, _confusion, _outcomes, confusion_summary
from .predictor import check_result, predictor_name

__all__ = ["evaluate_detection", "detection_metrics", "coco_library", "COCO_LIBRARIES"]

logger = logging.getLogger(__name__)

#: Supported COCO evaluation libraries, in the order ``library="auto"`` tries them.
COCO_LIBRARIES = ("faster_coco_eval", "pycocotools")
_STAT_NAMES = ("map50_95", "map50", "map75", "map_small", "map_medium", "map_large", "ar1", "ar10", "ar_max",
               "ar_small", "ar_medium", "ar_large")


def coco_library(library: str = "auto") -> str:
    """Resolve which COCO library to use.

    Args:
        library: ``"auto"`` (faster-coco-eval if installed, else pycocotools), ``"faster_coco_eval"`` or
            ``"pycocotools"``.

    Returns:
        The module name.

    Raises:
        ValueError: for an unknown name.
        ImportError: when the requested library (or, for ``"auto"``, either) is not installed; the message has
            the pip line.
    """
    import importlib.util

    names = COCO_LIBRARIES if library == "auto" else (library,)
    if library != "auto" and library not in COCO_LIBRARIES:
        raise ValueError(f"library: expected 'auto' or one of {COCO_LIBRARIES}, got {library!r}")
    for name in names:
        if importlib.util.find_spec(name) is not None:
            return name
    raise ImportError(f"COCO evaluation needs {' or '.join(names)}: pip install "
                      f"{' '.join(n.replace('_', '-') for n in names)} (or pip install 'edgesdk[convert]')")


def _library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], (b[:, 2] - b[:, 0]).clip(0), (b[:, 3] - b[:, 1]).clip(0)], axis=1)


def _as_prediction(pred: Any, index: int) -> tuple:
    if isinstance(pred, Detections):
        return pred.xyxy, pred.confidence, pred.class_id
    if isinstance(pred, (tuple, list)) and len(pred) == 3:
        boxes = np.asarray(pred[0], np.float32).reshape(-1, 4)
        scores = np.asarray(pred[1], np.float32).reshape(-1)
        cls = np.asarray(pred[2], np.int64).reshape(-1)
        if not boxes.shape[0] == scores.shape[0] == cls.shape[0]:
            raise ValueError(f"prediction {index}: expected boxes (N, 4), scores (N,), class_ids (N,), got "
                             f"{boxes.shape}, {scores.shape}, {cls.shape}")
        return boxes, scores, cls
    raise TypeError(f"prediction {index}: expected Detections or (boxes, scores, class_ids), got {type(pred).__name__}")


def _coco_dicts(ground_truth: Sequence, predictions: Sequence, num_classes: int,
                image_sizes: Optional[Sequence]) -> tuple:
    if len(ground_truth) != len(predictions):
        raise ValueError(f"expected one prediction per image, got {len(predictions)} predictions for "
                         f"{len(ground_truth)} images")
    if image_sizes is not None and len(image_sizes) != len(ground_truth):
        raise ValueError(f"image_sizes: expected {len(ground_truth)} (height, width) pairs, got {len(image_sizes)}")
    images, gt_anns, dt_anns = [], [], []
    n_dets = np.zeros(num_classes, np.int64)
    for i, (gt, pred) in enumerate(zip(ground_truth, predictions)):
        image = {"id": i + 1}
        if image_sizes is not None:
            h, w = image_sizes[i]
            image.update(height=int(h), width=int(w))
        images.append(image)
        boxes = np.asarray(gt[0], np.float32).reshape(-1, 4)
        cls = np.asarray(gt[1], np.int64).reshape(-1)
        if cls.shape[0] != boxes.shape[0]:
            raise ValueError(f"ground truth {i}: expected one class id per box, got {boxes.shape[0]} boxes and "
                             f"{cls.shape[0]} ids")
        if cls.size and (cls.min() < 0 or cls.max() >= num_classes):
            raise ValueError(f"ground truth {i}: expected class ids in 0..{num_classes - 1}, got {sorted(set(cls.tolist()))}")
        for (x, y, w, h), c in zip(_xywh(boxes), cls):
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0})
        pboxes, scores, pcls = _as_prediction(pred, i)
        if not (np.all(np.isfinite(pboxes)) and np.all(np.isfinite(scores))):
            raise ValueError(f"prediction {i}: expected finite boxes and scores, got NaN/Inf")
        if pcls.size and (pcls.min() < 0 or pcls.max() >= num_classes):
            raise ValueError(f"prediction {i}: expected class ids in 0..{num_classes - 1} (class_names), got "
                             f"{sorted(set(pcls.tolist()))}")
        np.add.at(n_dets, pcls, 1)
        for (x, y, w, h), s, c in zip(_xywh(pboxes), scores, pcls):
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h),
                            "score": float(s), "iscrowd": 0})
    cats = [{"id": k + 1, "name": str(k)} for k in range(num_classes)]
    gt = {"images": images, "annotations": gt_anns, "categories": cats}
    dt = {"images": list(images), "annotations": dt_anns, "categories": list(cats)}
    return gt, dt, n_dets


def _run_cocoeval(gt: dict, dt: dict, library: str, max_dets: int) -> tuple:
    """Run COCOeval; return ``(stats (12,), precision (T, R, K, A, M), iou_thresholds, recall_thresholds)``."""
    quiet = contextlib.redirect_stdout(io.StringIO())
    if library == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        def noop(*args: Any, **kwargs: Any) -> None:
            return None

        with quiet:
            coco_gt, coco_dt = COCO(print_function=noop), COCO(print_function=noop)
            coco_gt.dataset, coco_dt.dataset = gt, dt
            coco_gt.createIndex()
            coco_dt.createIndex()
            ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=noop)
            ev.params.maxDets = [1, 10, max_dets]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with quiet:
            coco_gt, coco_dt = COCO(), COCO()
            coco_gt.dataset, coco_dt.dataset = gt, dt
            coco_gt.createIndex()
            coco_dt.createIndex()
            ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
            ev.params.maxDets = [1, 10, max_dets]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    stats = np.asarray(ev.stats, np.float64)[:12]
    precision = np.asarray(ev.eval["precision"], np.float64)
    return stats, precision, np.asarray(ev.params.iouThrs, np.float64), np.asarray(ev.params.recThrs, np.float64)


def _agnostic_stats(gt: dict, dt: dict, library: str, max_dets: int) -> tuple:
    """``(map50_95, map50)`` of COCOeval with every category merged into one (None without ground truth)."""
    if not gt["annotations"]:
        return None, None
    one = [{"id": 1, "name": "object"}]
    merged_gt = dict(gt, annotations=[dict(a, category_id=1) for a in gt["annotations"]], categories=one)
    merged_dt = dict(dt, annotations=[dict(a, category_id=1) for a in dt["annotations"]], categories=one)
    stats = _run_cocoeval(merged_gt, merged_dt, library, max_dets)[0]
    return _metric(stats[0]), _metric(stats[1])


def _metric(v: float) -> Optional[float]:
    """COCOeval marks "no ground truth" with -1: report None (JSON null) instead."""
    return None if v < 0 or not math.isfinite(v) else float(v)


def _mean_valid(a: np.ndarray) -> Optional[float]:
    valid = a[a > -1]
    return float(valid.mean()) if valid.size else None


def _curve(p: np.ndarray) -> Optional[list]:
    return None if np.all(p < 0) else [round(float(v), 5) for v in p.clip(0)]


def detection_metrics(ground_truth: Sequence, predictions: Sequence, *, class_names: Sequence[str],
                      image_sizes: Optional[Sequence] = None, max_dets: int = 100, library: str = "auto",
                      confusion_conf: float = 0.25, confusion_iou: float = 0.45,
                      input_hw: Optional[Sequence[int]] = None, resize: str = "letterbox",
                      crop_fraction: float = 1.0) -> dict:
    """COCO box metrics of predictions against ground truth (no model involved).

    Args:
        ground_truth: per image, ``(boxes, class_ids)``: float (N, 4) xyxy pixels and int (N,) in ``0..C-1``.
        predictions: per image, a :class:`~sdk.results.Detections` or ``(boxes (M, 4), scores (M,),
            class_ids (M,))``.
        class_names: the C class names (class id ``k`` is COCO category ``k + 1``).
        image_sizes: optional per-image ``(height, width)`` (recorded in the COCO images; not used for bbox IoU).
        max_dets: detections kept per image, highest scores first (COCO: 100); at least 10.
        library: ``"auto"``, ``"faster_coco_eval"`` or ``"pycocotools"`` (see :func:`coco_library`).
        confusion_conf: confidence threshold of the confusion matrix's operating point.
        confusion_iou: IoU a detection needs to count as finding an object in the confusion matrix.
        input_hw: the network input ``(height, width)``: object sizes in ``by_size`` are measured there
            (needs ``image_sizes``); default: in image pixels.
        resize: how the runtime fits images to ``input_hw`` (``"letterbox"``, ``"center_crop"``, ``"stretch"``).
        crop_fraction: with ``center_crop``, the fraction of the resized image kept.

    Returns:
        JSON-ready dict: ``map50_95``, ``map50``, ``map75``, ``map_small/medium/large``, ``ar1``, ``ar10``,
        ``ar_max`` (AR at ``max_dets``), ``ar_small/medium/large`` (None where there is no ground truth),
        ``ap50_per_class`` and ``per_class`` (``{name: {ap50, ap50_95, n_gt, n_dets}}``, APs None for classes
        without ground truth), ``n_images``, ``n_gt``, ``n_dets``, ``max_dets``, ``library``,
        ``iou_thresholds``, and ``pr_curves`` (``recall`` (101,), ``precision_iou50`` and
        ``precision_iou50_95``: ``{name: (101,) list or None}``, the interpolated precision of COCOeval's
        ``precision`` array, for :func:`~converters.evaluation.plot_pr_curves`);
        ``agnostic_map50`` / ``agnostic_map50_95``: the same COCOeval with every class merged into one, over
        the same detections (``max_dets`` then counts every class together) -- the gap to ``map50`` is what
        wrong class labels cost (a localiser that finds everything but names it wrongly scores high here and
        low above); ``confusion``: ``matrix``
        ((C + 1) x (C + 1) counts, rows true class then "background", columns predicted class then "missed"),
        ``rows``, ``columns``, ``conf``, ``iou`` and ``summary`` (see
        :func:`~converters.evaluation.detection_confusion.detection_confusion_matrix`); ``by_size``: the same
        operating point's outcomes by object side (:func:`~converters.evaluation.detection_confusion.recall_by_size`).

    Raises:
        ValueError: mismatched lengths, class ids outside ``class_names``, non-finite predictions, bad max_dets.
        ImportError: no COCO library installed.
    """
    if not isinstance(max_dets, (int, np.integer)) or max_dets < 10:
        raise ValueError(f"max_dets: expected an int >= 10, got {max_dets!r}")
    names = [str(n) for n in class_names]
    if not names:
        raise ValueError("class_names: expected at least one class name, got none")
    lib = coco_library(library)
    gt, dt, n_dets = _coco_dicts(ground_truth, predictions, len(names), image_sizes)
    preds = [_as_prediction(p, i) for i, p in enumerate(predictions)]
    matched = _outcomes(ground_truth, preds, len(names), confusion_conf, confusion_iou)  # one matching, two views
    cm = _confusion(matched, len(names))
    by_size = _by_size(matched, ground_truth, image_sizes=image_sizes, input_hw=input_hw, resize=resize,
                       crop_fraction=crop_fraction, edges=SIZE_EDGES, conf=confusion_conf, iou=confusion_iou)
    n_gt = np.bincount(np.array([a["category_id"] - 1 for a in gt["annotations"]], np.int64),
                       minlength=len(names))
    if gt["annotations"]:
        stats, precision, iou_thrs, rec_thrs = _run_cocoeval(gt, dt, lib, int(max_dets))
    else:  # COCOeval has nothing to match: every metric is undefined
        logger.warning("detection_metrics: no ground-truth boxes in %d images; metrics are undefined", len(gt["images"]))
        stats = np.full(12, -1.0)
        iou_thrs, rec_thrs = np.linspace(0.5, 0.95, 10), np.linspace(0, 1, 101)
        precision = np.full((10, 101, len(names), 4, 3), -1.0)
    agnostic = _agnostic_stats(gt, dt, lib, int(max_dets))
    per_class = {}
    for k, name in enumerate(names):
        p = precision[:, :, k, 0, -1]  # all IoUs, all recalls, class k, area "all", max_dets
        per_class[name] = {"ap50": _mean_valid(p[0]), "ap50_95": _mean_valid(p), "n_gt": int(n_gt[k]),
                           "n_dets": int(n_dets[k])}
    report = {"task": "detect", "library": f"{lib} {_library_version(lib)}"}
    report.update({key: _metric(v) for key, v in zip(_STAT_NAMES, stats)})
    report.update({
        "agnostic_map50": agnostic[1],
        "agnostic_map50_95": agnostic[0],
        "ap50_per_class": {n: per_class[n]["ap50"] for n in names},
        "per_class": per_class,
        "class_names": names,
        "n_images": len(gt["images"]),
        "n_gt": len(gt["annotations"]),
        "n_dets": len(dt["annotations"]),
        "max_dets": int(max_dets),
        "iou_thresholds": [round(float(t), 2) for t in iou_thrs],
        "confusion": {"matrix": cm.tolist(), "rows": names + ["background"], "columns": names + ["missed"],
                      "conf": float(confusion_conf), "iou": float(confusion_iou), "summary": confusion_summary(cm)},
        "by_size": by_size,
        "pr_curves": {
            "recall": [round(float(r), 2) for r in rec_thrs],
            "precision_iou50": {n: _curve(precision[0, :, k, 0, -1]) for k, n in enumerate(names)},
            "precision_iou50_95": {n: (None if np.all(precision[:, :, k, 0, -1] < 0) else
                                       [round(float(v), 5) for v in precision[:, :, k, 0, -1].clip(0).mean(0)])
                                   for k, n in enumerate(names)},
        },
    })
    return report


def _network_input(predictor: Any) -> dict:
    """``{"input_hw", "resize", "crop_fraction"}`` of a predictor with an ``sdk`` contract and a static input
    size, else {} (object sizes then stay in image pixels)."""
    from sdk.errors import SDKError

    inp = getattr(getattr(predictor, "contract", None), "input", None)
    try:
        hw = getattr(inp, "size_hw", None)
    except SDKError:  # a dynamic height / width: no single input size to measure at
        return {}
    resize = getattr(inp, "resize", None)
    if hw is None or resize is None:
        return {}
    return {"input_hw": tuple(int(v) for v in hw), "resize": str(resize),
            "crop_fraction": float(getattr(inp, "crop_fraction", 1.0))}


def evaluate_detection(predictor: Any, dataset: Sequence, *, class_names: Optional[Sequence[str]] = None,
                       progress: bool = True, max_dets: int = 100, library: str = "auto") -> dict:
    """Run a detector over a dataset and compute COCO metrics (see :func:`detection_metrics`).

    Args:
        predictor: ``predictor(image) -> Detections`` in that image's pixels (an ``sdk.load`` model, or a
            :class:`~converters.evaluation.CallablePredictor`); run it with a low confidence threshold.
        dataset: sequence of ``(image, boxes, class_ids)`` items (a reader or a synthetic split).
        class_names: class names (default: ``dataset.class_names``); the predictor's class ids index them.
        progress: show a tqdm bar (only when stderr is a terminal).
        max_dets: detections per image kept by COCOeval.
        library: COCO library (``"auto"`` prefers faster-coco-eval).

    Returns:
        JSON-ready dict of :func:`detection_metrics` plus ``predictor`` and ``seconds`` / ``images_per_s``
        (the predictor's wall time). When the predictor has a contract (an ``sdk.Model``), ``by_size``
        measures objects at its network input (its ``input.size_hw`` and ``input.resize``).

    Raises:
        ValueError: no class names, a malformed item, or predictions with unknown class ids.
        TypeError: the predictor does not return Detections.
    """
    names = class_names if class_names is not None else getattr(dataset, "class_names", None)
    if not names:
        raise ValueError("class_names: expected the class names (the dataset has no .class_names)")
    gts, preds, sizes = [], [], []
    spent = 0.0
    for i in _progress(range(len(dataset)), total=len(dataset), desc="eval detect", enabled=progress):
        image, boxes, class_ids = detection_item(dataset[i], i)
        t0 = time.perf_counter()
        dets = check_result(predictor(image), Detections, i)
        spent += time.perf_counter() - t0
        gts.append((boxes, class_ids))
        preds.append(dets)
        sizes.append(image.shape[:2])
    report = detection_metrics(gts, preds, class_names=names, image_sizes=sizes, max_dets=max_dets,
                               library=library, **_network_input(predictor))
    report["predictor"] = predictor_name(predictor)
    report["seconds"] = round(spent, 3)
    report["images_per_s"] = round(len(gts) / spent, 2) if spent > 0 else None
    return report
