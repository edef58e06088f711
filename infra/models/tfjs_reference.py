"""Run a tfjs graph model's original graph with TensorFlow, as the independent reference for ``tfjs_graph``.

Build-time check only, run with a Python that has TensorFlow (any 2.x CPU build, in a throwaway virtual
environment; it is no dependency of the project):

    TF_PYTHON -m infra.models.tfjs_reference MODEL.json SHARD_DIR IMAGES.npy OUT.npz TENSOR [TENSOR...]

``IMAGES.npy`` holds uint8 NHWC images, all of one size, fed one at a time to the graph's ``Placeholder``; OUT.npz
holds, per requested tensor name, the stacked values. The GraphDef is rebuilt from ``modelTopology`` with every
``Const`` filled from the weight shards (dequantised here with the manifest's own formula, not by
``tfjs_graph``), and TensorFlow's kernels execute every node, the preprocessing ``while`` loop included. The one
tfjs-only op, ``FusedDepthwiseConv2dNative``, is split back into TensorFlow's ``DepthwiseConv2dNative`` +
``BiasAdd`` + activation.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np


def _weights(model: dict, shard_dir: Path) -> dict[str, np.ndarray]:
    values = {}
    for group in model["weightsManifest"]:
        buffer = b"".join((shard_dir / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = entry["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = entry.get("quantization")
            stored = np.dtype(quant["dtype"] if quant else entry["dtype"])
            raw = np.frombuffer(buffer, stored, count, offset)
            offset += count * stored.itemsize
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            values[entry["name"]] = raw.astype(quant.get("original_dtype", entry["dtype"]) if quant else raw.dtype)
            values[entry["name"]] = values[entry["name"]].reshape(shape)
    return values


def _graph_def(model: dict, weights: dict[str, np.ndarray]):
    import tensorflow as tf
    from google.protobuf import json_format

    nodes = []
    for node in model["modelTopology"]["node"]:
        node = json.loads(json.dumps(node))
        if node["op"] == "Const":
            tensor = tf.make_tensor_proto(weights[node["name"]])
            node["attr"]["value"] = {"tensor": json.loads(json_format.MessageToJson(tensor))}
        if node["op"] in _UNFUSED:
            nodes.extend(_split_fused_conv(node))
            continue
        nodes.append(node)
    graph_def = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": nodes, "versions": model["modelTopology"].get("versions", {})}, graph_def)
    return graph_def


_UNFUSED = {"FusedDepthwiseConv2dNative": "DepthwiseConv2dNative", "_FusedConv2D": "Conv2D"}
_CONV_ATTRS = ("strides", "padding", "dilations", "data_format", "explicit_paddings")


def _split_fused_conv(node: dict) -> list[dict]:
    """A fused convolution (bias, then an optional activation) as TensorFlow's plain ops, one kernel each."""
    fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
    if fused[0] != "BiasAdd" or len(fused) > 2:
        raise ValueError(f"{node['name']}: fused ops {fused} are not handled")
    x, weight, bias = [i for i in node["input"] if not i.startswith("^")]
    float_type = {"T": {"type": "DT_FLOAT"}}
    conv_attrs = {k: v for k, v in node["attr"].items() if k in _CONV_ATTRS} | float_type
    name = node["name"]
    conv = {"name": name + "/_conv", "op": _UNFUSED[node["op"]], "input": [x, weight], "attr": conv_attrs}
    bias_add = {"name": name, "op": "BiasAdd", "input": [conv["name"], bias], "attr": float_type}
    if len(fused) == 1:
        return [conv, bias_add]
    bias_add["name"] = name + "/_bias"
    return [conv, bias_add, {"name": name, "op": fused[1], "input": [bias_add["name"]], "attr": float_type}]


def run(model_path: Path, shard_dir: Path, images: np.ndarray, tensors: list[str]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    model = json.loads(model_path.read_text(encoding="utf-8"))
    graph_def = _graph_def(model, _weights(model, shard_dir))
    placeholder = next(n["name"] for n in model["modelTopology"]["node"] if n["op"] == "Placeholder")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    results: dict[str, list[np.ndarray]] = {t: [] for t in tensors}
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        fetches = [graph.get_tensor_by_name(t if ":" in t else t + ":0") for t in tensors]
        for image in images:
            values = session.run(fetches, {placeholder + ":0": image[None]})
            for name, value in zip(tensors, values, strict=True):
                results[name].append(value[0])
    return {name: np.stack(values) for name, values in results.items()}


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, shard_dir, images_path, out_path, *tensors = argv
    images = np.load(images_path)
    outputs = run(Path(model_path), Path(shard_dir), images, tensors)
    np.savez(out_path, **{f"t{i}": outputs[t] for i, t in enumerate(tensors)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
