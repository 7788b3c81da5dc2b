"""Optimiser, learning-rate schedule, weight EMA, freezing and BatchNorm calibration.

The schedule is a pure function of the step (:func:`lr_factor`), so resuming needs only the step count,
and every state saved here is plain tensors / numbers (``torch.load(weights_only=True)`` reads it).
"""
from __future__ import annotations

import copy
import logging
import math
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn

__all__ = ["lr_factor", "build_optimizer", "set_lr", "ModelEMA", "apply_freeze", "set_train_mode",
           "calibrate_bn", "backbone_blocks", "trainable_parameters"]

logger = logging.getLogger(__name__)


def lr_factor(step: int, total: int, *, schedule: str = "cosine", warmup: int = 0, min_ratio: float = 0.0) -> float:
    """Learning-rate multiplier at ``step`` (0-based) of ``total`` steps.

    Args:
        step: the optimiser step about to be taken.
        total: all steps of the run.
        schedule: ``"cosine"`` (linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio``),
            ``"onecycle"`` (cosine from ``0.04`` up to 1 over the first 30 %, then cosine down to
            ``min_ratio``; ``warmup`` ignored) or ``"constant"`` (warm-up, then 1).
        warmup: warm-up steps.
        min_ratio: the final multiplier.

    Returns:
        The multiplier in ``[0, 1]``.

    Raises:
        ValueError: an unknown schedule.
    """
    total = max(int(total), 1)
    step = min(max(int(step), 0), total - 1)
    if schedule == "onecycle":
        up = max(int(0.3 * total), 1)
        if step < up:
            return 0.04 + (1 - 0.04) * 0.5 * (1 - math.cos(math.pi * step / up))
        t = (step - up) / max(total - up - 1, 1)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule: expected 'cosine', 'onecycle' or 'constant', got {schedule!r}")
    if warmup > 0 and step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(total - warmup - 1, 1)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def _backbone_param_ids(model: nn.Module) -> set:
    mods = getattr(model, "backbone_modules", lambda: [])()
    return {id(p) for m in mods for p in m.parameters()}


def build_optimizer(model: nn.Module, *, kind: str, lr: float, weight_decay: float,
                    backbone_lr_mult: float = 1.0, momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov) over *all* parameters, in four groups: {backbone, rest} x {decay, no decay}.

    Biases and normalisation weights (1-D tensors) get no weight decay. Every group carries ``lr_mult``
    (``backbone_lr_mult`` for the backbone), which :func:`set_lr` applies. Frozen parameters are in the
    optimiser too (their gradient is None, so they do not move), so unfreezing later needs no new
    optimiser and a resumed run finds the same parameter order.

    Raises:
        ValueError: an unknown optimiser.
    """
    bb = _backbone_param_ids(model)
    groups: Dict[tuple, List[nn.Parameter]] = {}
    for p in model.parameters():
        key = (id(p) in bb, p.ndim > 1)
        groups.setdefault(key, []).append(p)
    param_groups = []
    for (is_bb, decay), params in sorted(groups.items()):
        param_groups.append({"params": params, "weight_decay": weight_decay if decay else 0.0,
                             "lr_mult": float(backbone_lr_mult if is_bb else 1.0), "lr": lr,
                             "name": ("backbone" if is_bb else "head") + ("_decay" if decay else "_no_decay")})
    if kind == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"optimizer: expected 'adamw' or 'sgd', got {kind!r}")


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    """Set every group's LR to ``base_lr * factor * group['lr_mult']``; return ``base_lr * factor``."""
    for g in optimizer.param_groups:
        g["lr"] = base_lr * factor * float(g.get("lr_mult", 1.0))
    return base_lr * factor


class ModelEMA:
    """Exponential moving average of a model's weights (floating-point buffers averaged, others copied).

    ``decay`` ramps up as ``decay * (1 - exp(-updates / tau))`` so the early, random weights fade fast.

    Args:
        model: the trained model (a deep copy is kept, in eval mode, without gradients).
        decay: the final decay.
        tau: ramp length in updates.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, tau: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the model's current weights into the average."""
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        own = self.module.state_dict()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                own[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                own[k].copy_(v)

    def state_dict(self) -> Dict[str, Any]:
        """``{"updates": int, "decay": float, "model": state_dict}``."""
        return {"updates": self.updates, "decay": self.decay,
                "model": {k: v.detach().clone() for k, v in self.module.state_dict().items()}}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        Raises:
            ValueError: a state without ``model`` / ``updates``.
        """
        if not isinstance(state, dict) or "model" not in state or "updates" not in state:
            raise ValueError(f"EMA state: expected {{'updates', 'decay', 'model'}}, got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def backbone_blocks(model: nn.Module) -> List[nn.Module]:
    """The backbone as an ordered list of blocks (the children of each backbone module), input first."""
    blocks: List[nn.Module] = []
    for m in getattr(model, "backbone_modules", lambda: [])():
        children = list(m.children())
        blocks.extend(children if children else [m])
    return blocks


def apply_freeze(model: nn.Module, *, frozen: bool, unfreeze_last: Optional[int] = None) -> List[nn.Module]:
    """Freeze the backbone, or unfreeze it (all of it, or only its last ``unfreeze_last`` blocks).

    Returns:
        The backbone blocks that are trainable now (empty when frozen).
    """
    if not hasattr(model, "freeze_backbone"):
        return []
    if frozen:
        model.freeze_backbone(True)
        return []
    if unfreeze_last is None:
        model.freeze_backbone(False)
        return backbone_blocks(model)
    model.freeze_backbone(True)
    live = backbone_blocks(model)[-int(unfreeze_last):]
    for block in live:
        for p in block.parameters():
            p.requires_grad_(True)
    return live


def set_train_mode(model: nn.Module, live_blocks: Iterable[nn.Module] = ()) -> None:
    """``model.train()`` (a frozen backbone's BatchNorm stays in eval), then the unfrozen blocks train."""
    model.train()
    for block in live_blocks:
        block.train()


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def calibrate_bn(modules: Iterable[nn.Module], forward: Any, batches: Iterable[Any]) -> int:
    """Re-estimate BatchNorm running statistics of ``modules`` on ``batches`` (a cumulative average).

    Args:
        modules: the modules whose BatchNorm layers are recalibrated (e.g. a transferred backbone).
        forward: ``forward(batch)`` runs the model on one batch.
        batches: the data.

    Returns:
        Number of batches used.
    """
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [(m, m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    n = 0
    try:
        for batch in batches:
            forward(batch)
            n += 1
    finally:
        for m, momentum, training in saved:
            m.momentum = momentum
            m.train(training)
    logger.info("BatchNorm calibration: %d layers on %d batches", len(bns), n)
    return n
