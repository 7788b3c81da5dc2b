"""Tests of converters.train.batches: the device a run trains on and batches drawn ahead by workers.

Workers must not change the weights (every batch is a pure function of (seed, epoch, step)); CUDA is
checked for what can be checked without a GPU: the clear errors and where checkpoints land.
"""
from __future__ import annotations

import json
import multiprocessing
import os

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from converters.data import DatasetError  # noqa: E402
from converters.train import TrainConfig, TrainError, train  # noqa: E402
from converters.train.batches import batch_stream, describe_hardware, resolve_device, to_cpu, to_device  # noqa: E402
from converters.train.cli import main as train_main  # noqa: E402
from converters.zoo import load_checkpoint  # noqa: E402

TINY_CLS = dict(family="mobilenet", data="synthetic", input_size=32, batch=8, steps_per_epoch=3, val_images=8,
                warmup_steps=0, model={"variant": "v3_small", "width_mult": 0.25}, progress=False)
TINY_DET = dict(family="yolo_nano", data="synthetic", input_size=64, batch=4, steps_per_epoch=3, val_images=2,
                warmup_steps=0, model={"width_mult": 0.125, "depth_mult": 0.34, "end2end": True},
                data_options={"size_hw": [96, 96], "min_size": 16, "max_size": 60, "max_objects": 3},
                progress=False)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _make(epoch: int, step: int) -> tuple:
    rng = np.random.default_rng([epoch, step])
    return torch.from_numpy(rng.random((2, 3))), [{"id": torch.tensor([epoch, step])}], os.getpid()


def _bad_label(epoch: int, step: int) -> tuple:
    if step == 2:
        raise DatasetError("labels/img_7.txt", "class id 9 out of range (expected 0..7)", line=3)
    return _make(epoch, step)


def _workers() -> list:
    return multiprocessing.active_children()  # the DataLoader's worker processes (none else in a test)


def test_batch_stream_yields_every_step_in_order_with_or_without_workers():
    plain = list(batch_stream(_make, 4, 7))
    ahead = list(batch_stream(_make, 4, 7, workers=2, prefetch=2))
    assert len(plain) == len(ahead) == 7
    for (xa, ta, _), (xb, tb, _) in zip(plain, ahead):
        assert torch.equal(xa, xb) and torch.equal(ta[0]["id"], tb[0]["id"])
    assert [int(t[0]["id"][1]) for _, t, _ in ahead] == list(range(7))
    assert {pid for *_, pid in plain} == {os.getpid()}
    assert os.getpid() not in {pid for *_, pid in ahead}          # really drawn by other processes
    assert not _workers()


def test_a_worker_error_is_raised_as_itself_and_the_workers_stop():
    threads = cv2.getNumThreads()
    stream = batch_stream(_bad_label, 0, 6, workers=2)
    assert next(stream)[0].shape == (2, 3)
    with pytest.raises(DatasetError, match=r"labels/img_7.txt:3: class id 9 out of range") as info:
        list(stream)
    assert info.value.line == 3 and info.value.path.name == "img_7.txt"
    assert "raised in a batch worker" in "".join(getattr(info.value, "__notes__", ["raised in a batch worker"]))
    assert cv2.getNumThreads() == threads and not _workers()


def test_leaving_the_stream_early_stops_its_workers_when_closed():
    threads = cv2.getNumThreads()
    stream = batch_stream(_make, 0, 50, workers=2)
    next(stream)
    assert cv2.getNumThreads() == 1 and _workers()
    stream.close()
    assert cv2.getNumThreads() == threads and not _workers()


@pytest.mark.parametrize("base", [TINY_CLS, TINY_DET], ids=["mobilenet", "yolo_nano"])
def test_workers_give_exactly_the_weights_of_drawing_in_process(tmp_path, base, monkeypatch):
    import converters.train.batches as batches

    loaders = []

    def counted(*args, **kwargs):
        loaders.append(kwargs["num_workers"])
        return torch.utils.data.DataLoader(*args, **kwargs)

    monkeypatch.setattr(batches, "DataLoader", counted)
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        train(TrainConfig(out=str(out), epochs=2, workers=workers, **base))
        runs[workers] = load_checkpoint(out / "last.pt")
    assert loaders == [2, 2]                                         # one pool of 2 per epoch, none for 0
    assert _same(runs[0]["model"], runs[2]["model"])
    if base["family"] == "yolo_nano":  # the EMA saw the same updates too
        assert _same(runs[0]["ema_state"]["model"], runs[2]["ema_state"]["model"])
    assert runs[0]["train_config"]["workers"] == 0 and runs[2]["train_config"]["workers"] == 2


def test_metrics_and_checkpoints_say_what_the_run_trained_on(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), epochs=1, threads=1, device="auto", **TINY_CLS))
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    if torch.cuda.is_available():  # pragma: no cover - a GPU machine
        assert line["hardware"].startswith("CUDA ")
    else:
        assert line["hardware"].startswith("CPU, 1 thread of ")
    # checkpoints hold CPU tensors whatever the device: they load on any machine
    last = load_checkpoint(out / "last.pt")
    tensors = list(last["model"].values()) + [t for s in last["optimizer"]["state"].values() for t in s.values()
                                              if isinstance(t, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def test_describe_hardware_names_threads_cores_and_workers():
    assert describe_hardware(torch.device("cpu"), 1, 0).startswith("CPU, 1 thread of ")
    text = describe_hardware(torch.device("cpu"), 4, 3)
    assert text.startswith("CPU, 4 threads of ") and text.endswith(", 3 batch workers")


def test_bad_device_values_are_refused_with_what_is_accepted():
    with pytest.raises(ValueError, match=r"TrainConfig.device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"):
        TrainConfig(family="mobilenet", device="gpu")
    with pytest.raises(ValueError, match="TrainConfig.workers: expected an int >= 0"):
        TrainConfig(family="mobilenet", workers=-1)


def test_cuda_without_a_gpu_is_a_train_error_saying_what_torch_sees(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TrainError, match=r"expected a CUDA GPU for 'cuda', got none visible to torch \(torch "):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(TrainError, match="CUDA GPU"):
        train(TrainConfig(out=str(tmp_path / "run"), epochs=1, device="cuda", **TINY_CLS))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_gpu_index_beyond_the_visible_ones_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(TrainError, match=r"expected a GPU index below 1 \(torch sees 1\), got 'cuda:3'"):
        resolve_device("cuda:3")


def test_the_cli_reports_a_missing_gpu_as_a_failed_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = train_main(["mobilenet", "--data", "synthetic", "--out", str(tmp_path / "run"), "--epochs", "1",
                       "--device", "cuda", "--no-progress", "--steps-per-epoch", "1", "--batch", "4",
                       "--input-size", "32", "--val-images", "4"])
    assert code == 1
    assert "expected a CUDA GPU" in capsys.readouterr().err


def test_to_device_keeps_the_structure_and_moves_every_tensor():
    batch = (torch.zeros(2, 3), [{"boxes": torch.ones(1, 4), "labels": torch.tensor([1])}], "meta", 3)
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved, tuple) and isinstance(moved[1], list) and moved[2:] == ("meta", 3)
    assert torch.equal(moved[1][0]["boxes"], batch[1][0]["boxes"])
    state = to_cpu({"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1}]})
    assert state["param_groups"] == [{"lr": 0.1}] and state["state"][0]["exp_avg"].device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", ["mobilenet", "yolo_nano", "ssdlite", "siamese"])
def test_every_family_trains_on_cuda_and_resumes_on_the_cpu(tmp_path, family):  # pragma: no cover - GPU
    base = {"mobilenet": TINY_CLS, "yolo_nano": TINY_DET,
            "ssdlite": {**TINY_DET, "family": "ssdlite", "model": {"variant": "v3_large", "width_mult": 0.25}},
            "siamese": {**TINY_CLS, "family": "siamese", "model": {"backbone": "v3_small", "width_mult": 0.25},
                        "identities_per_batch": 4, "images_per_identity": 2,
                        "data_options": {"train_identities": 20}}}[family]
    out = tmp_path / "run"
    first = train(TrainConfig(out=str(out), epochs=1, device="cuda", workers=2, **base))
    assert np.isfinite(first.history[0]["train"]["loss"]) and first.history[0]["hardware"].startswith("CUDA ")
    again = train(TrainConfig(out=str(out), epochs=2, device="cpu", **base), resume=True)
    assert again.finished and again.history[0]["hardware"].startswith("CPU")
