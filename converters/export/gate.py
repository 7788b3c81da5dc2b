"""The accuracy gate: evaluate a converted artifact next to its PyTorch reference on held-out data.

Both go through :mod:`converters.evaluation` with the same predictor interface (``sdk.Model``; the
reference is an ``sdk.Model`` around the torch module, see :mod:`.reference`). The gated metric per task:

* ``classify``: ``top1``;
* ``detect``: ``map50`` (predictions at ``conf_threshold=0.001``, as COCO AP wants);
* ``embed``: verification accuracy at the equal-error point, ``1 - eer``.

A drop (reference − converted) above ``max_drop`` rejects the artifact. Defaults
(:data:`DEFAULT_MAX_DROP`): 0.01 for INT8, 0.002 for FP16 (FP32 is held to the parity check instead,
and to the FP16 limit here).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence

__all__ = ["DEFAULT_MAX_DROP", "METRICS", "GateResult", "evaluate", "gate"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_DROP = {"int8": 0.01, "fp16": 0.002, "fp32": 0.002}
METRICS = {"classify": "top1", "detect": "map50", "embed": "verification_accuracy"}
#: Confidence threshold for mAP evaluation (COCO AP integrates over all scores).
EVAL_CONF = 0.001


@dataclass
class GateResult:
    """One artifact's verdict.

    Attributes:
        metric: ``top1``, ``map50`` or ``verification_accuracy``.
        reference: the PyTorch model's value.
        converted: the artifact's value.
        drop: ``reference - converted`` (negative: the artifact scored higher).
        max_drop: the limit.
        verdict: ``"accepted"`` or ``"rejected"``.
        n: validation items.
        dataset: what the validation set was.
    """

    metric: str
    reference: float
    converted: float
    drop: float
    max_drop: float
    verdict: str
    n: int
    dataset: str

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """``"top1 0.912 -> 0.871 (drop 0.041 > 0.010): rejected"``."""
        sign = ">" if self.drop > self.max_drop else "<="
        return (f"{self.metric} {self.reference:.4f} -> {self.converted:.4f} (drop {self.drop:+.4f} {sign} "
                f"{self.max_drop:.4f}): {self.verdict}")


def _value(report: Dict[str, Any], task: str) -> float:
    if task == "embed":
        return 1.0 - float(report["eer"])
    value = report[METRICS[task]]
    return 0.0 if value is None else float(value)


def evaluate(predictor: Any, dataset: Any, *, task: str, labels: Sequence[str], progress: bool = True) -> float:
    """The gated metric of one predictor (an ``sdk.Model``) on ``dataset``.

    Raises:
        ValueError: ``task`` is not ``classify``, ``detect`` or ``embed``.
    """
    from converters.evaluation import (CallablePredictor, evaluate_classification, evaluate_detection,
                                       evaluate_embeddings)

    if task == "classify":
        report = evaluate_classification(predictor, dataset, num_classes=len(labels) or None,
                                         class_names=list(labels) or None, progress=progress)
    elif task == "detect":
        low = CallablePredictor(lambda im: predictor(im, conf_threshold=EVAL_CONF), name=str(getattr(predictor, "path", "")))
        report = evaluate_detection(low, dataset, class_names=list(labels) or None, progress=progress)
    elif task == "embed":
        report = evaluate_embeddings(predictor, dataset, progress=progress)
    else:
        raise ValueError(f"task: expected one of {', '.join(METRICS)}, got {task!r}")
    return _value(report, task)


def gate(reference: float, converted: float, *, task: str, max_drop: float, n: int, dataset: str) -> GateResult:
    """Compare two metric values against ``max_drop``."""
    drop = float(reference) - float(converted)
    verdict = "accepted" if drop <= max_drop + 1e-12 else "rejected"
    return GateResult(metric=METRICS[task], reference=round(float(reference), 6), converted=round(float(converted), 6),
                      drop=round(drop, 6), max_drop=float(max_drop), verdict=verdict, n=int(n), dataset=dataset)


def max_drop_for(precision: str, override: Optional[float]) -> float:
    """The limit for a precision: ``override`` when given (INT8 and FP16), else :data:`DEFAULT_MAX_DROP`."""
    if override is not None and precision != "fp32":
        return float(override)
    return DEFAULT_MAX_DROP[precision]
