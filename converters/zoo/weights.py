"""Local weights: load torchvision / project checkpoints safely, save checkpoints that load safely.

::

    report = load_weights(model, "mobilenet_v3_small-imagenet.pth", strict=False)
    print(report)        # loaded 244 tensors; re-initialised (shape differs): classifier.3.weight ...
    save_checkpoint("run/last.pt", model, epoch=12, metrics={"top1": 0.97})
    model = load_model("run/last.pt")          # rebuilds the architecture from the checkpoint's config

Files are read with ``torch.load(path, map_location="cpu", weights_only=True)`` only: tensors and plain
containers, never arbitrary pickled objects (a file that needs more is refused with an explanation).
Accepted layouts: a raw ``state_dict``; ``{"model": state_dict, ...}`` (also ``"state_dict"``,
``"model_state_dict"``, ``"ema"``); keys prefixed ``module.`` / ``_orig_mod.`` (DataParallel,
``torch.compile``) are unwrapped. Nothing is fetched from a hub.
"""
from __future__ import annotations

import logging
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from sdk.errors import SDKError

__all__ = ["WeightsError", "WeightsFileNotFoundError", "LoadReport", "load_weights", "save_checkpoint",
           "load_checkpoint", "load_model", "CHECKPOINT_FORMAT"]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "edgesdk.zoo.checkpoint"
CHECKPOINT_VERSION = 1
_STATE_KEYS = ("model", "state_dict", "model_state_dict", "ema")
_RESERVED = ("format", "format_version", "family", "config", "model")
_SHOW = 5
PathLike = Union[str, "os.PathLike[str]"]


class WeightsError(SDKError, ValueError):
    """A weights file cannot be read or does not fit the model (the message says what and what to do)."""


class WeightsFileNotFoundError(WeightsError, FileNotFoundError):
    """The weights file does not exist."""


@dataclass
class LoadReport:
    """What :func:`load_weights` did.

    Attributes:
        path: the file.
        loaded: model keys whose values came from the checkpoint.
        missing: model keys absent from the checkpoint (left as initialised).
        unexpected: checkpoint keys the model does not have (ignored).
        skipped: ``(key, model shape, checkpoint shape)`` of keys left as initialised because the shapes
            differ (e.g. a classifier head for another class count).
        meta: the checkpoint's non-weight entries (epoch, metrics, family, config, ...).
    """

    path: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every model tensor came from the checkpoint and nothing was left over."""
        return not (self.missing or self.unexpected or self.skipped)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.skipped:
            parts.append(f"re-initialised {len(self.skipped)} (shape differs): "
                         + ", ".join(f"{k} {list(m)} vs checkpoint {list(c)}" for k, m, c in self.skipped[:_SHOW])
                         + (" ..." if len(self.skipped) > _SHOW else ""))
        if self.missing:
            parts.append(f"missing from the checkpoint (left as initialised) {len(self.missing)}: "
                         + _first(self.missing))
        if self.unexpected:
            parts.append(f"ignored checkpoint keys {len(self.unexpected)}: " + _first(self.unexpected))
        return "; ".join(parts)


def _first(keys: List[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (f" ... (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


# -- reading ------------------------------------------------------------------------------------------------


def _read(path: PathLike) -> Any:
    p = Path(path)
    if not p.exists():
        raise WeightsFileNotFoundError(f"weights file not found: {p}")
    if not p.is_file():
        raise WeightsError(f"weights path is not a file: {p}")
    if p.stat().st_size == 0:
        raise WeightsError(f"weights file {p} is empty (0 bytes): an interrupted download or copy?")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            first = text.strip().splitlines()
            reason = next((ln.strip() for ln in first if "Unsupported" in ln or "global" in ln.lower()), first[0])
            raise WeightsError(
                f"weights file {p} holds Python objects besides tensors, which are never unpickled here "
                f"(torch.load(weights_only=True) refused: {reason}). Re-save just the weights: "
                f"torch.save(model.state_dict(), path), or use converters.zoo.save_checkpoint") from None
        detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if text.strip() else ""
        raise WeightsError(f"weights file {p} is not a readable PyTorch checkpoint (corrupt, truncated or another "
                           f"format?): {detail[:200] or type(exc).__name__}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            IndexError, KeyError, TypeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"weights file {p} is not a readable PyTorch checkpoint (truncated or corrupt?): "
                           f"{msg}") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) for k in obj) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _unwrap_prefixes(state: Dict[str, torch.Tensor], model_keys: set) -> Dict[str, torch.Tensor]:
    for prefix in ("module.", "_orig_mod.", "model."):
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _split(obj: Any, path: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Checkpoint object → (state dict of tensors, other entries)."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"weights file {path}: expected a state dict or a {{'model': state_dict, ...}} "
                           f"checkpoint, got {type(obj).__name__}")
    meta: Dict[str, Any] = {}
    state: Any = None
    for key in _STATE_KEYS:
        if key in obj and _is_state_dict(obj[key]):
            state = obj[key]
            meta = {k: v for k, v in obj.items() if k != key}
            break
    if state is None:
        if not _is_state_dict(obj):
            keys = sorted(str(k) for k in obj)[:8]
            raise WeightsError(f"weights file {path}: expected a state dict (name → tensor) or a checkpoint "
                               f"with one under {' / '.join(repr(k) for k in _STATE_KEYS)}, got keys {keys}")
        state = obj
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    return tensors, meta


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint safely.

    Args:
        path: a ``.pt`` / ``.pth`` file.

    Returns:
        ``{"model": state_dict, ...other entries}`` (a raw state dict comes back under ``"model"``).

    Raises:
        WeightsFileNotFoundError: no such file.
        WeightsError: unreadable, corrupt, needs unpickling of Python objects, or holds no state dict.
    """
    state, meta = _split(_read(path), path)
    return {"model": state, **meta}


# -- loading into a model -----------------------------------------------------------------------------------


def _class_mismatch(model: nn.Module, state: Dict[str, torch.Tensor]) -> Optional[Tuple[int, int]]:
    counter = getattr(model, "classes_in_state_dict", None)
    n_model = getattr(model, "num_classes", None)
    if counter is None or n_model is None:
        return None
    n_ckpt = counter(state)
    if n_ckpt is None or n_ckpt == n_model:
        return None
    return int(n_ckpt), int(n_model)


def load_weights(model: nn.Module, path: PathLike, *, strict: bool = True) -> LoadReport:
    """Load a local checkpoint into ``model``.

    Args:
        model: the network (a zoo model or any ``nn.Module``).
        path: a raw state dict, a ``{"model": state_dict, ...}`` checkpoint (:func:`save_checkpoint`) or
            a torchvision checkpoint of the same architecture.
        strict: every model tensor must come from the checkpoint with the same shape, and every
            checkpoint tensor must be used. With ``strict=False`` the matching tensors are loaded and
            the rest is reported (a classifier head for another class count is re-initialised), but a
            checkpoint that matches nothing is still an error.

    Returns:
        A :class:`LoadReport` (also logged).

    Raises:
        WeightsFileNotFoundError: no such file.
        WeightsError: unreadable or corrupt file; a class-count mismatch (strict: "checkpoint has 80
            classes, model has 6; pass num_classes=80 or strict=False to re-initialise the head");
            shape mismatches (key, model vs checkpoint shape); missing / unexpected keys (strict), or
            no matching tensor at all.
    """
    state, meta = _split(_read(path), path)
    return _apply(model, state, meta, path, strict=strict)


def _apply(model: nn.Module, state: Dict[str, torch.Tensor], meta: Dict[str, Any], path: PathLike, *,
           strict: bool) -> LoadReport:
    own = model.state_dict()
    state = _unwrap_prefixes(state, set(own))
    remap = getattr(model, "remap_state_dict", None)
    if remap is not None and sum(k in own for k in state) < len(state) // 2:
        state = remap(state)                                 # e.g. a classifier trunk into a detector
    report = LoadReport(path=str(path), meta=meta)
    where = _origin(meta, model)
    for key, value in own.items():
        if key not in state:
            if not key.endswith("num_batches_tracked"):       # old checkpoints lack these; harmless
                report.missing.append(key)
        elif tuple(state[key].shape) != tuple(value.shape):
            report.skipped.append((key, tuple(value.shape), tuple(state[key].shape)))
        else:
            report.loaded.append(key)
    report.unexpected = [k for k in state if k not in own]
    classes = _class_mismatch(model, state)
    head = tuple(getattr(model, "head_state_prefixes", lambda: ())())
    # shape mismatches outside the class-dependent head, listed first
    odd = [t for t in report.skipped if not (head and t[0].startswith(head))]
    if strict:
        if classes is not None and not odd:
            ck, mine = classes
            raise WeightsError(f"{path}: checkpoint has {ck} classes, model has {mine}; pass num_classes={ck} "
                               f"or strict=False to re-initialise the head{where}")
        if report.skipped:
            ordered = odd + [t for t in report.skipped if t not in odd]
            shown = "; ".join(f"{k}: model expects {list(m)}, checkpoint has {list(c)}"
                              for k, m, c in ordered[:_SHOW])
            more = f" (+{len(ordered) - _SHOW} more)" if len(ordered) > _SHOW else ""
            cls_note = f" (and the checkpoint has {classes[0]} classes, the model {classes[1]})" if classes else ""
            raise WeightsError(f"{path}: {len(ordered)} tensors have a different shape: {shown}{more}{cls_note}; "
                               f"was the checkpoint built with other arguments (variant, width_mult, "
                               f"num_classes)?{where}")
        if report.missing or report.unexpected:
            parts = []
            if report.missing:
                parts.append(f"{len(report.missing)} model keys missing from the checkpoint: {_first(report.missing)}")
            if report.unexpected:
                parts.append(f"{len(report.unexpected)} unexpected checkpoint keys: {_first(report.unexpected)}")
            raise WeightsError(f"{path}: {'; '.join(parts)}; is it a checkpoint of this architecture? "
                               f"(strict=False loads the matching tensors){where}")
    if not report.loaded:
        raise WeightsError(f"{path}: no tensor of the checkpoint matches the model (expected keys like "
                           f"{_first(list(own)[:3])}, got {_first(list(state)[:3])}){where}")
    if odd:
        logger.warning("load_weights(%s): %d tensors outside the class head have a different shape and keep "
                       "their initial values: %s", path, len(odd), _first([k for k, _, _ in odd]))
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    logger.info("load_weights: %s", report)
    return report


def _origin(meta: Mapping[str, Any], model: nn.Module) -> str:
    """A hint naming the checkpoint's family/config when it differs from the model's."""
    fam = meta.get("family")
    mine = getattr(model, "family", None)
    if isinstance(fam, str) and mine is not None and fam != mine:
        return f" (the checkpoint was saved from a {fam!r} model, this is a {mine!r} model)"
    config = meta.get("config")
    own_config = getattr(model, "config", None)
    if isinstance(config, Mapping) and isinstance(own_config, Mapping):
        diff = {k: v for k, v in config.items() if k in own_config and own_config[k] != v and k != "labels"}
        if diff:
            return f" (checkpoint config differs: {diff})"
    return ""


# -- saving --------------------------------------------------------------------------------------------------


def _check_meta(value: Any, where: str) -> None:
    # exact types: subclasses such as numpy.float64 or enums pickle as globals weights_only refuses
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_meta(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: expected str or int keys, got {type(k).__name__} key {k!r}")
            _check_meta(v, f"{where}[{k!r}]")
        return
    hint = ""
    if type(value).__module__.startswith("numpy"):
        hint = " (convert with .item() / .tolist() / torch.from_numpy)"
    elif hasattr(value, "state_dict"):
        hint = " (pass its .state_dict())"
    raise TypeError(f"{where}: expected tensors, numbers, strings, bools, None or lists/dicts of them "
                    f"(what torch.load(weights_only=True) reads back), got {type(value).__name__}{hint}")


def save_checkpoint(path: PathLike, model: nn.Module, **meta: Any) -> Path:
    """Write a checkpoint that :func:`load_weights` / :func:`load_model` read with ``weights_only=True``.

    Args:
        path: destination (parent directories are created; written atomically).
        model: the network; for zoo models ``family`` and ``config`` are stored so :func:`load_model`
            can rebuild it.
        **meta: extra entries (epoch, metrics, optimizer state dict, seed, ...): tensors, ints, floats,
            strings, bools, None, and lists / dicts of them.

    Returns:
        The path written.

    Raises:
        TypeError: a meta value of another type (names it), or a reserved meta key.
    """
    for key in meta:
        if key in _RESERVED:
            raise TypeError(f"save_checkpoint: {key!r} is reserved (the checkpoint sets it); choose another name")
        _check_meta(meta[key], f"meta[{key!r}]")
    config = getattr(model, "config", None)
    ckpt: Dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "family": getattr(model, "family", None),
        "config": dict(config) if isinstance(config, Mapping) else None,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **meta,
    }
    _check_meta(ckpt["config"], "model.config")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def load_model(path: PathLike, *, strict: bool = True, **overrides: Any) -> nn.Module:
    """Rebuild a zoo model from a :func:`save_checkpoint` file and load its weights.

    Args:
        path: the checkpoint.
        strict: as in :func:`load_weights`.
        **overrides: builder arguments replacing the stored config (e.g. ``num_classes=3`` with
            ``strict=False`` to fine-tune on other classes).

    Returns:
        The model in eval mode.

    Raises:
        WeightsError: as :func:`load_checkpoint`, or a checkpoint without ``family`` / ``config`` (a raw
            state dict: build the model yourself and call :func:`load_weights`).
    """
    from . import build_model

    state, meta = _split(_read(path), path)
    family, config = meta.get("family"), meta.get("config")
    if not isinstance(family, str) or not isinstance(config, Mapping):
        raise WeightsError(f"{path}: the checkpoint does not say which architecture it is (no 'family'/'config'); "
                           f"build the model with converters.zoo.build_model(...) and call load_weights")
    kwargs = dict(config)
    if "labels" in overrides or "num_classes" in overrides:
        kwargs.pop("labels", None)
        kwargs.pop("num_classes", None)
    kwargs.update(overrides)
    model = build_model(family, **kwargs)
    _apply(model, state, meta, path, strict=strict)
    return model.eval()
