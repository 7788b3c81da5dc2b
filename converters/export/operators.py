"""Name the operator a converter could not translate, and the submodule it came from.

Exporters report an unsupported operator in their own words (TorchScript: ``"Exporting the operator
'aten::x' ..."`` or ``"unrecognized namespace mylib::op"``; dynamo / litert-torch: ``"OpOverload(op=
'mylib.op' ...)"`` or ``"torch.ops.mylib.op.default"``). :func:`diagnose` extracts the operator from the
message, runs the model once under a ``TorchDispatchMode`` that records which submodule was executing
when each operator was dispatched, and returns an :class:`UnsupportedOperatorError` naming both.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional

from .errors import UnsupportedOperatorError

__all__ = ["diagnose", "op_from_message", "op_module_paths"]

logger = logging.getLogger(__name__)

_PATTERNS = (
    re.compile(r"operator '([A-Za-z_][\w.]*::[\w.]+)'"),
    re.compile(r"namespace ([A-Za-z_]\w*::\w+)"),
    re.compile(r"OpOverload\(op='([A-Za-z_]\w*)\.(\w+)'"),
    re.compile(r"torch\.ops\.([A-Za-z_]\w*)\.(\w+)\.\w+"),
    re.compile(r"\b((?:aten|prim|[a-z_]\w*)::\w+)\b"),
)
_IGNORE_NAMESPACES = ("prim",)


def op_from_message(message: str) -> Optional[str]:
    """The ``namespace::name`` of the operator an exporter error message complains about, or None."""
    for pattern in _PATTERNS:
        for match in pattern.finditer(message):
            op = "::".join(match.groups()) if len(match.groups()) == 2 else match.group(1)
            if op.split("::")[0] not in _IGNORE_NAMESPACES:
                return op
    return None


def op_module_paths(model: Any, example: Any) -> Dict[str, str]:
    """Run ``model(example)`` once and map each dispatched operator to the first submodule that called it.

    Args:
        model: an ``nn.Module``.
        example: its input tensor (or a tuple of inputs).

    Returns:
        ``{"aten::conv2d": "features.0.0", ...}``; ``""`` is the root module.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    names = {id(m): n for n, m in model.named_modules()}
    stack: List[str] = []
    seen: Dict[str, str] = {}

    def pre(module: Any, args: Any) -> None:
        stack.append(names.get(id(module), stack[-1] if stack else ""))

    def post(module: Any, args: Any, out: Any) -> None:
        if stack:
            stack.pop()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            schema = getattr(func, "_schema", None)
            key = schema.name if schema is not None else str(func)
            seen.setdefault(key, stack[-1] if stack else "")
            return func(*args, **(kwargs or {}))

    handles = [m.register_forward_pre_hook(pre) for m in model.modules()]
    handles += [m.register_forward_hook(post) for m in model.modules()]
    try:
        with torch.no_grad(), Recorder():
            model(*(example if isinstance(example, tuple) else (example,)))
    finally:
        for h in handles:
            h.remove()
    return seen


def diagnose(exc: BaseException, model: Any, example: Any, target: str) -> Optional[UnsupportedOperatorError]:
    """Turn an exporter failure into an :class:`UnsupportedOperatorError` when it is about an operator.

    Args:
        exc: what the exporter raised.
        model: the module being exported.
        example: its example input.
        target: ``"onnx"``, ``"tflite"`` or ``"openvino"``.

    Returns:
        The error to raise (chain it from ``exc``), or None when the failure is not about an operator.
    """
    text = f"{exc}\n{getattr(exc, '__cause__', '') or ''}"
    op = op_from_message(text)
    if op is None:
        return None
    try:
        paths = op_module_paths(model, example)
    except Exception:  # noqa: BLE001 - the diagnosis must not hide the original failure
        logger.debug("could not trace %s to find %s", type(model).__name__, op, exc_info=True)
        paths = {}
    short = op.split("::")[-1]
    path = paths.get(op)
    if path is None:
        path = next((p for k, p in paths.items() if k.split("::")[-1].split(".")[0] == short), None)
    where = ("the root module" if path == "" else f"module '{path}'") if path is not None else "an unknown module"
    hint = ("register an ONNX symbolic/translation for it, or replace it with supported operators"
            if target in ("onnx", "openvino") else "replace it with operators LiteRT supports (or a composite)")
    message = (f"{target}: unsupported operator {op} (called from {where} of {type(model).__name__}); "
               f"expected only operators the {target} converter can translate; {hint}. "
               f"Converter said: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__}")
    return UnsupportedOperatorError(message, op=op, module_path=path, target=target)
