"""``edgesdk profile``: per-stage latency of whole runs, per device config, with live accuracy.

::

    edgesdk profile yolo.onnx yolo_int8.tflite --device rpi5 --source synthetic --frames 300 --out prof/
    edgesdk profile --compare prof_pi/report.json prof_jetson/report.json --out cmp/

For each model: open the source, run ``--warmup`` frames unmeasured, then ``--frames`` measured ones;
write ``report.json`` / ``report.md`` / PNG plots into ``--out`` and print the per-stage table. When
the source carries ground truth (``synthetic://shapes``), detection mAP is computed live too.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["add_parser", "run_profile", "profile_models"]

logger = logging.getLogger(__name__)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``profile`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("profile", help="per-stage latency (p50/p90/p99) of models on a source, per device config")
    p.add_argument("models", nargs="*", help="model files (.onnx, .tflite, OpenVINO .xml)")
    p.add_argument("--device", help="device config name or YAML path (picks backend and options)")
    p.add_argument("--backend", choices=["onnxruntime", "tflite", "openvino"])
    p.add_argument("--source", default="synthetic", help="frame source URI, or 'synthetic' (default)")
    p.add_argument("--frames", type=int, default=300, help="measured frames per model (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured frames first (default 20)")
    p.add_argument("--out", default="profile", help="output folder (default ./profile)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-eval", action="store_true", help="skip live accuracy on sources with ground truth")
    p.add_argument("--save-video", action="store_true", help="write an annotated MP4 per model into --out")
    p.add_argument("--compare", nargs="+", metavar="REPORT", help="compare report.json files side by side")
    p.set_defaults(func=run_profile)
    return p


def _source_uri(source: str) -> str:
    return "synthetic://shapes" if source == "synthetic" else source


def _device_entry(device: Optional[str]) -> Optional[Dict[str, Any]]:
    if device is None:
        return None
    from sdk.device import load_device_config, matches_host

    cfg = load_device_config(device)
    return {"name": cfg.name, "matches_host": matches_host(cfg), "config": dataclasses.asdict(cfg),
            "latency_budget_ms": cfg.latency_budget_ms}


def profile_models(models: List[str], *, source: str = "synthetic", device: Optional[str] = None,
                   backend: Optional[str] = None, frames: int = 300, warmup: int = 20, out: str = "profile",
                   plots: bool = True, evaluate: bool = True, progress: bool = True,
                   save_video: bool = False) -> Dict[str, Any]:
    """Profile each model on a fresh source and write the report; returns the report dict.

    With ``save_video``, each model's annotated frames (boxes, labels, scores, FPS) go to
    ``out/<model file name>.mp4``; drawing and encoding happen outside the timed stages.

    Raises:
        SDKError: a model or the source cannot be opened (the message says why).
        ValueError: frames < 1 or warmup < 0.
    """
    import sdk
    from sdk.hostinfo import fingerprint
    from sdk.metrics import DetectionAccumulator
    from sdk.profiler import Profiler, profile
    from sdk.report import write_report

    if frames < 1:
        raise ValueError(f"--frames: expected >= 1, got {frames}")
    if warmup < 0:
        raise ValueError(f"--warmup: expected >= 0, got {warmup}")
    uri = _source_uri(source)
    dev = _device_entry(device)
    entries, series = [], []
    for path in models:
        model = sdk.load(path, device=device, backend=backend)
        with model:
            acc = None
            eval_note = None if model.task == "detect" else f"not a detector ({model.task})"
            if evaluate and model.task == "detect":
                acc = DetectionAccumulator(max(1, len(model.labels)))
            checked: List[bool] = []

            def on_result(frame: Any, result: Any) -> None:
                nonlocal acc, eval_note
                gt_boxes = getattr(frame, "boxes", None)
                if acc is None or gt_boxes is None or prof.frames == 0:
                    return
                if not checked:                       # the model must name the source's classes
                    checked.append(True)
                    source_labels = tuple((getattr(frame, "meta", None) or {}).get("labels") or ())
                    if source_labels and tuple(model.labels[:len(source_labels)]) != source_labels:
                        eval_note = (f"model labels {list(model.labels)[:6]} do not match the source's "
                                     f"{list(source_labels)[:6]}: accuracy not computed")
                        logger.warning("%s", eval_note)
                        acc = None
                        return
                acc.add(result.xyxy, result.confidence, result.class_id, gt_boxes, getattr(frame, "class_ids"))

            prof = Profiler(warmup=warmup)
            video = _VideoOut(Path(out) / f"{Path(path).name}.mp4", prof) if save_video else None

            def on_frame(frame: Any, result: Any) -> None:
                on_result(frame, result)
                if video is not None:
                    video.write(frame, result)

            try:
                with sdk.open_source(uri) as src:
                    profile(model, src, count=frames, profiler=prof, on_result=on_frame, progress=progress)
            finally:
                if video is not None:
                    video.close()
            summ = prof.summary()
            entry: Dict[str, Any] = {"model": str(path), "backend": model.describe().get("backend"),
                                     "precision": model.contract.precision, "task": model.task}
            entry.update(summ)
            entry["accuracy"] = None
            if acc is not None and not acc.images and eval_note is None:
                eval_note = "the source carries no ground truth"
            if acc is not None and acc.images:
                res = acc.compute()
                entry["accuracy"] = {"map": res["map"], "map50": res["map50"], "images": res["images"],
                                     "ground_truth": res["ground_truth"], "protocol": "COCO (sdk.metrics)"}
            entry["accuracy_note"] = eval_note if evaluate else "disabled (--no-eval)"
            budget = (dev or {}).get("latency_budget_ms")
            entry["budget_ms"] = budget
            p90 = (summ["stages"].get("total") or {}).get("p90_ms")
            entry["within_budget"] = None if budget is None or p90 is None else bool(p90 <= budget)
            if video is not None and video.frames:
                entry["video"] = str(video.path)
            entries.append(entry)
            series.append(prof.series())
    return write_report(out, entries, host=fingerprint(), device=dev, source=uri, series=series, plots=plots)


class _VideoOut:
    """Annotated MP4 of a profiled run (boxes, labels, scores, FPS, frame age)."""

    def __init__(self, path: Path, profiler: Any, fps: float = 30.0) -> None:
        from sdk.annotate import VideoWriter

        self.path = path
        self._prof = profiler
        self._writer = VideoWriter(path, fps=fps)

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, frame: Any, result: Any) -> None:
        from sdk.annotate import draw

        image = getattr(frame, "image", frame)
        stats = self._prof.stages["total"]
        fps = 1e3 / stats.mean if stats.count and stats.mean > 0 else None
        age = self._prof.frame_age.recent()
        self._writer.write(draw(image, result, fps=fps, age_ms=float(age[-1]) if len(age) else None))

    def close(self) -> None:
        self._writer.close()


def run_profile(args: argparse.Namespace) -> int:
    """``edgesdk profile`` entry: returns the exit status."""
    from sdk.report import compare_reports

    if args.compare:
        if args.models:
            print("edgesdk profile: give either MODEL... or --compare REPORT..., not both")
            return 2
        try:
            text = compare_reports(args.compare, args.out)
        except (OSError, ValueError) as exc:
            print(f"edgesdk profile --compare: {exc}")
            return 1
        print(text)
        print(f"wrote {Path(args.out) / 'compare.md'}")
        return 0
    if not args.models:
        print("edgesdk profile: expected at least one MODEL (or --compare REPORT...)")
        return 2
    try:
        report = profile_models(args.models, source=args.source, device=args.device, backend=args.backend,
                                frames=args.frames, warmup=args.warmup, out=args.out, plots=not args.no_plots,
                                evaluate=not args.no_eval, save_video=args.save_video)
    except ValueError as exc:
        print(f"edgesdk profile: {exc}")
        return 2
    print_report(report, args.out)
    return 0


def print_report(report: Dict[str, Any], out: "str | Path") -> None:
    """Print each model's per-stage table, live accuracy and budget verdict, and where the report is."""
    from sdk.report import stage_table

    dev = report.get("device") or {}
    for entry in report["models"]:
        print(f"\n{entry['model']}  [{(entry.get('backend') or {}).get('backend', '?')}, "
              f"{entry.get('precision') or '?'}]  {entry['frames']} frames, {entry.get('fps') or 0:.1f} FPS")
        print(stage_table(entry))
        acc = entry.get("accuracy")
        if acc:
            print(f"live accuracy on {acc['images']} frames: mAP50 {acc['map50']:.3f}  mAP@[.5:.95] {acc['map']:.3f}")
        if entry.get("within_budget") is not None:
            print(f"device budget {entry['budget_ms']:g} ms: p90 total "
                  f"{'within' if entry['within_budget'] else 'OVER'} budget")
        if entry.get("video"):
            print(f"annotated video: {entry['video']}")
    if dev.get("name") and not dev.get("matches_host"):
        print(f"\nnote: this host does not match device config {dev['name']!r}; these are this host's numbers")
    print(f"\nreport: {Path(out) / 'report.md'} ({', '.join(report['files'])})")
