"""Hostile records on the deployed template (moto): junk, malformed and unhandled records, refused keys, purged
versions, and the EventBridge and SQS deliveries. Each record ends with exactly the expected item, or a counted skip;
only transient faults ask for a retry.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
from ingest_stack import EVENTS_DIR, DeployedStack, s3_event, s3_record
from test_ingest_records import FakeClassifier, Flaky, client_error

from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.sales import read_sales
from imagelift.services.classify_service import ClassifyService
from infra.localstack.hostile import CASES as HOSTILE_CASES


@pytest.fixture()
def fake() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture()
def service(stack: DeployedStack, fake: FakeClassifier) -> ClassifyService:
    return ClassifyService.from_env(classifier=fake)


def test_one_event_of_everything_never_fails_and_each_record_gets_its_outcome(
    stack: DeployedStack, service: ClassifyService, fake: FakeClassifier, caplog: pytest.LogCaptureFixture
):
    bucket = stack.uploads_bucket
    good = stack.put_photo("images/P-H1/L-1/good.jpg", b"FACE")
    folder = s3_record("ObjectCreated:Put", bucket, "images/SKU-400/")
    ds_store = s3_record("ObjectCreated:Put", bucket, "images/P-H1/L-1/.DS_Store")
    apple_double = s3_record("ObjectCreated:Put", bucket, "images/P-H1/L-1/._good.jpg")
    outside = s3_record("ObjectCreated:Put", bucket, "exports/2026/sales.csv")
    restored = s3_record("ObjectRestore:Completed", bucket, "images/P-H1/L-1/good.jpg")
    expired = s3_record("LifecycleExpiration:Delete", bucket, "images/P-H1/L-9/old.jpg", version_id="v-old")
    bad_sequencer = s3_record("ObjectCreated:Put", bucket, "images/P-H1/L-2/bad-seq.jpg")
    bad_sequencer["s3"]["object"]["sequencer"] = "zz-not-hex"
    undecodable = s3_record("ObjectCreated:Put", bucket, "images/P-H1/L-3/x.jpg")
    undecodable["s3"]["object"]["key"] = "images/P-H1/L-3/%FF%FE.jpg"
    keyless = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}}}
    event = s3_event(
        good, folder, ds_store, apple_double, outside, restored, expired, bad_sequencer, undecodable, keyless
    )

    with caplog.at_level(logging.INFO, logger="imagelift"):
        summary = service.handle_event(event)  # no exception: nothing here is worth a retry

    assert summary.counts == {"classified": 1, "skipped": 5, "deleted": 1, "failed": 2, "invalid": 1}
    assert summary.reasons == {
        "skipped_folder_marker": 1,
        "skipped_os_metadata": 2,
        "skipped_outside_prefix": 1,
        "skipped_unhandled_event": 1,
        "failed_invalid_event": 1,
        "failed_undecodable_key": 1,
        "invalid_invalid_event": 1,
    }
    assert fake.calls == ["images/P-H1/L-1/good.jpg"]
    for junk in (
        "images/SKU-400/",
        "images/P-H1/L-1/.DS_Store",
        "images/P-H1/L-1/._good.jpg",
        "exports/2026/sales.csv",
    ):
        assert stack.items(junk) == []
    assert [i["status"] for i in stack.items("images/P-H1/L-1/good.jpg")] == ["classified"]
    (failed,) = stack.items("images/P-H1/L-2/bad-seq.jpg")
    assert failed["status"] == "failed" and "sequencer" in failed["error"]["message"]
    assert failed["product_id"] == "P-H1" and failed["listing_id"] == "L-2"
    (undecoded,) = stack.items("images/P-H1/L-3/%FF%FE.jpg")
    assert undecoded["error"]["code"] == "undecodable_key"
    (purged,) = stack.items("images/P-H1/L-9/old.jpg")
    assert purged["status"] == "deleted" and purged["event_name"] == "LifecycleExpiration:Delete"

    skips = [r for r in caplog.records if getattr(r, "outcome", None) == "skipped"]
    assert sorted(r.reason for r in skips) == [
        "folder_marker",
        "os_metadata",
        "os_metadata",
        "outside_prefix",
        "unhandled_event",
    ]
    assert all(r.bucket == bucket and r.key for r in skips)


def test_an_event_that_is_no_notification_is_counted_not_retried(service: ClassifyService):
    for event in ([], {"hello": "world"}, {"Records": "nope"}):
        summary = service.handle_event(event)
        assert summary.counts == {"invalid": 1} and summary.retry == []


def test_a_key_dynamodb_refuses_is_invalid_not_retried(
    stack: DeployedStack, service: ClassifyService, monkeypatch: pytest.MonkeyPatch
):
    key = "images/P-H2/L-1/refused.jpg"
    record = stack.put_photo(key, b"SHOE")
    refuse = Flaky(service.records.client.put_item, client_error("ValidationException", 400, "PutItem"), times=99)
    monkeypatch.setattr(service.records.client, "put_item", refuse)
    summary = service.handle_event(s3_event(record))
    assert summary.counts == {"invalid": 1} and summary.retry == []
    assert refuse.calls == 2  # the classified record, then its failed record: both refused
    assert stack.items(key) == []


def test_running_out_of_memory_is_a_permanent_too_large(
    stack: DeployedStack, service: ClassifyService, monkeypatch: pytest.MonkeyPatch
):
    key = "images/P-H3/L-1/huge.png"
    record = stack.put_photo(key, b"FACE")

    def out_of_memory(data: bytes, name: str = ""):
        raise MemoryError

    monkeypatch.setattr(service.classifier, "classify_bytes", out_of_memory)
    assert service.handle_event(s3_event(record)).counts == {"failed": 1}
    (item,) = stack.items(key)
    assert item["error"]["code"] == "too_large"


# ------------------------------------------------------------------ history: a purged version keeps its weeks
def test_a_permanent_version_delete_keeps_the_upload_time_and_the_report_keeps_its_weeks(
    stack: DeployedStack, service: ClassifyService
):
    key = "images/P-H4/L-1/front.jpg"
    put = s3_record(
        "ObjectCreated:Put",
        stack.uploads_bucket,
        key,
        sequencer="0067A1B2C3D4E5F6F000",
        event_time="2026-01-04T10:00:00.000Z",
    )
    upload = stack.s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=b"LEGS")
    put["s3"]["object"]["versionId"] = version_id = upload["VersionId"]
    assert service.handle_event(s3_event(put)).counts == {"classified": 1}
    stack.s3.delete_object(Bucket=stack.uploads_bucket, Key=key, VersionId=version_id)
    purge = s3_record(
        "ObjectRemoved:Delete",
        stack.uploads_bucket,
        key,
        version_id=version_id,
        sequencer="0067A1B2C3D4E5F6F001",
        event_time="2026-03-03T12:00:00.000Z",  # the Tuesday of the ninth week
    )
    assert service.handle_event(s3_event(purge)).counts == {"deleted": 1}
    (item,) = stack.items(key)
    assert item["status"] == "deleted" and item["category"] == 2
    assert item["event_time"] == "2026-01-04T10:00:00.000Z" and item["deleted_at"] == "2026-03-03T12:00:00.000Z"

    weeks = [f"2026-{m:02d}-{d:02d}" for m, d in ((1, 5), (1, 12), (1, 19), (1, 26), (2, 2), (2, 9))]
    weeks += [f"2026-{m:02d}-{d:02d}" for m, d in ((2, 16), (2, 23), (3, 2), (3, 9), (3, 16), (3, 23))]
    text = "week,product_id,listing_id,units,price\n" + "".join(f"{w},P-H4,L-1,3,20\n" for w in weeks)
    sales = read_sales([("sales.csv", text.encode())])
    joined = join_categories(sales.frame, normalise_records(stack.items(key)), sales.rejections)
    assert len(joined) == 8 and set(joined["category"]) == {2}  # live for 8 of the 12 weeks, then deleted
    assert sales.rejections.as_dict() == {"no_live_photo": 4}


# ------------------------------------------------------------------ every shape AWS delivers
def _fixture(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def test_eventbridge_delivery(stack: DeployedStack, service: ClassifyService):
    key = "images/P-H5/L-1/bridged photo.jpg"
    direct = stack.put_photo(key, b"FACE")
    event = _fixture("eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = stack.uploads_bucket
    event["detail"]["object"].update(
        key=direct["s3"]["object"]["key"],
        etag=direct["s3"]["object"]["eTag"],
        size=4,
        sequencer=direct["s3"]["object"]["sequencer"],
        **{"version-id": direct["s3"]["object"]["versionId"]},
    )
    response, summary = service.handle_delivery(event)
    assert summary.counts == {"classified": 1} and response["counts"] == {"classified": 1}
    assert stack.items(key)[0]["category"] == 1
    deleted = _fixture("eventbridge_object_deleted.json")
    deleted["detail"]["bucket"]["name"] = stack.uploads_bucket
    marker = stack.delete_photo(key)
    deleted["detail"]["object"] = {
        "key": marker["s3"]["object"]["key"],
        "version-id": marker["s3"]["object"]["versionId"],
        "sequencer": marker["s3"]["object"]["sequencer"],
    }
    assert service.handle_delivery(deleted)[1].counts == {"deleted": 1}
    assert [i["status"] for i in stack.items(key)] == ["classified", "deleted"]


def _sqs_message(message_id: str, body: str) -> dict:
    message = copy.deepcopy(_fixture("sqs_s3_notification.json")["Records"][0])
    message.update(messageId=message_id, body=body)
    return message


def test_sqs_delivery_reports_only_the_message_to_retry(
    stack: DeployedStack, service: ClassifyService, monkeypatch: pytest.MonkeyPatch
):
    ok_key, hit_key = "images/P-H6/L-1/ok.jpg", "images/P-H6/L-2/throttled.jpg"
    ok, hit = stack.put_photo(ok_key, b"SHOE"), stack.put_photo(hit_key, b"LEGS")
    test_event = _fixture("sqs_s3_notification.json")["Records"][1]
    batch = {
        "Records": [
            _sqs_message("m-ok", json.dumps(s3_event(ok))),
            _sqs_message("m-hit", json.dumps(s3_event(hit))),
            _sqs_message("m-garbage", "this is not JSON"),
            test_event,
        ]
    }
    original = service.records.client.put_item

    def throttle_hit(**kwargs):
        if kwargs["Item"]["pk"]["S"].endswith(hit_key):
            raise client_error("ThrottlingException", 400, "PutItem")
        return original(**kwargs)

    monkeypatch.setattr(service.records.client, "put_item", throttle_hit)
    response, summary = service.handle_delivery(batch)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-hit"}]}
    assert summary.counts == {"classified": 1, "invalid": 1, "retry": 1}
    assert stack.items(hit_key) == [] and [i["category"] for i in stack.items(ok_key)] == [3]

    monkeypatch.setattr(service.records.client, "put_item", original)
    response, summary = service.handle_delivery({"Records": [batch["Records"][1]]})  # SQS redelivers m-hit
    assert response == {"batchItemFailures": []} and summary.counts == {"classified": 1}


def test_the_handler_answers_an_sqs_batch_with_its_partial_response(
    stack: DeployedStack, classify_app, photos_dir: Path
):
    from ingest_stack import LambdaContext

    photo = next((photos_dir / "cat3_product").glob("*.jpg"))
    record = stack.put_photo("images/P-H7/L-1/product.jpg", photo.read_bytes())
    batch = {"Records": [_sqs_message("m-1", json.dumps(s3_event(record)))]}
    response = classify_app.lambda_handler(batch, LambdaContext())
    assert response == {"batchItemFailures": []}
    assert stack.items("images/P-H7/L-1/product.jpg")[0]["status"] == "classified"


# ------------------------------------------------------------------ the hostile corpus through the handler
QUICK_CASES = [c for c in HOSTILE_CASES if not c.big]


@pytest.mark.parametrize("case", QUICK_CASES, ids=lambda c: c.name)
def test_hostile_file_through_the_handler_leaves_exactly_its_record(stack: DeployedStack, classify_app, case):
    import time

    from ingest_stack import LambdaContext

    key = f"images/P-HC/{case.name}/upload.bin"
    record = stack.put_photo(key, case.make())
    started = time.perf_counter()
    response = classify_app.lambda_handler(s3_event(record), LambdaContext())
    assert time.perf_counter() - started < 5
    assert response["counts"] == {case.status: 1}
    (item,) = stack.items(key)
    assert item["status"] == case.status
    assert (item.get("error") or {}).get("code") == case.code
    again = classify_app.lambda_handler(s3_event(record), LambdaContext())  # a duplicate delivery
    assert again["counts"] == {"duplicate": 1} and len(stack.items(key)) == 1
