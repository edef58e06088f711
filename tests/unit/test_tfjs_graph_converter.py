"""infra.models.tfjs_graph: weight decoding and the op-by-op conversion, against numpy written from TensorFlow's
documented semantics (SAME padding puts the odd extra row and column at the end; depthwise channel c * m + k).

The real model (HandTrack) is compared with TensorFlow itself in tests/integration/test_handtrack.py.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import onnxruntime as ort
import pytest

from infra.models.tfjs_graph import GraphModel, TfjsGraphError, convert, decode_weights


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _list_s(*items: str) -> dict:
    return {"list": {"s": [base64.b64encode(i.encode()).decode() for i in items]}}


def _ints(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _conv_attrs(stride: int, padding: str, fused: tuple[str, ...] = ()) -> dict:
    attrs = {"strides": _ints(1, stride, stride, 1), "padding": _s(padding), "data_format": _s("NHWC")}
    attrs["dilations"] = _ints(1, 1, 1, 1)
    if fused:
        attrs["fused_ops"] = _list_s(*fused)
        attrs["num_args"] = {"i": "1"}
    return attrs


def _pad_same(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """TensorFlow's SAME: output ceil(n / stride); total padding split with the extra one at the end."""
    pads = []
    for n in x.shape[1:3]:
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])


def _conv_ref(x: np.ndarray, w: np.ndarray, stride: int, padding: str) -> np.ndarray:
    k = w.shape[0]
    if padding == "SAME":
        x = _pad_same(x, k, stride)
    n, h, wd, _ = x.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, oh, ow, w.shape[3]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _depthwise_ref(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    k, _, cin, mult = w.shape
    x = _pad_same(x, k, stride)
    n, h, wd, _ = x.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, oh, ow, cin * mult), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]  # n k k cin
            for c in range(cin):
                for m in range(mult):
                    out[:, i, j, c * mult + m] = (patch[..., c] * w[:, :, c, m]).sum(axis=(1, 2))
    return out


def _quantise(values: np.ndarray) -> tuple[bytes, dict]:
    low, high = float(values.min()), float(values.max())
    scale = (high - low) / 255 or 1.0
    q = np.round((values - low) / scale).astype(np.uint8)
    return q.tobytes(), {"dtype": "uint8", "min": low, "scale": scale, "original_dtype": "float32"}


def _graph(rng: np.random.Generator) -> tuple[str, dict[str, bytes], dict[str, np.ndarray]]:
    """A small NHWC graph with every op the HandTrack feature and box part uses, and its dequantised weights."""
    values = {
        "w1": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
        "b1": rng.normal(size=(4,)).astype(np.float32),
        "dw": rng.normal(size=(3, 3, 4, 2)).astype(np.float32),
        "dwb": rng.normal(size=(8,)).astype(np.float32),
        "w2": rng.normal(size=(1, 1, 3, 8)).astype(np.float32),
        "b2": rng.normal(size=(8,)).astype(np.float32),
        "shape_up": np.array([1, 6, 4, 8], np.int32),
        "shape_flat": np.array([1, -1, 4], np.int32),
        "axis1": np.array(1, np.int32),
        "begin": np.array([0, 0, 1], np.int32),
        "size": np.array([-1, -1, 3], np.int32),
        "perm": np.array([0, 2, 1], np.int32),
    }
    manifest, data, decoded = [], b"", {}
    for name, value in values.items():
        if value.dtype == np.float32 and name != "b2":
            raw, quant = _quantise(value)
            entry = {"name": name, "shape": list(value.shape), "dtype": "float32", "quantization": quant}
            decoded[name] = (
                (np.frombuffer(raw, np.uint8).astype(np.float64) * quant["scale"] + quant["min"])
                .astype(np.float32)
                .reshape(value.shape)
            )
        else:
            raw = value.tobytes()
            entry = {
                "name": name,
                "shape": list(value.shape),
                "dtype": "int32" if value.dtype == np.int32 else "float32",
            }
            decoded[name] = value
        manifest.append(entry)
        data += raw
    const = [{"name": name, "op": "Const", "attr": {}} for name in values]
    nodes = [
        *const,
        {"name": "x", "op": "Placeholder", "attr": {}},
        {
            "name": "c1",
            "op": "_FusedConv2D",
            "input": ["x", "w1", "b1"],
            "attr": _conv_attrs(2, "SAME", ("BiasAdd", "Relu6")),
        },
        {
            "name": "d1",
            "op": "FusedDepthwiseConv2dNative",
            "input": ["c1", "dw", "dwb"],
            "attr": _conv_attrs(2, "SAME", ("BiasAdd",)),
        },
        {"name": "up1", "op": "Pack", "input": ["d1", "d1"], "attr": {"axis": {"i": "3"}, "N": {"i": "2"}}},
        {"name": "up2", "op": "Pack", "input": ["up1", "up1"], "attr": {"axis": {"i": "2"}, "N": {"i": "2"}}},
        {"name": "up", "op": "Reshape", "input": ["up2", "shape_up"], "attr": {}},
        {"name": "c2", "op": "_FusedConv2D", "input": ["x", "w2", "b2"], "attr": _conv_attrs(2, "VALID", ("BiasAdd",))},
        {"name": "sum", "op": "AddV2", "input": ["up:0", "c2", "^x"], "attr": {}},
        {"name": "flat", "op": "Reshape", "input": ["sum", "shape_flat"], "attr": {}},
        {"name": "cat", "op": "ConcatV2", "input": ["flat", "flat", "axis1"], "attr": {}},
        {"name": "sig", "op": "Sigmoid", "input": ["cat"], "attr": {}},
        {"name": "sl", "op": "Slice", "input": ["sig", "begin", "size"], "attr": {}},
        {"name": "tr", "op": "Transpose", "input": ["flat", "perm"], "attr": {}},
        {"name": "parts", "op": "Unpack", "input": ["tr"], "attr": {"axis": {"i": "1"}, "num": {"i": "4"}}},
        {"name": "mix", "op": "Mul", "input": ["parts:1", "parts:3"], "attr": {}},
        {"name": "ex", "op": "ExpandDims", "input": ["mix", "axis1"], "attr": {}},
    ]
    model = {
        "format": "graph-model",
        "modelTopology": {"node": nodes, "library": {}, "versions": {}},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
    }
    return json.dumps(model), {"group1-shard1of1.bin": data}, decoded


def _reference(x: np.ndarray, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    c1 = np.clip(_conv_ref(x, w["w1"], 2, "SAME") + w["b1"], 0, 6)
    d1 = _depthwise_ref(c1, w["dw"], 2) + w["dwb"]
    up = d1.repeat(2, axis=1).repeat(2, axis=2)
    c2 = _conv_ref(x, w["w2"], 2, "VALID") + w["b2"]
    total = up + c2
    flat = total.reshape(1, -1, 4)
    sig = 1 / (1 + np.exp(-np.concatenate([flat, flat], axis=1)))
    parts = flat.transpose(0, 2, 1)
    return sig[:, :, 1:], (parts[:, 1] * parts[:, 3])[:, None]


def test_conversion_matches_tensorflow_semantics_on_odd_sizes():
    rng = np.random.default_rng(3)
    text, shards, decoded = _graph(rng)
    graph = GraphModel.load(text, shards)
    for name in ("w1", "dw", "b2", "shape_up"):
        np.testing.assert_allclose(graph.weights[name], decoded[name], rtol=0, atol=1e-6)
    # 11 x 7 -> 6 x 4 -> 3 x 2 (both stride-2 SAME steps pad one row or column at the end only) -> upsampled 6 x 4.
    x = rng.normal(size=(1, 11, 7, 3)).astype(np.float32)
    model = convert(
        graph,
        cut="x",
        input_name="image",
        input_shape=[1, 11, 7, 3],
        outputs={"scores": "sl", "mixed": "ex"},
        model_name="tiny",
    )
    # c2 (VALID, 1 x 1, stride 2 on 11 x 7) is 6 x 4, the grid of the upsampled branch.
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    scores, mixed = session.run(["scores", "mixed"], {"image": x})
    ref_scores, ref_mixed = _reference(x.astype(np.float64), {k: v.astype(np.float64) for k, v in decoded.items()})
    assert scores.shape == ref_scores.shape == (1, 96, 3)
    np.testing.assert_allclose(scores, ref_scores, atol=2e-5)
    np.testing.assert_allclose(mixed, ref_mixed, atol=2e-4, rtol=1e-5)


def test_unsupported_op_is_named():
    text, shards, _ = _graph(np.random.default_rng(0))
    model = json.loads(text)
    model["modelTopology"]["node"].append({"name": "nms", "op": "NonMaxSuppressionV5", "input": ["sig"], "attr": {}})
    graph = GraphModel.load(json.dumps(model), shards)
    with pytest.raises(TfjsGraphError, match="'nms': op NonMaxSuppressionV5 is not supported"):
        convert(graph, cut="x", input_name="image", input_shape=[1, 11, 7, 3], outputs={"o": "nms"}, model_name="t")


def test_weights_decode_each_stored_dtype():
    halves = np.array([1.5, -2.25], np.float16)
    manifest = [
        {
            "paths": ["a.bin", "b.bin"],
            "weights": [
                {
                    "name": "q",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.5},
                },
                {"name": "h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
                {"name": "i", "shape": [], "dtype": "int32"},
            ],
        }
    ]
    data = bytes([0, 2, 255]) + halves.tobytes() + np.array(7, np.int32).tobytes()
    weights = decode_weights(manifest, {"a.bin": data[:4], "b.bin": data[4:]})
    np.testing.assert_array_equal(weights["q"], np.array([-1.0, 0.0, 126.5], np.float32))
    assert weights["q"].dtype == np.float32
    np.testing.assert_array_equal(weights["h"], halves.astype(np.float32))
    assert weights["i"].shape == () and int(weights["i"]) == 7


def test_weights_that_do_not_fit_their_shards_are_refused():
    manifest = [{"paths": ["a.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "float32"}]}]
    with pytest.raises(TfjsGraphError, match="'w' runs past the end"):
        decode_weights(manifest, {"a.bin": b"\0" * 8})
    with pytest.raises(TfjsGraphError, match="8 bytes beyond the manifest"):
        decode_weights(manifest, {"a.bin": b"\0" * 24})
    with pytest.raises(TfjsGraphError, match=r"shard 'a\.bin' is missing"):
        decode_weights(manifest, {})


def _tf_resize_bilinear(x: np.ndarray, out_h: int, out_w: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    """TensorFlow's ResizeBilinear kernel written out: source coordinate per output pixel, clamped neighbours."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = (n_in - 1) / (n_out - 1) if align_corners and n_out > 1 else n_in / n_out
        i = np.arange(n_out, dtype=np.float64)
        src = (i + 0.5) * scale - 0.5 if half_pixel else i * scale
        low = np.floor(src)
        frac = src - low
        return np.clip(low, 0, n_in - 1).astype(int), np.clip(low + 1, 0, n_in - 1).astype(int), frac

    y0, y1, fy = axis(x.shape[1], out_h)
    x0, x1, fx = axis(x.shape[2], out_w)
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bottom = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return top * (1 - fy)[None, :, None, None] + bottom * fy[None, :, None, None]


@pytest.mark.parametrize(("align_corners", "half_pixel"), [(False, False), (False, True), (True, False)])
def test_resize_bilinear_and_mean_match_tensorflow(align_corners, half_pixel):
    size = np.array([9, 4], np.int32)
    axes = np.array([1, 2], np.int32)
    manifest = [
        {"name": "size", "shape": [2], "dtype": "int32"},
        {"name": "axes", "shape": [2], "dtype": "int32"},
    ]
    nodes = [
        {"name": "size", "op": "Const", "attr": {}},
        {"name": "axes", "op": "Const", "attr": {}},
        {"name": "x", "op": "Placeholder", "attr": {}},
        {
            "name": "up",
            "op": "ResizeBilinear",
            "input": ["x", "size"],
            "attr": {"align_corners": {"b": align_corners}, "half_pixel_centers": {"b": half_pixel}},
        },
        {"name": "pooled", "op": "Mean", "input": ["up", "axes"], "attr": {"keep_dims": {"b": True}}},
    ]
    text = json.dumps(
        {
            "format": "graph-model",
            "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["w.bin"], "weights": manifest}],
        }
    )
    graph = GraphModel.load(text, {"w.bin": size.tobytes() + axes.tobytes()})
    model = convert(
        graph,
        cut="x",
        input_name="image",
        input_shape=[1, 5, 7, 3],
        outputs={"up": "up", "pooled": "pooled"},
        model_name="resize",
    )
    x = np.random.default_rng(5).normal(size=(1, 5, 7, 3)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    up, pooled = session.run(["up", "pooled"], {"image": x})
    expected = _tf_resize_bilinear(x.astype(np.float64), 9, 4, align_corners, half_pixel)
    assert up.shape == (1, 9, 4, 3)
    np.testing.assert_allclose(up, expected, atol=1e-5)
    np.testing.assert_allclose(pooled, expected.mean(axis=(1, 2), keepdims=True), atol=1e-5)
