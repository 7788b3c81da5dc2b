"""The exact recipes of the shipped reference models, and the command that runs them.

::

    python -m converters.train.recipes list
    python -m converters.train.recipes mobilenet_v3_small_shapes          # train (or resume), then publish
    python -m converters.train.recipes yolo_nano_shapes --time-limit-min 120   # one session; run again to go on
    python -m converters.train.recipes yolo_nano_shapes --publish-only    # re-evaluate best.pt, rewrite its card
    python -m converters.train.recipes all --threads 1                     # everything, in dependency order

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
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["Recipe", "RECIPES", "ORDER", "run_recipe", "main", "RUNS_DIR"]

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
               "head (decoder `yolo_end2end`). Inputs: RGB, letterbox to 320 (pad 114), pixel / 255."),
    ),
    Recipe(
        name="siamese_shapes",
        description=("Siamese MobileNetV3-Small (width 1.0) → 128-d unit embeddings, triplet loss (batch-hard, "
                     "margin 0.2) on synthetic identities, verified on 200 held-out identities never trained on."),
        config=dict(family="siamese", epochs=15, identities_per_batch=16, images_per_identity=4, train_images=6400,
                    val_images=1000, input_size=96,
                    model={"backbone": "v3_small", "width_mult": 1.0, "embedding_dim": 128, "loss": "triplet"},
                    weights="recipe:mobilenet_v3_small_shapes", freeze_backbone=True, unfreeze_at=2,
                    optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_steps=200,
                    data_options={"train_identities": 5000}),
        eval={"split": "test", "task": "pairs", "length": 600, "options": {"size": 96}},
        targets={"roc_auc": 0.95},
        depends=("mobilenet_v3_small_shapes",),
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
        description=("SSD-Lite (MobileNetV3-Large trunk, width 0.5, standard tail) detecting the 8 shape classes at "
                     "320x320 (stretch), trained on square and 16:9 scene-like synthetic images; trunk "
                     "transferred from the synthetic-crop classifier."),
        config=dict(family="ssdlite", epochs=40, batch=16, train_images=1600, val_images=150, input_size=320,
                    model={"variant": "v3_large", "width_mult": 0.5, "reduced_tail": False},
                    weights="recipe:mobilenet_v3_large_shapes_trunk", freeze_backbone=True, unfreeze_at=3,
                    bn_calibration=10, optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_steps=300, ema=True,
                    data_options=DETECT_DATA),
        eval=DETECT_EVAL,
        targets={"map50": 0.85},
        depends=("mobilenet_v3_large_shapes_trunk",),
    ),
]}

#: The order ``all`` runs them in.
ORDER = ("mobilenet_v3_small_shapes", "yolo_backbone_shapes", "yolo_nano_shapes", "siamese_shapes",
         "mobilenet_v3_large_shapes_trunk", "ssdlite_shapes")


def _config(recipe: Recipe, runs: Path, *, threads: Optional[int], time_limit_s: Optional[float],
            progress: bool) -> Any:
    from .config import TrainConfig

    cfg = dict(recipe.config)
    weights = cfg.get("weights")
    if isinstance(weights, str) and weights.startswith("recipe:"):
        dep = weights.split(":", 1)[1]
        path = runs / dep / "best.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{recipe.name}: expected the weights of recipe {dep!r} at {path}; run "
                                    f"`python -m converters.train.recipes {dep}` first")
        cfg["weights"] = str(path)
    cfg.update(out=str(runs / recipe.name), seed=cfg.get("seed", 0), threads=threads, time_limit_s=time_limit_s,
               progress=progress)
    return TrainConfig(**cfg)


def _history(out: Path) -> List[Dict[str, Any]]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"epoch": r["epoch"], "value": r.get("value"), "train_seconds": r.get("train_seconds")} for r in rows]


def run_recipe(name: str, *, runs: Path = RUNS_DIR, threads: Optional[int] = 1, time_limit_s: Optional[float] = None,
               publish: bool = True, train: bool = True, progress: bool = True) -> Dict[str, Any]:
    """Train (resuming when ``last.pt`` exists) and publish one recipe.

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
    cfg = _config(recipe, runs, threads=threads, time_limit_s=time_limit_s, progress=progress)
    out = Path(cfg.out)
    result: Dict[str, Any] = {"name": name, "finished": None, "best_value": None, "card": None}
    if train:
        res = train_run(cfg, resume=(out / "last.pt").is_file())
        result.update(finished=res.finished, best_value=res.best_value)
    if publish and recipe.shipped:
        best = out / "best.pt"
        if not best.is_file():
            raise FileNotFoundError(f"{name}: no {best} to publish yet")
        last = load_checkpoint(out / "last.pt")
        finished = int(last.get("epoch", 0)) >= cfg.epochs
        info = {"family": cfg.family, "task": cfg.task, "description": recipe.description, "eval": recipe.eval,
                "targets": recipe.targets, "seed": cfg.seed, "epochs": cfg.epochs, "recipe": _recipe_json(recipe),
                "train_seconds": float(last.get("train_seconds", 0.0)), "history": _history(out),
                "data": _data_text(cfg), "notes": recipe.notes}
        result["card"] = publish_card(name, best, info, final=finished)
        result["finished"] = finished
    return result


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m converters.train.recipes NAME|all|list [...]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m converters.train.recipes",
                                     description="Train and publish the reference models.")
    parser.add_argument("name", help="a recipe name, 'all' or 'list'")
    parser.add_argument("--runs", default=str(RUNS_DIR), help="folder of the runs (default build/train_runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--time-limit-min", type=float, default=None,
                        help="stop each recipe after the epoch that passes this many minutes (resume later)")
    parser.add_argument("--publish-only", action="store_true", help="only evaluate best.pt and write the card")
    parser.add_argument("--no-publish", action="store_true", help="train only")
    args = parser.parse_args(argv)
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
    limit = args.time_limit_min * 60 if args.time_limit_min else None
    status = 0
    for n in names:
        t0 = time.time()
        try:
            res = run_recipe(n, runs=Path(args.runs), threads=args.threads, time_limit_s=limit,
                             publish=not args.no_publish, train=not args.publish_only)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            print(f"{n}: {exc}", file=sys.stderr)
            status = 1
            continue
        card = res.get("card") or {}
        print(json.dumps({"recipe": n, "finished": res["finished"], "best_val": res["best_value"],
                          "metrics": card.get("metrics"), "minutes": round((time.time() - t0) / 60, 1)}), flush=True)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
