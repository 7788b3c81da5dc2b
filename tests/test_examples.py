"""The examples in examples/ run end to end on the synthetic source with the small test models."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import has_module

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def embedder(test_models_dir, tmp_path_factory) -> Path:
    """The test classifier declared as an embedding model through a sidecar (there is no Siamese test model)."""
    out = tmp_path_factory.mktemp("embedder")
    manifest = json.loads((test_models_dir / "manifest.json").read_text())
    contract = json.loads(manifest["artifacts"]["classifier_onnx"]["metadata"]["edgesdk_contract"])
    contract.update(task="embed", decoder={"type": "embedding"}, labels=[])
    (out / "embedder.onnx").write_bytes((test_models_dir / "classifier.onnx").read_bytes())
    (out / "embedder.onnx.json").write_text(json.dumps(contract))
    return out / "embedder.onnx"


def test_detect_camera_saves_video_and_checks_ground_truth(test_models_dir, tmp_path):
    out = tmp_path / "det.mp4"
    proc = run_example("detect_camera.py", "--model", str(test_models_dir / "detector.onnx"), "--source",
                       "synthetic://shapes?size=160x120", "--frames", "12", "--save", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "backend synthetic" in proc.stdout and re.search(r"found \d+ of \d+ objects", proc.stdout)
    assert f"saved 12 frames to {out}" in proc.stdout and out.stat().st_size > 0


def test_detect_camera_rejects_a_classifier(test_models_dir):
    proc = run_example("detect_camera.py", "--model", str(test_models_dir / "classifier.onnx"), "--frames", "1")
    assert proc.returncode == 2 and "expected a detection model" in proc.stderr


def test_robot_loop_never_blocks_and_reports_freshness(test_models_dir):
    proc = run_example("robot_loop.py", "--model", str(test_models_dir / "detector.onnx"), "--source",
                       "synthetic://shapes?realtime=1&size=160x120", "--frames", "40")
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"40 ticks at 50 Hz: fresh (\d+) \(\d+%\), stale (\d+) \(\d+%\), empty (\d+)", proc.stdout)
    assert m and sum(int(g) for g in m.groups()) == 40
    assert int(m.group(2)) > 0   # a 30 fps camera cannot give a fresh result at every 50 Hz tick


def test_ros2_node_without_ros_says_how_to_install(test_models_dir):
    if has_module("rclpy"):
        pytest.skip("rclpy is installed here")
    proc = run_example("ros2_node.py", "--model", str(test_models_dir / "detector.onnx"), "--frames", "3")
    assert proc.returncode == 2 and "sudo apt install ros-humble-ros-base ros-humble-vision-msgs" in proc.stderr


def test_verify_identity_enrols_and_verifies(embedder, tmp_path):
    proc = run_example("verify_identity.py", "--model", str(embedder), "--source", "synthetic://shapes?size=160x120",
                       "--frames", "3", "--identities", "3")
    assert proc.returncode == 0, proc.stderr
    assert "enrolled 3 synthetic identities" in proc.stdout and re.search(r"verified \d+ crops", proc.stdout)
    import cv2
    import numpy as np

    folder = tmp_path / "alice"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 40, 3), 90, np.uint8))
    proc = run_example("verify_identity.py", "--model", str(embedder), "--enroll", f"alice={folder}",
                       "--source", str(folder), "--frames", "1")
    assert proc.returncode == 0, proc.stderr
    assert "gallery: alice" in proc.stdout and "frame 0: alice (nearest alice, distance 0.000)" in proc.stdout


def test_verify_identity_rejects_a_detector_and_bad_enrol(test_models_dir, embedder):
    proc = run_example("verify_identity.py", "--model", str(test_models_dir / "detector.onnx"))
    assert proc.returncode == 2 and "expected an embedding" in proc.stderr
    proc = run_example("verify_identity.py", "--model", str(embedder), "--enroll", "bob")
    assert proc.returncode == 2 and "NAME=PATH" in proc.stderr
