"""``imagelift review [--product P] [--html DIR] [--bucket B] [--stack S | --table T]``: the photos whose category is
worth a human look (records marked ``review: true``, live, not corrected yet), optionally as a contact sheet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imagelift.commands.categories import TABLE_HELP, add_table_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="list the photos marked for review (a score near its threshold), or write a contact sheet of them",
        description="Prints one JSON object per live photo marked review that nobody has corrected yet: its key, "
        "the classifier's category, detector and scores. With --html DIR, also writes DIR/index.html with an "
        "annotated thumbnail of each (the face and person boxes) and the `imagelift correct` commands to copy. "
        "With --confusion, prints instead the classifier's categories against people's corrections (the confusion "
        "matrix of `imagelift evaluate`, corrections as the truth). "
        "--product reads one index query; without it the table is scanned with a filter. " + TABLE_HELP,
    )
    parser.add_argument("--product", default=None, help="only this product's photos")
    parser.add_argument("--html", type=Path, default=None, metavar="DIR", help="write a contact sheet into DIR")
    parser.add_argument(
        "--confusion",
        action="store_true",
        help="instead: the classifier against people's corrections (confusion matrix, recall, mistakes) as JSON",
    )
    add_table_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.adapters.categories_table import CategoriesTable
    from imagelift.commands.categories import resolve_table
    from imagelift.services.review import pending_review, review_row

    table = resolve_table(args)
    if table is None:
        return 1
    if args.confusion:
        from imagelift.services.review import corrections_confusion

        try:
            corrected = CategoriesTable(table).corrected(args.product)
        except (ClientError, BotoCoreError) as exc:
            print(f"error: cannot read {table}: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(corrections_confusion(corrected), indent=2))
        return 0
    try:
        pending = pending_review(CategoriesTable(table).marked_for_review(args.product))
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot read {table}: {exc}", file=sys.stderr)
        return 1
    for record in pending:
        print(json.dumps(review_row(record)))
    print(f"{len(pending)} photo(s) to review", file=sys.stderr)
    if args.html is not None:
        from imagelift.adapters.s3 import PhotoStore
        from imagelift.config import VisionConfig
        from imagelift.services.review import write_contact_sheet

        index = write_contact_sheet(pending, PhotoStore(), args.html, max_bytes=VisionConfig.from_env().max_bytes)
        print(f"contact sheet: {index}", file=sys.stderr)
    return 0
