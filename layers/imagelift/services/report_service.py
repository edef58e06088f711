"""The weekly influence report as a service: gather inputs, analyse, render, store.

The same path runs on local files (``imagelift report``) and on AWS (the scheduled InfluenceReportFunction):
only where the sales exports and category records come from, and where the files go, differ.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagelift.config import ReportConfig, StorageConfig
from imagelift.influence.analysis import analyse
from imagelift.influence.outputs import render_all
from imagelift.influence.records import normalise_records, read_jsonl
from imagelift.influence.sales import InputFileError, read_sales

SALES_SUFFIXES = (".csv", ".csv.gz", ".gz")


@dataclass
class ReportRun:
    """A finished report: the JSON-able dict, the rendered files, and how long each stage took."""

    report: dict[str, Any]
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)


def build_report(
    sales_sources: Iterable[tuple[str, bytes]],
    record_items: Iterable[Mapping[str, Any]],
    config: ReportConfig,
    generated_at: datetime | None = None,
) -> ReportRun:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    sales = read_sales(sales_sources, controls=config.control_columns())
    timings["read_sales"] = time.perf_counter() - start
    start = time.perf_counter()
    records = normalise_records(record_items)
    timings["read_records"] = time.perf_counter() - start
    start = time.perf_counter()
    report = analyse(sales, records, config, generated_at=generated_at)
    timings["analyse"] = time.perf_counter() - start
    start = time.perf_counter()
    files = render_all(report, config.html_max_products)
    timings["render"] = time.perf_counter() - start
    return ReportRun(report=report, files=files, timings_s=timings)


def local_sales_sources(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each export file; a folder contributes its *.csv and *.csv.gz files, sorted."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SALES_SUFFIXES))
            if not found:
                raise InputFileError(str(path), "is a folder with no .csv or .csv.gz files")
            for file in found:
                yield str(file), file.read_bytes()
        elif path.is_file():
            yield str(path), path.read_bytes()
        else:
            raise InputFileError(str(path), "does not exist")


def run_local(sales_paths: list[Path], categories_path: Path, out_dir: Path, config: ReportConfig) -> ReportRun:
    """``imagelift report``: local exports and a JSON Lines file of category records -> DIR/influence.*"""
    if not categories_path.is_file():
        raise InputFileError(str(categories_path), "does not exist")
    items = read_jsonl(str(categories_path), categories_path.read_bytes())
    run = build_report(local_sales_sources(sales_paths), items, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in run.files.items():
        (out_dir / name).write_bytes(data)
    return run


def summary_item(report: dict[str, Any], report_date: str, locations: Mapping[str, str]) -> dict[str, Any]:
    """The InfluenceReports row: enough to list and compare weeks without opening the files."""
    item: dict[str, Any] = {
        "report_date": report_date,
        "generated_at": report["generated_at"],
        "period_from": report["period"]["from"],
        "period_to": report["period"]["to"],
        "rows": report["counts"]["rows"],
        "rows_used": report["counts"]["rows_used"],
        "rows_rejected": report["counts"]["rows_rejected_total"],
        "products": report["counts"]["products"],
        "listings": report["counts"]["listings"],
        "warnings": len(report["warnings"]),
        "files": dict(locations),
    }
    for entry in report["effects"]:
        name = entry["category_name"]
        item[f"{name}_effect_pct"] = entry["effect_pct"]
        item[f"{name}_effect_pct_ci"] = entry["effect_pct_ci"]
    item["price_elasticity"] = report["price_elasticity"]["estimate"]
    return {k: v for k, v in item.items() if v is not None}


def run_scheduled(
    storage: StorageConfig,
    config: ReportConfig,
    *,
    s3: Any = None,
    dynamodb: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The weekly job on AWS: sales exports from S3, records from ImageCategories -> S3 reports + summary item."""
    from imagelift.adapters.category_records import scan_category_records
    from imagelift.adapters.report_store import ReportStore
    from imagelift.adapters.sales_store import SalesStore

    if not storage.data_bucket:
        raise ValueError("DATA_BUCKET is not set: the function needs the data bucket's name")
    now = now or datetime.now(UTC)
    sales = SalesStore(storage.data_bucket, storage.sales_prefix, client=s3)
    keys = sales.list_exports()
    if not keys:
        raise InputFileError(f"s3://{storage.data_bucket}/{storage.sales_prefix}", "holds no sales exports")
    items = scan_category_records(storage.categories_table, client=dynamodb)
    run = build_report(sales.read_exports(keys), items, config, generated_at=now)
    store = ReportStore(storage.data_bucket, storage.reports_prefix, storage.reports_table, s3=s3, dynamodb=dynamodb)
    report_date = now.date().isoformat()
    locations = store.write_files(report_date, run.files)
    item = summary_item(run.report, report_date, locations)
    store.put_summary(item)
    return {
        "report_date": report_date,
        "files": locations,
        "rows": run.report["counts"]["rows"],
        "rows_rejected": run.report["counts"]["rows_rejected"],
        "effects": {e["category_name"]: e["effect_pct"] for e in run.report["effects"]},
        "warnings": run.report["warnings"],
        "timings_s": {k: round(v, 3) for k, v in run.timings_s.items()},
    }
