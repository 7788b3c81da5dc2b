"""What a training run is: :class:`TrainConfig`, plain values only (it goes into checkpoints and JSON).

::

    cfg = TrainConfig(family="mobilenet", data="synthetic", epochs=10, out="runs/cls", batch=64,
                      model={"variant": "v3_small", "width_mult": 1.0}, input_size=64)
    cfg = TrainConfig.from_dict(checkpoint["train_config"])      # what --resume reads back
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

__all__ = ["TrainConfig", "FAMILY_TASKS", "OPTIMIZERS", "SCHEDULES", "DEFAULT_INPUT_SIZE"]

#: family → the task its data has (``converters.data`` task names).
FAMILY_TASKS: Dict[str, str] = {"mobilenet": "classify", "ssdlite": "detect", "yolo_nano": "detect",
                                "siamese": "identity", "yolo_backbone": "classify"}
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "constant")
#: Network input side per family when ``input_size`` is not given.
DEFAULT_INPUT_SIZE: Dict[str, int] = {"mobilenet": 64, "ssdlite": 320, "yolo_nano": 320, "siamese": 96,
                                      "yolo_backbone": 64}
#: Accepted ``device`` values: ``cpu``, ``cuda``, ``cuda:N``, ``auto``.
_DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?")
#: Default learning rate per optimizer.
DEFAULT_LR = {"adamw": 2e-3, "sgd": 0.05}


def _fail(name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"TrainConfig.{name}: expected {expected}, got {got!r}")


def _int(value: Any, name: str, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, f"an int >= {minimum}" + (" or None" if optional else ""), value)


def _num(value: Any, name: str, lo: float, hi: Optional[float] = None, *, optional: bool = False,
         open_lo: bool = False) -> None:
    if value is None and optional:
        return
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok:
        ok = (value > lo if open_lo else value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = f"{'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise _fail(name, f"a number {rng}" + (" or None" if optional else ""), value)


@dataclass
class TrainConfig:
    """A training run (see ``edgesdk train --help`` for the command-line view).

    Attributes:
        family: ``"mobilenet"``, ``"ssdlite"``, ``"yolo_nano"``, ``"siamese"`` (or ``"yolo_backbone"``,
            the YOLO-nano backbone as a classifier, for pre-training it on classification crops).
        data: ``"synthetic"`` or a path (ImageFolder root; YOLO ``data.yaml`` / folder; COCO ``.json``;
            identity folders), see :mod:`converters.train.data`.
        out: output folder (``last.pt``, ``best.pt``, ``metrics.jsonl``, ``config.json``).
        epochs: total epochs (on ``--resume`` it may be raised; the LR schedule follows the new total).
        batch: images per step (Siamese: ``identities_per_batch * images_per_identity``).
        steps_per_epoch: optimiser steps per epoch (default: ``train_images // batch`` for synthetic data,
            one pass over the training images for a user's data).
        train_images: synthetic images per epoch (fresh images every epoch).
        val_images: validation images (synthetic ``val`` split, or at most this many of a user's val set).
        input_size: network input side or ``[h, w]`` (default per family).
        seed: seeds the weights, the data order, augmentation and dropout.
        threads: ``torch.set_num_threads`` (None: leave torch's default).
        device: where the network trains: ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (an NVIDIA GPU), or
            ``"auto"`` (CUDA when torch sees one, else the CPU). Checkpoints are written on the CPU either
            way, so a run started on a GPU resumes on a CPU and the other way round. CUDA kernels are not
            bit-for-bit deterministic: only CPU runs repeat exactly.
        workers: processes that draw the batches ahead of the training step (0: drawn in the training
            process). Each batch is a pure function of ``(seed, epoch, step)``, so the weights are the same
            with any number of workers; they pay off when drawing and augmenting the images is a large part
            of a step (a GPU, or more cores than ``threads``).
        weights: a local checkpoint to start from (loaded with ``strict=False``: a new head is
            re-initialised; a classifier's trunk transfers into a detector or a Siamese network).
        freeze_backbone: train only the neck / heads (the backbone's BatchNorm stays in eval mode).
        unfreeze_at: epoch (0-based) at which a frozen backbone starts training (None: stays frozen).
        unfreeze_last: when unfreezing, only the last N blocks of the backbone (partial fine-tune).
        backbone_lr_mult: learning-rate factor of backbone parameters once they train.
        optimizer: ``"adamw"`` or ``"sgd"`` (Nesterov momentum).
        lr: peak learning rate (default 2e-3 AdamW, 0.05 SGD).
        weight_decay: decoupled (AdamW) or L2 (SGD) decay of conv/linear weights (not of biases, norms).
        schedule: ``"cosine"`` (after warm-up), ``"onecycle"`` (cosine up over 30 %, then down) or ``"constant"``.
        warmup_steps: linear warm-up steps (cosine / constant).
        min_lr_ratio: final LR as a fraction of ``lr``.
        ema: keep an exponential moving average of the weights, evaluated and saved as ``best.pt``
            (default: on for detectors).
        ema_decay: EMA decay (ramped up as ``decay * (1 - exp(-updates / 2000))``).
        bn_calibration: batches used to re-estimate BatchNorm statistics of a frozen (transferred) backbone
            on this data before training (0: off).
        grad_clip: max gradient norm (0: off).
        label_smoothing: classifier cross-entropy label smoothing.
        model: builder keyword arguments (``width_mult``, ``variant``, ``end2end``, ``loss``, ...).
        data_options: synthetic generator arguments (``size_hw`` may be a list of sizes: a mix), or reader
            options (``val_fraction``).
        identities_per_batch, images_per_identity: the Siamese ``P x K`` batch.
        val_every: evaluate every N epochs (and after the last).
        stop_after: run at most this many epochs in this invocation (then ``--resume``).
        time_limit_s: stop after the epoch during which this much wall time has passed (then ``--resume``).
        progress: tqdm bars (only when stderr is a terminal).
    """

    family: str
    data: str = "synthetic"
    out: str = "runs/train"
    epochs: int = 10
    batch: int = 32
    steps_per_epoch: Optional[int] = None
    train_images: int = 4000
    val_images: int = 300
    input_size: Optional[Union[int, List[int]]] = None
    seed: int = 0
    threads: Optional[int] = None
    device: str = "cpu"
    workers: int = 0
    weights: Optional[str] = None
    freeze_backbone: bool = False
    unfreeze_at: Optional[int] = None
    unfreeze_last: Optional[int] = None
    backbone_lr_mult: float = 1.0
    optimizer: str = "adamw"
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02
    ema: Optional[bool] = None
    ema_decay: float = 0.999
    bn_calibration: int = 0
    grad_clip: float = 10.0
    label_smoothing: float = 0.05
    model: Dict[str, Any] = field(default_factory=dict)
    data_options: Dict[str, Any] = field(default_factory=dict)
    identities_per_batch: int = 8
    images_per_identity: int = 4
    val_every: int = 1
    stop_after: Optional[int] = None
    time_limit_s: Optional[float] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILY_TASKS:
            import difflib

            close = difflib.get_close_matches(str(self.family), list(FAMILY_TASKS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"TrainConfig.family: expected one of {', '.join(FAMILY_TASKS)}, "
                             f"got {self.family!r}{hint}")
        if not isinstance(self.data, str) or not self.data:
            raise _fail("data", "'synthetic' or a path", self.data)
        if not isinstance(self.out, str) or not self.out:
            raise _fail("out", "an output folder path", self.out)
        _int(self.epochs, "epochs", 1)
        _int(self.batch, "batch", 1)
        _int(self.steps_per_epoch, "steps_per_epoch", 1, optional=True)
        _int(self.train_images, "train_images", 1)
        _int(self.val_images, "val_images", 1)
        _int(self.seed, "seed", 0)
        _int(self.threads, "threads", 1, optional=True)
        _int(self.workers, "workers", 0)
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise _fail("device", "'cpu', 'cuda', 'cuda:N' or 'auto'", self.device)
        _int(self.unfreeze_at, "unfreeze_at", 0, optional=True)
        _int(self.unfreeze_last, "unfreeze_last", 1, optional=True)
        _int(self.warmup_steps, "warmup_steps", 0)
        _int(self.bn_calibration, "bn_calibration", 0)
        _int(self.identities_per_batch, "identities_per_batch", 2)
        _int(self.images_per_identity, "images_per_identity", 2)
        _int(self.val_every, "val_every", 1)
        _int(self.stop_after, "stop_after", 1, optional=True)
        _num(self.backbone_lr_mult, "backbone_lr_mult", 0.0)
        _num(self.lr, "lr", 0.0, optional=True, open_lo=True)
        _num(self.weight_decay, "weight_decay", 0.0, optional=True)
        _num(self.min_lr_ratio, "min_lr_ratio", 0.0, 1.0)
        _num(self.ema_decay, "ema_decay", 0.0, 1.0, open_lo=True)
        _num(self.grad_clip, "grad_clip", 0.0)
        _num(self.label_smoothing, "label_smoothing", 0.0, 0.5)
        _num(self.time_limit_s, "time_limit_s", 0.0, optional=True, open_lo=True)
        if self.optimizer not in OPTIMIZERS:
            raise _fail("optimizer", f"one of {OPTIMIZERS}", self.optimizer)
        if self.schedule not in SCHEDULES:
            raise _fail("schedule", f"one of {SCHEDULES}", self.schedule)
        for name in ("freeze_backbone", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, "True or False", getattr(self, name))
        if self.ema is not None and not isinstance(self.ema, bool):
            raise _fail("ema", "True, False or None", self.ema)
        if self.weights is not None and not isinstance(self.weights, str):
            raise _fail("weights", "a checkpoint path or None", self.weights)
        if self.input_size is not None:
            size = self.input_size
            ok = (isinstance(size, int) and not isinstance(size, bool) and size >= 16) or (
                isinstance(size, (list, tuple)) and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 16 for v in size))
            if not ok:
                raise _fail("input_size", "an int >= 16 or [height, width]", size)
            if isinstance(size, tuple):
                self.input_size = list(size)
        for name in ("model", "data_options"):
            if not isinstance(getattr(self, name), dict):
                raise _fail(name, "a dict", getattr(self, name))
        if self.family == "siamese" and self.batch != self.identities_per_batch * self.images_per_identity:
            self.batch = self.identities_per_batch * self.images_per_identity

    # -- derived values --------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        """The data task of the family (``classify``, ``detect`` or ``identity``)."""
        return FAMILY_TASKS[self.family]

    @property
    def size(self) -> Union[int, List[int]]:
        """``input_size`` or the family default."""
        return self.input_size if self.input_size is not None else DEFAULT_INPUT_SIZE[self.family]

    @property
    def peak_lr(self) -> float:
        return float(self.lr if self.lr is not None else DEFAULT_LR[self.optimizer])

    @property
    def decay(self) -> float:
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.05 if self.optimizer == "adamw" else 5e-4

    @property
    def use_ema(self) -> bool:
        return self.ema if self.ema is not None else self.family in ("ssdlite", "yolo_nano")

    @property
    def synthetic(self) -> bool:
        return self.data == "synthetic"

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (JSON and ``torch.load(weights_only=True)`` friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], **overrides: Any) -> "TrainConfig":
        """Rebuild from :meth:`to_dict` (unknown keys are an error naming them).

        Raises:
            ValueError: unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"train config: expected a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"train config: unknown keys {unknown}; known keys: {sorted(known)}")
        merged = dict(data)
        merged.update(overrides)
        return cls(**merged)
