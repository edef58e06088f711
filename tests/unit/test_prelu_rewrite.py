"""The build's PRelu rewrite (infra/models/prelu.py) computes PRelu exactly, on a model made here."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from infra.models.prelu import rewrite_prelu


def _conv_prelu_model(slope: np.ndarray, computed_slope: bool = False) -> bytes:
    rng = np.random.default_rng(3)
    weights = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    initializers = [weights]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv")]
    if computed_slope:
        initializers.append(numpy_helper.from_array(slope, "slope_source"))
        nodes.append(helper.make_node("Identity", ["slope_source"], ["slope"], name="identity"))
    else:
        initializers.append(numpy_helper.from_array(slope, "slope"))
    nodes.append(helper.make_node("PRelu", ["c", "slope"], ["y"], name="prelu"))
    graph = helper.make_graph(
        nodes,
        "conv_prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 7, 5])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 7
    return model.SerializeToString()


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_rewrite_equals_prelu_for_negative_and_large_slopes() -> None:
    # Slopes below 0 and above 1 occur in MTCNN's nets: the identity must not assume 0 <= a <= 1.
    slope = np.array([-1.3, 0.0, 0.25, 1.2], dtype=np.float32).reshape(1, 4, 1, 1)
    original = _conv_prelu_model(slope)
    rewritten = rewrite_prelu(original)
    ops = [node.op_type for node in onnx.load_from_string(rewritten).graph.node]
    assert "PRelu" not in ops and ops.count("Min") == 1
    x = np.random.default_rng(0).normal(size=(1, 3, 9, 7)).astype(np.float32)
    expected = _run(original, x)
    assert (expected < 0).any() and (expected > 0).any()
    np.testing.assert_allclose(_run(rewritten, x), expected, rtol=1e-6, atol=1e-6)


def test_model_without_prelu_is_returned_unchanged() -> None:
    rewritten = rewrite_prelu(_conv_prelu_model(np.ones((1, 4, 1, 1), np.float32)))
    assert rewrite_prelu(rewritten) == rewritten


def test_computed_slope_is_refused() -> None:
    with pytest.raises(ValueError, match="computed slope"):
        rewrite_prelu(_conv_prelu_model(np.ones((1, 4, 1, 1), np.float32), computed_slope=True))
