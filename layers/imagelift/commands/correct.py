"""``imagelift correct KEY --category worn [--note WHY] [--by WHO] [--version V] [--stack S | --table T]``: store a
person's verdict on a photo beside the classifier's."""

from __future__ import annotations

import argparse
import json
import sys

from imagelift.commands.categories import TABLE_HELP, add_table_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "correct",
        help="record a person's category for a photo (the classifier's result is kept beside it)",
        description="Stores on the record of the photo's live version who (--by, else IMAGELIFT_REVIEWER, else "
        "USER) set which category, when and why (--note). The classifier's category, detector and scores are "
        "kept; the weekly report and `imagelift categories` use the corrected category, and the report counts "
        "the corrected records. Correcting again replaces the correction and keeps the earlier ones. KEY is "
        "s3://<bucket>/<key> or a key of the uploads bucket (--bucket, else the stack's UploadsBucketName). "
        + TABLE_HELP,
    )
    parser.add_argument("key", metavar="KEY", help="images/<product_id>/<listing_id>/<file> or s3://<bucket>/<key>")
    parser.add_argument("--category", required=True, help="model, worn or product (or 1, 2, 3)")
    parser.add_argument("--note", default=None, help="why (kept with the correction)")
    parser.add_argument("--by", default=None, help="who corrects it (default: IMAGELIFT_REVIEWER, else USER)")
    parser.add_argument("--version", default=None, help="a version of the photo other than the live one")
    parser.add_argument("--bucket", default=None, help="the uploads bucket (default: the stack's UploadsBucketName)")
    add_table_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.adapters.categories_table import CategoriesTable
    from imagelift.config import ReviewerConfig
    from imagelift.services.corrections import CorrectionError, CorrectionService, parse_category, split_location
    from imagelift.services.targets import TargetError, resolve_ingest_target

    try:
        category = parse_category(args.category)
    except CorrectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    by = args.by or ReviewerConfig.from_env().who
    try:
        target = resolve_ingest_target(table=args.table, bucket=args.bucket, stack=args.stack)
        bucket, key = split_location(args.key, target.bucket)
        record = CorrectionService(CategoriesTable(target.table)).correct(
            bucket, key, category, by=by, note=args.note, version=args.version
        )
    except (TargetError, CorrectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    item = record.to_item()
    summary = {name: item.get(name) for name in ("key", "sk", "category", "category_name", "decided_by", "correction")}
    print(json.dumps(summary, indent=2))
    return 0
