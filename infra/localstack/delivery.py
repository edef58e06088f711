"""Deliver the uploads bucket's S3 notifications from their queue to the classify function, as Lambda would.

moto puts S3 notifications on SQS (see :mod:`infra.localstack.stack`). :class:`QueueDelivery` runs one thread per
function runner (so N runners give a concurrency of N, like N Lambda execution environments), each taking one
message at a time and invoking its runner with the S3 event in the message body, unchanged. The semantics are
those of Lambda's asynchronous invocation that S3 uses: a failed invocation (the handler raised) is retried, up
to ``max_attempts`` in all (1 + the template's MaximumRetryAttempts), then the event goes to the on-failure queue
in the shape of a Lambda destination record, so nothing is lost silently. A message is deleted only after its
invocation succeeded or its failure was recorded. A timeout or an error payload from the emulator is a failed
attempt like any other, and nothing a function returns or a callback raises stops a delivery thread: a message
whose handling broke is left on the queue, which shows it again after its visibility timeout (the next attempt).
:meth:`QueueDelivery.in_flight` lists what each thread is working on, and since when, so a stuck delivery shows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from infra.localstack.rie import Invocation

if TYPE_CHECKING:
    from infra.localstack.stack import LocalStack

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One invocation of the function with one queued S3 event."""

    message_id: str
    keys: list[str]
    """The event's object keys, URL-decoded."""
    attempt: int
    runner: str
    invocation: Invocation
    dead_lettered: bool = False

    @property
    def ok(self) -> bool:
        return self.invocation.ok


@dataclass
class DeliveryStats:
    invocations: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    test_events: int = 0
    deliveries_per_key: Counter[str] = field(default_factory=Counter)
    """Successful invocations per object key (a key delivered twice shows 2)."""
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "succeeded": self.succeeded,
            "failed_attempts": self.failed_attempts,
            "dead_lettered": self.dead_lettered,
            "keys_delivered": len(self.deliveries_per_key),
            "keys_delivered_more_than_once": sum(1 for n in self.deliveries_per_key.values() if n > 1),
            "errors": self.errors[:20],
        }


def event_keys(event: Any) -> list[str]:
    """The object keys of an S3 notification, URL-decoded (``+`` is a space)."""
    records = event.get("Records") if isinstance(event, dict) else None
    keys = []
    for record in records or []:
        try:
            keys.append(unquote_plus(record["s3"]["object"]["key"]))
        except (KeyError, TypeError):
            keys.append("?")
    return keys


def destination_record(event: Any, invocation: Invocation, function_arn: str, attempts: int) -> dict[str, Any]:
    """What Lambda sends to an OnFailure destination once retries are exhausted."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": "local",
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": invocation.payload,
    }


class QueueDelivery:
    """Threads that move S3 events from ``queue_url`` into function runners until stopped."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        runners: Sequence[Any],
        *,
        max_attempts: int = 3,
        failure_queue_url: str | None = None,
        function_arn: str = "",
        on_delivery: Callable[[Delivery], None] | None = None,
        poll_wait_s: int = 1,
        receive_batch: int = 1,
    ) -> None:
        if not runners:
            raise ValueError("QueueDelivery needs at least one function runner")
        self.sqs = sqs
        self.queue_url = queue_url
        self.runners = list(runners)
        self.max_attempts = max(1, max_attempts)
        self.failure_queue_url = failure_queue_url
        self.function_arn = function_arn
        self.on_delivery = on_delivery
        self.poll_wait_s = poll_wait_s
        # Messages taken per ReceiveMessage call; each is still its own invocation, deleted after it. moto's
        # ReceiveMessage walks the whole queue, so under a deep queue (a burst) taking several per call saves
        # most of that walk; the cost is that a thread holds up to this many events while others may be idle.
        self.receive_batch = max(1, min(10, receive_batch))
        self.stats = DeliveryStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0
        self._idle_threads = 0
        self._working_on: dict[str, tuple[str, list[str], float]] = {}  # thread -> message id, keys, start

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        for index, runner in enumerate(self.runners):
            thread = threading.Thread(
                target=self._work, args=(runner,), name=f"delivery-{index}-{getattr(runner, 'name', '')}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        self._threads = []

    def __enter__(self) -> QueueDelivery:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- progress -------------------------------------------------------------------------------------------
    def queue_depth(self) -> int:
        """Messages waiting or being worked on, as SQS counts them."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def wait_until_drained(self, timeout_s: float = 600.0, settle_s: float = 0.5) -> bool:
        """Block until every thread found the queue empty, nothing is being invoked, and SQS agrees; False on timeout.

        SQS is asked only once the threads see nothing more: moto computes queue attributes by walking every
        message, which under a deep queue costs more than the invocations themselves.
        """
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            with self._lock:
                quiet = self._in_flight == 0 and self._idle_threads == len(self._threads)
            if quiet:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    if self.queue_depth() == 0:
                        return True
                    quiet_since = None
            else:
                quiet_since = None
            time.sleep(0.1)
        return False

    def in_flight(self) -> list[dict[str, Any]]:
        """What each delivery thread is invoking now: message id, keys, seconds since it started."""
        now = time.monotonic()
        with self._lock:
            working = list(self._working_on.items())
        return [
            {"thread": thread, "message_id": message_id, "keys": keys, "seconds": round(now - since, 1)}
            for thread, (message_id, keys, since) in sorted(working)
        ]

    def threads_alive(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    # -- the work -------------------------------------------------------------------------------------------
    def _work(self, runner: Any) -> None:
        idle = False  # did this thread's last receive come back empty?
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.receive_batch,
                    WaitTimeSeconds=self.poll_wait_s,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except Exception as exc:  # the server went away (shutdown) or hiccuped: retry unless stopping
                if self._stop.is_set():
                    return
                self._note_error(f"receive_message: {type(exc).__name__}: {exc}")
                time.sleep(0.5)
                continue
            with self._lock:
                self._in_flight += len(messages)
                idle_now = not messages
                if idle_now != idle:
                    self._idle_threads += 1 if idle_now else -1
                    idle = idle_now
            for message in messages:
                try:
                    self._deliver(runner, message)
                except Exception as exc:  # left on the queue: SQS shows it again after its visibility timeout
                    log.exception("delivery of message %s broke", message.get("MessageId"))
                    self._note_error(f"message {message.get('MessageId')}: {type(exc).__name__}: {exc}")
                finally:
                    with self._lock:
                        self._in_flight -= 1
                        self._working_on.pop(threading.current_thread().name, None)

    def _deliver(self, runner: Any, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        try:
            event = json.loads(message["Body"])
        except json.JSONDecodeError as exc:
            self._note_error(f"message {message['MessageId']} is not JSON: {exc}")
            self._dead_letter({"body": message["Body"]}, None, 1)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            return
        if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
            with self._lock:
                self.stats.test_events += 1
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            return
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        keys = event_keys(event)
        with self._lock:
            self._working_on[threading.current_thread().name] = (message["MessageId"], keys, time.monotonic())
        try:
            invocation = runner.invoke(event)
        except Exception as exc:  # the runner itself broke (emulator gone): same as a failed invocation
            invocation = Invocation(
                ok=False,
                payload={"errorType": type(exc).__name__, "errorMessage": str(exc)},
                logs="",
                duration_ms=0.0,
                error=f"{type(exc).__name__}: {exc}",
                runner=getattr(runner, "runner", "?"),
            )
        delivery = Delivery(message["MessageId"], keys, attempt, getattr(runner, "name", "?"), invocation)
        with self._lock:
            self.stats.invocations += 1
            if invocation.ok:
                self.stats.succeeded += 1
                self.stats.deliveries_per_key.update(keys)
            else:
                self.stats.failed_attempts += 1
                self.stats.errors.append(f"{', '.join(keys)} (attempt {attempt}): {invocation.error}")
        if invocation.ok:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        elif attempt >= self.max_attempts:
            delivery.dead_lettered = True
            self._dead_letter(event, invocation, attempt)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        else:
            # Lambda retries a failed asynchronous invocation; make the message visible again at once.
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        if self.on_delivery:
            try:
                self.on_delivery(delivery)
            except Exception as exc:  # a report of the delivery must not undo it
                log.exception("on_delivery callback failed")
                self._note_error(f"on_delivery: {type(exc).__name__}: {exc}")

    def _dead_letter(self, event: Any, invocation: Invocation | None, attempts: int) -> None:
        with self._lock:
            self.stats.dead_lettered += 1
        if not self.failure_queue_url:
            return
        failed = invocation or Invocation(ok=False, payload=None, logs="", duration_ms=0.0, error="unreadable")
        body = destination_record(event, failed, self.function_arn, attempts)
        self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(body, default=str))

    def _note_error(self, text: str) -> None:
        with self._lock:
            self.stats.errors.append(text)


def classify_delivery(
    stack: LocalStack,
    runners: Sequence[Any],
    *,
    on_delivery: Callable[[Delivery], None] | None = None,
    receive_batch: int = 1,
) -> QueueDelivery:
    """The stack's S3 notifications delivered to ``runners`` of its classify function, with the retry count and
    on-failure queue the template gives that function."""
    classify = stack.function("classify")
    return QueueDelivery(
        stack.client("sqs"),
        stack.notification_queue_url,
        runners,
        max_attempts=1 + classify.max_retry_attempts,
        failure_queue_url=stack.classify_failures_queue_url,
        function_arn=classify.function_name,
        on_delivery=on_delivery,
        receive_batch=receive_batch,
    )
