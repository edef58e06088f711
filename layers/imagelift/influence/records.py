"""Category records (ImageCategories items) as the report needs them, and the as-of join onto sales weeks.

Only ``product_id``, ``listing_id``, ``status``, ``category``, ``event_time``, ``sequencer`` and the optional
``key``, ``deleted_at``, ``live_from`` and ``correction`` (a person's category, used in place of the classifier's)
are read; a record carrying nothing else is fine. A photo is one ``key`` (records
without one count as a single photo per listing): it is live from its classified record until a later ``deleted``
record of the same key, and a re-upload makes it live again. A ``deleted`` record with a category and a
``deleted_at`` after its ``event_time`` is a version deleted for good: live from ``event_time`` to ``deleted_at``. Records that cannot place or end a photo on a listing at a time (failed,
key outside ``images/<product>/<listing>/``, bad status, category or time, a deletion with no live photo to
end) are excluded and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imagelift.influence.listing_photo import MAIN_PHOTO, check_rule, listing_category, photo_order
from imagelift.influence.sales import InputFileError, Rejections
from imagelift.records.categories import CATEGORY_IDS
from imagelift.records.category_record import REPORT_FIELDS
from imagelift.records.keys import ID_PATTERN, photo_position

# A week's sales are credited to the photo live at the middle of the week (Thursday noon): with a change
# mid-week that is the photo shown for most of it.
WEEK_MIDPOINT = pd.Timedelta(hours=84)

EXCLUSION_REASONS = {
    "failed": "classification failed (status failed)",
    "deleted": "a deletion with no live photo of that key to end (a duplicate, or before any upload)",
    "unmatched_key": "the image key is not images/<product_id>/<listing_id>/<file>",
    "bad_status": "status is missing or unknown",
    "bad_category": f"category is not one of {', '.join(map(str, sorted(CATEGORY_IDS)))}",
    "bad_event_time": "event_time is missing or not a time",
}


@dataclass
class CategoryRecords:
    """Records as the join needs them.

    ``frame``: usable classified records: product_id, listing_id (str), key (str, "" when absent), category
    (int 1-3), event_time (UTC, naive). ``segments``: per listing, from ``start`` on its category is ``category``
    (float; NaN while none of its photos is live), one row wherever a record changed the listing's live photos.
    """

    frame: pd.DataFrame
    records_read: int
    excluded: Counter
    segments: pd.DataFrame
    deletions_used: int = 0
    corrected: int = 0
    """Classified records whose category is a person's correction (``correction.category``), not the classifier's."""

    @property
    def used(self) -> int:
        """Classified records placed plus deletions that ended a live photo."""
        return len(self.frame) + self.deletions_used

    def excluded_dict(self) -> dict[str, int]:
        return {reason: int(self.excluded[reason]) for reason in EXCLUSION_REASONS if self.excluded.get(reason)}


def read_jsonl(name: str, data: bytes) -> Iterator[dict[str, Any]]:
    """JSON Lines of records, parsed as they are consumed; a line that is not a JSON object is an error naming the
    file and line (raised when that line is reached), a file that is not UTF-8 text one raised at once.

    Lazily, because a catalogue's records as dicts take several times the file's size, and the report only needs
    them once, while normalising them.
    """
    from imagelift.influence.sales import decode_text

    return _parsed_lines(name, decode_text(name, data).splitlines())


def _parsed_lines(name: str, lines: list[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(name, f"line {number} is not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise InputFileError(name, f"line {number} is not a JSON object")
        yield item


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


def normalise_records(items: Iterable[Mapping[str, Any]], listing_rule: str = MAIN_PHOTO) -> CategoryRecords:
    """Validate raw items (from JSON Lines or a DynamoDB scan; numbers may be Decimal) into usable records.

    ``listing_rule`` (imagelift.influence.listing_photo): which live photo, or photos, give a listing its category.
    """
    check_rule(listing_rule)
    rows = [{f: item.get(f) for f in REPORT_FIELDS} for item in items]
    frame = pd.DataFrame(rows, columns=list(REPORT_FIELDS), dtype=object)
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
    exclude("bad_status", ~frame["status"].isin(["classified", "deleted"]))
    product = _text(frame["product_id"])
    listing = _text(frame["listing_id"])
    frame = frame.assign(product_id=product, listing_id=listing)
    exclude(
        "unmatched_key",
        ~(frame["product_id"].str.fullmatch(ID_PATTERN) & frame["listing_id"].str.fullmatch(ID_PATTERN)),
    )
    category = pd.to_numeric(_text(frame["category"]).replace("", None), errors="coerce")
    # a person's correction replaces the classifier's category (which the record keeps beside it)
    corrected_category = pd.to_numeric(frame["correction"].map(_corrected_category), errors="coerce")
    corrected = (frame["status"] == "classified") & corrected_category.isin(sorted(CATEGORY_IDS))
    frame = frame.assign(category=category.mask(corrected, corrected_category), corrected=corrected)
    # a deletion needs no category: it only ends the photo of its key
    exclude("bad_category", (frame["status"] == "classified") & ~frame["category"].isin(sorted(CATEGORY_IDS)))
    event_time = pd.to_datetime(_text(frame["event_time"]), errors="coerce", utc=True, format="ISO8601")
    frame = frame.assign(event_time=event_time.dt.tz_localize(None))
    exclude("bad_event_time", frame["event_time"].isna())
    # a photo the seller says was live before its upload starts then (an unreadable live_from is ignored)
    live_from = pd.to_datetime(_text(frame["live_from"]), errors="coerce", utc=True, format="ISO8601")
    live_from = live_from.dt.tz_localize(None)
    earlier = (frame["status"] == "classified") & (live_from < frame["event_time"])
    frame = frame.assign(event_time=frame["event_time"].mask(earlier, live_from))

    # A version deleted for good keeps its upload time in event_time and says when it went in deleted_at: it was
    # live in between, so it counts as its upload and, at deleted_at, as the deletion that ends it.
    deleted_at = pd.to_datetime(_text(frame["deleted_at"]), errors="coerce", utc=True, format="ISO8601")
    deleted_at = deleted_at.dt.tz_localize(None)
    purged = (
        (frame["status"] == "deleted")
        & frame["category"].isin(sorted(CATEGORY_IDS))
        & (deleted_at > frame["event_time"]).fillna(False)
    )
    # The deletion of a purged version ends that version only (its upload time says which), not a newer upload.
    frame = frame.assign(ends_upload=frame["event_time"].where(purged))
    if purged.any():
        upload = frame[purged].assign(status="classified", ends_upload=pd.NaT)
        frame = pd.concat([frame.assign(event_time=frame["event_time"].where(~purged, deleted_at)), upload])
    deleted = (frame["status"] == "deleted").to_numpy()
    keys = _text(frame["key"])
    frame = frame.assign(
        key=keys,
        category=frame["category"].where(~deleted, 0).fillna(0).astype(np.int64),
        sequencer=_sequencer_key(frame["sequencer"]),
        deleted=deleted,
        photo_position=_positions(frame["photo_position"], keys),
    ).sort_values(["product_id", "listing_id", "event_time", "sequencer"], kind="stable")
    segments, deletions_used, deletions_unused = _sweep(frame, listing_rule)
    if deletions_unused:
        excluded["deleted"] += deletions_unused
    classified = frame[~frame["deleted"]]
    # Two records of one photo at the same instant: the later S3 event (higher sequencer) decides.
    classified = classified.drop_duplicates(["product_id", "listing_id", "key", "event_time"], keep="last")
    corrected_used = int(classified["corrected"].fillna(False).astype(bool).sum())
    classified = classified[["product_id", "listing_id", "key", "category", "event_time"]].reset_index(drop=True)
    return CategoryRecords(
        frame=classified,
        records_read=read,
        excluded=excluded,
        segments=segments,
        deletions_used=deletions_used,
        corrected=corrected_used,
    )


def _positions(stored: pd.Series, keys: pd.Series) -> list[int | None]:
    """Each record's gallery position: as stored, else (a record written before positions were) from its key."""
    numbers = pd.to_numeric(stored, errors="coerce").tolist()
    return [
        int(number) if number == number else photo_position(key.rsplit("/", 1)[-1]) if key else None
        for number, key in zip(numbers, keys.tolist(), strict=True)
    ]


def _corrected_category(correction: Any) -> Any:
    return correction.get("category") if isinstance(correction, Mapping) else None


def _sweep(frame: pd.DataFrame, listing_rule: str) -> tuple[pd.DataFrame, int, int]:
    """Walk each listing's records in time order, keeping its live photos (key -> upload time, sequencer, category).

    After every record that changes them, the listing's category is the one ``listing_rule`` gives its live photos
    (by default its main photo's: imagelift.influence.listing_photo), or NaN when none is live. Returns the
    segments, the deletions that ended a live photo and those that did not.
    """
    listing_code = pd.MultiIndex.from_arrays([frame["product_id"], frame["listing_id"]]).factorize()[0].tolist()
    keys = frame["key"].tolist()
    deleted = frame["deleted"].tolist()
    times = frame["event_time"].to_numpy(dtype="datetime64[ns]").view(np.int64).tolist()
    ends_upload = frame["ends_upload"].to_numpy(dtype="datetime64[ns]").view(np.int64).tolist()  # NaT: any
    sequencers = frame["sequencer"].tolist()
    categories = frame["category"].tolist()
    photo_positions = frame["photo_position"].tolist()
    positions: list[int] = []
    segment_categories: list[float] = []
    live: dict[str, tuple[tuple[int, int, str], int]] = {}
    current = -1
    used = unused = 0
    not_a_time = np.iinfo(np.int64).min
    for position, (code, key, gone, at, seq, cat, ends, photo_at) in enumerate(
        zip(listing_code, keys, deleted, times, sequencers, categories, ends_upload, photo_positions, strict=True)
    ):
        if code != current:
            live = {}
            current = code
        if gone:
            if ends != not_a_time and key in live and live[key][0][1] != ends:  # an older version went, not this one
                unused += 1
                continue
            if live.pop(key, None) is None:
                unused += 1
                continue
            used += 1
        else:
            live[key] = (photo_order(photo_at, at, seq), cat)
        positions.append(position)
        segment_categories.append(float(listing_category(live.values(), listing_rule)) if live else np.nan)
    rows = frame.iloc[positions]
    segments = pd.DataFrame(
        {
            "product_id": rows["product_id"].to_numpy(),
            "listing_id": rows["listing_id"].to_numpy(),
            "start": rows["event_time"].to_numpy(),
            "category": np.asarray(segment_categories, dtype=float),
        }
    )
    # several records at one instant: the state after the last of them holds from then on
    segments = segments.drop_duplicates(["product_id", "listing_id", "start"], keep="last").reset_index(drop=True)
    return segments, used, unused


# Reasons the join rejects a valid sales row, counted with the validation reasons in the same Rejections.
JOIN_REJECTION_REASONS = {
    "unknown_listing": "no classified photo record exists for this product and listing",
    "no_category_that_week": "the listing's first classified photo came after this week",
    "no_live_photo": "the listing's photos had been deleted by then (no live photo at mid-week)",
}


def join_categories(sales: pd.DataFrame, records: CategoryRecords, rejections: Rejections) -> pd.DataFrame:
    """Each listing-week's category: that of the newest photo live at the week's midpoint.

    Sales rows are rejected by the reasons in :data:`JOIN_REJECTION_REASONS`: listings with no usable record,
    weeks before a listing's first record, and weeks when all its photos had been deleted. Returns the joined
    rows with ``category`` (int) and ``listing_code`` (an integer per listing) added.
    """
    seg = records.segments
    # listings as integer codes: hashing two string columns once beats matching them in every step below
    known = pd.MultiIndex.from_arrays([seg["product_id"], seg["listing_id"]]).unique()
    listing = known.get_indexer(pd.MultiIndex.from_arrays([sales["product_id"], sales["listing_id"]]))
    is_known = listing >= 0
    rejections.add("unknown_listing", sales[~is_known])
    sales = sales[is_known].assign(listing_code=listing[is_known])

    left = sales.assign(_at=sales["week"] + WEEK_MIDPOINT).sort_values("_at", kind="stable")
    right = pd.DataFrame(
        {
            "listing_code": known.get_indexer(pd.MultiIndex.from_arrays([seg["product_id"], seg["listing_id"]])),
            "_at": seg["start"].astype(left["_at"].dtype),
            "category": seg["category"].to_numpy(),
            "_segment": True,
        }
    ).sort_values("_at", kind="stable")
    joined = pd.merge_asof(left, right, on="_at", by="listing_code", direction="backward")
    before_first = joined["_segment"].isna()
    rejections.add("no_category_that_week", joined[before_first])
    no_live = ~before_first & joined["category"].isna()
    rejections.add("no_live_photo", joined[no_live])
    joined = joined[~before_first & ~no_live].drop(columns=["_at", "_segment"])
    joined["category"] = joined["category"].astype(np.int64)
    return joined.reset_index(drop=True)
