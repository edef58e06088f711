"""S3 event parsing, image keys, sequencer order and item keys: pure functions of the ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagelift.records.keys import normalize_sequencer, parse_image_key, sequencer_from_time, version_sk
from imagelift.services.s3_events import InvalidEventError, parse_s3_event

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_put_event_key_is_url_decoded_spaces_plus_and_non_ascii():
    (record,) = parse_s3_event(load("put_special_key.json"))
    assert record.key == "images/P-1001/L-2001/summer sale été +1.jpg"
    assert record.is_created and not record.is_removed
    assert record.version_id == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert record.size == 48213
    assert record.sequencer == "0067A1B2C3D4E5F601".ljust(32, "0")


def test_every_record_of_a_multi_record_event_is_decoded():
    records = parse_s3_event(load("multiple_records.json"))
    assert [r.key for r in records] == [
        "images/P-1001/L-2001/front view.jpg",
        "images/P-1002/L-2002/Größe 42 (Seite).jpg",
        "images/P-1003/L-2003/old+photo.png",
        "images/unsorted/photo 1.jpg",
    ]
    assert [r.event_name for r in records] == [
        "ObjectCreated:Put",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:Delete",
        "ObjectCreated:Put",
    ]
    assert records[2].is_removed and records[2].etag is None


def test_delete_marker_event():
    (record,) = parse_s3_event(load("delete_marker.json"))
    assert record.event_name == "ObjectRemoved:DeleteMarkerCreated"
    assert record.is_removed
    assert record.key == "images/P-1001/L-2001/summer sale été +1.jpg"


def test_s3_test_event_has_no_records():
    assert parse_s3_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "not an S3 notification"),
        ({"detail": {}}, "no Records"),
        ({"Records": [{"eventSource": "aws:sqs"}]}, "not aws:s3"),
        ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}, "lacks"),
    ],
)
def test_malformed_events_are_refused_clearly(event, message):
    with pytest.raises(InvalidEventError, match=message):
        parse_s3_event(event)


def test_bad_sequencer_is_refused():
    event = load("put_special_key.json")
    event["Records"][0]["s3"]["object"]["sequencer"] = "not-hex"
    with pytest.raises(InvalidEventError, match="sequencer"):
        parse_s3_event(event)


def test_missing_sequencer_falls_back_to_event_time_in_order():
    event = load("put_special_key.json")
    del event["Records"][0]["s3"]["object"]["sequencer"]
    (record,) = parse_s3_event(event)
    assert not record.sequencer_from_event
    assert sequencer_from_time("2026-11-23T09:15:02.418Z") == record.sequencer
    assert sequencer_from_time("2026-11-23T09:15:02.419Z") > record.sequencer


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
        ("09FF", "0A"),  # AWS: right-pad the shorter with zeros, then compare: 09FF < 0A00
        ("0a", "0B"),  # case does not matter
        ("0055AED6DCD90281E5", "0055AED6DCD90281E500FF"),  # a longer one that continues the shorter
    ],
)
def test_normalised_sequencers_sort_in_event_order(older, newer):
    assert normalize_sequencer(older) < normalize_sequencer(newer)


def test_equal_sequencers_of_different_length_are_equal_after_padding():
    assert normalize_sequencer("0A") == normalize_sequencer("0A00")


@pytest.mark.parametrize(
    ("key", "ids"),
    [
        ("images/P-1001/L-2001/front.jpg", ("P-1001", "L-2001", "front.jpg")),
        ("images/p_1.2/l.3-x/summer sale été +1.jpg", ("p_1.2", "l.3-x", "summer sale été +1.jpg")),
        ("images/" + "a" * 128 + "/b/c.png", ("a" * 128, "b", "c.png")),
    ],
)
def test_matching_keys_give_product_and_listing(key, ids):
    parsed = parse_image_key(key, "images/")
    assert parsed.matched
    assert (parsed.product_id, parsed.listing_id, parsed.file_name) == ids


@pytest.mark.parametrize(
    "key",
    [
        "images/unsorted/photo 1.jpg",  # no listing level
        "images/P 1/L-1/x.jpg",  # space in an id
        "images/P-1/L-1/sub/x.jpg",  # one level too deep
        "images/" + "a" * 129 + "/b/c.png",  # id too long
        "images/Pé/L/x.jpg",  # non-ASCII id
        "uploads/P-1/L-1/x.jpg",  # other prefix
        "images/P-1/L-1/",  # no file name
    ],
)
def test_other_keys_are_unmatched(key):
    parsed = parse_image_key(key, "images/")
    assert not parsed.matched
    assert parsed.product_id is None and parsed.listing_id is None


def test_version_sort_keys():
    assert version_sk(version_id="abc", etag="e1", sequencer="S", removed=False) == "v#abc"
    assert version_sk(version_id="abc", etag=None, sequencer="S", removed=True) == "v#abc"
    assert version_sk(version_id=None, etag="e1", sequencer="S", removed=False) == "etag#e1"
    assert version_sk(version_id=None, etag=None, sequencer="S", removed=True) == "delete#S"
