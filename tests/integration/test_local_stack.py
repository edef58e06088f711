"""The local stack: template.yaml created in a moto server on 127.0.0.1, every resource there, S3 events queued."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.localstack.cloudformation import choose_conditions, expand_sam, local_alarm_name
from infra.localstack.stack import TEMPLATE, LocalStack, attach_local_stack, running_local_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_local_stack(stack_name="imagelift-localtest") as local:
        yield local


def _exists(stack: LocalStack, logical: str, resource: dict) -> bool:
    """Ask the service itself (not CloudFormation's list) whether the resource is there."""
    kind, physical = resource["Type"], stack.resources.get(logical)
    if kind == "AWS::S3::Bucket":
        stack.client("s3").head_bucket(Bucket=physical)
    elif kind == "AWS::DynamoDB::Table":
        assert stack.client("dynamodb").describe_table(TableName=physical)["Table"]["TableStatus"] == "ACTIVE"
    elif kind == "AWS::SQS::Queue":
        stack.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
    elif kind == "AWS::Lambda::Function":
        stack.client("lambda").get_function(FunctionName=physical)
    elif kind == "AWS::IAM::Role":
        stack.client("iam").get_role(RoleName=physical)
    elif kind == "AWS::Events::Rule":
        assert stack.client("events").describe_rule(Name=physical)["State"] == "ENABLED"
    elif kind == "AWS::Lambda::EventInvokeConfig":  # applied through the Lambda API (moto's CloudFormation skips it)
        function = stack.resources[resource["Properties"]["FunctionName"]["Ref"]]
        config = stack.client("lambda").get_function_event_invoke_config(FunctionName=function)
        assert "OnFailure" in config["DestinationConfig"]
    elif kind == "AWS::Lambda::Permission":
        return physical is not None  # S3 and EventBridge cannot invoke moto's functions; listed by CloudFormation
    elif kind == "AWS::SNS::Topic":
        stack.client("sns").get_topic_attributes(TopicArn=physical)
    elif kind == "AWS::Logs::LogGroup":
        groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=physical)["logGroups"]
        assert [g["logGroupName"] for g in groups] == [physical]
    elif kind == "AWS::CloudWatch::Alarm":  # applied through the CloudWatch API (moto's CloudFormation skips it)
        name = local_alarm_name(stack.stack_name, logical)
        assert stack.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    elif kind == "AWS::CloudWatch::Dashboard":
        stack.client("cloudwatch").get_dashboard(DashboardName=physical)
    else:
        return False
    return True


def test_every_template_resource_exists_on_the_local_endpoint(stack: LocalStack) -> None:
    assert stack.endpoint_url.startswith("http://127.0.0.1:")
    expanded = choose_conditions(expand_sam(TEMPLATE), {})["Resources"]  # the default delivery's resources
    not_reproduced = " ".join(stack.not_reproduced)
    checked = {}
    for logical, resource in expanded.items():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            # its only statement is a Deny conditional on aws:SecureTransport, which moto cannot evaluate: it is
            # left out, and said so
            assert f"{logical}: statement" in not_reproduced
            continue
        if resource.get("Condition") == "HasAlarmEmail":  # the local stack sets no AlarmEmail
            assert stack.client("sns").list_subscriptions()["Subscriptions"] == []
            continue
        checked[logical] = _exists(stack, logical, resource)
    unchecked = [logical for logical, ok in checked.items() if not ok]
    assert not unchecked, f"no check for these resource types: {unchecked}"
    assert len(checked) >= 15  # buckets, tables, queues, functions, roles, rule, invoke configs, S3 permission


def test_functions_get_the_template_environment_pointed_at_the_stack(stack: LocalStack) -> None:
    classify = stack.runtime_env("classify")
    assert classify["CATEGORIES_TABLE"] == stack.categories_table
    assert classify["IMAGES_PREFIX"] == "images/"
    assert classify["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert classify["AWS_ACCESS_KEY_ID"] == "testing"
    assert classify["IMAGELIFT_MODELS_DIR"].endswith("models")
    assert classify["LAMBDA_TASK_ROOT"].endswith("functions/classify_image")
    report = stack.runtime_env("report")
    assert report["DATA_BUCKET"] == stack.data_bucket
    assert report["REPORTS_TABLE"] == stack.reports_table
    spec = stack.function("ClassifyImageFunction")
    assert spec.handler == "app.lambda_handler"
    assert spec.timeout_s >= 10
    with pytest.raises(Exception, match="no function 'nope'"):
        stack.function("nope")


def _queued_events(stack: LocalStack, wait_s: float, want: int) -> list[dict]:
    sqs = stack.client("sqs")
    events: list[dict] = []
    deadline = time.monotonic() + wait_s
    while len(events) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=stack.notification_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=stack.notification_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return events


def test_uploads_under_images_reach_the_notification_queue_and_others_do_not(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.uploads_bucket, Key="elsewhere/c.jpg", Body=b"y")
    s3.put_object(Bucket=stack.uploads_bucket, Key="images/P 1/L1/a+b.jpg", Body=b"x")
    events = _queued_events(stack, wait_s=10, want=1)
    assert len(events) == 1
    assert _queued_events(stack, wait_s=1, want=1) == []  # elsewhere/ was put first: its event would be there
    (record,) = events[0]["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == stack.uploads_bucket
    assert urllib.parse.unquote_plus(record["s3"]["object"]["key"]) == "images/P 1/L1/a+b.jpg"


def test_moto_sends_no_event_for_a_delete_marker_and_the_stack_says_so(stack: LocalStack) -> None:
    """The uploads bucket is versioned, so a delete makes a delete marker; S3 sends ObjectRemoved:DeleteMarkerCreated
    but moto 5 sends nothing. If this starts failing, moto has closed the gap: drop the not_reproduced line."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.uploads_bucket, Key="images/P2/L1/gone.jpg", Body=b"x")
    assert len(_queued_events(stack, wait_s=10, want=1)) == 1
    s3.delete_object(Bucket=stack.uploads_bucket, Key="images/P2/L1/gone.jpg")
    assert _queued_events(stack, wait_s=2, want=1) == []
    assert any("DeleteMarkerCreated" in line for line in stack.not_reproduced)


def test_attach_finds_the_same_stack_and_state_round_trips(stack: LocalStack) -> None:
    attached = attach_local_stack(stack.endpoint_url, stack_name=stack.stack_name)
    assert attached.resources == stack.resources
    assert attached.notification_queue_url == stack.notification_queue_url
    assert attached.runtime_env("classify")["CATEGORIES_TABLE"] == stack.categories_table
    restored = LocalStack.from_json(stack.to_json())
    assert restored.summary() == stack.summary()


@pytest.mark.slow
def test_local_up_detached_serves_classifies_uploads_and_down_stops_it(tmp_path, models_dir) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from infra.localstack.daemon import StatePaths, running_stack
    from infra.localstack.samples import bundled_photos

    root = TEMPLATE.parent
    state = ["--state-dir", str(tmp_path / "state")]
    up = subprocess.run(
        [sys.executable, "-m", "imagelift", "local", "up", "--detach", *state],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    found = running_stack(StatePaths(tmp_path / "state"))
    assert found is not None
    local, pid = found
    try:
        assert f"export AWS_ENDPOINT_URL={local.endpoint_url}" in up.stdout
        assert local.uploads_bucket in up.stdout and local.categories_table in up.stdout
        again = subprocess.run(
            [sys.executable, "-m", "imagelift", "local", "up", *state], capture_output=True, text=True, cwd=root
        )
        assert again.returncode == 1 and "already runs" in again.stderr
        # an upload through the endpoint is classified by the running stack, as S3 -> Lambda would
        local.client("s3").put_object(
            Bucket=local.uploads_bucket, Key="images/P9/L9/astronaut.jpg", Body=bundled_photos()[0].data
        )
        deadline = time.monotonic() + 90
        items: list[dict] = []
        while not items and time.monotonic() < deadline:
            items = local.client("dynamodb").scan(TableName=local.categories_table)["Items"]
            time.sleep(0.5)
        assert len(items) == 1
        assert items[0]["status"]["S"] == "classified" and items[0]["category"]["N"] == "1"
        time.sleep(1.5)  # the delivery state is rewritten every second
        status = subprocess.run(
            [sys.executable, "-m", "imagelift", "local", "status", *state], capture_output=True, text=True, cwd=root
        )
        assert status.returncode == 0 and "1 invocations, 1 ok" in status.stdout, status.stdout
        assert "1/1 delivery threads alive, 0 in flight" in status.stdout and "STUCK" not in status.stdout
        log = (tmp_path / "state" / "local.log").read_text(encoding="utf-8")
        assert "not as on AWS:" in log
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "imagelift", "local", "down", *state], capture_output=True, text=True, cwd=root
        )
    assert down.returncode == 0 and f"pid {pid}" in down.stdout
    proc = Path(f"/proc/{pid}")
    assert not proc.exists() or "zombie" in (proc / "status").read_text().lower()
    assert running_stack(StatePaths(tmp_path / "state")) is None
