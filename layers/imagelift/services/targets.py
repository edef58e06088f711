"""Which table, bucket and queue an operator command (backfill, reclassify, redrive) works on, settled once before any
work.

In order: the names given on the command line; ``CATEGORIES_TABLE`` from the environment (as the function has it);
else the deployed stack's outputs (``ImageCategoriesTableName``, ``UploadsBucketName``) of ``--stack`` or
``IMAGELIFT_STACK`` (default ``imagelift``, samconfig.toml's stack name). The table is then checked to exist, so a
wrong name fails once, clearly, instead of once per photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TABLE_OUTPUT = "ImageCategoriesTableName"
BUCKET_OUTPUT = "UploadsBucketName"


class TargetError(Exception):
    """The command cannot tell which table or bucket to use, or the table is not there."""


@dataclass(frozen=True)
class IngestTarget:
    table: str
    bucket: str | None
    source: str
    """Where the names came from, for the error messages and the summary."""


def resolve_ingest_target(
    *,
    table: str | None = None,
    bucket: str | None = None,
    stack: str | None = None,
    environ: dict[str, str] | None = None,
    cloudformation: Any = None,
    dynamodb: Any = None,
) -> IngestTarget:
    """The table (checked to exist) and the uploads bucket (None if nothing names one); raises :class:`TargetError`."""
    from imagelift.adapters.categories_table import CategoriesTable, TableNotFound
    from imagelift.adapters.stack_outputs import StackNotFound, stack_outputs
    from imagelift.config import StackConfig, StorageConfig

    source = "--table"
    if table is None and stack is None and "categories_table" in StorageConfig.set_in_env(environ):
        table, source = StorageConfig.from_env(environ).categories_table, "CATEGORIES_TABLE"
    if table is None or (bucket is None and stack is not None):
        name = stack or StackConfig.from_env(environ).stack
        try:
            outputs = stack_outputs(name, client=cloudformation)
        except StackNotFound as exc:
            raise TargetError(
                f"{exc}: name the table with --table (or CATEGORIES_TABLE), or the stack with --stack"
                " (or IMAGELIFT_STACK)"
            ) from exc
        if table is None:
            if TABLE_OUTPUT not in outputs:
                raise TargetError(f"stack {name!r} has no {TABLE_OUTPUT} output: is it an imagelift stack?")
            table, source = outputs[TABLE_OUTPUT], f"stack {name}"
        bucket = bucket or outputs.get(BUCKET_OUTPUT)
    try:
        CategoriesTable(table, client=dynamodb).check_exists()
    except TableNotFound as exc:
        raise TargetError(f"{exc} (from {source})") from exc
    return IngestTarget(table=table, bucket=bucket, source=source)


FAILURES_QUEUE_OUTPUT = "ClassifyFailuresQueueUrl"


def resolve_failures_queue(
    *,
    queue_url: str | None = None,
    stack: str | None = None,
    environ: dict[str, str] | None = None,
    cloudformation: Any = None,
) -> str:
    """The classifier's failure queue: ``queue_url`` if given, else the stack's output; raises :class:`TargetError`."""
    if queue_url:
        return queue_url
    from imagelift.adapters.stack_outputs import StackNotFound, stack_outputs
    from imagelift.config import StackConfig

    name = stack or StackConfig.from_env(environ).stack
    try:
        outputs = stack_outputs(name, client=cloudformation)
    except StackNotFound as exc:
        raise TargetError(
            f"{exc}: name the queue with --queue-url, or the stack with --stack (or IMAGELIFT_STACK)"
        ) from exc
    if FAILURES_QUEUE_OUTPUT not in outputs:
        raise TargetError(f"stack {name!r} has no {FAILURES_QUEUE_OUTPUT} output: is it an imagelift stack?")
    return outputs[FAILURES_QUEUE_OUTPUT]
