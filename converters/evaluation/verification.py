"""Verification metrics for embeddings: ROC AUC, EER, TAR at fixed FAR, and threshold calibration.

A pair is *accepted* (same identity) when its distance is ``<= threshold``. Over a set of same-identity
("genuine") and different-identity ("impostor") pair distances:

* FAR(t) = fraction of impostor distances ``<= t``; TAR(t) = fraction of genuine distances ``<= t``.
* ROC AUC = probability that a random genuine pair is closer than a random impostor pair (ties count 1/2),
  i.e. ``sklearn.metrics.roc_auc_score(same, -distance)``.
* EER = the rate where FAR = FRR (= 1 - TAR), linearly interpolated between ROC points.
* TAR @ FAR=f uses the largest threshold whose empirical FAR is ``<= f``; reported only when there are at least
  ``1 / f`` impostor pairs (else None).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Optional, Sequence

import numpy as np

from sdk.results import Embedding

from ..data._common import progress as _progress
from .predictor import check_result, predictor_name

__all__ = ["roc_curve", "evaluate_verification", "calibrate_threshold", "embedding_distances",
           "evaluate_embeddings"]

logger = logging.getLogger(__name__)

DEFAULT_FARS = (1e-2, 1e-3)


def _distances(values: Any, name: str) -> np.ndarray:
    d = np.asarray(values, np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError(f"{name}: expected at least one distance, got none")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{name}: expected finite distances, got {int((~np.isfinite(d)).sum())} NaN/Inf")
    return d


def roc_curve(distances_same: Any, distances_diff: Any) -> tuple:
    """The ROC of a distance threshold (accept when ``distance <= threshold``).

    Args:
        distances_same: genuine-pair distances, shape (P,).
        distances_diff: impostor-pair distances, shape (Q,).

    Returns:
        ``(far, tar, thresholds)``: float64 arrays of shape (M + 1,), one point per distinct distance value
        (ascending) after a first point ``(0, 0)`` at threshold ``-inf``; the last point is ``(1, 1)``.

    Raises:
        ValueError: an empty or non-finite input.
    """
    same = _distances(distances_same, "distances_same")
    diff = _distances(distances_diff, "distances_diff")
    thresholds = np.unique(np.concatenate([same, diff]))
    tar = np.searchsorted(np.sort(same), thresholds, side="right") / same.size
    far = np.searchsorted(np.sort(diff), thresholds, side="right") / diff.size
    return (np.concatenate([[0.0], far]), np.concatenate([[0.0], tar]),
            np.concatenate([[-np.inf], thresholds]))


def calibrate_threshold(distances_diff: Any, target_far: float) -> float:
    """The largest distance threshold whose false-accept rate on ``distances_diff`` is ``<= target_far``.

    Args:
        distances_diff: impostor-pair distances, shape (Q,), from a calibration set disjoint from the test set.
        target_far: the false-accept rate to stay within, in [0, 1].

    Returns:
        The threshold (accept when ``distance <= threshold``): just below the ``(k+1)``-th smallest impostor
        distance, ``k = floor(target_far * Q)``; ``inf`` when ``target_far = 1``.

    Raises:
        ValueError: ``target_far`` outside [0, 1], or empty / non-finite distances.
    """
    if not 0.0 <= float(target_far) <= 1.0:
        raise ValueError(f"target_far: expected a rate in [0, 1], got {target_far}")
    diff = np.sort(_distances(distances_diff, "distances_diff"))
    k = int(math.floor(float(target_far) * diff.size + 1e-9))
    if k >= diff.size:
        return math.inf
    return float(np.nextafter(diff[k], -np.inf))


def _far_key(far: float) -> str:
    return f"{far:g}"


def evaluate_verification(distances_same: Any, distances_diff: Any, *,
                          far_targets: Sequence[float] = DEFAULT_FARS, roc_points: int = 200) -> dict:
    """Verification metrics from genuine and impostor pair distances.

    Args:
        distances_same: distances of same-identity pairs, shape (P,).
        distances_diff: distances of different-identity pairs, shape (Q,).
        far_targets: FARs at which to report TAR and the calibrated threshold.
        roc_points: size of the down-sampled ROC kept in the report (for plots).

    Returns:
        JSON-ready dict: ``roc_auc``, ``eer``, ``eer_threshold``, ``tar_at_far`` (``{"0.01": TAR or None}``),
        ``threshold_at_far`` (``{"0.01": threshold or None}``), ``n_same``, ``n_diff``,
        ``distance_same`` / ``distance_diff`` (mean, std, min, max), and ``roc`` (``far``, ``tar`` lists of
        ``roc_points``, on a log-spaced FAR grid, for :func:`~converters.evaluation.plot_roc`).

    Raises:
        ValueError: empty or non-finite distances, or a target FAR outside (0, 1].
    """
    same = _distances(distances_same, "distances_same")
    diff = _distances(distances_diff, "distances_diff")
    far, tar, thr = roc_curve(same, diff)
    auc = float(np.trapezoid(tar, far)) if hasattr(np, "trapezoid") else float(np.trapz(tar, far))

    frr = 1.0 - tar
    gap = frr - far                     # 1 at the start, -1 at the end, non-increasing
    j = int(np.argmax(gap <= 0))
    g0, g1 = gap[j - 1], gap[j]
    alpha = g0 / (g0 - g1) if g0 != g1 else 0.0
    eer = float(far[j - 1] + alpha * (far[j] - far[j - 1]))
    t0 = thr[j - 1] if np.isfinite(thr[j - 1]) else thr[j]
    eer_threshold = float(t0 + alpha * (thr[j] - t0))

    tar_at, thr_at = {}, {}
    for f in far_targets:
        if not 0.0 < float(f) <= 1.0:
            raise ValueError(f"far_targets: expected rates in (0, 1], got {f}")
        key = _far_key(float(f))
        if diff.size * float(f) < 1.0 - 1e-9:
            logger.info("evaluate_verification: %d impostor pairs are too few for FAR=%g", diff.size, f)
            tar_at[key] = thr_at[key] = None
            continue
        t = calibrate_threshold(diff, float(f))
        tar_at[key] = float(np.mean(same <= t))
        thr_at[key] = t if math.isfinite(t) else None

    grid = np.unique(np.concatenate([np.logspace(-4, 0, roc_points // 2), np.linspace(0, 1, roc_points // 2)]))
    idx = np.searchsorted(far, grid, side="right") - 1   # last ROC point with far <= grid value
    stats = {name: {"mean": float(d.mean()), "std": float(d.std()), "min": float(d.min()), "max": float(d.max())}
             for name, d in (("distance_same", same), ("distance_diff", diff))}
    return {
        "task": "verify",
        "roc_auc": auc,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_far": tar_at,
        "threshold_at_far": thr_at,
        "n_same": int(same.size),
        "n_diff": int(diff.size),
        **stats,
        "roc": {"far": [float(v) for v in grid], "tar": [float(v) for v in tar[idx]]},
    }


def _embed(predictor: Any, image: Any, index: int) -> np.ndarray:
    return check_result(predictor(np.asarray(image)), Embedding, index).vector


def _pair_distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    from sdk.verify import cosine_distance, euclidean_distance

    return (cosine_distance if metric == "cosine" else euclidean_distance)(a, b)


def embedding_distances(predictor: Any, dataset: Sequence, *, metric: str = "cosine",
                        max_pairs: Optional[int] = None, seed: int = 0, progress: bool = True) -> tuple:
    """Genuine and impostor distances from a predictor returning :class:`~sdk.results.Embedding`.

    Two dataset kinds are accepted:

    * pairs: items ``(image_a, image_b, same)`` (:class:`sdk.synthetic.IdentityPairDataset`,
      ``make_split(..., task="pairs")``) -- one distance per item;
    * identities: items ``(image, identity)`` (:class:`~converters.data.IdentityFolderDataset`,
      ``make_split(..., task="identity")``) -- every image is embedded once and all ``N (N - 1) / 2`` pairs
      are used (impostor pairs sub-sampled to ``max_pairs`` with ``seed`` when given).

    Args:
        predictor: ``predictor(image) -> Embedding``.
        dataset: a sequence of either kind of item.
        metric: ``"cosine"`` (``1 - cos``) or ``"euclidean"`` (between L2-normalised vectors), as
            :mod:`sdk.verify`.
        max_pairs: cap on impostor pairs in identity mode.
        seed: sub-sampling seed.
        progress: show a tqdm bar (only when stderr is a terminal).

    Returns:
        ``(distances_same, distances_diff)``: float64 arrays.

    Raises:
        ValueError: unknown metric, malformed items, or no genuine or no impostor pairs.
        TypeError: the predictor does not return Embedding.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric: expected 'cosine' or 'euclidean', got {metric!r}")
    n = len(dataset)
    if n == 0:
        raise ValueError("dataset: expected items, got an empty dataset")
    first = dataset[0]
    if not isinstance(first, (tuple, list)) or len(first) not in (2, 3):
        raise ValueError("dataset: expected items (image_a, image_b, same) or (image, identity), got "
                         f"{type(first).__name__}")
    if len(first) == 3:
        same, diff = [], []
        for i in _progress(range(n), total=n, desc="eval pairs", enabled=progress):
            a, b, is_same = first if i == 0 else dataset[i]
            d = float(_pair_distance(_embed(predictor, a, i), _embed(predictor, b, i), metric))
            (same if int(is_same) else diff).append(d)
        same_a, diff_a = np.asarray(same, np.float64), np.asarray(diff, np.float64)
    else:
        vecs, ids = [], []
        for i in _progress(range(n), total=n, desc="eval embed", enabled=progress):
            image, ident = first if i == 0 else dataset[i]
            vecs.append(_embed(predictor, image, i))
            ids.append(int(ident))
        emb = np.stack(vecs)
        if len({v.shape for v in vecs}) != 1:
            raise ValueError("expected embeddings of one dimension from every image")
        dist = np.asarray(_pair_distance(emb, emb, metric), np.float64)
        iu, ju = np.triu_indices(n, k=1)
        ident = np.asarray(ids)
        is_same = ident[iu] == ident[ju]
        same_a = dist[iu[is_same], ju[is_same]]
        diff_a = dist[iu[~is_same], ju[~is_same]]
        if max_pairs is not None and diff_a.size > max_pairs:
            keep = np.random.default_rng(seed).choice(diff_a.size, int(max_pairs), replace=False)
            diff_a = diff_a[np.sort(keep)]
    if same_a.size == 0 or diff_a.size == 0:
        raise ValueError(f"expected both same-identity and different-identity pairs, got {same_a.size} and "
                         f"{diff_a.size} (identity datasets need an identity with >= 2 images and >= 2 identities)")
    return same_a, diff_a


def evaluate_embeddings(predictor: Any, dataset: Sequence, *, metric: str = "cosine",
                        far_targets: Sequence[float] = DEFAULT_FARS, max_pairs: Optional[int] = None,
                        seed: int = 0, progress: bool = True) -> dict:
    """Run an embedding model over pairs or identities and report verification metrics.

    Args:
        predictor: ``predictor(image) -> Embedding``.
        dataset: pairs or identities, see :func:`embedding_distances`.
        metric, max_pairs, seed, progress: as :func:`embedding_distances`.
        far_targets: as :func:`evaluate_verification`.

    Returns:
        JSON-ready dict of :func:`evaluate_verification` plus ``metric``, ``predictor``, ``seconds``.
    """
    t0 = time.perf_counter()
    same, diff = embedding_distances(predictor, dataset, metric=metric, max_pairs=max_pairs, seed=seed,
                                     progress=progress)
    report = evaluate_verification(same, diff, far_targets=far_targets)
    report["metric"] = metric
    report["predictor"] = predictor_name(predictor)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report
