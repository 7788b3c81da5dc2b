"""Run a detector on a camera (or any source) and show the annotated video, or save it to a file.

    python examples/detect_camera.py --model yolo_nano.onnx --source 0             # USB camera, window
    python examples/detect_camera.py --model yolo_nano.onnx --source csi://0 --save out.mp4
    python examples/detect_camera.py --model yolo_nano.onnx --frames 100           # synthetic://shapes

On the synthetic source every frame carries its ground truth, so the script also prints how many of the
true objects were found (IoU >= 0.5): a live accuracy check on the device itself.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import sdk
from sdk import annotate

#: The INT8 YOLO-nano shipped for the demo (built by `python -m converters.demo_models`).
SHIPPED = Path(__file__).resolve().parent / "models" / "yolo_nano_int8.tflite"


def recall_at_iou(detections: "sdk.Detections", truth: "sdk.Detections", iou: float = 0.5) -> tuple:
    """(true objects found, true objects) with a same-class detection at IoU >= ``iou`` (greedy)."""
    if len(truth) == 0:
        return 0, 0
    if len(detections) == 0:
        return 0, len(truth)
    overlap = sdk.ops.box_iou(truth.xyxy, detections.xyxy)
    overlap[truth.class_id[:, None] != detections.class_id[None, :]] = 0.0
    found, used = 0, set()
    for t in np.argsort(-overlap.max(1)):
        j = int(np.argmax(overlap[t]))
        if overlap[t, j] >= iou and j not in used:
            used.add(j)
            found += 1
    return found, len(truth)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED), help="detector (.onnx, .tflite, OpenVINO .xml) (default: the shipped INT8 YOLO-nano)")
    parser.add_argument("--source", default="synthetic://shapes", help="camera index, /dev/videoN, csi://N, rtsp://..., file")
    parser.add_argument("--frames", type=int, default=None, help="stop after N frames (default: until the source ends)")
    parser.add_argument("--device", help="device config (rpi5, jetson-orin-nano, x86-cpu, or a YAML path)")
    parser.add_argument("--save", help="write the annotated video here (.mp4)")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold")
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames < 1:
        parser.error(f"--frames: expected an int >= 1, got {args.frames}")

    model = sdk.load(args.model, device=args.device, **({"conf_threshold": args.conf} if args.conf else {}))
    if model.task != "detect":
        print(f"expected a detection model, got task {model.task!r} ({args.model})", file=sys.stderr)
        return 2
    show = annotate.has_display()
    video = None
    found = total = 0
    with sdk.Pipeline(args.source, model, max_frames=args.frames) as pipeline:
        print(f"source {args.source}: backend {pipeline.source.backend}; model {model}")
        if args.save:
            video = annotate.VideoWriter(args.save, fps=pipeline.source.fps or 30.0)
        for frame, dets in pipeline:
            truth = frame.ground_truth()
            if truth is not None:
                f, t = recall_at_iou(dets, truth)
                found, total = found + f, total + t
            if video is not None or show:
                canvas = annotate.draw(frame.image, dets, fps=pipeline.stats()["fps"], age_ms=frame.meta["age_ms"])
                if video is not None:
                    video.write(canvas)
                if show and annotate.show(canvas, "detect_camera") in (ord("q"), 27):
                    break
            if not show and frame.index % 30 == 0:
                print(f"frame {frame.index}: {len(dets)} objects, age {frame.meta['age_ms']:.1f} ms")
        stats = pipeline.stats()
    if video is not None:
        video.close()
        print(f"saved {video.frames} frames to {args.save}")
    annotate.close_windows()
    lat = stats["latency_ms"]
    print(f"{stats['frames']} frames at {stats['fps'] or 0:.1f} FPS; infer p50 {lat['infer']['p50']} ms, "
          f"frame age p50/p90 {stats['age_ms']['p50']}/{stats['age_ms']['p90']} ms, dropped {stats['dropped']}")
    if total:
        print(f"ground truth: found {found} of {total} objects (recall@0.5 = {found / total:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
