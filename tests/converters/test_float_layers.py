"""The INT8 float tail: which layers stay in float, at depth 1 (default) and deeper."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from converters.export.float_layers import check_depth, tail_depth, walk_tail

#: out <- decode <- conv_box <- relu_b <- conv_b1 <- stem ;  decode <- conv_cls <- conv_c1 <- stem
#: (a decoupled head: two branches of two convolutions each, merged by a weight-free decode)
GRAPH: Dict[str, List[str]] = {
    "out": ["decode"], "decode": ["conv_box", "conv_cls"], "conv_box": ["relu_b"], "relu_b": ["conv_b1"],
    "conv_b1": ["stem"], "conv_cls": ["conv_c1"], "conv_c1": ["stem"], "stem": ["input"], "input": [],
}
WEIGHTED = {"conv_box", "conv_b1", "conv_cls", "conv_c1", "stem"}


def _walk(depth: int) -> set:
    return set(walk_tail(["out"], GRAPH.__getitem__, WEIGHTED.__contains__, str, depth))


def test_depth_one_stops_at_the_first_weighted_layer_on_every_path() -> None:
    assert _walk(1) == {"out", "decode", "conv_box", "conv_cls"}


def test_deeper_tails_take_the_next_weighted_layer_of_each_branch() -> None:
    assert _walk(2) == {"out", "decode", "conv_box", "conv_cls", "relu_b", "conv_b1", "conv_c1"}
    assert _walk(3) == _walk(2) | {"stem"}  # both branches meet at the stem: it is their 3rd weighted layer


def test_a_node_reached_first_on_a_longer_path_is_walked_again_on_a_shorter_one() -> None:
    # 'shared' is reached behind one weighted layer (via w1) and behind none (directly): at depth 1 the
    # direct path still keeps it and its own parent conv 'w0'.
    graph = {"out": ["w1", "mix"], "w1": ["shared"], "mix": ["shared"], "shared": ["w0"], "w0": []}
    got = set(walk_tail(["out"], graph.__getitem__, {"w1", "w0"}.__contains__, str, 1))
    assert got == {"out", "w1", "mix", "shared", "w0"}


def test_no_weighted_layer_means_no_tail_and_bad_depths_are_refused() -> None:
    assert walk_tail(["a"], {"a": ["b"], "b": []}.__getitem__, lambda n: False, str) == []
    assert check_depth(True) == 1 and check_depth(3) == 3
    for bad in (0, -1, 1.5, "2", False, None):
        with pytest.raises(ValueError, match="expected an int >= 1"):
            check_depth(bad)
    # what exporters accept as keep_float: False is no tail, True the default tail, an int a deeper one
    assert (tail_depth(False), tail_depth(True), tail_depth(2)) == (0, 1, 2)
    for bad in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match="expected an int >= 1"):
            tail_depth(bad)


def _two_conv_head_onnx(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.normal(size=(4, c, 1, 1)).astype(np.float32), f"w{i}")
         for i, c in enumerate((3, 4, 4))]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="stem"),
             helper.make_node("Relu", ["a"], ["b"], name="act"),
             helper.make_node("Conv", ["b", "w1"], ["c"], name="head1"),
             helper.make_node("Relu", ["c"], ["d"], name="act1"),
             helper.make_node("Conv", ["d", "w2"], ["e"], name="head2"),
             helper.make_node("Sigmoid", ["e"], ["y"], name="decode")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=w)
    onnx.save(helper.make_model(graph), str(path))


def test_onnx_tail_depths_on_a_real_graph(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from converters.export.float_layers import onnx_tail

    _two_conv_head_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert set(onnx_tail(model)) == {"decode", "head2"}
    assert set(onnx_tail(model, 2)) == {"decode", "head2", "act1", "head1"}
    assert set(onnx_tail(model, 5)) == {"decode", "head2", "act1", "head1", "act", "stem"}


def test_export_keeps_a_deeper_tail_in_float_and_says_so(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import converters
    import sdk
    from converters.export.errors import ExportError

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, 1, 1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 3)).eval()
    contract = {"task": "classify", "labels": ["a", "b", "c"], "decoder": {"type": "classifier"},
                "input": {"name": "images", "shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32",
                          "color": "RGB", "resize": "stretch", "scale": 1 / 255}}
    calib = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(8)]
    layers = {}
    for depth in (1, 2):
        res = converters.export(net, example_input=torch.rand(1, 3, 32, 32), contract=contract, to="onnx",
                                precision="int8", out=tmp_path / f"d{depth}", calib=calib, val=None, latency_runs=2,
                                keep_float=depth, progress=False)
        with sdk.load(res.artifact("onnx", "int8")) as m:
            layers[depth] = list(m.contract.float_layers)
        assert res.report["json"].exists()
        assert f"back to its {'1st' if depth == 1 else '2nd'} weighted layer" in res.report["md"].read_text()
    assert set(layers[1]) < set(layers[2]), layers
    with pytest.raises(ExportError, match="keep_float: float tail depth: expected an int >= 1"):
        converters.export(net, example_input=torch.rand(1, 3, 32, 32), contract=contract, to="onnx",
                          precision="int8", out=tmp_path / "bad", calib=calib, val=None, keep_float=-1)
