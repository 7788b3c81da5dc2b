"""``edgesdk benchmark FAMILY|CHECKPOINT --device CFG``: every format x precision, accuracy beside speed.

::

    edgesdk benchmark yolo_nano --weights converters/zoo/weights/yolo_nano_shapes.pt --device x86-cpu
    edgesdk benchmark runs/cls/best.pt --to onnx,openvino --precision fp32,int8 --frames 200 --out bench/

Like ``yolo benchmark``, but honest: every artifact is converted by :func:`converters.export`
(FP32 checked against PyTorch, FP16/INT8 gated), its metric is computed on a held-out validation set
(``--val-count`` images of the ``val`` split by default, never a handful), and its latency is profiled
end to end (capture + preprocess + infer + postprocess, :mod:`sdk.profiler`) *and* for ``infer``
alone, on fresh frames from ``synthetic://shapes``, through the backend the device config picks.
Writes ``benchmark.json`` and ``benchmark.md`` (one table) next to the artifacts.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["main", "build_parser", "benchmark_table"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgesdk benchmark",
                                description="Convert a model to every format x precision and put size, held-out "
                                            "accuracy and profiled latency side by side.")
    from converters.export.cli import add_model_arguments

    add_model_arguments(p, out_required=False, val_count=300)
    p.add_argument("--device", help="device config name or YAML path (picks backends and options)")
    p.add_argument("--frames", type=int, default=100, help="profiled frames per artifact (default 100)")
    p.add_argument("--warmup", type=int, default=10)
    return p


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def benchmark_table(rows: List[Dict[str, Any]]) -> str:
    """Markdown table: format, precision, size, metric, drop, verdict, latencies, FPS."""
    lines = ["| format | precision | backend | size MB | metric | value | drop | verdict | e2e p50 ms | e2e p90 ms "
             "| infer p50 ms | infer p90 ms | FPS |",
             "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['precision']} | {r.get('backend') or '-'} | {r['size_mb']:.2f} | "
                     f"{r.get('metric') or '-'} | {_fmt(r.get('value'), 4)} | {_fmt(r.get('drop'), 4)} | "
                     f"{r['verdict']} | {_fmt(r.get('e2e_p50_ms'))} | {_fmt(r.get('e2e_p90_ms'))} | "
                     f"{_fmt(r.get('infer_p50_ms'))} | {_fmt(r.get('infer_p90_ms'))} | {_fmt(r.get('fps'), 1)} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``edgesdk benchmark``; 0 when every artifact converted and passed, 1 when one was rejected,
    2 for bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from sdk.errors import SDKError
    from sdk.profile_cli import profile_models

    from converters.export.cli import _build
    from converters.export.pipeline import export

    if args.frames < 1:
        print(f"edgesdk benchmark: --frames: expected >= 1, got {args.frames}", file=sys.stderr)
        return 2
    try:
        model = _build(args)
        calib = args.calib if args.calib == "synthetic" else Path(args.calib)
        val = args.val if args.val == "synthetic" else Path(args.val)
        result = export(model, to=args.to, precision=args.precision, out=args.out, calib=calib, val=val,
                        force=args.force, calib_count=args.calib_count, val_count=args.val_count, latency_runs=5)
    except (SDKError, ValueError, OSError) as exc:
        print(f"edgesdk benchmark: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    rows = []
    for row in result.rows:
        gate = row.get("gate") or {}
        path = args.out / row["file"]
        entry: Dict[str, Any] = {"format": row.get("format"), "precision": row.get("precision"), "file": row["file"],
                                 "size_mb": row["bytes"] / 1e6, "metric": gate.get("metric"),
                                 "value": gate.get("converted"), "reference": gate.get("reference"),
                                 "drop": gate.get("drop"), "verdict": row["verdict"]}
        prof = profile_models([str(path)], source="synthetic://shapes", device=args.device, frames=args.frames,
                              warmup=args.warmup, out=str(args.out / "profiles" / path.stem), plots=False,
                              evaluate=False, progress=False)["models"][0]
        st = prof["stages"]
        entry.update({"backend": (prof.get("backend") or {}).get("backend"),
                      "e2e_p50_ms": st["total"]["p50_ms"], "e2e_p90_ms": st["total"]["p90_ms"],
                      "infer_p50_ms": st["infer"]["p50_ms"], "infer_p90_ms": st["infer"]["p90_ms"],
                      "fps": prof.get("fps")})
        rows.append(entry)
        print(f"{entry['verdict']:>9}  {entry['file']:<28} {entry['size_mb']:7.2f} MB  {entry['metric']}: "
              f"{_fmt(entry['value'], 4)}  e2e p50 {_fmt(entry['e2e_p50_ms'])} ms  infer p50 "
              f"{_fmt(entry['infer_p50_ms'])} ms")
    from sdk.hostinfo import fingerprint

    doc = {"model": args.model, "device": args.device, "host": fingerprint(), "val_count": args.val_count,
           "frames": args.frames, "rows": rows}
    (args.out / "benchmark.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = (f"# edgesdk benchmark: {args.model}\n\nHost: {doc['host'].get('cpu_model')} "
          f"({doc['host'].get('cores')} cores); device config: {args.device or '-'}; metric on {args.val_count} "
          f"held-out images; latency over {args.frames} frames from synthetic://shapes (1280x720), warm-up "
          f"excluded. e2e = capture + preprocess + infer + postprocess.\n\n{benchmark_table(rows)}\n")
    (args.out / "benchmark.md").write_text(md)
    print(f"\n{benchmark_table(rows)}\n\nwrote {args.out / 'benchmark.md'} and benchmark.json")
    return 1 if result.rejected else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
