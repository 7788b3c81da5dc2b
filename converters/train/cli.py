"""``edgesdk train FAMILY --data PATH|synthetic --epochs N --out DIR [...]``.

::

    edgesdk train mobilenet --data synthetic --epochs 5 --out runs/cls
    edgesdk train yolo_nano --data my_dataset/data.yaml --epochs 30 --out runs/det \\
        --weights converters/zoo/weights/yolo_nano_shapes.pt --freeze-backbone --unfreeze-at 5
    edgesdk train yolo_nano --out runs/det --resume --epochs 40        # continue (and extend) a run
    edgesdk train siamese --data faces/ --loss contrastive --epochs 10 --out runs/sia

Exit status: 0 done (or stopped by ``--stop-after`` / ``--time-limit-min``, resumable), 1 the run failed
(bad data, weights or checkpoint; the message says what was expected), 2 bad command-line usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

FAMILIES = ("mobilenet", "ssdlite", "yolo_nano", "siamese")
_MODEL_ARGS = ("variant", "width_mult", "depth_mult", "end2end", "loss", "embedding_dim", "backbone", "margin")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option defaults to None so ``--resume`` can tell what was given)."""
    p = argparse.ArgumentParser(prog="edgesdk train", description="Train or fine-tune a model-zoo network.")
    p.add_argument("family", choices=FAMILIES, help="model family")
    p.add_argument("--data", help="'synthetic' or a dataset path (ImageFolder, YOLO data.yaml / folder, COCO .json, "
                                  "identity folders)")
    p.add_argument("--epochs", type=int, help="total epochs (default 10)")
    p.add_argument("--out", required=True, help="run folder (last.pt, best.pt, metrics.jsonl)")
    p.add_argument("--weights", help="start from this local checkpoint (a new head is re-initialised)")
    p.add_argument("--freeze-backbone", action="store_true", default=None, help="train the head only")
    p.add_argument("--unfreeze-at", type=int, help="epoch (0-based) at which a frozen backbone starts training")
    p.add_argument("--unfreeze-last", type=int, help="unfreeze only the last N backbone blocks (partial fine-tune)")
    p.add_argument("--backbone-lr-mult", type=float, help="LR factor of the backbone once it trains")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (optimizer, schedule, epoch)")
    p.add_argument("--input-size", type=int, help="network input side")
    p.add_argument("--batch", type=int, help="images per step")
    p.add_argument("--seed", type=int, help="seed of weights, data order and augmentation (default 0)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--device", help="where to train: cpu (default), cuda, cuda:N, or auto (CUDA when torch sees one)")
    p.add_argument("--workers", type=int, help="processes drawing batches ahead of the training step (default 0)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=("adamw", "sgd"))
    p.add_argument("--schedule", choices=("cosine", "onecycle", "constant"))
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--train-images", type=int, help="synthetic images per epoch")
    p.add_argument("--val-images", type=int, help="validation images")
    p.add_argument("--ema", dest="ema", action="store_true", default=None, help="EMA of weights (default: detectors)")
    p.add_argument("--no-ema", dest="ema", action="store_false")
    p.add_argument("--bn-calibration", type=int, help="batches to recalibrate a frozen backbone's BatchNorm")
    p.add_argument("--stop-after", type=int, help="run at most N epochs now (resume later)")
    p.add_argument("--time-limit-min", type=float, help="stop after the epoch that passes N minutes")
    # model builder shortcuts
    p.add_argument("--variant", help="mobilenet / ssdlite variant (v3_small, v3_large, v2)")
    p.add_argument("--backbone", help="siamese trunk (v3_small, v3_large, v2)")
    p.add_argument("--width-mult", type=float)
    p.add_argument("--depth-mult", type=float, help="yolo_nano depth multiplier")
    p.add_argument("--end2end", action="store_true", default=None, help="yolo_nano: add the NMS-free head")
    p.add_argument("--loss", choices=("triplet", "contrastive"), help="siamese loss")
    p.add_argument("--margin", type=float, help="siamese loss margin")
    p.add_argument("--embedding-dim", type=int)
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="another builder argument; VALUE is JSON (numbers, true/false, strings, lists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _model_args(args: argparse.Namespace) -> Dict[str, Any]:
    out: Dict[str, Any] = {k: getattr(args, k) for k in _MODEL_ARGS if getattr(args, k) is not None}
    for item in args.model_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-arg: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


_CFG_ARGS = {"epochs": "epochs", "weights": "weights", "freeze_backbone": "freeze_backbone",
             "unfreeze_at": "unfreeze_at", "unfreeze_last": "unfreeze_last", "backbone_lr_mult": "backbone_lr_mult",
             "input_size": "input_size", "batch": "batch", "seed": "seed", "threads": "threads", "device": "device",
             "workers": "workers", "lr": "lr",
             "optimizer": "optimizer", "schedule": "schedule", "warmup_steps": "warmup_steps",
             "steps_per_epoch": "steps_per_epoch", "train_images": "train_images", "val_images": "val_images",
             "ema": "ema", "bn_calibration": "bn_calibration", "stop_after": "stop_after", "data": "data"}


def _config(args: argparse.Namespace) -> Any:
    from converters.zoo import load_checkpoint

    from .config import TrainConfig
    from .loop import RESUMABLE_OVERRIDES, TrainError

    given = {dst: getattr(args, src) for src, dst in _CFG_ARGS.items() if getattr(args, src) is not None}
    if args.time_limit_min is not None:
        given["time_limit_s"] = args.time_limit_min * 60.0
    given["progress"] = not args.no_progress
    model = _model_args(args)
    if not args.resume:
        if "data" not in given:
            raise _Usage("--data is required (or pass --resume to continue a run)")
        return TrainConfig(family=args.family, out=args.out, model=model, **given)
    last = Path(args.out) / "last.pt"
    if not last.is_file():
        raise TrainError(f"--resume: expected a checkpoint {last} from an earlier run, found none")
    saved = load_checkpoint(last).get("train_config")
    if not isinstance(saved, dict):
        raise TrainError(f"--resume: {last} has no 'train_config' (not written by edgesdk train)")
    conflicts = [f"--{k.replace('_', '-')} {v!r} (the run has {saved.get(k)!r})" for k, v in given.items()
                 if k not in RESUMABLE_OVERRIDES and k != "data" and saved.get(k) != v]
    if model and model != {k: saved.get("model", {}).get(k) for k in model}:
        conflicts.append(f"model arguments {model} (the run has {saved.get('model')})")
    if conflicts:
        raise _Usage("--resume continues a run with its own settings; these differ: " + "; ".join(conflicts)
                     + ". Only --epochs, --stop-after, --time-limit-min, --threads, --device and "
                     "--workers may change.")
    merged = dict(saved)
    merged.update({k: v for k, v in given.items() if k in RESUMABLE_OVERRIDES})
    merged["out"] = args.out
    return TrainConfig.from_dict(merged)


class _Usage(Exception):
    """A command-line usage error (exit status 2)."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``edgesdk train``; returns the exit status (0 ok, 1 failed run, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse prints its own message
        return int(exc.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sdk.errors import SDKError

    from .loop import train

    try:
        cfg = _config(args)
        result = train(cfg, resume=args.resume)
    except _Usage as exc:
        print(f"edgesdk train: {exc}", file=sys.stderr)
        return 2
    except (SDKError, ValueError, FileNotFoundError, TypeError) as exc:
        print(f"edgesdk train: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    summary = {"out": str(result.out), "last": str(result.last), "best": str(result.best) if result.best else None,
               "epochs_done": result.epochs_done, "finished": result.finished, "metric": result.metric,
               "best_value": result.best_value, "train_seconds": result.train_seconds}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = "finished" if result.finished else "stopped (continue with --resume)"
        print(f"{cfg.family}: {result.epochs_done}/{cfg.epochs} epochs, {state}; best {result.metric} = "
              f"{result.best_value if result.best_value is None else round(result.best_value, 4)}; "
              f"checkpoints in {result.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
