"""``imagelift backfill --bucket B [--prefix images/] [--concurrency N]``: record the photos that have no record."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from imagelift.progress import ProgressBar


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="classify the photos in a bucket that have no ImageCategories record yet (safe to rerun)",
        description="Lists the current photos under --prefix, classifies each one whose version has no record in "
        "the table named by CATEGORIES_TABLE, and prints a JSON summary. Photos already recorded are skipped, so "
        "a rerun only does what is missing. Exit status 1 when some photos hit an error (rerun to finish them).",
    )
    parser.add_argument("--bucket", required=True, help="the uploads bucket")
    parser.add_argument("--prefix", default=None, help="key prefix (default: IMAGES_PREFIX, images/)")
    parser.add_argument("--concurrency", type=int, default=4, help="photos in flight at once (default: 4)")
    parser.add_argument("--table", default=None, help="ImageCategories table (default: env CATEGORIES_TABLE)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run)


def progress_bar() -> Callable[[int, int, str, Any], None]:
    """The backfill's progress callback: a bar sized on the first call, when the listing's total is known."""
    bar: ProgressBar | None = None

    def update(done: int, total: int, key: str, result: Any) -> None:
        nonlocal bar
        bar = bar or ProgressBar(total, verb="backfilled")
        bar.update(done, name=key.rsplit("/", 1)[-1], outcome=result.outcome if result is not None else "error")

    return update


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.services.backfill import BackfillService

    storage = {"categories_table": args.table} if args.table else {}
    try:
        service = BackfillService.from_env(**storage)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prefix = service.images_prefix if args.prefix is None else args.prefix
    progress = None if args.no_progress else progress_bar()
    try:
        summary = service.run(args.bucket, prefix, concurrency=args.concurrency, progress=progress)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot list s3://{args.bucket}/{prefix}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary.to_dict(), indent=2))
    if summary.errors:
        print(f"{len(summary.errors)} photo(s) hit an error; rerun to record them", file=sys.stderr)
        return 1
    return 0
