"""The training loop: one function, :func:`train`, for every family.

::

    result = train(TrainConfig(family="mobilenet", data="synthetic", epochs=5, out="runs/cls"))
    result = train(TrainConfig(family="mobilenet", epochs=8, out="runs/cls"), resume=True)  # continue

Each epoch ends with a validation pass (the EMA weights when EMA is on), ``out/last.pt`` (everything
needed to continue: weights, optimiser, EMA, step, epoch, the run's config), ``out/best.pt`` when the
validation metric improved (the evaluated weights only: what you export) and a JSON line in
``out/metrics.jsonl`` (plotted as ``out/curves.png``). All checkpoints hold plain tensors and containers (``weights_only=True``).
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from .batches import batch_stream, describe_hardware, resolve_device, to_cpu, to_device
from .config import TrainConfig
from .data import open_data
from .errors import TrainError
from .optim import (ModelEMA, apply_freeze, build_optimizer, calibrate_bn, lr_factor, set_lr, set_train_mode,
                    trainable_parameters)
from .plots import plot_history
from .tasks import MAIN_METRIC, build_network, make_task

__all__ = ["train", "TrainResult", "TrainError", "RESUMABLE_OVERRIDES"]

logger = logging.getLogger(__name__)

#: Settings that ``--resume`` may change (the rest comes from the checkpoint).
RESUMABLE_OVERRIDES = ("epochs", "stop_after", "time_limit_s", "threads", "progress", "val_every", "out", "device",
                       "workers")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        out: the run folder.
        last: ``last.pt`` (resumable).
        best: ``best.pt`` (best validation metric so far), None before the first validation.
        epochs_done: completed epochs (over all sessions).
        finished: all ``cfg.epochs`` are done.
        metric: name of the validation metric.
        best_value: its best value.
        history: the metrics lines of this invocation.
        train_seconds: wall time spent training over all sessions.
    """

    out: Path
    last: Path
    best: Optional[Path]
    epochs_done: int
    finished: bool
    metric: str
    best_value: Optional[float]
    history: List[Dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


def _resume_config(cfg: TrainConfig, ckpt: Dict[str, Any], last: Path) -> TrainConfig:
    saved = ckpt.get("train_config")
    if not isinstance(saved, dict):
        raise TrainError(f"{last}: expected a training checkpoint with 'train_config' (written by edgesdk train), "
                         f"got keys {sorted(ckpt)[:8]}")
    if saved.get("family") != cfg.family:
        raise TrainError(f"--resume: {last} is a {saved.get('family')!r} run, got family {cfg.family!r}")
    overrides = {k: getattr(cfg, k) for k in RESUMABLE_OVERRIDES}
    for key in ("device", "workers"):
        if saved.get(key, TrainConfig.__dataclass_fields__[key].default) != overrides[key]:
            logger.info("--resume: %s %r (the run had %r)", key, overrides[key], saved.get(key))
    return TrainConfig.from_dict(saved, **overrides)


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def _finite(loss: torch.Tensor) -> bool:
    return bool(torch.isfinite(loss.detach()).all())


def train(cfg: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train (or continue training) a model.

    Args:
        cfg: the run (see :class:`TrainConfig`).
        resume: continue from ``cfg.out/last.pt`` (weights, optimiser, EMA, schedule, epoch); only
            :data:`RESUMABLE_OVERRIDES` are taken from ``cfg``, the rest from the checkpoint.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainError: ``resume`` without a checkpoint, a checkpoint of another family, a non-finite loss,
            a CUDA device torch cannot see.
        converters.data.DatasetError: missing or malformed data.
        converters.zoo.WeightsError: unreadable ``cfg.weights`` or ``last.pt``.
    """
    from converters.zoo.weights import load_checkpoint, load_weights, save_checkpoint

    out = Path(cfg.out)
    last, best_path = out / "last.pt", out / "best.pt"
    ckpt: Optional[Dict[str, Any]] = None
    if resume:
        if not last.is_file():
            raise TrainError(f"--resume: expected a checkpoint {last} from an earlier run, found none "
                             f"(start without --resume)")
        ckpt = load_checkpoint(last)
        cfg = _resume_config(cfg, ckpt, last)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    hardware = describe_hardware(device, cfg.threads if cfg.threads is not None else torch.get_num_threads(),
                                 cfg.workers)
    size = cfg.size if isinstance(cfg.size, int) else int(min(cfg.size))
    data = open_data(cfg.task, cfg.data, val_images=cfg.val_images, input_size=size, options=cfg.data_options,
                     seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        model = build_network(cfg, data.class_names)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        elif cfg.weights:
            report = load_weights(model, cfg.weights, strict=False)
            logger.info("start weights: %s", report)
        model.to(device)
        task = make_task(cfg, data, model)
        optimizer = build_optimizer(model, kind=cfg.optimizer, lr=cfg.peak_lr, weight_decay=cfg.decay,
                                    backbone_lr_mult=cfg.backbone_lr_mult)
        ema = ModelEMA(model, cfg.ema_decay) if cfg.use_ema else None
        start_epoch, step, best_value, spent = 0, 0, None, 0.0
        if ckpt is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            if ema is not None and isinstance(ckpt.get("ema_state"), dict):
                ema.load_state_dict(ckpt["ema_state"])
            start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
            best_value = ckpt.get("best_value")
            spent = float(ckpt.get("train_seconds", 0.0))
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
        metric = MAIN_METRIC[cfg.task]
        history: List[Dict[str, Any]] = []
        total = cfg.epochs * task.steps_per_epoch
        logger.info("train %s on %s: %d epochs x %d steps x batch %d, %d parameters, from epoch %d, on %s "
                    "(%d batch workers)", cfg.family, data.description, cfg.epochs, task.steps_per_epoch, cfg.batch,
                    sum(p.numel() for p in model.parameters()), start_epoch, device, cfg.workers)
        session_start = time.perf_counter()
        epochs_run = 0
        for epoch in range(start_epoch, cfg.epochs):
            frozen = cfg.freeze_backbone and (cfg.unfreeze_at is None or epoch < cfg.unfreeze_at)
            live = apply_freeze(model, frozen=frozen, unfreeze_last=cfg.unfreeze_last) if cfg.freeze_backbone else []
            if ckpt is None and epoch == start_epoch and cfg.bn_calibration and frozen:
                model.eval()
                calibrate_bn(model.backbone_modules(), lambda b: task.forward(model, to_device(b, device)),
                             (task.batch(0, i) for i in range(cfg.bn_calibration)))
                if ema is not None:
                    ema.module.load_state_dict(model.state_dict())
            set_train_mode(model, live)
            torch.manual_seed(cfg.seed * 1_000_003 + epoch)
            t0 = time.perf_counter()
            sums: Dict[str, float] = {}
            n_images = 0
            lr = cfg.peak_lr
            report_every = max(1, task.steps_per_epoch // 10)
            on_gpu = device.type == "cuda"
            stream = batch_stream(task.batch, epoch, task.steps_per_epoch, workers=cfg.workers, pin_memory=on_gpu)
            try:
                for s, batch in _progress(enumerate(stream), task.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}",
                                          cfg.progress):
                    lr = set_lr(optimizer, cfg.peak_lr, lr_factor(step, total, schedule=cfg.schedule,
                                                                  warmup=cfg.warmup_steps, min_ratio=cfg.min_lr_ratio))
                    batch = to_device(batch, device, non_blocking=on_gpu)
                    loss, parts = task.loss(model, batch)
                    if not _finite(loss):
                        raise TrainError(f"the loss is not finite at epoch {epoch + 1}, step {s + 1} ({parts}); "
                                         f"lower the learning rate (lr={lr:.3g})")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip > 0:
                        nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                                 cfg.grad_clip)
                    optimizer.step()
                    if ema is not None:
                        ema.update(model)
                    step += 1
                    n_images += task.batch_size(batch)
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    if (s + 1) % report_every == 0:
                        logger.info("epoch %d step %d/%d lr %.3g loss %.4f", epoch + 1, s + 1, task.steps_per_epoch,
                                    lr, sums.get("loss", 0.0) / (s + 1))
            finally:
                stream.close()  # a step that raised leaves the stream: stop its workers now
            seconds = time.perf_counter() - t0
            spent += seconds
            line: Dict[str, Any] = {
                "epoch": epoch + 1, "step": step, "lr": lr, "frozen_backbone": bool(frozen),
                "trainable_parameters": trainable_parameters(model),
                "train": {k: round(v / task.steps_per_epoch, 5) for k, v in sums.items()},
                "epoch_seconds": round(seconds, 1), "images_per_s": round(n_images / max(seconds, 1e-9), 2),
                "train_seconds": round(spent, 1), "hardware": hardware,
            }
            eval_model = ema.module if ema is not None else model
            if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
                tv = time.perf_counter()
                val = task.evaluate(eval_model)
                line["val"] = val
                line["val_seconds"] = round(time.perf_counter() - tv, 1)
                value = val.get(metric)
                line["metric"], line["value"] = metric, value
                if value is not None and (best_value is None or value > best_value):
                    best_value = float(value)
                    save_checkpoint(best_path, eval_model, epoch=epoch + 1, step=step, metrics=_plain(val),
                                    train_config=cfg.to_dict(), train_seconds=round(spent, 1),
                                    weights="ema" if ema is not None else "raw")
                    line["saved_best"] = True
            line["best"] = best_value
            save_checkpoint(last, model, epoch=epoch + 1, step=step, optimizer=to_cpu(optimizer.state_dict()),
                            ema_state=to_cpu(ema.state_dict()) if ema is not None else None,
                            train_config=cfg.to_dict(),
                            best_value=best_value, train_seconds=round(spent, 1), metrics=_plain(line))
            with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            history.append(line)
            plot_history(out / "metrics.jsonl", out / "curves.png")
            logger.info("epoch %d/%d: %s", epoch + 1, cfg.epochs, json.dumps(line))
            epochs_run += 1
            set_train_mode(model, live)
            if cfg.stop_after is not None and epochs_run >= cfg.stop_after:
                break
            if cfg.time_limit_s is not None and time.perf_counter() - session_start >= cfg.time_limit_s:
                logger.info("time limit reached after epoch %d; continue with --resume", epoch + 1)
                break
        done = start_epoch + epochs_run
    return TrainResult(out=out, last=last, best=best_path if best_path.is_file() else None, epochs_done=done,
                       finished=done >= cfg.epochs, metric=metric, best_value=best_value, history=history,
                       train_seconds=round(spent, 1))


def _plain(value: Any) -> Any:
    """Metrics → only what ``weights_only`` checkpoints hold (floats, ints, str, lists, dicts, None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
