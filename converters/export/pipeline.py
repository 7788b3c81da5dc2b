"""``export()``: one PyTorch model → ONNX / TFLite / OpenVINO × FP32 / FP16 / INT8, checked and gated.

::

    from converters import export
    result = export(model, example_input=x, contract=spec, to=["onnx", "tflite"], precision=["fp32", "int8"],
                    out="exports/", calib="calib_images/", val=val_dataset)
    result.ok, result.rows, result.rejected

For every (format, precision) it writes the artifact, embeds the contract and writes the sidecar, loads
it back with ``sdk.load`` (no flags), checks FP32 against PyTorch (:mod:`.parity`), evaluates it and the
PyTorch reference on the validation set (:mod:`.gate`), times it through ``sdk`` (:mod:`.latency`), and
records the verdict in the contract's ``accuracy`` and in ``report.json`` / ``report.md``.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .contracts import artifact_contract, weights_sha256, write_contract
from .errors import ExportError, InputSizeError, OutputExistsError

__all__ = ["FORMATS", "PRECISIONS", "EXTENSIONS", "ExportResult", "export"]

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "tflite", "openvino")
#: Conversion order: OpenVINO reuses the ONNX export, and runs before litert-torch / JAX start threads.
_ORDER = ("onnx", "openvino", "tflite")
PRECISIONS = ("fp32", "fp16", "int8")
EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite", "openvino": ".xml"}
LAYOUTS = {"onnx": "NCHW", "tflite": "NHWC", "openvino": "NCHW"}


@dataclass
class ExportResult:
    """What :func:`export` wrote.

    Attributes:
        out: the output folder.
        rows: one dict per artifact (the rows of ``report.json``).
        report: paths of ``report.json`` and ``report.md``.
    """

    out: Path
    rows: List[Dict[str, Any]] = field(default_factory=list)
    report: Dict[str, Path] = field(default_factory=dict)

    @property
    def rejected(self) -> List[Dict[str, Any]]:
        """Rows whose gate or parity check failed."""
        return [r for r in self.rows if r["verdict"] == "rejected"]

    @property
    def ok(self) -> bool:
        return not self.rejected

    def artifact(self, fmt: str, precision: str) -> Path:
        """Path of the artifact of one format and precision.

        Raises:
            KeyError: it was not exported.
        """
        for r in self.rows:
            if r["format"] == fmt and r["precision"] == precision:
                return self.out / r["file"]
        raise KeyError(f"no {fmt} {precision} artifact in {self.out}; exported: "
                       f"{[(r['format'], r['precision']) for r in self.rows]}")


def _choices(values: Union[str, Sequence[str]], allowed: Sequence[str], what: str) -> List[str]:
    items = [v.strip() for v in values.split(",")] if isinstance(values, str) else [str(v) for v in values]
    items = [v for v in items if v]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise ExportError(f"{what}: expected one or more of {', '.join(allowed)}, got {items or values!r}")
    return [v for v in allowed if v in items]


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out}: expected a folder, got an existing file")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputExistsError(f"output folder {out} already exists and is not empty; expected a new or empty "
                                    f"folder (pass force=True / --force to overwrite it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _spec_and_module(model: Any, example_input: Any, contract: Any) -> tuple:
    from sdk.contract import ModelContract

    is_zoo = hasattr(model, "export_module") and hasattr(model, "contract_spec")
    module = model.export_module() if is_zoo else model.eval()
    if contract is None:
        if not is_zoo:
            raise ExportError("contract: expected a contract dict (task, input, decoder, labels, outputs) for a model "
                              "that is not from converters.zoo, got None; see the README, 'Convert your own model'")
        spec = model.contract_spec()
    elif isinstance(contract, ModelContract):
        spec = contract.to_dict()
    elif isinstance(contract, Mapping):
        spec = dict(contract)
    else:
        spec = ModelContract.from_file(contract).to_dict()
    example = example_input if example_input is not None else (model.example_input() if is_zoo else None)
    if example is None:
        raise ExportError("example_input: expected a [1, 3, H, W] float32 tensor, got None")
    return module, spec, example


def _check_input(spec: Dict[str, Any], example: Any) -> tuple:
    import torch

    if not isinstance(example, torch.Tensor) or example.ndim != 4 or example.shape[1] != 3 or example.shape[0] != 1:
        raise ExportError(f"example_input: expected a [1, 3, H, W] tensor, got "
                          f"{getattr(example, 'shape', type(example).__name__)}")
    h, w = int(example.shape[2]), int(example.shape[3])
    inp = dict(spec.get("input") or {})
    shape = list(inp.get("shape") or [1, 3, h, w])
    layout = inp.get("layout", "NCHW")
    ch, cw = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if (ch, cw) != (h, w) and None not in (ch, cw):
        raise ExportError(f"example_input: expected {ch}x{cw} (the contract's input.shape {shape}), got {h}x{w}")
    stride = inp.get("stride")
    if stride and (h % stride or w % stride):
        lo, hi = (h // stride) * stride, (h // stride + 1) * stride
        raise InputSizeError(f"input size {h}x{w} is not divisible by the model stride {stride}; expected a multiple "
                             f"of {stride} (e.g. {lo or hi} or {hi})")
    inp.update(shape=[1, 3, h, w], layout="NCHW", name=inp.get("name") or "images", dtype="float32", quantization=None)
    spec = dict(spec, input=inp)
    spec.setdefault("schema_version", 1)
    return spec, (h, w)


def _output_names(spec: Dict[str, Any], module: Any, example: Any) -> List[str]:
    import torch

    names = list(spec.get("outputs") or [])
    if names:
        return names
    with torch.no_grad():
        out = module(example)
    n = len(out) if isinstance(out, (tuple, list, dict)) else 1
    return list(out.keys()) if isinstance(out, dict) else [f"output{i}" for i in range(n)]


def export(model: Any, *, example_input: Any = None, contract: Any = None,
           to: Union[str, Sequence[str]] = FORMATS, precision: Union[str, Sequence[str]] = ("fp32", "int8"),
           out: Union[str, Path] = "exports", calib: Any = "synthetic", val: Any = "synthetic",
           max_drop: Optional[float] = None, force: bool = False, name: Optional[str] = None,
           calib_count: int = 100, val_count: int = 200, parity_frames: int = 4, latency_runs: int = 20,
           keep_float: Union[bool, int] = True, tune: Any = "auto", onnx_activations: str = "uint8",
           onnx_calibration: str = "minmax", progress: bool = True) -> ExportResult:
    """Export, quantise, check and gate a PyTorch model (see the module docstring).

    Args:
        model: a ``converters.zoo`` model, or any ``nn.Module`` taking ``[1, 3, H, W]`` float32.
        example_input: ``[1, 3, H, W]`` tensor (zoo models: ``model.example_input()``).
        contract: contract dict / ``ModelContract`` / JSON path with at least ``task``, ``input``,
            ``decoder`` (zoo models: ``model.contract_spec()``).
        to: formats, ``"onnx"``, ``"tflite"``, ``"openvino"`` (list or comma-separated string).
        precision: ``"fp32"``, ``"fp16"``, ``"int8"``.
        out: output folder (must be new or empty unless ``force``).
        calib: INT8 calibration: ``"synthetic"`` (the ``train`` split), a folder of images, or a sequence.
        val: gate data: ``"synthetic"`` (the ``val`` split), a folder, a dataset, or None (no gate:
            verdict ``"unchecked"``).
        max_drop: the gate's limit for INT8 and FP16 (default 0.01 INT8, 0.002 FP16).
        force: replace a non-empty ``out``.
        name: file name stem (default: the zoo family or ``"model"``).
        calib_count: calibration images (synthetic: rendered; folder: at most this many; 0: all).
        val_count: synthetic validation items.
        parity_frames: frames for the FP32 parity check.
        latency_runs: timed ``sdk`` calls per artifact.
        keep_float: keep the output tail in float in INT8 models (up to and including the last weighted layer
            on each output path); an int n >= 1 widens it to the n-th weighted layer from the outputs
            (:mod:`converters.export.float_layers`); False: quantise everything.
        tune: labelled items for accuracy-aware quantisation, used when an OpenVINO INT8 model fails the
            gate (``nncf.quantize_with_accuracy_control`` then reverts its costliest layers to float and
            the result is gated again on the held-out set): ``"synthetic"``, a folder, a dataset, None
            (off), or ``"auto"``: synthetic when ``val`` is synthetic, else off (a user's held-out folder
            is never tuned on).
        onnx_activations: ONNX INT8 activation type, ``"uint8"`` (U8S8, default) or ``"int8"`` (S8S8).
        onnx_calibration: ONNX INT8 activation ranges, ``"minmax"`` (default) or ``"percentile"`` (see
            :func:`converters.export.onnx_export.onnx_int8`).
        progress: tqdm bars.

    Returns:
        An :class:`ExportResult` (``.ok`` False when an artifact was rejected).

    Raises:
        ExportError: bad arguments, a failed conversion (:class:`UnsupportedOperatorError` names the
            operator and module), :class:`InputSizeError`, :class:`OutputExistsError`,
            :class:`CalibrationError`.
    """
    import sdk

    from . import gate as gating
    from .host import host_info
    from .latency import measure_latency
    from .parity import check_parity
    from .reference import preprocess_batch, torch_model
    from .sources import calibration_images, tuning_dataset, validation_dataset

    formats = [f for f in _ORDER if f in _choices(to, FORMATS, "to")]
    from .onnx_export import CALIBRATION_METHODS

    if onnx_calibration not in CALIBRATION_METHODS:
        raise ExportError(f"onnx_calibration: expected one of {', '.join(CALIBRATION_METHODS)}, "
                          f"got {onnx_calibration!r}")
    precisions = _choices(precision, PRECISIONS, "precision")
    from .float_layers import tail_depth

    try:
        depth = tail_depth(keep_float)
    except ValueError as exc:
        raise ExportError(f"keep_float: {exc}") from None
    out = Path(out)
    module, spec, example = _spec_and_module(model, example_input, contract)
    spec, hw = _check_input(spec, example)
    input_name = spec["input"]["name"]
    outputs = _output_names(spec, module, example)
    spec["outputs"] = outputs
    task = spec.get("task")
    labels = list(spec.get("labels") or [])
    stem = name or getattr(model, "family", None) or "model"
    _prepare_out(out, force)
    t_start = time.perf_counter()
    reference = torch_model(module, spec)
    weights_hash = weights_sha256(module)
    warnings_list: List[str] = []

    calib_nchw = None
    calib_desc = "-"
    if "int8" in precisions:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = calibration_images(calib, task=task, input_hw=hw, count=calib_count)
        warnings_list += [str(w.message) for w in caught]
        calib_nchw = preprocess_batch(reference, images).astype(np.float32)
        calib_desc = (f"synthetic train split ({len(images)} images)" if isinstance(calib, str) and calib == "synthetic"
                      else f"{calib if isinstance(calib, (str, Path)) else type(calib).__name__} ({len(images)} images)")
        if "onnx" in formats and onnx_calibration != "minmax":
            calib_desc += f"; ONNX ranges: {onnx_calibration}"

    dataset = validation_dataset(val, task=task, input_hw=hw, count=val_count, labels=labels) if val is not None else None
    val_desc = ("none (not gated)" if dataset is None else f"synthetic val split ({len(dataset)} items)"
                if isinstance(val, str) and val == "synthetic" else f"{val if isinstance(val, (str, Path)) else type(val).__name__} "
                f"({len(dataset)} items)")
    if isinstance(tune, str) and tune == "auto":
        tune = "synthetic" if isinstance(val, str) and val == "synthetic" else None
    tuning = {"source": tune, "task": task, "input_hw": hw, "count": val_count, "labels": labels,
              "load": tuning_dataset} if tune is not None and dataset is not None else None
    frames_src = dataset if dataset is not None else validation_dataset("synthetic", task=task, input_hw=hw,
                                                                       count=parity_frames, labels=labels)
    frames = [np.asarray(frames_src[i][0]) for i in range(min(parity_frames, len(frames_src)))]
    ref_metric = (gating.evaluate(reference, dataset, task=task, labels=labels, progress=progress)
                  if dataset is not None else None)
    ref_latency = measure_latency(reference, runs=latency_runs)

    result = ExportResult(out=out)
    with tempfile.TemporaryDirectory(prefix="edgesdk-export-") as tmp:
        onnx_fp32 = out / f"{stem}_fp32.onnx" if "onnx" in formats and "fp32" in precisions else Path(tmp) / "fp32.onnx"
        onnx_built = False

        def ensure_onnx() -> Path:
            nonlocal onnx_built
            if not onnx_built:
                from .onnx_export import export_onnx

                export_onnx(module, example, onnx_fp32, input_name=input_name, output_names=outputs)
                onnx_built = True
            return onnx_fp32

        tflite_fp32 = out / f"{stem}_fp32.tflite" if "tflite" in formats and "fp32" in precisions else Path(tmp) / "fp32.tflite"
        for fmt in formats:
            for prec in precisions:
                t0 = time.perf_counter()
                path = out / f"{stem}_{prec}{EXTENSIONS[fmt]}"
                float_layers: List[str] = []
                in_dtype, in_quant = "float32", None
                if fmt == "onnx":
                    from .onnx_export import onnx_fp16, onnx_int8

                    src = ensure_onnx()
                    if prec == "fp16":
                        onnx_fp16(src, path)
                    elif prec == "int8":
                        float_layers = onnx_int8(src, path, input_name=input_name, calibration=calib_nchw,
                                                 keep_float=keep_float, progress=progress,
                                                 activations=onnx_activations, method=onnx_calibration)
                elif fmt == "openvino":
                    from .openvino_export import openvino_from_onnx, openvino_int8

                    src = ensure_onnx()
                    if prec == "int8":
                        float_layers = openvino_int8(src, path, calibration=calib_nchw, keep_float=keep_float,
                                                     progress=progress)
                    else:
                        openvino_from_onnx(src, path, fp16=prec == "fp16")
                else:
                    from .tflite_export import export_tflite, tflite_fp16, tflite_int8

                    if not tflite_fp32.exists():
                        export_tflite(module, example, tflite_fp32, input_name=input_name, output_names=outputs)
                    if prec == "fp16":
                        tflite_fp16(tflite_fp32, path)
                    elif prec == "int8":
                        float_layers, in_quant = tflite_int8(
                            tflite_fp32, path, input_name=input_name,
                            calibration_nhwc=np.ascontiguousarray(calib_nchw.transpose(0, 1, 3, 4, 2)),
                            keep_float=keep_float, progress=progress)
                        in_dtype = "int8" if in_quant is not None else "float32"
                convert_s = time.perf_counter() - t0
                base = artifact_contract(spec, fmt=fmt, precision=prec, layout=LAYOUTS[fmt], input_dtype=in_dtype,
                                         input_quantization=in_quant, float_layers=float_layers,
                                         weights_hash=weights_hash)
                write_contract(path, base)
                row = _check_artifact(path, base, reference=reference, frames=frames, dataset=dataset, task=task,
                                      labels=labels, ref_metric=ref_metric, prec=prec, max_drop=max_drop,
                                      val_desc=val_desc, latency_runs=latency_runs, progress=progress,
                                      measure_latency=measure_latency, check_parity=check_parity, gating=gating,
                                      sdk=sdk)
                if (fmt == "openvino" and prec == "int8" and tuning is not None and row["gate"] is not None
                        and row["gate"]["verdict"] == "rejected"):
                    row, convert_s = _with_accuracy_control(
                        row, src, path, base_args=dict(spec=spec, fmt=fmt, prec=prec, weights_hash=weights_hash),
                        calib_nchw=calib_nchw, tuning=tuning, reference=reference, keep_float=keep_float,
                        max_drop=gating.max_drop_for(prec, max_drop), progress=progress, convert_s=convert_s,
                        check=dict(reference=reference, frames=frames, dataset=dataset, task=task, labels=labels,
                                   ref_metric=ref_metric, prec=prec, max_drop=max_drop, val_desc=val_desc,
                                   latency_runs=latency_runs, progress=progress, measure_latency=measure_latency,
                                   check_parity=check_parity, gating=gating, sdk=sdk))
                    float_layers = row.pop("_float_layers")
                row.update(format=fmt, convert_seconds=round(convert_s, 2), float_layers=len(float_layers))
                logger.info("%s %s: %s (%s)", fmt, prec, row["verdict"], row.get("reason") or "ok")
                result.rows.append(row)
    from .latency import interleaved_p50
    from .report import int8_comparison, write_reports

    host = host_info()
    interleaved = {}
    for fmt in formats:
        pair = {p: out / f"{stem}_{p}{EXTENSIONS[fmt]}" for p in ("fp32", "int8")}
        if all(path.exists() for path in pair.values()) and latency_runs > 0:
            with sdk.load(pair["fp32"]) as m32, sdk.load(pair["int8"]) as m8:
                interleaved[fmt] = interleaved_p50({"fp32": m32, "int8": m8}, runs=max(latency_runs, 20))
    summary = {
        "model": stem, "task": task, "labels": labels, "input_hw": list(hw), "calibration": calib_desc,
        "validation": val_desc, "reference": {"metric": gating.METRICS.get(task), "value": ref_metric,
                                              "latency": ref_latency},
        "weights_sha256": weights_hash, "host": host, "rows": result.rows,
        "int8_vs_fp32": int8_comparison(result.rows, host, interleaved), "rejected": [r["file"] for r in result.rejected],
        "warnings": warnings_list, "seconds": round(time.perf_counter() - t_start, 1),
        "float_depth": depth if "int8" in precisions else None,
    }
    result.report = write_reports(out, summary)
    return result


def _with_accuracy_control(first: Dict[str, Any], onnx_src: Path, path: Path, *, base_args: Dict[str, Any],
                           calib_nchw: np.ndarray, tuning: Dict[str, Any], reference: Any, keep_float: Union[bool, int],
                           max_drop: float, progress: bool, convert_s: float,
                           check: Dict[str, Any]) -> Tuple[Dict[str, Any], float]:
    """Re-quantise a gate-rejected OpenVINO INT8 model with accuracy control and check it again.

    Returns:
        The new row (with ``accuracy_control``: the first attempt's gate, the tuning set, NNCF's metric
        evaluations, seconds; and ``_float_layers``) and the total conversion seconds.
    """
    from sdk.backends.openvino_backend import OpenVINOBackend
    from sdk.contract import ModelContract
    from sdk.decoders import PostprocessOptions
    from sdk.model import Model

    from . import gate as gating
    from .openvino_export import openvino_int8_accuracy_control
    from .reference import preprocess_batch

    t0 = time.perf_counter()
    items = tuning["load"](tuning["source"], task=tuning["task"], input_hw=tuning["input_hw"],
                           count=tuning["count"], labels=tuning["labels"])
    tune_inputs = preprocess_batch(reference, [np.asarray(item[0]) for item in items]).astype(np.float32)
    contract = ModelContract.from_dict(artifact_contract(base_args["spec"], fmt="openvino", precision="int8",
                                                         layout=LAYOUTS["openvino"], input_dtype="float32",
                                                         input_quantization=None, float_layers=[],
                                                         weights_hash=base_args["weights_hash"]))
    options = PostprocessOptions().merged(**contract.postprocess)

    def metric(compiled: Any, indices: List[int]) -> float:
        backend = OpenVINOBackend.from_compiled(compiled, path=path)
        model = Model(path, contract, backend, options=options)
        return gating.evaluate(model, [items[i] for i in indices], task=tuning["task"], labels=tuning["labels"],
                               progress=False)

    logger.info("openvino int8 failed the gate (%s dropped %.4f): retrying with accuracy control on %d tuning "
                "items", first["gate"]["metric"], first["gate"]["drop"], len(items))
    done = openvino_int8_accuracy_control(onnx_src, path, calibration=calib_nchw, tune_inputs=tune_inputs,
                                          metric_fn=metric, max_drop=max_drop, keep_float=keep_float,
                                          progress=progress)
    seconds = time.perf_counter() - t0
    ac = {"first_gate": first["gate"], "tuning": f"{_describe(tuning['source'])} ({len(items)} items)",
          "evaluations": done["evaluations"], "seconds": round(seconds, 1)}
    base = artifact_contract(base_args["spec"], fmt="openvino", precision="int8", layout=LAYOUTS["openvino"],
                             input_dtype="float32", input_quantization=None, float_layers=done["float_layers"],
                             weights_hash=base_args["weights_hash"], extra={"accuracy_control": ac})
    write_contract(path, base)
    row = _check_artifact(path, base, **check)
    row["accuracy_control"] = ac
    row["_float_layers"] = done["float_layers"]
    return row, convert_s + seconds


def _describe(source: Any) -> str:
    if isinstance(source, str) and source == "synthetic":
        return "synthetic train split"
    return str(source) if isinstance(source, (str, Path)) else type(source).__name__


#: What the report keeps of ``backend.describe()``: how the runtime actually ran the artifact.
_BACKEND_FACTS = ("runtime_version", "delegated_partitions", "inference_precision_hint",
                  "intra_op_num_threads", "num_threads", "providers")


def _check_artifact(path: Path, base: Dict[str, Any], *, reference: Any, frames: List[np.ndarray], dataset: Any,
                    task: str, labels: List[str], ref_metric: Optional[float], prec: str, max_drop: Optional[float],
                    val_desc: str, latency_runs: int, progress: bool, measure_latency: Any, check_parity: Any,
                    gating: Any, sdk: Any) -> Dict[str, Any]:
    """Load one written artifact through ``sdk``, check, gate and time it; rewrite its contract's accuracy."""
    reasons = []
    accuracy: Dict[str, Any] = {}
    with sdk.load(path) as model:
        parity = None
        if prec == "fp32":
            parity = check_parity(model, reference, frames, task=task)
            accuracy["parity"] = parity.to_dict()
            if not parity.passed:
                reasons.append(f"FP32 parity with PyTorch failed: {parity.detail}")
        gate_result = None
        if dataset is not None:
            converted = gating.evaluate(model, dataset, task=task, labels=labels, progress=progress)
            gate_result = gating.gate(ref_metric, converted, task=task, max_drop=gating.max_drop_for(prec, max_drop),
                                      n=len(dataset), dataset=val_desc)
            accuracy.update(gate_result.to_dict())
            if prec == "fp32":  # FP32 is held to parity with PyTorch; its metric is reported, not gated
                gate_result.verdict = "reported"
                accuracy["verdict_basis"] = "parity"
            elif not gate_result.accepted:
                reasons.append(f"{gate_result.metric} dropped by {gate_result.drop:.4f} (from "
                               f"{gate_result.reference:.4f} to {gate_result.converted:.4f}), over the limit "
                               f"{gate_result.max_drop:.4f}" + (
                                   "; more calibration images or a deeper float tail often recover it "
                                   "(edgesdk convert --calib-count N / --float-depth N; export(calib_count=N, "
                                   "keep_float=N))" + (", and for ONNX percentile ranges (--onnx-calibration "
                                                       "percentile)" if path.suffix == ".onnx" else "")
                                   if prec == "int8" else ""))
        latency = measure_latency(model, runs=latency_runs)
        backend = getattr(model.backend, "name", "?")
        described = model.backend.describe() if hasattr(model.backend, "describe") else {}
        backend_info = {k: described[k] for k in _BACKEND_FACTS if k in described}
    verdict = "rejected" if reasons else ("accepted" if gate_result is not None or parity is not None else "unchecked")
    accuracy["verdict"] = verdict
    if reasons:
        accuracy["reason"] = "; ".join(reasons)
    write_contract(path, dict(base, accuracy=accuracy))
    files = [path] + ([path.with_suffix(".bin")] if path.suffix == ".xml" else [])
    return {"file": path.name, "precision": prec, "bytes": sum(f.stat().st_size for f in files), "backend": backend,
            "gate": gate_result.to_dict() if gate_result else None, "parity": parity.to_dict() if parity else None,
            "latency": latency, "backend_info": backend_info, "verdict": verdict, "reason": "; ".join(reasons) or None,
            "sidecar": path.name + ".json"}
