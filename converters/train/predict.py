"""A PyTorch zoo model as an ``sdk.Model``: the deployed pre-processing and decoder around the torch graph.

::

    model = torch_model(net)                       # sdk.model.Model with a TorchBackend
    dets = model(frame_bgr)                        # Detections in frame pixels, exactly as an export
    predictor = eval_predictor(net)                # low confidence threshold for mAP

The contract comes from ``net.contract_spec()`` and the graph from ``net.export_module()``, so a PyTorch
checkpoint and its exported artifact are evaluated by the same code path (``sdk``'s ``Preprocessor``,
its decoders and NMS); only the backend differs.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["TorchBackend", "torch_model", "eval_predictor", "EVAL_OVERRIDES"]

logger = logging.getLogger(__name__)

#: Post-processing used for mAP: COCO AP integrates over all scores, so keep the low-score tail.
EVAL_OVERRIDES: Dict[str, Dict[str, Any]] = {"detect": {"conf_threshold": 0.001, "max_det": 100}}


class TorchBackend:
    """The ``sdk`` backend protocol over a torch module (inference only, no gradients).

    The module runs where its parameters are (a run on a GPU validates on it); outputs come back as
    numpy arrays on the CPU.

    Args:
        module: the export graph (``net.export_module()``): one ``[B, 3, H, W]`` float32 input, a tensor
            or a tuple of tensors out.
        input_name: name of the input tensor.
        input_shape: ``(1, 3, H, W)``.
        output_names: names of the outputs, in the module's order.
    """

    name = "torch"

    def __init__(self, module: nn.Module, *, input_name: str, input_shape: tuple, output_names: tuple) -> None:
        from sdk.backends.base import TensorSpec

        self.module = module.eval()
        first = next(iter(module.parameters()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.inputs = [TensorSpec(input_name, tuple(input_shape), np.dtype(np.float32))]
        self.outputs = [TensorSpec(n, (None,), np.dtype(np.float32)) for n in output_names]
        self.metadata: Dict[str, str] = {}

    def infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the module on ``feeds[input_name]`` (``[1, 3, H, W]`` float32).

        Raises:
            ValueError: the feed is missing or not a 4-D array.
        """
        name = self.inputs[0].name
        if name not in feeds:
            raise ValueError(f"feeds: expected the input {name!r}, got {sorted(feeds)}")
        x = np.asarray(feeds[name], np.float32)
        if x.ndim != 4:
            raise ValueError(f"feeds[{name!r}]: expected shape [B, 3, H, W], got {list(x.shape)}")
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {spec.name: t.detach().float().cpu().numpy() for spec, t in zip(self.outputs, outs)}

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "torch": torch.__version__, "threads": torch.get_num_threads(),
                "device": str(self.device)}

    def close(self) -> None:
        """Nothing to release."""


def torch_model(net: nn.Module, *, copy_model: bool = True, head: Optional[str] = None, **overrides: Any) -> Any:
    """Wrap a zoo model as an ``sdk.model.Model`` (the same pre-processing and decoding as its export).

    Args:
        net: a zoo model (``contract_spec()``, ``export_module()``, ``input_hw``).
        copy_model: evaluate a deep copy (the caller's model keeps its mode and export settings).
        head: YOLO-nano head to run (``"one2many"`` with NMS, ``"one2one"`` NMS-free); default: the
            model's export head.
        **overrides: post-processing options (``conf_threshold=...``).

    Returns:
        An ``sdk.model.Model`` whose backend is a :class:`TorchBackend`.

    Raises:
        TypeError: ``net`` is not a zoo model.
    """
    from sdk.contract import ModelContract
    from sdk.decoders import PostprocessOptions
    from sdk.model import Model

    if not hasattr(net, "contract_spec") or not hasattr(net, "export_module"):
        raise TypeError(f"net: expected a converters.zoo model (with contract_spec/export_module), "
                        f"got {type(net).__name__}")
    if copy_model:
        net = copy.deepcopy(net)
    net = net.float().eval()
    kw: Dict[str, Any] = {}
    if head is not None:
        if not hasattr(net, "export_mode"):
            raise ValueError(f"head: only YOLO-nano models have heads to choose, got a {type(net).__name__}")
        kw["head"] = head
    spec = net.contract_spec(**kw)
    contract = ModelContract.from_dict(spec)
    h, w = net.input_hw
    backend = TorchBackend(net.export_module(**kw), input_name=contract.input.name or "images",
                           input_shape=(1, 3, h, w), output_names=tuple(spec["outputs"]))
    options = PostprocessOptions().merged(**dict(contract.postprocess)).merged(**overrides)
    family = getattr(net, "family", "model")
    return Model(Path(f"<torch {family}>"), contract, backend, options=options)


def eval_predictor(net: nn.Module, *, copy_model: bool = True, head: Optional[str] = None,
                   overrides: Optional[Dict[str, Any]] = None) -> Any:
    """:func:`torch_model` with the evaluation overrides of its task (a low threshold for detection mAP).

    Returns:
        An ``sdk.model.Model`` (a :class:`converters.evaluation.Predictor`).
    """
    task = net.contract_spec()["task"]
    opts = dict(EVAL_OVERRIDES.get(task, {}))
    opts.update(overrides or {})
    return torch_model(net, copy_model=copy_model, head=head, **opts)
