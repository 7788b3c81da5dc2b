"""Training and fine-tuning of the model-zoo families, on synthetic data or a user's own.

::

    from converters.train import TrainConfig, train

    result = train(TrainConfig(family="yolo_nano", data="my_data/data.yaml", epochs=30, out="runs/det",
                               weights="converters/zoo/weights/yolo_nano_shapes.pt", freeze_backbone=True,
                               unfreeze_at=5))
    result = train(TrainConfig(family="yolo_nano", out="runs/det", epochs=40), resume=True)

Modules: :mod:`~converters.train.config` (the run), :mod:`~converters.train.data` (datasets of a run),
:mod:`~converters.train.tasks` (per-family batches, losses, validation), :mod:`~converters.train.optim`
(optimiser, schedule, EMA, freezing, BatchNorm calibration), :mod:`~converters.train.loop` (the loop,
checkpoints, metrics log), :mod:`~converters.train.predict` (a torch model behind ``sdk``'s pre- and
post-processing, for evaluation), :mod:`~converters.train.recipes` (the shipped models' recipes),
:mod:`~converters.train.reference` (their cards), :mod:`~converters.train.cli` (``edgesdk train``).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TrainConfig", "train", "TrainResult", "TrainError", "torch_model", "eval_predictor"]

_LAZY = {"TrainConfig": "converters.train.config", "train": "converters.train.loop",
         "TrainResult": "converters.train.loop", "TrainError": "converters.train.errors",
         "torch_model": "converters.train.predict", "eval_predictor": "converters.train.predict"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
