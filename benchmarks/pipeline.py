"""SDK end to end (preprocess + infer + postprocess) against the bare backend call, same model and input.

Target (issue 5): SDK overhead <= 10 % of the bare call for YOLO-nano at 320 on ONNX Runtime.

* bare: ``session.run`` on a ready (1, 3, 320, 320) float32 tensor, the floor any wrapper pays;
* sdk: ``model(frame)`` on a 1280x720 BGR frame from ``synthetic://shapes``: letterbox, RGB, /255,
  infer, decode, NMS, boxes back to frame pixels.

Rounds are interleaved (bare, sdk, bare, sdk, ...) so machine noise hits both alike; medians are
printed with their ratio. The model is the shipped ``examples/models/yolo_nano_fp32.onnx`` when it
exists (or ``--model``), else YOLO-nano is exported from the zoo on the fly (needs torch).

Run: ``.venv/bin/python benchmarks/pipeline.py [--model PATH] [--rounds 300] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.10


def _export_zoo_yolo(out: Path) -> Path:
    """YOLO-nano at 320 from the zoo (shipped weights when present) to ONNX with an embedded contract."""
    import warnings

    import onnx
    import torch

    from converters.zoo import build_model, load_model

    weights = ROOT / "converters" / "zoo" / "weights" / "yolo_nano_shapes.pt"
    if weights.is_file():
        model = load_model(weights)
        print(f"model: {weights.name} (shipped weights)")
    else:
        model = build_model("yolo_nano", input_size=320, width_mult=0.25, depth_mult=0.34, seed=0)
        print("model: yolo_nano 320 (width 0.25, depth 0.34), random weights (no shipped weights yet)")
    model.eval()
    path = out / "yolo_nano_320.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.export_module(), (model.example_input(1),), str(path), input_names=["images"],
                          output_names=list(model.output_names), opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    spec = model.contract_spec(batch=1)
    spec["precision"] = "fp32"
    entry.key, entry.value = "edgesdk_contract", json.dumps(spec)
    onnx.save(proto, str(path))
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    import sdk

    tmp = tempfile.TemporaryDirectory()
    path = args.model or (ROOT / "examples" / "models" / "yolo_nano_fp32.onnx")
    if not path.is_file():
        print(f"{path} not found: exporting YOLO-nano 320 from the zoo")
        path = _export_zoo_yolo(Path(tmp.name))
    model = sdk.load(path, backend="onnxruntime", backend_options={"intra_op_num_threads": args.threads})
    with sdk.open_source("synthetic://shapes?size=1280x720") as src:
        it = iter(src)
        frames = [next(it).image for _ in range(16)]
    tensor, _ = model.preprocess(frames[0])
    tensor = np.ascontiguousarray(tensor)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    bare = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = bare.get_inputs()[0].name
    for _ in range(20):
        bare.run(None, {name: tensor})
        model(frames[0])
    t_bare, t_sdk, stages = [], [], {"preprocess_ms": [], "infer_ms": [], "postprocess_ms": []}
    for i in range(args.rounds):
        t0 = time.perf_counter()
        bare.run(None, {name: tensor})
        t1 = time.perf_counter()
        dets = model(frames[i % len(frames)])
        t2 = time.perf_counter()
        t_bare.append(t1 - t0)
        t_sdk.append(t2 - t1)
        for k in stages:
            stages[k].append(model.last_timings[k])
    b, s = np.median(t_bare) * 1e3, np.median(t_sdk) * 1e3
    overhead = s / b - 1.0
    print(f"onnxruntime {ort.__version__}, {args.threads} intra-op threads, model {path.name} "
          f"({model.contract.precision or 'precision not stated'}), {args.rounds} interleaved rounds, medians")
    print(f"  bare session.run on a ready tensor   {b:8.3f} ms")
    print(f"  sdk model(frame 1280x720)            {s:8.3f} ms   ratio {s / b:.3f}  overhead {overhead * 100:+.1f} %"
          f"  target <= {TARGET * 100:.0f} %: {'ok' if overhead <= TARGET else 'MISSED'}")
    for k, v in stages.items():
        print(f"    {k:<16} {np.median(v):8.3f} ms")
    print(f"  last frame: {len(dets)} detections")
    model.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
