"""``report.json`` and ``report.md``: one row per artifact (format, precision, size, metrics, drop, verdict,
p50 latency through ``sdk``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

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


#: INT8 latency / FP32 latency at or below this counts as "INT8 is faster" (issue target).
INT8_SPEEDUP_TARGET = 0.8


def int8_comparison(rows: List[Mapping[str, Any]], host: Mapping[str, Any],
                    interleaved: Optional[Mapping[str, Mapping[str, float]]] = None) -> List[Dict[str, Any]]:
    """Per format with both an FP32 and an INT8 row: size and p50 latency ratios, and when INT8 is not
    faster, why (from what the runtime reported and this host's CPU).

    Args:
        rows: the report rows.
        host: :func:`converters.export.host.host_info`.
        interleaved: format → ``{"fp32": p50_ms, "int8": p50_ms}`` timed in alternating rounds
            (:func:`converters.export.latency.interleaved_p50`); preferred over the rows' own latencies,
            which were measured minutes apart.

    Returns:
        ``[{"format", "size_ratio", "latency_ratio", "fp32_p50_ms", "int8_p50_ms", "interleaved", "faster",
        "why"}]``.
    """
    by = {(r["format"], r["precision"]): r for r in rows}
    out = []
    for fmt in sorted({r["format"] for r in rows}):
        fp32, int8 = by.get((fmt, "fp32")), by.get((fmt, "int8"))
        if not fp32 or not int8:
            continue
        pair = (interleaved or {}).get(fmt)
        if pair:
            l32, l8 = pair.get("fp32"), pair.get("int8")
        else:
            l32, l8 = (fp32.get("latency") or {}).get("p50_ms"), (int8.get("latency") or {}).get("p50_ms")
        ratio = round(l8 / l32, 3) if l32 and l8 else None
        faster = ratio is not None and ratio <= INT8_SPEEDUP_TARGET
        out.append({"format": fmt, "size_ratio": round(int8["bytes"] / fp32["bytes"], 3), "latency_ratio": ratio,
                    "fp32_p50_ms": l32, "int8_p50_ms": l8, "interleaved": bool(pair), "faster": faster,
                    "why": None if faster else _why_not_faster(fmt, fp32, int8, host)})
    return out


def _why_not_faster(fmt: str, fp32: Mapping[str, Any], int8: Mapping[str, Any], host: Mapping[str, Any]) -> str:
    dot = host.get("int8_dot")
    if host.get("machine") in ("x86_64", "AMD64") and dot in (None, "", "none", "-"):
        return ("this CPU has no int8 dot-product instructions (AVX512-VNNI / AVX-VNNI / AMX): int8 convolutions "
                "run as AVX2 multiply-add sequences, barely faster than FP32 FMA, plus the quantise/dequantise steps")
    if fmt == "tflite":
        i8, f32 = int8.get("backend_info") or {}, fp32.get("backend_info") or {}
        if "delegated_partitions" in i8:
            return (f"XNNPACK took the INT8 graph as {i8['delegated_partitions']} partitions (FP32: "
                    f"{f32.get('delegated_partitions', '?')}): the ops it has no int8 kernel for (here e.g. the "
                    f"squeeze-excite means and multiplies) run on TFLite's built-in kernels between them")
        return "the INT8 graph was not fully delegated to XNNPACK"
    if fmt == "onnx":
        return ("ONNX Runtime fuses only convolutions / matrix multiplies into int8 kernels; every float op "
                "between them (hard-swish, squeeze-excite multiply, the float output tail) costs a "
                "dequantize/quantize pair, which on a small network eats the int8 gain")
    if fmt == "openvino":
        return "OpenVINO's INT8 kernels were not faster than its FP32 ones on this graph here"
    return "the INT8 model was not faster on this host's runtime"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


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
    if summary.get("float_depth") is not None:
        depth = summary["float_depth"]
        lines.append("- INT8 float tail: " + (f"each output back to its {_ordinal(depth)} weighted layer kept in "
                                                  f"float" if depth else "none (everything quantised)"))
    host = summary.get("host") or {}
    if host:
        lines.append(f"- host: {host.get('cpu', '?')} ({host.get('cores', '?')} cores; int8 dot-product: "
                     f"{host.get('int8_dot', '?')})")
    if summary.get("weights_sha256"):
        lines.append(f"- weights: sha256 `{summary['weights_sha256']}`")
    lines += ["", markdown_table(rows), ""]
    comparison = summary.get("int8_vs_fp32") or []
    if comparison:
        lines += ["INT8 vs FP32 on this host (p50 through `sdk`; FP32 and INT8 timed in alternating rounds):", ""]
        for c in comparison:
            verdict = "faster" if c["faster"] else f"not faster (target <= {INT8_SPEEDUP_TARGET}): {c['why']}"
            lines.append(f"- {c['format']}: size x{c['size_ratio']}, latency x{c['latency_ratio']} "
                         f"({c['int8_p50_ms']} vs {c['fp32_p50_ms']} ms): {verdict}")
        lines.append("")
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
