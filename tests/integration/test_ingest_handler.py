"""ClassifyImageFunction end to end on moto: real photos, the real cascade, real-shaped S3 events, the template's env."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from botocore.exceptions import ClientError
from ingest_stack import DeployedStack, LambdaContext, s3_event

from imagelift.services.results import TransientRecordError

PER_CATEGORY = 3


@pytest.fixture(scope="module")
def sample_photos(labelled_photos: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
    """A few photos of each category (every third one, so the sample spans each folder)."""
    picked = []
    for category in (1, 2, 3):
        of_category = [p for p in labelled_photos if p[1] == category]
        picked.extend(of_category[:: max(1, len(of_category) // PER_CATEGORY)][:PER_CATEGORY])
    return picked


def invoke(app: ModuleType, event: dict, context: LambdaContext) -> dict:
    return app.lambda_handler(event, context)


def test_real_photos_are_classified_into_the_table(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, sample_photos
):
    cascade = classify_app.service.classifier
    agree = 0
    for index, (path, label) in enumerate(sample_photos):
        data = path.read_bytes()
        key = f"images/P-{label}{index:03d}/L-{index:03d}/{path.stem.replace('_', ' ')} é+1{path.suffix}"
        response = invoke(classify_app, s3_event(stack.put_photo(key, data)), lambda_context)
        assert response["counts"] == {"classified": 1}, response

        (item,) = stack.items(key)
        direct = cascade.classify_bytes(data, name=key).to_record()
        assert item["status"] == "classified"
        assert item["product_id"] == f"P-{label}{index:03d}" and item["listing_id"] == f"L-{index:03d}"
        assert item["file_name"] == f"{path.stem.replace('_', ' ')} é+1{path.suffix}"
        for field in ("category", "category_name", "decided_by", "width", "height", "models", "thresholds"):
            assert item[field] == direct[field], field
        assert len(item["faces"]) == len(direct["faces"]) and len(item["persons"]) == len(direct["persons"])
        for face in item["faces"]:
            assert len(face["box"]) == 4 and 0 < face["confidence"] <= 1 and len(face["keypoints"]) == 5
        assert item["size_bytes"] == len(data)
        assert item["timings_ms"]["total"] > 0
        agree += item["category"] == label
    # the cascade's accuracy is measured by the vision benchmark; here it must at least not be chance
    assert agree >= len(sample_photos) // 2, f"{agree} of {len(sample_photos)} agree with the labels"


def test_handler_stores_floats_as_dynamodb_numbers(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos
):
    path = next(p for p, label in labelled_photos if label == 1)
    key = "images/P-D/L-D/face.jpg"
    invoke(classify_app, s3_event(stack.put_photo(key, path.read_bytes())), lambda_context)
    (raw,) = stack.raw_items(key)
    assert set(raw["faces"]["L"][0]["M"]["confidence"]) == {"N"}
    assert set(raw["timings_ms"]["M"]["total"]) == {"N"}
    assert raw["status"] == {"S": "classified"} and raw["matched"] == {"BOOL": True}


def test_duplicate_delivery_through_the_handler(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos
):
    path = labelled_photos[0][0]
    key = "images/P-DUP/L-DUP/twice.jpg"
    event = s3_event(stack.put_photo(key, path.read_bytes()))
    first = invoke(classify_app, event, lambda_context)
    items_after_first = stack.items(key)
    second = invoke(classify_app, event, lambda_context)
    assert first["counts"] == {"classified": 1} and second["counts"] == {"duplicate": 1}
    assert stack.items(key) == items_after_first and len(items_after_first) == 1


def test_out_of_order_real_photos(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos
):
    """The listing's photo is replaced; the events arrive newest first. Each version keeps its own category."""
    cascade = classify_app.service.classifier
    old_path = next(p for p, label in labelled_photos if label == 3)
    new_path = next(p for p, label in labelled_photos if label == 1)
    key = "images/P-OOO/L-OOO/main photo.jpg"
    older = stack.put_photo(key, old_path.read_bytes())
    newer = stack.put_photo(key, new_path.read_bytes())
    invoke(classify_app, s3_event(newer), lambda_context)
    invoke(classify_app, s3_event(older), lambda_context)

    items = stack.items(key)  # oldest event first
    assert [i["version_id"] for i in items] == [older["s3"]["object"]["versionId"], newer["s3"]["object"]["versionId"]]
    assert [i["category"] for i in items] == [
        cascade.classify_bytes(old_path.read_bytes()).category,
        cascade.classify_bytes(new_path.read_bytes()).category,
    ]
    assert items[0]["event_time"] <= items[1]["event_time"]


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("truncated.jpg", lambda photo: photo[: len(photo) // 2], "truncated"),
        ("garbage.jpg", lambda photo: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40, "corrupt"),
        ("notes.jpg", lambda photo: b"this is not a photo, it is a text file\n" * 20, "unsupported_format"),
        ("empty.jpg", lambda photo: b"", "empty"),
    ],
)
def test_bad_photos_are_recorded_failed_not_retried(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos, name, make, code
):
    key = f"images/P-BAD/L-BAD/{name}"
    event = s3_event(stack.put_photo(key, make(labelled_photos[0][0].read_bytes())))
    response = invoke(classify_app, event, lambda_context)  # returns: Lambda does not retry
    assert response["counts"] == {"failed": 1}
    (item,) = stack.items(key)
    assert item["status"] == "failed"
    assert item["error"]["code"] == code and item["error"]["message"]
    assert item["product_id"] == "P-BAD" and "category" not in item
    assert invoke(classify_app, event, lambda_context)["counts"] == {"duplicate": 1}


def test_photo_over_the_byte_limit_is_failed_too_large(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos, monkeypatch
):
    path = labelled_photos[0][0]
    monkeypatch.setattr(classify_app.service, "max_bytes", path.stat().st_size - 1)
    key = "images/P-BIG/L-BIG/big.jpg"
    invoke(classify_app, s3_event(stack.put_photo(key, path.read_bytes())), lambda_context)
    (item,) = stack.items(key)
    assert item["status"] == "failed" and item["error"]["code"] == "too_large"


def test_multi_record_event_with_awkward_keys_and_a_delete(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, sample_photos
):
    keys = ["images/P-M/L-1/front view.jpg", "images/P-M/L-2/Größe 42 (Seite).jpg", "images/P-M/L-3/old+photo.png"]
    records = [stack.put_photo(k, p.read_bytes()) for k, (p, _) in zip(keys, sample_photos, strict=False)]
    records.append(stack.delete_photo(keys[2]))
    response = invoke(classify_app, s3_event(*records), lambda_context)
    assert response["counts"] == {"classified": 3, "deleted": 1}
    assert [len(stack.items(k)) for k in keys] == [1, 1, 2]
    assert [i["status"] for i in stack.items(keys[2])] == ["classified", "deleted"]


def test_transient_fault_propagates_out_of_the_handler(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos, monkeypatch
):
    key = "images/P-T/L-T/throttled.jpg"
    event = s3_event(stack.put_photo(key, labelled_photos[0][0].read_bytes()))
    throttled = ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject")

    def slow_down(**kwargs):
        raise throttled

    with monkeypatch.context() as patch:
        patch.setattr(classify_app.service.photos.client, "get_object", slow_down)
        with pytest.raises(TransientRecordError, match="SlowDown"):
            invoke(classify_app, event, lambda_context)
    assert stack.items(key) == []
    assert invoke(classify_app, event, lambda_context)["counts"] == {"classified": 1}  # Lambda's retry


def test_models_are_loaded_at_init_not_per_invocation(
    stack: DeployedStack, classify_app: ModuleType, lambda_context: LambdaContext, labelled_photos, monkeypatch
):
    from imagelift.vision.cascade import Cascade

    def no_reload(*args, **kwargs):
        raise AssertionError("Cascade.load called during an invocation")

    monkeypatch.setattr(Cascade, "load", no_reload)
    classifier = classify_app.service.classifier
    assert isinstance(classifier, Cascade)
    key = "images/P-W/L-W/warm.jpg"
    invoke(classify_app, s3_event(stack.put_photo(key, labelled_photos[1][0].read_bytes())), lambda_context)
    assert classify_app.service.classifier is classifier
    assert stack.items(key)[0]["status"] == "classified"


def test_s3_test_event_is_accepted(classify_app: ModuleType, lambda_context: LambdaContext):
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-23T09:00:00.000Z", "Bucket": "b"}
    assert invoke(classify_app, event, lambda_context)["records"] == 0
