"""Build the demo's INT8 YOLO-nano artifacts (``examples/models``) from the shipped weights.

::

    python -m converters.demo_models                       # writes examples/models/yolo_nano_int8.{onnx,tflite}
    python -m converters.demo_models --out /tmp/check      # a fresh copy, e.g. to compare with the committed one

The artifacts come from ``converters/zoo/weights/yolo_nano_shapes.pt`` through :func:`converters.export`
with fixed settings (:data:`SETTINGS`): calibration on the synthetic ``train`` split, gate on the ``val``
split. The export's ``report.json`` / ``report.md`` are kept next to them. ``make demo`` runs these
files; ``tests/converters/test_demo_models.py`` rebuilds them and checks the committed ones still match.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["SETTINGS", "WEIGHTS", "DEMO_DIR", "build_demo_models"]

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "converters" / "zoo" / "weights" / "yolo_nano_shapes.pt"
DEMO_DIR = ROOT / "examples" / "models"
#: The export settings of the shipped demo artifacts (changing them means re-committing the artifacts).
#: ``keep_float: 2`` keeps each head branch's last two convolutions in float. With only the last one (the
#: default) the full-integer TFLite model of the shipped weights lost 0.0118 mAP50 on the gate (limit 0.01;
#: 0.0117 with 300 calibration images); with two it lost 0.0036, for +0.4 MB.
SETTINGS: Dict[str, Any] = {"to": ["onnx", "tflite"], "precision": ["int8"], "calib": "synthetic", "val": "synthetic",
                            "calib_count": 100, "val_count": 200, "latency_runs": 20, "keep_float": 2,
                            "onnx_activations": "uint8"}


def build_demo_models(out: Path = DEMO_DIR, *, weights: Path = WEIGHTS, progress: bool = True) -> List[Dict[str, Any]]:
    """Export the shipped YOLO-nano to INT8 ONNX and TFLite into ``out`` (files replaced); returns the rows
    of the export report (file, verdict, gate, latency).

    Raises:
        FileNotFoundError: the shipped weights are missing.
        ExportError: a conversion failed.
    """
    from converters.export.pipeline import export
    from converters.zoo import load_model

    if not weights.is_file():
        raise FileNotFoundError(f"shipped weights not found: {weights} (train them with "
                                f"`python -m converters.train.recipes yolo_nano_shapes`)")
    model = load_model(weights).eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgesdk-demo-") as tmp:
        result = export(model, out=Path(tmp) / "export", name="yolo_nano", progress=progress, **SETTINGS)
        for row in result.rows:
            src = result.out / row["file"]
            for f in (src, src.with_name(src.name + ".json")):
                shutil.copy2(f, out / f.name)
        for f in ("report.json", "report.md"):
            shutil.copy2(result.out / f, out / f"export_{f}")
    return result.rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Build the demo's INT8 YOLO-nano artifacts from the shipped weights.")
    p.add_argument("--out", type=Path, default=DEMO_DIR)
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    args = p.parse_args(argv)
    rows = build_demo_models(args.out, weights=args.weights)
    for r in rows:
        gate = r.get("gate") or {}
        print(f"{r['verdict']:>9}  {r['file']:<24} {r['bytes'] / 1e6:6.2f} MB  {gate.get('metric')}: "
              f"{gate.get('reference')} -> {gate.get('converted')} (drop {gate.get('drop')})")
    return 0 if all(r["verdict"] != "rejected" for r in rows) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
