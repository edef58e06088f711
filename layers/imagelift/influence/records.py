"""Category records (ImageCategories items) as the report needs them, and the as-of join onto sales weeks.

Only ``product_id``, ``listing_id``, ``status``, ``category``, ``event_time`` and ``sequencer`` are read; a
record carrying nothing else is fine. Records that cannot place a photo on a listing at a time (failed or
deleted, key outside ``images/<product>/<listing>/``, bad category or time) are excluded and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imagelift.influence.sales import ID_PATTERN, InputFileError, Rejections

RECORD_FIELDS = ("product_id", "listing_id", "status", "category", "event_time", "sequencer")
CATEGORY_NAMES = {1: "model", 2: "worn", 3: "product"}
BASE_CATEGORY = 3
# A week's sales are credited to the photo live at the middle of the week (Thursday noon): with a change
# mid-week that is the photo shown for most of it.
WEEK_MIDPOINT = pd.Timedelta(hours=84)

EXCLUSION_REASONS = {
    "failed": "classification failed (status failed)",
    "deleted": "the photo was deleted (status deleted)",
    "unmatched_key": "the image key is not images/<product_id>/<listing_id>/<file>",
    "bad_status": "status is missing or unknown",
    "bad_category": "category is not 1, 2 or 3",
    "bad_event_time": "event_time is missing or not a time",
}


@dataclass
class CategoryRecords:
    """Usable records: product_id, listing_id (str), category (int 1-3), event_time (UTC, naive), seq_rank."""

    frame: pd.DataFrame
    records_read: int
    excluded: Counter

    def excluded_dict(self) -> dict[str, int]:
        return {reason: int(self.excluded[reason]) for reason in EXCLUSION_REASONS if self.excluded.get(reason)}


def read_jsonl(name: str, data: bytes) -> list[dict[str, Any]]:
    """JSON Lines of records; a line that is not a JSON object is an error naming the file and line."""
    from imagelift.influence.sales import decode_text

    text = decode_text(name, data)
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(name, f"line {number} is not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise InputFileError(name, f"line {number} is not a JSON object")
        items.append(item)
    return items


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped strings; missing ones (None, NaN, pd.NA) as "" (never the id "nan")."""
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    text[missing] = ""
    return pd.Series(text, index=values.index, dtype=object)


def _sequencer_key(values: pd.Series) -> pd.Series:
    """S3 sequencers are hex strings of varying length: AWS says to right-pad the shorter with zeros to compare."""
    cleaned = values.fillna("").astype(str).str.strip().str.upper()
    cleaned = cleaned.where(cleaned.str.fullmatch(r"[0-9A-F]*"), "")
    width = int(cleaned.str.len().max()) if len(cleaned) else 0
    return cleaned.str.ljust(width, "0")


def normalise_records(items: Iterable[Mapping[str, Any]]) -> CategoryRecords:
    """Validate raw items (from JSON Lines or a DynamoDB scan; numbers may be Decimal) into usable records."""
    rows = [{f: item.get(f) for f in RECORD_FIELDS} for item in items]
    frame = pd.DataFrame(rows, columns=list(RECORD_FIELDS), dtype=object)
    read = len(frame)
    excluded: Counter = Counter()

    def exclude(reason: str, bad: pd.Series) -> None:
        nonlocal frame
        count = int(bad.sum())
        if count:
            excluded[reason] += count
            frame = frame[~bad]

    status = _text(frame["status"]).str.lower()
    frame = frame.assign(status=status)
    exclude("failed", frame["status"] == "failed")
    exclude("deleted", frame["status"] == "deleted")
    exclude("bad_status", frame["status"] != "classified")
    product = _text(frame["product_id"])
    listing = _text(frame["listing_id"])
    frame = frame.assign(product_id=product, listing_id=listing)
    exclude(
        "unmatched_key",
        ~(frame["product_id"].str.fullmatch(ID_PATTERN) & frame["listing_id"].str.fullmatch(ID_PATTERN)),
    )
    category = pd.to_numeric(_text(frame["category"]).replace("", None), errors="coerce")
    frame = frame.assign(category=category)
    exclude("bad_category", ~frame["category"].isin(list(CATEGORY_NAMES)))
    event_time = pd.to_datetime(_text(frame["event_time"]), errors="coerce", utc=True, format="ISO8601")
    frame = frame.assign(event_time=event_time.dt.tz_localize(None))
    exclude("bad_event_time", frame["event_time"].isna())

    frame = frame.assign(
        category=frame["category"].astype(np.int64), sequencer=_sequencer_key(frame["sequencer"])
    ).sort_values(["product_id", "listing_id", "event_time", "sequencer"], kind="stable")
    # Two records at the same instant: the later S3 event (higher sequencer) decides.
    frame = frame.drop_duplicates(["product_id", "listing_id", "event_time"], keep="last")
    frame = frame[["product_id", "listing_id", "category", "event_time"]].reset_index(drop=True)
    return CategoryRecords(frame=frame, records_read=read, excluded=excluded)


def join_categories(sales: pd.DataFrame, records: CategoryRecords, rejections: Rejections) -> pd.DataFrame:
    """Each listing-week's category: the latest usable record at or before the week's midpoint.

    Sales rows of listings with no usable record are rejected as ``unknown_listing``; rows from weeks before
    a listing's first record as ``no_category_that_week``.
    """
    rec = records.frame
    # listings as integer codes: hashing two string columns once beats matching them in every step below
    known = pd.MultiIndex.from_arrays([rec["product_id"], rec["listing_id"]]).unique()
    listing = known.get_indexer(pd.MultiIndex.from_arrays([sales["product_id"], sales["listing_id"]]))
    is_known = listing >= 0
    rejections.add("unknown_listing", sales[~is_known])
    sales = sales[is_known].assign(listing_code=listing[is_known])

    left = sales.assign(_at=sales["week"] + WEEK_MIDPOINT).sort_values("_at", kind="stable")
    right = pd.DataFrame(
        {
            "listing_code": known.get_indexer(pd.MultiIndex.from_arrays([rec["product_id"], rec["listing_id"]])),
            "_at": rec["event_time"].astype(left["_at"].dtype),
            "category": rec["category"].to_numpy(),
        }
    ).sort_values("_at", kind="stable")
    joined = pd.merge_asof(left, right, on="_at", by="listing_code", direction="backward")
    no_category = joined["category"].isna()
    rejections.add("no_category_that_week", joined[no_category])
    joined = joined[~no_category].drop(columns="_at")
    joined["category"] = joined["category"].astype(np.int64)
    return joined.reset_index(drop=True)
