"""Profile reports: ``report.json``, ``report.md`` and PNG plots; side-by-side comparison of reports.

``report.json`` layout (schema version 1)::

    {"schema": "edgesdk.profile/1", "created": ISO time, "host": {...fingerprint...},
     "device": {"name", "matches_host", "config": {...}}, "source": URI,
     "models": [{"model": path, "backend": {...}, "precision", "frames", "warmup", "fps",
                 "stages": {"capture"|"preprocess"|"infer"|"postprocess"|"total":
                            {"p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "count"}},
                 "frame_age": {...}, "cpu_percent", "peak_rss_mb", "overhead_pct", "accuracy": {...}|null,
                 "budget_ms", "within_budget"}]}

Plots need matplotlib (``pip install "edgesdk[plots]"``); without it the JSON and Markdown are still
written and the report says the plots were skipped.
"""
from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

__all__ = ["SCHEMA", "write_report", "markdown_table", "compare_reports", "load_report", "stage_table"]

logger = logging.getLogger(__name__)

SCHEMA = "edgesdk.profile/1"
_TABLE_STAGES = ("capture", "preprocess", "infer", "postprocess", "track", "total")


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def stage_table(entry: Mapping[str, Any]) -> str:
    """A fixed-width per-stage table (p50/p90/p99/mean ms) of one model's entry, for terminals."""
    lines = [f"{'stage':<12} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'mean ms':>9}"]
    for name in _TABLE_STAGES:
        s = entry["stages"].get(name)
        if not s or not s.get("count"):
            continue
        lines.append(f"{name:<12} {_fmt(s['p50_ms']):>9} {_fmt(s['p90_ms']):>9} {_fmt(s['p99_ms']):>9} "
                     f"{_fmt(s['mean_ms']):>9}")
    age = entry.get("frame_age") or {}
    if age.get("count"):
        lines.append(f"{'frame age':<12} {_fmt(age['p50_ms']):>9} {_fmt(age['p90_ms']):>9} "
                     f"{_fmt(age['p99_ms']):>9} {_fmt(age['mean_ms']):>9}")
    return "\n".join(lines)


def markdown_table(entries: Sequence[Mapping[str, Any]], labels: Optional[Sequence[str]] = None) -> str:
    """Markdown: one row per (entry, stage) with p50/p90/p99/mean; plus FPS and accuracy rows."""
    labels = list(labels or [Path(str(e.get("model", "?"))).name for e in entries])
    head = "| run | stage | p50 ms | p90 ms | p99 ms | mean ms |\n|---|---|---:|---:|---:|---:|"
    rows = [head]
    for label, e in zip(labels, entries):
        for name in _TABLE_STAGES:
            s = e["stages"].get(name)
            if s and s.get("count"):
                rows.append(f"| {label} | {name} | {_fmt(s['p50_ms'])} | {_fmt(s['p90_ms'])} | "
                            f"{_fmt(s['p99_ms'])} | {_fmt(s['mean_ms'])} |")
    summary = ["", "| run | frames | FPS | CPU % | peak RSS MB | frame age p90 ms | budget ms | accuracy |",
               "|---|---:|---:|---:|---:|---:|---:|---|"]
    for label, e in zip(labels, entries):
        acc = e.get("accuracy") or {}
        acc_s = ", ".join(f"{k} {v:.3f}" for k, v in acc.items() if isinstance(v, float) and k.startswith("map"))
        budget = e.get("budget_ms")
        verdict = "" if budget is None else (" (ok)" if e.get("within_budget") else " (over)")
        summary.append(f"| {label} | {e.get('frames')} | {_fmt(e.get('fps'), 1)} | {_fmt(e.get('cpu_percent'), 0)} | "
                       f"{_fmt(e.get('peak_rss_mb'), 0)} | {_fmt((e.get('frame_age') or {}).get('p90_ms'))} | "
                       f"{_fmt(budget, 0)}{verdict} | {acc_s or '-'} |")
    return "\n".join(rows + summary)


def _markdown(report: Mapping[str, Any], plots: Sequence[str]) -> str:
    host = report["host"]
    dev = report.get("device") or {}
    lines = ["# EdgeSDK latency profile", "",
             f"- created: {report['created']}",
             f"- host: {host.get('cpu_model')} ({host.get('cores')} cores, {host.get('machine')}), "
             f"{host.get('os_release') or host.get('os')}, Python {host.get('python')}",
             f"- runtimes: {', '.join(f'{k} {v}' for k, v in (host.get('runtimes') or {}).items())}",
             f"- device config: {dev.get('name') or '-'}"
             + ("" if not dev.get("name") else
                f" ({'matches this host' if dev.get('matches_host') else 'does NOT match this host: numbers are this host, not that device'})"),
             f"- source: {report.get('source')}", "",
             "Stage times are per frame, warm-up excluded; `total` = capture + preprocess + infer + "
             "postprocess (+ track). Frame age = time from capture to the start of inference.", "",
             markdown_table(report["models"])]
    if plots:
        lines += ["", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots]]
    else:
        lines += ["", "_plots skipped: matplotlib is not installed (pip install \"edgesdk[plots]\")_"]
    return "\n".join(lines) + "\n"


def _plots(report: Mapping[str, Any], series: Sequence[Mapping[str, np.ndarray]], out: Path) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib not installed: plots skipped")
        return []
    labels = [Path(str(m["model"])).name for m in report["models"]]
    stages = [s for s in _TABLE_STAGES[:-1] if any((m["stages"].get(s) or {}).get("count") for m in report["models"])]
    written = []
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.6 * len(labels)))
    left = np.zeros(len(labels))
    for s in stages:
        vals = np.array([(m["stages"].get(s) or {}).get("mean_ms") or 0.0 for m in report["models"]])
        ax.barh(labels, vals, left=left, label=s)
        left += vals
    ax.set_xlabel("mean latency per frame (ms), stacked by stage (means add up to the total)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("Stage breakdown")
    fig.tight_layout()
    path = out / "stage_breakdown.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    for fname, title, draw in (("latency_over_time.png", "Latency over time", _draw_time),
                               ("latency_cdf.png", "Latency CDF", _draw_cdf)):
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, ser in zip(labels, series):
            total = ser.get("total")
            if total is not None and len(total):
                draw(ax, np.asarray(total), label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def _draw_time(ax: Any, total: np.ndarray, label: str) -> None:
    ax.plot(np.arange(len(total)), total, lw=0.8, label=label)
    ax.set_xlabel("frame (most recent window)")
    ax.set_ylabel("total ms per frame")


def _draw_cdf(ax: Any, total: np.ndarray, label: str) -> None:
    x = np.sort(total)
    ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=label)
    ax.set_xlabel("total ms per frame")
    ax.set_ylabel("fraction of frames")


def write_report(out_dir: "str | Path", models: Sequence[Mapping[str, Any]], *, host: Mapping[str, Any],
                 device: Optional[Mapping[str, Any]] = None, source: Optional[str] = None,
                 series: Optional[Sequence[Mapping[str, np.ndarray]]] = None, plots: bool = True) -> Dict[str, Any]:
    """Write ``report.json``, ``report.md`` and (with matplotlib) PNG plots into ``out_dir``.

    Args:
        out_dir: folder (created).
        models: one entry per model (see the module docstring).
        host: :func:`sdk.hostinfo.fingerprint`.
        device: ``{"name", "matches_host", "config"}`` or None.
        source: the frame source URI.
        series: per model, recent samples per stage (``Profiler.series()``) for the plots.
        plots: write PNG plots when matplotlib is available.

    Returns:
        The report dict (as written to report.json), with ``files`` listing what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: Dict[str, Any] = {"schema": SCHEMA,
                              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "host": dict(host), "device": dict(device) if device else None, "source": source,
                              "models": [dict(m) for m in models]}
    pngs = _plots(report, series or [{} for _ in models], out) if plots else []
    (out / "report.md").write_text(_markdown(report, pngs))
    report["files"] = ["report.json", "report.md", *[Path(p).name for p in pngs]]
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_report(path: "str | Path") -> Dict[str, Any]:
    """Read a ``report.json`` (a file or the folder holding it).

    Raises:
        ValueError: not a profile report (wrong or missing ``schema``) or unreadable JSON.
        FileNotFoundError: no such file.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: expected a JSON profile report, got invalid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{p}: expected a profile report with schema {SCHEMA!r}, got {got!r}")
    return data


def compare_reports(paths: Sequence["str | Path"], out_dir: Optional["str | Path"] = None) -> str:
    """Put several reports side by side (one row per device/model and stage); returns Markdown.

    With ``out_dir``, also writes ``compare.md`` and, with matplotlib, ``compare.png`` (grouped p50/p90
    bars of the total per run).
    """
    entries, labels = [], []
    for path in paths:
        rep = load_report(path)
        dev = (rep.get("device") or {}).get("name") or "host"
        for m in rep["models"]:
            entries.append(m)
            labels.append(f"{dev} / {Path(str(m['model'])).name} ({(rep['host'].get('cpu_model') or '?')[:28]})")
    text = "# EdgeSDK profile comparison\n\n" + markdown_table(entries, labels) + "\n"
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(9, 1.5 + 0.5 * len(labels)))
            y = np.arange(len(labels))
            for k, (q, off) in enumerate((("p50_ms", -0.2), ("p90_ms", 0.2))):
                ax.barh(y + off, [(e["stages"].get("total") or {}).get(q) or 0 for e in entries], height=0.4,
                        label=q.replace("_ms", ""))
            ax.set_yticks(y, labels, fontsize=8)
            ax.set_xlabel("total latency per frame (ms)")
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / "compare.png", dpi=110)
            plt.close(fig)
        except ImportError:
            logger.info("matplotlib not installed: compare.png skipped")
    return text
