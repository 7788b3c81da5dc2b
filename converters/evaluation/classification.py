"""Classification metrics: top-1, top-5 and the confusion matrix, for any predictor returning Classification."""
from __future__ import annotations

import logging
import time
from typing import Any, Optional, Sequence

import numpy as np

from sdk.results import Classification

from ..data._common import progress as _progress
from .predictor import check_result, predictor_name

__all__ = ["evaluate_classification", "classification_metrics"]

logger = logging.getLogger(__name__)


def classification_metrics(labels: Sequence[int], predictions: Sequence, *, num_classes: int,
                           class_names: Optional[Sequence[str]] = None) -> dict:
    """Top-1 / top-5 accuracy and the confusion matrix from ranked predictions.

    Args:
        labels: true class id of each item, ints in ``0..num_classes-1``.
        predictions: per item, the predicted class ids best first (a :class:`~sdk.results.Classification`
            or an int array of shape (K,)); K may be 0 (no prediction: wrong, and absent from the matrix).
        num_classes: number of classes C.
        class_names: optional names (default ``"0".."C-1"``).

    Returns:
        JSON-ready dict: ``top1``, ``top5`` (None when some prediction ranks fewer than ``min(5, C)`` classes,
        so top-5 cannot be told), ``n``, ``n_no_prediction``, ``confusion_matrix`` (C x C nested lists of ints,
        rows = true class, columns = top-1 prediction), ``per_class_accuracy`` (``{name: recall or None}``),
        ``class_names``.

    Raises:
        ValueError: lengths differ, or a label or predicted id is outside ``0..C-1``.
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes: expected an int >= 1, got {num_classes!r}")
    names = [str(n) for n in class_names] if class_names is not None else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names, got {len(names)}")
    if len(labels) != len(predictions):
        raise ValueError(f"expected one prediction per label, got {len(predictions)} predictions for "
                         f"{len(labels)} labels")
    cm = np.zeros((num_classes, num_classes), np.int64)
    top1 = top5 = empty = 0
    k_needed, k_short = min(5, num_classes), 0
    for i, (y, pred) in enumerate(zip(labels, predictions)):
        y = int(y)
        if not 0 <= y < num_classes:
            raise ValueError(f"item {i}: expected a label in 0..{num_classes - 1}, got {y}")
        ids = pred.class_id if isinstance(pred, Classification) else np.asarray(pred, np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"item {i}: expected predicted class ids in 0..{num_classes - 1}, got {ids.tolist()}")
        if ids.size < k_needed:
            k_short += 1
        if ids.size == 0:
            empty += 1
            continue
        cm[y, int(ids[0])] += 1
        top1 += int(ids[0]) == y
        top5 += bool(np.any(ids[:5] == y))
    n = len(labels)
    if k_short:
        logger.warning("classification_metrics: %d of %d predictions rank fewer than %d classes; top5 is None",
                       k_short, n, k_needed)
    support = cm.sum(1) + 0
    return {
        "task": "classify",
        "top1": top1 / n if n else None,
        "top5": (top5 / n if n else None) if not k_short else None,
        "n": n,
        "n_no_prediction": empty,
        "confusion_matrix": cm.tolist(),
        "per_class_accuracy": {nm: (float(cm[k, k] / support[k]) if support[k] else None)
                               for k, nm in enumerate(names)},
        "class_names": names,
    }


def evaluate_classification(predictor: Any, dataset: Sequence, *, num_classes: Optional[int] = None,
                            class_names: Optional[Sequence[str]] = None, progress: bool = True) -> dict:
    """Run a classifier over a dataset of ``(image, class_id)`` items.

    Args:
        predictor: ``predictor(image) -> Classification`` (an ``sdk.load`` model or a
            :class:`~converters.evaluation.CallablePredictor`); it should rank at least 5 classes for top-5.
        dataset: sequence of ``(image, class_id)`` (uint8 BGR (H, W, 3), int).
        num_classes: number of classes (default: ``len(class_names)`` or ``dataset.num_classes``).
        class_names: names (default: ``dataset.class_names`` when it has them).
        progress: show a tqdm bar (only when stderr is a terminal).

    Returns:
        JSON-ready dict of :func:`classification_metrics` plus ``predictor``, ``seconds``, ``images_per_s``.

    Raises:
        ValueError: the number of classes is unknown, or labels / predictions are out of range.
        TypeError: the predictor does not return Classification.
    """
    names = class_names if class_names is not None else getattr(dataset, "class_names", None)
    if num_classes is None:
        num_classes = len(names) if names else getattr(dataset, "num_classes", None)
    if num_classes is None:
        raise ValueError("num_classes: expected the number of classes (the dataset has no class_names)")
    if names is not None and len(names) != num_classes:
        names = None if class_names is None else names
    labels, preds = [], []
    spent = 0.0
    for i in _progress(range(len(dataset)), total=len(dataset), desc="eval classify", enabled=progress):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(f"item {i}: expected (image, class_id), got {type(item).__name__}")
        t0 = time.perf_counter()
        out = check_result(predictor(np.asarray(item[0])), Classification, i)
        spent += time.perf_counter() - t0
        labels.append(int(item[1]))
        preds.append(out)
    report = classification_metrics(labels, preds, num_classes=int(num_classes), class_names=names)
    report["predictor"] = predictor_name(predictor)
    report["seconds"] = round(spent, 3)
    report["images_per_s"] = round(len(labels) / spent, 2) if spent > 0 else None
    return report
