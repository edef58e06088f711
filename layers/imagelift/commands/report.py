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
    from imagelift.influence.estimation import EstimationError
    from imagelift.influence.sales import InputFileError
    from imagelift.services.report_service import run_local

    overrides = {}
    if args.controls is not None:
        overrides["controls"] = args.controls
    if args.confidence is not None:
        overrides["confidence"] = args.confidence
    config = ReportConfig.from_env(**overrides)
    try:
        result = run_local(list(args.sales), args.categories, args.out, config)
    except InputFileError as exc:
        print(f"imagelift report: {exc}", file=sys.stderr)
        return 2
    except EstimationError as exc:
        print(f"imagelift report: cannot estimate: {exc}", file=sys.stderr)
        return 2
    report = result.report
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(headline(report))
    print(f"wrote {', '.join(str(args.out / name) for name in result.files)}")
    return 0


def headline(report: dict) -> str:
    counts = report["counts"]
    level = f"{report['spec']['confidence']:.0%}"
    lines = [
        f"period {report['period']['from']} to {report['period']['to']}: {counts['rows_used']:,} of "
        f"{counts['rows']:,} rows used, {counts['products']:,} products, {counts['listings']:,} listings",
    ]
    if counts["rows_rejected"]:
        lines.append("rejected: " + ", ".join(f"{k} {v}" for k, v in counts["rows_rejected"].items()))
    for e in report["effects"]:
        if e["effect_pct"] is None:
            lines.append(f"{e['category_name']}: no estimate ({e.get('note', '')})")
        else:
            lo, hi = e["effect_pct_ci"]
            lines.append(
                f"{e['category_name']} vs product: {e['effect_pct']:+.1f}% units ({level} CI {lo:+.1f}% to {hi:+.1f}%)"
            )
    el = report["price_elasticity"]
    if el["estimate"] is not None:
        lines.append(f"price elasticity {el['estimate']:.2f} ({level} CI {el['ci_low']:.2f} to {el['ci_high']:.2f})")
    for e in report["price_effects"]:
        if e["effect_pct"] is not None:
            lo, hi = e["effect_pct_ci"]
            lines.append(f"{e['category_name']} price premium {e['effect_pct']:+.1f}% ({lo:+.1f}% to {hi:+.1f}%)")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    return "\n".join(lines)
