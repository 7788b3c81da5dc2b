"""Publish detections as ROS 2 ``vision_msgs/Detection2DArray`` messages.

    source /opt/ros/humble/setup.bash
    python examples/ros2_node.py --model yolo_nano.onnx --source 0 --topic /detections

Needs ROS 2 (``rclpy``) and ``vision_msgs``; without them it says how to install them and exits with
status 2. Each message's header stamp is the frame's capture time (converted from the monotonic clock to
the node's clock), so subscribers can tell how old a detection is.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

INSTALL_HELP = """rclpy is not importable: this example needs ROS 2 and vision_msgs.
  Ubuntu 22.04 (Humble):  sudo apt install ros-humble-ros-base ros-humble-vision-msgs
  Ubuntu 24.04 (Jazzy):   sudo apt install ros-jazzy-ros-base ros-jazzy-vision-msgs
  then:                   source /opt/ros/<distro>/setup.bash   (and run this script with that Python)
  See https://docs.ros.org/en/humble/Installation.html"""


#: The INT8 YOLO-nano shipped for the demo (built by `python -m converters.demo_models`).
SHIPPED = Path(__file__).resolve().parent / "models" / "yolo_nano_int8.tflite"


def has_ros() -> bool:
    for name in ("rclpy", "vision_msgs"):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def to_detection_array(detections, frame, header, msgs) -> object:
    """Build a ``vision_msgs/Detection2DArray`` from :class:`sdk.Detections` (boxes in frame pixels)."""
    out = msgs.Detection2DArray()
    out.header = header
    for i in range(len(detections)):
        x1, y1, x2, y2 = (float(v) for v in detections.xyxy[i])
        det = msgs.Detection2D()
        det.header = header
        center = det.bbox.center
        if hasattr(center, "position"):      # Humble and later: Pose2D with a position
            center.position.x, center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
        else:                                # Foxy/Galactic
            center.x, center.y = (x1 + x2) / 2, (y1 + y2) / 2
        det.bbox.size_x, det.bbox.size_y = x2 - x1, y2 - y1
        hyp = msgs.ObjectHypothesisWithPose()
        if hasattr(hyp, "hypothesis"):
            hyp.hypothesis.class_id = detections.label[i]
            hyp.hypothesis.score = float(detections.confidence[i])
        else:
            hyp.id, hyp.score = detections.label[i], float(detections.confidence[i])
        det.results.append(hyp)
        if detections.tracker_id is not None:
            det.id = str(int(detections.tracker_id[i]))
        out.detections.append(det)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED), help="detector (.onnx, .tflite, OpenVINO .xml) (default: the shipped INT8 YOLO-nano)")
    parser.add_argument("--source", default="synthetic://shapes", help="camera/stream URI")
    parser.add_argument("--frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--topic", default="detections")
    parser.add_argument("--frame-id", default="camera")
    parser.add_argument("--device", help="device config name or YAML path")
    args = parser.parse_args(argv)
    if not has_ros():
        print(INSTALL_HELP, file=sys.stderr)
        return 2

    import rclpy
    import vision_msgs.msg as msgs
    from std_msgs.msg import Header

    import sdk

    rclpy.init()
    node = rclpy.create_node("edgesdk_detector")
    publisher = node.create_publisher(msgs.Detection2DArray, args.topic, 10)
    clock = node.get_clock()
    published = 0
    try:
        with sdk.Pipeline(args.source, args.model, device=args.device, max_frames=args.frames) as pipeline:
            node.get_logger().info(f"{args.source} via {pipeline.source.backend} -> {args.topic}")
            for frame, dets in pipeline:
                age_ns = int((time.monotonic() - frame.t_capture) * 1e9)
                stamp = rclpy.time.Time(nanoseconds=clock.now().nanoseconds - age_ns).to_msg()
                header = Header(stamp=stamp, frame_id=args.frame_id)
                publisher.publish(to_detection_array(dets, frame, header, msgs))
                published += 1
                rclpy.spin_once(node, timeout_sec=0)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.shutdown()
    print(f"published {published} Detection2DArray messages on {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
