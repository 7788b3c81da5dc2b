"""The ``edgesdk`` command line.

Subcommands available in this release:

* ``edgesdk devices`` — list device configs and say which one matches this host.
* ``edgesdk info MODEL`` — load a model and print its contract, backend and input/output tensors.
* ``edgesdk predict MODEL IMAGE...`` — run a model on image files and print JSON results.
* ``edgesdk run MODEL --source URI`` — run a model live on a camera, stream, file or the synthetic scene
  (``--save out.mp4``, ``--json`` lines, ``--show`` a window, ``--frames N``); prints live stats at the end.
* ``edgesdk profile MODEL... --device CFG --source URI --out DIR`` — per-stage latency report
  (``--compare A.json B.json`` puts reports side by side).
* ``edgesdk demo [--source URI]`` — the shipped INT8 YOLO-nano: annotated video + latency report.

Host-side commands (``convert``, ``train``, ``eval``) live in ``converters`` and need
``pip install "edgesdk[convert]"``; the CLI says so when they are missing.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional, Sequence

__all__ = ["main", "build_parser"]

_HOST_COMMANDS = {"convert": "converters.export.cli:main", "train": "converters.train.cli:main",
                  "eval": "converters.evaluation.cli:main", "benchmark": "converters.benchmark:main"}


def _cmd_devices(args: argparse.Namespace) -> int:
    from sdk.device import host_facts, list_device_configs, load_device_config, matches_host

    facts = host_facts()
    rows = []
    for name, path in list_device_configs().items():
        cfg = load_device_config(path)
        rows.append({"name": name, "matches_host": matches_host(cfg, facts), "arch": cfg.arch,
                     "backends": [b.name for b in cfg.backends], "precision": cfg.precision,
                     "latency_budget_ms": cfg.latency_budget_ms, "description": cfg.description, "path": str(path)})
    if args.json:
        print(json.dumps({"host": facts, "devices": rows}, indent=2))
        return 0
    print(f"host: {facts['machine']} | cpu: {facts['cpu_model'] or '?'} | "
          f"board: {facts['device_tree_model'] or '-'} | L4T: {facts['nv_tegra_release'][:40] or '-'}")
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        mark = "*" if r["matches_host"] else " "
        print(f"{mark} {r['name']:<{width}}  {r['arch']:<8} {','.join(r['backends']):<30} {r['precision']:<5} "
              f"budget {r['latency_budget_ms']:g} ms")
    if not any(r["matches_host"] for r in rows):
        print("no device config matches this host; pass --device PATH.yaml with your own")
    else:
        print("* matches this host")
    return 0


def _load(args: argparse.Namespace):
    import sdk

    return sdk.load(args.model, device=args.device, backend=args.backend)


def _cmd_info(args: argparse.Namespace) -> int:
    model = _load(args)
    with model:
        info = model.describe()
        info["inputs"] = [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype),
                           "quantization": t.quantization} for t in model.backend.inputs]
        info["outputs"] = [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype),
                            "quantization": t.quantization} for t in model.backend.outputs]
        info["contract"] = model.contract.to_dict()
        anchors = info["contract"]["decoder"].get("anchors")
        if anchors is not None and not args.full:
            info["contract"]["decoder"]["anchors"] = f"<{len(anchors)} anchors; --full shows them>"
        print(json.dumps(info, indent=2, default=str))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import cv2

    model = _load(args)
    overrides = {k: v for k, v in (("conf_threshold", args.conf), ("iou_threshold", args.iou)) if v is not None}
    status = 0
    with model:
        for image in args.images:
            frame = cv2.imread(image, cv2.IMREAD_UNCHANGED)
            if frame is None:
                print(json.dumps({"image": image, "error": "not a readable image file"}))
                status = 1
                continue
            result = model(frame, **overrides)
            out = {"image": image, "timings_ms": {k: round(v, 3) for k, v in model.last_timings.items()}}
            if hasattr(result, "to_dicts"):
                out["results"] = result.to_dicts()
            else:
                out["embedding"] = [round(float(v), 6) for v in result.vector]
            print(json.dumps(out))
    return status


def _cmd_run(args: argparse.Namespace) -> int:
    import sdk
    from sdk import annotate
    from sdk.sources import parse_policy

    if args.frames is not None and args.frames < 1:
        print(f"edgesdk run: --frames: expected an int >= 1, got {args.frames}", file=sys.stderr)
        return 2
    if args.policy is not None:
        try:
            parse_policy(args.policy)
        except ValueError as exc:
            print(f"edgesdk run: --policy: {exc}", file=sys.stderr)
            return 2
    model = _load(args)
    options = {}
    if args.realtime:
        options["realtime"] = True
    try:
        pipeline = sdk.Pipeline(args.source, model, policy=args.policy, max_frames=args.frames, source_options=options)
    except BaseException:
        model.close()
        raise
    jsonl = annotate.JsonLinesWriter(sys.stdout) if args.json else None
    video = None
    show = args.show and annotate.has_display()
    if args.show and not show:
        print("edgesdk run: --show ignored, no display (DISPLAY is not set)", file=sys.stderr)
    try:
        with pipeline:
            if args.save:
                video = annotate.VideoWriter(args.save, fps=pipeline.source.fps or 30.0)
            for frame, result in pipeline:
                if jsonl is not None:
                    jsonl.write(frame, result)
                if video is not None or show:
                    canvas = annotate.draw(frame.image, result, fps=pipeline.stats()["fps"],
                                           age_ms=frame.meta.get("age_ms"))
                    if video is not None:
                        video.write(canvas)
                    if show and annotate.show(canvas) in (ord("q"), 27):
                        break
    except KeyboardInterrupt:
        pass
    finally:
        if video is not None:
            video.close()
        if show:
            annotate.close_windows()
        model.close()
    stats = pipeline.stats()
    summary = {"frames": stats["frames"], "fps": stats["fps"], "backend": stats["backend"],
               "age_ms": stats["age_ms"], "latency_ms": {k: v for k, v in stats["latency_ms"].items() if v["p50"] is not None},
               "dropped": stats["dropped"], "reconnects": stats["reconnects"]}
    if args.save:
        summary["saved"] = args.save
    print(json.dumps({"summary": summary}), file=sys.stderr if args.json else sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesdk", description="EdgeSDK: run vision models on edge devices.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("devices", help="list device configs and the one matching this host")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_devices)

    for name, func, helptext in (("info", _cmd_info, "show a model's contract, backend and tensors"),
                                 ("predict", _cmd_predict, "run a model on image files, print JSON lines")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("model", help="model file (.onnx, .tflite, OpenVINO .xml)")
        p.add_argument("--device", help="device config name or YAML path")
        p.add_argument("--backend", choices=["onnxruntime", "tflite", "openvino"])
        p.set_defaults(func=func)
        if name == "info":
            p.add_argument("--full", action="store_true", help="include SSD anchors in the printed contract")
        else:
            p.add_argument("images", nargs="+")
            p.add_argument("--conf", type=float)
            p.add_argument("--iou", type=float)
    from sdk.profile_cli import add_parser as add_profile_parser

    add_profile_parser(sub)
    from sdk.demo import add_parser as add_demo_parser

    add_demo_parser(sub)
    p = sub.add_parser("run", help="run a model live on a source (camera, RTSP, file, synthetic://shapes)")
    p.add_argument("model", help="model file (.onnx, .tflite, OpenVINO .xml)")
    p.add_argument("--source", required=True, help="0, /dev/video0, csi://0, rtsp://..., gst:..., file, folder, "
                                                   "synthetic://shapes")
    p.add_argument("--device", help="device config name or YAML path")
    p.add_argument("--backend", choices=["onnxruntime", "tflite", "openvino"])
    p.add_argument("--save", metavar="OUT.mp4", help="save the annotated video")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame on stdout")
    p.add_argument("--show", action="store_true", help="show a window (when a display exists)")
    p.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--policy", help="latest (live default), queue(N) or every (file default)")
    p.add_argument("--realtime", action="store_true", help="pace files and synthetic:// at their frame rate")
    p.set_defaults(func=_cmd_run)
    for name in _HOST_COMMANDS:
        p = sub.add_parser(name, help=f"{name} models on the host (needs edgesdk[convert])", add_help=False)
        p.set_defaults(func=None, host_command=name)
    return parser


def _run_host_command(name: str, argv: Sequence[str]) -> int:
    import importlib

    module_name, func_name = _HOST_COMMANDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if missing.split(".")[0] in ("converters", "sdk"):
            print(f"edgesdk {name}: not available in this version of edgesdk", file=sys.stderr)
            return 2
        print(f"edgesdk {name}: needs the converter dependencies ({missing} is missing); install them with:\n"
              f'  pip install "edgesdk[convert]"', file=sys.stderr)
        return 2
    except AttributeError:
        print(f"edgesdk {name}: not available in this version of edgesdk", file=sys.stderr)
        return 2
    return int(func(list(argv)) or 0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``edgesdk`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _HOST_COMMANDS:
        return _run_host_command(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    from sdk.errors import SDKError

    try:
        return args.func(args)
    except SDKError as exc:
        print(f"edgesdk {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
