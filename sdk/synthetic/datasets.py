"""Map-style datasets over the generators: item ``i`` depends only on ``(seed, i)``, never on access order.

Item ``i`` is drawn from ``np.random.default_rng(np.random.SeedSequence([seed, i]))``, so datasets can be
indexed in any order, by any number of worker processes, and give identical bytes each time. Use different
seeds for train and validation sets. Classes and identities are balanced by index (``i % n``).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .compose import DEFAULT_MIN_VISIBLE
from .identity import identity_ids, make_identity_sample
from .samples import (check_classes, check_detection_args, check_int, make_classification_sample,
                      make_detection_sample)
from .style import Style, check_style

__all__ = ["DetectionDataset", "ClassificationDataset", "IdentityDataset", "IdentityPairDataset",
           "IdentityTripletDataset"]


class _SeededDataset:
    """Common base: a length, a seed, and one independent random stream per item."""

    def __init__(self, seed: int, length: int) -> None:
        self.seed = check_int("seed", seed, 0)
        self.length = check_int("length", length, 0)

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of item ``index`` (negative indices count from the end).

        Raises:
            IndexError: when the index is out of range.
            TypeError: when it is not an int.
        """
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        i = int(index) + (self.length if index < 0 else 0)
        if not 0 <= i < self.length:
            raise IndexError(f"index: expected -{self.length} <= index < {self.length}, got {index}")
        return np.random.default_rng(np.random.SeedSequence([self.seed, i]))

    def _index(self, index: int) -> int:
        return int(index) + (self.length if index < 0 else 0)

    def __iter__(self) -> Iterator:
        for i in range(self.length):
            yield self[i]

    def __getitem__(self, index: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, length={self.length})"


class DetectionDataset(_SeededDataset):
    """Detection images with exact boxes (see :func:`~sdk.synthetic.make_detection_sample`).

    Args:
        seed: dataset seed (>= 0).
        length: number of items.
        size_hw: image ``(height, width)``.
        min_objects, max_objects, min_size, max_size, min_visible, classes, style: as
            :func:`~sdk.synthetic.make_detection_sample` (validated here, at construction).

    Items are ``(image, boxes, class_ids)``: uint8 (H, W, 3), float32 (N, 4) xyxy, int64 (N,).
    """

    def __init__(self, seed: int, length: int, size_hw: tuple = (320, 320), *, min_objects: int = 1,
                 max_objects: int = 8, min_size: int = 12, max_size: int = 200,
                 min_visible: float = DEFAULT_MIN_VISIBLE, classes: Optional[Sequence[int]] = None,
                 style: Optional[Style] = None) -> None:
        super().__init__(seed, length)
        h, w, _ = check_detection_args(size_hw, min_objects, max_objects, min_size, max_size, min_visible)
        self.size_hw = (h, w)
        self.kwargs = dict(min_objects=min_objects, max_objects=max_objects, min_size=min_size,
                           max_size=max_size, min_visible=min_visible, classes=check_classes(classes),
                           style=check_style(style))

    def __getitem__(self, index: int) -> tuple:
        return make_detection_sample(self.rng(index), self.size_hw, **self.kwargs)


class ClassificationDataset(_SeededDataset):
    """Classification crops; item ``i`` shows class ``classes[i % len(classes)]`` (exactly balanced).

    Args:
        seed: dataset seed (>= 0).
        length: number of items.
        size: crop side in pixels (>= 16).
        classes: class ids (default: all).
        style: nuisance knobs.

    Items are ``(image, class_id)``: uint8 (size, size, 3) and an int.
    """

    def __init__(self, seed: int, length: int, size: int = 64, *, classes: Optional[Sequence[int]] = None,
                 style: Optional[Style] = None) -> None:
        super().__init__(seed, length)
        self.size = check_int("size", size, 16)
        self.classes = check_classes(classes)
        self.style = check_style(style)

    def __getitem__(self, index: int) -> tuple:
        rng = self.rng(index)
        class_id = self.classes[self._index(index) % len(self.classes)]
        return make_classification_sample(rng, self.size, class_id=class_id, style=self.style)


def _check_identities(identities: Union[int, Sequence[int]]) -> Sequence[int]:
    if isinstance(identities, (int, np.integer)) and not isinstance(identities, bool):
        ids: Sequence[int] = identity_ids("train", max(int(identities), 1))
    else:
        ids = identities if isinstance(identities, range) else tuple(int(i) for i in identities)
    if len(ids) < 2 or min(ids) < 0 or len(set(ids)) != len(ids):
        raise ValueError(f"identities: expected >= 2 distinct identity ids, all >= 0, got {identities!r}")
    return ids


class IdentityDataset(_SeededDataset):
    """Renders of identities; item ``i`` shows identity ``identities[i % len(identities)]``.

    Args:
        seed: dataset seed (>= 0).
        length: number of items.
        identities: an int ``n`` (the first ``n`` train ids) or a sequence of ids, e.g.
            ``identity_ids("test", 200)`` for held-out identities.
        size: image side in pixels.
        style: nuisance knobs.

    Items are ``(image, identity_id)``: uint8 (size, size, 3) and an int.
    """

    def __init__(self, seed: int, length: int, identities: Union[int, Sequence[int]] = 1000, size: int = 96, *,
                 style: Optional[Style] = None) -> None:
        super().__init__(seed, length)
        self.identities = _check_identities(identities)
        self.size = check_int("size", size, 16)
        self.style = check_style(style)

    def render(self, identity_id: int, rng: np.random.Generator) -> np.ndarray:
        """One render of ``identity_id`` with this dataset's size and style."""
        return make_identity_sample(identity_id, rng, self.size, style=self.style)

    def _other(self, rng: np.random.Generator, identity_id: int) -> int:
        j = int(rng.integers(len(self.identities) - 1))
        other = self.identities[j]
        return self.identities[-1] if other == identity_id else other

    def __getitem__(self, index: int) -> tuple:
        rng = self.rng(index)
        ident = self.identities[self._index(index) % len(self.identities)]
        return self.render(ident, rng), int(ident)


class IdentityPairDataset(IdentityDataset):
    """Verification pairs; even items are same-identity pairs, odd items different-identity pairs.

    Items are ``(image_a, image_b, same)``: two uint8 (size, size, 3) arrays and 1 (same) or 0 (different).
    Arguments as :class:`IdentityDataset`.
    """

    def __getitem__(self, index: int) -> tuple:
        rng = self.rng(index)
        i = self._index(index)
        a = self.identities[int(rng.integers(len(self.identities)))]
        same = i % 2 == 0
        b = a if same else self._other(rng, a)
        return self.render(a, rng), self.render(b, rng), int(same)


class IdentityTripletDataset(IdentityDataset):
    """Triplets for triplet loss: items are ``(anchor, positive, negative)`` uint8 (size, size, 3) arrays.

    The anchor's identity is ``identities[i % len(identities)]``; the negative's is another, random one.
    Arguments as :class:`IdentityDataset`.
    """

    def __getitem__(self, index: int) -> tuple:
        rng = self.rng(index)
        a = self.identities[self._index(index) % len(self.identities)]
        n = self._other(rng, a)
        return self.render(a, rng), self.render(a, rng), self.render(n, rng)
