"""Tests of ``edgesdk eval``: a checkpoint and an exported artifact go through the same evaluation code and
agree; reports match the library evaluators called directly; bad inputs give exit codes 1 / 2 with messages."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")

from converters.data import make_split  # noqa: E402
from converters.evaluation import evaluate_classification, evaluate_detection  # noqa: E402
from converters.evaluation.cli import main as eval_main  # noqa: E402
from converters.train.predict import eval_predictor  # noqa: E402
from converters.zoo import build_model, save_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory) -> Path:
    net = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "cls.pt", net)


def test_checkpoint_on_synthetic_matches_the_evaluator(classifier_ckpt, capsys):
    assert eval_main([str(classifier_ckpt), "--data", "synthetic", "--images", "24", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    from converters.zoo import load_model

    direct = evaluate_classification(eval_predictor(load_model(classifier_ckpt)),
                                     make_split("test", "classify", 24, size=32), progress=False)
    assert report["top1"] == direct["top1"] and report["top5"] == direct["top5"]
    assert report["confusion_matrix"] == direct["confusion_matrix"]


def test_plain_summary_and_plots(classifier_ckpt, tmp_path, capsys):
    assert eval_main([str(classifier_ckpt), "--data", "synthetic", "--images", "16", "--plots", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "top1" in out and "16 items" in out
    assert list(tmp_path.glob("*.png"))


def test_detector_checkpoint_on_a_yolo_folder(tmp_path, capsys):
    from converters.data import write_yolo_dataset

    ds = make_split("val", "detect", 3, size_hw=(64, 64), min_size=12, max_size=40, max_objects=2)
    write_yolo_dataset(ds, tmp_path / "det", progress_bar=False)
    net = build_model("yolo_nano", seed=0, width_mult=0.125, input_size=64)
    ckpt = save_checkpoint(tmp_path / "det.pt", net)
    assert eval_main([str(ckpt), "--data", str(tmp_path / "det"), "--json"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    from converters.data import YoloDetectionDataset

    direct = evaluate_detection(eval_predictor(net), YoloDetectionDataset(tmp_path / "det" / "images"),
                                progress=False)
    assert report["map50"] == direct["map50"] and report["n_gt"] == direct["n_gt"] == sum(len(d[1]) for d in ds)
    assert report["confusion"]["matrix"] == direct["confusion"]["matrix"]
    # the plain summary says where the objects went at the confusion matrix's operating point
    assert eval_main([str(ckpt), "--data", str(tmp_path / "det")]) == 0
    out = capsys.readouterr().out
    n = report["n_gt"]
    assert "agnostic_map50" in out and f"of {n} objects" in out and "missed" in out
    # ... and by object size at the network input (the checkpoint's contract: 64 px, letterbox)
    assert report["by_size"]["measure"] == "input px" and "by object side (input px, conf >= 0.25" in out
    assert sum(b["objects"] for b in report["by_size"]["bins"]) == n


@pytest.mark.slow
def test_exported_onnx_agrees_with_its_checkpoint(tmp_path, capsys):
    """The same model as a .pt and as an ONNX file (+ contract sidecar) gives the same metrics."""
    pytest.importorskip("onnxruntime")
    net = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32).eval()
    ckpt = save_checkpoint(tmp_path / "cls.pt", net)
    onnx_path = tmp_path / "cls.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 32, 32),), str(onnx_path), input_names=["images"],
                      output_names=["logits"], dynamo=False)
    (tmp_path / "cls.onnx.json").write_text(json.dumps(net.contract_spec()))
    root = tmp_path / "folder"
    items = make_split("test", "classify", 16, size=32)
    for i in range(len(items)):
        image, label = items[i]
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"c{label}" / f"{i}.png"), image)
    results = []
    for model in (ckpt, onnx_path):
        assert eval_main([str(model), "--data", str(root), "--json"]) == 0, capsys.readouterr().err
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["top1"] == results[1]["top1"] and results[0]["top5"] == results[1]["top5"]


def test_bad_inputs_exit_codes(classifier_ckpt, tmp_path, capsys):
    assert eval_main([str(tmp_path / "missing.pt"), "--data", "synthetic"]) == 1
    assert "not found" in capsys.readouterr().err
    assert eval_main([str(classifier_ckpt), "--data", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert eval_main([str(classifier_ckpt), "--data", "synthetic", "--head", "one2one"]) == 1
    assert "heads" in capsys.readouterr().err
    assert eval_main([str(classifier_ckpt), "--data", "synthetic", "--images", "0"]) == 2
    assert eval_main([str(classifier_ckpt)]) == 2                              # --data is required
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert eval_main([str(bad), "--data", "synthetic"]) == 1
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
    # a 3-class folder for an 8-class model
    root = tmp_path / "three"
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        cv2.imwrite(str(root / f"c{c}" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    assert eval_main([str(classifier_ckpt), "--data", str(root)]) == 1
    assert "8 classes" in capsys.readouterr().err


def test_edgesdk_dispatches_eval(classifier_ckpt):
    from sdk.cli import main as edgesdk

    assert edgesdk(["eval", str(classifier_ckpt), "--data", "synthetic", "--images", "8"]) == 0
