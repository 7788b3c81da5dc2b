"""Evaluation with one code path for PyTorch models and for artifacts loaded by ``sdk.load``.

Every evaluator calls a :class:`Predictor` -- ``predictor(image_bgr_uint8) -> Detections | Classification |
Embedding`` in the image's pixels. ``sdk.Model`` is one; wrap anything else in :class:`CallablePredictor`::

    report = evaluate_detection(sdk.load("yolo.onnx"), make_split("val", "detect", 500))
    report = evaluate_classification(CallablePredictor(torch_fn), dataset, num_classes=8)
    report = evaluate_embeddings(model, make_split("test", "pairs", 2000))
    save_plots(report, "reports/")          # pr_curves.png / confusion_matrix.png / recall_by_size.png / roc.png

Detection metrics come from faster-coco-eval (preferred) or pycocotools, never re-implemented. Reports are
JSON-ready dicts (``json.dumps(report)`` works).
"""
from __future__ import annotations

from .classification import classification_metrics, evaluate_classification
from .detection import COCO_LIBRARIES, coco_library, detection_metrics, evaluate_detection
from .plots import plot_confusion_matrix, plot_pr_curves, plot_recall_by_size, plot_roc, save_plots
from .predictor import CallablePredictor, Predictor, Result
from .verification import (calibrate_threshold, embedding_distances, evaluate_embeddings, evaluate_verification,
                           roc_curve)

__all__ = [
    "Predictor", "CallablePredictor", "Result",
    "evaluate_classification", "classification_metrics",
    "evaluate_detection", "detection_metrics", "coco_library", "COCO_LIBRARIES",
    "evaluate_verification", "evaluate_embeddings", "embedding_distances", "calibrate_threshold", "roc_curve",
    "plot_pr_curves", "plot_roc", "plot_confusion_matrix", "plot_recall_by_size", "save_plots",
]
