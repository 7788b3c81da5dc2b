"""``edgesdk eval MODEL --data PATH|synthetic [--json]``: one evaluation path for checkpoints and artifacts.

::

    edgesdk eval converters/zoo/weights/yolo_nano_shapes.pt --data synthetic
    edgesdk eval yolo_nano_int8.tflite --data my_dataset/data.yaml --json --plots reports/
    edgesdk eval siamese.onnx --data faces_val/            # identity folders: all pairs

MODEL is a PyTorch checkpoint (``.pt`` / ``.pth``, rebuilt with ``converters.zoo.load_model``) or an
exported artifact (``.onnx``, ``.tflite``, OpenVINO ``.xml``, loaded by ``sdk.load``). Both run through
``sdk``'s pre-processing and decoders (the checkpoint on a torch backend), then the evaluators of
:mod:`converters.evaluation`.

``--data synthetic`` uses the held-out ``test`` split (``--split val`` for the validation split): crops
for classifiers, square and 16:9 detection images for detectors, verification pairs for embedders.
A path is read by the ``converters.data`` readers: an ImageFolder root (its ``val/`` when present),
a YOLO ``data.yaml`` (its ``val`` split) or images folder, a COCO ``.json``, or identity folders.

Exit status: 0 evaluated, 1 the model or data could not be used (the message says why), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

__all__ = ["main", "build_parser", "open_model", "open_dataset"]

logger = logging.getLogger(__name__)

_CHECKPOINT_SUFFIXES = (".pt", ".pth")
_SUMMARY = {"classify": ("top1", "top5"), "detect": ("map50_95", "map50", "map75", "map_small", "map_medium",
                                                     "map_large", "ar_max", "agnostic_map50"),
            "embed": ("roc_auc", "eer", "eer_threshold", "tar_at_far", "threshold_at_far")}


def confusion_line(confusion: Dict[str, Any]) -> str:
    """One line that says where a detector's misses go, from a detection report's ``confusion`` entry."""
    s = confusion["summary"]
    return (f"at conf >= {confusion['conf']:g}, IoU >= {confusion['iou']:g}: of {s['objects']} objects "
            f"{s['found_right_class']:.1%} found with the right class, {s['found_wrong_class']:.1%} with a wrong "
            f"class, {s['missed']:.1%} missed; {s['false_positives']:.1%} of {s['detections']} detections matched "
            f"no object")


def size_table(by_size: Dict[str, Any]) -> str:
    """A small table of a detection report's ``by_size`` entry: objects found / confused / missed per size bin."""
    lines = [f"by object side ({by_size['measure']}, conf >= {by_size['conf']:g}, IoU >= {by_size['iou']:g}):",
             f"  {'side px':>9} {'objects':>8} {'right class':>12} {'wrong class':>12} {'missed':>8}"]
    for b in by_size["bins"]:
        span = f"{b['min_px']:g}-{b['max_px']:g}" if b["max_px"] is not None else f"{b['min_px']:g}+"
        lines.append(f"  {span:>9} {b['objects']:>8} {b['found_right_class']:>12.1%} "
                     f"{b['found_wrong_class']:>12.1%} {b['missed']:>8.1%}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesdk eval", description="Evaluate a checkpoint or an exported model.")
    p.add_argument("model", help="checkpoint (.pt) or exported model (.onnx, .tflite, .xml)")
    p.add_argument("--data", required=True, help="'synthetic' or a dataset path")
    p.add_argument("--split", choices=("test", "val"), default="test", help="synthetic split (default test)")
    p.add_argument("--images", type=int, default=None,
                   help="synthetic: number of images / pairs (default 300 detect, 1000 otherwise); a path: at most")
    p.add_argument("--head", choices=("one2many", "one2one"), help="YOLO-nano checkpoint: the head to evaluate")
    p.add_argument("--device", help="device config for exported models (sdk.load)")
    p.add_argument("--backend", choices=("onnxruntime", "tflite", "openvino"))
    p.add_argument("--threads", type=int, help="torch threads for checkpoints")
    p.add_argument("--plots", help="write PR / ROC / confusion-matrix PNGs to this folder")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def open_model(path: str, *, head: Optional[str] = None, device: Optional[str] = None,
               backend: Optional[str] = None) -> Tuple[Any, str, Tuple[int, int], Tuple[str, ...]]:
    """Open MODEL as a predictor.

    Returns:
        ``(predictor, task, input_hw, labels)``; detection predictors run with a low confidence threshold.

    Raises:
        converters.zoo.WeightsError, sdk.SDKError: an unreadable checkpoint or artifact.
        ValueError: ``head`` for a model without heads.
    """
    from .predictor import CallablePredictor

    p = Path(path)
    if p.suffix.lower() in _CHECKPOINT_SUFFIXES:
        from converters.train.predict import eval_predictor
        from converters.zoo import load_model

        net = load_model(p)
        predictor = eval_predictor(net, copy_model=False, head=head)
        return predictor, predictor.task, tuple(net.input_hw), tuple(predictor.labels)
    if head is not None:
        raise ValueError("--head applies to YOLO-nano checkpoints; an exported model has one head")
    import sdk

    model = sdk.load(p, device=device, backend=backend)
    shape = model.contract.input.size_hw
    if model.task == "detect":
        fn = lambda image: model(image, conf_threshold=0.001, max_det=100)  # noqa: E731
        return CallablePredictor(fn, name=str(p)), model.task, tuple(shape), tuple(model.labels)
    return model, model.task, tuple(shape), tuple(model.labels)


def open_dataset(data: str, task: str, *, input_hw: Tuple[int, int], split: str = "test",
                 images: Optional[int] = None) -> Any:
    """The evaluation dataset of ``--data`` for a model of ``task``.

    Raises:
        converters.data.DatasetError: a missing or malformed dataset (naming the file).
    """
    from converters.data import (CocoDetectionDataset, DatasetError, IdentityFolderDataset, ImageFolderDataset,
                                 YoloDetectionDataset, make_split)

    if data == "synthetic":
        if task == "detect":
            from converters.train.data import _synthetic_detect
            from converters.train.recipes import DETECT_DATA

            return _synthetic_detect(split, images or 300, DETECT_DATA)
        if task == "classify":
            return make_split(split, "classify", images or 1000, size=max(16, int(min(input_hw))))
        return make_split(split, "pairs", images or 1000, size=max(16, int(min(input_hw))))
    path = Path(data)
    if not path.exists():
        raise DatasetError(path, "expected 'synthetic' or a dataset path, got a path that does not exist")
    if task == "classify":
        ds: Any = ImageFolderDataset(path / "val" if (path / "val").is_dir() else path)
    elif task == "detect":
        if path.is_dir() and (path / "data.yaml").is_file():
            path = path / "data.yaml"
        if path.suffix in (".yaml", ".yml"):
            ds = YoloDetectionDataset.from_yaml(path, split="val")
        elif path.suffix == ".json":
            ds = CocoDetectionDataset(path.parent / "images" if (path.parent / "images").is_dir() else path.parent,
                                      path)
        else:
            ds = YoloDetectionDataset(path / "images" if (path / "images").is_dir() else path)
    else:
        ds = IdentityFolderDataset(path / "val" if (path / "val").is_dir() else path)
    if images is not None and len(ds) > images:
        from converters.train.data import Subset

        ds = Subset(ds, range(images))
    return ds


def _evaluate(predictor: Any, task: str, dataset: Any, labels: Sequence[str]) -> Dict[str, Any]:
    from . import evaluate_classification, evaluate_detection, evaluate_embeddings

    names = getattr(dataset, "class_names", None)
    if task in ("classify", "detect") and names is not None and labels and len(labels) != len(names):
        raise ValueError(f"the model has {len(labels)} classes {list(labels)[:8]}, the data {len(names)} "
                         f"{list(names)[:8]}; evaluate on data with the model's classes")
    if task == "classify":
        return evaluate_classification(predictor, dataset, num_classes=len(labels) or None,
                                       class_names=names or labels or None)
    if task == "detect":
        return evaluate_detection(predictor, dataset, class_names=names or labels or None)
    return evaluate_embeddings(predictor, dataset, max_pairs=200000)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``edgesdk eval``; returns the exit status (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
    if args.images is not None and args.images < 1:
        print(f"edgesdk eval: --images: expected an int >= 1, got {args.images}", file=sys.stderr)
        return 2
    from sdk.errors import SDKError

    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        predictor, task, input_hw, labels = open_model(args.model, head=args.head, device=args.device,
                                                       backend=args.backend)
        dataset = open_dataset(args.data, task, input_hw=input_hw, split=args.split, images=args.images)
        report = _evaluate(predictor, task, dataset, labels)
        report["model"], report["data"] = args.model, args.data
        if args.plots:
            from . import save_plots

            report["plots"] = [str(p) for p in save_plots(report, args.plots)]
    except (SDKError, ValueError, FileNotFoundError, TypeError) as exc:
        print(f"edgesdk eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        parts = []
        for k in _SUMMARY.get(task, ()):
            v = report.get(k)
            if isinstance(v, dict):
                v = ", ".join(f"{kk}: {vv:.4f}" if isinstance(vv, float) else f"{kk}: {vv}" for kk, vv in v.items())
            elif isinstance(v, float):
                v = f"{v:.4f}"
            parts.append(f"{k} {v}")
        print(f"{args.model} on {args.data} ({len(dataset)} items, task {task}): " + " | ".join(parts))
        conf = report.get("confusion")
        if isinstance(conf, dict):
            print(confusion_line(conf))
        if isinstance(report.get("by_size"), dict):
            print(size_table(report["by_size"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
