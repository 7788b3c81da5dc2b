"""ONNX INT8 calibration methods: MinMax ranges follow the most extreme value seen; percentile ranges do not
let one rare outlier coarsen the step of every other value."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from converters.export.errors import ExportError  # noqa: E402
from converters.export.onnx_export import CALIBRATION_METHODS, onnx_int8  # noqa: E402


def _conv_relu_conv(path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.normal(size=(4, c, 3, 3)).astype(np.float32) * 0.3, f"w{i}")
         for i, c in enumerate((3, 4))]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="act0"),
             helper.make_node("Conv", ["b", "w1"], ["y"], name="conv1", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32, 32])], initializer=w)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _input_scale(path: Path) -> float:
    """The scale of the QuantizeLinear that quantises the graph input ``x``."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] == "x":
            return float(inits[node.input[1]])
    raise AssertionError("no QuantizeLinear on the input")


def test_percentile_ignores_a_rare_outlier_that_minmax_follows(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    _conv_relu_conv(src)
    rng = np.random.default_rng(1)
    calib = rng.uniform(0.0, 1.0, (100, 1, 3, 32, 32)).astype(np.float32)
    calib[7, 0, 1, 5, 5] = 50.0                                   # one value in 307,200
    scales = {}
    for method in CALIBRATION_METHODS:
        dst = tmp_path / f"{method}.onnx"
        onnx_int8(src, dst, input_name="x", calibration=calib, keep_float=False, progress=False, method=method)
        scales[method] = _input_scale(dst)
    assert scales["minmax"] == pytest.approx(50.0 / 255, rel=1e-3)   # uint8 over [0, 50]
    assert scales["percentile"] < scales["minmax"] / 10, scales       # the range stays near [0, 1]
    import onnxruntime as ort

    x = calib[0]
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    cpu = ["CPUExecutionProvider"]
    got = ort.InferenceSession(str(tmp_path / "percentile.onnx"), providers=cpu).run(None, {"x": x})[0]
    assert got.shape == ref.shape and np.isfinite(got).all()
    # on an image without the outlier, the finer step of the percentile model is closer to float
    err = {m: float(np.abs(ort.InferenceSession(str(tmp_path / f"{m}.onnx"), providers=["CPUExecutionProvider"])
                           .run(None, {"x": x})[0] - ref).mean()) for m in ("minmax", "percentile")}
    assert err["percentile"] < err["minmax"], err


def test_unknown_method_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    _conv_relu_conv(src)
    calib = np.zeros((2, 1, 3, 32, 32), np.float32)
    with pytest.raises(ExportError, match="method: expected one of minmax, percentile, got 'entropy'"):
        onnx_int8(src, tmp_path / "x.onnx", input_name="x", calibration=calib, method="entropy")
