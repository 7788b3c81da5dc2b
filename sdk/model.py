"""``sdk.load``: open an exported artifact and run it on BGR frames.

::

    model = sdk.load("yolo_nano_int8.tflite", device="rpi5")
    dets = model(frame)                  # Detections in frame pixels
    dets = model(frame, conf_threshold=0.5, classes=[0])

The model contract (sidecar, embedded metadata, or a foreign model's own metadata) says how to
pre-process, which decoder to use and the post-processing defaults; the device config says which
backend to use and with which options.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from sdk.contract import METADATA_KEY, ModelContract, sidecar_paths
from sdk.errors import BackendError, BackendUnavailable, ModelContractError, ModelFileError
from sdk.results import Classification, Detections, Embedding

__all__ = ["load", "Model", "resolve_contract", "FORMAT_BACKENDS"]

logger = logging.getLogger(__name__)

Result = Union[Detections, Classification, Embedding]

#: Which backends read which file extension, in default order of preference.
FORMAT_BACKENDS = {".onnx": ("onnxruntime", "openvino"), ".tflite": ("tflite",), ".xml": ("openvino",)}
_INT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.int32))


def _check_model_path(path: Path) -> None:
    if not path.exists():
        nearby = sorted(p.name for p in path.parent.glob("*") if p.suffix in FORMAT_BACKENDS) if path.parent.is_dir() else []
        hint = f"; model files in {path.parent}: {', '.join(nearby[:8])}" if nearby else ""
        raise ModelFileError(f"model file {path} does not exist{hint}")
    if not path.is_file():
        raise ModelFileError(f"expected a model file, got a directory: {path}")
    if path.suffix.lower() not in FORMAT_BACKENDS:
        raise ModelFileError(f"unknown model extension {path.suffix!r} for {path.name}; expected one of "
                             f"{', '.join(FORMAT_BACKENDS)} (OpenVINO IR is the .xml with its .bin)")
    if path.stat().st_size == 0:
        raise ModelFileError(f"model file {path} is empty (0 bytes); re-export or copy it again")


def _backend_order(path: Path, backend: Optional[str], device: Any) -> list:
    readers = FORMAT_BACKENDS[path.suffix.lower()]
    if backend is not None:
        if backend not in readers:
            raise BackendError(f"backend {backend!r} cannot read {path.suffix} files; backends for {path.suffix}: "
                               f"{', '.join(readers)}")
        return [backend]
    if device is not None:
        preferred = [b.name for b in device.backends if b.name in readers]
        if preferred:
            return preferred
        logger.warning("device config %r lists no backend for %s files; using %s", device.name, path.suffix, readers[0])
    return list(readers)


def _normalise_options(options: Mapping[str, Any]) -> dict:
    """YAML gives lists where backends expect tuples (``[name, {options}]`` providers); expand ``~``."""
    out = dict(options)
    providers = out.get("providers")
    if isinstance(providers, list):
        norm = []
        for p in providers:
            if isinstance(p, list) and len(p) == 2 and isinstance(p[1], Mapping):
                p = (p[0], {k: (os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v)
                            for k, v in p[1].items()})
            norm.append(p)
        out["providers"] = norm
    for key in ("cache_dir",):
        if isinstance(out.get(key), str):
            out[key] = os.path.expanduser(out[key])
    return out


def resolve_contract(path: Path, backend: Any, contract: Any = None) -> ModelContract:
    """Find the contract of a model: explicit > sidecar JSON > embedded metadata > foreign metadata.

    Raises:
        ModelContractError: none found (the message lists where it looked) or the one found is invalid.
    """
    if contract is not None:
        if isinstance(contract, ModelContract):
            return contract
        if isinstance(contract, Mapping):
            return ModelContract.from_dict(contract)
        return ModelContract.from_file(contract)
    for sidecar in sidecar_paths(path):
        if sidecar.is_file():
            logger.debug("contract from sidecar %s", sidecar)
            return ModelContract.from_file(sidecar)
    metadata = dict(getattr(backend, "metadata", {}) or {})
    if METADATA_KEY in metadata:
        return ModelContract.from_json(metadata[METADATA_KEY], source=f"{path.name} (embedded {METADATA_KEY})")
    from sdk.foreign import read_ultralytics_yaml, ultralytics_contract

    yaml_meta = read_ultralytics_yaml(path.parent / "metadata.yaml")
    layout = "NHWC" if path.suffix == ".tflite" else "NCHW"
    out_shapes = [list(o.shape) for o in backend.outputs]
    for meta in (metadata, yaml_meta or {}):
        try:
            data = ultralytics_contract(meta, input_layout=layout, output_shapes=out_shapes)
        except ValueError as exc:
            raise ModelContractError(f"{path.name}: Ultralytics metadata found but unreadable: {exc}") from exc
        if data is not None:
            logger.info("contract built from Ultralytics metadata of %s", path.name)
            return ModelContract.from_dict(data)
    looked = ", ".join(str(p.name) for p in sidecar_paths(path))
    raise ModelContractError(
        f"{path.name}: no model contract found; looked for a sidecar ({looked}), embedded metadata key "
        f"{METADATA_KEY!r} and Ultralytics metadata. Export with `edgesdk convert`, or write a sidecar "
        f"(see README, 'Writing a sidecar for a foreign model')")


class Model:
    """A loaded artifact: contract + backend + pre-processing + decoder. Build with :func:`load`.

    Call it with a BGR uint8 frame (H, W, 3) (grayscale (H, W) and BGRA (H, W, 4) are converted).
    ``last_timings`` holds the preprocess/infer/postprocess milliseconds of the latest call.
    """

    def __init__(self, path: Path, contract: ModelContract, backend: Any, *, options: Any) -> None:
        from sdk.decoders import get_decoder
        from sdk.preprocess import PreprocessConfig, Preprocessor

        self.path = path
        self.contract = contract
        self.backend = backend
        self.task = contract.task
        self.labels = tuple(contract.labels)
        self.options = options
        self._input = self._check_input(contract, backend)
        self._input_name = self._input.name
        self._output_names = self._check_outputs(contract, backend)
        self._dequant = {o.name: o.quantization for o in backend.outputs
                         if o.quantization is not None and np.dtype(o.dtype) in _INT_DTYPES}
        inp = contract.input
        quant = inp.quantization
        if quant is None and inp.dtype in ("int8", "uint8") and self._input.quantization is not None and not (
                inp.scale == 1.0 and all(m == 0 for m in inp.mean) and all(s == 1 for s in inp.std)):
            quant = tuple(self._input.quantization)
        self._input_hw = inp.size_hw
        self.preprocessor = Preprocessor(PreprocessConfig(
            size_hw=self._input_hw, layout=inp.layout, dtype=inp.dtype, color=inp.color, resize=inp.resize,
            pad_value=inp.pad_value, stride=None, scale=inp.scale, mean=tuple(inp.mean), std=tuple(inp.std),
            crop_fraction=inp.crop_fraction, quant=quant))
        self.decoder = get_decoder(dict(contract.decoder), output_names=list(self._output_names), labels=self.labels)
        self.last_timings: dict = {}

    @staticmethod
    def _check_input(contract: ModelContract, backend: Any) -> Any:
        if len(backend.inputs) != 1:
            raise BackendError(f"expected a model with one image input, got {len(backend.inputs)} inputs: "
                               f"{[i.name for i in backend.inputs]}")
        spec = backend.inputs[0]
        inp = contract.input
        if inp.name is not None and inp.name != spec.name:
            raise ModelContractError(f"contract.input.name: the model's input is {spec.name!r}, got {inp.name!r}")
        if len(spec.shape) != 4:
            raise ModelContractError(f"contract.input.shape: the model's input has rank {len(spec.shape)} "
                                     f"{list(spec.shape)}, expected rank 4")
        for i, (want, have) in enumerate(zip(inp.shape, spec.shape)):
            if want is not None and have is not None and have > 0 and want != have:
                raise ModelContractError(
                    f"contract.input.shape: the model's input {spec.name!r} has shape {list(spec.shape)}, got "
                    f"{list(inp.shape)} in the contract (dimension {i}); is the layout ({inp.layout}) right for "
                    f"this format? TFLite models are usually NHWC, ONNX/OpenVINO NCHW")
        if np.dtype(spec.dtype) != np.dtype(inp.dtype):
            raise ModelContractError(f"contract.input.dtype: the model's input {spec.name!r} is "
                                     f"{np.dtype(spec.dtype).name}, got {inp.dtype!r} in the contract")
        return spec

    @staticmethod
    def _check_outputs(contract: ModelContract, backend: Any) -> tuple:
        have = [o.name for o in backend.outputs]
        if not contract.outputs:
            return tuple(have)
        missing = [n for n in contract.outputs if n not in have]
        if missing:
            raise ModelContractError(f"contract.outputs: the model has outputs {have}, got unknown names {missing}")
        return tuple(contract.outputs)

    # -- the three stages, public so profilers and pipelines can time them --------------------------------
    def preprocess(self, frame: np.ndarray) -> tuple:
        """BGR frame (H, W, 3) uint8 → (input tensor with batch dim, Transform).

        Raises:
            ValueError: None, empty, wrong dtype, rank or channel count, with expected vs got.
        """
        from sdk.preprocess import ensure_bgr

        return self.preprocessor(ensure_bgr(frame))

    def infer(self, tensor: np.ndarray) -> dict:
        """Run the backend; integer outputs with quantisation are dequantised to float32."""
        raw = self.backend.infer({self._input_name: tensor})
        out = {}
        for name in self._output_names:
            arr = raw[name]
            q = self._dequant.get(name)
            if q is not None:
                arr = (arr.astype(np.float32) - np.float32(q[1])) * np.float32(q[0])
            elif arr.dtype == np.float16:
                arr = arr.astype(np.float32)
            out[name] = arr
        return out

    def postprocess(self, outputs: Mapping[str, np.ndarray], transform: Any, options: Any = None) -> Result:
        """Decode raw outputs into the task's result, boxes mapped back to frame pixels."""
        result = self.decoder(dict(outputs), input_hw=self._input_hw, options=options or self.options)
        if isinstance(result, Detections):
            result = Detections(xyxy=transform.boxes_to_frame(result.xyxy), confidence=result.confidence,
                                class_id=result.class_id, labels=self.labels, data=result.data)
        return result

    def __call__(self, frame: np.ndarray, **overrides: Any) -> Result:
        """Run the whole model on one frame. ``overrides`` replace post-processing options for this call
        (``conf_threshold``, ``iou_threshold``, ``max_det``, ``classes``, ``agnostic``, ``top_k``...)."""
        options = self.options.merged(**overrides) if overrides else self.options
        t0 = time.perf_counter()
        tensor, transform = self.preprocess(frame)
        t1 = time.perf_counter()
        outputs = self.infer(tensor)
        t2 = time.perf_counter()
        result = self.postprocess(outputs, transform, options)
        t3 = time.perf_counter()
        self.last_timings = {"preprocess_ms": (t1 - t0) * 1e3, "infer_ms": (t2 - t1) * 1e3,
                             "postprocess_ms": (t3 - t2) * 1e3}
        return result

    def warmup(self, runs: int = 2) -> None:
        """Run ``runs`` inferences on a blank frame (first runs are slow on most runtimes)."""
        h, w = self._input_hw
        blank = np.full((h, w, 3), 114, np.uint8)
        for _ in range(runs):
            self(blank)

    @property
    def nonfinite_dropped(self) -> int:
        """Output rows with NaN/Inf dropped by the decoder so far."""
        return int(getattr(self.decoder, "nonfinite_dropped", 0))

    def describe(self) -> dict:
        """Model path, task, backend details, input shape and post-processing options."""
        info = {"path": str(self.path), "task": self.task, "family": self.contract.family,
                "precision": self.contract.precision, "labels": len(self.labels),
                "input": {"name": self._input_name, "shape": list(self._input.shape),
                          "dtype": np.dtype(self._input.dtype).name},
                "decoder": self.contract.decoder.get("type")}
        describe = getattr(self.backend, "describe", None)
        info["backend"] = describe() if callable(describe) else {"name": getattr(self.backend, "name", "?")}
        return info

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Model({self.path.name!r}, task={self.task!r}, backend={getattr(self.backend, 'name', '?')!r}, "
                f"input={list(self._input.shape)})")


def load(path: "str | os.PathLike", *, device: Any = None, backend: Optional[str] = None,
         backend_options: Optional[Mapping[str, Any]] = None, contract: Any = None, **overrides: Any) -> Model:
    """Load an exported model (``.onnx``, ``.tflite``, OpenVINO ``.xml``) ready to call on frames.

    Args:
        path: the model file.
        device: a device config name (``"rpi5"``), a path to a YAML file, or a DeviceConfig; picks the
            backend and its options.
        backend: force a backend (``"onnxruntime"``, ``"tflite"``, ``"openvino"``).
        backend_options: options passed to the backend, over the device config's.
        contract: a ModelContract, dict or JSON path to use instead of the file's own.
        **overrides: post-processing defaults (``conf_threshold=0.4``, ``max_det=100``...).

    Raises:
        ModelFileError: missing, empty, corrupt or unknown-format file.
        BackendUnavailable: the runtime for the format is not installed (message has the pip line).
        ModelContractError: no contract, or an invalid one, or one that does not fit the file.
    """
    from sdk.backends import create_backend
    from sdk.decoders import PostprocessOptions
    from sdk.device import load_device_config

    path = Path(path)
    _check_model_path(path)
    device_cfg = load_device_config(device) if device is not None else None
    order = _backend_order(path, backend, device_cfg)
    errors = []
    instance = None
    for name in order:
        options = _normalise_options(device_cfg.backend_options(name) if device_cfg else {})
        options.update(backend_options or {})
        try:
            instance = create_backend(name, path, **options)
            break
        except BackendUnavailable as exc:
            errors.append(exc)
            logger.info("backend %s unavailable (%s); trying the next one", name, exc)
    if instance is None:
        raise errors[0] if len(errors) == 1 else BackendUnavailable(
            f"no runtime installed for {path.name}: " + "; ".join(str(e) for e in errors))
    try:
        resolved = resolve_contract(path, instance, contract)
        defaults = {k: v for k, v in resolved.postprocess.items()}
        options = PostprocessOptions().merged(**defaults).merged(**overrides)
        return Model(path, resolved, instance, options=options)
    except BaseException:
        instance.close()
        raise
