"""``imagelift redrive`` on the deployed template's ClassifyFailuresQueue (moto) with the real cascade: each shape a
failed event arrives in (Lambda destination record, raw S3 notification from the SQS delivery, EventBridge event,
SNS-wrapped) is handled as the function handles it and deleted; what still fails or holds no event stays."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from ingest_stack import REGION, DeployedStack, s3_event

from imagelift.adapters.failure_queue import FailureQueue
from imagelift.cli import main
from imagelift.services.classify_service import ClassifyService
from imagelift.services.redrive import RedriveService, original_event

EVENTS = Path(__file__).resolve().parents[1] / "events"


def destination_record(event: dict) -> str:
    """What Lambda's OnFailure destination sends to SQS for an asynchronous invocation that kept failing."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-23T09:20:00.000Z",
            "requestContext": {
                "requestId": "c0ffee00-0000-4000-8000-000000000001",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ClassifyImageFunction:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "1 record(s) to retry", "errorType": "TransientRecordError"},
        }
    )


def eventbridge_event(bucket: str, key: str, version_id: str | None) -> dict:
    event = json.loads((EVENTS / "eventbridge_object_created.json").read_text(encoding="utf-8"))
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, sequencer="0067A1B2C3D4E5F700")
    event["detail"]["object"].pop("etag", None)
    if version_id:
        event["detail"]["object"]["version-id"] = version_id
    else:
        event["detail"]["object"].pop("version-id", None)
    return event


@pytest.fixture()
def queue(stack: DeployedStack):
    sqs = boto3.client("sqs", region_name=REGION)
    url = stack.info.outputs["ClassifyFailuresQueueUrl"]
    assert in_queue(sqs, url) == 0  # every test leaves the queue as it found it
    return sqs, url


def in_queue(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_every_shape_of_failed_event_is_redriven(stack: DeployedStack, cascade, labelled_photos, queue, monkeypatch):
    sqs, url = queue
    photos = [path for path, _ in labelled_photos[:4]]
    keys = [f"images/RD-1/L-{i}/photo.jpg" for i in range(4)]
    records = [stack.put_photo(key, path.read_bytes()) for key, path in zip(keys, photos, strict=True)]
    version = records[2]["s3"]["object"].get("versionId")
    bodies = [
        destination_record(s3_event(records[0])),
        json.dumps(s3_event(records[1])),  # the SQS delivery's redrive policy moves the notification as it came
        json.dumps(eventbridge_event(stack.uploads_bucket, keys[2], version)),
        json.dumps({"Type": "Notification", "Message": json.dumps(s3_event(records[3]))}),  # through SNS
        "this is not an event",
        json.dumps({"Records": "nope"}),
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    throttled = "images/RD-1/L-9/photo.jpg"
    sqs.send_message(
        QueueUrl=url,
        MessageBody=destination_record(s3_event(stack.put_photo(throttled, photos[0].read_bytes()))),
    )

    classify = ClassifyService.from_env(classifier=cascade, environ=stack.env)
    original = classify.photos.client.get_object

    def throttle_one(**kwargs):
        if kwargs["Key"] == throttled:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "GetObject")
        return original(**kwargs)

    monkeypatch.setattr(classify.photos.client, "get_object", throttle_one)
    summary = RedriveService(classify, FailureQueue(url, client=sqs)).run(wait_seconds=0).to_dict()
    assert (summary["received"], summary["redriven"]) == (len(bodies) + 1, 4)
    assert (summary["still_failing"], summary["unreadable"]) == (1, 2)
    assert summary["carriers"] == {"destination": 2, "eventbridge": 1, "s3": 2}
    assert summary["records"]["classified"] == 4 and summary["records"]["retry"] == 1
    for key, path in zip(keys, photos, strict=True):
        (item,) = stack.items(key)
        assert (item["status"], item["category"]) == ("classified", cascade.classify_bytes(path.read_bytes()).category)
    assert stack.items(throttled) == []
    assert in_queue(sqs, url) == 3  # the throttled one and the two unreadable ones, visible again

    # once the cause is gone, the command finishes the job; the unreadable ones wait for a person, then go
    monkeypatch.undo()
    again = RedriveService(classify, FailureQueue(url, client=sqs)).run(wait_seconds=0).to_dict()
    assert (again["received"], again["redriven"], again["unreadable"]) == (3, 1, 2)
    assert stack.items(throttled)[0]["status"] == "classified"
    cleared = RedriveService(classify, FailureQueue(url, client=sqs)).run(wait_seconds=0, delete_unreadable=True)
    assert cleared.deleted_unreadable == 2 and in_queue(sqs, url) == 0


def test_a_redriven_duplicate_is_a_no_op(stack: DeployedStack, cascade, labelled_photos, queue):
    sqs, url = queue
    record = stack.put_photo("images/RD-2/L/photo.jpg", labelled_photos[5][0].read_bytes())
    classify = ClassifyService.from_env(classifier=cascade, environ=stack.env)
    classify.handle_event(s3_event(record))  # a later retry of the same event succeeded after all
    before = stack.items("images/RD-2/L/photo.jpg")
    sqs.send_message(QueueUrl=url, MessageBody=destination_record(s3_event(record)))
    summary = RedriveService(classify, FailureQueue(url, client=sqs)).run(wait_seconds=0)
    assert (summary.redriven, dict(summary.outcomes)) == (1, {"duplicate": 1})
    assert stack.items("images/RD-2/L/photo.jpg") == before and in_queue(sqs, url) == 0


def test_original_event_unwraps_a_text_payload():
    event = s3_event({"eventName": "ObjectCreated:Put"})
    wrapped = json.loads(destination_record(event))
    wrapped["requestPayload"] = json.dumps(event)
    assert original_event(json.dumps(wrapped)) == (event, "destination")


def test_redrive_command_reads_the_stack_outputs(
    stack: DeployedStack, models_dir: Path, labelled_photos, queue, monkeypatch, capsys
):
    sqs, url = queue
    record = stack.put_photo("images/RD-3/L/photo.jpg", labelled_photos[6][0].read_bytes())
    sqs.send_message(QueueUrl=url, MessageBody=destination_record(s3_event(record)))
    monkeypatch.delenv("CATEGORIES_TABLE")
    monkeypatch.setenv("IMAGELIFT_MODELS_DIR", str(models_dir))
    assert main(["redrive", "--stack", stack.info.stack_name, "--wait", "0"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    assert (summary["table"], summary["queue_url"]) == (stack.table_name, url)
    assert (summary["received"], summary["redriven"], summary["records"]) == (1, 1, {"classified": 1})
    assert stack.items("images/RD-3/L/photo.jpg")[0]["status"] == "classified"

    sqs.send_message(QueueUrl=url, MessageBody="garbage")
    assert main(["redrive", "--stack", stack.info.stack_name, "--wait", "0"]) == 1
    assert "1 message(s) remain" in capsys.readouterr().err
    assert main(["redrive", "--stack", stack.info.stack_name, "--wait", "0", "--delete-unreadable"]) == 0
    assert main(["redrive", "--stack", "no-such-stack"]) == 1
    assert "no CloudFormation stack 'no-such-stack'" in capsys.readouterr().err
