"""Which layers an INT8 model keeps in float: the output "tail".

Quantising the last layers of a network costs the most accuracy for the least speed: box regression and
class logits feed a decode whose int8 rounding is visible in every box, and a classifier's or embedding's
last projection sets the output's resolution. The tail is found the same way in every format: walk back
from each graph output through the non-weighted operators (decode arithmetic, reshapes, concatenations,
activations) up to and including the first weighted layer (convolution / matrix multiply) on each path.
Those nodes are excluded from quantisation (ONNX ``nodes_to_exclude``, NNCF ``IgnoredScope``, an
ai-edge-quantizer ``NO_QUANTIZE`` entry) and listed in the contract's ``float_layers``.

``depth`` widens the tail to the ``depth``-th weighted layer on each path, for a model whose INT8 export
misses the accuracy gate. An example is a decoupled detection head: the shipped YOLO-nano's full-integer
TFLite model lost 0.0117 mAP50 at depth 1 and 0.0036 at depth 2, at a small cost in size and speed.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Dict, Iterable, List, Tuple

__all__ = ["check_depth", "tail_depth", "onnx_tail", "openvino_tail", "tflite_tail", "walk_tail"]

logger = logging.getLogger(__name__)

#: A tail longer than this many nodes means the walk found no weighted layer: keep nothing in float.
MAX_TAIL = 200

_ONNX_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_OV_WEIGHTED = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
_TFLITE_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}


def check_depth(depth: Any) -> int:
    """``depth`` as an int >= 1 (``True`` means 1); raises ``ValueError`` otherwise."""
    if depth is True:
        return 1
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"float tail depth: expected an int >= 1 (weighted layers kept in float on each output "
                         f"path), got {depth!r}")
    return depth


def tail_depth(keep_float: Any) -> int:
    """The depth an INT8 exporter's ``keep_float`` asks for: ``False`` → 0 (no float tail), ``True`` → 1, an
    int >= 1 as is; raises ``ValueError`` for anything else (0, negatives, floats, strings)."""
    return 0 if keep_float is False else check_depth(keep_float)


def walk_tail(outputs: Iterable[Any], parents: Callable[[Any], List[Any]], is_weighted: Callable[[Any], bool],
              key: Callable[[Any], str], depth: int = 1) -> List[str]:
    """Breadth-first walk from the output nodes, stopping at the ``depth``-th weighted node on each path.

    Args:
        outputs: nodes producing the graph outputs.
        parents: node → nodes producing its inputs (constants excluded).
        is_weighted: True for convolutions / matrix multiplies.
        key: node → its name.
        depth: weighted layers to include on each path (1: up to and including the first).

    Returns:
        Names of the tail nodes (empty when no weighted node was reached within :data:`MAX_TAIL` nodes; a
        path with fewer than ``depth`` weighted layers is kept whole).
    """
    depth = check_depth(depth)
    seen: Dict[str, int] = {}  # name -> fewest weighted nodes passed on the way from an output
    queue = deque((node, 0) for node in outputs)
    reached = False
    while queue:
        node, passed = queue.popleft()
        name = key(node)
        if name in seen and seen[name] <= passed:
            continue
        seen[name] = passed
        if len(seen) > MAX_TAIL:
            logger.info("no weighted layer within %d nodes of the outputs; nothing kept in float", MAX_TAIL)
            return []
        if is_weighted(node):
            reached = True
            passed += 1
            if passed >= depth:
                continue
        queue.extend((parent, passed) for parent in parents(node))
    return list(seen) if reached else []


def onnx_tail(model: Any, depth: int = 1) -> List[str]:
    """Tail node names of an ``onnx.ModelProto`` (``depth``: as :func:`walk_tail`)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    consts = {i.name for i in model.graph.initializer}

    def parents(node: Any) -> List[Any]:
        return [producer[i] for i in node.input if i in producer and i not in consts
                and producer[i].op_type != "Constant"]

    starts = [producer[o.name] for o in model.graph.output if o.name in producer]
    return walk_tail(starts, parents, lambda n: n.op_type in _ONNX_WEIGHTED, lambda n: n.name, depth)


def openvino_tail(model: Any, depth: int = 1) -> List[str]:
    """Tail node friendly names of an ``openvino.Model`` (for ``nncf.IgnoredScope(names=...)``; ``depth``: as
    :func:`walk_tail`)."""
    def parents(node: Any) -> List[Any]:
        out = []
        for i in range(node.get_input_size()):
            p = node.input_value(i).get_node()
            if p.get_type_name() not in ("Constant", "Parameter"):
                out.append(p)
        return out

    starts = [r.input_value(0).get_node() for r in model.get_results()]
    return walk_tail(starts, parents, lambda n: n.get_type_name() in _OV_WEIGHTED, lambda n: n.get_friendly_name(),
                     depth)


def tflite_tail(data: bytes, depth: int = 1) -> List[Tuple[str, str]]:
    """Tail ops of a float ``.tflite`` model (``depth``: as :func:`walk_tail`).

    Returns:
        ``[(op name, first output tensor name), ...]``; the tensor names are what ai-edge-quantizer
        matches its recipe regexes against.
    """
    from converters.tflite_metadata import load_schema_module

    schema = load_schema_module()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op: Any) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), str(code.builtinCode))

    producer = {int(t): i for i, op in enumerate(sg.operators) for t in (op.outputs if op.outputs is not None else [])}

    def tensor_name(i: int) -> str:
        n = sg.tensors[i].name
        return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)

    def parents(i: int) -> List[int]:
        return [producer[int(t)] for t in (sg.operators[i].inputs if sg.operators[i].inputs is not None else [])
                if int(t) in producer]

    starts = [producer[int(t)] for t in sg.outputs if int(t) in producer]
    tail = walk_tail(starts, parents, lambda i: op_name(sg.operators[i]) in _TFLITE_WEIGHTED, str, depth)
    return [(op_name(sg.operators[int(i)]), tensor_name(int(sg.operators[int(i)].outputs[0]))) for i in tail]
