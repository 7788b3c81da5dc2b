"""The exact recipes of the shipped reference models, and the command that runs them.

::

    python -m converters.train.recipes list
    python -m converters.train.recipes mobilenet_v3_small_shapes          # train (or resume), then publish
    python -m converters.train.recipes yolo_nano_shapes --time-limit-min 120   # one session; run again to go on
    python -m converters.train.recipes yolo_nano_shapes --publish-only    # re-evaluate best.pt, rewrite its card
    python -m converters.train.recipes all --threads 1                     # everything, in dependency order
    python -m converters.train.recipes yolo_nano_shapes --init converters/zoo/weights/yolo_nano_shapes.pt \
        --epochs 12 --lr 1e-3 --runs build/continue                       # a new stage from shipped weights
    python -m converters.train.recipes yolo_nano_shapes --device cuda --workers 12   # a GPU, 12 batch workers

Runs live in ``build/train_runs/<name>/`` (``last.pt`` makes every run resumable across sessions);
publishing writes ``converters/zoo/weights/<name>.pt`` (fp16), ``<name>.md`` and the ``cards.json`` entry.

Order and transfer: the MobileNetV3-Small classifier comes first (fast; its trunk seeds the Siamese
network), then the YOLO-nano backbone pre-trained as a classifier on the same crops, then YOLO-nano
(backbone transferred frozen, then unfrozen), the Siamese network, and SSD-Lite (its MobileNetV3-Large
trunk pre-trained as a classifier first).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["Recipe", "Continuation", "RECIPES", "ORDER", "run_recipe", "main", "RUNS_DIR"]

logger = logging.getLogger(__name__)

RUNS_DIR = Path(__file__).resolve().parents[2] / "build" / "train_runs"

#: Detection data in equal thirds: square 320 images, 16:9 640x360 images (letterboxed to 320x180 at the
#: network, objects 12..200 px in the source) and frames of moving 1280x720 ``ShapesScene`` videos (what the
#: demo's ``synthetic://shapes`` source shows; scenes of other seeds than the demo's).
DETECT_DATA = {"size_hw": [[320, 320], [360, 640]], "scenes": True}
DETECT_EVAL = {"split": "test", "task": "detect", "length": 240, "options": DETECT_DATA}


@dataclass(frozen=True)
class Recipe:
    """One reference model (or a pre-training stage of one).

    Attributes:
        name: run / shipped name.
        config: :class:`converters.train.TrainConfig` fields (``weights`` may name another recipe as
            ``"recipe:<name>"``: its ``best.pt``).
        description: the card's first paragraph.
        eval: held-out set (:func:`converters.train.reference.heldout_dataset`); None: not shipped.
        targets: metric → required value (``eer``: at most).
        depends: recipes that must have run first.
        notes: extra card text.
    """

    name: str
    config: Dict[str, Any]
    description: str = ""
    eval: Optional[Dict[str, Any]] = None
    targets: Dict[str, float] = field(default_factory=dict)
    depends: Sequence[str] = ()
    notes: str = ""

    @property
    def shipped(self) -> bool:
        return self.eval is not None


RECIPES: Dict[str, Recipe] = {r.name: r for r in [
    Recipe(
        name="mobilenet_v3_small_shapes",
        description="MobileNetV3-Small (width 1.0) classifying the 8 synthetic shape classes on 96x96 crops.",
        config=dict(family="mobilenet", epochs=30, batch=64, train_images=10000, val_images=500, input_size=96,
                    model={"variant": "v3_small", "width_mult": 1.0, "dropout": 0.1}, optimizer="adamw", lr=3e-3,
                    weight_decay=0.05, schedule="cosine", warmup_steps=300, label_smoothing=0.05),
        eval={"split": "test", "task": "classify", "length": 500, "options": {"size": 96}},
        targets={"top1": 0.95},
        notes=("An earlier 64x64 run of this recipe (20 epochs, dropout 0.2) plateaued at top-1 0.862 on the "
               "held-out crops: circles vs hexagons and small stars need more pixels; hence 96x96."),
    ),
    Recipe(
        name="yolo_backbone_shapes",
        description="YOLO-nano's CSP backbone (width 0.25, depth 0.34) pre-trained as a classifier on the crops.",
        config=dict(family="yolo_backbone", epochs=8, batch=64, train_images=10000, val_images=500, input_size=64,
                    model={"width_mult": 0.25, "depth_mult": 0.34}, optimizer="adamw", lr=3e-3, weight_decay=0.05,
                    warmup_steps=300, label_smoothing=0.05),
    ),
    Recipe(
        name="yolo_nano_shapes",
        description=("YOLO-nano (width 0.25, depth 0.34, ReLU, end2end: one-to-many head + NMS-free one-to-one "
                     "head) detecting the 8 shape classes at 320x320 (letterbox), trained on square and 16:9 "
                     "scene-like synthetic images (the demo letterboxes 1280x720 frames to 320)."),
        config=dict(family="yolo_nano", epochs=60, batch=16, train_images=1600, val_images=150, input_size=320,
                    model={"width_mult": 0.25, "depth_mult": 0.34, "end2end": True},
                    weights="recipe:yolo_backbone_shapes", freeze_backbone=True, unfreeze_at=4, bn_calibration=10,
                    optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_steps=300, ema=True, ema_decay=0.999,
                    data_options=DETECT_DATA),
        eval={**DETECT_EVAL, "heads": ["one2many", "one2one"]},
        targets={"map50": 0.90},
        depends=("yolo_backbone_shapes",),
        notes=("`map50`/`map50_95` are the one-to-many head with NMS (decoder `yolo`); `one2one_*` the NMS-free "
               "head (decoder `yolo_end2end`). Inputs: RGB, letterbox to 320 (pad 114), pixel / 255.\n\n"
               "The first two stages used the strict YOLOv8 candidate rule (anchor centres inside the box). "
               "4.5 % of the held-out objects contain no anchor centre at any stride at the network's input "
               "(15 % are under 8 px there: a third of the images are 1280x720 scenes letterboxed to 320), so "
               "they could never be learned. From the third stage on, a box under 1.25 strides counts as that "
               "wide when the assigner looks for candidates (`YoloNanoLoss(min_box_strides=1.25)`). "
               "`agnostic_*` merge the classes over the same detections: the gap to `map50` is what wrong "
               "labels cost.\n\n"
               "A stride-4 level was tried against the fourth stage (`--model-option p2=true`: the same start "
               "weights and lr, 30 epochs instead of 42, so fewer updates). On 600 `val` images its one-to-many "
               "head scored mAP50 0.804 against 0.782, but its NMS-free head (the one the demo runs) 0.742 "
               "against 0.754, its recall at conf 0.25 on objects under 16 px was no better, and it costs x1.3-1.4 "
               "latency (`benchmarks/yolo_p2.py`). The plain model was kept."),
    ),
    Recipe(
        name="siamese_shapes",
        description=("Siamese MobileNetV3-Small (width 1.0) → 128-d unit embeddings, triplet loss (batch-all, "
                     "margin 0.2) on synthetic identities, verified on 200 held-out identities never trained on."),
        config=dict(family="siamese", epochs=20, identities_per_batch=16, images_per_identity=4, train_images=6400,
                    val_images=1000, input_size=96,
                    model={"backbone": "v3_small", "width_mult": 1.0, "embedding_dim": 128, "loss": "triplet",
                           "batch_hard": False},
                    weights="recipe:mobilenet_v3_small_shapes", freeze_backbone=True, unfreeze_at=2,
                    optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_steps=200,
                    data_options={"train_identities": 5000}),
        eval={"split": "test", "task": "pairs", "length": 600, "options": {"size": 96}},
        targets={"roc_auc": 0.95},
        depends=("mobilenet_v3_small_shapes",),
        notes=("Batch-all, not batch-hard: an earlier batch-hard run of this recipe collapsed. Its held-out ROC AUC "
               "was 0.952, but every embedding sat within 0.003 of every other (median L2 distance 0.0016 for "
               "genuine pairs and 0.0028 for impostors, on unit vectors). INT8 rounding noise swamps distances "
               "like that, and its ONNX and OpenVINO INT8 exports failed the gate. One short epoch of each "
               "showed the difference: batch-hard shrank the distances to 0.17 / 0.22 (AUC 0.64), batch-all "
               "spread them to 0.59 / 1.32 (AUC 0.81)."),
    ),
    Recipe(
        name="mobilenet_v3_large_shapes_trunk",
        description="MobileNetV3-Large (width 0.5) classifier on the crops: the trunk SSD-Lite starts from.",
        config=dict(family="mobilenet", epochs=6, batch=64, train_images=10000, val_images=500, input_size=64,
                    model={"variant": "v3_large", "width_mult": 0.5}, optimizer="adamw", lr=3e-3,
                    weight_decay=0.05, warmup_steps=300, label_smoothing=0.05),
    ),
    Recipe(
        name="ssdlite_shapes",
        description=("SSD-Lite (MobileNetV3-Large trunk, width 0.5, standard tail, default boxes of 0.05-0.7 of the "
                     "input) detecting the 8 shape classes at 320x320 (stretch), trained on square and 16:9 "
                     "scene-like synthetic images; trunk transferred from the synthetic-crop classifier."),
        config=dict(family="ssdlite", epochs=40, batch=16, train_images=1600, val_images=150, input_size=320,
                    model={"variant": "v3_large", "width_mult": 0.5, "reduced_tail": False,
                           "anchor_scales": [0.05, 0.7]},
                    weights="recipe:mobilenet_v3_large_shapes_trunk", freeze_backbone=True, unfreeze_at=3,
                    bn_calibration=10, optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_steps=300, ema=True,
                    data_options=DETECT_DATA),
        eval=DETECT_EVAL,
        targets={"map50": 0.85},
        depends=("mobilenet_v3_large_shapes_trunk",),
        notes=("Default boxes from 0.05 to 0.7 of the input (16 to 224 px at 320) instead of torchvision's "
               "SSDLite320 0.2 to 0.95 (64 to 304 px, made for COCO). Measured on the held-out set at the "
               "network's input: 59 % of the objects are under 32 px and 82 % under 64 px (76 % and 98 % in the "
               "1280x720 scenes), and SSD matches each object to default boxes by IoU: a 20 px object overlaps "
               "a 64 px box by at most 0.1. The first two stages (5 + 16 epochs) used torchvision's scales and "
               "reached validation mAP50 0.339 with mAP_small 0.027; the anchor change needs no new parameters "
               "(same boxes per location), so the third stage continued from them.\n\n"
               "A seventh map at stride 8 (`--model-option stride8=true`) was tried beside the fifth stage: the "
               "same start weights, lr and schedule, both at once. It trailed the plain stage at each of its seven "
               "validations (epochs 2-14: mAP50 0.590-0.665 against 0.668-0.725; mAP_small lower at six of seven) "
               "and was stopped at epoch 14 of 38. A likely reason, not measured: its map comes from the trunk's "
               "stride-8 stage, 24 channels against 336 at stride 16, and SSD has no top-down path to bring "
               "deeper features down to it (YOLO-nano's PAN does), while its default boxes take the smallest "
               "objects' matches from the trained stride-16 level.\n\n"
               "The top-down version of that map (`--model-option stride8=topdown`: the stride-16 map projected, "
               "upsampled and added to the stride-8 tap) ran beside the seventh stage: the same start weights and "
               "lr 0.001, 36 epochs planned against 42, both cut at the same 128-minute limit (33 and 39 epochs "
               "done; it is about 10 % slower per epoch). It started lower (`val` mAP50 0.70 against 0.79 after "
               "one epoch), caught up by epoch 20 and ended at 0.837 against 0.839. On 600 `val` images: 0.847 "
               "(mAP_small 0.423) against 0.855 (0.427) for the plain stage and 0.846 for the sixth. The plain "
               "model was kept."),
    ),
]}

#: The order ``all`` runs them in.
ORDER = ("mobilenet_v3_small_shapes", "yolo_backbone_shapes", "yolo_nano_shapes", "siamese_shapes",
         "mobilenet_v3_large_shapes_trunk", "ssdlite_shapes")


@dataclass(frozen=True)
class Continuation:
    """A new training stage that starts from earlier weights instead of the recipe's own start.

    Used when a run's ``last.pt`` is gone (a new machine) but its shipped weights are not: training goes
    on from ``init`` with everything trainable (the transfer-learning freeze is over), a fresh optimiser and
    a schedule of ``epochs`` over this stage. The card records the stage, the start weights' sha256 and
    the wall time of both.

    Attributes:
        init: start weights (a shipped ``<name>.pt`` or any checkpoint of the same architecture).
        epochs: epochs of this stage (None: the recipe's).
        lr: peak learning rate of this stage (None: the recipe's).
        input_size: train at another input size (e.g. a classifier fine-tuned at a higher resolution).
        model: builder options replacing the recipe's (e.g. ``{"p2": True}``: YOLO-nano with a stride-4
            level); modules the start weights lack start as initialised.
    """

    init: Path
    epochs: Optional[int] = None
    lr: Optional[float] = None
    input_size: Optional[int] = None
    model: Optional[Dict[str, Any]] = None

    def describe(self) -> Dict[str, Any]:
        """JSON facts for the card: the start weights (name, sha256, earlier epochs and wall time), overrides."""
        import hashlib

        from converters.zoo import load_checkpoint

        meta = load_checkpoint(self.init)
        digest = hashlib.sha256(Path(self.init).read_bytes()).hexdigest()
        prior = _prior_card(Path(self.init), digest)
        if prior:  # shipped weights: their card counts every stage that made them
            earlier = (prior.get("recipe") or {}).get("continued") or {}
            seconds, metrics = float(prior.get("train_seconds") or 0.0), prior.get("metrics")
        else:  # a run's own checkpoint (e.g. last.pt of a stage cut short): its run folder says what came before
            stage_file = Path(self.init).parent / "stage.json"
            earlier = json.loads(stage_file.read_text(encoding="utf-8")) if stage_file.is_file() else {}
            seconds = float(meta.get("train_seconds") or 0.0) + float(earlier.get("train_seconds_before") or 0.0)
            metrics = None  # only validation metrics exist for it; the card's held-out numbers come at publishing
        return {"weights": Path(self.init).name if prior else str(self.init), "published": bool(prior),
                "sha256": digest,
                "epochs_before": int(meta.get("epoch", 0)) + int(earlier.get("epochs_before") or 0),
                "stages_before": int(earlier.get("stages_before") or 1) + (1 if earlier else 0),
                "train_seconds_before": seconds, "metrics_before": metrics, "epochs": self.epochs, "lr": self.lr,
                "input_size": self.input_size, "model": dict(self.model) if self.model else None}


def _prior_card(path: Path, digest: str) -> Dict[str, Any]:
    """The shipped card whose weights are ``path`` (same sha256), else {}."""
    from .reference import read_cards

    cards = read_cards(path.parent / "cards.json").get("models", {})
    return next((c for c in cards.values() if c.get("sha256") == digest), {})


def _config(recipe: Recipe, runs: Path, *, threads: Optional[int], time_limit_s: Optional[float],
            progress: bool, stage: Optional[Continuation] = None, val_every: Optional[int] = None,
            need_weights: bool = True, device: str = "cpu", workers: int = 0) -> Any:
    from .config import TrainConfig

    cfg = dict(recipe.config)
    if stage is not None:
        if not Path(stage.init).is_file():
            raise FileNotFoundError(f"{recipe.name}: --init expected a checkpoint file, got {stage.init}")
        cfg.update(weights=str(stage.init), freeze_backbone=False, unfreeze_at=None, bn_calibration=0,
                   warmup_steps=min(int(cfg.get("warmup_steps", 100)), 100))
        for key in ("epochs", "lr", "input_size"):
            if getattr(stage, key) is not None:
                cfg[key] = getattr(stage, key)
        if stage.model:
            cfg["model"] = {**dict(cfg.get("model") or {}), **stage.model}
    weights = cfg.get("weights")
    if isinstance(weights, str) and weights.startswith("recipe:"):
        dep = weights.split(":", 1)[1]
        path = runs / dep / "best.pt"
        if path.is_file():
            cfg["weights"] = str(path)
        elif need_weights:
            raise FileNotFoundError(f"{recipe.name}: expected the weights of recipe {dep!r} at {path}; run "
                                    f"`python -m converters.train.recipes {dep}` first")
        else:  # publishing only: the start weights are not used
            cfg["weights"] = None
    cfg.update(out=str(runs / recipe.name), seed=cfg.get("seed", 0), threads=threads, time_limit_s=time_limit_s,
               progress=progress, device=device, workers=workers)
    if val_every is not None:
        cfg["val_every"] = val_every
    return TrainConfig(**cfg)


def _history(out: Path) -> List[Dict[str, Any]]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"epoch": r["epoch"], "value": r.get("value"), "train_seconds": r.get("train_seconds")} for r in rows]


def run_recipe(name: str, *, runs: Path = RUNS_DIR, threads: Optional[int] = 1, time_limit_s: Optional[float] = None,
               publish: bool = True, train: bool = True, progress: bool = True,
               stage: Optional[Continuation] = None, weights_dir: Optional[Path] = None,
               val_every: Optional[int] = None, device: str = "cpu", workers: int = 0) -> Dict[str, Any]:
    """Train (resuming when ``last.pt`` exists) and publish one recipe.

    ``val_every`` validates every N epochs (and after the last) instead of the recipe's every epoch: a
    run-level setting like ``threads`` (it changes which epoch can be picked as best, not the training).

    ``device`` and ``workers`` say where it trains (``"cpu"``, ``"cuda"``, ``"auto"``) and how many processes
    draw its batches; like ``threads`` they may change when a run resumes.

    ``stage`` continues from earlier weights (:class:`Continuation`) in a run of its own; the card then
    counts the earlier wall time too and names the start weights. ``weights_dir``: where to publish
    (default ``converters/zoo/weights``).

    Returns:
        ``{"name", "finished", "best_value", "card"}`` (``card`` is None for unshipped stages).

    Raises:
        KeyError: an unknown recipe name.
        FileNotFoundError: a dependency has not run yet.
    """
    from converters.zoo import load_checkpoint

    from .loop import train as train_run
    from .reference import publish as publish_card

    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    cfg = _config(recipe, runs, threads=threads, time_limit_s=time_limit_s, progress=progress, stage=stage,
                  val_every=val_every, need_weights=train, device=device, workers=workers)
    out = Path(cfg.out)
    facts = _stage_facts(out, stage)
    result: Dict[str, Any] = {"name": name, "finished": None, "best_value": None, "card": None}
    if train:
        res = train_run(cfg, resume=(out / "last.pt").is_file())
        result.update(finished=res.finished, best_value=res.best_value)
    if publish and recipe.shipped:
        best = out / "best.pt"
        if not best.is_file():
            raise FileNotFoundError(f"{name}: no {best} to publish yet")
        last = load_checkpoint(out / "last.pt")
        planned = int((facts or {}).get("epochs") or cfg.epochs)
        finished = int(last.get("epoch", 0)) >= planned
        seconds = float(last.get("train_seconds", 0.0))
        hardware = (last.get("metrics") or {}).get("hardware")
        recipe_json, notes = _recipe_json(recipe), recipe.notes
        if facts is not None:
            seconds += facts["train_seconds_before"]
            recipe_json["continued"] = facts
            best_epoch = int(load_checkpoint(best).get("epoch", 0))
            notes = (notes + "\n\n" if notes else "") + _stage_note(name, facts, best_epoch)
        resume = _resume_command(name, runs, facts, weights_dir=weights_dir)
        info = {"family": cfg.family, "task": cfg.task, "description": recipe.description, "eval": recipe.eval,
                "targets": recipe.targets, "seed": cfg.seed, "epochs": planned, "recipe": recipe_json,
                "train_seconds": seconds, "history": _history(out), "data": _data_text(cfg), "notes": notes,
                "hardware": hardware, "resume": resume}
        where = {} if weights_dir is None else {"weights_dir": Path(weights_dir)}
        result["card"] = publish_card(name, best, info, final=finished, progress=progress, **where)
        result["finished"] = finished
    return result


def _stage_facts(out: Path, stage: Optional[Continuation]) -> Optional[Dict[str, Any]]:
    """The continuation facts of the run in ``out``: described now (first call), kept in ``stage.json``.

    Kept in the run folder because publishing overwrites the shipped start weights the facts describe.
    """
    path = out / "stage.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if stage is None:
        return None
    facts = stage.describe()
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return facts


def _stage_note(name: str, facts: Dict[str, Any], epochs: int) -> str:
    before = facts.get("metrics_before") or {}
    shown = ", ".join(f"{k} {v:.3f}" for k, v in before.items() if isinstance(v, float))
    flags = _stage_flags(facts)
    before = int(facts.get("stages_before") or 1)
    words = {2: "two", 3: "three", 4: "four"}
    total, earlier = words.get(before + 1, str(before + 1)), ("First" if before == 1 else f"First {before} stages,")
    source = "weights" if facts.get("published", True) else "an unpublished run checkpoint"
    return (f"Trained in {total} stages. {earlier} {facts['epochs_before']} epochs ({source} `{facts['weights']}`, "
            f"sha256 `{facts['sha256'][:16]}…`, {facts['train_seconds_before'] / 3600:.2f} h"
            + (f"; held-out {shown}" if shown else "") + "), then a stage continued from them with everything "
            f"trainable, a fresh AdamW and a cosine schedule over the stage (best checkpoint: epoch {epochs}); "
            f"the wall time above counts all stages. The last stage: `python -m converters.train.recipes {name} "
            f"--init {facts['weights']}{flags}`.")


def _stage_flags(facts: Dict[str, Any]) -> str:
    """The ``--epochs/--lr/--input-size/--model-option`` flags that started the stage in ``facts``."""
    flags = "".join(f" --{k.replace('_', '-')} {facts[k]}" for k in ("epochs", "lr", "input_size") if facts.get(k))
    return flags + "".join(f" --model-option {k}={json.dumps(v)}" for k, v in (facts.get("model") or {}).items())


def _resume_command(name: str, runs: Path, facts: Optional[Dict[str, Any]], *,
                    weights_dir: Optional[Path] = None) -> str:
    """The command that resumes this run where it stopped (its own run folder; a stage needs its flags again).

    A stage from shipped weights names them by file name only (``facts["weights"]``); the command gives
    their path in ``weights_dir`` (default: the repo's, relative to the repo root) so that it runs as printed.
    """
    from .reference import WEIGHTS_DIR

    cmd = f"python -m converters.train.recipes {name}"
    if facts is not None:
        init = facts["weights"]
        if facts.get("published", True):
            folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR.relative_to(WEIGHTS_DIR.parents[2])
            init = str(folder / init)
        cmd += f" --init {init}{_stage_flags(facts)}"
    return cmd + ("" if Path(runs).resolve() == RUNS_DIR.resolve() else f" --runs {runs}")


def _recipe_json(recipe: Recipe) -> Dict[str, Any]:
    return {"config": recipe.config, "depends": list(recipe.depends)}


def _data_text(cfg: Any) -> str:
    if cfg.task == "classify":
        return (f"fresh synthetic crops every epoch ({cfg.train_images} per epoch, `train` split, "
                f"{cfg.size}x{cfg.size}); model selection on {cfg.val_images} `val` crops")
    if cfg.task == "detect":
        return (f"fresh synthetic detection images every epoch ({cfg.train_images} per epoch, `train` split, "
                f"mix of sizes {cfg.data_options.get('size_hw')}, 1-8 objects of 12-200 px, textured/noisy "
                f"backgrounds, lighting, occlusion, blur); model selection on {cfg.val_images} `val` images")
    return (f"synthetic identities: {cfg.data_options.get('train_identities', 1000)} training identities "
            f"(ids 0..), P x K = {cfg.identities_per_batch} x {cfg.images_per_identity} batches, "
            f"{cfg.train_images} images per epoch; model selection on {cfg.val_images} `val` pairs of other "
            f"held-out identities")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _model_option(text: str) -> Tuple[str, Any]:
    """``KEY=VALUE`` → ``(key, value)``; the value is read as JSON (``true``, ``0.5``, ``[8, 16]``), else text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a builder argument name, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m converters.train.recipes NAME|all|list [...]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m converters.train.recipes",
                                     description="Train and publish the reference models.")
    parser.add_argument("name", help="a recipe name, 'all' or 'list'")
    parser.add_argument("--runs", default=str(RUNS_DIR), help="folder of the runs (default build/train_runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes drawing the batches ahead of the training step (default 0)")
    parser.add_argument("--time-limit-min", type=float, default=None,
                        help="stop each recipe after the epoch that passes this many minutes (resume later)")
    parser.add_argument("--publish-only", action="store_true", help="only evaluate best.pt and write the card")
    parser.add_argument("--no-publish", action="store_true", help="train only")
    parser.add_argument("--init", default=None,
                        help="continue from these weights in a new stage (e.g. the shipped .pt); use its own --runs")
    parser.add_argument("--epochs", type=int, default=None, help="with --init: epochs of the new stage")
    parser.add_argument("--lr", type=float, default=None, help="with --init: peak learning rate of the stage")
    parser.add_argument("--input-size", type=int, default=None, help="with --init: train at this input size")
    parser.add_argument("--model-option", type=_model_option, action="append", default=[], metavar="KEY=VALUE",
                        help="with --init: a builder option replacing the recipe's (repeatable; e.g. p2=true)")
    parser.add_argument("--val-every", type=_positive_int, default=None, metavar="N",
                        help="validate every N epochs and after the last (default: every epoch)")
    args = parser.parse_args(argv)
    from .errors import TrainError

    if args.init is None and (args.epochs or args.lr or args.input_size or args.model_option):
        parser.error("--epochs, --lr, --input-size and --model-option change a continuation stage: "
                     "pass --init WEIGHTS too")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.name == "list":
        for n in ORDER:
            r = RECIPES[n]
            print(f"{n:34s} {'shipped' if r.shipped else 'stage  '} {r.description}")
        return 0
    names = list(ORDER) if args.name == "all" else [args.name]
    if any(n not in RECIPES for n in names):
        print(f"unknown recipe {args.name!r}; known: {', '.join(ORDER)}", file=sys.stderr)
        return 2
    if args.init is not None and len(names) != 1:
        parser.error("--init continues one recipe, not 'all'")
    stage = (Continuation(Path(args.init), epochs=args.epochs, lr=args.lr, input_size=args.input_size,
                          model=dict(args.model_option) or None) if args.init else None)
    limit = args.time_limit_min * 60 if args.time_limit_min else None
    status = 0
    for n in names:
        t0 = time.time()
        try:
            res = run_recipe(n, runs=Path(args.runs), threads=args.threads, time_limit_s=limit,
                             publish=not args.no_publish, train=not args.publish_only, stage=stage,
                             val_every=args.val_every, device=args.device, workers=args.workers)
        except (FileNotFoundError, KeyError, ValueError, TrainError) as exc:
            print(f"{n}: {exc}", file=sys.stderr)
            status = 1
            continue
        card = res.get("card") or {}
        print(json.dumps({"recipe": n, "finished": res["finished"], "best_val": res["best_value"],
                          "metrics": card.get("metrics"), "minutes": round((time.time() - t0) / 60, 1)}), flush=True)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
