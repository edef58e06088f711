"""Run the weekly influence report on local files: how model / worn photos move sales against product-only.

``imagelift report --sales PATH... --categories PATH --out DIR``.

Sales exports are CSV, TSV or .xlsx files (gzip allowed; folders are searched), as Shopify, Amazon's Business
Report or imagelift write them (``--format``), or any layout mapped with ``--columns``; categories are JSON Lines
of ImageCategories items. Writes DIR/influence.json, influence.csv and influence.html and prints the headline,
the rejected rows by reason with examples, and the files that could not be read. Exit status 2 when a file
named on the command line is unusable (the message names it); files found in a folder are listed instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from imagelift.influence.exports.formats import DECIMALS, FORMAT_NAMES, WEEK_STARTS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="measure how model / worn photos move sales against product-only photos",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--sales",
        nargs="+",
        type=Path,
        required=True,
        metavar="PATH",
        help="sales export files or folders (CSV, TSV or .xlsx; gzip allowed)",
    )
    parser.add_argument(
        "--categories",
        type=Path,
        required=True,
        metavar="PATH",
        help="category records, JSON Lines of ImageCategories items",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where influence.* are written")
    parser.add_argument(
        "--controls",
        default=None,
        metavar="COLS",
        help="comma-separated extra numeric columns to control for (default: REPORT_CONTROLS)",
    )
    parser.add_argument("--confidence", type=float, default=None, help="interval level (default 0.95)")
    parser.add_argument(
        "--listing-category",
        choices=("main", "any_model"),
        default=None,
        help="which photos give a listing-week its category: its main photo (main.*, else the lowest leading "
        "position number 01-...), or model when any photo of its gallery is one (default: REPORT_LISTING_CATEGORY, "
        "else main)",
    )
    parser.add_argument(
        "--confusion",
        type=Path,
        default=None,
        metavar="JSON",
        help="the classifier's confusion matrix (imagelift evaluate --json, or imagelift review --confusion): the "
        "report then also shows the effects corrected for its mistakes (default REPORT_CONFUSION)",
    )
    exports = parser.add_argument_group("reading the sales exports (defaults: REPORT_* environment variables)")
    exports.add_argument(
        "--format",
        dest="sales_format",
        choices=FORMAT_NAMES,
        default=None,
        help="export layout (default auto: recognised by the headers)",
    )
    exports.add_argument(
        "--columns",
        default=None,
        metavar="MAP",
        help='headers for the fields, e.g. week=Day,listing_id="Variant SKU",units=Qty,sales=Revenue',
    )
    exports.add_argument("--decimal", choices=DECIMALS, default=None, help="decimal mark (default auto, per file)")
    order = exports.add_mutually_exclusive_group()
    order.add_argument(
        "--dayfirst", dest="dayfirst", action="store_const", const="true", help="06/01/2025 is 6 January"
    )
    order.add_argument(
        "--monthfirst", dest="dayfirst", action="store_const", const="false", help="06/01/2025 is 1 June"
    )
    exports.add_argument(
        "--week-start", choices=WEEK_STARTS, default=None, help="weekly rows labelled by (default auto)"
    )
    exports.add_argument(
        "--fill-zeros", action="store_true", default=None, help="add zero-sale weeks an export left out"
    )
    exports.add_argument("--max-units", type=float, default=None, help="most units per listing-week (default 100000)")
    exports.add_argument(
        "--max-price-factor", type=float, default=None, help="price bound around the listing's median (default 20)"
    )
    exports.add_argument(
        "--report-date",
        type=date.fromisoformat,
        default=None,
        metavar="DATE",
        help="weeks starting after it are rejected as future_week (default today)",
    )
    exports.add_argument(
        "--window-weeks",
        type=int,
        default=None,
        metavar="N",
        help="read only the N weeks before the report date (default: all history)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole influence.json to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagelift.config import ReportConfig, SalesConfig
    from imagelift.errors import EstimationFailure, PermanentError
    from imagelift.services.report_service import run_local

    overrides = {}
    if args.controls is not None:
        overrides["controls"] = args.controls
    if args.confidence is not None:
        overrides["confidence"] = args.confidence
    if args.listing_category is not None:
        overrides["listing_category"] = args.listing_category
    if args.confusion is not None:
        overrides["confusion"] = str(args.confusion)
    names = (
        "sales_format",
        "columns",
        "decimal",
        "dayfirst",
        "week_start",
        "fill_zeros",
        "max_units",
        "max_price_factor",
    )
    sales_overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        config = ReportConfig.from_env(**overrides)
        sales_config = SalesConfig.from_env(**sales_overrides)
        result = run_local(
            list(args.sales),
            args.categories,
            args.out,
            config,
            sales_config,
            report_date=args.report_date,
            window_weeks=args.window_weeks,
        )
    except PermanentError as exc:
        print(f"imagelift report: {exc}", file=sys.stderr)
        return 2
    except EstimationFailure as exc:
        print(f"imagelift report: cannot estimate: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a bad --columns map or REPORT_* value
        print(f"imagelift report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.report.to_dict(), indent=2))
        return 0
    print(result.summary.headline())
    counts = result.report.counts
    for reason, examples in counts.rejected_examples.items():
        print(f"  {reason}: e.g. {', '.join(examples[:3])}")
    if counts.rows_superseded:
        print(
            f"superseded by newer exports: {counts.rows_superseded:,} rows (e.g. {', '.join(counts.superseded_examples[:3])})"
        )
    for name, problem in counts.files_failed.items():
        print(f"not read: {name}: {problem}")
    print(f"wrote {', '.join(str(args.out / name) for name in result.files)}")
    return 0
