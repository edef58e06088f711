"""``imagelift redrive [--stack S | --table T --queue-url U] [--max N] [--delete-unreadable]``: handle again the
events in the classifier's failure queue, delete those that now succeed, and report what was done."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="handle again the S3 events in the classifier's failure queue (once their cause is fixed)",
        description="Reads ClassifyFailuresQueue (--queue-url, else the stack's ClassifyFailuresQueueUrl output), "
        "unwraps each message to the S3 event that failed (a Lambda destination record's requestPayload, an "
        "EventBridge event, or an S3 notification as the SQS delivery moved it), handles it here exactly as the "
        "classifier function does (models from IMAGELIFT_MODELS_DIR), and deletes the message when that succeeds. "
        "Messages that still fail, or that hold no event, stay in the queue. The table comes from --table, else "
        "CATEGORIES_TABLE, else the stack's outputs. Prints a JSON summary; exit status 1 when messages remain.",
    )
    parser.add_argument("--stack", default=None, help="deployed stack whose outputs name the queue and table")
    parser.add_argument(
        "--table", default=None, help="ImageCategories table (default: CATEGORIES_TABLE, or the stack's)"
    )
    parser.add_argument("--queue-url", default=None, help="the failure queue (default: the stack's)")
    parser.add_argument("--max", type=int, default=None, dest="max_messages", help="stop after this many messages")
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=300,
        help="seconds a message is hidden while this run handles it (default: 300)",
    )
    parser.add_argument(
        "--wait", type=int, default=1, help="seconds to long-poll before the queue counts as empty (default: 1)"
    )
    parser.add_argument(
        "--delete-unreadable", action="store_true", help="delete messages that hold no S3 event (default: keep them)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.adapters.failure_queue import FailureQueue
    from imagelift.services.targets import TargetError, resolve_failures_queue, resolve_ingest_target

    if args.max_messages is not None and args.max_messages < 1:
        print("error: --max must be at least 1", file=sys.stderr)
        return 2
    try:
        queue_url = resolve_failures_queue(queue_url=args.queue_url, stack=args.stack)
        table = resolve_ingest_target(table=args.table, stack=args.stack).table
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot look up the queue, table or stack: {exc}", file=sys.stderr)
        return 1

    from imagelift.services.classify_service import ClassifyService, production_wiring
    from imagelift.services.redrive import RedriveService

    try:
        wiring = production_wiring(None, None, categories_table=table)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    service = RedriveService(ClassifyService(**wiring), FailureQueue(queue_url))
    try:
        summary = service.run(
            max_messages=args.max_messages,
            visibility_timeout=args.visibility_timeout,
            wait_seconds=args.wait,
            delete_unreadable=args.delete_unreadable,
        )
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot read {queue_url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"table": table, **summary.to_dict()}, indent=2))
    remaining = summary.still_failing + summary.unreadable
    if remaining:
        print(f"{remaining} message(s) remain in the queue (see errors)", file=sys.stderr)
        return 1
    return 0
