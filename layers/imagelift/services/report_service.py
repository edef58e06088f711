"""The weekly influence report as a service: gather inputs, build the report in stages, render, store.

The same path runs on local files (``imagelift report``) and on AWS (the scheduled InfluenceReportFunction):
only where the sales exports and category records come from, and where the files go, differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from imagelift.config import ReportConfig, SalesConfig, StorageConfig
from imagelift.influence.analysis import Panel, assemble_report, fit_models, prepare_panel
from imagelift.influence.exports.decoding import EXPORT_SUFFIXES
from imagelift.influence.misclassification import Confusion, ConfusionError, read_confusion, with_misclassification
from imagelift.influence.outputs import render_all
from imagelift.influence.records import normalise_records, read_jsonl
from imagelift.influence.report import Report, ReportSummary
from imagelift.influence.sales import InputFileError, SalesSource
from imagelift.influence.sales_route import read_sales_routed
from imagelift.influence.zeros import handle_missing_zero_weeks

T = TypeVar("T")


@dataclass
class ReportRun:
    """A finished report: the typed report, its rendered files, and how long each stage took."""

    report: Report
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def summary(self) -> ReportSummary:
        return ReportSummary.of(self.report)


class _Stages:
    """Times each stage of one run by name."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, stage: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return stage()
        finally:
            self.timings[name] = time.perf_counter() - start


def build_report(
    sales_sources: Iterable[SalesSource | tuple[str, bytes]],
    record_items: Iterable[Mapping[str, Any]],
    config: ReportConfig,
    generated_at: datetime | None = None,
    *,
    sales_config: SalesConfig | None = None,
    report_date: date | None = None,
    window_weeks: int | None = None,
    confusion: Confusion | None = None,
    confusion_problem: str | None = None,
) -> ReportRun:
    """read -> normalise records -> join -> fit -> assemble -> render, each stage timed.

    With the classifier's ``confusion`` matrix the report also shows the effects corrected for its mistakes;
    ``confusion_problem`` is why a configured matrix could not be used (a warning in the report).

    A fit that fails becomes a warning in the report; a file that cannot be read is listed in the report (or,
    when the user named it, raises :class:`InputFileError`). BLAS runs on ``config.blas_threads`` threads meanwhile.
    """
    with threadpool_limits(limits=config.blas_threads or None, user_api="blas"):
        return _build_report(
            sales_sources,
            record_items,
            config,
            generated_at,
            sales_config=sales_config,
            report_date=report_date,
            window_weeks=window_weeks,
            confusion=confusion,
            confusion_problem=confusion_problem,
        )


def _build_report(
    sales_sources: Iterable[SalesSource | tuple[str, bytes]],
    record_items: Iterable[Mapping[str, Any]],
    config: ReportConfig,
    generated_at: datetime | None,
    *,
    sales_config: SalesConfig | None,
    report_date: date | None,
    window_weeks: int | None,
    confusion: Confusion | None = None,
    confusion_problem: str | None = None,
) -> ReportRun:
    stages = _Stages()
    generated_at = generated_at or datetime.now(UTC)
    report_date = report_date or generated_at.date()
    # large exports are checked (and then joined) as SQL on DuckDB, which holds their rows until the join
    routed = stages.run(
        "read_sales",
        lambda: read_sales_routed(
            sales_sources,
            sales_config or SalesConfig(),
            controls=config.control_columns(),
            report_date=report_date,
            window_weeks=window_weeks,
            sql_min_rows=config.sql_stages_min_rows,
            memory_limit_mb=config.sql_memory_limit_mb,
        ),
    )
    with routed:
        sales = routed.sales
        records = stages.run("read_records", lambda: normalise_records(record_items, config.listing_category))
        fill_zeros = (sales_config or SalesConfig()).fill_zeros

        def join() -> Panel:
            joined = routed.join(records)
            joined, sales.zero_weeks_missing, sales.rows_filled = handle_missing_zero_weeks(
                joined, sales, records, fill_zeros
            )
            sales.release_rows()
            return prepare_panel(joined, sales.controls)

        panel = stages.run("join", join)
    fits = stages.run("fit", lambda: fit_models(panel, config))
    report = stages.run("assemble", lambda: assemble_report(sales, records, panel, fits, config, generated_at))
    if confusion is not None:
        report = stages.run("misclassification", lambda: with_misclassification(report, fits.ppml, confusion, config))
    if confusion_problem:
        report = replace(report, warnings=(*report.warnings, confusion_problem))
    files = stages.run("render", lambda: render_all(report, config.html_max_products))
    return ReportRun(report=report, files=files, timings_s=stages.timings)


def local_sales_sources(paths: Iterable[Path]) -> Iterator[SalesSource]:
    """Each export file with its mtime; a folder contributes its export files (csv, gz, tsv, xlsx), sorted.

    Files named directly are ``strict`` (unreadable is an error); files found in a folder are listed when unreadable.
    """
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(EXPORT_SUFFIXES))
            if not found:
                raise InputFileError(str(path), f"is a folder with no export files ({', '.join(EXPORT_SUFFIXES)})")
            for file in found:
                yield SalesSource(str(file), opener=file.read_bytes, last_modified=file.stat().st_mtime)
        elif path.is_file():
            yield SalesSource(str(path), opener=path.read_bytes, last_modified=path.stat().st_mtime, strict=True)
        else:
            raise InputFileError(str(path), "does not exist")


def run_local(
    sales_paths: list[Path],
    categories_path: Path,
    out_dir: Path,
    config: ReportConfig,
    sales_config: SalesConfig | None = None,
    *,
    report_date: date | None = None,
    window_weeks: int | None = None,
) -> ReportRun:
    """``imagelift report``: local exports and a JSON Lines file of category records -> DIR/influence.*"""
    if not categories_path.is_file():
        raise InputFileError(str(categories_path), "does not exist")
    items = read_jsonl(str(categories_path), categories_path.read_bytes())
    confusion = None
    if config.confusion:
        path = Path(config.confusion)
        if not path.is_file():
            raise InputFileError(str(path), "does not exist (the confusion matrix, REPORT_CONFUSION)")
        try:
            confusion = read_confusion(path.read_bytes(), str(path))
        except ConfusionError as exc:
            raise InputFileError(str(path), str(exc)) from exc
    run = build_report(
        local_sales_sources(sales_paths),
        items,
        config,
        sales_config=sales_config,
        report_date=report_date,
        window_weeks=window_weeks,
        confusion=confusion,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in run.files.items():
        (out_dir / name).write_bytes(data)
    return run


def _stored_confusion(sales: Any, bucket: str, key: str) -> tuple[Confusion | None, str | None]:
    """The confusion matrix at ``key`` in the data bucket, or why it could not be used (the report still runs)."""
    if not key:
        return None, None
    location = f"s3://{bucket}/{key}"
    try:
        return read_confusion(sales.read(key), location), None
    except ConfusionError as exc:
        problem = str(exc)
    except Exception as exc:  # a missing key or a denied read: the weekly report still comes out, uncorrected
        problem = f"{location} could not be read ({type(exc).__name__}: {exc})"
    return None, f"The confusion matrix (REPORT_CONFUSION) could not be used, so no effect is corrected: {problem}."


def scheduled_time(event: Mapping[str, Any] | None) -> datetime | None:
    """The time an EventBridge schedule fired (its event's ``time``), which is the report's date; None if absent.

    A run retried or invoked late still reports on the week it was scheduled for.
    """
    raw = (event or {}).get("time")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_scheduled(
    storage: StorageConfig,
    config: ReportConfig,
    sales_config: SalesConfig | None = None,
    *,
    s3: Any = None,
    dynamodb: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The weekly job on AWS: sales exports from S3, records from ImageCategories -> S3 reports + summary item.

    ``now`` (the schedule's time) is the report date: later weeks are ``future_week``, and only the
    ``window_weeks`` before it are read. Returns the report's :class:`ReportSummary` as plain JSON, with the date,
    the files' locations and the timings.
    """
    sales_config = sales_config or SalesConfig()
    from imagelift.adapters.category_records import scan_category_records
    from imagelift.adapters.report_store import ReportStore
    from imagelift.adapters.sales_store import SalesStore

    if not storage.data_bucket:
        raise ValueError("DATA_BUCKET is not set: the function needs the data bucket's name")
    now = now or datetime.now(UTC)
    sales = SalesStore(storage.data_bucket, storage.sales_prefix, client=s3)
    # no exports yet (a new shop) is a report that says so, not a failed run
    keys = sales.list_exports()
    items = scan_category_records(storage.categories_table, client=dynamodb)
    confusion, confusion_problem = _stored_confusion(sales, storage.data_bucket, config.confusion)
    run = build_report(
        sales.sources(keys),
        items,
        config,
        generated_at=now,
        sales_config=sales_config,
        window_weeks=sales_config.window_weeks,
        confusion=confusion,
        confusion_problem=confusion_problem,
    )
    store = ReportStore(storage.data_bucket, storage.reports_prefix, storage.reports_table, s3=s3, dynamodb=dynamodb)
    report_date = now.date().isoformat()
    locations = store.write_files(report_date, run.files)
    summary = run.summary
    store.put_summary(summary.to_item(report_date, locations))
    return {
        "report_date": report_date,
        **summary.to_dict(),
        "files": locations,
        "timings_s": {k: round(v, 3) for k, v in run.timings_s.items()},
    }
