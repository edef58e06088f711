"""Darknet (YOLOv3 family) to ONNX, with the ``onnx`` package and numpy only.

Reads a Darknet ``.cfg`` and its ``.weights`` and writes an ONNX graph that computes exactly what Darknet
computes up to each ``[yolo]`` layer: the graph outputs are the raw head tensors (the linear convolution
in front of every ``[yolo]`` layer), one per head, in cfg order, shape ``[N, num_masks * (5 + classes), H/s, W/s]``.
Decoding (sigmoid, anchors, NMS) is left to the caller; anchors, masks, class names and ``scale_x_y`` go into
the model's ``metadata_props`` (JSON values) so the decoder needs nothing but the ``.onnx`` file.

Input: ``images`` ``[N, 3, H, W]`` float32, RGB, 0..1 (Darknet's own convention), H and W any multiple of 32.

Supported sections: ``[net]``, ``[convolutional]`` (batch_normalize or bias; groups; leaky, linear, relu,
logistic), ``[maxpool]`` (any size/stride, with Darknet's padding: ``padding`` defaults to ``size - 1``, split
``padding // 2`` before and the rest after, so size 2 stride 1 keeps the spatial size), ``[upsample]``,
``[route]`` (any number of layers, negative or absolute indices, optional ``groups``/``group_id``),
``[shortcut]`` (linear), ``[yolo]``. Anything else is refused with the section's line number.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Batch norm is folded as gamma / sqrt(var + 1e-6), which is what OpenCV's Darknet importer (our reference) does.
# Darknet forks disagree: pjreddie's normalize_cpu uses sqrt(var) + 1e-6, AlexeyAB's sqrt(var + 1e-5). On the
# yolov3-tiny COCO heads (values up to about +-24) pjreddie's form moves outputs by at most ~5e-4.
BN_EPSILON = 1e-6
LEAKY_SLOPE = 0.1
OPSET = 13
INPUT_NAME = "images"
INPUT_MULTIPLE = 32


class DarknetError(ValueError):
    """A cfg or weights file that cannot be converted; the message names the file and the place."""


@dataclass
class Section:
    kind: str
    options: dict[str, str]
    line: int

    def get_int(self, key: str, default: int | None = None) -> int:
        if key not in self.options:
            if default is None:
                raise DarknetError(f"[{self.kind}] at line {self.line} needs '{key}'")
            return default
        try:
            return int(self.options[key])
        except ValueError as exc:
            raise DarknetError(
                f"[{self.kind}] at line {self.line}: {key}={self.options[key]!r} is not an integer"
            ) from exc

    def get_float(self, key: str, default: float) -> float:
        try:
            return float(self.options.get(key, default))
        except ValueError as exc:
            raise DarknetError(
                f"[{self.kind}] at line {self.line}: {key}={self.options[key]!r} is not a number"
            ) from exc

    def get_ints(self, key: str, default: list[int] | None = None) -> list[int]:
        if key not in self.options:
            if default is None:
                raise DarknetError(f"[{self.kind}] at line {self.line} needs '{key}'")
            return default
        try:
            return [int(v) for v in self.options[key].split(",") if v.strip()]
        except ValueError as exc:
            raise DarknetError(
                f"[{self.kind}] at line {self.line}: {key}={self.options[key]!r} is not a list of integers"
            ) from exc


def parse_cfg(text: str) -> list[Section]:
    """Sections in file order. ``#`` and ``;`` start comments; keys and values are stripped."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise DarknetError(f"line {number}: malformed section header {raw.strip()!r}")
            sections.append(Section(line[1:-1].strip().lower(), {}, number))
            continue
        if "=" not in line:
            raise DarknetError(f"line {number}: expected key=value, got {raw.strip()!r}")
        if not sections:
            raise DarknetError(f"line {number}: option before the first [section]")
        key, value = line.split("=", 1)
        sections[-1].options[key.strip()] = value.strip()
    if not sections or sections[0].kind not in {"net", "network"}:
        raise DarknetError("cfg must start with a [net] section")
    return sections


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int
    header_bytes: int


def read_weights(data: bytes) -> tuple[WeightsHeader, np.ndarray]:
    """Header and the float32 payload. Darknet writes ``seen`` as 64 bits from version 0.2 on, 32 bits before."""
    if len(data) < 16:
        raise DarknetError(f"weights file too short for a header ({len(data)} bytes)")
    major, minor, revision = struct.unpack_from("<3i", data, 0)
    if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
        (seen,) = struct.unpack_from("<Q", data, 12)
        header_bytes = 20
    else:
        (seen,) = struct.unpack_from("<I", data, 12)
        header_bytes = 16
    payload = len(data) - header_bytes
    if payload % 4:
        raise DarknetError(f"weights payload of {payload} bytes is not a whole number of float32 values")
    values = np.frombuffer(data, dtype="<f4", offset=header_bytes).astype(np.float32, copy=False)
    return WeightsHeader(major, minor, revision, seen, header_bytes), values


@dataclass
class YoloHead:
    output: str
    layer_index: int
    mask: list[int]
    anchors: list[list[float]]
    classes: int
    stride: int
    scale_x_y: float


@dataclass
class ConvertedModel:
    model: object  # onnx.ModelProto; typed loosely so that importing this module never needs onnx
    heads: list[YoloHead]
    header: WeightsHeader
    names: list[str]
    default_size: tuple[int, int]
    metadata: dict[str, str] = field(default_factory=dict)


class _WeightReader:
    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.offset = 0

    def take(self, count: int, what: str) -> np.ndarray:
        if self.offset + count > self.values.size:
            raise DarknetError(
                f"weights file ends early: {what} needs {count} floats at offset {self.offset}, "
                f"only {self.values.size - self.offset} left (cfg and weights do not match)"
            )
        chunk = self.values[self.offset : self.offset + count]
        self.offset += count
        return chunk


def _resolve(index: int, current: int, section: Section) -> int:
    resolved = current + index if index < 0 else index
    if not 0 <= resolved < current:
        raise DarknetError(f"[{section.kind}] at line {section.line}: layer {index} is out of range at layer {current}")
    return resolved


def convert(
    cfg_text: str, weights: bytes, names: list[str] | None = None, model_name: str = "darknet"
) -> ConvertedModel:
    """Build the ONNX model. Raises DarknetError for anything it cannot convert faithfully."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sections = parse_cfg(cfg_text)
    header, values = read_weights(weights)
    reader = _WeightReader(values)
    net = sections[0]
    in_channels = net.get_int("channels", 3)
    default_size = (net.get_int("height", 416), net.get_int("width", 416))

    nodes: list = []
    initializers: list = []
    outputs: list[str] = []  # tensor name of each layer's output
    channels: list[int] = []  # channel count of each layer's output
    strides: list[int] = []  # total downsampling of each layer's output
    heads: list[YoloHead] = []

    def const(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(array, name))
        return name

    prev_name, prev_channels, prev_stride = INPUT_NAME, in_channels, 1
    for index, section in enumerate(sections[1:]):
        kind = section.kind
        out = f"{kind}_{index}"
        if kind == "convolutional":
            filters = section.get_int("filters")
            size = section.get_int("size", 1)
            stride = section.get_int("stride", 1)
            groups = section.get_int("groups", 1)
            pad = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
            if prev_channels % groups or filters % groups:
                raise DarknetError(f"[convolutional] at line {section.line}: groups={groups} does not divide channels")
            batch_norm = section.get_int("batch_normalize", 0)
            activation = section.options.get("activation", "logistic")
            bias = reader.take(filters, f"layer {index} biases")
            if batch_norm:
                gamma = reader.take(filters, f"layer {index} bn scales")
                mean = reader.take(filters, f"layer {index} bn mean")
                var = reader.take(filters, f"layer {index} bn variance")
            n_weights = filters * (prev_channels // groups) * size * size
            kernel = reader.take(n_weights, f"layer {index} kernel").reshape(
                filters, prev_channels // groups, size, size
            )
            if batch_norm:
                scale = gamma / np.sqrt(var + BN_EPSILON)
                kernel = kernel * scale[:, None, None, None]
                bias = bias - mean * scale
            conv_out = out if activation == "linear" else f"{out}_conv"
            w_name = const(f"{out}.weight", kernel.astype(np.float32))
            b_name = const(f"{out}.bias", bias.astype(np.float32))
            nodes.append(
                helper.make_node(
                    "Conv",
                    [prev_name, w_name, b_name],
                    [conv_out],
                    name=f"{out}_conv",
                    kernel_shape=[size, size],
                    strides=[stride, stride],
                    pads=[pad, pad, pad, pad],
                    group=groups,
                )
            )
            if activation == "leaky":
                nodes.append(helper.make_node("LeakyRelu", [conv_out], [out], name=f"{out}_leaky", alpha=LEAKY_SLOPE))
            elif activation == "relu":
                nodes.append(helper.make_node("Relu", [conv_out], [out], name=f"{out}_relu"))
            elif activation == "logistic":
                nodes.append(helper.make_node("Sigmoid", [conv_out], [out], name=f"{out}_logistic"))
            elif activation != "linear":
                raise DarknetError(
                    f"[convolutional] at line {section.line}: activation {activation!r} is not supported"
                )
            prev_channels, prev_stride = filters, prev_stride * stride
        elif kind == "maxpool":
            size = section.get_int("size", 1)
            stride = section.get_int("stride", 1)
            padding = section.get_int("padding", size - 1)
            before, after = padding // 2, padding - padding // 2
            nodes.append(
                helper.make_node(
                    "MaxPool",
                    [prev_name],
                    [out],
                    name=out,
                    kernel_shape=[size, size],
                    strides=[stride, stride],
                    pads=[before, before, after, after],
                )
            )
            prev_stride *= stride
        elif kind == "upsample":
            stride = section.get_int("stride", 2)
            if stride < 1:
                raise DarknetError(
                    f"[upsample] at line {section.line}: stride must be >= 1 (downsampling not supported)"
                )
            scales = const(f"{out}.scales", np.array([1, 1, stride, stride], dtype=np.float32))
            nodes.append(
                helper.make_node(
                    "Resize",
                    [prev_name, "", scales],
                    [out],
                    name=out,
                    mode="nearest",
                    coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor",
                )
            )
            prev_stride //= stride
        elif kind == "route":
            sources = [_resolve(i, index, section) for i in section.get_ints("layers")]
            groups = section.get_int("groups", 1)
            group_id = section.get_int("group_id", 0)
            parts: list[str] = []
            total = 0
            for source in sources:
                name, ch = outputs[source], channels[source]
                if groups > 1:
                    part = ch // groups
                    starts = const(f"{out}.{source}.starts", np.array([group_id * part], dtype=np.int64))
                    ends = const(f"{out}.{source}.ends", np.array([(group_id + 1) * part], dtype=np.int64))
                    axes = const(f"{out}.{source}.axes", np.array([1], dtype=np.int64))
                    sliced = f"{out}_slice_{source}"
                    nodes.append(helper.make_node("Slice", [name, starts, ends, axes], [sliced], name=sliced))
                    name, ch = sliced, part
                parts.append(name)
                total += ch
            if len({strides[s] for s in sources}) != 1:
                raise DarknetError(f"[route] at line {section.line}: layers {sources} have different spatial sizes")
            if len(parts) == 1:
                nodes.append(helper.make_node("Identity", parts, [out], name=out))
            else:
                nodes.append(helper.make_node("Concat", parts, [out], name=out, axis=1))
            prev_channels, prev_stride = total, strides[sources[0]]
        elif kind == "shortcut":
            source = _resolve(section.get_int("from"), index, section)
            if channels[source] != prev_channels or strides[source] != prev_stride:
                raise DarknetError(
                    f"[shortcut] at line {section.line}: layer {source} does not match layer {index - 1}"
                )
            activation = section.options.get("activation", "linear")
            if activation != "linear":
                raise DarknetError(f"[shortcut] at line {section.line}: activation {activation!r} is not supported")
            nodes.append(helper.make_node("Add", [prev_name, outputs[source]], [out], name=out))
        elif kind in {"yolo", "region"}:
            if kind == "region":
                raise DarknetError(f"[region] at line {section.line}: YOLOv2 heads are not supported")
            classes = section.get_int("classes", 20)
            anchors_flat = [float(v) for v in section.options.get("anchors", "").split(",") if v.strip()]
            num = section.get_int("num", len(anchors_flat) // 2)
            mask = section.get_ints("mask", list(range(num)))
            if len(anchors_flat) != 2 * num or any(not 0 <= m < num for m in mask):
                raise DarknetError(f"[yolo] at line {section.line}: anchors/num/mask do not agree")
            if prev_channels != len(mask) * (5 + classes):
                raise DarknetError(
                    f"[yolo] at line {section.line}: previous layer has {prev_channels} channels, "
                    f"expected {len(mask)} * (5 + {classes})"
                )
            head_name = f"yolo_{index}"
            nodes.append(helper.make_node("Identity", [prev_name], [head_name], name=head_name))
            heads.append(
                YoloHead(
                    output=head_name,
                    layer_index=index,
                    mask=mask,
                    anchors=[anchors_flat[i : i + 2] for i in range(0, len(anchors_flat), 2)],
                    classes=classes,
                    stride=prev_stride,
                    scale_x_y=section.get_float("scale_x_y", 1.0),
                )
            )
            out = prev_name  # a yolo layer passes its input through
        else:
            raise DarknetError(f"[{kind}] at line {section.line}: section type not supported")
        outputs.append(out)
        channels.append(prev_channels)
        strides.append(prev_stride)
        prev_name = out

    if reader.offset != values.size:
        raise DarknetError(
            f"weights file has {values.size - reader.offset} floats more than the cfg uses "
            f"({reader.offset} used): cfg and weights do not match"
        )
    if not heads:
        raise DarknetError("cfg has no [yolo] layer")
    classes = heads[0].classes
    if names is None:
        names = [f"class_{i}" for i in range(classes)]
    if len(names) != classes:
        raise DarknetError(f"{len(names)} class names given for {classes} classes")

    graph_outputs = [
        helper.make_tensor_value_info(
            head.output,
            TensorProto.FLOAT,
            ["batch", len(head.mask) * (5 + head.classes), f"height/{head.stride}", f"width/{head.stride}"],
        )
        for head in heads
    ]
    graph = helper.make_graph(
        nodes,
        model_name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", in_channels, "height", "width"])],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="imagelift-darknet2onnx",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    metadata = {
        "format": "darknet-yolo-raw-heads",
        "input": json.dumps({"name": INPUT_NAME, "layout": "NCHW", "color": "RGB", "scale": 1 / 255, "multiple": 32}),
        "default_size": json.dumps(list(default_size)),
        "anchors": json.dumps(heads[0].anchors),
        "masks": json.dumps([head.mask for head in heads]),
        "strides": json.dumps([head.stride for head in heads]),
        "scale_x_y": json.dumps([head.scale_x_y for head in heads]),
        "outputs": json.dumps([head.output for head in heads]),
        "classes": str(classes),
        "names": json.dumps(names),
        "darknet_header": json.dumps(
            {"major": header.major, "minor": header.minor, "revision": header.revision, "seen": header.seen}
        ),
    }
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return ConvertedModel(model, heads, header, names, default_size, metadata)


def convert_files(cfg: Path, weights: Path, names: Path | None, out: Path) -> ConvertedModel:
    """Convert ``cfg`` + ``weights`` (+ a names file, one class per line) and save to ``out``."""
    import onnx

    class_names = read_names(names) if names else None
    converted = convert(cfg.read_text(encoding="utf-8"), weights.read_bytes(), class_names, model_name=cfg.stem)
    onnx.save(converted.model, str(out))
    return converted


def read_names(path: Path) -> list[str]:
    return read_names_text(path.read_text(encoding="utf-8"))


def read_names_text(text: str) -> list[str]:
    """Class names, one per line (Darknet's .names format); blank lines are ignored."""
    return [line.strip() for line in text.splitlines() if line.strip()]
