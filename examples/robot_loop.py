"""A fixed-rate control loop (50 Hz) that uses the newest detection without ever waiting for inference.

    python examples/robot_loop.py --model yolo_nano.tflite --source csi://0 --rate 50 --frames 500

Inference runs on its own thread inside ``sdk.Pipeline``; each control tick reads ``pipeline.latest()``,
which returns at once. A tick is *fresh* when a new result arrived since the previous tick, *stale* when
it reuses the last one (inference slower than the loop), *empty* before the first result. The loop
reports those counts, the age of the result it acted on, and how late its ticks ran.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import sdk

#: The INT8 YOLO-nano shipped for the demo (built by `python -m converters.demo_models`).
SHIPPED = Path(__file__).resolve().parent / "models" / "yolo_nano_int8.tflite"


def control(result, width: int) -> float:
    """Stand-in for the robot's controller: steer towards the most confident object (-1 left .. 1 right)."""
    if result is None or not isinstance(result, sdk.Detections) or len(result) == 0:
        return 0.0
    best = int(np.argmax(result.confidence))
    x1, _, x2, _ = result.xyxy[best]
    return float(np.clip((x1 + x2) / width - 1.0, -1.0, 1.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED), help="model file (.onnx, .tflite, OpenVINO .xml) (default: the shipped INT8 YOLO-nano)")
    parser.add_argument("--source", default="synthetic://shapes?realtime=1&size=640x480",
                        help="camera/stream URI (default: the synthetic scene paced at 30 fps, like a camera)")
    parser.add_argument("--frames", type=int, default=250, help="control ticks to run (default 250 = 5 s at 50 Hz)")
    parser.add_argument("--rate", type=float, default=50.0, help="control loop rate in Hz")
    parser.add_argument("--device", help="device config name or YAML path")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.rate <= 0:
        parser.error("--frames must be >= 1 and --rate > 0")

    period = 1.0 / args.rate
    counts = {"fresh": 0, "stale": 0, "empty": 0}
    ages, lateness, call_us = [], [], []
    last_index = None
    with sdk.Pipeline(args.source, args.model, device=args.device) as pipeline:
        t_next = time.monotonic()
        for _ in range(args.frames):
            t0 = time.perf_counter()
            latest = pipeline.latest()               # never blocks
            call_us.append((time.perf_counter() - t0) * 1e6)
            now = time.monotonic()
            if latest is None:
                counts["empty"] += 1
                command = control(None, 1)
            else:
                frame, result = latest
                counts["fresh" if frame.index != last_index else "stale"] += 1
                last_index = frame.index
                ages.append((now - frame.t_capture) * 1e3)
                command = control(result, frame.image.shape[1])
            _ = command                               # robot.send(command)
            t_next += period
            delay = t_next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                lateness.append(-delay * 1e3)
        stats = pipeline.stats()
    ticks = args.frames
    print(f"{ticks} ticks at {args.rate:g} Hz: fresh {counts['fresh']} ({100 * counts['fresh'] / ticks:.0f}%), "
          f"stale {counts['stale']} ({100 * counts['stale'] / ticks:.0f}%), empty {counts['empty']}")
    if ages:
        print(f"age of the result acted on: p50 {np.percentile(ages, 50):.1f} ms, p90 {np.percentile(ages, 90):.1f} ms")
    print(f"pipeline.latest() took p50 {np.percentile(call_us, 50):.1f} us, max {max(call_us):.1f} us; "
          f"late ticks {len(lateness)} (worst {max(lateness, default=0.0):.1f} ms)")
    print(f"inference: {stats['frames']} results at {stats['fps'] or 0:.1f} FPS, frames dropped {stats['dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
