"""HEIC and AVIF through the real cascade and the classifier's event path on the deployed template (moto): real
photos of every category, encoded here, get the category their JPEG gets; a HEIC upload is recorded like a JPEG
one, and a hostile AVIF leaves a failed record with its reason."""

from __future__ import annotations

import cv2
import pytest
from ingest_stack import DeployedStack, s3_event

from imagelift.services.classify_service import ClassifyService
from infra.localstack.hostile import avif, forged_ispe, heic

PER_CATEGORY = 2  # x265 takes a second or two per photo: two of each category


@pytest.fixture(scope="module")
def samples(labelled_photos):
    chosen = []
    for category in (1, 2, 3):
        chosen += [path for path, label in labelled_photos if label == category][:PER_CATEGORY]
    return chosen


@pytest.mark.parametrize("encode", [heic, avif], ids=["heic", "avif"])
def test_heic_and_avif_get_the_category_of_their_jpeg(cascade, samples, encode):
    for path in samples:
        jpeg = path.read_bytes()
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
        expected = cascade.classify_bytes(jpeg)
        got = cascade.classify_bytes(encode(picture, 90))
        assert (got.category, got.decided_by) == (expected.category, expected.decided_by), path.name


def test_a_heic_upload_is_recorded_and_a_hostile_avif_fails_with_its_reason(stack: DeployedStack, cascade, samples):
    service = ClassifyService.from_env(classifier=cascade)
    picture = cv2.imread(str(samples[0]), cv2.IMREAD_COLOR)
    good = stack.put_photo("images/HF-1/A/01-front.heic", heic(picture, 85))
    bomb = stack.put_photo("images/HF-1/B/01-front.avif", forged_ispe(avif(picture, 60), 100_000, 100_000))
    service.handle_event(s3_event(good, bomb))
    (record,) = stack.items("images/HF-1/A/01-front.heic")
    assert (record["status"], record["format"], record["photo_position"]) == ("classified", "heic", 1)
    assert record["category"] == cascade.classify_bytes(samples[0].read_bytes()).category
    assert (record["width"], record["height"]) == picture.shape[1::-1]
    (failed,) = stack.items("images/HF-1/B/01-front.avif")
    assert failed["status"] == "failed" and failed["error"]["code"] == "too_large"
    assert "100000x100000" in failed["error"]["message"] and "nothing decoded" in failed["error"]["message"]
