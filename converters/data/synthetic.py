"""Synthetic datasets (built on :mod:`sdk.synthetic`) and fixed, disjoint train / val / test splits.

Every split of every task has its own seed, so no image is shared between splits (item ``i`` of a dataset
comes from ``SeedSequence([seed, i])``; different seeds give independent streams)::

    seed = SPLIT_SEEDS[split] + TASK_SEED_OFFSETS[task]

    split   detect   classify   identity   pairs   triplets
    train    1000      1001       1002      1003     1004
    val      2000      2001       2002      2003     2004
    test     3000      3001       3002      3003     3004

Use ``train`` for training *and* for quantisation calibration sets; use ``val`` for model selection and
accuracy gates during conversion; keep ``test`` for the final, reported numbers (model cards).

Identity tasks also split identities: ``train`` uses training identities ``0 ..`` (never seen by a test),
``test`` the canonical held-out ids :func:`sdk.synthetic.identity_ids` ``("test", n)`` (``100000 ..``) and
``val`` another held-out block starting at ``HELDOUT_IDENTITY_START + VAL_IDENTITY_OFFSET`` (150000), so val
and test identities never overlap either.
"""
from __future__ import annotations

from typing import Any, Optional

from sdk.synthetic import (CLASSES, HELDOUT_IDENTITY_START, ClassificationDataset, DetectionDataset,
                           IdentityDataset, IdentityPairDataset, IdentityTripletDataset, identity_ids)

__all__ = ["SPLITS", "TASKS", "SPLIT_SEEDS", "TASK_SEED_OFFSETS", "DEFAULT_LENGTHS", "VAL_IDENTITY_OFFSET",
           "split_seed", "split_identities", "make_split", "SyntheticDetectionDataset",
           "SyntheticClassificationDataset", "SyntheticIdentityDataset", "SyntheticPairDataset",
           "SyntheticTripletDataset"]

SPLITS = ("train", "val", "test")
TASKS = ("detect", "classify", "identity", "pairs", "triplets")
#: Base seed of each split; a task adds its offset (< 1000), so every (split, task) seed is distinct.
SPLIT_SEEDS = {"train": 1000, "val": 2000, "test": 3000}
TASK_SEED_OFFSETS = {"detect": 0, "classify": 1, "identity": 2, "pairs": 3, "triplets": 4}
#: Default number of items per split.
DEFAULT_LENGTHS = {"train": 10000, "val": 500, "test": 1000}
#: Validation identities start here, above the test ones (``HELDOUT_IDENTITY_START + 50000``).
VAL_IDENTITY_OFFSET = 50_000
#: Default number of identities per split.
DEFAULT_IDENTITIES = {"train": 1000, "val": 200, "test": 200}


class _Named:
    split: Optional[str] = None

    @property
    def class_names(self) -> tuple:
        """Names of the shape classes (all of :data:`sdk.synthetic.CLASSES`, indexed by class id)."""
        return tuple(CLASSES)

    @property
    def num_classes(self) -> int:
        return len(CLASSES)


class SyntheticDetectionDataset(_Named, DetectionDataset):
    """:class:`sdk.synthetic.DetectionDataset` with ``class_names`` and ``split``.

    Items are ``(image, boxes, class_ids)``: uint8 BGR (H, W, 3), float32 (N, 4) xyxy pixel-edge boxes,
    int64 (N,). Arguments as :class:`sdk.synthetic.DetectionDataset`.
    """


class SyntheticClassificationDataset(_Named, ClassificationDataset):
    """:class:`sdk.synthetic.ClassificationDataset` with ``class_names`` and ``split``; items ``(image, class_id)``."""


class SyntheticIdentityDataset(_Named, IdentityDataset):
    """:class:`sdk.synthetic.IdentityDataset` with ``split``; items ``(image, identity_id)``."""


class SyntheticPairDataset(_Named, IdentityPairDataset):
    """:class:`sdk.synthetic.IdentityPairDataset` with ``split``; items ``(image_a, image_b, same)``."""


class SyntheticTripletDataset(_Named, IdentityTripletDataset):
    """:class:`sdk.synthetic.IdentityTripletDataset` with ``split``; items ``(anchor, positive, negative)``."""


_CLASSES = {"detect": SyntheticDetectionDataset, "classify": SyntheticClassificationDataset,
            "identity": SyntheticIdentityDataset, "pairs": SyntheticPairDataset,
            "triplets": SyntheticTripletDataset}


def _check(name: str, task: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {name!r}")
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")


def split_seed(name: str, task: str = "detect") -> int:
    """The dataset seed of a split of a task (see the module docstring's table).

    Raises:
        ValueError: for an unknown split or task.
    """
    _check(name, task)
    return SPLIT_SEEDS[name] + TASK_SEED_OFFSETS[task]


def split_identities(name: str, n: Optional[int] = None) -> range:
    """Identity ids of a split: train ``0 .. n-1``; test ``100000 ..``; val ``150000 ..`` (never overlapping).

    Args:
        name: ``"train"``, ``"val"`` or ``"test"``.
        n: how many (default :data:`DEFAULT_IDENTITIES` ``[name]``; val and test allow at most 50000).

    Raises:
        ValueError: for an unknown split or an ``n`` that would overlap another split.
    """
    _check(name, "identity")
    n = DEFAULT_IDENTITIES[name] if n is None else int(n)
    if name == "train":
        return identity_ids("train", n)
    if not 1 <= n <= VAL_IDENTITY_OFFSET:
        raise ValueError(f"n: expected 1 <= n <= {VAL_IDENTITY_OFFSET} held-out identities, got {n}")
    if name == "test":
        return identity_ids("test", n)
    start = HELDOUT_IDENTITY_START + VAL_IDENTITY_OFFSET
    return range(start, start + n)


def make_split(name: str = "train", task: str = "detect", length: Optional[int] = None, **kwargs: Any):
    """A synthetic dataset for one split of one task, with the split's fixed seed.

    Args:
        name: ``"train"``, ``"val"`` or ``"test"``.
        task: ``"detect"``, ``"classify"``, ``"identity"``, ``"pairs"`` (verification pairs) or ``"triplets"``.
        length: number of items (default :data:`DEFAULT_LENGTHS` ``[name]``).
        **kwargs: passed to the dataset class: ``size_hw``, ``min_objects``, ``max_objects``, ``min_size``,
            ``max_size``, ``classes``, ``style`` for detection; ``size``, ``classes``, ``style`` for
            classification; ``size``, ``style`` and ``identities`` (an int count or ids; default
            :func:`split_identities` of the split) for identity tasks. ``seed`` may not be passed.

    Returns:
        A :class:`SyntheticDetectionDataset`, :class:`SyntheticClassificationDataset`,
        :class:`SyntheticIdentityDataset`, :class:`SyntheticPairDataset` or :class:`SyntheticTripletDataset`
        with ``.split`` set.

    Raises:
        ValueError: unknown split or task, a ``seed`` keyword, or invalid dataset arguments.
    """
    _check(name, task)
    if "seed" in kwargs:
        raise ValueError("make_split: the seed is fixed by the split (see SPLIT_SEEDS); build the dataset class "
                         "directly for a custom seed")
    length = DEFAULT_LENGTHS[name] if length is None else length
    if task in ("identity", "pairs", "triplets"):
        ids = kwargs.pop("identities", None)
        if ids is None or isinstance(ids, int):
            ids = split_identities(name, ids)
        kwargs["identities"] = ids
    ds = _CLASSES[task](split_seed(name, task), length, **kwargs)
    ds.split = name
    return ds
