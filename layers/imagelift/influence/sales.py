"""Reading and validating sales exports as shops write them, into one row per listing and week.

Each file is decoded (:mod:`~imagelift.influence.exports.decoding`), its headers mapped onto the fields
(:mod:`~imagelift.influence.exports.formats`), its numbers and dates read one way for the whole file
(:mod:`~imagelift.influence.exports.values`, :mod:`~imagelift.influence.exports.weeks`). Then, over all files:
rows are checked, overlaps between files resolved (newest file wins, the rest ``superseded``), daily rows summed
into listing-weeks (units summed, price = sales / units or the quantity-weighted mean price) and implausible
listing-weeks rejected.

Every row read ends up used, rejected by a reason, or superseded: ``rows_read = used + rejected + superseded``
(a listing-week made of several daily rows counts all of them). A file that cannot be read at all is listed in
``failed_files`` with the reason and the others are used, unless it was named by the user (``strict``), when
it is an :class:`InputFileError` naming it.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from imagelift.config import SalesConfig
from imagelift.errors import PermanentError
from imagelift.influence.exports.decoding import DecodeError, read_table
from imagelift.influence.exports.formats import ColumnError, apply_layout, parse_column_mapping, resolve_layout
from imagelift.influence.exports.overlaps import resolve_overlaps
from imagelift.influence.exports.titles import merge_titles, product_titles
from imagelift.influence.exports.values import DecimalError, parse_numbers
from imagelift.influence.exports.weeks import DateFormatError, file_period, parse_dates, week_start
from imagelift.records.keys import ID_PATTERN, ID_RULE

REQUIRED_COLUMNS = ("week", "product_id", "listing_id", "units", "price")
MAX_EXAMPLES_PER_REASON = 5

# Reasons validation rejects a sales row, in the order they are checked (a row is counted under its first one);
# the category join adds its own (influence.records.JOIN_REJECTION_REASONS).
REJECTION_REASONS = {
    "ragged_row": "the row has more fields than the header",
    "missing_field": "a required field (date, product, listing, units, price or sales, or a control) is empty",
    "non_numeric": "units, price, sales or a control is not a finite number",
    "bad_week": "the date is not a date in the file's date format (words like today or now are not dates)",
    "bad_id": f"product_id or listing_id is not an id ({ID_RULE})",
    "non_integer_units": "units is not a whole number",
    "duplicate_row": "an exact copy of an earlier row of the same file (counted once)",
    "future_week": "the week starts after the report date",
    "before_window": "the week is older than the report's window",
    "partial_week": "a daily export covers only part of this week (its first or last days are missing)",
    "duplicate_listing_week": "the same listing appears more than once in one week of one weekly file (all copies rejected)",
    "negative_units": "units (summed over the week) is below zero",
    "price_not_positive": "price (or sales for the units sold) is zero or below",
    "no_price": "no units sold and the listing has no sale in the period to take a price from",
    "implausible_units": "more units in one listing-week than the configured bound (REPORT_MAX_UNITS)",
    "implausible_price": "price further from the listing's median price than the configured factor (REPORT_MAX_PRICE_FACTOR)",
}


class InputFileError(PermanentError, ValueError):
    """A whole input file is unusable; the message names the file and says why."""

    code = "unusable_file"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass
class Rejections:
    """Counts of rejected rows by reason, with a few examples (file and line) of each.

    A frame carrying ``_rows`` (the export rows behind an aggregated listing-week) counts those, else one each.
    """

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        rows = int(frame["_rows"].sum()) if "_rows" in frame else len(frame)
        if rows == 0:
            return
        self.counts[reason] += rows
        slot = self.examples.setdefault(reason, [])
        if "_source" in frame and "_line" in frame:
            for source, line in frame[["_source", "_line"]].head(MAX_EXAMPLES_PER_REASON - len(slot)).itertuples(False):
                slot.append(f"{source}:{line}")

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def as_dict(self) -> dict[str, int]:
        """Counts by reason: the validation reasons in check order, then later stages' (the join's) as added."""
        order = [*REJECTION_REASONS, *(r for r in self.counts if r not in REJECTION_REASONS)]
        return {reason: int(self.counts[reason]) for reason in order if self.counts.get(reason)}


@dataclass(frozen=True)
class SalesSource:
    """One export file: its name, its bytes (or how to fetch them) and when it was last written.

    ``strict``: the user named this file, so a file that cannot be read is an error rather than a listed failure.
    """

    name: str
    data: bytes | None = None
    opener: Callable[[], bytes] | None = None
    last_modified: datetime | float | None = None
    strict: bool = False

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.opener is None:
            raise InputFileError(self.name, "has no data")
        return self.opener()

    def modified_at(self) -> float:
        if isinstance(self.last_modified, datetime):
            moment = self.last_modified
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        return float(self.last_modified) if self.last_modified is not None else float("-inf")


@dataclass
class SalesTable:
    """Valid listing-weeks (week as Monday datetime64, ids as str, units float, price float, controls float).

    ``frame`` also carries ``_source`` and ``_line`` (of the week's first row) and ``_rows`` (export rows behind it).
    """

    frame: pd.DataFrame
    rejections: Rejections
    rows_read: int
    files: list[str]
    controls: tuple[str, ...]
    superseded: int = 0
    """Rows another, newer file also covered (not used, not rejected)."""
    superseded_examples: list[str] = field(default_factory=list)
    failed_files: dict[str, str] = field(default_factory=dict)
    """Files that could not be read, with the reason; the others were used."""
    notes: list[str] = field(default_factory=list)
    """How the files were read (layout, date format, decimal mark, week convention, aggregation)."""
    aggregation: str = ""
    report_date: date | None = None
    zero_weeks_missing: int = 0
    """Listing-weeks with a live photo the exports left out while writing no zero-sale week at all."""
    rows_filled: int = 0
    """Of those, the ones added as zero-sale weeks (``fill_zeros``)."""
    titles: dict[str, str] = field(default_factory=dict)
    """product_id -> its name, from exports that have a title column (the newest file's name wins)."""

    released_rows_used: int | None = field(default=None, repr=False)
    """``rows_used`` when the rows were released (:meth:`release_rows`), else None."""

    @property
    def rows_used(self) -> int:
        if self.released_rows_used is not None:
            return self.released_rows_used
        return int(self.frame["_rows"].sum()) if "_rows" in self.frame else len(self.frame)

    def release_rows(self) -> None:
        """Drop the rows, keeping their counts: once joined, the report needs only those, and at a marketplace's
        size the rows are, after the joined panel, the largest thing it holds."""
        self.released_rows_used = self.rows_used
        self.frame = self.frame.iloc[:0].copy()  # a copy: an empty slice is a view that keeps every row alive


def decode_text(name: str, data: bytes) -> str:
    """Bytes of a (possibly gzipped) UTF-8 text file as text, or a clear error naming the file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(name, f"looks gzipped but cannot be decompressed ({exc})") from exc
    if not data.strip():
        raise InputFileError(name, "is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            name, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); export it as UTF-8"
        ) from exc
    return text.removeprefix("\ufeff")


# ------------------------------------------------------------------------------------------------ one file


@dataclass
class _FileRows:
    frame: pd.DataFrame
    """Typed rows: product_id, listing_id, date, week, units, price, sales, controls, flags and bookkeeping."""
    ragged: pd.DataFrame
    notes: list[str]
    titles: dict[str, str] = field(default_factory=dict)


def _text_column(values: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """A column as codes into its stripped distinct values (a missing cell is ""), and which rows are blank."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    stripped = pd.Index(uniques, dtype=object).astype(str).str.strip().append(pd.Index([""], dtype=object))
    codes = np.where(codes < 0, len(stripped) - 1, codes)
    return codes, np.asarray(stripped == "")[codes], stripped


def _valid_ids(uniques: pd.Index) -> np.ndarray:
    return np.fromiter((ID_PATTERN.fullmatch(u) is not None for u in uniques), dtype=bool, count=len(uniques))


def _read_file(
    source: SalesSource, index: int, config: SalesConfig, controls: tuple[str, ...], mapping: dict[str, str]
) -> _FileRows:
    name = source.name
    try:

        def numeric_headers(names: list[str]) -> list[str]:
            layout = resolve_layout(names, config.sales_format, mapping, controls)
            fields = [layout.headers[f] for f in ("units", "price", "sales") if f in layout.headers]
            return [*fields, *layout.controls.values()]

        table = read_table(source.read(), float_columns=numeric_headers)
        layout = resolve_layout(list(table.frame.columns), config.sales_format, mapping, controls)
        raw = apply_layout(table.frame, layout)
        numeric = [c for c in ("units", "price", "sales", *controls) if c in raw]
        numbers, number_blank, decimal = parse_numbers({c: raw[c] for c in numeric}, config.decimal)
        week_codes, blank, week_texts = _text_column(raw["week"])
        parsed, date_format = parse_dates(pd.Series(week_texts), config.dayfirst_choice())
    except (DecodeError, ColumnError, DecimalError, DateFormatError) as exc:
        raise InputFileError(name, str(exc)) from exc
    dates = pd.Series(parsed.to_numpy(dtype="datetime64[ns]")[week_codes], dtype="datetime64[ns]")
    # a date column mapped by hand may be daily or weekly: the dates tell
    period = file_period(dates, raw["listing_id"], "auto" if "week" in mapping else layout.preset.period)
    weeks, convention = week_start(dates, period, config.week_start)
    n = len(raw)
    ids: dict[str, np.ndarray] = {}
    bad_id = np.zeros(n, dtype=bool)
    product_codes: tuple[np.ndarray, pd.Index] | None = None
    for column in ("product_id", "listing_id"):
        codes, empty, uniques = _text_column(raw[column])
        ids[column] = uniques.to_numpy(dtype=object)[codes]
        if column == "product_id":
            product_codes = (codes, uniques)
        blank |= empty
        bad_id |= ~_valid_ids(uniques)[codes]
    not_number = np.zeros(n, dtype=bool)
    for column in numeric:
        blank |= number_blank[column]
        not_number |= ~np.isfinite(numbers[column])
    frame = pd.DataFrame(
        {
            "product_id": ids["product_id"],
            "listing_id": ids["listing_id"],
            "date": dates.to_numpy(),
            "week": weeks.to_numpy(),
            "units": numbers["units"],
            "price": numbers.get("price", np.full(n, np.nan)),
            "sales": numbers["sales"] if "price" not in numbers else np.full(n, np.nan),
            **{c: numbers[c] for c in controls},
            "_blank": blank,
            "_not_number": not_number & ~blank,
            "_bad_id": bad_id,
            "_daily": period == "day",
            "_file": index,
            "_source": name,
            "_line": np.asarray(table.lines, dtype=np.int64),
            "_rows": 1,
        }
    )
    ragged = pd.DataFrame({"_source": name, "_line": table.ragged, "_rows": 1})
    titles = product_titles(*product_codes, table.frame[layout.title]) if layout.title and product_codes else {}
    basis = "price" if "price" in numbers else "sales / units"
    notes = [
        f"{name}: {layout.preset.name} layout, {n + len(table.ragged):,} rows, "
        f"{'daily' if period == 'day' else 'weekly'}, dates {date_format}, decimal '{decimal}', "
        f"weeks from {convention}, price from {basis}",
        *(f"{name}: {note}" for note in table.notes),
    ]
    return _FileRows(frame=frame, ragged=ragged, notes=notes, titles=titles)


# ------------------------------------------------------------------------------------------------ all files


def _complete_weeks(frame: pd.DataFrame) -> np.ndarray:
    """Mask of daily rows whose Monday-Sunday week lies inside the span of days some daily file covers."""
    daily = frame["_daily"]
    ok = np.ones(len(frame), dtype=bool)
    if not daily.any():
        return ok
    spans = frame[daily].groupby("_file")["date"].agg(["min", "max"])
    weeks = pd.Series(frame.loc[daily, "week"].unique())
    complete = pd.Series(False, index=weeks)
    for first, last in spans.itertuples(index=False):
        complete |= ((weeks >= first) & (weeks + pd.Timedelta(days=6) <= last)).to_numpy()
    ok[daily.to_numpy()] = complete.reindex(frame.loc[daily, "week"]).to_numpy()
    return ok


def _aggregate(frame: pd.DataFrame, controls: tuple[str, ...]) -> pd.DataFrame:
    """Daily rows summed into listing-weeks; weekly rows pass through. Price: sales / units, or the
    quantity-weighted mean of the price column (its plain mean in a week without units)."""
    daily = frame["_daily"]
    weekly = frame[~daily]
    if not daily.any():
        return weekly
    rows = frame[daily].assign(
        _value=lambda f: f["price"] * f["units"],
        _has_price=lambda f: f["price"].notna(),
    )
    grouped = rows.groupby(["_lc", "week"], sort=False)
    out = grouped.agg(
        product_id=("product_id", "first"),
        listing_id=("listing_id", "first"),
        units=("units", "sum"),
        sales=("sales", "sum"),
        _sales_count=("sales", "count"),
        _value=("_value", "sum"),
        _mean_price=("price", "mean"),
        _has_price=("_has_price", "any"),
        _rows=("_rows", "sum"),
        _source=("_source", "first"),
        _line=("_line", "first"),
        _file=("_file", "max"),
        **{c: (c, "mean") for c in controls},
    ).reset_index()
    weighted = np.where(out["units"] > 0, out["_value"] / out["units"].where(out["units"] > 0), out["_mean_price"])
    out["price"] = np.where(out["_has_price"], weighted, np.nan)
    # a week none of whose rows has sales has no sales (not 0): a per-group lambda would say so 100x slower
    out["sales"] = out["sales"].where(out["_sales_count"] > 0)
    out["_daily"] = True
    out = out.drop(columns=["_value", "_mean_price", "_has_price", "_sales_count"])
    return pd.concat([weekly[out.columns.intersection(weekly.columns)], out], ignore_index=True)


@dataclass
class ParsedExports:
    """What reading the export files one by one gave, before the checks across files.

    The typed rows of each file went to the sink given to :func:`parse_exports`; this holds the rest.
    """

    names: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ranks: list[tuple[float, int]] = field(default_factory=list)
    """(modification time, file index) of every file read."""
    titles: dict[int, dict[str, str]] = field(default_factory=dict)
    rows_read: int = 0
    rows_parsed: int = 0
    """Rows handed to the sink (rows read less ragged ones)."""
    rejections: Rejections = field(default_factory=Rejections)
    daily_files: bool = False

    def rank_of_file(self) -> dict[int, int]:
        """Each file's rank: 0 for the oldest (by LastModified / mtime, then the order given), higher for newer."""
        return {index: rank for rank, (_, index) in enumerate(sorted(self.ranks))}

    def merged_titles(self) -> dict[str, str]:
        return merge_titles(self.titles[index] for _, index in sorted(self.ranks))


def parse_exports(
    sources: Iterable[SalesSource | tuple[str, bytes]],
    config: SalesConfig,
    controls: tuple[str, ...],
    sink: Callable[[pd.DataFrame], None],
) -> ParsedExports:
    """Read each file into typed rows (field-level problems flagged, not yet rejected) and pass them to ``sink``,
    one file at a time; a file that cannot be read is listed (or raised, when ``strict``)."""
    mapping = parse_column_mapping(config.columns)
    parsed = ParsedExports()
    for index, item in enumerate(sources):
        source = item if isinstance(item, SalesSource) else SalesSource(name=item[0], data=item[1])
        parsed.names.append(source.name)
        try:
            rows = _read_file(source, index, config, controls, mapping)
        except InputFileError as exc:
            if source.strict:
                raise
            parsed.failed[source.name] = exc.problem
            continue
        except Exception as exc:  # a storage error reading one object: list the file, use the rest
            if source.strict:
                raise
            parsed.failed[source.name] = f"could not be read ({type(exc).__name__}: {exc})"
            continue
        parsed.rows_read += len(rows.frame) + len(rows.ragged)
        parsed.rows_parsed += len(rows.frame)
        parsed.rejections.add("ragged_row", rows.ragged)
        parsed.daily_files |= bool(rows.frame["_daily"].any())
        parsed.notes.extend(rows.notes)
        parsed.ranks.append((source.modified_at(), index))
        parsed.titles[index] = rows.titles
        sink(rows.frame)
    return parsed


def aggregation_note(daily_files: bool) -> str:
    if daily_files:
        return (
            "daily rows summed into Monday-Sunday weeks: units summed, price = sales / units (or the quantity-weighted "
            "mean price); weeks without sales take the listing's price over the period"
        )
    return "one row per listing and week, weeks normalised to their Monday"


def empty_sales_frame(controls: tuple[str, ...]) -> pd.DataFrame:
    columns = ["product_id", "listing_id", "date", "week", "units", "price", "sales", *controls]
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    empty = empty.astype({"product_id": object, "listing_id": object, "week": "datetime64[ns]"})
    empty["_rows"] = pd.Series(dtype=np.int64)
    return empty


def read_sales(
    sources: Iterable[SalesSource | tuple[str, bytes]],
    config: SalesConfig | None = None,
    *,
    controls: Iterable[str] = (),
    report_date: date | None = None,
    window_weeks: int | None = None,
) -> SalesTable:
    """Read, check, de-overlap and aggregate export files into valid listing-weeks.

    ``report_date`` (default today, UTC): weeks starting after it are ``future_week``. ``window_weeks`` (default
    none): weeks starting more than that many weeks before the report date's week are ``before_window``.
    """
    config = config or SalesConfig()
    controls = tuple(c.strip().lower() for c in controls if c.strip())
    report_date = report_date or datetime.now(UTC).date()
    frames: list[pd.DataFrame] = []
    parsed = parse_exports(sources, config, controls, frames.append)
    return check_parsed(frames, parsed, config, controls, report_date, window_weeks)


def check_parsed(
    frames: list[pd.DataFrame],
    parsed: ParsedExports,
    config: SalesConfig,
    controls: tuple[str, ...],
    report_date: date,
    window_weeks: int | None,
) -> SalesTable:
    """The checks across files, in pandas, on the typed rows :func:`parse_exports` gave."""
    rejections, names, failed, notes = parsed.rejections, parsed.names, parsed.failed, parsed.notes
    rows_read = parsed.rows_read
    columns = ["product_id", "listing_id", "date", "week", "units", "price", "sales", *controls]
    if not frames:
        return SalesTable(
            empty_sales_frame(controls),
            rejections,
            rows_read,
            names,
            controls,
            failed_files=failed,
            notes=notes,
            report_date=report_date,
        )
    frame = pd.concat(frames, ignore_index=True)
    # every listing as an integer (in id order): the checks below compare integers, not strings
    product = pd.factorize(frame["product_id"], sort=True)[0].astype(np.int64)
    listing = pd.factorize(frame["listing_id"], sort=True)[0].astype(np.int64)
    frame["_lc"] = pd.factorize(product * (int(listing.max()) + 1) + listing, sort=True)[0]
    # newer files rank higher (LastModified / mtime, then the order given)
    frame["_rank"] = frame["_file"].map(parsed.rank_of_file())

    def reject(reason: str, bad: np.ndarray | pd.Series) -> None:
        nonlocal frame
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            rejections.add(reason, frame[bad])
            frame = frame[~bad]

    reject("missing_field", frame["_blank"])
    reject("non_numeric", frame["_not_number"])
    reject("bad_week", frame["date"].isna())
    reject("bad_id", frame["_bad_id"])
    reject("non_integer_units", frame["units"] != np.floor(frame["units"]))
    # exact copies: only rows sharing a file, listing and date can be, so the full comparison runs on those alone
    same_day = frame.duplicated(["_file", "_lc", "date"], keep=False).to_numpy()
    copies = np.zeros(len(frame), dtype=bool)
    if same_day.any():
        copies[same_day] = frame[same_day].duplicated(["_file", *columns], keep="first").to_numpy()
    reject("duplicate_row", copies)
    cutoff = pd.Timestamp(report_date)
    reject("future_week", np.where(frame["_daily"], frame["date"], frame["week"]) > cutoff.to_datetime64())
    if window_weeks:
        first = cutoff - pd.Timedelta(days=cutoff.day_of_week) - pd.Timedelta(weeks=window_weeks)
        reject("before_window", frame["week"] < first)
    reject("partial_week", ~_complete_weeks(frame))

    keep = resolve_overlaps(frame, ids=("_lc",))
    superseded = frame[~keep]
    superseded_examples = [
        f"{s}:{n}" for s, n in superseded[["_source", "_line"]].head(MAX_EXAMPLES_PER_REASON).itertuples(False)
    ]
    frame = frame[keep]
    weekly = ~frame["_daily"].to_numpy()
    reject("duplicate_listing_week", weekly & frame.duplicated(["_lc", "week"], keep=False).to_numpy())
    reject("price_not_positive", (frame["price"] <= 0).to_numpy())

    frame = _aggregate(frame, controls)
    reject("negative_units", frame["units"] < 0)
    from_sales = frame["price"].isna()
    sold = frame["units"] > 0
    reject("price_not_positive", from_sales & sold & ~(frame["sales"] > 0))
    from_sales = frame["price"].isna()
    sold = frame["units"] > 0
    frame = frame.assign(price=frame["price"].where(~(from_sales & sold), frame["sales"] / frame["units"]))
    if frame["price"].isna().any():
        # a week without sales takes the listing's price over the period (total sales / total units)
        totals = frame[frame["units"] > 0].groupby("_lc")[["sales", "units"]].sum()
        mean_price = (totals["sales"] / totals["units"]).rename("_mean_price")
        filled = frame.join(mean_price, on="_lc")["_mean_price"]
        frame = frame.assign(price=frame["price"].fillna(filled))
        reject("no_price", frame["price"].isna())
    reject("implausible_units", frame["units"] > config.max_units)
    median = frame.groupby("_lc")["price"].transform("median")
    ratio = frame["price"] / median
    factor = config.max_price_factor
    reject("implausible_price", ~((ratio <= factor) & (ratio >= 1 / factor)))

    frame = frame.sort_values(["_lc", "week"], kind="stable")
    frame = frame[["week", "product_id", "listing_id", "units", "price", *controls, "_source", "_line", "_rows"]]
    frame = frame.reset_index(drop=True)
    frame["week"] = frame["week"].astype("datetime64[ns]")
    return SalesTable(
        frame=frame,
        rejections=rejections,
        rows_read=rows_read,
        files=names,
        controls=controls,
        superseded=int(superseded["_rows"].sum()),
        superseded_examples=superseded_examples,
        failed_files=failed,
        notes=notes,
        aggregation=aggregation_note(parsed.daily_files),
        report_date=report_date,
        titles=parsed.merged_titles(),
    )
