"""The ImageCategories item: one record per photo version, typed, and the one way such a record is built.

The event path, the backfill, the simulation and the tests all call :meth:`CategoryRecord.build`; the table adapter
stores :meth:`CategoryRecord.to_item` and reads back with :meth:`CategoryRecord.from_item`. Fields the classifier adds
that this module does not name (a new diagnostic, say) travel in :attr:`CategoryRecord.extra` and round-trip as
top-level attributes, so the classifier can grow without an edit here. ``None`` is never stored.

The report reads only :data:`REPORT_FIELDS` and accepts records that carry nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from imagelift.records.categories import by_id
from imagelift.records.keys import object_pk, parse_image_key, photo_position, version_sk

STATUS_CLASSIFIED = "classified"
STATUS_FAILED = "failed"
STATUS_DELETED = "deleted"
STATUSES = (STATUS_CLASSIFIED, STATUS_FAILED, STATUS_DELETED)

SOURCE_EVENT = "s3_event"
SOURCE_EVENT_WITHOUT_SEQUENCER = "s3_event_without_sequencer"
"""The event had no sequencer (moto's notifications): its order comes from the event time."""
SOURCE_BACKFILL = "backfill"
SOURCE_SIMULATED = "simulated"

REPORT_FIELDS = (
    "product_id",
    "listing_id",
    "status",
    "category",
    "event_time",
    "sequencer",
    "key",
    "deleted_at",
    "live_from",
    "correction",
    "photo_position",
)
"""What the weekly report reads of each record (``sequencer`` breaks ties of ``event_time``; ``deleted_at`` ends a
version whose record keeps its upload ``event_time``; ``live_from``, when set, moves the photo's start back;
``correction``, when set, gives the category a person decided in place of the classifier's; ``photo_position``
says which photo of a listing is its main one, read from ``key`` when a record predates it)."""


@dataclass(frozen=True)
class CategoryRecord:
    """One ImageCategories item. Key and order fields first, then where the photo belongs, then the outcome."""

    pk: str
    """``s3://<bucket>/<key>`` (imagelift.records.keys)."""
    sk: str
    """The object version: ``v#<version id>``, ``etag#<etag>`` or ``delete#<sequencer>`` (imagelift.records.keys)."""
    bucket: str
    key: str
    sequencer: str
    """Normalised S3 sequencer; empty for a backfill record."""
    event_time: str
    """ISO 8601, UTC: when the photo version was uploaded (or deleted, for a record made by the delete)."""
    status: str
    """One of :data:`STATUSES`."""
    version_id: str | None = None
    etag: str | None = None
    event_name: str | None = None
    """``ObjectCreated:Put``, ``ObjectRemoved:DeleteMarkerCreated``, ``Backfill``..."""
    source: str | None = None
    """``s3_event``, ``s3_event_without_sequencer``, ``backfill`` or ``simulated``."""
    recorded_at: str | None = None
    """When this item was last written (every write sets it; a rewrite checks it has not changed)."""
    revision: int | None = None
    """Absent on a version's first record (revision 1); 2, 3... after each re-classification."""
    reclassifications: list[dict[str, Any]] | None = None
    """One entry per re-classification, oldest first: ``{at, reason, run_id, previous}``, ``previous`` holding the
    replaced outcome (``status``, ``category``, ``decided_by``, ``models``, ``thresholds``, ``classified_at``)."""
    matched: bool | None = None
    """The key follows ``<images prefix><product_id>/<listing_id>/<file>``; unmatched records stay out of reports."""
    file_name: str | None = None
    photo_position: int | None = None
    """The photo's place in its listing's gallery from its file name: 0 main, 1-99 numbered, absent none
    (imagelift.records.keys.photo_position); records written before it was stored give it through :attr:`position`."""
    product_id: str | None = None
    listing_id: str | None = None
    category: int | None = None
    category_name: str | None = None
    decided_by: str | None = None
    """``mtcnn``, ``movenet`` (the pose stage, imagelift.vision.pose_face), ``yolo``, ``handtrack`` (the hand stage,
    imagelift.vision.hand_stage) or ``none``."""
    faces: list[dict[str, Any]] | None = None
    persons: list[dict[str, Any]] | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    timings_ms: dict[str, float] | None = None
    models: dict[str, str] | None = None
    thresholds: dict[str, Any] | None = None
    person_net: str | None = None
    """Which YOLO net's boxes are in ``persons`` (e.g. ``yolov4-tiny``)."""
    person_pass: str | None = None
    """Which pass found the person: ``full`` (whole photo) or ``padded`` (shrunk into a grey canvas)."""
    person_scores: dict[str, dict[str, float]] | None = None
    """Near misses: each net's best person score in each pass that ran, ``{net: {pass: score}}``."""
    best_face_score: float | None = None
    """Near miss: the best score of a face MTCNN reported that did not count."""
    face_gate: dict[str, Any] | None = None
    """The person gate in front of the face stage: ``{net, person, threshold, open}``; ``open`` False means MTCNN
    did not run (the primary net saw no person at ``threshold``), so ``best_face_score`` is 0 without a look."""
    pose_face: dict[str, Any] | None = None
    """Where the pose stage ran (a person, no face): MoveNet's best head score over the person boxes (``score``),
    its ``threshold``, whether it made the photo category 1 (``fired``), the ``box`` it scored best and how many
    ``boxes`` it looked at."""
    review: bool | None = None
    """A score lies within the calibrated margin of its threshold: the category is worth a human look."""
    hand_vote: dict[str, Any] | None = None
    """Where the hand stage ran: the person near miss it checks first (``person``), HandTrack's best hand score on
    each input (``stretched``, ``padded``; None where an earlier vote had already failed, so the net was not run)
    and whether it made the photo worn (``fired``)."""
    hands: list[dict[str, Any]] | None = None
    """Hand boxes (photo pixels) when the hand stage made the photo worn."""
    error: dict[str, str] | None = None
    """``{code, message}`` of a failed record."""
    size_bytes: int | None = None
    classified_at: str | None = None
    deleted_at: str | None = None
    """ISO 8601, UTC: when a ``deleted`` record's version was deleted (its ``event_time`` stays the upload's)."""
    live_from: str | None = None
    """ISO 8601, UTC: when the seller says this photo went live, when that was before its upload (backfill)."""
    correction: dict[str, Any] | None = None
    """A person's verdict beside the classifier's (``category`` and ``category_name`` stay the classifier's):
    ``{category, category_name, by, at, note, classifier_category}``; the report and the seller's views use its
    ``category``. A later correction replaces it and keeps it in ``earlier``."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Attributes this module does not name, kept as they came."""

    @classmethod
    def build(
        cls,
        *,
        bucket: str,
        key: str,
        images_prefix: str,
        sequencer: str,
        event_time: str,
        status: str,
        version_id: str | None = None,
        etag: str | None = None,
        **values: Any,
    ) -> CategoryRecord:
        """A record of one photo version: keys, ids from the image key, ``category_name`` from ``category``.

        ``values`` are any further fields (an outcome from the classifier, say); names this class lacks go to
        :attr:`extra`.
        """
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {STATUSES}")
        parsed = parse_image_key(key, images_prefix)
        ids: dict[str, Any] = {"matched": parsed.matched, "file_name": parsed.file_name}
        if parsed.matched:
            ids.update(product_id=parsed.product_id, listing_id=parsed.listing_id, photo_position=parsed.position)
        category = values.get("category")
        if category is not None and values.get("category_name") is None:
            values["category_name"] = by_id(int(category)).name
        sk = version_sk(version_id=version_id, etag=etag, sequencer=sequencer, removed=status == STATUS_DELETED)
        return cls.from_item(
            {
                **values,
                **ids,
                "pk": object_pk(bucket, key),
                "sk": sk,
                "bucket": bucket,
                "key": key,
                "sequencer": sequencer,
                "event_time": event_time,
                "status": status,
                "version_id": version_id,
                "etag": etag,
            }
        )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> CategoryRecord:
        """An item as stored (plain numbers: see imagelift.adapters.dynamodb_codec); unknown attributes -> extra."""
        named: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in item.items():
            if v is not None:
                (named if k in _NAMED else extra)[k] = v
        if not named.keys() >= _REQUIRED:
            missing = sorted(_REQUIRED - named.keys())
            raise ValueError(f"an ImageCategories item needs {', '.join(missing)}")
        return cls(**named, extra=extra)

    def to_item(self) -> dict[str, Any]:
        """The item to store: every field that is not None, extra attributes beside them."""
        item = {k: v for k, v in self.extra.items() if v is not None}
        item.update((k, v) for k, v in vars(self).items() if v is not None and k != "extra")
        return item

    @property
    def current_category(self) -> int | None:
        """The category that counts: a person's correction if there is one, else the classifier's."""
        if self.correction and self.correction.get("category") is not None:
            return int(self.correction["category"])
        return self.category

    @property
    def position(self) -> int | None:
        """The stored gallery position, or for an older record the one its key's file name gives."""
        if self.photo_position is not None:
            return int(self.photo_position)
        return photo_position(self.file_name or self.key.rsplit("/", 1)[-1])

    def report_fields(self) -> dict[str, Any]:
        """What the weekly report reads of this record."""
        item = self.to_item()
        return {name: item[name] for name in REPORT_FIELDS if name in item}


_NAMED: frozenset[str] = frozenset(f.name for f in fields(CategoryRecord) if f.name != "extra")
_REQUIRED = frozenset({"pk", "sk", "bucket", "key", "sequencer", "event_time", "status"})
