"""The sample events of tests/events against the local stack: as files they name objects the local bucket lacks
(recorded failed ``object_gone``); ``imagelift local invoke --stage`` first does what each record says, so they
classify, delete and record as on AWS. Then `backfill` and `reclassify` at the local endpoint, on records the
stack's own notifications wrote."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagelift.cli import main
from infra.localstack.runner import start_function
from infra.localstack.stack import LocalStack, running_local_stack
from infra.localstack.staging import stage_event

EVENTS = Path(__file__).resolve().parents[2] / "tests" / "events"


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with running_local_stack(stack_name="imagelift-stagetest") as local:
        yield local


@pytest.fixture(scope="module")
def classify(stack: LocalStack) -> Iterator:
    function = start_function(stack, "classify", runner="in-process")
    yield function
    function.stop()


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def records_of(stack: LocalStack, key: str) -> list[dict]:
    items = stack.client("dynamodb").scan(TableName=stack.categories_table)["Items"]
    return [item for item in items if item["key"]["S"] == key]


def test_unstaged_sample_event_names_a_photo_the_stack_lacks(stack: LocalStack, classify) -> None:
    result = classify.invoke(event("put_special_key.json"))
    assert result.ok, result.error
    (outcome,) = result.payload["results"]
    assert outcome["outcome"] == "failed" and outcome["error"]["code"] == "object_gone"


def test_staged_events_classify_then_delete(stack: LocalStack, classify) -> None:
    put, staged = stage_event(event("put_special_key.json"), stack.client("s3"), stack.uploads_bucket)
    key = urllib.parse.unquote_plus(event("put_special_key.json")["Records"][0]["s3"]["object"]["key"])
    assert [s.key for s in staged] == [key] and staged[0].photo
    head = stack.client("s3").head_object(Bucket=stack.uploads_bucket, Key=key)
    assert put["Records"][0]["s3"]["object"]["versionId"] == head["VersionId"]
    result = classify.invoke(put)
    assert result.ok and result.payload["counts"] == {"classified": 1}, result.payload

    removed, _ = stage_event(event("delete_marker.json"), stack.client("s3"), stack.uploads_bucket)
    result = classify.invoke(removed)
    assert result.ok and result.payload["counts"] == {"deleted": 1}, result.payload
    by_version = {item["sk"]["S"]: item["status"]["S"] for item in records_of(stack, key)}
    assert by_version[f"v#{head['VersionId']}"] == "classified"
    marker = removed["Records"][0]["s3"]["object"]["versionId"]
    assert by_version[f"v#{marker}"] == "deleted"


def test_local_invoke_stage_runs_the_four_record_event(stack: LocalStack, capsys) -> None:
    args = ["local", "invoke", "classify", "--event", str(EVENTS / "multiple_records.json"), "--stage"]
    args += ["--endpoint", stack.endpoint_url, "--stack-name", stack.stack_name, "--runner", "in-process"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    response = json.loads(out)
    # two uploads and the one outside <product>/<listing>/ (recorded unmatched), and the permanent delete
    assert response["counts"] == {"classified": 3, "deleted": 1}, response
    assert err.count("# staged ") == 4 and "then deleted that version" in err
    unmatched = records_of(stack, "images/unsorted/photo 1.jpg")
    assert unmatched and unmatched[0]["matched"]["BOOL"] is False


def test_backfill_and_reclassify_against_the_local_stack(
    stack: LocalStack, classify, models_dir: Path, monkeypatch, capsys
) -> None:
    """What `local up` does with an upload (moto's notification, without a version id, into the handler) and then
    the README's operator commands at the local endpoint: nothing is recorded twice."""
    from infra.localstack.samples import bundled_photos

    s3, sqs = stack.client("s3"), stack.client("sqs")
    while sqs.receive_message(QueueUrl=stack.notification_queue_url, MaxNumberOfMessages=10).get("Messages"):
        pass  # earlier tests' notifications (they are invisible for a while once received)
    photos = bundled_photos()[:4]
    keys = [f"images/ops-P{i}/L{i}/{photo.name}" for i, photo in enumerate(photos)]
    for key, photo in zip(keys, photos, strict=True):
        s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=photo.data)
    delivered = 0
    for _ in range(30):
        for message in sqs.receive_message(
            QueueUrl=stack.notification_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            body = json.loads(message["Body"])
            if any(urllib.parse.unquote_plus(r["s3"]["object"]["key"]) in keys for r in body.get("Records", [])):
                assert classify.invoke(body).ok
                delivered += 1
            sqs.delete_message(QueueUrl=stack.notification_queue_url, ReceiptHandle=message["ReceiptHandle"])
        if delivered == len(keys):
            break
    assert delivered == len(keys)
    assert all([i["sk"]["S"][:5] for i in records_of(stack, key)] == ["etag#"] for key in keys)

    for name, value in {
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "IMAGELIFT_MODELS_DIR": str(models_dir),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CATEGORIES_TABLE", raising=False)
    target = ["--stack", stack.stack_name, "--prefix", "images/ops-", "--no-progress"]
    assert main(["backfill", *target]) == 0
    backfill = json.loads(capsys.readouterr().out)
    assert (backfill["listed"], backfill["already_recorded"], backfill["classified"]) == (len(keys), len(keys), 0)
    assert main(["reclassify", *target]) == 0
    assert json.loads(capsys.readouterr().out)["current"] == len(keys)
    assert main(["reclassify", "--all", *target]) == 0
    assert json.loads(capsys.readouterr().out)["reclassified"] == len(keys)
    for key in keys:
        (item,) = records_of(stack, key)
        assert item["revision"]["N"] == "2" and item["sk"]["S"].startswith("etag#")
