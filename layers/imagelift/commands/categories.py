"""``imagelift categories --product P | --listing L [--product P] | --export FILE.csv [--stack S | --table T]``:
each listing's current category, with the photo that gives it, its scores, status and review flag."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

TABLE_HELP = (
    "The table comes from --table, else CATEGORIES_TABLE, else the outputs of the deployed stack (--stack, or "
    "IMAGELIFT_STACK, default imagelift)."
)


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming the ImageCategories table (shared by the seller commands)."""
    parser.add_argument("--stack", default=None, help="deployed stack whose outputs name the table")
    parser.add_argument(
        "--table", default=None, help="ImageCategories table (default: CATEGORIES_TABLE, or the stack's)"
    )


def resolve_table(args: argparse.Namespace) -> str | None:
    """The table name (checked to exist), or None after printing why there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.services.targets import TargetError, resolve_ingest_target

    try:
        return resolve_ingest_target(table=args.table, stack=args.stack).table
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot look up the table or stack: {exc}", file=sys.stderr)
    return None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "categories",
        help="each listing's current category (of a product, of a listing, or every listing to CSV)",
        description="Prints, per listing, the category that counts now (a person's correction, else the "
        "classifier's), the photo it comes from (the listing's main photo, as the weekly report takes it: main.*, else the lowest "
        "leading position number 01-..., else the newest upload; --listing also lists the gallery), the "
        "best face and person scores, the status and whether the photo is worth a human look (review). "
        "--product and --listing read one index query each; --export reads the whole table once. " + TABLE_HELP,
    )
    which = parser.add_argument_group("which listings (one of --product, --listing, --export)")
    which.add_argument("--product", default=None, help="every listing of this product")
    which.add_argument("--listing", default=None, help="this listing (with --product: that product's listing only)")
    which.add_argument("--export", type=Path, default=None, metavar="CSV", help="every listing, written to CSV")
    parser.add_argument("--json", action="store_true", help="one JSON object per listing instead of a table")
    add_table_arguments(parser)
    parser.set_defaults(func=run)


def write_csv(path: Path, rows: list[Any]) -> None:
    from imagelift.services.categories import EXPORT_COLUMNS

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS))
        writer.writeheader()
        writer.writerows(row.csv_row() for row in rows)


def print_table(rows: list[Any], gallery: bool = False) -> None:
    """One line per listing (its main photo); with ``gallery``, a line for each other live photo below it."""
    header = ("product", "listing", "category", "by", "review", "status", "face", "person", "role", "photo")
    lines = [header]
    for row in rows:
        by = "person" if row.corrected else (row.decided_by or "")
        lines.append(
            (
                row.product_id,
                row.listing_id,
                f"{row.category} {row.category_name}" if row.category is not None else "-",
                by,
                "yes" if row.review else "",
                row.status,
                "" if row.face_score is None else f"{row.face_score:.2f}",
                "" if row.person_score is None else f"{row.person_score:.2f}",
                "main" if row.key else "",
                row.key or "",
            )
        )
        for photo in row.photos[1:] if gallery else ():
            lines.append(
                (
                    "",
                    "",
                    f"{photo.category} {photo.category_name}",
                    "person" if photo.corrected else "",
                    "yes" if photo.review else "",
                    "",
                    "",
                    "",
                    photo.role,
                    photo.key,
                )
            )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def run(args: argparse.Namespace) -> int:
    if args.export is None and args.product is None and args.listing is None:
        print("error: give --product, --listing or --export", file=sys.stderr)
        return 2
    if args.export is not None and (args.product or args.listing):
        print("error: --export writes every listing; drop --product/--listing", file=sys.stderr)
        return 2
    table = resolve_table(args)
    if table is None:
        return 1
    from botocore.exceptions import BotoCoreError, ClientError

    from imagelift.adapters.categories_table import CategoriesTable
    from imagelift.adapters.category_records import scan_category_records
    from imagelift.services.categories import CategoriesService

    records = CategoriesTable(table)
    service = CategoriesService(records, scan=lambda: scan_category_records(table, records.client, fields=None))
    try:
        if args.export is not None:
            rows = service.every_listing()
        elif args.listing is not None:
            rows = service.of_listing(args.listing, product_id=args.product)
        else:
            rows = service.of_product(args.product)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: cannot read {table}: {exc}", file=sys.stderr)
        return 1
    if args.export is not None:
        write_csv(args.export, rows)
        print(f"{len(rows)} listing(s) written to {args.export}", file=sys.stderr)
        return 0
    if not rows:
        which = f"listing {args.listing}" if args.listing else f"product {args.product}"
        print(f"no records of {which} in {table}", file=sys.stderr)
        return 1
    if args.json:
        for row in rows:
            print(json.dumps(row.to_dict()))
    else:
        print_table(rows, gallery=args.listing is not None)
    return 0
