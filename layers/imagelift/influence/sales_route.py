"""Which route reads the sales exports: pandas for ordinary sizes, the SQL stages on DuckDB for large ones.

Files are parsed one at a time either way. Their rows are held as pandas frames until they reach ``sql_min_rows``
(``ReportConfig.sql_stages_min_rows``); from then on they go into DuckDB and the checks and the as-of join run as
SQL (:mod:`imagelift.influence.sql_stages`), so that memory grows with one file and the listing-weeks, not with
every row read. Both routes give the same SalesTable, rejections and joined frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from imagelift.config import SalesConfig
from imagelift.influence.records import CategoryRecords, join_categories
from imagelift.influence.sales import SalesSource, SalesTable, check_parsed, parse_exports
from imagelift.influence.sql_stages import RowSink, SqlSales, stage_connection

PANDAS_ROUTE = "pandas"
SQL_ROUTE = "duckdb"


class RoutedSales:
    """The exports read by one route: ``sales`` as :func:`~imagelift.influence.sales.read_sales` gives it, and
    :meth:`join` for the as-of join. On the SQL route the rows stay in DuckDB until :meth:`close` (or the end of a
    ``with`` block)."""

    def __init__(self, sales: SalesTable, route: str, rows_parsed: int, sql: SqlSales | None, stack: ExitStack):
        self.sales = sales
        self.route = route
        self.rows_parsed = rows_parsed
        self._sql = sql
        self._stack = stack
        self._executed: list[tuple[str, str]] = []

    @property
    def executed_sql(self) -> list[tuple[str, str]]:
        """(table, SQL) of each SQL stage run so far (none on the pandas route)."""
        return self._sql.executed if self._sql is not None else list(self._executed)

    def join(self, records: CategoryRecords) -> pd.DataFrame:
        """:func:`~imagelift.influence.records.join_categories` of the listing-weeks, by the same route (once)."""
        if self._sql is None:
            return join_categories(self.sales.frame, records, self.sales.rejections)
        try:
            return self._sql.join(records)
        finally:
            self._executed = self._sql.executed
            self.close()

    def close(self) -> None:
        self._sql = None
        self._stack.close()

    def __enter__(self) -> RoutedSales:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Router:
    """The sink of parsed files: frames in memory until ``min_rows``, then everything into DuckDB."""

    def __init__(self, min_rows: int, controls: tuple[str, ...], open_connection: Any) -> None:
        self.min_rows = min_rows
        self.controls = controls
        self.frames: list[pd.DataFrame] = []
        self.rows = 0
        self.sink: RowSink | None = None
        self._open = open_connection

    def __call__(self, frame: pd.DataFrame) -> None:
        if self.sink is not None:
            self.sink(frame)
            return
        self.frames.append(frame)
        self.rows += len(frame)
        if self.rows >= self.min_rows:
            self.sink = RowSink(self._open(), self.controls)
            for held in self.frames:
                self.sink(held)
            self.frames.clear()


def read_sales_routed(
    sources: Iterable[SalesSource | tuple[str, bytes]],
    config: SalesConfig | None = None,
    *,
    controls: Iterable[str] = (),
    report_date: date | None = None,
    window_weeks: int | None = None,
    sql_min_rows: int = 2_000_000,
    memory_limit_mb: int = 1024,
    temp_directory: Path | None = None,
    max_temp_mb: int | None = None,
) -> RoutedSales:
    """:func:`~imagelift.influence.sales.read_sales` by the route the rows read call for (see the module text).

    ``sql_min_rows`` 0 always takes the SQL route. Close the result (or use it in ``with``) to free its database.
    A stage DuckDB cannot run (out of memory or disk) is a :class:`~imagelift.influence.sql_stages.SqlStagesError`.
    """
    config = config or SalesConfig()
    controls = tuple(c.strip().lower() for c in controls if c.strip())
    report_date = report_date or datetime.now(UTC).date()
    stack = ExitStack()
    try:

        def open_connection() -> Any:
            return stack.enter_context(stage_connection(memory_limit_mb, temp_directory, max_temp_mb))

        router = _Router(max(int(sql_min_rows), 0), controls, open_connection)
        if router.min_rows == 0:
            router.sink = RowSink(open_connection(), controls)
        parsed = parse_exports(sources, config, controls, router)
        if router.sink is None:
            table = check_parsed(router.frames, parsed, config, controls, report_date, window_weeks)
            return RoutedSales(table, PANDAS_ROUTE, parsed.rows_parsed, None, stack)
        sql = SqlSales(router.sink, parsed, config, controls, report_date, window_weeks)
        return RoutedSales(sql.sales, SQL_ROUTE, parsed.rows_parsed, sql, stack)
    except BaseException:
        stack.close()
        raise
