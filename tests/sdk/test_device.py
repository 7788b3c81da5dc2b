from __future__ import annotations

import pytest

from sdk.device import DeviceConfig, list_device_configs, load_device_config, matches_host
from sdk.errors import DeviceConfigError

REQUIRED = {"rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "x86-cpu"}


def test_shipped_configs_validate():
    found = list_device_configs()
    assert REQUIRED <= set(found)
    for name in found:
        cfg = load_device_config(name)
        assert cfg.name == name and cfg.backends and cfg.latency_budget_ms


def test_device_specific_backend_choices():
    assert load_device_config("rpi5").backends[0].name == "tflite"
    assert load_device_config("rpi5").backend_options("tflite") == {"num_threads": 4, "use_xnnpack": True}
    jetson = load_device_config("jetson-orin-nano").backend_options("onnxruntime")
    assert jetson["providers"][0][0] == "TensorrtExecutionProvider"
    assert jetson["providers"][0][1]["trt_fp16_enable"] is True
    assert load_device_config("x86-cpu").backend_options("openvino")["performance_hint"] == "LATENCY"


def test_host_matching():
    pi = load_device_config("rpi5")
    assert matches_host(pi, {"device_tree_model": "Raspberry Pi 5 Model B Rev 1.0", "machine": "aarch64"})
    assert not matches_host(pi, {"device_tree_model": "Raspberry Pi 4 Model B Rev 1.4"})
    nano = load_device_config("jetson-nano")
    assert matches_host(nano, {"nv_tegra_release": "# R32 (release), REVISION: 7.1",
                               "device_tree_model": "NVIDIA Jetson Nano Developer Kit"})
    assert not matches_host(load_device_config("jetson-orin-nano"),
                            {"nv_tegra_release": "# R32 (release)", "device_tree_model": "NVIDIA Jetson Nano"})


@pytest.mark.parametrize("text, message", [
    ("name: x\nbackend: [tflite]\n", r"unknown key 'backend' \(did you mean 'backends'\?\)"),
    ("name: x\nbackends: [tflight]\n", r"backends\[0\].name: expected one of .* got 'tflight' \(did you mean 'tflite'\?\)"),
    ("name: x\nbackends: [tflite]\ninput_size: '320'\n", r"input_size: expected a positive multiple of 32, got '320' \(str\)"),
    ("name: x\nbackends: [tflite]\nprecision: int4\n", r"precision: expected one of fp32, fp16, int8"),
    ("name: x\nbackends: [{name: tflite, option: {}}]\n", r"unknown key backends\[0\].'option'"),
    ("name: x\nbackends: [tflite]\ncamera: {fps: fast}\n", r"camera.fps: expected an integer"),
    ("name: x\nbackends: [tflite]\ncamera: {wdth: 3}\n", r"did you mean 'width'"),
    ("name: x\nbackends: []\n", r"backends: expected a non-empty list"),
    ("backends: [tflite]\n", r"required key 'name' is missing"),
    ("name: x\nbackends: [tflite]\nmatch: {machine: '(['}\n", r"match.machine: expected a valid regular expression"),
    ("name: [x\n", r"expected valid YAML"),
    ("- just\n- a list\n", r"top level: expected a mapping"),
])
def test_bad_configs_are_explained(tmp_path, text, message):
    p = tmp_path / "board.yaml"
    p.write_text(text)
    with pytest.raises(DeviceConfigError, match=message):
        load_device_config(p)


def test_unknown_name_lists_known(monkeypatch):
    with pytest.raises(DeviceConfigError, match=r"unknown device config 'rpi6' \(did you mean 'rpi[45]'\?\); known: .*x86-cpu"):
        load_device_config("rpi6")


def test_user_config_dir(tmp_path, monkeypatch):
    (tmp_path / "myboard.yaml").write_text("name: myboard\nbackends: [{name: onnxruntime, options: {intra_op_num_threads: 2}}]\n")
    monkeypatch.setenv("EDGESDK_DEVICE_CONFIGS", str(tmp_path))
    cfg = load_device_config("myboard")
    assert isinstance(cfg, DeviceConfig) and cfg.backend_options("onnxruntime") == {"intra_op_num_threads": 2}
