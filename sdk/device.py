"""Device configs: one YAML file per device in ``device_configs/`` (or a user's own file).

A device config says which inference backends to try, in order, with their options (threads,
XNNPACK, execution providers, OpenVINO hints), the preferred precision and input size, camera
defaults and a latency budget. ``sdk.load(path, device="rpi5")`` uses it to choose the backend; the
backends themselves never guess device-specific settings.

Example (``device_configs/rpi5.yaml``)::

    name: rpi5
    arch: aarch64
    backends:
      - name: tflite
        options: {num_threads: 4, use_xnnpack: true}
    precision: int8
    input_size: 320
"""
from __future__ import annotations

import difflib
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from sdk.errors import DeviceConfigError

__all__ = ["DeviceConfig", "BackendChoice", "CameraDefaults", "load_device_config", "list_device_configs",
           "config_dirs", "host_facts", "matches_host"]

_TOP_KEYS = ("name", "description", "arch", "accelerators", "match", "backends", "precision", "input_size",
             "camera", "latency_budget_ms", "notes")
_BACKEND_KEYS = ("name", "options")
_CAMERA_KEYS = ("source", "width", "height", "fps", "format", "pipeline", "flip")
_MATCH_KEYS = ("device_tree_model", "nv_tegra_release", "cpu_model", "machine")
_BACKEND_NAMES = ("onnxruntime", "tflite", "openvino")
_PRECISIONS = ("fp32", "fp16", "int8")


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class BackendChoice:
    """One backend a device prefers, with the options passed to it."""

    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CameraDefaults:
    """Default camera for the device (``source`` is a URI for :func:`sdk.open_source`)."""

    source: str = "0"
    width: int = 1280
    height: int = 720
    fps: int = 30
    format: Optional[str] = None
    pipeline: Optional[str] = None
    flip: int = 0


@dataclass(frozen=True)
class DeviceConfig:
    """A validated device config. Build with :func:`load_device_config`."""

    name: str
    backends: tuple
    description: str = ""
    arch: str = ""
    accelerators: tuple = ()
    match: dict = field(default_factory=dict)
    precision: str = "fp32"
    input_size: Optional[int] = None
    camera: CameraDefaults = field(default_factory=CameraDefaults)
    latency_budget_ms: Optional[float] = None
    notes: tuple = ()
    path: Optional[str] = None

    def backend_options(self, backend: str) -> dict:
        """Options for ``backend`` from this config ({} when the device does not list it)."""
        for choice in self.backends:
            if choice.name == backend:
                return dict(choice.options)
        return {}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "device config") -> "DeviceConfig":
        """Validate a parsed YAML mapping.

        Raises:
            DeviceConfigError: for unknown keys (with a suggestion), wrong types or missing fields.
        """
        def fail(path: str, expected: str, got: Any) -> DeviceConfigError:
            return DeviceConfigError(f"{source}: {path}: expected {expected}, got {got!r} ({type(got).__name__})")

        def check_keys(section: Mapping, allowed: Sequence[str], where: str) -> None:
            for key in section:
                if key not in allowed:
                    raise DeviceConfigError(f"{source}: unknown key {where}{key!r}{_suggest(key, allowed)}; "
                                            f"known keys: {', '.join(allowed)}")

        if not isinstance(data, Mapping):
            raise fail("top level", "a mapping of settings", data)
        check_keys(data, _TOP_KEYS, "")
        for key in ("name", "backends"):
            if key not in data:
                raise DeviceConfigError(f"{source}: required key {key!r} is missing")
        if not isinstance(data["name"], str) or not data["name"]:
            raise fail("name", "a non-empty string", data["name"])
        raw_backends = data["backends"]
        if not isinstance(raw_backends, list) or not raw_backends:
            raise fail("backends", "a non-empty list of {name, options}", raw_backends)
        backends = []
        for i, entry in enumerate(raw_backends):
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, Mapping):
                raise fail(f"backends[{i}]", "a mapping {name, options}", entry)
            check_keys(entry, _BACKEND_KEYS, f"backends[{i}].")
            name = entry.get("name")
            if name not in _BACKEND_NAMES:
                raise DeviceConfigError(f"{source}: backends[{i}].name: expected one of {', '.join(_BACKEND_NAMES)}, "
                                        f"got {name!r}{_suggest(name, _BACKEND_NAMES)}")
            options = entry.get("options", {}) or {}
            if not isinstance(options, Mapping):
                raise fail(f"backends[{i}].options", "a mapping", options)
            backends.append(BackendChoice(name, dict(options)))
        precision = data.get("precision", "fp32")
        if precision not in _PRECISIONS:
            raise DeviceConfigError(f"{source}: precision: expected one of {', '.join(_PRECISIONS)}, got "
                                    f"{precision!r}{_suggest(precision, _PRECISIONS)}")
        input_size = data.get("input_size")
        if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, int)
                                       or input_size <= 0 or input_size % 32):
            raise fail("input_size", "a positive multiple of 32", input_size)
        budget = data.get("latency_budget_ms")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
            raise fail("latency_budget_ms", "a positive number", budget)
        camera_raw = data.get("camera", {}) or {}
        if not isinstance(camera_raw, Mapping):
            raise fail("camera", "a mapping", camera_raw)
        check_keys(camera_raw, _CAMERA_KEYS, "camera.")
        for key in ("width", "height", "fps", "flip"):
            if key in camera_raw and (isinstance(camera_raw[key], bool) or not isinstance(camera_raw[key], int)):
                raise fail(f"camera.{key}", "an integer", camera_raw[key])
        camera = CameraDefaults(**{k: (str(v) if k == "source" else v) for k, v in camera_raw.items()})
        match = data.get("match", {}) or {}
        if not isinstance(match, Mapping):
            raise fail("match", "a mapping", match)
        check_keys(match, _MATCH_KEYS, "match.")
        for key, value in match.items():
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(f"match.{key}", "a string or a list of regular expressions", value)
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise fail(f"match.{key}", f"a valid regular expression ({exc})", pattern) from None
        for key in ("accelerators", "notes"):
            value = data.get(key, []) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(key, "a list of strings", value)
        for key in ("description", "arch"):
            if not isinstance(data.get(key, ""), str):
                raise fail(key, "a string", data[key])
        return cls(
            name=data["name"], backends=tuple(backends), description=data.get("description", ""),
            arch=data.get("arch", ""), accelerators=tuple(data.get("accelerators", []) or []),
            match={k: ([v] if isinstance(v, str) else list(v)) for k, v in match.items()},
            precision=precision, input_size=input_size, camera=camera,
            latency_budget_ms=float(budget) if budget is not None else None,
            notes=tuple(data.get("notes", []) or []), path=None if source == "device config" else source,
        )


def config_dirs() -> list:
    """Folders searched for ``<name>.yaml``: ``$EDGESDK_DEVICE_CONFIGS`` (os.pathsep-separated), then the
    repository's ``device_configs/``."""
    dirs = [Path(p) for p in os.environ.get("EDGESDK_DEVICE_CONFIGS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "device_configs")
    return dirs


def list_device_configs() -> dict:
    """Map config name → path for every ``*.yaml`` in :func:`config_dirs` (earlier folders win)."""
    found: dict = {}
    for d in config_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def load_device_config(name_or_path: "str | os.PathLike | DeviceConfig") -> DeviceConfig:
    """Load a device config by name (``"rpi5"``) or path (``"my_board.yaml"``).

    Raises:
        DeviceConfigError: unknown name (lists the known ones), unreadable YAML, or invalid content.
    """
    if isinstance(name_or_path, DeviceConfig):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        known = list_device_configs()
        if text not in known:
            raise DeviceConfigError(f"unknown device config {text!r}{_suggest(text, list(known))}; known: "
                                    f"{', '.join(sorted(known)) or 'none'} (or pass a path to a .yaml file)")
        path = known[text]
    if not path.is_file():
        raise DeviceConfigError(f"device config file {path} does not exist")
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DeviceConfigError(f"{path}: expected valid YAML, got a parse error: {exc}") from exc
    return DeviceConfig.from_dict(data, source=str(path))


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").replace("\x00", "").strip()
    except OSError:
        return ""


def host_facts() -> dict:
    """What identifies this host: device-tree model (Pi, Jetson), ``/etc/nv_tegra_release``, CPU model,
    machine architecture."""
    cpu = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"device_tree_model": _read("/proc/device-tree/model"), "nv_tegra_release": _read("/etc/nv_tegra_release"),
            "cpu_model": cpu or platform.processor(), "machine": platform.machine()}


def matches_host(config: DeviceConfig, facts: Optional[Mapping[str, str]] = None) -> bool:
    """True when every ``match`` entry of the config has a pattern found in the host's facts."""
    if not config.match:
        return False
    facts = host_facts() if facts is None else facts
    return all(any(re.search(p, facts.get(key, "") or "") for p in patterns) for key, patterns in config.match.items())
