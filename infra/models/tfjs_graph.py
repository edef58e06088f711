"""TensorFlow.js graph models (``model.json`` + weight shards) to plain ONNX, with the ``onnx`` package and numpy.

A tfjs graph model is a TensorFlow GraphDef written as JSON (``modelTopology.node``) whose constants live in binary
shards described by ``weightsManifest`` (name, shape, dtype and, when the converter quantised them, an affine
``uint8``/``uint16`` code ``value = q * scale + min`` or a ``float16`` code). This module reads both and converts
the part of the graph between one tensor and a set of output tensors, node by node, into ONNX nodes:

- the graph input is any tensor of the original graph (``cut``): everything upstream of it is not converted, so
  a preprocessing ``while`` loop (``Enter``/``Merge``/``Switch``/``TensorList*``) is left to the caller;
- ops with control flow or data-dependent shapes (``NonMaxSuppression*``, ``TopKV2``, ``Where``, loops) are
  refused with the node's name, as is every op not listed in :data:`SUPPORTED_OPS`.

Layout: every converted tensor keeps TensorFlow's NHWC meaning, so that reshapes, concatenations and slices are
copied as they are; each convolution is wrapped in ``Transpose`` NHWC -> NCHW -> NHWC, which ONNX Runtime's
layout optimiser folds away between adjacent convolutions. ``SAME`` padding maps to ``auto_pad=SAME_UPPER``
(TensorFlow pads the extra row and column at the end, as ``SAME_UPPER`` does).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

OPSET = 13
IR_VERSION = 8  # readable by every onnxruntime since 1.10

SUPPORTED_OPS = (
    "Const",
    "Identity",
    "_FusedConv2D",
    "Conv2D",
    "DepthwiseConv2dNative",
    "FusedDepthwiseConv2dNative",
    "AddV2",
    "Add",
    "Sub",
    "Mul",
    "RealDiv",
    "Maximum",
    "Minimum",
    "Relu",
    "Relu6",
    "Sigmoid",
    "Exp",
    "Reshape",
    "ConcatV2",
    "Pack",
    "Unpack",
    "ExpandDims",
    "Squeeze",
    "Transpose",
    "Slice",
    "Pad",
    "Mean",
    "ResizeBilinear",
)

_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
    "int64": np.int64,
}
_QUANT_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


class TfjsGraphError(ValueError):
    """A model.json, weight shard or graph that cannot be converted; the message names the node or weight."""


# ----------------------------------------------------------------------------------------------- reading


def decode_weights(manifest: list[dict[str, Any]], shards: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """Every weight in ``weightsManifest``, dequantised to its original dtype.

    Each manifest group's ``paths`` are concatenated in order; its weights follow one another in that buffer.
    """
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            buffer = b"".join(shards[path] for path in group["paths"])
        except KeyError as exc:
            raise TfjsGraphError(f"weight shard {exc.args[0]!r} is missing") from exc
        offset = 0
        for entry in group["weights"]:
            name, shape, dtype = entry["name"], [int(d) for d in entry["shape"]], entry["dtype"]
            count = int(np.prod(shape, dtype=np.int64))
            quant = entry.get("quantization")
            if dtype == "string":
                raise TfjsGraphError(f"weight {name!r}: string tensors are not supported")
            stored = _QUANT_DTYPES.get(quant["dtype"]) if quant else _DTYPES.get(dtype)
            if stored is None:
                raise TfjsGraphError(f"weight {name!r}: unsupported dtype {quant['dtype'] if quant else dtype!r}")
            size = count * np.dtype(stored).itemsize
            if offset + size > len(buffer):
                raise TfjsGraphError(f"weight {name!r} runs past the end of its shards ({len(buffer)} bytes)")
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                target = _DTYPES[quant.get("original_dtype", dtype)]
                value = (raw.astype(np.float64) * quant["scale"] + quant["min"]).astype(target)
            elif quant:
                value = raw.astype(_DTYPES[quant.get("original_dtype", dtype)])
            else:
                value = raw.copy()
            weights[name] = value.reshape(shape)
        if offset != len(buffer):
            raise TfjsGraphError(f"weight shards {group['paths']} hold {len(buffer) - offset} bytes beyond the manifest")
    return weights


@dataclass
class GraphModel:
    """A parsed tfjs graph model: its nodes by name (in file order) and its decoded constants."""

    nodes: dict[str, dict[str, Any]]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]
    format: str

    @classmethod
    def load(cls, model_json: bytes | str, shards: Mapping[str, bytes]) -> GraphModel:
        try:
            model = json.loads(model_json)
            topology = model["modelTopology"]
            node_list = topology["node"]
            manifest = model["weightsManifest"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TfjsGraphError(f"not a tfjs graph model: {exc}") from exc
        if model.get("format", "graph-model") != "graph-model":
            raise TfjsGraphError(f"not a tfjs graph model: format is {model.get('format')!r}")
        if topology.get("library", {}).get("function"):
            raise TfjsGraphError("graphs with function libraries are not supported")
        nodes = {node["name"]: node for node in node_list}
        return cls(nodes, decode_weights(manifest, shards), model.get("signature", {}), model.get("format", ""))

    def const(self, name: str) -> np.ndarray:
        node = self.nodes.get(name)
        if node is None or node["op"] != "Const":
            raise TfjsGraphError(f"{name!r} is not a Const node")
        if name not in self.weights:
            raise TfjsGraphError(f"Const {name!r} has no value in the weights manifest")
        return self.weights[name]


def _ref(tensor: str) -> tuple[str, int]:
    """``node:index`` (index 0 when absent) of a TensorFlow input reference."""
    name, _, index = tensor.partition(":")
    return name, int(index) if index else 0


def _data_inputs(node: dict[str, Any]) -> list[str]:
    return [i for i in node.get("input", []) if not i.startswith("^")]


def _attr(node: dict[str, Any], key: str, default: Any = None) -> Any:
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8")
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "s" in items:
            return [base64.b64decode(v).decode("utf-8") for v in items["s"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        return []
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    return value


def upstream(graph: GraphModel, outputs: list[str], stop: set[str]) -> list[str]:
    """Node names needed for ``outputs`` in dependency order, not walking past ``stop`` (nor control inputs)."""
    order: list[str] = []
    state: dict[str, int] = {}
    for output in outputs:
        stack: list[tuple[str, bool]] = [(_ref(output)[0], False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            if name not in graph.nodes:
                raise TfjsGraphError(f"tensor {name!r} is not in the graph")
            state[name] = 1
            stack.append((name, True))
            if name in stop:
                continue
            for inp in _data_inputs(graph.nodes[name]):
                parent = _ref(inp)[0]
                if not state.get(parent):
                    stack.append((parent, False))
    return order


# ----------------------------------------------------------------------------------------------- converting


class _Builder:
    def __init__(self, graph: GraphModel) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.graph = graph
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[tuple[str, int], str] = {}
        self.constants: dict[tuple[str, int], np.ndarray] = {}
        self._counter = 0

    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}__{self._counter}"

    def initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> None:
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=self.fresh(name), **attrs))

    def value(self, tensor: str) -> str:
        """The ONNX name of a TensorFlow tensor; a constant becomes an initializer on first use as data."""
        ref = _ref(tensor)
        if ref not in self.names:
            if ref in self.constants:
                self.names[ref] = self.initializer(self.constants[ref], ref[0].replace("/", "_"))
            else:
                raise TfjsGraphError(f"tensor {tensor!r} is used before it is computed")
        return self.names[ref]

    def constant(self, tensor: str, user: str) -> np.ndarray:
        ref = _ref(tensor)
        if ref not in self.constants:
            raise TfjsGraphError(f"node {user!r}: input {tensor!r} must be a constant")
        return self.constants[ref]


def _conv(b: _Builder, name: str, x: str, weight: np.ndarray, bias: np.ndarray | None, node: dict, depthwise: bool) -> str:
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise TfjsGraphError(f"node {name!r}: only NHWC convolutions are supported")
    strides = _attr(node, "strides", [1, 1, 1, 1])
    dilations = _attr(node, "dilations", [1, 1, 1, 1])
    padding = _attr(node, "padding", "VALID")
    kh, kw, cin, cout = weight.shape
    if depthwise:
        # TensorFlow's depthwise output channel c * multiplier + m is ONNX group c's m-th output.
        onnx_weight = weight.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
        group = cin
    else:
        onnx_weight = weight.transpose(3, 2, 0, 1)
        group = 1
    attrs: dict[str, Any] = {
        "kernel_shape": [kh, kw],
        "strides": [strides[1], strides[2]],
        "dilations": [dilations[1], dilations[2]],
        "group": group,
    }
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding == "VALID":
        attrs["pads"] = [0, 0, 0, 0]
    elif padding == "EXPLICIT":
        explicit = _attr(node, "explicit_paddings", [])
        if len(explicit) != 8:
            raise TfjsGraphError(f"node {name!r}: explicit_paddings must have 8 values")
        attrs["pads"] = [explicit[2], explicit[4], explicit[3], explicit[5]]
    else:
        raise TfjsGraphError(f"node {name!r}: unknown padding {padding!r}")
    nchw = b.fresh(name + "_nchw")
    b.add("Transpose", [x], [nchw], name + "_to_nchw", perm=[0, 3, 1, 2])
    inputs = [nchw, b.initializer(onnx_weight.astype(np.float32), name + "_w")]
    if bias is not None:
        inputs.append(b.initializer(bias.astype(np.float32), name + "_b"))
    conv = b.fresh(name + "_conv")
    b.add("Conv", inputs, [conv], name, **attrs)
    out = b.fresh(name + "_nhwc")
    b.add("Transpose", [conv], [out], name + "_to_nhwc", perm=[0, 2, 3, 1])
    return out


def _activation(b: _Builder, name: str, x: str, kind: str) -> str:
    out = b.fresh(name + "_" + kind.lower())
    if kind == "Relu":
        b.add("Relu", [x], [out], name)
    elif kind == "Relu6":
        low = b.initializer(np.array(0.0, np.float32), "zero")
        high = b.initializer(np.array(6.0, np.float32), "six")
        b.add("Clip", [x, low, high], [out], name)
    else:
        raise TfjsGraphError(f"node {name!r}: unsupported fused activation {kind!r}")
    return out


def _fused_conv(b: _Builder, name: str, node: dict, depthwise: bool) -> str:
    inputs = _data_inputs(node)
    fused = _attr(node, "fused_ops", [])
    if not fused or fused[0] != "BiasAdd" or len(fused) > 2 or len(inputs) != 3:
        raise TfjsGraphError(f"node {name!r}: fused ops {fused} with {len(inputs)} inputs are not supported")
    weight = b.constant(inputs[1], name)
    bias = b.constant(inputs[2], name)
    out = _conv(b, name, b.value(inputs[0]), weight, bias, node, depthwise)
    return _activation(b, name, out, fused[1]) if len(fused) == 2 else out


def _resize_bilinear(b: _Builder, name: str, node: dict, x: str, size: np.ndarray) -> str:
    """TensorFlow's ``ResizeBilinear`` of an NHWC tensor to ``size`` (height, width).

    Done in NCHW with the output size built from the input's own batch and channel counts, so no static shape is
    needed; TensorFlow's two flags map onto ONNX coordinate modes (neither set: ``asymmetric``).
    """
    if len(size) != 2:
        raise TfjsGraphError(f"node {name!r}: ResizeBilinear size must have 2 values")
    if _attr(node, "align_corners", False):
        mode = "align_corners"
    elif _attr(node, "half_pixel_centers", False):
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    nchw = b.fresh(name + "_nchw")
    b.add("Transpose", [x], [nchw], name + "_to_nchw", perm=[0, 3, 1, 2])
    shape = b.fresh(name + "_shape")
    b.add("Shape", [nchw], [shape], name + "_shape")
    batch_channels = b.fresh(name + "_nc")
    b.add(
        "Slice",
        [shape, b.initializer(_i64([0]), "starts"), b.initializer(_i64([2]), "ends"), b.initializer(_i64([0]), "axes")],
        [batch_channels],
        name + "_nc",
    )
    sizes = b.fresh(name + "_sizes")
    b.add("Concat", [batch_channels, b.initializer(_i64(size), "hw")], [sizes], name + "_sizes", axis=0)
    resized = b.fresh(name + "_resized")
    b.add("Resize", [nchw, "", "", sizes], [resized], name, mode="linear", coordinate_transformation_mode=mode)
    out = b.fresh(name + "_nhwc")
    b.add("Transpose", [resized], [out], name + "_to_nhwc", perm=[0, 2, 3, 1])
    return out


def _i64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _convert_node(b: _Builder, name: str, node: dict) -> list[str] | None:
    """ONNX names of the node's outputs (None: a constant, kept in ``b.constants``)."""
    op = node["op"]
    inputs = _data_inputs(node)
    if op == "Const":
        b.constants[(name, 0)] = b.graph.const(name)
        return None
    if op not in SUPPORTED_OPS:
        raise TfjsGraphError(f"node {name!r}: op {op} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
    if all(_ref(i) in b.constants for i in inputs) and op in ("Identity", "ExpandDims", "Reshape", "Squeeze"):
        raise TfjsGraphError(f"node {name!r}: {op} of constants is not supported (fold it first)")

    out = b.fresh(name.replace("/", "_"))
    if op == "Identity":
        return [b.value(inputs[0])]
    if op == "_FusedConv2D":
        return [_fused_conv(b, name, node, depthwise=False)]
    if op == "FusedDepthwiseConv2dNative":
        return [_fused_conv(b, name, node, depthwise=True)]
    if op in ("Conv2D", "DepthwiseConv2dNative"):
        weight = b.constant(inputs[1], name)
        return [_conv(b, name, b.value(inputs[0]), weight, None, node, depthwise=op != "Conv2D")]
    binary = {"AddV2": "Add", "Add": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div", "Maximum": "Max", "Minimum": "Min"}
    if op in binary:
        b.add(binary[op], [b.value(inputs[0]), b.value(inputs[1])], [out], name)
        return [out]
    if op in ("Relu", "Relu6"):
        return [_activation(b, name, b.value(inputs[0]), op)]
    if op in ("Sigmoid", "Exp"):
        b.add(op, [b.value(inputs[0])], [out], name)
        return [out]
    if op == "Reshape":
        shape = b.constant(inputs[1], name)
        if np.any(shape == 0):
            raise TfjsGraphError(f"node {name!r}: reshape to a zero-sized dimension is not supported")
        b.add("Reshape", [b.value(inputs[0]), b.initializer(_i64(shape), "shape")], [out], name)
        return [out]
    if op == "ConcatV2":
        axis = int(b.constant(inputs[-1], name))
        b.add("Concat", [b.value(i) for i in inputs[:-1]], [out], name, axis=axis)
        return [out]
    if op == "Pack":
        axis = _attr(node, "axis", 0)
        axes = b.initializer(_i64([axis]), "axes")
        parts = []
        for inp in inputs:
            part = b.fresh(name + "_part")
            b.add("Unsqueeze", [b.value(inp), axes], [part], name + "_unsqueeze")
            parts.append(part)
        b.add("Concat", parts, [out], name, axis=axis)
        return [out]
    if op == "Unpack":
        axis, num = _attr(node, "axis", 0), _attr(node, "num")
        pieces = [b.fresh(name + f"_piece{i}") for i in range(num)]
        b.add("Split", [b.value(inputs[0])], pieces, name, axis=axis)
        axes = b.initializer(_i64([axis]), "axes")
        outs = []
        for i, piece in enumerate(pieces):
            squeezed = b.fresh(name + f"_{i}")
            b.add("Squeeze", [piece, axes], [squeezed], name + "_squeeze")
            outs.append(squeezed)
        return outs
    if op == "ExpandDims":
        axis = b.constant(inputs[1], name)
        b.add("Unsqueeze", [b.value(inputs[0]), b.initializer(_i64(axis), "axes")], [out], name)
        return [out]
    if op == "Squeeze":
        dims = _attr(node, "squeeze_dims", [])
        if dims:
            b.add("Squeeze", [b.value(inputs[0]), b.initializer(_i64(dims), "axes")], [out], name)
        else:
            b.add("Squeeze", [b.value(inputs[0])], [out], name)
        return [out]
    if op == "Transpose":
        perm = b.constant(inputs[1], name)
        b.add("Transpose", [b.value(inputs[0])], [out], name, perm=[int(p) for p in perm])
        return [out]
    if op == "Slice":
        begin = _i64(b.constant(inputs[1], name))
        size = _i64(b.constant(inputs[2], name))
        end = np.where(size < 0, np.iinfo(np.int64).max, begin + size)
        axes = np.arange(len(begin), dtype=np.int64)
        b.add(
            "Slice",
            [b.value(inputs[0]), b.initializer(begin, "starts"), b.initializer(end, "ends"), b.initializer(axes, "axes")],
            [out],
            name,
        )
        return [out]
    if op == "Pad":
        pads = b.constant(inputs[1], name).astype(np.int64)  # [rank, 2]
        onnx_pads = np.concatenate([pads[:, 0], pads[:, 1]])
        b.add("Pad", [b.value(inputs[0]), b.initializer(onnx_pads, "pads")], [out], name, mode="constant")
        return [out]
    if op == "Mean":
        axes = [int(a) for a in _i64(b.constant(inputs[1], name))]
        keep = 1 if _attr(node, "keep_dims", False) else 0
        b.add("ReduceMean", [b.value(inputs[0])], [out], name, axes=axes, keepdims=keep)
        return [out]
    if op == "ResizeBilinear":
        return [_resize_bilinear(b, name, node, b.value(inputs[0]), _i64(b.constant(inputs[1], name)))]
    raise TfjsGraphError(f"node {name!r}: op {op} is listed but not handled")  # pragma: no cover


def convert(
    graph: GraphModel,
    *,
    cut: str,
    input_name: str,
    input_shape: list[int | str],
    outputs: Mapping[str, str],
    model_name: str,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """The ONNX model computing ``outputs`` (ONNX name -> TensorFlow tensor) from the tensor ``cut``.

    ``cut`` becomes the float32 graph input ``input_name`` of shape ``input_shape``; ``metadata`` values are
    written as JSON into ``metadata_props``.
    """
    import onnx
    from onnx import TensorProto, helper

    if _ref(cut)[0] not in graph.nodes:
        raise TfjsGraphError(f"cut tensor {cut!r} is not in the graph")
    order = upstream(graph, list(outputs.values()), stop={_ref(cut)[0]})
    b = _Builder(graph)
    b.names[_ref(cut)] = input_name
    for name in order:
        if name == _ref(cut)[0]:
            continue
        produced = _convert_node(b, name, graph.nodes[name])
        if produced is not None:
            for index, onnx_name in enumerate(produced):
                b.names[(name, index)] = onnx_name
    for onnx_name, tensor in outputs.items():
        b.add("Identity", [b.value(tensor)], [onnx_name], onnx_name)
    # Output shapes come from ONNX's own shape inference over the converted nodes.
    probe = helper.make_model(
        helper.make_graph(
            b.nodes,
            model_name,
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
            [],
            initializer=b.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(probe).graph.value_info}
    graph_outputs = []
    for onnx_name in outputs:
        if onnx_name not in inferred:
            raise TfjsGraphError(f"output {onnx_name!r}: shape inference found no shape")
        graph_outputs.append(inferred[onnx_name])
    onnx_graph = helper.make_graph(
        b.nodes,
        model_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        graph_outputs,
        initializer=b.initializers,
    )
    model = helper.make_model(
        onnx_graph,
        producer_name="imagelift-tfjs2onnx",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(model)
    return model
