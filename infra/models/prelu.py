"""Rewrite every PRelu of an ONNX model as ``x + (slope - 1) * min(x, 0)``: the same function, about twice as fast.

ONNX Runtime's CPU PRelu with a per-channel slope runs through its generic broadcasting path: on MTCNN's nets it took
40-48% of P-Net's and R-Net's time at one thread, more than all their convolutions together. Min, Mul and Add with
the same broadcast are vectorised kernels. For ``x > 0`` the rewrite gives ``x``; for ``x <= 0`` it gives
``x + (a - 1) x = a x``: PRelu exactly, up to float rounding (measured <= 2e-6 on the nets' outputs).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

REWRITE_NAME = "prelu-as-min-mul-add/1"


def rewrite_prelu(model_bytes: bytes) -> bytes:
    """The model with each PRelu node replaced by Min, Mul, Add; slopes must be initializers."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    zero_name = "prelu_rewrite_zero"
    nodes = []
    used_slopes = set()
    rewritten = 0
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope_name = node.input
        if slope_name not in initializers:
            raise ValueError(f"PRelu {node.name!r} has a computed slope {slope_name!r}: cannot rewrite it")
        slope = numpy_helper.to_array(initializers[slope_name]).astype(np.float32)
        slope_minus_one = f"{node.name or node.output[0]}_slope_minus_one"
        graph.initializer.append(numpy_helper.from_array(slope - np.float32(1), slope_minus_one))
        used_slopes.add(slope_name)
        y = node.output[0]
        nodes += [
            helper.make_node("Min", [x, zero_name], [f"{y}_negative_part"], name=f"{node.name}_min"),
            helper.make_node("Mul", [f"{y}_negative_part", slope_minus_one], [f"{y}_scaled"], name=f"{node.name}_mul"),
            helper.make_node("Add", [x, f"{y}_scaled"], [y], name=f"{node.name}_add"),
        ]
        rewritten += 1
    if rewritten == 0:
        return model_bytes
    graph.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.float32), zero_name))
    still_used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name not in used_slopes or init.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model.SerializeToString()
