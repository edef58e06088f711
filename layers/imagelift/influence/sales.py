"""Reading and validating sales exports: one CSV row per listing and week, gzip allowed.

Every row that cannot be used is rejected with a reason and counted, never dropped silently. A file that
cannot be read at all (empty, not UTF-8, no header we understand) raises :class:`InputFileError` naming it.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imagelift.errors import PermanentError
from imagelift.records.keys import ID_PATTERN

REQUIRED_COLUMNS = ("week", "product_id", "listing_id", "units", "price")
MAX_EXAMPLES_PER_REASON = 5

# Reasons validation rejects a sales row, in the order they are checked (a row is counted under its first one);
# the category join adds its own (influence.records.JOIN_REJECTION_REASONS).
REJECTION_REASONS = {
    "missing_field": "a required field (week, product_id, listing_id, units, price or a control) is empty",
    "non_numeric": "units, price or a control is not a finite number",
    "bad_week": "week is not a date",
    "bad_id": "product_id or listing_id does not match [A-Za-z0-9_.-]{1,128}",
    "negative_units": "units is below zero",
    "non_integer_units": "units is not a whole number",
    "price_not_positive": "price is zero or below",
    "duplicate_listing_week": "the same listing appears more than once in one week (all copies rejected)",
}


class InputFileError(PermanentError, ValueError):
    """A whole input file is unusable; the message names the file and says why."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass
class Rejections:
    """Counts of rejected rows by reason, with a few examples (file and line) of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.counts[reason] += len(frame)
        slot = self.examples.setdefault(reason, [])
        for source, line in frame[["_source", "_line"]].head(MAX_EXAMPLES_PER_REASON - len(slot)).itertuples(False):
            slot.append(f"{source}:{line}")

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def as_dict(self) -> dict[str, int]:
        """Counts by reason: the validation reasons in check order, then later stages' (the join's) as added."""
        order = [*REJECTION_REASONS, *(r for r in self.counts if r not in REJECTION_REASONS)]
        return {reason: int(self.counts[reason]) for reason in order if self.counts.get(reason)}


@dataclass
class SalesTable:
    """Valid sales rows (week as Monday datetime64, ids as str, units float, price float, controls float)."""

    frame: pd.DataFrame
    rejections: Rejections
    rows_read: int
    files: list[str]
    controls: tuple[str, ...]


def decode_text(name: str, data: bytes) -> str:
    """Bytes of a (possibly gzipped) CSV file as text, or a clear error naming the file."""
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


def parse_sales_csv(name: str, data: bytes, controls: Iterable[str] = ()) -> pd.DataFrame:
    """One export file as a frame of strings, with ``_source`` and ``_line`` (1-based, header is line 1)."""
    text = decode_text(name, data)
    options = {"keep_default_na": False, "na_filter": False, "skipinitialspace": True}
    try:
        header = pd.read_csv(io.StringIO(text), nrows=0, **options).columns
        numeric = {c: "float64" for c in header if str(c).strip().lower() in {"units", "price", *controls}}
        try:
            # fast path: a clean file parses its numbers in the C reader; any bad value sends us to the slow path
            frame = pd.read_csv(io.StringIO(text), dtype={c: str for c in header} | numeric, **options)
        except (ValueError, OverflowError):
            frame = pd.read_csv(io.StringIO(text), dtype=str, **options)
    except pd.errors.ParserError as exc:
        raise InputFileError(name, f"is not a readable CSV file ({exc})") from exc
    except pd.errors.EmptyDataError as exc:
        raise InputFileError(name, "is empty") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    wanted = (*REQUIRED_COLUMNS, *controls)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise InputFileError(name, f"lacks column(s) {', '.join(missing)} (it has {', '.join(frame.columns)})")
    if frame.empty:
        raise InputFileError(name, "has a header but no rows")
    frame = frame[list(wanted)].copy()
    for column in ("week", "product_id", "listing_id"):
        # few distinct values: strip each once (numbers are parsed with surrounding blanks allowed)
        codes, uniques = pd.factorize(frame[column])
        frame[column] = pd.Index(uniques).str.strip().to_numpy(dtype=object)[codes]
    frame["_source"] = name
    frame["_line"] = np.arange(2, len(frame) + 2)
    return frame


def _mondays(values: pd.Series) -> pd.Series:
    """Week strings to the Monday of their week; NaT where unparseable. Parses each distinct string once."""
    uniques = pd.Series(values.unique())
    parsed = pd.to_datetime(uniques, errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
    parsed = parsed.dt.normalize()
    mondays = parsed - pd.to_timedelta(parsed.dt.day_of_week, unit="D")
    lookup = pd.Series(mondays.to_numpy(), index=uniques.to_numpy())
    return pd.Series(lookup.reindex(values.to_numpy()).to_numpy(), index=values.index)


def _valid_ids(values: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(values)
    valid = np.fromiter((ID_PATTERN.fullmatch(u) is not None for u in uniques), dtype=bool, count=len(uniques))
    return valid[codes]


def validate_sales(raw: pd.DataFrame, controls: tuple[str, ...] = ()) -> tuple[pd.DataFrame, Rejections]:
    """Typed, valid rows and the rejected ones counted by reason (see ``REJECTION_REASONS``)."""
    rejections = Rejections()
    frame = raw

    def reject(reason: str, bad: pd.Series) -> None:
        nonlocal frame
        if bad.any():
            rejections.add(reason, frame[bad])
            frame = frame[~bad]

    numeric_columns = ("units", "price", *controls)
    missing = (frame[["week", "product_id", "listing_id"]] == "").any(axis=1).to_numpy().copy()
    values = {}
    for column in numeric_columns:
        raw = frame[column]
        parsed = (
            raw.to_numpy(dtype=float) if raw.dtype.kind == "f" else pd.to_numeric(raw, errors="coerce").to_numpy(float)
        )
        failed = np.flatnonzero(~np.isfinite(parsed)) if raw.dtype.kind != "f" else np.empty(0, dtype=np.intp)
        if len(failed):
            blank = np.array([str(v).strip() == "" for v in frame[column].to_numpy()[failed]], dtype=bool)
            missing[failed[blank]] = True
        values[column] = parsed
    frame = frame.assign(**values)
    reject("missing_field", pd.Series(missing, index=frame.index))
    bad = pd.Series(False, index=frame.index)
    for column in numeric_columns:
        bad |= ~np.isfinite(frame[column].to_numpy())
    reject("non_numeric", bad)

    week = _mondays(frame["week"])
    reject("bad_week", week.isna())
    frame = frame.assign(week=week[frame.index].astype("datetime64[ns]"))

    reject("bad_id", ~(_valid_ids(frame["product_id"]) & _valid_ids(frame["listing_id"])))
    reject("negative_units", frame["units"] < 0)
    reject("non_integer_units", frame["units"] != np.floor(frame["units"]))
    reject("price_not_positive", frame["price"] <= 0)
    reject("duplicate_listing_week", frame.duplicated(["product_id", "listing_id", "week"], keep=False))
    return frame.reset_index(drop=True), rejections


def read_sales(sources: Iterable[tuple[str, bytes]], controls: Iterable[str] = ()) -> SalesTable:
    """Read and validate export files given as (name, bytes) pairs (local files or S3 objects alike)."""
    controls = tuple(controls)
    frames, names = [], []
    for name, data in sources:
        frames.append(parse_sales_csv(name, data, controls))
        names.append(name)
    if not frames:
        raise InputFileError("sales", "no sales export files were given")
    raw = pd.concat(frames, ignore_index=True)
    frame, rejections = validate_sales(raw, controls)
    return SalesTable(frame=frame, rejections=rejections, rows_read=len(raw), files=names, controls=controls)
