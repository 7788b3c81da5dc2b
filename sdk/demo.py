"""``edgesdk demo`` (``make demo``): the shipped INT8 YOLO-nano on a video source, with a latency report.

::

    edgesdk demo                                  # synthetic://shapes, both shipped INT8 artifacts
    edgesdk demo --source rtsp://cam.local/stream --frames 600
    edgesdk demo --model my_detector.tflite --source /dev/video0

Writes into ``--out`` (default ``build/demo``): one annotated MP4 per model, ``report.json``,
``report.md`` and the plots; prints the per-stage latency table (p50/p90/p99) and, on sources that
carry ground truth (``synthetic://shapes``), the live mAP.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, List, Optional

__all__ = ["add_parser", "run_demo", "default_models", "DEMO_MODELS"]

logger = logging.getLogger(__name__)

#: The shipped demo artifacts, relative to the repository root (``examples/models``).
DEMO_MODELS = ("yolo_nano_int8.tflite", "yolo_nano_int8.onnx")


def _models_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "models"


def default_models() -> List[Path]:
    """The shipped INT8 YOLO-nano artifacts that exist (TFLite first: the edge format)."""
    return [p for p in (_models_dir() / name for name in DEMO_MODELS) if p.is_file()]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="run the shipped INT8 YOLO-nano on a source: annotated video + latency report")
    p.add_argument("--model", action="append", help="model file (repeatable; default: the shipped INT8 YOLO-nano "
                                                   "TFLite and ONNX artifacts)")
    p.add_argument("--source", default="synthetic://shapes", help="frame source URI (default synthetic://shapes)")
    p.add_argument("--device", help="device config name or YAML path")
    p.add_argument("--frames", type=int, default=300, help="measured frames per model (default 300)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated MP4")
    p.set_defaults(func=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """``edgesdk demo`` entry: returns the exit status."""
    from sdk.profile_cli import print_report, profile_models

    models: Optional[List[Any]] = args.model or default_models()
    if not models:
        print(f"edgesdk demo: no model given and the shipped models are missing from {_models_dir()} "
              f"(expected {', '.join(DEMO_MODELS)}); pass --model PATH")
        return 2
    print(f"EdgeSDK demo: {', '.join(Path(m).name for m in models)} on {args.source}, "
          f"{args.frames} frames (+{args.warmup} warm-up) each")
    try:
        report = profile_models([str(m) for m in models], source=args.source, device=args.device,
                                frames=args.frames, warmup=args.warmup, out=args.out,
                                save_video=not args.no_video)
    except ValueError as exc:
        print(f"edgesdk demo: {exc}")
        return 2
    print_report(report, args.out)
    return 0
