"""``imagelift backfill [--bucket B] [--stack S | --table T] [--prefix images/] [--live-since DATE | --live-from CSV]``:
record the photos that have no record, and (optionally) since when the listings' current photos were live."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagelift.progress import ProgressBar

TARGET_HELP = (
    "The table and bucket come from --table/--bucket, else CATEGORIES_TABLE, else the outputs of the deployed stack "
    "(--stack, or IMAGELIFT_STACK, default imagelift); the table is checked before any work."
)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming what an operator command works on (shared with ``reclassify``)."""
    parser.add_argument("--bucket", default=None, help="the uploads bucket (default: the stack's UploadsBucketName)")
    parser.add_argument("--stack", default=None, help="deployed stack whose outputs name the table and bucket")
    parser.add_argument(
        "--table", default=None, help="ImageCategories table (default: CATEGORIES_TABLE, or the stack's)"
    )
    parser.add_argument("--prefix", default=None, help="key prefix (default: IMAGES_PREFIX, images/)")
    parser.add_argument("--concurrency", type=int, default=4, help="photos in flight at once (default: 4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="classify the photos in a bucket that have no ImageCategories record yet (safe to rerun)",
        description="Lists the current photos under --prefix, classifies each one whose version has no record, and "
        "prints a JSON summary. Photos already recorded are skipped, so a rerun only does what is missing. "
        f"{TARGET_HELP} Exit status 1 when some photos hit an error (rerun to finish them).",
    )
    add_target_arguments(parser)
    parser.add_argument(
        "--live-since",
        default=None,
        metavar="DATE",
        help="the listings' current photos were live since DATE (before their upload): the report counts those weeks",
    )
    parser.add_argument(
        "--live-from",
        type=Path,
        default=None,
        metavar="CSV",
        help="per listing: a CSV of listing_id,live_from (product_id optional); wins over --live-since",
    )
    parser.set_defaults(func=run)


def progress_bar(verb: str = "backfilled") -> Callable[[int, int, str, Any], None]:
    """A service's progress callback: a bar sized on the first call, when the listing's total is known."""
    bar: ProgressBar | None = None

    def update(done: int, total: int, key: str, result: Any) -> None:
        nonlocal bar
        bar = bar or ProgressBar(total, verb=verb)
        bar.update(done, name=key.rsplit("/", 1)[-1], outcome=result.outcome if result is not None else "error")

    return update


def resolve_target(args: argparse.Namespace) -> tuple[str, str] | None:
    """(table, bucket) for the command, or None after printing why there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.services.targets import TargetError, resolve_ingest_target

    if args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return None
    try:
        target = resolve_ingest_target(table=args.table, bucket=args.bucket, stack=args.stack)
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot look up the table or stack: {exc}", file=sys.stderr)
        return None
    if target.bucket is None:
        print(f"error: no uploads bucket: pass --bucket (table {target.table} from {target.source})", file=sys.stderr)
        return None
    return target.table, target.bucket


def run(args: argparse.Namespace) -> int:
    from imagelift.records.live_from import LiveFrom, LiveFromError, parse_moment, read_live_from_csv
    from imagelift.services.backfill import BackfillService

    try:
        since = parse_moment(args.live_since) if args.live_since else None
        if args.live_from is not None and not args.live_from.is_file():
            raise LiveFromError(f"{args.live_from}: does not exist")
        by_listing = read_live_from_csv(str(args.live_from), args.live_from.read_bytes()) if args.live_from else {}
    except LiveFromError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    live_from = LiveFrom(since=since, by_listing=by_listing)
    return run_over_photos(
        args,
        BackfillService,
        lambda service, bucket, prefix, progress: service.run(
            bucket, prefix, concurrency=args.concurrency, progress=progress, live_from=live_from or None
        ),
    )


def run_over_photos(
    args: argparse.Namespace,
    service_class: Any,
    start: Callable[[Any, str, str, Any], Any],
    progress_label: str = "backfilled",
    rerun_hint: Callable[[Any], str] = lambda summary: "",
) -> int:
    """The part backfill and reclassify share: find the table and bucket, wire the service, ``start`` it over the
    prefix with a progress bar, print its summary; exit status 1 when a photo hit an error."""
    target = resolve_target(args)
    if target is None:
        return 2 if args.concurrency < 1 else 1
    table, bucket = target
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        service = service_class.from_env(categories_table=table)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prefix = service.images_prefix if args.prefix is None else args.prefix
    progress = None if args.no_progress else progress_bar(progress_label)
    try:
        summary = start(service, bucket, prefix, progress)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot list s3://{bucket}/{prefix}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"table": table, **summary.to_dict()}, indent=2))
    if summary.errors:
        print(
            f"{len(summary.errors)} photo(s) hit an error; rerun{rerun_hint(summary)} to finish them", file=sys.stderr
        )
        return 1
    return 0
