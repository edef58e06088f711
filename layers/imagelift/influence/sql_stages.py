"""The checks across sales export files, and the as-of join with photo categories, as SQL stages.

The same stages as :func:`imagelift.influence.sales.read_sales` and :func:`imagelift.influence.records.join_categories`
run in pandas, for exports too large to hold as one frame: each file is still parsed in Python (formats, decoding,
field-level flags), then appended to a DuckDB table, so memory grows with one file and with listings x weeks, not
with all rows (DuckDB spills past its memory limit). The rejection counts, their examples, the weekly frame and the
joined frame are the same as the pandas route's.

Each stage is a named SQL string that reads ``{input}`` (the surviving rows of the stage before) and returns every
one of those rows with a ``_reason`` column: the reason it is rejected, or NULL to keep it. The SQL keeps to a subset
that Trino (Athena) also runs: CASE, GROUP BY, joins, ANSI window functions (ROW_NUMBER, COUNT, MIN, MAX OVER
PARTITION BY ... ORDER BY ... ROWS BETWEEN), ``TIMESTAMP '...'`` literals and ``INTERVAL 'n' DAY|HOUR`` arithmetic,
``CAST('...' AS DOUBLE)``. Two choices keep it portable:

- the listing's median price is exact, from ROW_NUMBER and COUNT over the listing (the middle row, or the mean of
  the two middle rows), not DuckDB's ``median``; Trino's ``approx_percentile(price, 0.5)`` would be cheaper but
  approximate (and never the mean of two middle values), which would move the ``implausible_price`` count;
- the as-of join is a running MAX over one timeline of segment starts and week midpoints, not DuckDB's ASOF JOIN.

The input tables (``sales_rows``, ``sales_listings``, ``sales_files``, ``photo_segments``) are described in
:data:`INPUT_TABLES`. Rows carry their listing as an integer (``_lc``, the listing's rank in id order, so that ordering
by it is ordering by product_id, listing_id) and ``_order`` (file index * 2^32 + line), so that examples and
aggregated weeks refer to their first row as the pandas route does. Windows run only over the rows that can need
them (rows sharing a file, listing and day; listing-weeks covered by more than one file). With string ids and
windows over every row the checks of 1M daily rows took 11.3 s, with integer listings 7.3 s, with both 3.0 s (one
run each while this was written).

Measured against the pandas route in bench/results/ingest_scale.md: at 10M Shopify daily rows 0.41x the memory and
1.22x the time; at 1M rows the same memory and 1.56x the time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imagelift.config import SalesConfig
from imagelift.errors import PermanentError
from imagelift.influence.records import WEEK_MIDPOINT, CategoryRecords
from imagelift.influence.sales import (
    MAX_EXAMPLES_PER_REASON,
    ParsedExports,
    SalesTable,
    aggregation_note,
    empty_sales_frame,
)

ROWS_TABLE = "sales_rows"
FILES_TABLE = "sales_files"
LISTINGS_TABLE = "sales_listings"
SEGMENTS_TABLE = "photo_segments"
LINE_BITS = 32
"""``_order`` = file index * 2^32 + line: a file has fewer than 2^32 lines."""
INSERT_CHUNK_ROWS = 500_000

INPUT_TABLES = {
    ROWS_TABLE: (
        "one row per parsed export row: _listing (INTEGER, the listing's code in sales_listings), date, week "
        "(TIMESTAMP, NULL when the date did not read), units, price, sales and the controls (DOUBLE, NULL when empty "
        "or not a number), the flags _blank, _not_number, _bad_id, _daily (BOOLEAN), _file (INTEGER) and _order "
        "(BIGINT: file index * 2^32 + line)"
    ),
    LISTINGS_TABLE: (
        "one row per (product_id, listing_id) pair read: _listing (INTEGER), product_id, listing_id (VARCHAR) and _lc "
        "(BIGINT, the pair's rank in id order, which orders the weekly frame as the pandas route does)"
    ),
    FILES_TABLE: "one row per export file read: _file, _rank (INTEGER, higher for newer files)",
    SEGMENTS_TABLE: (
        "from each change of a listing's live photos on, its category: product_id, listing_id, start (TIMESTAMP), "
        "category (DOUBLE, NULL while no photo is live); one row per listing and start"
    ),
}


class SqlStagesError(PermanentError):
    """DuckDB could not run a stage (out of memory or of disk for its files, most often); says what to change."""

    code = "sql_stages_failed"

    def __init__(self, where: str, exc: Exception) -> None:
        text = str(exc).strip()
        first = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
        super().__init__(
            f"the SQL stages failed at {where}: {first}. DuckDB holds at most REPORT_SQL_MEMORY_LIMIT_MB in memory "
            "and spills to the temporary directory (on Lambda /tmp, sized by EphemeralStorage): give it more room, "
            "or raise REPORT_SQL_STAGES_MIN_ROWS to check these exports in pandas"
        )


def _engine_errors() -> type[Exception]:
    import duckdb

    return duckdb.Error


SUPERSEDED = "superseded"
"""Not a rejection: the row is covered by a newer file (``SalesTable.superseded``)."""


ROW_ORDER = "_order"
"""Export rows in the order read: by file, then line."""
WEEK_ORDER = "_daily, _order"
"""Listing-weeks in the pandas route's order after aggregation: weekly files' rows, then summed daily weeks, each
by its first row."""


@dataclass(frozen=True)
class Stage:
    """One step: SQL returning every ``{input}`` row with ``_reason`` (NULL: kept), and the reasons it can give.

    ``order``: the order in which rejected rows give their examples (that of the pandas route's frame at this step);
    ``weekly``: the rows are listing-weeks, each counting the ``_rows`` export rows behind it.
    """

    name: str
    sql: str
    reasons: tuple[str, ...]
    weekly: bool = False
    order: str = ROW_ORDER


# ----------------------------------------------------------------------------------------- the stages

FIELD_CHECKS = Stage(
    "field_checks",
    """
    SELECT {row_columns}, f._rank, l._lc,
        CASE
            WHEN r._blank THEN 'missing_field'
            WHEN r._not_number THEN 'non_numeric'
            WHEN r.date IS NULL THEN 'bad_week'
            WHEN r._bad_id THEN 'bad_id'
            WHEN r.units <> FLOOR(r.units) THEN 'non_integer_units'
        END AS _reason
    FROM {input} r JOIN {files} f ON f._file = r._file JOIN {listings} l ON l._listing = r._listing
    """,
    ("missing_field", "non_numeric", "bad_week", "bad_id", "non_integer_units"),
)

# Exact copies inside one file (NULLs compare equal in PARTITION BY, as NaN does in pandas' duplicated), then the
# report window: a daily row by its day, a weekly row by its week. Only rows sharing a file, listing and date can be
# copies, so the comparison of whole rows runs on those alone.
COPIES_AND_WINDOW = Stage(
    "copies_and_window",
    """
    WITH same_day AS (
        SELECT _file, _lc, date FROM {input} r GROUP BY _file, _lc, date HAVING COUNT(*) > 1
    ),
    marked AS (
        SELECT {columns_of_r}, d._lc IS NOT NULL AS _same_day
        FROM {input} r LEFT JOIN same_day d ON d._file = r._file AND d._lc = r._lc AND d.date = r.date
    ),
    copies AS (
        SELECT {columns}, ROW_NUMBER() OVER (
            PARTITION BY _file, _lc, date, week, units, price, sales{control_list} ORDER BY _order
        ) > 1 AS _copy
        FROM marked WHERE _same_day
        UNION ALL
        SELECT {columns}, FALSE AS _copy FROM marked WHERE NOT _same_day
    )
    SELECT {columns},
        CASE
            WHEN _copy THEN 'duplicate_row'
            WHEN CASE WHEN _daily THEN date ELSE week END > {report_date} THEN 'future_week'
            WHEN week < {window_start} THEN 'before_window'
        END AS _reason
    FROM copies
    """,
    ("duplicate_row", "future_week", "before_window"),
)

# A daily row's Monday-Sunday week must lie inside the span of days some daily file covers.
PARTIAL_WEEKS = Stage(
    "partial_weeks",
    """
    WITH spans AS (
        SELECT _file, MIN(date) AS first_day, MAX(date) AS last_day FROM {input} r WHERE _daily GROUP BY _file
    ),
    complete AS (
        SELECT DISTINCT w.week
        FROM (SELECT DISTINCT week FROM {input} r WHERE _daily) w
        JOIN spans s ON w.week >= s.first_day AND w.week + INTERVAL '6' DAY <= s.last_day
    )
    SELECT {columns_of_r},
        CASE WHEN r._daily AND c.week IS NULL THEN 'partial_week' END AS _reason
    FROM {input} r LEFT JOIN complete c ON c.week = r.week
    """,
    ("partial_week",),
)

# The newest file wins each listing-day (daily rows) or listing-week (weekly rows); where daily and weekly rows
# cover the same listing-week, the side whose newest file is newer keeps it. Only listing-weeks that rows of more
# than one file cover are contested, so the windows run on their rows alone.
OVERLAPS = Stage(
    "overlaps",
    """
    WITH contested AS (
        SELECT _lc, week FROM {input} r GROUP BY _lc, week HAVING MIN(_file) < MAX(_file)
    ),
    marked AS (
        SELECT {columns_of_r}, c._lc IS NOT NULL AS _contested
        FROM {input} r LEFT JOIN contested c ON c._lc = r._lc AND c.week = r.week
    )
    SELECT {columns},
        CASE
            WHEN _rank < MAX(_rank) OVER (
                PARTITION BY _lc, _daily, CASE WHEN _daily THEN date ELSE week END
            ) THEN 'superseded'
            WHEN CASE WHEN _daily THEN daily_best < weekly_best ELSE weekly_best < daily_best END THEN 'superseded'
        END AS _reason
    FROM (
        SELECT m.*,
            MAX(CASE WHEN _daily THEN _rank END) OVER (PARTITION BY _lc, week) AS daily_best,
            MAX(CASE WHEN NOT _daily THEN _rank END) OVER (PARTITION BY _lc, week) AS weekly_best
        FROM marked m WHERE _contested
    ) r
    UNION ALL
    SELECT {columns}, CAST(NULL AS VARCHAR) AS _reason FROM marked WHERE NOT _contested
    """,
    (SUPERSEDED,),
)

# Two rows of one weekly file for one listing-week: all copies are rejected (after the overlaps, daily and weekly
# rows never share a listing-week).
LISTING_WEEKS = Stage(
    "listing_weeks",
    """
    WITH repeated AS (
        SELECT _lc, week FROM {input} r WHERE NOT _daily GROUP BY _lc, week HAVING COUNT(*) > 1
    )
    SELECT {columns_of_r},
        CASE
            WHEN NOT r._daily AND d._lc IS NOT NULL THEN 'duplicate_listing_week'
            WHEN r.price <= 0 THEN 'price_not_positive'
        END AS _reason
    FROM {input} r LEFT JOIN repeated d ON d._lc = r._lc AND d.week = r.week
    """,
    ("duplicate_listing_week", "price_not_positive"),
)

# Daily rows summed into listing-weeks (units summed; price = sales / units later, or here the quantity-weighted
# mean price, its plain mean in a week without units); weekly rows pass through. A week is known by its first row.
AGGREGATE = Stage(
    "aggregate",
    """
    SELECT _lc, week, units, price, sales{control_list}, 1 AS _rows, _order, _daily,
        CAST(NULL AS VARCHAR) AS _reason
    FROM {input} r WHERE NOT _daily
    UNION ALL
    SELECT _lc, week, SUM(units) AS units,
        CASE
            WHEN COUNT(price) = 0 THEN NULL
            WHEN SUM(units) > 0 THEN SUM(price * units) / SUM(units)
            ELSE AVG(price)
        END AS price,
        SUM(sales) AS sales{control_means}, COUNT(*) AS _rows, MIN(_order) AS _order, TRUE AS _daily,
        CAST(NULL AS VARCHAR) AS _reason
    FROM {input} r WHERE _daily
    GROUP BY _lc, week
    """,
    (),
    weekly=True,
)

WEEK_UNITS = Stage(
    "week_units",
    """
    SELECT {columns},
        CASE
            WHEN units < 0 THEN 'negative_units'
            WHEN price IS NULL AND units > 0 AND NOT COALESCE(sales > 0, FALSE) THEN 'price_not_positive'
        END AS _reason
    FROM {input} r
    """,
    ("negative_units", "price_not_positive"),
    weekly=True,
    order=WEEK_ORDER,
)

# A week without a price column takes sales / units; a week without sales takes the listing's price over the
# period (its total sales over its total units in weeks with sales; total sales of weeks that have none count 0).
WEEK_PRICE = Stage(
    "week_price",
    """
    SELECT {columns_but_price}, filled_price AS price, CASE WHEN filled_price IS NULL THEN 'no_price' END AS _reason
    FROM (
        SELECT {columns_of_r_but_price},
            CASE
                WHEN r.price IS NOT NULL THEN r.price
                WHEN r.units > 0 THEN r.sales / r.units
                ELSE p.period_price
            END AS filled_price
        FROM {input} r
        LEFT JOIN (
            SELECT _lc, COALESCE(SUM(sales), 0) / SUM(units) AS period_price
            FROM {input} r WHERE units > 0 GROUP BY _lc
        ) p ON p._lc = r._lc
    ) r
    """,
    ("no_price",),
    weekly=True,
    order=WEEK_ORDER,
)

WEEK_UNITS_BOUND = Stage(
    "week_units_bound",
    """
    SELECT {columns}, CASE WHEN units > {max_units} THEN 'implausible_units' END AS _reason
    FROM {input} r
    """,
    ("implausible_units",),
    weekly=True,
    order=WEEK_ORDER,
)

# The exact median of the listing's prices: the middle row (or the mean of the two middle rows) by price. On
# Trino the same SQL runs; approx_percentile(price, 0.5) would be its approximate shortcut.
WEEK_PRICE_BOUND = Stage(
    "week_price_bound",
    """
    WITH ranked AS (
        SELECT _lc, price,
            ROW_NUMBER() OVER (PARTITION BY _lc ORDER BY price) AS price_rank,
            COUNT(*) OVER (PARTITION BY _lc) AS listing_weeks
        FROM {input} r
    ),
    medians AS (
        SELECT _lc, AVG(price) AS median_price
        FROM ranked WHERE 2 * price_rank BETWEEN listing_weeks AND listing_weeks + 2
        GROUP BY _lc
    )
    SELECT {columns_of_r},
        CASE
            WHEN NOT COALESCE(
                m.median_price > 0
                AND r.price / m.median_price <= {max_factor}
                AND r.price / m.median_price >= 1 / {max_factor},
                FALSE
            ) THEN 'implausible_price'
        END AS _reason
    FROM {input} r JOIN medians m ON m._lc = r._lc
    """,
    ("implausible_price",),
    weekly=True,
    order=WEEK_ORDER,
)

CHECK_STAGES = (
    FIELD_CHECKS,
    COPIES_AND_WINDOW,
    PARTIAL_WEEKS,
    OVERLAPS,
    LISTING_WEEKS,
    AGGREGATE,
    WEEK_UNITS,
    WEEK_PRICE,
    WEEK_UNITS_BOUND,
    WEEK_PRICE_BOUND,
)

# Listings with no photo record at all; the others get their code (their rank among the listings with records).
KNOWN_LISTING = Stage(
    "known_listing",
    """
    SELECT {columns_of_r}, k.listing_code, CASE WHEN k.listing_code IS NULL THEN 'unknown_listing' END AS _reason
    FROM {input} r
    LEFT JOIN (
        SELECT l._lc, s.listing_code
        FROM (
            SELECT product_id, listing_id, ROW_NUMBER() OVER (ORDER BY product_id, listing_id) - 1 AS listing_code
            FROM (SELECT DISTINCT product_id, listing_id FROM {segments}) d
        ) s
        JOIN {listings} l ON l.product_id = s.product_id AND l.listing_id = s.listing_id
    ) k ON k._lc = r._lc
    """,
    ("unknown_listing",),
    weekly=True,
    order="_lc, week",
)

# The as-of join: on one timeline per listing, segment starts sort before a week midpoint at the same instant, so a
# running MAX of the starts gives each week the segment live at its midpoint (or none yet); the weeks carry their
# columns through the timeline, and the segment's category comes from the (small) segments table.
AS_OF = Stage(
    "as_of",
    """
    WITH segments AS (
        SELECT l._lc, s.start, s.category
        FROM {segments} s JOIN {listings} l ON l.product_id = s.product_id AND l.listing_id = s.listing_id
    ),
    timeline AS (
        SELECT {columns_but_lc}, _lc, week + INTERVAL '{midpoint_hours}' HOUR AS moment, 1 AS kind FROM {input} r
        UNION ALL
        SELECT {null_columns_but_lc}, _lc, start AS moment, 0 AS kind FROM segments
    ),
    placed AS (
        SELECT t.*, MAX(CASE WHEN kind = 0 THEN moment END) OVER (
            PARTITION BY _lc ORDER BY moment, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS segment_start
        FROM timeline t
    )
    SELECT {columns_of_r}, s.category,
        CASE
            WHEN r.segment_start IS NULL THEN 'no_category_that_week'
            WHEN s.category IS NULL THEN 'no_live_photo'
        END AS _reason
    FROM placed r LEFT JOIN segments s ON s._lc = r._lc AND s.start = r.segment_start
    WHERE r.kind = 1
    """,
    ("no_category_that_week", "no_live_photo"),
    weekly=True,
    order="week, _lc",
)

JOIN_STAGES = (KNOWN_LISTING, AS_OF)


# ----------------------------------------------------------------------------------------- running them


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def timestamp_literal(moment: datetime | date) -> str:
    value = moment if isinstance(moment, datetime) else datetime(moment.year, moment.month, moment.day)
    return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"


def double_literal(value: float) -> str:
    return f"CAST('{float(value)!r}' AS DOUBLE)"


class RowSink:
    """Appends each parsed file's typed rows to the rows table of a DuckDB connection, in chunks.

    Listings go in as integer codes (the ids once, in :data:`LISTINGS_TABLE`): the stages partition by listing
    many times over, and integers sort and hash much faster than pairs of strings.
    """

    def __init__(self, connection: Any, controls: tuple[str, ...]) -> None:
        self.connection = connection
        self.controls = controls
        self.rows = 0
        self.listings: dict[tuple[str, str], int] = {}
        numbers = ", ".join(f"{quote(c)} DOUBLE" for c in ("units", "price", "sales", *controls))
        connection.execute(
            f"""
            CREATE OR REPLACE TABLE {ROWS_TABLE} (
                _listing INTEGER, date TIMESTAMP, week TIMESTAMP, {numbers},
                _blank BOOLEAN, _not_number BOOLEAN, _bad_id BOOLEAN, _daily BOOLEAN, _file INTEGER, _order BIGINT
            )
            """
        )
        self._columns = [
            "_listing",
            "date",
            "week",
            "units",
            "price",
            "sales",
            *controls,
            "_blank",
            "_not_number",
            "_bad_id",
            "_daily",
            "_file",
            "_order",
        ]

    def _listing_codes(self, frame: pd.DataFrame) -> np.ndarray:
        products, product_ids = pd.factorize(frame["product_id"])
        listings, listing_ids = pd.factorize(frame["listing_id"])
        pairs, unique_pairs = pd.factorize(products.astype(np.int64) * max(len(listing_ids), 1) + listings)
        codes = np.empty(len(unique_pairs), dtype=np.int32)
        width = max(len(listing_ids), 1)
        for n, pair in enumerate(unique_pairs.tolist()):
            key = (product_ids[pair // width], listing_ids[pair % width])
            codes[n] = self.listings.setdefault(key, len(self.listings))
        return codes[pairs]

    def __call__(self, frame: pd.DataFrame) -> None:
        typed = pd.DataFrame(
            {
                "_listing": self._listing_codes(frame),
                **{c: frame[c] for c in self._columns[1:-1]},
                "_order": (frame["_file"].to_numpy(dtype=np.int64) << LINE_BITS) + frame["_line"].to_numpy(np.int64),
            }
        )
        listed = ", ".join(quote(c) for c in self._columns)
        for start in range(0, len(typed), INSERT_CHUNK_ROWS):
            self.connection.register("parsed_chunk", typed.iloc[start : start + INSERT_CHUNK_ROWS])
            try:
                self.connection.execute(f"INSERT INTO {ROWS_TABLE} SELECT {listed} FROM parsed_chunk")
            except _engine_errors() as exc:
                raise SqlStagesError(f"storing the rows of {frame['_source'].iloc[0]}", exc) from exc
            finally:
                self.connection.unregister("parsed_chunk")
        self.rows += len(frame)

    def write_listings(self) -> None:
        """The listings table, once every file is in."""
        pairs = list(self.listings)
        frame = pd.DataFrame(
            {
                "_listing": np.fromiter(self.listings.values(), dtype=np.int32, count=len(pairs)),
                "product_id": pd.Series([p for p, _ in pairs], dtype=object),
                "listing_id": pd.Series([lid for _, lid in pairs], dtype=object),
            }
        )
        self.connection.register("listings_frame", frame)
        try:
            self.connection.execute(
                f"""
                CREATE OR REPLACE TABLE {LISTINGS_TABLE} AS
                SELECT _listing, product_id, listing_id, ROW_NUMBER() OVER (ORDER BY product_id, listing_id) AS _lc
                FROM listings_frame
                """
            )
        finally:
            self.connection.unregister("listings_frame")


class StageRunner:
    """Runs stages one after another on a connection, each into its own table, counting what each rejects."""

    def __init__(self, connection: Any, parsed: ParsedExports, controls: tuple[str, ...]) -> None:
        self.connection = connection
        self.parsed = parsed
        self.controls = controls
        self.superseded = 0
        self.superseded_examples: list[str] = []
        self._ids: tuple[np.ndarray, np.ndarray] | None = None
        self.executed: list[tuple[str, str]] = []
        """(table, SQL) of each stage run, as sent: the same text runs as CREATE TABLE ... AS on Athena."""
        self._step = 0

    def _source(self, order: int) -> tuple[str, int]:
        return self.parsed.names[order >> LINE_BITS], order & ((1 << LINE_BITS) - 1)

    def run(self, stage: Stage, source: str, **values: str) -> str:
        """``stage`` on the kept rows of ``source`` (the rows table, or the previous stage's table, then dropped)."""
        table = f"stage_{self._step:02d}_{stage.name}"
        self._step += 1
        described = self.connection.execute(f"SELECT * FROM {source} LIMIT 0").description
        has_reason = any(d[0] == "_reason" for d in described)
        columns = [d[0] for d in described if d[0] != "_reason"]
        listed = ", ".join(quote(c) for c in columns)
        kept = f"(SELECT {listed} FROM {source} WHERE _reason IS NULL)" if has_reason else source
        controls = [quote(c) for c in self.controls]
        text = stage.sql.format(
            input=kept,
            files=FILES_TABLE,
            listings=LISTINGS_TABLE,
            segments=SEGMENTS_TABLE,
            columns=listed,
            columns_of_r=", ".join(f"r.{quote(c)}" for c in columns),
            columns_but_price=", ".join(quote(c) for c in columns if c != "price"),
            columns_of_r_but_price=", ".join(f"r.{quote(c)}" for c in columns if c != "price"),
            row_columns=", ".join(f"r.{quote(c)}" for c in columns if c not in FLAG_COLUMNS),
            columns_but_lc=", ".join(quote(c) for c in columns if c != "_lc"),
            null_columns_but_lc=", ".join(f"NULL AS {quote(c)}" for c in columns if c != "_lc"),
            control_list="".join(f", {c}" for c in controls),
            control_means="".join(f", AVG({c}) AS {c}" for c in controls),
            **values,
        )
        self.executed.append((table, text))
        try:
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {text}")
            self._count(stage, table)
            if has_reason:
                self.connection.execute(f"DROP TABLE {source}")
        except _engine_errors() as exc:
            raise SqlStagesError(f"stage {stage.name}", exc) from exc
        return table

    def _count(self, stage: Stage, table: str) -> None:
        if not stage.reasons:
            return
        rows = "SUM(_rows)" if stage.weekly else "COUNT(*)"
        counts = self.connection.execute(
            f"SELECT _reason, {rows} FROM {table} WHERE _reason IS NOT NULL GROUP BY _reason"
        ).fetchall()
        if not counts:
            return
        examples = self.connection.execute(
            f"""
            SELECT _reason, _order FROM (
                SELECT _reason, _order, ROW_NUMBER() OVER (PARTITION BY _reason ORDER BY {stage.order}) AS example_rank
                FROM {table} WHERE _reason IS NOT NULL
            ) e WHERE example_rank <= {MAX_EXAMPLES_PER_REASON} ORDER BY _reason, example_rank
            """
        ).fetchall()
        found = dict(counts)
        for reason in stage.reasons:  # in the stage's order, as the pandas route adds them
            if not found.get(reason):
                continue
            where = [f"{s}:{line}" for s, line in (self._source(o) for r, o in examples if r == reason)]
            if reason == SUPERSEDED:
                self.superseded += int(found[reason])
                self.superseded_examples = where
                continue
            rejections = self.parsed.rejections
            rejections.counts[reason] += int(found[reason])
            slot = rejections.examples.setdefault(reason, [])
            slot.extend(where[: MAX_EXAMPLES_PER_REASON - len(slot)])

    def kept_frame(self, table: str, columns: list[str], order: str) -> pd.DataFrame:
        """The kept rows of ``table`` in the pandas route's layout (its ids and _source shared strings, as there)."""
        listed = ", ".join(quote(c) for c in ["_lc", *columns])
        got = self.connection.execute(f"SELECT {listed} FROM {table} WHERE _reason IS NULL ORDER BY {order}")
        columns_out = got.fetchnumpy()
        if self._ids is None:
            ids = self.connection.execute(f"SELECT product_id, listing_id FROM {LISTINGS_TABLE} ORDER BY _lc")
            fetched = ids.fetchnumpy()
            self._ids = tuple(np.asarray(fetched[c], dtype=object) for c in ("product_id", "listing_id"))
        lc = np.asarray(columns_out.pop("_lc"), dtype=np.int64) - 1  # _lc counts from 1
        order_of = np.asarray(columns_out.pop("_order"), dtype=np.int64)
        week = np.asarray(columns_out.pop("week")).astype("datetime64[ns]")
        out = {"week": week, "product_id": self._ids[0][lc], "listing_id": self._ids[1][lc]}
        for name in ("units", "price", *self.controls):
            out[name] = np.asarray(columns_out.pop(name), dtype=np.float64)
        names = np.asarray(self.parsed.names, dtype=object)
        out["_source"] = names[order_of >> LINE_BITS] if len(order_of) else np.array([], dtype=object)
        out["_line"] = order_of & ((1 << LINE_BITS) - 1)
        out["_rows"] = np.asarray(columns_out.pop("_rows"), dtype=np.int64)
        frame = pd.DataFrame(out)
        for name, values in columns_out.items():  # what the stage added (listing_code, category)
            frame[name] = np.asarray(values)
        return frame


FLAG_COLUMNS = ("_blank", "_not_number", "_bad_id", "_listing")
"""The rows table's field-level flags and listing codes, which only the field checks read."""


class SqlSales:
    """The checks on the rows ``sink`` put in its connection, then (:meth:`join`) the as-of join.

    ``sales`` is the same SalesTable as :func:`~imagelift.influence.sales.read_sales` gives; :meth:`join` gives the
    same frame as :func:`~imagelift.influence.records.join_categories` and adds the same rejections to it.
    """

    def __init__(
        self,
        sink: RowSink,
        parsed: ParsedExports,
        config: SalesConfig,
        controls: tuple[str, ...],
        report_date: date,
        window_weeks: int | None,
    ) -> None:
        self.connection = connection = sink.connection
        self._sink = sink
        self.parsed = parsed
        self.controls = controls
        self.sales = SalesTable(
            frame=empty_sales_frame(controls),
            rejections=parsed.rejections,
            rows_read=parsed.rows_read,
            files=parsed.names,
            controls=controls,
            failed_files=parsed.failed,
            notes=parsed.notes,
            report_date=report_date,
        )
        self._runner = StageRunner(connection, parsed, controls)
        self._weekly: str | None = None
        cutoff = datetime(report_date.year, report_date.month, report_date.day)
        window_start = "NULL"
        if window_weeks:
            first = cutoff - timedelta(days=cutoff.weekday()) - timedelta(weeks=window_weeks)
            window_start = timestamp_literal(first)
        self._values = {
            "report_date": timestamp_literal(cutoff),
            "window_start": window_start,
            "max_units": double_literal(config.max_units),
            "max_factor": double_literal(config.max_price_factor),
            "midpoint_hours": str(int(WEEK_MIDPOINT / pd.Timedelta(hours=1))),
        }
        if parsed.ranks:
            self._check()

    def _check(self) -> None:
        self._sink.write_listings()
        ranks = pd.DataFrame(list(self.parsed.rank_of_file().items()), columns=["_file", "_rank"])
        self.connection.register("file_ranks", ranks.astype(np.int32))
        try:
            self.connection.execute(f"CREATE OR REPLACE TABLE {FILES_TABLE} AS SELECT _file, _rank FROM file_ranks")
        finally:
            self.connection.unregister("file_ranks")
        current = ROWS_TABLE
        for stage in CHECK_STAGES:
            current = self._runner.run(stage, current, **self._values)
        self._weekly = current
        sales = self.sales
        sales.frame = self._runner.kept_frame(current, self._weekly_columns(), "_lc, week")
        sales.superseded = self._runner.superseded
        sales.superseded_examples = self._runner.superseded_examples
        sales.aggregation = aggregation_note(self.parsed.daily_files)
        sales.titles = self.parsed.merged_titles()

    @property
    def executed(self) -> list[tuple[str, str]]:
        """(table, SQL) of every stage run so far, in order."""
        return list(self._runner.executed)

    def _weekly_columns(self) -> list[str]:
        return ["week", "units", "price", *self.controls, "_order", "_rows"]

    def join(self, records: CategoryRecords) -> pd.DataFrame:
        """Each listing-week's category, as :func:`~imagelift.influence.records.join_categories` (once)."""
        if self._weekly is None:
            from imagelift.influence.records import join_categories

            return join_categories(self.sales.frame, records, self.sales.rejections)
        _load_segments(self.connection, records)
        current = self._weekly
        for stage in JOIN_STAGES:
            current = self._runner.run(stage, current, **self._values)
        self._weekly = None
        columns = [*self._weekly_columns(), "listing_code", "category"]
        joined = self._runner.kept_frame(current, columns, "week, _lc")
        joined["listing_code"] = joined["listing_code"].astype(np.int64)
        joined["category"] = joined["category"].astype(np.float64).astype(np.int64)
        return joined


def _load_segments(connection: Any, records: CategoryRecords) -> None:
    segments = records.segments
    frame = pd.DataFrame(
        {
            "product_id": segments["product_id"].astype(str).to_numpy(dtype=object),
            "listing_id": segments["listing_id"].astype(str).to_numpy(dtype=object),
            "start": segments["start"].to_numpy(dtype="datetime64[ns]"),
            "category": segments["category"].to_numpy(dtype=np.float64),
        }
    )
    connection.register("segments_frame", frame)
    connection.execute(
        f"""
        CREATE OR REPLACE TABLE {SEGMENTS_TABLE} AS
        SELECT product_id, listing_id, CAST(start AS TIMESTAMP) AS start, category FROM segments_frame
        """
    )
    connection.unregister("segments_frame")


@contextmanager
def stage_connection(
    memory_limit_mb: int, temp_directory: Path | None = None, max_temp_mb: int | None = None
) -> Iterator[Any]:
    """A DuckDB database in a temporary directory (spilling there past ``memory_limit_mb``, at most ``max_temp_mb``
    of spill files when given), removed afterwards."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="imagelift-sql-", dir=temp_directory) as directory:
        connection = duckdb.connect(str(Path(directory) / "stages.duckdb"))
        try:
            connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
            connection.execute("SET threads = 1")
            connection.execute("SET preserve_insertion_order = false")
            connection.execute(f"SET temp_directory = '{Path(directory) / 'spill'}'")
            if max_temp_mb is not None:
                connection.execute(f"SET max_temp_directory_size = '{int(max_temp_mb)}MB'")
            yield connection
        finally:
            connection.close()
