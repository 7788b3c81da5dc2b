"""PNG plots of evaluation reports: precision/recall curves, ROC, confusion matrix, recall by object size.

matplotlib is imported inside the functions and drawn through its Agg canvas directly (no pyplot, so the
user's global matplotlib backend is never changed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

__all__ = ["plot_pr_curves", "plot_roc", "plot_confusion_matrix", "plot_recall_by_size", "save_plots"]

PathLike = Union[str, Path]


def _figure(size: tuple) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_pr_curves(report: dict, path: PathLike, *, iou: str = "50") -> Path:
    """Per-class precision/recall curves of a detection report (COCOeval's interpolated precision).

    Args:
        report: a dict from :func:`~converters.evaluation.evaluate_detection` / ``detection_metrics``.
        path: PNG file to write.
        iou: ``"50"`` (IoU 0.5) or ``"50_95"`` (mean over IoU 0.5:0.95).

    Returns:
        ``path``.

    Raises:
        ValueError: the report has no ``pr_curves`` or ``iou`` is unknown.
    """
    curves = report.get("pr_curves")
    if not curves:
        raise ValueError("report: expected a detection report with 'pr_curves'")
    key = {"50": "precision_iou50", "50_95": "precision_iou50_95"}.get(iou)
    if key is None:
        raise ValueError(f"iou: expected '50' or '50_95', got {iou!r}")
    recall = np.asarray(curves["recall"])
    per_class = report.get("per_class", {})
    fig = _figure((7.0, 5.0))
    ax = fig.add_subplot()
    from matplotlib import colormaps

    colours = colormaps["tab10" if len(curves[key]) <= 10 else "tab20"]
    for k, (name, prec) in enumerate(curves[key].items()):
        if prec is None:
            continue
        ap = per_class.get(name, {}).get("ap50" if iou == "50" else "ap50_95")
        label = f"{name} (AP {ap:.3f})" if ap is not None else name
        ax.plot(recall, prec, color=colours(k % colours.N), lw=1.6, label=label)
    overall = report.get("map50" if iou == "50" else "map50_95")
    title = f"Precision / recall, IoU {'0.5' if iou == '50' else '0.5:0.95'}"
    if overall is not None:
        title += f" -- mAP {overall:.3f}"
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, ncol=2 if len(curves[key]) > 6 else 1)
    return _save(fig, path)


def plot_roc(report: dict, path: PathLike, *, log_far: bool = True) -> Path:
    """ROC curve (TAR against FAR) of a verification report, marking the EER and the TAR @ FAR points.

    Args:
        report: a dict from :func:`~converters.evaluation.evaluate_verification` / ``evaluate_embeddings``.
        path: PNG file to write.
        log_far: log-scale FAR axis (from 1e-4), where the operating points of verification live.

    Returns:
        ``path``.

    Raises:
        ValueError: the report has no ``roc``.
    """
    roc = report.get("roc")
    if not roc:
        raise ValueError("report: expected a verification report with 'roc'")
    far, tar = np.asarray(roc["far"]), np.asarray(roc["tar"])
    fig = _figure((6.0, 5.0))
    ax = fig.add_subplot()
    ax.step(far, tar, where="post", lw=1.8, color="tab:blue", label=f"ROC (AUC {report['roc_auc']:.4f})")
    eer = report.get("eer")
    if eer is not None:
        ax.plot([eer], [1 - eer], "o", color="tab:red", label=f"EER {eer:.4f}")
    for key, value in (report.get("tar_at_far") or {}).items():
        if value is not None:
            ax.plot([float(key)], [value], "s", color="tab:green", ms=5)
            ax.annotate(f"TAR {value:.3f} @ FAR {key}", (float(key), value), textcoords="offset points",
                        xytext=(6, -12), fontsize=8)
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
    else:
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        ax.set_xlim(0, 1)
    ax.set(ylim=(0, 1.02), xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)",
           title=f"Verification ROC ({report.get('n_same', '?')} same / {report.get('n_diff', '?')} different pairs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(report: dict, path: PathLike, *, normalize: bool = True,
                          class_names: Optional[Sequence[str]] = None) -> Path:
    """Confusion matrix of a classification or detection report (rows: true class, columns: predicted).

    A detection report's matrix (``report["confusion"]``) has a last row "background" (detections that matched
    no object) and a last column "missed" (objects no detection matched); its title names the operating point.

    Args:
        report: a dict from :func:`~converters.evaluation.evaluate_classification` (``confusion_matrix``) or
            :func:`~converters.evaluation.evaluate_detection` (``confusion``).
        path: PNG file to write.
        normalize: colour and annotate by row fraction (recall per class); counts otherwise.
        class_names: tick labels (default: the report's).

    Returns:
        ``path``.

    Raises:
        ValueError: the report has no square confusion matrix.
    """
    det = report.get("confusion") if isinstance(report.get("confusion"), dict) else None
    cm = np.asarray(det["matrix"] if det else report.get("confusion_matrix", []), np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.size == 0:
        raise ValueError(f"report: expected a square 'confusion_matrix' or 'confusion.matrix', got shape {cm.shape}")
    c = cm.shape[0]
    if det:
        rows, cols = list(det["rows"]), list(det["columns"])
        if class_names:
            rows, cols = list(class_names) + rows[-1:], list(class_names) + cols[-1:]
    else:
        rows = cols = list(class_names or report.get("class_names") or [str(k) for k in range(c)])
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    side = max(4.5, 0.55 * c + 2.5)
    fig = _figure((side + 1.0, side))
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(c), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(c), rows, fontsize=8)
    if c <= 30:
        thresh = (1 if normalize else shown.max()) / 2
        for i in range(c):
            for j in range(c):
                v = shown[i, j]
                if cm[i, j] == 0:
                    continue
                text = f"{v:.2f}" if normalize else f"{int(v)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if v > thresh else "black")
    title = "Confusion matrix" + (" (row-normalised)" if normalize else "")
    if det:
        title += f" -- conf >= {det['conf']:g}, IoU >= {det['iou']:g}"
    elif report.get("top1") is not None:
        title += f" -- top-1 {report['top1']:.3f}"
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


def plot_recall_by_size(report: dict, path: PathLike) -> Path:
    """Stacked bars per object-size bin of a detection report's ``by_size``: right class / wrong class / missed.

    Args:
        report: a dict from :func:`~converters.evaluation.evaluate_detection` (with ``by_size``).
        path: PNG file to write.

    Returns:
        ``path``.

    Raises:
        ValueError: the report has no ``by_size`` bins.
    """
    by = report.get("by_size")
    bins = by.get("bins") if isinstance(by, dict) else None
    if not bins:
        raise ValueError("report: expected 'by_size' with 'bins' (a detection report), got none")
    labels = [f"{b['min_px']:g}-{b['max_px']:g}" if b["max_px"] is not None else f"{b['min_px']:g}+" for b in bins]
    parts = [("found_right_class", "right class", "#2e7d32"), ("found_wrong_class", "wrong class", "#f9a825"),
             ("missed", "missed", "#c62828")]
    fig = _figure((max(5.0, 0.9 * len(bins) + 2.0), 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(bins))
    bottom = np.zeros(len(bins))
    for key, name, colour in parts:
        v = np.array([float(b[key]) for b in bins])
        ax.bar(x, v, bottom=bottom, color=colour, label=name, width=0.7)
        bottom += v
    for i, b in enumerate(bins):
        ax.text(i, 1.02, f"n={b['objects']}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set(xlabel=f"object side sqrt(w*h), {by.get('measure', 'px')}", ylabel="fraction of objects",
           title=f"Objects by size -- conf >= {by.get('conf', 0.25):g}, IoU >= {by.get('iou', 0.45):g}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
    return _save(fig, path)


def save_plots(report: dict, out_dir: PathLike, *, prefix: str = "") -> list:
    """Write every plot that fits a report into ``out_dir``; return the paths.

    Detection: ``pr_curves.png`` (IoU 0.5), ``pr_curves_50_95.png``, ``confusion_matrix.png`` and
    ``recall_by_size.png`` (when the report has them); classification:
    ``confusion_matrix.png``; verification: ``roc.png``.
    """
    out = Path(out_dir)
    task = report.get("task")
    if task == "detect":
        paths = [plot_pr_curves(report, out / f"{prefix}pr_curves.png"),
                 plot_pr_curves(report, out / f"{prefix}pr_curves_50_95.png", iou="50_95")]
        if isinstance(report.get("confusion"), dict):
            paths.append(plot_confusion_matrix(report, out / f"{prefix}confusion_matrix.png"))
        if isinstance(report.get("by_size"), dict):
            paths.append(plot_recall_by_size(report, out / f"{prefix}recall_by_size.png"))
        return paths
    if task == "classify":
        return [plot_confusion_matrix(report, out / f"{prefix}confusion_matrix.png")]
    if task == "verify":
        return [plot_roc(report, out / f"{prefix}roc.png")]
    raise ValueError(f"report: expected task 'detect', 'classify' or 'verify', got {task!r}")
