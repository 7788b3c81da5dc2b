"""FP32 artifacts against PyTorch: raw outputs within ``atol`` (logits, embeddings) or detections matched
one-to-one with IoU >= ``min_iou`` (detectors).

Both sides see the same pre-processed tensor layout-for-layout (the artifact's own pre-processing for
its layout, the reference's NCHW pre-processing) from the same frames, and detections are decoded by the
same SDK decoder.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence

import numpy as np

__all__ = ["ParityResult", "check_parity", "match_detections", "FP32_ATOL", "MIN_IOU"]

logger = logging.getLogger(__name__)

FP32_ATOL = 1e-4
MIN_IOU = 0.99


@dataclass
class ParityResult:
    """Outcome of :func:`check_parity`.

    Attributes:
        passed: every check held.
        max_abs_diff: largest raw-output difference over all outputs and frames.
        matched: detections matched (detectors), ``unmatched`` those without a partner.
        min_iou: smallest IoU among matched detections (1.0 when there were none).
        frames: frames compared.
        detail: the first failure, in words.
    """

    passed: bool
    max_abs_diff: float
    frames: int
    matched: int = 0
    unmatched: int = 0
    min_iou: float = 1.0
    detail: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def match_detections(ref: Any, got: Any, *, min_iou: float = MIN_IOU, margin: float = 2e-3,
                     conf_threshold: float = 0.0) -> tuple:
    """Greedy one-to-one matching by IoU within the same class.

    A detection whose score is within ``margin`` of ``conf_threshold`` may be missing on either side (it
    sits on the threshold; float noise decides).

    Returns:
        ``(matched, unmatched, min IoU of the matched)``.
    """
    from sdk.ops import box_iou

    if len(ref) == 0 or len(got) == 0:
        loose = [d for d in (ref.confidence if len(ref) else []) if d > conf_threshold + margin]
        loose += [d for d in (got.confidence if len(got) else []) if d > conf_threshold + margin]
        return 0, len(loose), 1.0
    iou = box_iou(ref.xyxy, got.xyxy)
    iou[ref.class_id[:, None] != got.class_id[None, :]] = 0.0
    used = np.zeros(len(got), bool)
    matched, unmatched, worst = 0, 0, 1.0
    for i in np.argsort(-ref.confidence):
        cand = np.where(~used & (iou[i] >= min_iou))[0]
        if cand.size:
            j = cand[np.argmax(iou[i, cand])]
            used[j] = True
            matched += 1
            worst = min(worst, float(iou[i, j]))
        elif ref.confidence[i] > conf_threshold + margin:
            unmatched += 1
    unmatched += int(np.sum(got.confidence[~used] > conf_threshold + margin))
    return matched, unmatched, worst


def check_parity(artifact: Any, reference: Any, frames: Sequence[np.ndarray], *, task: str,
                 atol: float = FP32_ATOL, min_iou: float = MIN_IOU) -> ParityResult:
    """Compare an FP32 artifact with the PyTorch reference on ``frames``.

    Args:
        artifact: ``sdk.load(path)``.
        reference: :func:`converters.export.reference.torch_model`.
        frames: BGR uint8 images.
        task: ``classify``, ``detect`` or ``embed``.
        atol: raw-output tolerance (classify / embed).
        min_iou: matched-detection IoU (detect).

    Returns:
        A :class:`ParityResult`.
    """
    worst_diff, matched, unmatched, worst_iou = 0.0, 0, 0, 1.0
    for frame in frames:
        a_out = artifact.infer(artifact.preprocess(frame)[0])
        tensor, transform = reference.preprocess(frame)
        r_out = reference.infer(tensor)
        for name, r in r_out.items():
            a = a_out.get(name)
            if a is None or a.shape != r.shape:
                return ParityResult(False, float("inf"), len(frames),
                                    detail=f"output {name!r}: expected shape {r.shape}, got "
                                           f"{None if a is None else a.shape}")
            worst_diff = max(worst_diff, float(np.max(np.abs(a.astype(np.float64) - r))) if r.size else 0.0)
        if task == "detect":
            conf = float(reference.options.conf_threshold)
            r_det = reference.postprocess(r_out, transform)
            a_det = artifact.postprocess(a_out, transform)
            m, u, w = match_detections(r_det, a_det, min_iou=min_iou, conf_threshold=conf)
            matched, unmatched, worst_iou = matched + m, unmatched + u, min(worst_iou, w)
    if task == "detect":
        passed = unmatched == 0
        detail = "" if passed else (f"{unmatched} detections without a partner at IoU >= {min_iou} "
                                    f"({matched} matched, raw max abs diff {worst_diff:.2e})")
    else:
        passed = worst_diff <= atol
        detail = "" if passed else f"max abs diff {worst_diff:.2e} > {atol:.0e}"
    return ParityResult(passed, worst_diff, len(frames), matched=matched, unmatched=unmatched, min_iou=worst_iou,
                        detail=detail)
