"""When a listing's current photos went live, as the seller states it (``imagelift backfill --live-since`` or a
``listing_id,live_from`` CSV), for photos that were shown before their upload to the bucket.

A record's ``live_from`` moves the start of its photo back: the report credits weeks from then on to it instead of
rejecting them as ``no_category_that_week``. It never moves a photo later than its upload.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from imagelift.errors import PermanentError
from imagelift.records.keys import ID_PATTERN


class LiveFromError(PermanentError, ValueError):
    """A live-from date or file that cannot be read; the message says where."""

    code = "bad_live_from"


def parse_moment(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it names no zone)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise LiveFromError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LiveFrom:
    """``since`` for every listing, unless ``by_listing`` names the listing (by ``(product_id, listing_id)``, or by
    ``(None, listing_id)`` when the file gave no product)."""

    since: datetime | None = None
    by_listing: Mapping[tuple[str | None, str], datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.since is not None or bool(self.by_listing)

    def for_listing(self, product_id: str | None, listing_id: str | None) -> datetime | None:
        if listing_id is None:
            return None
        found = self.by_listing.get((product_id, listing_id)) or self.by_listing.get((None, listing_id))
        return found or self.since

    def for_record(self, product_id: str | None, listing_id: str | None, event_time: str) -> str | None:
        """The ``live_from`` to store on a record uploaded at ``event_time``: only a time before it."""
        moment = self.for_listing(product_id, listing_id)
        if moment is None or moment >= parse_moment(event_time):
            return None
        return iso(moment)


def read_live_from_csv(name: str, data: bytes) -> dict[tuple[str | None, str], datetime]:
    """``listing_id,live_from`` rows (a ``product_id`` column is optional); every bad line is an error naming it."""
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if not {"listing_id", "live_from"} <= columns.keys():
        raise LiveFromError(f"{name}: needs the columns listing_id,live_from (it has {', '.join(columns) or 'none'})")
    out: dict[tuple[str | None, str], datetime] = {}
    for row in reader:
        line = reader.line_num
        listing = (row.get(columns["listing_id"]) or "").strip()
        product = (row.get(columns["product_id"]) or "").strip() if "product_id" in columns else ""
        if not listing and not (row.get(columns["live_from"]) or "").strip():
            continue
        if not ID_PATTERN.fullmatch(listing) or (product and not ID_PATTERN.fullmatch(product)):
            raise LiveFromError(f"{name}: line {line}: {listing!r} is not a listing id")
        try:
            moment = parse_moment(row.get(columns["live_from"]) or "")
        except LiveFromError as exc:
            raise LiveFromError(f"{name}: line {line}: {exc}") from exc
        out[(product or None, listing)] = moment
    return out
