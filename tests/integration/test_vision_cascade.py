"""The cascade on real photos: accuracy targets, the record contract, errors, orientation, other real photos."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.nets import DEFAULT_MODEL_IDS

from imagelift.config import VisionConfig
from imagelift.records.categories import CATEGORY_NAMES
from imagelift.vision.cascade import Cascade, Classification
from imagelift.vision.image_io import ImageDecodeError


@pytest.fixture(scope="module")
def cascade(models_dir: Path) -> Cascade:
    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1))


@pytest.fixture(scope="module")
def results(cascade: Cascade, labelled_photos: list[tuple[Path, int]]) -> list[tuple[Path, int, Classification]]:
    return [(path, label, cascade.classify_path(path)) for path, label in labelled_photos]


def test_accuracy_targets_on_the_labelled_photos(results) -> None:
    """Floors just under what the shipped thresholds score here (33/39, worn 8/14 of which one by the hand stage, no
    product wrong). They were chosen by cross-validation over these photos and the pool together, heavily against
    false persons, so they score lower on these 39 than a threshold fitted to them alone did (87%, worn 9/14)."""
    assert len(results) == 39
    correct = sum(r.category == label for _, label, r in results)
    worn_found = sum(r.category == 2 for _, label, r in results if label == 2)
    products_wrong = sum(r.category != 3 for _, label, r in results if label == 3)
    errors = [(p.name, label, r.category) for p, label, r in results if r.category != label]
    assert correct / len(results) >= 0.82, errors
    assert worn_found >= 7, errors
    assert products_wrong <= 1, errors


def test_every_model_photo_is_decided_by_a_face(results) -> None:
    for path, label, result in results:
        if label == 1:
            assert result.category == 1 and result.decided_by == "mtcnn" and result.faces, path.name


def test_record_contract(results) -> None:
    for path, _, result in results:
        record = json.loads(json.dumps(result.to_record()))  # JSON-able
        assert record["category"] in (1, 2, 3)
        assert record["category_name"] == CATEGORY_NAMES[record["category"]]
        assert record["decided_by"] in ("mtcnn", "movenet", "yolo", "handtrack", "none")
        assert {"decode", "mtcnn", "yolo", "total"} <= set(record["timings_ms"])
        assert set(record["models"]) == DEFAULT_MODEL_IDS
        assert all(len(v) == 12 for v in record["models"].values())
        assert record["thresholds"]["face_min_confidence"] > 0
        image = cv2.imread(str(path))
        assert (record["width"], record["height"]) == (image.shape[1], image.shape[0])
        for face in record["faces"]:
            x, y, w, h = face["box"]
            assert 0 <= x < record["width"] and 0 <= y < record["height"] and w > 0 and h > 0
            assert set(face["keypoints"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
            assert face["confidence"] >= record["thresholds"]["face_min_confidence"]
        thresholds = record["thresholds"]
        pass_threshold = {
            "full": thresholds["person_min_confidence"],
            "padded": thresholds["person_padded_min_confidence"],
        }
        for person in record["persons"]:
            assert len(person["box"]) == 4 and person["confidence"] >= pass_threshold[person["pass"]]
            assert person["net"] == record["person_net"] and person["pass"] == record["person_pass"]
        assert 0 <= record["best_face_score"] < thresholds["face_min_confidence"]
        assert isinstance(record["review"], bool)
        gate = record["face_gate"]
        assert gate["net"] == "yolov3-tiny" and gate["threshold"] == thresholds["face_gate_min_person"] > 0
        assert gate["open"] is (gate["person"] >= gate["threshold"])
        if not gate["open"]:  # no face was looked for
            assert not record["faces"] and record["best_face_score"] == 0 and record["timings_ms"]["mtcnn"] < 1
        if record["decided_by"] == "mtcnn":
            assert record["faces"] and record["category"] == 1
            assert record["person_scores"] is None and record["person_net"] is None
        elif record["decided_by"] == "yolo":
            assert record["persons"] and not record["faces"] and record["category"] == 2
            assert record["person_net"] in record["models"] and record["person_pass"] in pass_threshold
        elif record["decided_by"] == "handtrack":
            assert record["hands"] and not record["faces"] and not record["persons"] and record["category"] == 2
            assert record["hand_vote"]["fired"] is True
        else:
            assert not record["faces"] and not record["persons"] and record["category"] == 3
            assert record["person_net"] is None and record["person_pass"] is None
            assert record["hand_vote"]["fired"] is False and record["hands"] == []
        if record["decided_by"] != "mtcnn":
            scores = record["person_scores"]
            assert set(scores) == {"yolov3-tiny", "yolov4-tiny"}
            assert all(0 <= v <= 1 and name in pass_threshold for net in scores.values() for name, v in net.items())
            ran = {name for net in scores.values() for name in net}
            assert ran == {"full", *(["padded"] if thresholds["padded_pass"] else [])} or record["category"] == 2
            if record["category"] == 3:  # near misses: every pass ran and each stayed below its threshold
                for name in ran:
                    threshold = pass_threshold[name]
                    values = [net[name] for net in scores.values() if name in net]
                    if len(values) < len(scores):  # a net settled the pass: the rest were not run
                        assert thresholds["person_combine"] == "min"
                        assert min(values) < threshold - thresholds["review_margin"]
                    combined = _combine(thresholds["person_combine"], values)
                    assert combined < threshold
                    if record["review"] is False:
                        assert combined < threshold - thresholds["review_margin"]


def _combine(rule: str, values: list[float]) -> float:
    return {"max": max, "min": min, "mean": lambda v: sum(v) / len(v)}[rule](values)


def test_a_user_supplied_yolo_alone_still_works(models_dir: Path, labelled_photos) -> None:
    """The primary net can be any converted YOLO (a full YOLOv3, say) with no second opinion."""
    config = VisionConfig.from_env({}, models_dir=models_dir, threads=1, second_yolo_model="")
    single = Cascade.load(config)
    assert set(single.models) == {"pnet", "rnet", "onet", "yolov3-tiny", "handtrack", "movenet-lightning"}
    worn = next(path for path, label in labelled_photos if label == 2)
    record = single.classify_path(worn).to_record()
    assert set(record["person_scores"] or {"yolov3-tiny": {}}) == {"yolov3-tiny"}
    with pytest.raises(FileNotFoundError, match=r"yolov3-full\.onnx"):
        Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, yolo_model="yolo/yolov3-full.onnx"))


def test_face_boxes_are_in_photo_pixels(cascade: Cascade, photos_dir: Path) -> None:
    """The photo is decoded reduced and shrunk for MTCNN; boxes must still land on the full-size face."""
    path = photos_dir / "cat1_model" / "cat1_model_portrait_official.jpg"
    result = cascade.classify_path(path)
    full = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    from imagelift.vision.mtcnn import MTCNN

    direct = MTCNN(Path(cascade.config.models_dir) / "mtcnn").detect_faces(full)
    x, y, w, h = result.faces[0].box
    dx, dy, dw, dh = direct[0].box
    inter = max(0, min(x + w, dx + dw) - max(x, dx)) * max(0, min(y + h, dy + dh) - max(y, dy))
    assert inter / (w * h + dw * dh - inter) > 0.7


def test_bad_bytes_raise_typed_errors(cascade: Cascade) -> None:
    for data, code in [
        (b"", "empty"),
        (b"GIF89a" + bytes(20), "unsupported_format"),
        (b"hello\n" * 10, "unsupported_format"),
    ]:
        with pytest.raises(ImageDecodeError) as caught:
            cascade.classify_bytes(data, name="x")
        assert caught.value.code == code


def test_exif_rotated_phone_photo_is_classified_upright(cascade: Cascade, photos_dir: Path) -> None:
    """A phone stores pixels sideways and an orientation tag: the face must still be found."""
    from PIL import Image

    path = photos_dir / "cat1_model" / "cat1_model_woman_floral_dress.jpg"
    upright = Image.open(path).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # pixels turned left; tag 6 turns them back
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    result = cascade.classify_bytes(buffer.getvalue())
    assert (result.width, result.height) == upright.size
    assert result.category == 1 and result.faces


def _hand_score_on_the_edge(result: Classification, threshold: float, width: float = 0.05) -> bool:
    vote = result.hand_vote or {}
    scores = [vote.get(name) for name in ("stretched", "padded")]
    return any(s is not None and abs(s - threshold) < width for s in scores)


def test_png_and_webp_copies_agree_with_the_jpeg(cascade: Cascade, labelled_photos) -> None:
    """PNG is lossless and must agree everywhere. WebP at q95 moves scores by a few hundredths, so it must agree
    except where the JPEG's hand score sits within 0.05 of the hand threshold (one photo here, 0.507 against 0.50)."""
    on_the_edge = []
    for path, _ in labelled_photos[::6]:
        image = cv2.imread(str(path))
        jpeg = cascade.classify_path(path)
        for ext, params in ((".png", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 95])):
            ok, data = cv2.imencode(ext, image, params)
            assert ok
            category = cascade.classify_bytes(data.tobytes()).category
            if ext == ".webp" and _hand_score_on_the_edge(jpeg, cascade.config.hand_min_confidence):
                on_the_edge.append(path.name)
                continue
            assert category == jpeg.category, (path.name, ext)
    assert len(on_the_edge) <= 1, on_the_edge


def test_other_real_photos_from_scikit_image(cascade: Cascade) -> None:
    """Photos never used for tuning: faces are found, and nothing else is taken for a face or a person."""
    skimage_data = pytest.importorskip("skimage.data")
    expected = {
        "astronaut": 1,
        "camera": 1,
        "coffee": 3,
        "chelsea": 3,
        "rocket": 3,
        "hubble_deep_field": 3,
        "immunohistochemistry": 3,
        "retina": 3,
        "clock": 3,
        "coins": 3,
        "moon": 3,
        "brick": 3,
        "colorwheel": 3,
    }
    wrong = {}
    for name, label in expected.items():
        image = getattr(skimage_data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        result = cascade.classify_image(cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR), name=name)
        if result.category != label:
            wrong[name] = result.category
    assert len(wrong) <= 1, wrong


def test_best_face_score_is_the_near_miss(cascade: Cascade, results, models_dir: Path, photos_dir: Path) -> None:
    minimum = cascade.config.face_min_confidence
    for path, _, result in results:
        assert 0.0 <= result.best_face_score < minimum, path.name
    # With a minimum no face reaches, the face that decided the photo becomes its near miss.
    path = photos_dir / "cat1_model" / "cat1_model_portrait_official.jpg"
    accepted = cascade.classify_path(path)
    # the pose stage off: it would see the portrait's head and call it a model shot without a face
    strict = Cascade.load(
        VisionConfig.from_env({}, models_dir=models_dir, threads=1, face_min_confidence=1.01, pose_face=False)
    )
    missed = strict.classify_path(path)
    assert missed.category != 1 and not missed.faces
    assert abs(missed.best_face_score - accepted.faces[0].confidence) < 1e-6


def test_face_settings_reach_mtcnn(models_dir: Path) -> None:
    config = VisionConfig.from_env({"IMAGELIFT_FACE_SCALE_FACTOR": "0.8"}, models_dir=models_dir, threads=1)
    loaded = Cascade.load(config)
    assert loaded.mtcnn.scale_factor == 0.8 and loaded.thresholds["face_scale_factor"] == 0.8


def test_a_face_score_near_its_threshold_asks_for_review(cascade: Cascade, models_dir: Path, photos_dir: Path) -> None:
    path = photos_dir / "cat1_model" / "cat1_model_portrait_official.jpg"
    sure = cascade.classify_path(path)
    score = sure.faces[0].confidence
    assert not sure.review  # a face at ~1.0 is far from 0.93
    for minimum in (score - 0.01, score + 0.01):  # just accepted, then just missed
        config = VisionConfig.from_env({}, models_dir=models_dir, threads=1, face_min_confidence=minimum)
        assert Cascade.load(config).classify_path(path).review, minimum


def test_both_stages_look_at_one_decode(cascade: Cascade, photos_dir: Path) -> None:
    """The face cap (640) decodes a 1600 px JPEG at 1/2; the person stage sees that decode, not a second one."""
    from imagelift.vision.image_io import decode_image

    data = (photos_dir / "cat2_legs" / "cat2_legs_feet_white_sneakers_fence.jpg").read_bytes()
    config = cascade.config
    assert config.face_max_side > config.decode_long_side
    shared = decode_image(data, target_long_side=config.face_max_side)
    assert shared.bgr.shape[1] == 800
    record = cascade.classify_bytes(data)
    assert record.person_scores == cascade.persons.search(shared.bgr).scores_record()


def test_the_face_gate_only_skips_the_face_stage(cascade: Cascade, results, models_dir: Path) -> None:
    """Against the cascade without the gate: where the gate opens, the same record; where it closes, MTCNN did
    not run and the person and hand stages say what they said (the gate's run of the primary net is reused)."""
    ungated = Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1, face_gate_min_person=0.0))
    closed = 0
    for path, label, result in results:
        before = ungated.classify_path(path)
        assert before.face_gate is None and "face_gate" not in before.timings_ms
        if result.face_gate.open:
            assert (result.category, result.best_face_score) == (before.category, before.best_face_score), path.name
            assert len(result.faces) == len(before.faces)
        else:
            closed += 1
            assert label != 1 and not before.faces, path.name  # no face lost on these photos
            assert not result.faces and result.best_face_score == 0.0
        assert result.person_scores == before.person_scores, path.name
        assert result.category == before.category and result.review == before.review, path.name
    assert closed >= 10  # most product shots skip the face stage
