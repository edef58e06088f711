"""Run the weekly influence report on local files: how model / worn photos move sales against product-only.

``imagelift report --sales PATH... --categories PATH --out DIR``.

Sales exports are CSV files (gzip allowed; folders are searched for *.csv and *.csv.gz); categories are JSON
Lines of ImageCategories items. Writes DIR/influence.json, influence.csv and influence.html and prints the
headline. Exit status 2 when an input file is unusable (the message names it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
        help="sales export files or folders (CSV, gzip allowed)",
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
    parser.add_argument("--json", action="store_true", help="print the whole influence.json to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagelift.config import ReportConfig
    from imagelift.errors import EstimationFailure, PermanentError
    from imagelift.services.report_service import run_local

    overrides = {}
    if args.controls is not None:
        overrides["controls"] = args.controls
    if args.confidence is not None:
        overrides["confidence"] = args.confidence
    config = ReportConfig.from_env(**overrides)
    try:
        result = run_local(list(args.sales), args.categories, args.out, config)
    except PermanentError as exc:
        print(f"imagelift report: {exc}", file=sys.stderr)
        return 2
    except EstimationFailure as exc:
        print(f"imagelift report: cannot estimate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.report.to_dict(), indent=2))
        return 0
    print(result.summary.headline())
    print(f"wrote {', '.join(str(args.out / name) for name in result.files)}")
    return 0
