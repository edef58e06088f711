"""S3 events from the notification queue to the function, with Lambda's retry and on-failure semantics; a small burst."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from infra.localstack.delivery import QueueDelivery
from infra.localstack.rie import RieFunction
from infra.localstack.stack import LocalStack, running_local_stack

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "local_handlers"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_local_stack(stack_name="imagelift-deliverytest") as local:
        yield local


def _drain(sqs, queue_url: str) -> list[dict]:  # type: ignore[no-untyped-def]
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_failed_invocations_are_retried_then_sent_to_the_failure_queue(
    stack: LocalStack, rie: Path, tmp_path: Path
) -> None:
    s3, sqs = stack.client("s3"), stack.client("sqs")
    failure_queue = stack.classify_failures_queue_url
    assert failure_queue
    _drain(sqs, failure_queue)
    env = {"FLAKY_STATE_DIR": str(tmp_path)}
    runners = [RieFunction(HANDLERS, "app.flaky", env, binary=rie, name=f"flaky-{i}") for i in range(2)]
    delivered = []
    try:
        delivery = QueueDelivery(
            sqs,
            stack.notification_queue_url,
            runners,
            max_attempts=3,
            failure_queue_url=failure_queue,
            function_arn="flaky",
            on_delivery=delivered.append,
        )
        with delivery:
            for key in ("images/P1/L1/ok.jpg", "images/P1/L2/fails-once.jpg", "images/P1/L3/always-fails.jpg"):
                s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=b"not looked at")
            assert delivery.wait_until_drained(timeout_s=120)
    finally:
        for runner in runners:
            runner.stop()
    stats = delivery.stats
    assert stats.deliveries_per_key == {"images/P1/L1/ok.jpg": 1, "images/P1/L2/fails-once.jpg": 1}
    assert stats.invocations == 1 + 2 + 3  # ok once; fails-once twice; always-fails three times
    assert stats.failed_attempts == 1 + 3
    assert stats.dead_lettered == 1
    attempts = sorted((d.keys[0], d.attempt, d.ok) for d in delivered)
    assert [a for a in attempts if "always" in a[0]] == [
        ("images/P1/L3/always-fails.jpg", 1, False),
        ("images/P1/L3/always-fails.jpg", 2, False),
        ("images/P1/L3/always-fails.jpg", 3, False),
    ]
    dead = _drain(sqs, failure_queue)
    assert len(dead) == 1
    assert dead[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert dead[0]["requestContext"]["approximateInvokeCount"] == 3
    assert dead[0]["requestPayload"]["Records"][0]["s3"]["bucket"]["name"] == stack.uploads_bucket
    assert dead[0]["responsePayload"]["errorType"] == "RuntimeError"
    assert _drain(sqs, stack.notification_queue_url) == []


@pytest.mark.slow
def test_small_burst_loses_nothing_and_doubles_nothing(stack: LocalStack, rie: Path, models_dir: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from burst_bench import run_burst
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = run_burst(
        uploads=40,
        concurrency=2,
        corrupt_share=0.05,
        hostile_share=0.1,
        duplicate_share=0.1,
        runner="rie",
        reference_uploads=0,
        progress=False,
        stack=stack,
    )
    assert result["runner"] == "rie"
    assert result["records"] == 40
    assert result["keys_with_record"] == 40
    assert result["lost"] == 0
    assert result["doubled"] == 0
    assert result["corrupt_uploaded"] == 2 + 4
    assert result["corrupt_recorded_failed"] == 6
    assert result["hostile_uploaded"] == 4 and result["hostile_failed_with_expected_code"] == 4
    assert result["failed"] == 6
    assert result["classified"] == 34
    assert result["category_differs_from_label"] == 0
    # each event sent twice is one duplicate; a retried attempt that had written its record (a timeout on a loaded
    # machine) adds one, never a second record
    retried = result["delivery"]["failed_attempts"]
    assert result["duplicate_events_sent"] == 4 and 4 <= result["outcomes"]["duplicate"] <= 4 + retried
    assert 4 <= result["delivery"]["keys_delivered_more_than_once"] <= 4 + retried
    assert result["failure_queue_messages"] == 0
    assert result["photos_per_s"] > 0
    assert result["passed"] is True


def test_an_emulator_timeout_is_a_failed_invocation(rie: Path) -> None:
    with RieFunction(HANDLERS, "app.sleepy", {"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"}, binary=rie) as function:
        timed_out = function.invoke({"sleep_s": 3})
        assert not timed_out.ok
        assert timed_out.payload["errorType"] == "Sandbox.Timedout"
        assert "Task timed out" in timed_out.error
        assert function.invoke({"sleep_s": 0}).ok  # the emulator starts a fresh runtime after a timeout


def test_timeouts_go_to_the_failure_queue_and_the_threads_keep_delivering(stack: LocalStack, rie: Path) -> None:
    """As many timeouts as instances, a callback that raises, and bare-string payloads: nothing is lost."""
    s3, sqs = stack.client("s3"), stack.client("sqs")
    failure_queue = stack.classify_failures_queue_url
    _drain(sqs, failure_queue)
    env = {"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"}
    runners = [RieFunction(HANDLERS, "app.slow_keys", env, binary=rie, name=f"slow-{i}") for i in range(2)]
    seen = []

    def fragile_callback(delivery) -> None:  # type: ignore[no-untyped-def]
        seen.append(delivery)
        if len(seen) == 1:
            raise RuntimeError("a report of the delivery broke")
        delivery.invocation.payload.get("results")  # what crashed the old `local up` on a timeout's string

    keys = ["images/P1/S1/slow-a.jpg", "images/P1/S2/slow-b.jpg"] + [f"images/P1/F{i}/fast.jpg" for i in range(4)]
    try:
        delivery = QueueDelivery(
            sqs,
            stack.notification_queue_url,
            runners,
            max_attempts=2,
            failure_queue_url=failure_queue,
            function_arn="slow",
            on_delivery=fragile_callback,
        )
        with delivery:
            for key in keys:
                s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=b"x")
            assert delivery.wait_until_drained(timeout_s=120)
            assert delivery.threads_alive() == 2 and delivery.in_flight() == []
    finally:
        for runner in runners:
            runner.stop()
    stats = delivery.stats
    assert set(stats.deliveries_per_key) == {k for k in keys if "slow" not in k}
    assert stats.failed_attempts == 4 and stats.dead_lettered == 2
    dead = _drain(sqs, failure_queue)
    assert sorted(unquote_plus(d["requestPayload"]["Records"][0]["s3"]["object"]["key"]) for d in dead) == [
        "images/P1/S1/slow-a.jpg",
        "images/P1/S2/slow-b.jpg",
    ]
    assert all(d["responsePayload"]["errorType"] == "Sandbox.Timedout" for d in dead)
    assert any("on_delivery" in error for error in stats.errors)
