"""The key scheme: image keys, ImageCategories item keys and the event order, in one place.

- Image key: ``<images prefix><product_id>/<listing_id>/<file name>``, ids matching :data:`ID_PATTERN`. The prefix
  is configuration (``StorageConfig.images_prefix``); a key under the prefix that does not match is still
  recorded, unmatched. What is not a photo at all (:func:`junk_reason`: folder markers, OS metadata files, keys
  outside the prefix) is skipped.
- ``pk`` = ``s3://<bucket>/<key>``: every record of one object sits in one partition, so its whole history is one
  Query and "what is this object now" is the item with the greatest ``sequencer``.
- ``sk`` = the object version the record is about: ``v#<version id>`` (the uploads bucket is versioned; a delete
  marker is a version too), ``etag#<etag>`` in a bucket without versioning, ``delete#<sequencer>`` for a delete
  there. A new upload to the same key is a new item, so the report can join each week of sales to the category
  that was live then. Simulated records use the version form with a made-up version id (``v#sim-<n>``).
- Photo position (:func:`photo_position`): where a photo sits in its listing's gallery, from its file name. The
  main photo (the one search results show) is ``main.<ext>`` or Amazon's ``<ASIN or SKU>.MAIN.<ext>`` (position 0);
  a gallery photo carries its position as a leading number (``01-side.jpg``, ``2_back.jpg``, ``3.jpg``) or as
  Amazon's ``.PT01`` ... ``.PT08`` variant code. Of a listing's live photos the lowest position is the main photo;
  a photo without a position comes after every numbered one (:func:`gallery_rank`), and among photos of the same
  rank the newest upload counts, which is also how a listing whose files carry no position is judged.
- ``sequencer``: S3's event sequencer, upper-case and right-padded with zeros to :data:`SEQUENCER_WIDTH` hex digits
  (how AWS says to compare sequencers of different lengths), so string order is event order. Backfill records
  carry the empty sequencer, older than any event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from imagelift.errors import PermanentError

ID_PATTERN: re.Pattern[str] = re.compile(r"(?!\.{1,2}(?:/|$))(?![-=+@])[A-Za-z0-9_.-]{1,128}")
"""A product or listing id (use with ``fullmatch``): letters, digits, ``_.-``, at most 128; never ``.`` or ``..``
(path segments, not ids) and never starting with ``-`` (or ``=``, ``+``, ``@``: a spreadsheet would run the id of
a CSV report as a formula)."""
ID_RULE = "letters, digits, _ . - (1-128), not . or .., not starting with - = + @"
""":data:`ID_PATTERN` in words, for messages."""
SEQUENCER_WIDTH = 32
"""Sequencers are stored right-padded with zeros to this many hex digits (S3's are 16 to 20 today)."""
BACKFILL_SEQUENCER = ""
"""The sequencer of a record made without an event: older than every event, so any event supersedes it."""


class InvalidSequencerError(PermanentError, ValueError):
    """A sequencer or event time that cannot be put in event order."""


@dataclass(frozen=True)
class ImageKey:
    product_id: str | None
    listing_id: str | None
    file_name: str

    @property
    def matched(self) -> bool:
        return self.product_id is not None

    @property
    def position(self) -> int | None:
        """The photo's place in its listing's gallery (:func:`photo_position`)."""
        return photo_position(self.file_name)


@lru_cache(maxsize=8)
def _image_key_pattern(images_prefix: str) -> re.Pattern[str]:
    id_ = ID_PATTERN.pattern
    return re.compile(rf"{re.escape(images_prefix)}({id_})/({id_})/([^/]+)")


def parse_image_key(key: str, images_prefix: str) -> ImageKey:
    """``<images_prefix><product_id>/<listing_id>/<file>`` -> ids; any other key gives an unmatched ImageKey."""
    match = _image_key_pattern(images_prefix).fullmatch(key)
    if match:
        return ImageKey(match.group(1), match.group(2), match.group(3))
    return ImageKey(None, None, key.rsplit("/", 1)[-1])


OS_METADATA_FILES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", ".localized", "icon\r"})
"""File names (lower case) that operating systems and file managers write beside photos."""


def junk_reason(key: str, images_prefix: str) -> tuple[str, str] | None:
    """``(code, message)`` when ``key`` cannot be a seller's photo, so nothing is recorded for it; else None.

    ``folder_marker``: a key ending in ``/`` (what the console's "Create folder" writes); ``os_metadata``:
    ``.DS_Store``, ``Thumbs.db``, AppleDouble ``._<name>`` files and the like; ``outside_prefix``: not under the
    images prefix at all (a notification filter that is wider than the layout).
    """
    if not key.startswith(images_prefix):
        return "outside_prefix", f"the key is not under {images_prefix!r}"
    if key.endswith("/"):
        return "folder_marker", "a folder marker (a key ending in '/'), not a photo"
    name = key.rsplit("/", 1)[-1]
    if name.lower() in OS_METADATA_FILES or name.startswith("._"):
        return "os_metadata", f"{name!r} is a file the operating system writes, not a photo"
    return None


def image_key(images_prefix: str, product_id: str, listing_id: str, file_name: str) -> str:
    """The key a seller's photo of one listing is uploaded under (the inverse of :func:`parse_image_key`)."""
    return f"{images_prefix}{product_id}/{listing_id}/{file_name}"


def object_pk(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def version_sk(*, version_id: str | None, etag: str | None, sequencer: str, removed: bool) -> str:
    """Which item a record belongs to: the object version."""
    if version_id:
        return f"v#{version_id}"
    if etag and not removed:
        return f"etag#{etag}"
    return f"delete#{sequencer}"


def normalize_sequencer(raw: str) -> str:
    """S3 sequencer -> a string whose order is event order: upper-case hex, right-padded with zeros.

    AWS: sequencers of one key compare as hex strings after right-padding the shorter with zeros.
    """
    value = raw.strip().upper()
    if not value or not re.fullmatch(r"[0-9A-F]+", value):
        raise InvalidSequencerError(f"S3 sequencer {raw!r} is not a hexadecimal string")
    return value.ljust(SEQUENCER_WIDTH, "0")


def parse_event_time(text: str) -> datetime:
    """An ISO 8601 event time (``Z`` allowed) as an aware datetime; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise InvalidSequencerError(f"eventTime {text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sequencer_from_time(event_time: str) -> str:
    """Stand-in sequencer for events without one (moto's notifications): microseconds since the epoch, in hex."""
    moment = parse_event_time(event_time)
    return normalize_sequencer(f"{int(moment.timestamp() * 1_000_000):016X}")


MAIN_PHOTO_POSITION = 0
"""The position of a photo named as the listing's main one (``main.jpg``, ``<ASIN>.MAIN.jpg``)."""
MAX_PHOTO_POSITION = 99
"""Leading numbers have one or two digits: longer runs are camera counters or dates (``100_0123.JPG``,
``20240105_shoe.jpg``), not gallery positions."""
UNPOSITIONED_RANK = MAX_PHOTO_POSITION + 1
"""The rank of a photo whose name carries no position: after every numbered photo."""

# The name's stem ends in a "main" word or in Amazon's variant code: MAIN, PT01..PT08 (Amazon accepts up to PT08,
# two digits are read so a longer gallery elsewhere still sorts).
_NAMED_VARIANT = re.compile(r"(?:^|.*[-_. ])(main|pt(\d{2}))", re.IGNORECASE)
_LEADING_POSITION = re.compile(r"(\d{1,2})(?=[-_. ]|$)")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


@lru_cache(maxsize=65536)
def photo_position(file_name: str) -> int | None:
    """The gallery position a photo's file name gives: 0 for the main photo, 1-99 for a numbered gallery photo,
    None when the name carries no position.

    ``main.jpg``, ``sneaker-main.jpg``, ``B07ABC.MAIN.jpg`` -> 0; ``01-front.jpg``, ``1_side.heic``, ``3.jpg`` -> 1, 1,
    3; ``B07ABC.PT02.jpg`` -> 2; ``IMG_1234.JPG``, ``100_0123.JPG``, ``photo-2.jpg`` -> None. Case is ignored.
    """
    stem = _EXTENSION.sub("", file_name.strip())
    named = _NAMED_VARIANT.fullmatch(stem)
    if named:
        return MAIN_PHOTO_POSITION if named.group(2) is None else int(named.group(2))
    leading = _LEADING_POSITION.match(stem)
    if leading:
        return int(leading.group(1))
    return None


def gallery_rank(position: int | None) -> int:
    """Sort order of photos in a listing, front first: the lowest rank among its live photos is the main photo."""
    if position is None or not 0 <= position <= MAX_PHOTO_POSITION:
        return UNPOSITIONED_RANK
    return int(position)
