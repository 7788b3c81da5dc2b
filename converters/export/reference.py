"""The PyTorch reference run through the SDK's own pre- and post-processing.

:func:`torch_model` wraps an ``nn.Module`` in a tiny backend (``sdk.backends`` protocol) and builds an
``sdk.Model`` around it, so the reference and every converted artifact share the runtime's
pre-processing (the same code calibration tensors come from) and decoders; only the network differs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from sdk.backends.base import TensorSpec
from sdk.contract import ModelContract

__all__ = ["TorchBackend", "torch_model", "preprocess_batch"]

logger = logging.getLogger(__name__)


class TorchBackend:
    """``sdk`` backend protocol around a PyTorch module taking one ``[1, 3, H, W]`` float32 input.

    Args:
        module: the export module (eval mode); returns a tensor or a tuple/dict of tensors.
        input_name: the input's name.
        input_shape: ``(1, 3, H, W)``.
        output_names: names for the outputs, in the module's order.
    """

    name = "torch"

    def __init__(self, module: Any, *, input_name: str, input_shape: Sequence[int], output_names: Sequence[str]) -> None:
        import torch

        self.module = module.eval()
        self.metadata: Dict[str, str] = {}
        self.inputs: List[TensorSpec] = [TensorSpec(input_name, tuple(input_shape), np.float32)]
        with torch.no_grad():
            outs = self._outputs(self.module(torch.zeros(tuple(input_shape))))
        if len(outs) != len(output_names):
            from .errors import ExportError

            raise ExportError(f"the model returns {len(outs)} outputs, expected {len(output_names)} "
                              f"(contract outputs {list(output_names)})")
        self.output_names = list(output_names)
        self.outputs = [TensorSpec(n, tuple(o.shape), np.float32) for n, o in zip(output_names, outs)]

    @staticmethod
    def _outputs(out: Any) -> list:
        if isinstance(out, Mapping):
            return list(out.values())
        if isinstance(out, (tuple, list)):
            return list(out)
        return [out]

    def infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """``{input: (1, 3, H, W) float32}`` → ``{output name: float32 array}``."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(feeds[self.inputs[0].name], np.float32))
        with torch.no_grad():
            outs = self._outputs(self.module(x))
        return {n: o.detach().float().cpu().numpy() for n, o in zip(self.output_names, outs)}

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> dict:
        return {"name": self.name, "module": type(self.module).__name__}


def torch_model(module: Any, contract: "ModelContract | Mapping[str, Any]") -> Any:
    """An ``sdk.Model`` that runs ``module`` (NCHW float32 input) with ``contract``'s pre/post-processing.

    Args:
        module: the export module.
        contract: an NCHW float32 contract (dict or ModelContract).

    Returns:
        ``sdk.model.Model``: call it on BGR uint8 frames like any loaded artifact.
    """
    from sdk.decoders import PostprocessOptions
    from sdk.model import Model

    c = contract if isinstance(contract, ModelContract) else ModelContract.from_dict(dict(contract))
    shape = [1 if d is None else d for d in c.input.shape]
    outputs = list(c.outputs) or ["output0"]
    backend = TorchBackend(module, input_name=c.input.name or "images", input_shape=shape, output_names=outputs)
    options = PostprocessOptions().merged(**dict(c.postprocess))
    return Model(Path(f"<torch {type(module).__name__}>"), c, backend, options=options)


def preprocess_batch(model: Any, images: Sequence[np.ndarray]) -> np.ndarray:
    """Pre-process frames exactly as ``model`` (an ``sdk.Model``) does at run time.

    Returns:
        ``(N, 1, ...)`` stacked network inputs (the model's layout and dtype).
    """
    return np.stack([model.preprocess(im)[0] for im in images])
