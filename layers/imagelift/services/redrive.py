"""Redrive the classifier's failure queue: each event that failed is handled again, as the function handles it.

What the queue holds depends on the delivery (template parameter ``PhotoEventDelivery``):

- ``direct`` / ``eventbridge``: Lambda's OnFailure destination record, the event that failed in ``requestPayload``
  (``requestContext.condition`` says why: RetriesExhausted, EventAgeExceeded), ``responsePayload`` the last error;
- ``eventbridge``, undeliverable: the EventBridge event itself (the rule's dead-letter queue);
- ``sqs``: the S3 notification itself (PhotoEventsQueue's redrive policy moved it after three receives), possibly
  wrapped in an SNS envelope.

Each event goes to :meth:`ClassifyService.handle_event`, so it does exactly what the function would: records
already written are no-ops, a photo that is gone or unreadable is recorded ``failed``. A message whose event was
handled is deleted; one that still hits a transient fault is kept and made visible again at the end (the alarm
keeps counting it, a later run retries it); one that is no event at all is kept and counted ``unreadable`` for a
person to look at, unless ``delete_unreadable``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from imagelift.adapters.failure_queue import FailureQueue, QueuedMessage
from imagelift.services.results import TransientRecordError
from imagelift.services.s3_events import InvalidEventError, read_notification, sqs_body


def original_event(body: str) -> tuple[dict[str, Any], str]:
    """(the event that failed, what carried it: ``destination``, ``eventbridge`` or ``s3``); raises
    :class:`InvalidEventError` when the body holds none."""
    message = sqs_body(body)
    if "requestPayload" in message and "requestContext" in message:
        event, carrier = message["requestPayload"], "destination"
        if isinstance(event, str):  # a payload Lambda could not parse as JSON is kept as text
            try:
                event = json.loads(event)
            except json.JSONDecodeError as exc:
                raise InvalidEventError(f"the destination record's requestPayload is not JSON: {exc}") from exc
    else:
        event, carrier = message, "eventbridge" if message.get("source") == "aws.s3" else "s3"
    read_notification(event)  # raises InvalidEventError for anything that is no S3 event
    return event, carrier


@dataclass
class RedriveSummary:
    queue_url: str
    received: int = 0
    redriven: int = 0
    """Messages whose event was handled, then deleted."""
    still_failing: int = 0
    unreadable: int = 0
    deleted_unreadable: int = 0
    carriers: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    """Per record of the redriven events: classified, failed, deleted, duplicate, stale, skipped, invalid."""
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue_url": self.queue_url,
            "received": self.received,
            "redriven": self.redriven,
            "still_failing": self.still_failing,
            "unreadable": self.unreadable,
            "deleted_unreadable": self.deleted_unreadable,
            "carriers": dict(sorted(self.carriers.items())),
            "records": dict(sorted(self.outcomes.items())),
            "errors": self.errors,
        }


class RedriveService:
    """``classify``: imagelift.services.classify_service.ClassifyService (its :meth:`handle_event` is the work)."""

    def __init__(self, classify: Any, queue: FailureQueue) -> None:
        self.classify = classify
        self.queue = queue

    def run(
        self,
        *,
        max_messages: int | None = None,
        visibility_timeout: int = 300,
        wait_seconds: int = 1,
        delete_unreadable: bool = False,
    ) -> RedriveSummary:
        """Receive until the queue answers empty (or ``max_messages``); each message is settled or kept."""
        summary = RedriveSummary(queue_url=self.queue.queue_url)
        kept: list[QueuedMessage] = []
        try:
            while max_messages is None or summary.received < max_messages:
                room = 10 if max_messages is None else max_messages - summary.received
                batch = self.queue.receive(
                    max_messages=room, visibility_timeout=visibility_timeout, wait_seconds=wait_seconds
                )
                if not batch:
                    break
                for message in batch:
                    summary.received += 1
                    if not self.redrive_one(message, summary, delete_unreadable=delete_unreadable):
                        kept.append(message)
        finally:
            for message in kept:  # visible again for the alarm and the next run (not before: this run would loop)
                self.queue.release(message)
        return summary

    def redrive_one(self, message: QueuedMessage, summary: RedriveSummary, *, delete_unreadable: bool) -> bool:
        """Handle one message; True when it was settled (and deleted)."""
        try:
            event, carrier = original_event(message.body)
        except InvalidEventError as exc:
            summary.errors.append({"message_id": message.message_id, "error": f"unreadable: {exc}"})
            if delete_unreadable:
                self.queue.delete(message)
                summary.deleted_unreadable += 1
                return True
            summary.unreadable += 1
            return False
        summary.carriers[carrier] += 1
        try:
            result = self.classify.handle_event(event)
        except TransientRecordError as exc:
            summary.outcomes.update(exc.summary.counts)
            summary.still_failing += 1
            summary.errors.append({"message_id": message.message_id, "error": str(exc)})
            return False
        summary.outcomes.update(result.counts)
        self.queue.delete(message)
        summary.redriven += 1
        return True
