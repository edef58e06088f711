"""``imagelift backfill`` on the deployed template (moto) with the real cascade: records what is missing, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ingest_stack import DeployedStack, s3_event

from imagelift.cli import main
from imagelift.services.backfill import BackfillService
from imagelift.services.classify_service import ClassifyService


class CountingClassifier:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def classify_bytes(self, data: bytes, name: str = ""):
        self.calls += 1
        return self.inner.classify_bytes(data, name=name)


@pytest.fixture()
def counting(cascade) -> CountingClassifier:
    return CountingClassifier(cascade)


@pytest.fixture()
def service(stack: DeployedStack, counting: CountingClassifier) -> ClassifyService:
    return ClassifyService.from_env(classifier=counting)


@pytest.fixture()
def backfiller(stack: DeployedStack, counting: CountingClassifier) -> BackfillService:
    return BackfillService.from_env(classifier=counting)


def test_backfill_records_what_is_missing_and_a_rerun_does_nothing(
    stack: DeployedStack,
    service: ClassifyService,
    backfiller: BackfillService,
    counting: CountingClassifier,
    labelled_photos,
):
    prefix = "images/bf1-"
    photos = labelled_photos[::8]  # 5 photos over the three folders
    keys = stack.upload_listings(prefix, photos)
    bad_key = f"{prefix}P-x/L-x/broken.jpg"
    stack.s3.put_object(Bucket=stack.uploads_bucket, Key=bad_key, Body=photos[0][0].read_bytes()[:500])
    # one photo already came through its event; one was deleted (a delete marker hides it)
    service.handle_event(s3_event(stack.put_photo(f"{prefix}P-e/L-e/evented.jpg", photos[1][0].read_bytes())))
    stack.s3.put_object(Bucket=stack.uploads_bucket, Key=f"{prefix}P-d/L-d/deleted.jpg", Body=b"x")
    stack.s3.delete_object(Bucket=stack.uploads_bucket, Key=f"{prefix}P-d/L-d/deleted.jpg")
    counting.calls = 0

    seen = []
    summary = backfiller.run(stack.uploads_bucket, prefix, concurrency=3, progress=lambda *a: seen.append(a[:2]))
    report = summary.to_dict()
    assert report["listed"] == len(keys) + 2
    assert (report["classified"], report["failed"], report["already_recorded"]) == (len(keys), 1, 1)
    assert report["errors"] == [] and summary.complete
    assert sum(report["categories"].values()) == len(keys)
    assert sorted(seen) == [(i, len(keys) + 2) for i in range(1, len(keys) + 3)]
    assert counting.calls == len(keys) + 1  # the truncated file reaches the decoder; the evented one does not

    for key, (path, _) in zip(keys, photos, strict=True):
        (item,) = stack.items(key)
        assert item["status"] == "classified" and item["source"] == "backfill" and item["sequencer"] == ""
        assert item["category"] == counting.inner.classify_bytes(path.read_bytes()).category
        assert item["version_id"] and item["event_name"] == "Backfill" and item["event_time"].endswith("Z")
    assert stack.items(bad_key)[0]["error"]["code"] == "truncated"
    assert stack.items(f"{prefix}P-d/L-d/deleted.jpg") == []

    counting.calls = 0
    again = backfiller.run(stack.uploads_bucket, prefix, concurrency=2).to_dict()
    assert again["already_recorded"] == len(keys) + 2 and again["classified"] == again["failed"] == 0
    assert counting.calls == 0


def test_a_real_event_for_a_backfilled_version_supersedes_it(
    stack: DeployedStack, service: ClassifyService, backfiller: BackfillService, labelled_photos
):
    key = "images/bf2-P/L/photo.jpg"
    record = stack.put_photo(key, labelled_photos[2][0].read_bytes())
    backfiller.run(stack.uploads_bucket, "images/bf2-", concurrency=1)
    assert stack.items(key)[0]["source"] == "backfill"
    assert service.handle_event(s3_event(record)).counts == {"classified": 1}
    (item,) = stack.items(key)
    assert item["source"] == "s3_event" and item["sequencer"] > ""


def test_backfill_counts_transient_faults_and_a_rerun_finishes(
    stack: DeployedStack, backfiller: BackfillService, labelled_photos, monkeypatch
):
    prefix = "images/bf3-"
    keys = stack.upload_listings(prefix, labelled_photos[:3])
    original = backfiller.photos.client.get_object

    def throttle_first(**kwargs):
        if kwargs["Key"] == keys[0]:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "GetObject")
        return original(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(backfiller.photos.client, "get_object", throttle_first)
        first = backfiller.run(stack.uploads_bucket, prefix, concurrency=2)
    assert not first.complete and [k for k, _ in first.errors] == [keys[0]] and "SlowDown" in first.errors[0][1]
    assert stack.items(keys[0]) == []
    second = backfiller.run(stack.uploads_bucket, prefix, concurrency=2)
    assert second.complete and second.outcomes["classified"] == 1 and second.outcomes["duplicate"] == 2
    assert len(stack.items(keys[0])) == 1


def test_backfill_command(stack: DeployedStack, models_dir: Path, labelled_photos, monkeypatch, capsys):
    monkeypatch.setenv("IMAGELIFT_MODELS_DIR", str(models_dir))
    keys = stack.upload_listings("images/bf4-", labelled_photos[:2])
    code = main(["backfill", "--bucket", stack.uploads_bucket, "--prefix", "images/bf4-", "--concurrency", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["listed"] == 2 and report["classified"] == 2
    assert "2/2" in err  # the progress bar
    assert all(stack.items(k)[0]["status"] == "classified" for k in keys)

    assert main(["backfill", "--bucket", stack.uploads_bucket, "--prefix", "images/bf4-", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["already_recorded"] == 2
    assert main(["backfill", "--bucket", stack.uploads_bucket, "--concurrency", "0"]) == 2
    assert main(["backfill", "--bucket", "no-such-bucket", "--no-progress"]) == 1
    assert "cannot list" in capsys.readouterr().err


def test_backfill_states_when_the_current_photos_went_live(
    stack: DeployedStack, service: ClassifyService, backfiller: BackfillService, labelled_photos, tmp_path, capsys
):
    from imagelift.records.live_from import LiveFrom, parse_moment

    prefix = "images/bf5-"
    keys = stack.upload_listings(prefix, labelled_photos[:2])
    # one more photo came in through its event before the seller ran the backfill
    evented = f"{prefix}P-e/L-e/evented.jpg"
    service.handle_event(s3_event(stack.put_photo(evented, labelled_photos[2][0].read_bytes())))

    summary = backfiller.run(
        stack.uploads_bucket, prefix, concurrency=2, live_from=LiveFrom(since=parse_moment("2024-01-01"))
    ).to_dict()
    assert summary["classified"] == 2 and summary["already_recorded"] == 1
    assert summary["live_from_set"] == 3  # the new records and the evented one
    for key in [*keys, evented]:
        (item,) = stack.items(key)
        assert item["live_from"] == "2024-01-01T00:00:00.000Z"
        assert item["event_time"] > item["live_from"]  # the upload time is kept as it was

    # a per-listing file names one listing's own date; a rerun with the same statement changes nothing
    listing = keys[0].split("/")[2]
    (tmp_path / "live.csv").write_text(f"listing_id,live_from\n{listing},2024-06-03\n")
    args = ["backfill", "--bucket", stack.uploads_bucket, "--prefix", prefix, "--no-progress"]
    assert main([*args, "--live-since", "2024-01-01", "--live-from", str(tmp_path / "live.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["live_from_set"] == 1
    assert stack.items(keys[0])[0]["live_from"] == "2024-06-03T00:00:00.000Z"
    assert main([*args, "--live-since", "next week"]) == 2
    assert "'next week' is not a date" in capsys.readouterr().err


def test_backfill_skips_what_is_not_a_photo(
    stack: DeployedStack, backfiller: BackfillService, counting: CountingClassifier
):
    prefix = "images/bf-junk-"
    for key in (f"{prefix}P/L/.DS_Store", f"{prefix}P/L/._front.jpg", f"{prefix}P/", f"{prefix}P/L/Thumbs.db"):
        stack.s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=b"\x00\x05\x16\x07")
    summary = backfiller.run(stack.uploads_bucket, prefix)
    assert dict(summary.outcomes) == {"skipped": 3} and summary.errors == []
    assert counting.calls == 0
    assert stack.items(f"{prefix}P/L/.DS_Store") == [] and stack.items(f"{prefix}P/L/._front.jpg") == []
