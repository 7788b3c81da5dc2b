"""Training curves: ``metrics.jsonl`` → ``curves.png`` (train loss and the validation metric per epoch)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Union

__all__ = ["plot_history"]

logger = logging.getLogger(__name__)


def plot_history(metrics_jsonl: Union[str, Path], out_png: Union[str, Path]) -> Optional[Path]:
    """Plot a run's metrics log.

    Args:
        metrics_jsonl: the run's ``metrics.jsonl`` (one JSON object per epoch).
        out_png: the PNG to write.

    Returns:
        The PNG path, or None when there is nothing to plot or matplotlib is missing.
    """
    path = Path(metrics_jsonl)
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the convert extra
        logger.info("matplotlib is not installed; no training curves")
        return None
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(epochs, [r["train"].get("loss") for r in rows], "o-", color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    ax.grid(alpha=0.3)
    val = [(r["epoch"], r["value"]) for r in rows if r.get("value") is not None]
    if val:
        ax2 = ax.twinx()
        ax2.plot([v[0] for v in val], [v[1] for v in val], "s-", color="tab:red", label=rows[-1].get("metric"))
        ax2.set_ylabel(f"val {rows[-1].get('metric')}", color="tab:red")
        ax2.set_ylim(0, 1)
    frozen = [r["epoch"] for r in rows if r.get("frozen_backbone")]
    if frozen:
        ax.axvspan(min(frozen) - 0.5, max(frozen) + 0.5, color="grey", alpha=0.12, label="backbone frozen")
    ax.set_title(f"{path.parent.name}: {len(rows)} epochs")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
