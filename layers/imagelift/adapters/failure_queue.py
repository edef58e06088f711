"""The classifier's failure queue (SQS): receive, delete, and hand back the messages a redrive could not settle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


class FailureQueue:
    """``client`` is a boto3 SQS client (tests pass moto's)."""

    def __init__(self, queue_url: str, *, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs")
        self.queue_url = queue_url
        self.client = client

    def receive(self, *, max_messages: int = 10, visibility_timeout: int, wait_seconds: int) -> list[QueuedMessage]:
        """Up to ``max_messages`` (at most 10), hidden from other readers for ``visibility_timeout`` seconds."""
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [
            QueuedMessage(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message.get("Body", ""),
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, message: QueuedMessage) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)

    def release(self, message: QueuedMessage) -> None:
        """Make the message visible again now (it stays in the queue, and its alarm keeps counting it)."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
        )
