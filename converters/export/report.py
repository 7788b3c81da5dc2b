"""``report.json`` and ``report.md``: one row per artifact (format, precision, size, metrics, drop, verdict,
p50 latency through ``sdk``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping

__all__ = ["write_reports", "markdown_table"]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def markdown_table(rows: List[Mapping[str, Any]]) -> str:
    """The report rows as a Markdown table."""
    head = ("| artifact | format | precision | size | metric | reference | converted | drop | max drop | gate | "
            "parity | p50 ms |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        gate = r.get("gate") or {}
        parity = r.get("parity")
        parity_s = "-" if parity is None else ("ok" if parity.get("passed") else f"FAIL ({parity.get('detail')})")
        lat = (r.get("latency") or {}).get("p50_ms")
        lines.append("| " + " | ".join([
            r["file"], r["format"], r["precision"], _size(r["bytes"]), gate.get("metric", "-"),
            _fmt(gate.get("reference")), _fmt(gate.get("converted")), _fmt(gate.get("drop")),
            _fmt(gate.get("max_drop"), 3), r["verdict"].upper() if r["verdict"] == "rejected" else r["verdict"],
            parity_s, _fmt(lat, 2)]) + " |")
    return "\n".join(lines)


def write_reports(out_dir: Path, summary: Mapping[str, Any]) -> Dict[str, Path]:
    """Write ``report.json`` (``summary`` as is) and ``report.md`` into ``out_dir``.

    Args:
        out_dir: the export folder.
        summary: ``{"model", "task", "calibration", "validation", "host", "rows": [...], "rejected": [...]}``.

    Returns:
        ``{"json": path, "md": path}``.
    """
    out_dir = Path(out_dir)
    js = out_dir / "report.json"
    js.write_text(json.dumps(dict(summary), indent=2, default=str) + "\n", encoding="utf-8")
    rows = list(summary.get("rows", []))
    lines = [f"# Export report: {summary.get('model', '?')}", ""]
    lines.append(f"- task: {summary.get('task')}; calibration: {summary.get('calibration')}; "
                 f"validation: {summary.get('validation')}")
    host = summary.get("host") or {}
    if host:
        lines.append(f"- host: {host.get('cpu', '?')} ({host.get('cores', '?')} cores; int8 dot-product: "
                     f"{host.get('int8_dot', '?')})")
    lines += ["", markdown_table(rows), ""]
    for r in rows:
        ac = r.get("accuracy_control")
        if ac:
            first = ac.get("first_gate") or {}
            lines.append(f"- {r['file']}: plain INT8 failed the gate ({first.get('metric')} drop "
                         f"{_fmt(first.get('drop'))}); re-quantised with NNCF accuracy control on {ac.get('tuning')} "
                         f"({ac.get('evaluations')} metric evaluations, {ac.get('seconds')} s), then gated again")
        if r["verdict"] == "rejected":
            lines.append(f"- **rejected** {r['file']}: {r.get('reason')}")
    for w in summary.get("warnings", []):
        lines.append(f"- warning: {w}")
    md = out_dir / "report.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"json": js, "md": md}
