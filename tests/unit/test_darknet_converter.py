"""The Darknet cfg parser, the weights header, and the converter checked against a plain numpy Darknet forward pass.

The numpy reference follows Darknet's C code (convolutional_layer.c, maxpool_layer.c, upsample, route, shortcut),
not the converter: batch norm applied unfolded as ``(x - mean) / sqrt(var + 1e-6)`` (OpenCV's choice; Darknet
forks differ in where the epsilon goes, which matters below 1e-6 relative here), maxpool windows
starting at ``i * stride - padding // 2`` with out-of-range cells ignored.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import onnxruntime as ort
import pytest

from infra.models.darknet import DarknetError, convert, parse_cfg, read_weights


def _weights_file(values: np.ndarray, major: int = 0, minor: int = 2, revision: int = 0, seen: int = 64000) -> bytes:
    if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
        header = struct.pack("<3iQ", major, minor, revision, seen)
    else:
        header = struct.pack("<3iI", major, minor, revision, seen)
    return header + np.asarray(values, dtype="<f4").tobytes()


# --------------------------------------------------------------------------------------------- numpy reference


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> np.ndarray:
    filters, _, size, _ = kernel.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[1] + 2 * pad - size) // stride + 1
    out_w = (x.shape[2] + 2 * pad - size) // stride + 1
    out = np.zeros((filters, out_h, out_w), dtype=np.float64)
    for dy in range(size):
        for dx in range(size):
            patch = xp[:, dy : dy + stride * out_h : stride, dx : dx + stride * out_w : stride]
            out += np.einsum("fc,chw->fhw", kernel[:, :, dy, dx], patch)
    return out + bias[:, None, None]


def _maxpool(x: np.ndarray, size: int, stride: int, padding: int) -> np.ndarray:
    channels, height, width = x.shape
    out_h = (height + padding - size) // stride + 1
    out_w = (width + padding - size) // stride + 1
    offset = -(padding // 2)
    out = np.full((channels, out_h, out_w), -np.inf)
    for i in range(out_h):
        for j in range(out_w):
            for dy in range(size):
                for dx in range(size):
                    y, xx = offset + i * stride + dy, offset + j * stride + dx
                    if 0 <= y < height and 0 <= xx < width:
                        out[:, i, j] = np.maximum(out[:, i, j], x[:, y, xx])
    return out


def darknet_forward(cfg: str, weights: bytes, image: np.ndarray) -> list[np.ndarray]:
    """Raw inputs of every [yolo] layer for one CHW image, computed in float64 the way Darknet does."""
    sections = parse_cfg(cfg)
    _, values = read_weights(weights)
    values = values.astype(np.float64)
    offset = 0

    def take(n: int) -> np.ndarray:
        nonlocal offset
        chunk = values[offset : offset + n]
        offset += n
        return chunk

    outputs: list[np.ndarray] = []
    heads: list[np.ndarray] = []
    x = image.astype(np.float64)
    for index, s in enumerate(sections[1:]):
        o = s.options
        if s.kind == "convolutional":
            filters, size = int(o["filters"]), int(o.get("size", 1))
            stride, pad = int(o.get("stride", 1)), (int(o.get("size", 1)) // 2 if int(o.get("pad", 0)) else 0)
            bias = take(filters)
            if int(o.get("batch_normalize", 0)):
                scales, mean, var = take(filters), take(filters), take(filters)
            kernel = take(filters * x.shape[0] * size * size).reshape(filters, x.shape[0], size, size)
            x = _conv(x, kernel, np.zeros(filters) if int(o.get("batch_normalize", 0)) else bias, stride, pad)
            if int(o.get("batch_normalize", 0)):
                x = (x - mean[:, None, None]) / np.sqrt(var + 1e-6)[:, None, None]
                x = x * scales[:, None, None] + bias[:, None, None]
            if o.get("activation") == "leaky":
                x = np.where(x > 0, x, 0.1 * x)
        elif s.kind == "maxpool":
            size, stride = int(o.get("size", 1)), int(o.get("stride", 1))
            x = _maxpool(x, size, stride, int(o.get("padding", size - 1)))
        elif s.kind == "upsample":
            stride = int(o.get("stride", 2))
            x = x.repeat(stride, axis=1).repeat(stride, axis=2)
        elif s.kind == "route":
            idx = [int(v) for v in o["layers"].split(",")]
            x = np.concatenate([outputs[i if i >= 0 else index + i] for i in idx], axis=0)
        elif s.kind == "shortcut":
            frm = int(o["from"])
            x = x + outputs[frm if frm >= 0 else index + frm]
        elif s.kind == "yolo":
            heads.append(x)
        outputs.append(x)
    assert offset == values.size, "reference did not consume the weights exactly"
    return heads


# --------------------------------------------------------------------------------------------- cfg builder

SMALL_NET = """
[net]
width=64
height=64
channels=3

[convolutional]      # 0
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]            # 1: size 2 stride 2 halves
size=2
stride=2

[convolutional]      # 2
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[maxpool]            # 3: size 2 stride 1 keeps the size (padding 1, all after)
size=2
stride=1

[convolutional]      # 4
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky

[shortcut]           # 5
from=-3
activation=linear

[convolutional]      # 6
size=1
stride=1
pad=1
filters=18
activation=linear

[yolo]               # 7
mask = 1,2
anchors = 10,14, 23,27, 37,58
classes=4
num=3

[route]              # 8: absolute index
layers = 4

[upsample]           # 9
stride=2

[route]              # 10: negative and absolute
layers = -1, 1

[maxpool]            # 11: size 3 stride 1 (padding 2: one before, one after)
size=3
stride=1

[convolutional]      # 12
size=1
stride=1
pad=1
filters=9
activation=linear

[yolo]               # 13
mask = 0
anchors = 10,14, 23,27, 37,58
classes=4
num=3
"""


def _random_weights(cfg: str, rng: np.random.Generator) -> np.ndarray:
    """Darknet-ordered random weights: per conv, biases, [scales, mean, variance,] kernel."""
    channels = [3]
    per_layer: list[int] = []
    chunks: list[np.ndarray] = []
    for index, s in enumerate(parse_cfg(cfg)[1:]):
        o = s.options
        c = channels[-1]
        if s.kind == "convolutional":
            f, size = int(o["filters"]), int(o.get("size", 1))
            chunks.append(rng.normal(0, 0.1, f))
            if int(o.get("batch_normalize", 0)):
                chunks += [rng.uniform(0.5, 1.5, f), rng.normal(0, 0.1, f), rng.uniform(0.5, 1.5, f)]
            chunks.append(rng.normal(0, 1 / np.sqrt(c * size * size), f * c * size * size))
            c = f
        elif s.kind == "route":
            c = sum(per_layer[int(i) if int(i) >= 0 else index + int(i)] for i in o["layers"].split(","))
        per_layer.append(c)
        channels.append(c)
    return np.concatenate(chunks)


@pytest.fixture(scope="module")
def small_model():
    weights = _weights_file(_random_weights(SMALL_NET, np.random.default_rng(7)))
    converted = convert(SMALL_NET, weights, names=["a", "b", "c", "d"], model_name="small")
    session = ort.InferenceSession(converted.model.SerializeToString(), providers=["CPUExecutionProvider"])
    return converted, session, weights


# --------------------------------------------------------------------------------------------- tests


def test_parse_cfg_handles_comments_spacing_and_case():
    sections = parse_cfg(
        "# header\n[NET]\nwidth = 416 ; trailing\n\n[convolutional]\n filters=16 # c\nactivation=leaky\n"
    )
    assert [s.kind for s in sections] == ["net", "convolutional"]
    assert sections[0].options == {"width": "416"}
    assert sections[1].options == {"filters": "16", "activation": "leaky"}
    assert sections[1].line == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width=1\n[net]\n", "before the first"),
        ("[net\nwidth=1\n", "malformed section"),
        ("[net]\nwidth\n", "expected key=value"),
        ("[convolutional]\nfilters=1\n", r"must start with a \[net\]"),
    ],
)
def test_parse_cfg_rejects_malformed_text(text, message):
    with pytest.raises(DarknetError, match=message):
        parse_cfg(text)


@pytest.mark.parametrize(
    ("major", "minor", "header_bytes"),
    [(0, 2, 20), (1, 0, 20), (0, 1, 16), (0, 0, 16), (1000, 2, 16)],
)
def test_weights_header_seen_width(major, minor, header_bytes):
    values = np.arange(5, dtype=np.float32)
    seen = 2**33 + 5 if header_bytes == 20 else 123456
    header, payload = read_weights(_weights_file(values, major, minor, revision=3, seen=seen))
    assert (header.major, header.minor, header.revision, header.seen) == (major, minor, 3, seen)
    assert header.header_bytes == header_bytes
    np.testing.assert_array_equal(payload, values)


def test_weights_rejects_short_and_ragged_files():
    with pytest.raises(DarknetError, match="too short"):
        read_weights(b"\0" * 10)
    with pytest.raises(DarknetError, match="whole number"):
        read_weights(struct.pack("<3iQ", 0, 2, 0, 1) + b"\0\0\0")


@pytest.mark.parametrize("hw", [(64, 64), (96, 160)])
def test_converted_graph_matches_numpy_darknet(small_model, hw):
    _, session, weights = small_model
    image = np.random.default_rng(hw[1]).uniform(0, 1, (3, *hw)).astype(np.float32)
    ours = session.run(None, {"images": image[None]})
    reference = darknet_forward(SMALL_NET, weights, image)
    assert len(ours) == len(reference) == 2
    for got, want in zip(ours, reference, strict=True):
        assert got.shape[1:] == want.shape
        np.testing.assert_allclose(got[0], want, atol=2e-5, rtol=1e-5)


def test_maxpool_size2_stride1_keeps_spatial_size(small_model):
    converted, session, _ = small_model
    # Layer 3 is maxpool size 2 stride 1 after a stride-4 path: the first head stays at 1/4 of the input.
    out = session.run(None, {"images": np.zeros((1, 3, 96, 160), np.float32)})
    assert out[0].shape == (1, 18, 24, 40)
    assert out[1].shape == (1, 9, 48, 80)
    assert [h.stride for h in converted.heads] == [4, 2]


def test_metadata_holds_anchors_masks_names(small_model):
    _, session, _ = small_model
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["anchors"]) == [[10, 14], [23, 27], [37, 58]]
    assert json.loads(meta["masks"]) == [[1, 2], [0]]
    assert json.loads(meta["names"]) == ["a", "b", "c", "d"]
    assert json.loads(meta["outputs"]) == [o.name for o in session.get_outputs()]
    assert [d for d in session.get_inputs()[0].shape] == ["batch", 3, "height", "width"]


def test_weights_that_do_not_fit_the_cfg_are_refused():
    values = _random_weights(SMALL_NET, np.random.default_rng(1))
    with pytest.raises(DarknetError, match="ends early"):
        convert(SMALL_NET, _weights_file(values[:-1]))
    with pytest.raises(DarknetError, match="1 floats more"):
        convert(SMALL_NET, _weights_file(np.append(values, 0.0)))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("layers = 4", "layers = 9", "out of range"),
        ("layers = -1, 1", "layers = -1, -20", "out of range"),
        ("[upsample]", "[reorg]", "not supported"),
        ("filters=18", "filters=17", "channels"),
        ("activation=leaky", "activation=mish", "not supported"),
    ],
)
def test_unconvertible_cfgs_name_the_problem(replace, by, message):
    cfg = SMALL_NET.replace(replace, by, 1)
    with pytest.raises(DarknetError, match=message):
        convert(cfg, _weights_file(np.zeros(100_000, np.float32)))
