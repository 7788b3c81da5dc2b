"""``edgesdk convert FAMILY|CHECKPOINT --to onnx,tflite,openvino --precision fp32,fp16,int8 --out DIR ...``

Builds a zoo model (``FAMILY``, optionally ``--weights PATH``) or rebuilds one from a checkpoint written
by :func:`converters.zoo.save_checkpoint`, then runs :func:`converters.export.pipeline.export`. Exit
status: 0 when every artifact passed, 1 when one was rejected by the accuracy gate or the FP32 parity
check (the report names the metric and the drop), 2 for bad input (the message says what was expected).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import List, Optional

from .onnx_export import CALIBRATION_METHODS

__all__ = ["main", "build_parser", "add_model_arguments"]

logger = logging.getLogger(__name__)


def add_model_arguments(p: argparse.ArgumentParser, *, out_required: bool = True,
                        val_count: int = 200) -> argparse.ArgumentParser:
    """The options ``edgesdk convert`` shares with ``edgesdk benchmark``: the model, formats, precisions,
    data, output folder."""
    p.add_argument("model", help="a zoo family (mobilenet, ssdlite, yolo_nano, siamese) or a checkpoint file")
    p.add_argument("--weights", type=Path, help="weights for FAMILY (state dict or checkpoint)")
    p.add_argument("--to", default="onnx,tflite,openvino", help="formats, comma-separated (default: all three)")
    p.add_argument("--precision", default="fp32,fp16,int8", help="precisions, comma-separated (default: all)")
    p.add_argument("--out", required=out_required, type=Path, default=None if out_required else Path("benchmark"),
                   help="output folder (new or empty unless --force)" + ("" if out_required else
                                                                        "; default ./benchmark"))
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--input-size", type=int, help="network input size (square)")
    p.add_argument("--calib", default="synthetic", help="calibration images: a folder, or 'synthetic' (default)")
    p.add_argument("--val", default="synthetic", help="gate data: a folder / data.yaml, or 'synthetic' (default)")
    p.add_argument("--calib-count", type=int, default=100, help="calibration images (default 100; 0: all in folder)")
    p.add_argument("--val-count", type=int, default=val_count,
                   help=f"synthetic validation items (default {val_count})")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed of a FAMILY built without weights")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def _depth(text: str) -> int:
    """``--float-depth``: an int >= 0 (0: quantise everything)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0 (0: no float tail), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesdk convert",
                                description="Export a model to ONNX / TFLite / OpenVINO, quantise it, check it "
                                            "against PyTorch and gate its accuracy.")
    add_model_arguments(p)
    p.add_argument("--tune", default="auto",
                   help="labelled items for OpenVINO INT8 accuracy control when plain INT8 fails the gate: a folder, "
                        "'synthetic', 'none', or 'auto' (default: synthetic when --val is synthetic, else none; "
                        "never the --val items)")
    p.add_argument("--onnx-activations", choices=("uint8", "int8"), default="uint8",
                   help="ONNX INT8 activations: uint8 (U8S8, default: ONNX Runtime's fast x86 kernels) or int8 (S8S8)")
    p.add_argument("--onnx-calibration", choices=CALIBRATION_METHODS, default="minmax",
                   help="ONNX INT8 activation ranges: minmax (default) or percentile (99.999th: ignores rare "
                        "outliers)")
    p.add_argument("--max-drop", type=float, help="maximum metric drop for INT8 and FP16 (default 0.01 / 0.002)")
    p.add_argument("--float-depth", type=_depth, default=1, metavar="N",
                   help="INT8 models keep the layers from each output back to the N-th weighted layer in float "
                        "(default 1: the last convolution and the decode after it; 2 helps detection heads that "
                        "miss the gate; 0: quantise everything)")
    p.add_argument("--latency-runs", type=int, default=20, help="timed sdk calls per artifact (default 20)")
    return p


def _build(args: argparse.Namespace):
    from converters.zoo import FAMILIES, build_model, load_model, load_weights

    from .errors import ExportError, InputSizeError

    overrides = {} if args.input_size is None else {"input_size": args.input_size}
    try:
        if args.model in FAMILIES:
            model = build_model(args.model, seed=args.seed, **overrides)
            if args.weights is not None:
                load_weights(model, args.weights)
            else:
                logger.warning("no --weights given: exporting %s with random (seeded) weights", args.model)
            return model.eval()
        path = Path(args.model)
        if not path.is_file():
            raise ExportError(f"model: expected a zoo family ({', '.join(FAMILIES)}) or a checkpoint file, got "
                              f"{args.model!r} (no such family or file)")
        if args.weights is not None:
            raise ExportError("--weights: expected no --weights with a CHECKPOINT (it carries its weights)")
        return load_model(path, **overrides)
    except ValueError as exc:
        text = str(exc)
        m = re.search(r"input_size: expected sides .*multiples of (\d+)", text)
        if m:
            stride, n = int(m.group(1)), args.input_size
            lo, hi = (n // stride) * stride, (n // stride + 1) * stride
            raise InputSizeError(f"--input-size {n}: not divisible by the model stride {stride} of {args.model}; "
                                 f"expected a multiple of {stride} (e.g. {lo or hi} or {hi})") from exc
        if "input_size" in text:
            raise InputSizeError(f"--input-size {args.input_size}: {text}") from exc
        raise


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``edgesdk convert``; returns the exit status (0 ok, 1 rejected, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from sdk.errors import SDKError

    from .pipeline import export

    try:
        model = _build(args)
        calib = args.calib if args.calib == "synthetic" else Path(args.calib)
        val = args.val if args.val == "synthetic" else Path(args.val)
        tune = None if args.tune == "none" else args.tune if args.tune in ("auto", "synthetic") else Path(args.tune)
        if isinstance(tune, Path) and isinstance(val, Path) and tune.resolve() == val.resolve():
            raise ValueError(f"--tune: expected items other than the gate's --val {val}, got the same folder")
        result = export(model, to=args.to, precision=args.precision, out=args.out, calib=calib, val=val, tune=tune,
                        onnx_activations=args.onnx_activations, onnx_calibration=args.onnx_calibration,
                        keep_float=args.float_depth or False,
                        max_drop=args.max_drop, force=args.force, calib_count=args.calib_count,
                        val_count=args.val_count, latency_runs=args.latency_runs)
    except (SDKError, ValueError, OSError) as exc:
        print(f"edgesdk convert: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for row in result.rows:
        gate = row.get("gate") or {}
        print(f"{row['verdict']:>9}  {row['file']:<28} {row['bytes'] / 1e6:7.2f} MB  "
              f"{gate.get('metric', '-')}: {gate.get('converted', '-')} (drop {gate.get('drop', '-')})  "
              f"p50 {row['latency']['p50_ms']:.2f} ms")
    print(f"report: {result.report['md']}")
    if result.rejected:
        for row in result.rejected:
            print(f"edgesdk convert: rejected {row['file']}: {row['reason']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
