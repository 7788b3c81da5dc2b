"""Folder-per-class readers: :class:`ImageFolderDataset` (classification) and :class:`IdentityFolderDataset`.

Layout (both)::

    root/
      cat/   001.jpg 002.png ...
      dog/   a.jpg ...

Class (identity) names are the sub-folder names, sorted; class ids are their positions in that order.
Images are found recursively inside each sub-folder and read lazily, on indexing.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ._common import IMAGE_EXTENSIONS, DatasetError, PathLike, _extensions_hint, check_index, list_images, read_image

__all__ = ["ImageFolderDataset", "IdentityFolderDataset"]

logger = logging.getLogger(__name__)


class _FolderDataset:
    """One sub-folder per label; items are ``(image, label_index)``."""

    _what = "class"

    def __init__(self, root: PathLike, *, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(self.root, "expected a directory with one sub-folder per "
                                          f"{self._what}, got " +
                               ("a file" if self.root.exists() else "a path that does not exist"))
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        samples: list = []
        names: list = []
        for folder in folders:
            files = list_images(folder, extensions=extensions, required=False)
            if not files:
                logger.warning("%s: %s folder %r holds no images; it keeps its index %d",
                               self.root, self._what, folder.name, len(names))
            samples.extend((f, len(names)) for f in files)
            names.append(folder.name)
        if not samples:
            loose = list_images(self.root, recursive=False, extensions=extensions, required=False)
            hint = (f"; {len(loose)} images lie directly in {self.root} -- move them into one sub-folder per "
                    f"{self._what}") if loose else ""
            raise DatasetError(self.root, f"expected image files ({_extensions_hint(tuple(extensions))}) in "
                                          f"{self.root}/<{self._what}>/, found none{hint}")
        self._names = tuple(names)
        self.samples: list = samples
        """``(path, label_index)`` of every image, sorted by label then path."""

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple:
        path, label = self.samples[check_index(index, len(self))]
        return read_image(path), int(label)

    def __iter__(self) -> Iterator[tuple]:
        for i in range(len(self)):
            yield self[i]

    def image_path(self, index: int) -> Path:
        """The file of item ``index``."""
        return self.samples[check_index(index, len(self))][0]

    @property
    def labels(self) -> np.ndarray:
        """Label index of every item, int64 array of shape (N,) (without reading images)."""
        return np.array([s[1] for s in self.samples], dtype=np.int64)

    def verify_images(self) -> None:
        """Read every image once.

        Raises:
            DatasetError: naming the first missing or unreadable image.
        """
        for path, _ in self.samples:
            read_image(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)}, {self._what}es={len(self._names)})"


class ImageFolderDataset(_FolderDataset):
    """Classification images, one sub-folder per class (torchvision ``ImageFolder`` layout).

    Args:
        root: folder holding one sub-folder per class; class ids follow the sorted folder names.
        extensions: image suffixes to accept (lower case, with the dot).

    Items are ``(image, class_id)``: uint8 BGR array (H, W, 3) read with ``cv2.imread``, and an int,
    the same format as :class:`sdk.synthetic.ClassificationDataset`.

    Raises:
        DatasetError (a ``ValueError``): ``root`` missing, or no images in any class folder. Indexing raises
            it for an image that is missing or cannot be decoded.
    """

    _what = "class"

    @property
    def class_names(self) -> tuple:
        """Class names (sorted folder names); ``class_names[class_id]``."""
        return self._names

    @property
    def num_classes(self) -> int:
        return len(self._names)


class IdentityFolderDataset(_FolderDataset):
    """Images of identities for verification, one sub-folder per identity.

    Args:
        root: folder holding one sub-folder per identity; identity indices follow the sorted folder names.
        extensions: image suffixes to accept.

    Items are ``(image, identity)``: uint8 BGR array (H, W, 3) and the identity's index, an int (the same
    format as :class:`sdk.synthetic.IdentityDataset`); :attr:`identity_names` maps it back to the folder name.

    Raises:
        DatasetError (a ``ValueError``): as :class:`ImageFolderDataset`.
    """

    _what = "identity"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, n={len(self)}, identities={len(self._names)})"

    @property
    def identity_names(self) -> tuple:
        """Identity names (sorted folder names); ``identity_names[identity]``."""
        return self._names

    @property
    def num_identities(self) -> int:
        return len(self._names)
