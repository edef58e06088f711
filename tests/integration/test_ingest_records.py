"""The classify service on the deployed template (moto): duplicates, reordering, deletes, bad photos, faults.

The classifier is a stand-in here, so that each test controls what a photo "is" and counts classifications; the
tests with the real cascade and real photos are in test_ingest_handler.py. Everything else is real: the table and
bucket come from template.yaml, the service from the environment the template gives the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from ingest_stack import DeployedStack, next_sequencer, s3_event, s3_record

from imagelift.records.categories import CATEGORY_NAMES
from imagelift.services.classify_service import ClassifyService
from imagelift.services.results import TransientRecordError
from imagelift.vision.image_io import ImageDecodeError


@dataclass
class FakeResult:
    category: int

    def to_record(self) -> dict[str, Any]:
        face = {
            "box": [10.5, 20.25, 30.0, 40.125],
            "confidence": 0.998877,
            "keypoints": {p: [1.5, 2.5] for p in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")},
        }
        return {
            "category": self.category,
            "category_name": CATEGORY_NAMES[self.category],
            "decided_by": {1: "mtcnn", 2: "yolo", 3: "none"}[self.category],
            "faces": [face] if self.category == 1 else [],
            "persons": [{"box": [1.0, 2.0, 3.0, 4.0], "confidence": 0.75}] if self.category == 2 else [],
            "width": 640,
            "height": 480,
            "timings_ms": {"decode": 1.25, "total": 3.5},
            "models": {"pnet": "07a69013"},
            "thresholds": {"face_min_confidence": 0.9},
        }


@dataclass
class FakeClassifier:
    """Photo bytes starting FACE / LEGS / SHOE are categories 1 / 2 / 3; anything else is corrupt."""

    calls: list[str] = field(default_factory=list)

    def classify_bytes(self, data: bytes, name: str = "") -> FakeResult:
        self.calls.append(name)
        for prefix, category in ((b"FACE", 1), (b"LEGS", 2), (b"SHOE", 3)):
            if data.startswith(prefix):
                return FakeResult(category)
        raise ImageDecodeError("corrupt", "not a JPEG, PNG or WebP file")


class Flaky:
    """Replaces one client method: raises ``error`` for the first ``times`` calls, then calls through."""

    def __init__(self, original: Any, error: Exception, times: int = 1) -> None:
        self.original, self.error, self.remaining, self.calls = original, error, times, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.remaining > 0:
            self.remaining -= 1
            raise self.error
        return self.original(*args, **kwargs)


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.fixture()
def fake() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture()
def service(stack: DeployedStack, fake: FakeClassifier) -> ClassifyService:
    return ClassifyService.from_env(classifier=fake)


def current(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The object's state now: the record of its newest event."""
    return max(items, key=lambda item: item["sequencer"])


def test_service_uses_the_table_the_template_gives_it(stack: DeployedStack, service: ClassifyService):
    assert stack.env["CATEGORIES_TABLE"] == stack.table_name
    assert service.records.table_name == stack.table_name
    assert service.images_prefix == stack.env["IMAGES_PREFIX"] == "images/"


def test_item_follows_the_contract_with_decimals(stack: DeployedStack, service: ClassifyService):
    key = "images/P-1/L-1/front view été+1.jpg"
    record = stack.put_photo(key, b"FACE photo bytes")
    summary = service.handle_event(s3_event(record))
    assert summary.counts == {"classified": 1}

    (item,) = stack.items(key)
    assert item["pk"] == f"s3://{stack.uploads_bucket}/{key}"
    assert item["sk"] == f"v#{record['s3']['object']['versionId']}"
    expected = {
        "bucket": stack.uploads_bucket,
        "key": key,
        "version_id": record["s3"]["object"]["versionId"],
        "etag": record["s3"]["object"]["eTag"],
        "event_name": "ObjectCreated:Put",
        "event_time": record["eventTime"],
        "product_id": "P-1",
        "listing_id": "L-1",
        "file_name": "front view été+1.jpg",
        "matched": True,
        "status": "classified",
        "category": 1,
        "category_name": "model",
        "decided_by": "mtcnn",
        "width": 640,
        "height": 480,
        "size_bytes": len(b"FACE photo bytes"),
        "source": "s3_event",
    }
    assert {k: item[k] for k in expected} == expected
    assert item["sequencer"] == record["s3"]["object"]["sequencer"].ljust(32, "0")
    assert item["faces"][0]["box"] == [10.5, 20.25, 30.0, 40.125]
    assert set(item["faces"][0]["keypoints"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert item["models"] and item["thresholds"] and item["timings_ms"]["total"] == 3.5
    assert item["classified_at"].endswith("Z") and "error" not in item

    raw = stack.raw_items(key)[0]  # floats are stored as DynamoDB numbers, not strings
    assert raw["faces"]["L"][0]["M"]["confidence"] == {"N": "0.998877"}
    assert raw["category"] == {"N": "1"}


def test_duplicate_delivery_leaves_one_result_and_classifies_once(
    stack: DeployedStack, service: ClassifyService, fake: FakeClassifier
):
    key = "images/P-2/L-2/shoe.jpg"
    record = stack.put_photo(key, b"SHOE")
    first = service.handle_event(s3_event(record))
    before = stack.items(key)
    second = service.handle_event(s3_event(record))
    third = service.handle_event(s3_event(record, record))  # the same record twice in one event

    assert first.counts == {"classified": 1}
    assert second.counts == {"duplicate": 1}
    assert third.counts == {"duplicate": 2}
    assert stack.items(key) == before and len(before) == 1
    assert fake.calls == [key]


def test_racing_duplicates_write_once(stack: DeployedStack, service: ClassifyService, fake: FakeClassifier):
    """Two Lambdas with the same event: both classify (neither saw a record yet), one write wins."""
    key = "images/P-3/L-3/race.jpg"
    record = stack.put_photo(key, b"LEGS")
    real_get = service.records.get
    blind = iter([None, None])  # the first two reads are the two early duplicate checks: both see nothing
    service.records.get = lambda pk, sk: next(blind, real_get(pk, sk))
    try:
        assert service.handle_event(s3_event(record)).counts == {"classified": 1}
        assert service.handle_event(s3_event(record)).counts == {"duplicate": 1}
    finally:
        service.records.get = real_get
    assert len(fake.calls) == 2
    (item,) = stack.items(key)
    assert item["category"] == 2


def test_out_of_order_uploads_keep_both_versions_and_the_newest_is_current(
    stack: DeployedStack, service: ClassifyService
):
    key = "images/P-4/L-4/main.jpg"
    older = stack.put_photo(key, b"SHOE first photo")
    newer = stack.put_photo(key, b"FACE replacement photo")
    assert service.handle_event(s3_event(newer)).counts == {"classified": 1}
    assert service.handle_event(s3_event(older)).counts == {"classified": 1}  # late, but its own version

    items = stack.items(key)
    assert [(i["version_id"], i["category"]) for i in items] == [
        (older["s3"]["object"]["versionId"], 3),  # classified from its own bytes, not the newer upload's
        (newer["s3"]["object"]["versionId"], 1),
    ]
    assert current(items)["category"] == 1


def test_late_upload_event_never_overwrites_the_delete_of_its_version(stack: DeployedStack, service: ClassifyService):
    """A version deleted for good (ObjectRemoved:Delete with its versionId) whose upload event arrives after."""
    key = "images/P-5/L-5/gone.jpg"
    put = stack.put_photo(key, b"FACE")
    version_id = put["s3"]["object"]["versionId"]
    stack.s3.delete_object(Bucket=stack.uploads_bucket, Key=key, VersionId=version_id)
    delete = s3_record("ObjectRemoved:Delete", stack.uploads_bucket, key, version_id=version_id)
    assert put["s3"]["object"]["sequencer"] < delete["s3"]["object"]["sequencer"]

    assert service.handle_event(s3_event(delete)).counts == {"deleted": 1}
    assert service.handle_event(s3_event(put)).counts == {"stale": 1}
    (item,) = stack.items(key)
    assert item["status"] == "deleted"
    assert item["sequencer"] == delete["s3"]["object"]["sequencer"].ljust(32, "0")


def test_delete_marker_after_upload_makes_the_object_deleted(stack: DeployedStack, service: ClassifyService):
    key = "images/P-6/L-6/old.jpg"
    put = stack.put_photo(key, b"LEGS")
    delete = stack.delete_photo(key)
    # S3 may deliver the delete first; both orders end the same
    assert service.handle_event(s3_event(delete)).counts == {"deleted": 1}
    assert service.handle_event(s3_event(put)).counts == {"classified": 1}
    assert service.handle_event(s3_event(delete)).counts == {"duplicate": 1}  # redelivered delete

    items = stack.items(key)
    assert [i["status"] for i in items] == ["classified", "deleted"]
    assert current(items)["status"] == "deleted"
    assert items[1]["sk"] == f"v#{delete['s3']['object']['versionId']}"
    assert items[1]["product_id"] == "P-6" and items[1]["event_name"] == "ObjectRemoved:DeleteMarkerCreated"


def test_permanent_delete_after_classification_marks_the_record_and_keeps_what_it_was(
    stack: DeployedStack, service: ClassifyService
):
    key = "images/P-7/L-7/x.jpg"
    put = stack.put_photo(key, b"FACE")
    service.handle_event(s3_event(put))
    version_id = put["s3"]["object"]["versionId"]
    stack.s3.delete_object(Bucket=stack.uploads_bucket, Key=key, VersionId=version_id)
    service.handle_event(s3_event(s3_record("ObjectRemoved:Delete", stack.uploads_bucket, key, version_id=version_id)))
    (item,) = stack.items(key)
    assert item["status"] == "deleted" and item["category"] == 1 and item["event_name"] == "ObjectRemoved:Delete"


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"GIF89a not a photo", "corrupt"), (b"", "corrupt")],
)
def test_unclassifiable_photo_is_recorded_failed_and_not_retried(
    stack: DeployedStack, service: ClassifyService, fake: FakeClassifier, data: bytes, code: str
):
    key = f"images/P-8/L-8/bad-{len(data)}.jpg"
    record = stack.put_photo(key, data)
    summary = service.handle_event(s3_event(record))  # no exception: Lambda must not retry
    assert summary.counts == {"failed": 1}
    (item,) = stack.items(key)
    assert item["status"] == "failed"
    assert item["error"] == {"code": code, "message": "not a JPEG, PNG or WebP file"}
    assert "category" not in item
    assert service.handle_event(s3_event(record)).counts == {"duplicate": 1}
    assert fake.calls == [key]


def test_too_large_is_refused_from_the_head_without_downloading(
    stack: DeployedStack, service: ClassifyService, fake: FakeClassifier, monkeypatch: pytest.MonkeyPatch
):
    key = "images/P-9/L-9/huge.jpg"
    record = stack.put_photo(key, b"FACE" + b"\0" * 2048)
    monkeypatch.setattr(service, "max_bytes", 1024)
    get_object = Flaky(service.photos.client.get_object, AssertionError("downloaded"), times=0)
    monkeypatch.setattr(service.photos.client, "get_object", get_object)
    assert service.handle_event(s3_event(record)).counts == {"failed": 1}
    (item,) = stack.items(key)
    assert item["error"]["code"] == "too_large" and item["size_bytes"] == 2052
    assert get_object.calls == 0 and fake.calls == []


def test_photo_deleted_before_it_was_read_is_recorded_gone(stack: DeployedStack, service: ClassifyService):
    key = "images/P-10/L-10/quick.jpg"
    record = stack.put_photo(key, b"FACE")
    stack.s3.delete_object(Bucket=stack.uploads_bucket, Key=key, VersionId=record["s3"]["object"]["versionId"])
    assert service.handle_event(s3_event(record)).counts == {"failed": 1}
    assert stack.items(key)[0]["error"]["code"] == "object_gone"


def test_unmatched_key_is_classified_and_marked(stack: DeployedStack, service: ClassifyService):
    key = "images/unsorted/photo 1.jpg"
    service.handle_event(s3_event(stack.put_photo(key, b"SHOE")))
    (item,) = stack.items(key)
    assert item["status"] == "classified" and item["category"] == 3
    assert item["matched"] is False
    assert "product_id" not in item and "listing_id" not in item


def test_every_record_of_one_event_is_processed(stack: DeployedStack, service: ClassifyService):
    keys = ["images/P-11/L-1/a b.jpg", "images/P-11/L-2/ü+ß.jpg", "images/P-11/L-3/c%20d.jpg"]
    records = [stack.put_photo(k, d) for k, d in zip(keys, (b"FACE", b"LEGS", b"SHOE"), strict=True)]
    summary = service.handle_event(s3_event(*records))
    assert summary.counts == {"classified": 3}
    assert [stack.items(k)[0]["category"] for k in keys] == [1, 2, 3]


def test_event_without_sequencer_still_orders_by_event_time(stack: DeployedStack, service: ClassifyService):
    """moto's own notifications carry no sequencer (nor version); the event time stands in."""
    key = "images/P-12/L-12/moto.jpg"
    record = stack.put_photo(key, b"SHOE")
    del record["s3"]["object"]["sequencer"]
    assert service.handle_event(s3_event(record)).counts == {"classified": 1}
    assert stack.items(key)[0]["source"] == "s3_event_without_sequencer"


# ------------------------------------------------------------------ injected faults: raise, retry, nothing lost

S3_FAULTS = [
    ("head_object", client_error("SlowDown", 503, "HeadObject")),
    ("get_object", client_error("InternalError", 500, "GetObject")),
    ("get_object", ReadTimeoutError(endpoint_url="https://s3.us-east-1.amazonaws.com")),
    ("head_object", client_error("403", 403, "HeadObject")),  # e.g. a policy gap: retried, then the queue
]
DYNAMODB_FAULTS = [
    ("put_item", client_error("ProvisionedThroughputExceededException", 400, "PutItem")),
    ("put_item", client_error("ThrottlingException", 400, "PutItem")),
    ("get_item", client_error("InternalServerError", 500, "GetItem")),
    ("update_item", client_error("RequestLimitExceeded", 400, "UpdateItem")),
]


class FailOnce:
    """Replaces one client method: the first call whose arguments ``match`` raises ``error``; all else calls through."""

    def __init__(self, original: Any, error: Exception, match: Any) -> None:
        self.original, self.error, self.match, self.raised = original, error, match, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.raised and self.match(kwargs):
            self.raised = True
            raise self.error
        return self.original(*args, **kwargs)


def _key_of_call(kwargs: dict[str, Any]) -> str:
    if isinstance(kwargs.get("Key"), str):  # S3
        return kwargs["Key"]
    return (kwargs.get("Key") or kwargs.get("Item") or {}).get("pk", {}).get("S", "")  # DynamoDB


@pytest.mark.parametrize(("operation", "error"), S3_FAULTS + DYNAMODB_FAULTS, ids=lambda v: str(v)[:40])
def test_transient_fault_raises_and_the_retry_loses_nothing(
    stack: DeployedStack, service: ClassifyService, monkeypatch: pytest.MonkeyPatch, operation: str, error: Exception
):
    prefix = f"images/P-F{next_sequencer()[-6:]}"
    ok_key, hit_key, gone_key = f"{prefix}/L-1/ok.jpg", f"{prefix}/L-2/hit.jpg", f"{prefix}/L-3/gone.jpg"
    ok, hit = stack.put_photo(ok_key, b"FACE"), stack.put_photo(hit_key, b"LEGS")
    stack.put_photo(gone_key, b"SHOE")
    gone = stack.delete_photo(gone_key)
    event = s3_event(ok, hit, gone)

    victim = gone_key if operation == "update_item" else hit_key  # deletes are the only update_item calls
    client = service.photos.client if operation in {"head_object", "get_object"} else service.records.client
    fault = FailOnce(getattr(client, operation), error, lambda kwargs: _key_of_call(kwargs).endswith(victim))
    monkeypatch.setattr(client, operation, fault)

    with pytest.raises(TransientRecordError) as raised:
        service.handle_event(event)
    assert fault.raised
    assert [key for key, _ in raised.value.failures] == [f"s3://{stack.uploads_bucket}/{victim}"]
    others = [k for k in (ok_key, hit_key, gone_key) if k != victim]
    assert all(len(stack.items(k)) == 1 for k in others)  # the other records were still done
    assert stack.items(victim) == []

    summary = service.handle_event(event)  # Lambda's retry of the same event
    assert summary.counts == {"duplicate": 2, "deleted" if victim == gone_key else "classified": 1}
    assert [i["category"] for i in stack.items(ok_key)] == [1]
    assert [i["category"] for i in stack.items(hit_key)] == [2]
    assert [i["status"] for i in stack.items(gone_key)] == ["deleted"]


def test_fault_on_every_attempt_keeps_raising(stack: DeployedStack, service: ClassifyService, monkeypatch):
    """What never succeeds keeps raising, so after Lambda's retries the event goes to the failure queue."""
    key = "images/P-13/L-13/always.jpg"
    record = stack.put_photo(key, b"FACE")
    flaky = Flaky(service.records.client.put_item, client_error("ThrottlingException", 400, "PutItem"), times=99)
    monkeypatch.setattr(service.records.client, "put_item", flaky)
    for _ in range(3):  # the first attempt and MaximumRetryAttempts = 2
        with pytest.raises(TransientRecordError, match="ThrottlingException"):
            service.handle_event(s3_event(record))
    assert flaky.calls == 3 and stack.items(key) == []


def test_decimal_conversion_keeps_precision():
    from imagelift.adapters.dynamodb_codec import from_dynamodb, to_dynamodb

    value = {"a": 0.1, "b": [1, 2.5, {"c": 1e-7}], "d": True, "e": None}
    converted = to_dynamodb(value)
    assert converted["a"] == Decimal("0.1") and converted["b"][2]["c"] == Decimal("1e-07")
    assert from_dynamodb(converted) == value


@pytest.mark.parametrize("event_name", ["ObjectRestore:Completed", "ObjectTagging:Put", "Replication:OperationFailed"])
def test_an_event_that_changes_no_photo_is_skipped_not_retried(
    stack: DeployedStack, service: ClassifyService, fake: FakeClassifier, event_name: str
):
    key = "images/P-20/L-20/restored.jpg"
    summary = service.handle_event(s3_event(s3_record(event_name, stack.uploads_bucket, key)))
    assert summary.counts == {"skipped": 1} and summary.retry == []
    assert summary.results[0].error["code"] == "unhandled_event"
    assert summary.reasons == {"skipped_unhandled_event": 1}
    assert stack.items(key) == [] and fake.calls == []
