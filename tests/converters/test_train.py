"""Tests of converters.train on tiny budgets: loss goes down, resume = uninterrupted, seeds, freezing,
bad data, the schedule / EMA, checkpoints loadable with weights_only=True, and the CLI's exit codes."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")

from converters.data import DatasetError, make_split, write_yolo_dataset  # noqa: E402
from converters.train import TrainConfig, TrainError, train  # noqa: E402
from converters.train.cli import main as train_main  # noqa: E402
from converters.train.optim import ModelEMA, apply_freeze, backbone_blocks, lr_factor  # noqa: E402
from converters.zoo import build_model, load_checkpoint, load_weights, save_checkpoint  # noqa: E402

TINY_CLS = dict(family="mobilenet", input_size=32, batch=8, steps_per_epoch=2, val_images=8, warmup_steps=0,
                model={"variant": "v3_small", "width_mult": 0.25}, progress=False)


def _image_folder(root: Path, classes: int = 3, per_class: int = 6, size: int = 32) -> Path:
    """An ImageFolder of synthetic crops (classes 0..classes-1)."""
    ds = make_split("train", "classify", classes * per_class, size=size, classes=list(range(classes)))
    for i in range(len(ds)):
        image, label = ds[i]
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return root


def _identity_folders(root: Path, identities: int = 6, per_id: int = 3, size: int = 32) -> Path:
    from sdk.synthetic import make_identity_sample

    for ident in range(identities):
        folder = root / f"person_{ident}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_id):
            image = make_identity_sample(ident, np.random.default_rng([ident, j]), size)
            assert cv2.imwrite(str(folder / f"{j}.png"), image)
    return root


def _state(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- schedule, EMA ------------------------------------------------------------------------------------------


def test_lr_factor_warmup_cosine_and_onecycle():
    total = 100
    warm = [lr_factor(s, total, warmup=10) for s in range(10)]
    assert warm == sorted(warm) and warm[0] == pytest.approx(1 / 11) and warm[-1] == pytest.approx(10 / 11)
    assert lr_factor(10, total, warmup=10) == pytest.approx(1.0)
    assert lr_factor(99, total, warmup=10, min_ratio=0.05) == pytest.approx(0.05)
    mid = lr_factor(10 + 89 // 2, total, warmup=10)
    assert 0.45 < mid < 0.55  # cosine passes 1/2 half-way
    cyc = [lr_factor(s, total, schedule="onecycle") for s in range(total)]
    assert int(np.argmax(cyc)) == 30 and cyc[0] == pytest.approx(0.04) and cyc[-1] == pytest.approx(0.0)
    assert lr_factor(5, total, schedule="constant", warmup=0) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 10, schedule="linear")


def test_ema_matches_the_formula_and_round_trips():
    net = torch.nn.Linear(3, 2)
    ema = ModelEMA(net, decay=0.9, tau=1.0)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    d = 0.9 * (1 - np.exp(-1.0))
    assert torch.allclose(ema.module.weight, d * w0 + (1 - d) * net.weight)
    other = ModelEMA(torch.nn.Linear(3, 2))
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.module.weight, ema.module.weight)
    with pytest.raises(ValueError, match="EMA state"):
        other.load_state_dict({"weights": 1})


# -- the loop ----------------------------------------------------------------------------------------------


def test_loss_decreases_and_checkpoints_load_weights_only(tmp_path):
    data = _image_folder(tmp_path / "cls", per_class=5)          # 12 training images, one batch each step
    out = tmp_path / "run"
    res = train(TrainConfig(data=str(data), out=str(out), epochs=8, lr=5e-3, label_smoothing=0.0,
                            **{**TINY_CLS, "batch": 12, "steps_per_epoch": 1,
                               "model": {**TINY_CLS["model"], "dropout": 0.0}}))
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines] == list(range(1, 9))
    losses = [ln["train"]["loss"] for ln in lines]
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    assert all("top1" in ln["val"] and ln["metric"] == "top1" for ln in lines)
    assert res.finished and res.best is not None and res.best_value == max(ln["value"] for ln in lines)
    # plain tensors and containers only: readable with weights_only=True
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 8 and last["step"] == 8 and "optimizer" in last and last["family"] == "mobilenet"
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["metrics"]["top1"] == res.best_value
    assert json.loads((out / "config.json").read_text())["family"] == "mobilenet"
    assert cv2.imread(str(out / "curves.png")) is not None          # the training curves plot


def test_resume_reaches_the_same_state_as_an_uninterrupted_run(tmp_path):
    data = _image_folder(tmp_path / "cls")
    cfg = dict(data=str(data), epochs=3, ema=True, **TINY_CLS)
    train(TrainConfig(out=str(tmp_path / "straight"), **cfg))
    first = train(TrainConfig(out=str(tmp_path / "resumed"), stop_after=1, **cfg))
    assert first.epochs_done == 1 and not first.finished
    again = train(TrainConfig(out=str(tmp_path / "resumed"), **cfg), resume=True)
    assert again.epochs_done == 3 and again.finished
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert _same_tensors(a["model"], b["model"])
    assert a["step"] == b["step"] == 6
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)
    assert a["ema_state"]["updates"] == b["ema_state"]["updates"] == 6
    assert _same_tensors(a["ema_state"]["model"], b["ema_state"]["model"])
    assert _same_tensors(_state(tmp_path / "straight" / "best.pt"), _state(tmp_path / "resumed" / "best.pt"))
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TrainError, match="no checkpoint|found none"):
        train(TrainConfig(out=str(tmp_path / "nothing"), **TINY_CLS), resume=True)


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    data = _image_folder(tmp_path / "cls")
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(TrainConfig(data=str(data), out=str(tmp_path / name), epochs=1, seed=seed, **TINY_CLS))
    a, b, c = (_state(tmp_path / n / "last.pt") for n in "abc")
    assert _same_tensors(a, b)
    assert not _same_tensors(a, c)


def test_frozen_backbone_stays_fixed_then_unfreezes(tmp_path):
    data = _image_folder(tmp_path / "cls")
    init = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32,
                       labels=["class_0", "class_1", "class_2"])
    s0 = {k: v.clone() for k, v in init.state_dict().items()}
    train(TrainConfig(data=str(data), out=str(tmp_path / "frozen"), epochs=2, freeze_backbone=True, **TINY_CLS))
    s1 = _state(tmp_path / "frozen" / "last.pt")
    feats = [k for k in s0 if k.startswith("features.")]
    assert feats and all(torch.equal(s0[k], s1[k]) for k in feats)       # weights and BN statistics
    assert not torch.equal(s0["classifier.3.weight"], s1["classifier.3.weight"])
    # unfreezing at epoch 1 trains the backbone from then on
    train(TrainConfig(data=str(data), out=str(tmp_path / "thaw"), epochs=2, freeze_backbone=True, unfreeze_at=1,
                      **TINY_CLS))
    lines = [json.loads(s) for s in (tmp_path / "thaw" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["frozen_backbone"] for ln in lines] == [True, False]
    assert lines[1]["trainable_parameters"] > lines[0]["trainable_parameters"]
    s2 = _state(tmp_path / "thaw" / "last.pt")
    assert any(not torch.equal(s0[k], s2[k]) for k in feats)


def test_partial_unfreeze_trains_only_the_last_blocks():
    net = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32)
    blocks = backbone_blocks(net)
    live = apply_freeze(net, frozen=False, unfreeze_last=2)
    assert live == blocks[-2:]
    assert all(p.requires_grad for b in blocks[-2:] for p in b.parameters())
    assert not any(p.requires_grad for b in blocks[:-2] for p in b.parameters())
    assert all(p.requires_grad for p in net.classifier.parameters())
    apply_freeze(net, frozen=False)
    assert all(p.requires_grad for p in net.parameters())


def test_classifier_trunk_transfers_into_the_siamese_network(tmp_path):
    cls = build_model("mobilenet", seed=1, variant="v3_small", width_mult=0.25, input_size=32)
    ckpt = save_checkpoint(tmp_path / "cls.pt", cls)
    sia = build_model("siamese", seed=2, backbone="v3_small", width_mult=0.25, input_size=32)
    report = load_weights(sia, ckpt, strict=False)
    assert all(torch.equal(sia.state_dict()[k], cls.state_dict()[k]) for k in sia.state_dict() if k.startswith("features."))
    assert any(k.startswith("projection") for k in report.missing)


def test_yolo_backbone_classifier_transfers_into_yolo_nano(tmp_path):
    from converters.train.backbone_classifier import build_yolo_backbone_classifier

    pre = build_yolo_backbone_classifier(width_mult=0.25, depth_mult=0.34, input_size=32)
    ckpt = save_checkpoint(tmp_path / "bb.pt", pre)
    det = build_model("yolo_nano", seed=5, width_mult=0.25, depth_mult=0.34, input_size=64)
    load_weights(det, ckpt, strict=False)
    own = det.state_dict()
    keys = [k for k in own if k.startswith("backbone.")]
    assert keys and all(torch.equal(own[k], pre.state_dict()[k]) for k in keys)


def test_yolo_nano_end2end_trains_on_yolo_folders_and_reports_both_heads(tmp_path):
    ds = make_split("train", "detect", 4, size_hw=(96, 96), min_size=16, max_size=60, max_objects=3)
    write_yolo_dataset(ds, tmp_path / "det", progress_bar=False)
    out = tmp_path / "run"
    res = train(TrainConfig(family="yolo_nano", data=str(tmp_path / "det"), out=str(out), epochs=4, batch=4,
                            steps_per_epoch=1, input_size=64, val_images=2, warmup_steps=0, lr=3e-3,
                            model={"width_mult": 0.125, "depth_mult": 0.34, "end2end": True},
                            data_options={"val_fraction": 0.25}, progress=False))
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train"]["loss"] < lines[0]["train"]["loss"]
    assert "o2o_cls" in lines[0]["train"] and "one2one_map50" in lines[-1]["val"]
    assert res.best is not None
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["weights"] == "ema"                                 # detectors keep an EMA by default


def test_ssdlite_fine_tunes_on_coco_json_with_a_new_class_count(tmp_path):
    from converters.data import write_coco_json

    ds = make_split("train", "detect", 6, size_hw=(96, 96), min_size=16, max_size=60, max_objects=3, classes=[0, 1])
    ann = write_coco_json(ds, tmp_path / "coco" / "annotations.json", class_names=["circle", "square"],
                          progress_bar=False)
    start = save_checkpoint(tmp_path / "start.pt", build_model("ssdlite", seed=0, input_size=96, width_mult=0.25))
    res = train(TrainConfig(family="ssdlite", data=str(ann), out=str(tmp_path / "ssd"), epochs=1, batch=2,
                            steps_per_epoch=1, input_size=96, weights=str(start), model={"width_mult": 0.25},
                            progress=False))
    ckpt = load_checkpoint(res.last)
    assert ckpt["config"]["labels"] == ["circle", "square"] and ckpt["config"]["num_classes"] == 2
    assert np.isfinite(res.history[0]["train"]["loss"]) and "map50" in res.history[0]["val"]


def test_ssdlite_trains_on_synthetic(tmp_path):
    res = train(TrainConfig(family="ssdlite", data="synthetic", out=str(tmp_path / "ssd"), epochs=1, batch=2,
                            steps_per_epoch=2, input_size=96, val_images=2,
                            model={"variant": "v3_large", "width_mult": 0.25}, progress=False))
    assert res.finished and np.isfinite(res.history[0]["train"]["loss"])


@pytest.mark.parametrize("loss", ["triplet", "contrastive"])
def test_siamese_loss_is_selectable(tmp_path, loss):
    data = _identity_folders(tmp_path / "ids")
    res = train(TrainConfig(family="siamese", data=str(data), out=str(tmp_path / loss), epochs=1,
                            steps_per_epoch=2, identities_per_batch=3, images_per_identity=2, input_size=32,
                            model={"backbone": "v3_small", "width_mult": 0.25, "loss": loss}, progress=False))
    ckpt = load_checkpoint(tmp_path / loss / "last.pt")
    assert ckpt["config"]["loss"] == loss
    assert "roc_auc" in res.history[0]["val"]


def test_synthetic_siamese_holds_out_identities(tmp_path):
    res = train(TrainConfig(family="siamese", data="synthetic", out=str(tmp_path / "s"), epochs=1, steps_per_epoch=1,
                            identities_per_batch=2, images_per_identity=2, input_size=32, val_images=8,
                            model={"width_mult": 0.25}, data_options={"train_identities": 10}, progress=False))
    assert 0.0 <= res.history[0]["val"]["roc_auc"] <= 1.0


# -- bad data and bad settings ------------------------------------------------------------------------------


def test_bad_data_folders_give_clear_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="does not exist"):
        train(TrainConfig(data=str(missing), out=str(tmp_path / "r1"), **TINY_CLS))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match="found none"):
        train(TrainConfig(data=str(tmp_path / "empty"), out=str(tmp_path / "r2"), **TINY_CLS))
    one = tmp_path / "one"
    _image_folder(one, classes=1, per_class=1)
    with pytest.raises(DatasetError, match=">= 2 images"):
        train(TrainConfig(data=str(one), out=str(tmp_path / "r3"), **TINY_CLS))
    ids = _identity_folders(tmp_path / "ids", identities=3)
    with pytest.raises(DatasetError, match=">= 4 identity folders"):
        train(TrainConfig(family="siamese", data=str(ids), out=str(tmp_path / "r4"), input_size=32, progress=False))
    det = tmp_path / "det"
    (det / "images").mkdir(parents=True)
    cv2.imwrite(str(det / "images" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    (det / "labels").mkdir()
    (det / "labels" / "a.txt").write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(DatasetError, match=r"a\.txt:1"):
        train(TrainConfig(family="yolo_nano", data=str(det), out=str(tmp_path / "r5"), input_size=64,
                          progress=False))


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match="family.*did you mean 'yolo_nano'"):
        TrainConfig(family="yolo_nan")
    with pytest.raises(ValueError, match=r"TrainConfig.epochs: expected an int >= 1, got 0"):
        TrainConfig(family="mobilenet", epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(family="mobilenet", optimizer="adam")
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"family": "mobilenet", "epochz": 3})


# -- CLI ---------------------------------------------------------------------------------------------------


def test_cli_trains_resumes_and_reports_exit_codes(tmp_path, capsys):
    data = _image_folder(tmp_path / "cls")
    out = tmp_path / "cli"
    common = ["--input-size", "32", "--batch", "8", "--steps-per-epoch", "2", "--val-images", "8",
              "--variant", "v3_small", "--width-mult", "0.25", "--no-progress", "--threads", "1"]
    assert train_main(["mobilenet", "--data", str(data), "--epochs", "1", "--out", str(out), *common, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_done"] == 1 and summary["finished"]
    # extend the run: --resume keeps the settings, --epochs may grow
    assert train_main(["mobilenet", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    # usage errors: 2
    assert train_main(["mobilenet", "--out", str(out), "--epochs", "1"]) == 2            # no --data
    assert "--data is required" in capsys.readouterr().err
    assert train_main(["mobilnet", "--data", "synthetic", "--out", str(out)]) == 2        # argparse
    assert train_main(["mobilenet", "--out", str(out), "--resume", "--batch", "4"]) == 2
    assert "--batch 4" in capsys.readouterr().err
    # failed runs: 1
    assert train_main(["mobilenet", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert train_main(["mobilenet", "--out", str(tmp_path / "fresh"), "--resume"]) == 1
    assert train_main(["mobilenet", "--data", str(data), "--out", str(tmp_path / "w"), "--weights",
                       str(tmp_path / "none.pt"), *common]) == 1
    assert "not found" in capsys.readouterr().err


def test_edgesdk_dispatches_train(tmp_path):
    from sdk.cli import main as edgesdk

    assert edgesdk(["train", "mobilenet", "--out", str(tmp_path), "--epochs", "1"]) == 2


# -- publishing a reference model --------------------------------------------------------------------------


def test_publish_writes_fp16_weights_a_card_and_reproducible_numbers(tmp_path):
    from converters.train.reference import evaluate_reference, publish, read_cards

    net = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32)
    best = save_checkpoint(tmp_path / "best.pt", net, epoch=3)
    spec = {"split": "test", "task": "classify", "length": 16, "options": {"size": 32}}
    info = {"family": "mobilenet", "task": "classify", "description": "tiny", "eval": spec, "targets": {"top1": 0.95},
            "seed": 0, "epochs": 5, "recipe": {"config": {"epochs": 5}}, "train_seconds": 12.0,
            "history": [{"epoch": 1, "value": 0.1, "train_seconds": 6.0}], "data": "synthetic crops"}
    wd = tmp_path / "weights"
    entry = publish("tiny_cls", best, info, final=False, weights_dir=wd)
    shipped = torch.load(wd / "tiny_cls.pt", weights_only=True)
    assert shipped["model"]["classifier.3.weight"].dtype == torch.float16 and shipped["epoch"] == 3
    assert read_cards(wd / "cards.json")["models"]["tiny_cls"] == entry
    assert entry["status"] == "in training" and entry["meets_targets"] is (entry["metrics"]["top1"] >= 0.95)
    card = (wd / "tiny_cls.md").read_text()
    assert "training continues (resumable from its run folder: `python -m converters.train.recipes tiny_cls`" in card
    assert "| top1 |" in card and "3 of 5 epochs" in card
    # the fp16 checkpoint loads back as float32 and reproduces the card exactly
    assert evaluate_reference(entry, weights_dir=wd) == entry["metrics"]


def test_recipes_are_valid_configs_and_the_command_lists_them(tmp_path, capsys):
    from converters.train import recipes

    assert recipes.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in recipes.ORDER) and set(recipes.ORDER) == set(recipes.RECIPES)
    for name in recipes.ORDER:
        recipe = recipes.RECIPES[name]
        for dep in recipe.depends:
            assert recipes.ORDER.index(dep) < recipes.ORDER.index(name)
            (tmp_path / dep).mkdir(exist_ok=True)
            (tmp_path / dep / "best.pt").write_bytes(b"x")
        cfg = recipes._config(recipe, tmp_path, threads=1, time_limit_s=None, progress=False)
        assert cfg.out == str(tmp_path / name) and cfg.threads == 1
    shipped = {r.config["family"] for r in recipes.RECIPES.values() if r.shipped}
    assert shipped == {"mobilenet", "yolo_nano", "siamese", "ssdlite"}
    assert recipes.main(["no_such_model"]) == 2
    with pytest.raises(FileNotFoundError, match="yolo_backbone_shapes"):
        recipes._config(recipes.RECIPES["yolo_nano_shapes"], tmp_path / "empty", threads=1, time_limit_s=None,
                        progress=False)
    # publishing only does not need the start weights of the recipe
    assert recipes._config(recipes.RECIPES["yolo_nano_shapes"], tmp_path / "empty", threads=1, time_limit_s=None,
                           progress=False, need_weights=False).weights is None


def test_scene_frames_are_split_disjoint_and_mixed_in_equal_shares():
    from converters.train.data import SCENE_SEEDS, MixedDataset, SceneFrames, _synthetic_detect
    from sdk.synthetic import ShapesScene

    frames = SceneFrames("val", 4, per_scene=2, step=0.5)
    image, boxes, ids = frames[3]                                   # scene 1, t = 0.5 s
    ref = ShapesScene((720, 1280), seed=SCENE_SEEDS["val"] + 1).render(0.5)
    assert np.array_equal(image, ref[0]) and np.array_equal(boxes, ref[1]) and np.array_equal(ids, ref[2])
    assert len(set(SCENE_SEEDS.values())) == 3
    with pytest.raises(IndexError):
        frames[4]
    mix = _synthetic_detect("test", 9, {"size_hw": [[64, 64], [48, 96]], "scenes": True})
    assert isinstance(mix, MixedDataset) and len(mix) == 9
    assert [mix[i][0].shape[:2] for i in range(3)] == [(64, 64), (48, 96), (720, 1280)]


def test_a_mix_of_unequal_datasets_stops_at_its_length_and_takes_negative_indices():
    from converters.train.data import MixedDataset

    mix = MixedDataset([list("abc"), list("xy")])       # 3 and 2 items: the mix takes 2 of each
    assert len(mix) == 4 and list(mix) == ["a", "x", "b", "y"]  # iteration used to yield "c" as well
    assert mix[-1] == "y" and mix[-4] == "a"
    for bad in (4, -5):
        with pytest.raises(IndexError, match="expected -4 <= index < 4"):
            mix[bad]


def test_a_recipe_continues_from_shipped_weights_and_the_card_counts_both_stages(tmp_path, monkeypatch, capsys):
    from converters.train import recipes
    from converters.train.reference import publish, read_cards

    tiny = recipes.Recipe(
        name="tiny_cls", description="tiny",
        config=dict(family="mobilenet", epochs=4, batch=8, train_images=16, val_images=8, input_size=32,
                    model={"variant": "v3_small", "width_mult": 0.25}, warmup_steps=300, freeze_backbone=True,
                    unfreeze_at=2),
        eval={"split": "test", "task": "classify", "length": 16, "options": {"size": 32}}, targets={"top1": 0.95})
    monkeypatch.setitem(recipes.RECIPES, "tiny_cls", tiny)
    wd = tmp_path / "weights"
    net = build_model("mobilenet", seed=0, variant="v3_small", width_mult=0.25, input_size=32, num_classes=8)
    first = save_checkpoint(tmp_path / "first.pt", net, epoch=3)
    info = {"family": "mobilenet", "task": "classify", "eval": tiny.eval, "targets": tiny.targets, "seed": 0,
            "epochs": 4, "recipe": {}, "train_seconds": 100.0, "data": "crops"}
    shipped = publish("tiny_cls", first, info, final=False, weights_dir=wd)

    stage = recipes.Continuation(wd / "tiny_cls.pt", epochs=1, lr=1e-3)
    cfg = recipes._config(tiny, tmp_path / "runs", threads=1, time_limit_s=None, progress=False, stage=stage)
    assert (cfg.weights, cfg.freeze_backbone, cfg.epochs, cfg.lr, cfg.warmup_steps) == \
        (str(wd / "tiny_cls.pt"), False, 1, 1e-3, 100)
    res = recipes.run_recipe("tiny_cls", runs=tmp_path / "runs", stage=stage, weights_dir=wd, progress=False)
    card = read_cards(wd / "cards.json")["models"]["tiny_cls"]
    facts = card["recipe"]["continued"]
    assert res["finished"] and card["status"] == "final" and card["epochs"] == 1
    assert facts["sha256"] == shipped["sha256"] and facts["epochs_before"] == 3
    assert facts["metrics_before"] == shipped["metrics"] and facts["train_seconds_before"] == 100.0
    # the card adds this stage's time (rounded to 0.1 s: a tiny stage may take 0.0) to the earlier stage's
    stage_seconds = load_checkpoint(tmp_path / "runs" / "tiny_cls" / "last.pt")["train_seconds"]
    assert card["train_seconds"] == pytest.approx(100.0 + stage_seconds) and card["sha256"] != shipped["sha256"]
    assert "Trained in two stages. First 3 epochs" in (wd / "tiny_cls.md").read_text()
    # a stage cut short resumes from its own run folder with the flags that started it
    # (the shipped start weights by their path, which the facts keep as a file name only)
    assert facts["weights"] == "tiny_cls.pt"
    assert recipes._resume_command("tiny_cls", tmp_path / "runs", facts, weights_dir=wd) == (
        f"python -m converters.train.recipes tiny_cls --init {wd / 'tiny_cls.pt'} --epochs 1 --lr 0.001 "
        f"--runs {tmp_path / 'runs'}")
    assert recipes._resume_command("tiny_cls", tmp_path / "runs", facts).split()[5] == \
        "converters/zoo/weights/tiny_cls.pt"
    assert recipes._resume_command("tiny_cls", recipes.RUNS_DIR, None) == "python -m converters.train.recipes tiny_cls"
    # re-publishing later (no --init) still knows the stage: the facts live in the run folder
    again = recipes.run_recipe("tiny_cls", runs=tmp_path / "runs", train=False, weights_dir=wd, progress=False)
    assert again["card"]["recipe"]["continued"] == facts and again["card"]["status"] == "final"
    # a third stage from the second's shipped weights counts both earlier stages
    third = recipes.Continuation(wd / "tiny_cls.pt", epochs=1, lr=1e-3).describe()
    assert (third["stages_before"], third["epochs_before"]) == (2, 3 + 1)
    assert third["train_seconds_before"] == card["train_seconds"] and third["metrics_before"] == card["metrics"]
    assert "Trained in three stages. First 2 stages, 4 epochs" in recipes._stage_note("tiny_cls", third, 1)
    # ... and so does a stage started from the run's own last.pt (not published): its stage.json and meta
    last = load_checkpoint(tmp_path / "runs" / "tiny_cls" / "last.pt")
    from_run = recipes.Continuation(tmp_path / "runs" / "tiny_cls" / "last.pt", epochs=1).describe()
    assert (from_run["stages_before"], from_run["epochs_before"], from_run["metrics_before"]) == (2, 3 + 1, None)
    assert from_run["train_seconds_before"] == pytest.approx(100.0 + last["train_seconds"])
    assert from_run["published"] is False and from_run["weights"].endswith("last.pt")
    assert "an unpublished run checkpoint `" in recipes._stage_note("tiny_cls", from_run, 1)
    assert third["published"] is True
    # a missing start file, and stage flags without --init / with 'all'
    with pytest.raises(FileNotFoundError, match="--init expected a checkpoint file"):
        recipes._config(tiny, tmp_path, threads=1, time_limit_s=None, progress=False,
                        stage=recipes.Continuation(tmp_path / "none.pt"))
    for argv in (["tiny_cls", "--epochs", "3"], ["all", "--init", str(first)]):
        with pytest.raises(SystemExit) as exc:
            recipes.main(argv)
        assert exc.value.code == 2
    assert "pass --init WEIGHTS" in capsys.readouterr().err
    # --val-every is a run-level setting: it reaches the config, and a non-positive value is refused
    assert recipes._config(tiny, tmp_path, threads=1, time_limit_s=None, progress=False, stage=stage,
                           val_every=3).val_every == 3
    assert recipes._config(tiny, tmp_path, threads=1, time_limit_s=None, progress=False).val_every == 1
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exc:
            recipes.main(["tiny_cls", "--val-every", bad])
        assert exc.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
    # --model-option: builder options of the stage (JSON values), recorded in the facts and the card's command
    assert recipes._model_option("p2=true") == ("p2", True)
    assert recipes._model_option("width_mult=0.5") == ("width_mult", 0.5)
    assert recipes._model_option("act=silu") == ("act", "silu")
    for bad in ("p2", "=1", "two words=1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            recipes._model_option(bad)
    with pytest.raises(SystemExit):
        recipes.main(["tiny_cls", "--model-option", "width_mult=0.5"])
    assert "pass --init WEIGHTS" in capsys.readouterr().err
    wider = recipes.Continuation(wd / "tiny_cls.pt", epochs=1, model={"width_mult": 0.5})
    cfg = recipes._config(tiny, tmp_path, threads=1, time_limit_s=None, progress=False, stage=wider)
    assert cfg.model == {"variant": "v3_small", "width_mult": 0.5} and tiny.config["model"]["width_mult"] == 0.25
    facts = wider.describe()
    assert facts["model"] == {"width_mult": 0.5} and recipes.Continuation(wd / "tiny_cls.pt").describe()["model"] is None
    assert "--epochs 1 --model-option width_mult=0.5`" in recipes._stage_note("tiny_cls", facts, 1)
