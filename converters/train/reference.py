"""Shipped reference models: their held-out evaluation, fp16 weights, model cards and ``cards.json``.

::

    metrics = evaluate_reference(card)            # re-evaluate a shipped checkpoint on its held-out set
    publish("yolo_nano_shapes", "build/train_runs/yolo_nano_shapes/best.pt", recipe_info)

A card entry in ``converters/zoo/weights/cards.json`` (``{"models": {name: entry}}``)::

    {"name": ..., "family": ..., "task": ..., "weights": "<name>.pt", "sha256": ..., "bytes": ...,
     "eval": {"split": "test", "task": "classify", "length": 1000, "options": {...}, "heads": [...]},
     "metrics": {"top1": 0.97, ...}, "targets": {"top1": 0.95}, "meets_targets": true,
     "recipe": {...}, "train_seconds": ..., "epochs": ..., "seed": 0, "status": "final" | "in training"}

Weights are stored as fp16 state dicts (:func:`converters.zoo.load_model` converts them back to
float32 when loading into the freshly built model).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any, Dict, List

import torch

__all__ = ["WEIGHTS_DIR", "CARDS_FILE", "heldout_dataset", "evaluate_reference", "evaluate_model",
           "publish", "read_cards", "shipped_path"]

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "zoo" / "weights"
CARDS_FILE = WEIGHTS_DIR / "cards.json"
_METRICS = {"classify": ("top1", "top5"), "detect": ("map50", "map50_95", "map75", "map_small", "map_medium",
                                                     "map_large", "agnostic_map50", "agnostic_map50_95"),
            "pairs": ("roc_auc", "eer", "tar_at_far", "threshold_at_far")}


def heldout_dataset(spec: Dict[str, Any]) -> Any:
    """The held-out dataset an ``eval`` spec names (a synthetic split with its fixed seed).

    Args:
        spec: ``{"split": "test", "task": "classify" | "detect" | "pairs", "length": n, "options": {...}}``
            (detection ``options.size_hw`` may list several sizes: a mix).

    Raises:
        ValueError: an unknown task or split.
    """
    from converters.data import make_split

    from .data import _synthetic_detect

    task, split, n = spec["task"], spec.get("split", "test"), int(spec["length"])
    options = dict(spec.get("options", {}))
    if task == "detect":
        return _synthetic_detect(split, n, options)
    if task in ("classify", "pairs", "identity"):
        return make_split(split, task, n, **options)
    raise ValueError(f"eval.task: expected 'classify', 'detect' or 'pairs', got {task!r}")


def evaluate_model(model: torch.nn.Module, spec: Dict[str, Any], *, progress: bool = False) -> Dict[str, Any]:
    """Evaluate a zoo model on the held-out set of ``spec`` (through ``sdk``'s pre/post-processing).

    Returns:
        The metrics of ``_METRICS[task]``; for detectors with several ``spec["heads"]`` the first head's
        metrics plain and the others' prefixed ``<head>_`` (e.g. ``one2one_map50``).
    """
    from converters.evaluation import evaluate_classification, evaluate_detection, evaluate_embeddings

    from .predict import eval_predictor

    dataset = heldout_dataset(spec)
    task = spec["task"]
    out: Dict[str, Any] = {"images": len(dataset)}
    if task == "detect":
        heads = spec.get("heads") or [None]
        for i, head in enumerate(heads):
            rep = evaluate_detection(eval_predictor(model, head=head), dataset, progress=progress)
            prefix = "" if i == 0 else f"{head}_"
            out.update({prefix + k: rep[k] for k in _METRICS["detect"] if k in rep})
            out[prefix + "images_per_s"] = rep.get("images_per_s")
        return out
    if task == "classify":
        rep = evaluate_classification(eval_predictor(model), dataset, progress=progress)
    else:
        rep = evaluate_embeddings(eval_predictor(model), dataset, progress=progress)
    out.update({k: rep[k] for k in _METRICS["pairs" if task != "classify" else "classify"] if k in rep})
    return out


def read_cards(path: Path = CARDS_FILE) -> Dict[str, Any]:
    """``cards.json`` as a dict (``{"models": {}}`` when it does not exist yet)."""
    if not path.is_file():
        return {"schema_version": 1, "models": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def shipped_path(name: str) -> Path:
    """``converters/zoo/weights/<name>.pt``."""
    return WEIGHTS_DIR / f"{name}.pt"


def evaluate_reference(entry: Dict[str, Any], *, weights_dir: Path = WEIGHTS_DIR,
                       progress: bool = False) -> Dict[str, Any]:
    """Load a shipped checkpoint (its card entry) and evaluate it on its held-out set."""
    from converters.zoo import load_model

    model = load_model(Path(weights_dir) / entry["weights"])
    return evaluate_model(model, entry["eval"], progress=progress)


def _fp16_checkpoint(src: Path, dst: Path, **meta: Any) -> None:
    from converters.zoo import load_model, save_checkpoint

    model = load_model(src)
    model.half()
    save_checkpoint(dst, model, **meta)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _meets(metrics: Dict[str, Any], targets: Dict[str, float]) -> bool:
    ok = True
    for k, v in targets.items():
        got = metrics.get(k)
        if got is None:
            return False
        ok &= (got <= v) if k == "eer" else (got >= v)
    return bool(ok)


def publish(name: str, checkpoint: Path, info: Dict[str, Any], *, final: bool,
            weights_dir: Path = WEIGHTS_DIR, progress: bool = False) -> Dict[str, Any]:
    """Ship ``checkpoint`` as ``<weights_dir>/<name>.pt`` (fp16), evaluate it, write its card and cards.json.

    Args:
        name: the shipped model's name.
        checkpoint: a ``best.pt`` of a run.
        info: recipe facts for the card: ``family``, ``task``, ``description``, ``recipe`` (dict),
            ``eval`` (held-out spec), ``targets``, ``seed``, ``train_seconds``, ``epochs``, ``data``,
            ``history`` (per-epoch validation values), ``notes``, ``hardware`` (what the last stage trained
            on, from its metrics log; default: one thread of the 2-core VM the first stages ran on), ``resume``
            (the command that resumes the run, named while it is in training).
        final: training finished (else the card says it continues).
        weights_dir: where to write.

    Returns:
        The card entry written to ``cards.json``.
    """
    from converters.zoo import load_checkpoint, load_model

    weights_dir.mkdir(parents=True, exist_ok=True)
    dst = weights_dir / f"{name}.pt"
    src_meta = load_checkpoint(checkpoint)
    _fp16_checkpoint(Path(checkpoint), dst, name=name, epoch=int(src_meta.get("epoch", 0)),
                     source="converters.train.recipes " + name)
    model = load_model(dst)
    metrics = evaluate_model(model, info["eval"], progress=progress)
    entry: Dict[str, Any] = {
        "name": name, "family": info["family"], "task": info["task"], "weights": dst.name,
        "bytes": dst.stat().st_size, "sha256": _sha256(dst), "parameters": int(sum(p.numel() for p in model.parameters())),
        "config": src_meta.get("config"), "eval": info["eval"], "metrics": metrics, "targets": info["targets"],
        "meets_targets": _meets(metrics, info["targets"]), "seed": info.get("seed", 0),
        "epochs": int(src_meta.get("epoch", 0)), "epochs_planned": info.get("epochs"),
        "train_seconds": info.get("train_seconds"), "recipe": info.get("recipe"),
        "status": "final" if final else "in training",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", torch {torch.__version__}",
        "published": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    cards = read_cards(weights_dir / "cards.json")
    cards.setdefault("models", {})[name] = entry
    (weights_dir / "cards.json").write_text(json.dumps(cards, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (weights_dir / f"{name}.md").write_text(_card_markdown(entry, info), encoding="utf-8")
    logger.info("published %s: %s", name, metrics)
    return entry


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def _card_markdown(entry: Dict[str, Any], info: Dict[str, Any]) -> str:
    hours = (entry.get("train_seconds") or 0) / 3600
    lines: List[str] = [
        f"# {entry['name']}",
        "",
        info.get("description", ""),
        "",
        f"- **Status**: {entry['status']}" + ("" if entry["status"] == "final" else
                                               " — training continues (resumable from its run folder: `"
                                               + (info.get("resume") or f"python -m converters.train.recipes "
                                                                         f"{entry['name']}")
                                               + "`; a fresh clone starts a new stage from these weights with "
                                               "`--init`); these are the metrics of the best checkpoint so far, "
                                               "measured on the held-out set below."),
        f"- **Family**: `{entry['family']}` ({entry['parameters']:,} parameters), config `{json.dumps(entry['config'])}`",
        f"- **Weights**: `{entry['weights']}` (fp16 state dict, {entry['bytes'] / 1e6:.2f} MB, sha256 "
        f"`{entry['sha256'][:16]}…`); load with `converters.zoo.load_model(path)` (float32 model)",
        f"- **Data**: {info.get('data', '')}",
        f"- **Seed**: {entry['seed']}",
        f"- **Trained**: {entry['epochs']} of {entry.get('epochs_planned')} epochs, {hours:.2f} h of wall time "
        f"on this machine ({entry['machine']}, "
        + (f"its last session on {info['hardware']})" if info.get("hardware") else "1 thread, shared 2-core VM)"),
        "",
        "## Held-out evaluation",
        "",
        f"Set: `{json.dumps(entry['eval'])}` (synthetic `test` split: its own seed, never used in training or "
        f"model selection; evaluated through `sdk`'s pre-processing and decoder on the PyTorch graph).",
        "",
        "| metric | value | target |",
        "|---|---|---|",
    ]
    for k, v in entry["metrics"].items():
        if k in ("images",) or k.endswith("images_per_s"):
            continue
        target = entry["targets"].get(k)
        lines.append(f"| {k} | {_fmt(v)} | {('<= ' if k == 'eer' else '>= ') + str(target) if target else ''} |")
    lines += ["", f"Meets the targets: **{'yes' if entry['meets_targets'] else 'not yet'}**.", "",
              "## Recipe", "", "```json", json.dumps(entry.get("recipe"), indent=2), "```", ""]
    history = info.get("history") or []
    if history:
        lines += ["## Validation during training (val split)", "", "| epoch | value | seconds |", "|---|---|---|"]
        for h in history:
            lines.append(f"| {h.get('epoch')} | {_fmt(h.get('value'))} | {h.get('train_seconds')} |")
        lines.append("")
    if info.get("notes"):
        lines += ["## Notes", "", info["notes"], ""]
    lines += [f"Reproduce: `python -m converters.train.recipes {entry['name']}` (re-evaluate: "
              f"`python -m converters.train.recipes {entry['name']} --publish-only`).", ""]
    return "\n".join(lines)
