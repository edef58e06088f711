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


# ------------------------------------------------------------------ every shape AWS delivers, records read one by one
def test_eventbridge_object_created_is_the_same_record_as_the_notification():
    from imagelift.services.s3_events import read_notification

    (direct,) = parse_s3_event(load("put_special_key.json"))
    (bridged,) = read_notification(load("eventbridge_object_created.json")).records
    assert (bridged.event_name, bridged.key, bridged.version_id, bridged.etag, bridged.size, bridged.sequencer) == (
        direct.event_name,
        direct.key,
        direct.version_id,
        direct.etag,
        direct.size,
        direct.sequencer,
    )


def test_eventbridge_object_deleted_names_the_deletion_type():
    from imagelift.services.s3_events import read_notification

    (record,) = read_notification(load("eventbridge_object_deleted.json")).records
    assert record.event_name == "ObjectRemoved:DeleteMarkerCreated" and record.is_removed
    assert not record.removes_version
    event = load("eventbridge_object_deleted.json")
    event["detail"]["deletion-type"] = "Permanently Deleted"
    (purge,) = read_notification(event).records
    assert purge.event_name == "ObjectRemoved:Delete" and purge.removes_version
    event["detail"]["reason"] = "Lifecycle Expiration"
    (expired,) = read_notification(event).records
    assert expired.event_name == "LifecycleExpiration:Delete" and expired.is_removed


def test_other_eventbridge_s3_events_are_neither_created_nor_removed():
    from imagelift.services.s3_events import read_notification

    event = load("eventbridge_object_created.json")
    event["detail-type"] = "Object Restore Completed"
    (record,) = read_notification(event).records
    assert not record.is_created and not record.is_removed


def test_sqs_batch_is_recognised_and_its_bodies_are_notifications():
    from imagelift.services.s3_events import is_sqs_batch, sqs_body

    batch = load("sqs_s3_notification.json")
    assert is_sqs_batch(batch) and not is_sqs_batch(load("put_special_key.json"))
    first, test_event = (sqs_body(message["body"]) for message in batch["Records"])
    assert parse_s3_event(first)[0].key == "images/P-1001/L-2001/summer sale été +1.jpg"
    assert parse_s3_event(test_event) == []
    sns = json.dumps({"Type": "Notification", "Message": batch["Records"][0]["body"]})
    assert sqs_body(sns) == first
    with pytest.raises(InvalidEventError, match="not JSON"):
        sqs_body("<xml/>")


def test_one_malformed_record_leaves_the_others_readable_and_keeps_its_key():
    from imagelift.services.s3_events import read_notification

    event = load("multiple_records.json")
    event["Records"][1]["s3"]["object"]["sequencer"] = "not-hex"
    del event["Records"][2]["eventTime"]
    event["Records"][3] = "not a record"
    notification = read_notification(event)
    assert [r.key for r in notification.records] == ["images/P-1001/L-2001/front view.jpg"]
    bad = {m.index: m for m in notification.malformed}
    assert sorted(bad) == [1, 2, 3]
    assert bad[1].key == "images/P-1002/L-2002/Größe 42 (Seite).jpg" and "sequencer" in str(bad[1].error)
    assert bad[2].key == "images/P-1003/L-2003/old+photo.png" and "eventTime" in str(bad[2].error)
    assert bad[3].key is None and bad[3].bucket is None


def test_a_key_that_is_not_utf8_is_undecodable():
    from imagelift.services.s3_events import decode_key, read_notification

    assert decode_key("images/a+b%2Bc/%C3%A9.jpg") == "images/a b+c/é.jpg"
    event = load("put_special_key.json")
    event["Records"][0]["s3"]["object"]["key"] = "images/P-1/L-1/%FF%FE.jpg"
    (bad,) = read_notification(event).malformed
    assert bad.error.code == "undecodable_key" and bad.key == "images/P-1/L-1/%FF%FE.jpg"


# ------------------------------------------------------------------ junk and ids
@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("images/SKU-400/", "folder_marker"),
        ("images/", "folder_marker"),
        ("images/P-1/L-1/.DS_Store", "os_metadata"),
        ("images/P-1/L-1/Thumbs.db", "os_metadata"),
        ("images/P-1/L-1/._photo.jpg", "os_metadata"),
        ("images/P-1/desktop.ini", "os_metadata"),
        ("sales/export.csv", "outside_prefix"),
        ("photo.jpg", "outside_prefix"),
    ],
)
def test_junk_keys_are_named(key, code):
    from imagelift.records.keys import junk_reason

    assert junk_reason(key, "images/")[0] == code


@pytest.mark.parametrize("key", ["images/P-1/L-1/x.jpg", "images/unsorted/photo 1.jpg", "images/P-1/L-1/.hidden.jpg"])
def test_photos_are_not_junk(key):
    from imagelift.records.keys import junk_reason

    assert junk_reason(key, "images/") is None


@pytest.mark.parametrize(
    "key",
    [
        "images/./L-1/x.jpg",
        "images/../L-1/x.jpg",
        "images/P-1/../x.jpg",
        "images/P-1/./x.jpg",
        "images/-P1/L-1/x.jpg",
        "images/P-1/-L1/x.jpg",
        "images/=SUM(A1)/L-1/x.jpg",
        "images/+P/L-1/x.jpg",
        "images/@P/L-1/x.jpg",
    ],
)
def test_path_and_formula_ids_are_unmatched(key):
    assert not parse_image_key(key, "images/").matched


@pytest.mark.parametrize("product", ["...", ".P", "P.", "P-", "_P", "P..1"])
def test_ids_with_dots_and_dashes_inside_still_match(product):
    assert parse_image_key(f"images/{product}/L-1/x.jpg", "images/").product_id == product
