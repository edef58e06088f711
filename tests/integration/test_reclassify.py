"""``imagelift reclassify`` and the backfill's target on the deployed template (moto) with the real cascade: stale
records are rewritten once as a new revision with the reason, a rerun does nothing, an --all run resumes by id;
backfill finds its table from the stack's outputs or fails once before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from ingest_stack import DeployedStack, s3_event, s3_record

from imagelift.cli import main
from imagelift.config import VisionConfig
from imagelift.services.backfill import BackfillService
from imagelift.services.classify_service import ClassifyService
from imagelift.services.reclassify import ReclassifyService, drift


class Counting:
    """The cascade, counting the photos it is given (models and thresholds as the cascade's)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self.models, self.thresholds = inner.models, inner.thresholds

    def classify_bytes(self, data: bytes, name: str = ""):
        self.calls += 1
        return self.inner.classify_bytes(data, name=name)


@pytest.fixture(scope="module")
def strict_cascade(models_dir: Path):
    """The cascade after a threshold change: a person needs 0.999 in both passes (worn-look photos move to product)."""
    from imagelift.vision.cascade import Cascade

    strict = {"person_min_confidence": 0.999, "person_padded_min_confidence": 0.999}
    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, **strict))


def test_stale_records_are_rewritten_once_with_the_reason(
    stack: DeployedStack, cascade, strict_cascade, labelled_photos
):
    prefix = "images/rc1-"
    # worn-look photos the current cascade calls worn, so that the stricter bar can move them
    worn = [p for p in labelled_photos if p[1] == 2 and cascade.classify_bytes(p[0].read_bytes()).category == 2]
    photos = worn[:3] + [p for p in labelled_photos if p[1] == 3][:1]
    keys = stack.upload_listings(prefix, photos)
    BackfillService.from_env(classifier=cascade).run(stack.uploads_bucket, prefix, concurrency=2)
    before = {key: stack.items(key)[0] for key in keys}
    unrecorded = stack.upload_listings(f"{prefix}late-", photos[:1])[0]  # uploaded after the backfill: no record

    strict = Counting(strict_cascade)
    service = ReclassifyService.from_env(classifier=strict)
    seen: list[tuple[int, int]] = []
    summary = service.run(stack.uploads_bucket, prefix, concurrency=2, progress=lambda *a: seen.append(a[:2]))
    report = summary.to_dict()
    assert report["listed"] == len(keys) + 1 and report["reclassified"] == len(keys)
    assert report["unrecorded"] == 1 and report["errors"] == [] and strict.calls == len(keys)
    assert sorted(seen) == [(i, len(keys) + 1) for i in range(1, len(keys) + 2)]
    defaults = VisionConfig.from_env({})
    (reason,) = report["reasons"]
    assert f"thresholds.person_min_confidence {defaults.person_min_confidence} -> 0.999" in reason
    assert f"thresholds.person_padded_min_confidence {defaults.person_padded_min_confidence} -> 0.999" in reason
    assert sum(report["category_changes"].values()) >= 1, json.dumps(report)  # some worn-look photo fell below the bar
    assert stack.items(unrecorded) == []

    for key in keys:
        (item,) = stack.items(key)  # rewritten in place: still one item per photo version
        old = before[key]
        assert (item["sk"], item["sequencer"], item["event_time"]) == (old["sk"], old["sequencer"], old["event_time"])
        assert item["revision"] == 2 and item["thresholds"]["person_min_confidence"] == 0.999
        (entry,) = item["reclassifications"]
        assert entry["run_id"] == report["run_id"] and entry["reason"] == next(iter(report["reasons"]))
        assert entry["previous"]["category"] == old["category"]
        assert entry["previous"]["thresholds"] == old["thresholds"]
        assert item["recorded_at"] == entry["at"] > old["recorded_at"]
        assert drift(service.records.get(item["pk"], item["sk"]), strict.models, strict.thresholds) is None

    strict.calls = 0
    again = service.run(stack.uploads_bucket, prefix, concurrency=2).to_dict()
    assert (again["reclassified"], again["current"], strict.calls) == (0, len(keys), 0)


def test_all_rewrites_every_record_and_resumes_by_run_id(stack: DeployedStack, cascade, labelled_photos, monkeypatch):
    prefix = "images/rc2-"
    keys = stack.upload_listings(prefix, labelled_photos[1:4])
    BackfillService.from_env(classifier=cascade).run(stack.uploads_bucket, prefix, concurrency=1)
    counting = Counting(cascade)
    service = ReclassifyService.from_env(classifier=counting)
    assert service.run(stack.uploads_bucket, prefix).to_dict()["current"] == len(keys)  # nothing changed

    original = service.photos.client.get_object

    def throttle_first(**kwargs):
        if kwargs["Key"] == keys[0]:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "GetObject")
        return original(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(service.photos.client, "get_object", throttle_first)
        first = service.run(stack.uploads_bucket, prefix, all_records=True, concurrency=2)
    assert [k for k, _ in first.errors] == [keys[0]] and first.to_dict()["reclassified"] == len(keys) - 1
    assert first.to_dict()["reasons"] == {"all": len(keys) - 1}
    assert stack.items(keys[0])[0].get("revision") is None

    counting.calls = 0
    resumed = service.run(stack.uploads_bucket, prefix, all_records=True, run_id=first.run_id).to_dict()
    assert (resumed["reclassified"], resumed["already_done"], counting.calls) == (1, len(keys) - 1, 1)
    assert all(stack.items(k)[0]["revision"] == 2 for k in keys)
    fresh = service.run(stack.uploads_bucket, prefix, all_records=True).to_dict()  # a new run does it all again
    assert fresh["reclassified"] == len(keys) and all(stack.items(k)[0]["revision"] == 3 for k in keys)
    assert [len(stack.items(k)[0]["reclassifications"]) for k in keys] == [2] * len(keys)


def test_an_event_that_lands_meanwhile_wins(stack: DeployedStack, cascade, labelled_photos):
    key = "images/rc3-P/L/photo.jpg"
    record = stack.put_photo(key, labelled_photos[5][0].read_bytes())
    BackfillService.from_env(classifier=cascade).run(stack.uploads_bucket, "images/rc3-")
    service = ReclassifyService.from_env(classifier=cascade)
    read = service.records.get(stack.items(key)[0]["pk"], stack.items(key)[0]["sk"])
    ClassifyService.from_env(classifier=cascade).handle_event(s3_event(record))  # the real event supersedes it
    rewritten = type(read).build(
        bucket=read.bucket,
        key=read.key,
        images_prefix="images/",
        version_id=read.version_id,
        sequencer=read.sequencer,
        event_time=read.event_time,
        status=read.status,
        recorded_at="2099-01-01T00:00:00.000Z",
    )
    assert service.records.replace_if_unchanged(rewritten, read) is False
    (item,) = stack.items(key)
    assert item["source"] == "s3_event" and "revision" not in item


def test_reclassify_command_reads_the_stack_outputs(
    stack: DeployedStack, cascade, models_dir: Path, labelled_photos, monkeypatch, capsys
):
    prefix = "images/rc4-"
    keys = stack.upload_listings(prefix, labelled_photos[6:8])
    BackfillService.from_env(classifier=cascade).run(stack.uploads_bucket, prefix)
    monkeypatch.setenv("IMAGELIFT_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("IMAGELIFT_FACE_MIN_CONFIDENCE", "0.95")
    monkeypatch.delenv("CATEGORIES_TABLE")
    args = ["reclassify", "--stack", stack.info.stack_name, "--prefix", prefix, "--concurrency", "2"]
    assert main(args) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["table"] == stack.table_name and report["bucket"] == stack.uploads_bucket
    assert report["reclassified"] == len(keys) and "2/2" in err
    default = VisionConfig.from_env({}).face_min_confidence
    assert list(report["reasons"]) == [f"thresholds.face_min_confidence {default} -> 0.95"]
    assert main([*args, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["current"] == len(keys)


# ------------------------------------------------------------------ the backfill's table and bucket


def test_backfill_without_a_table_fails_once_before_any_work(stack: DeployedStack, monkeypatch, capsys):
    upload_prefix = "images/rc5-"
    stack.s3.put_object(Bucket=stack.uploads_bucket, Key=f"{upload_prefix}P/L/a.jpg", Body=b"x")
    monkeypatch.delenv("CATEGORIES_TABLE")
    monkeypatch.setenv("IMAGELIFT_MODELS_DIR", "/nonexistent")  # loading the models would fail: nothing gets there
    assert main(["backfill", "--bucket", stack.uploads_bucket, "--prefix", upload_prefix]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no CloudFormation stack 'imagelift'" in err and "--table" in err
    assert main(["backfill", "--table", "no-such-table", "--bucket", stack.uploads_bucket]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "DynamoDB table 'no-such-table' does not exist" in err
    monkeypatch.setenv("CATEGORIES_TABLE", "ImageCategories")  # the name before deployment: wrong here
    assert main(["backfill", "--bucket", stack.uploads_bucket]) == 1
    assert "'ImageCategories' does not exist in us-east-1 (from CATEGORIES_TABLE)" in capsys.readouterr().err
    assert stack.items(f"{upload_prefix}P/L/a.jpg") == []


def test_backfill_takes_table_and_bucket_from_the_stack(
    stack: DeployedStack, models_dir: Path, labelled_photos, monkeypatch, capsys
):
    keys = stack.upload_listings("images/rc6-", labelled_photos[9:10])
    monkeypatch.delenv("CATEGORIES_TABLE")
    monkeypatch.setenv("IMAGELIFT_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("IMAGELIFT_STACK", stack.info.stack_name)
    assert main(["backfill", "--prefix", "images/rc6-", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["table"], report["bucket"], report["classified"]) == (stack.table_name, stack.uploads_bucket, 1)
    assert stack.items(keys[0])[0]["status"] == "classified"


def test_backfill_does_not_record_again_what_an_event_without_version_id_recorded(
    stack: DeployedStack, cascade, labelled_photos
):
    """moto's notifications carry no versionId: their records are keyed by ETag, the listing has version ids."""
    key = "images/rc7-P/L/photo.jpg"
    response = stack.s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=labelled_photos[10][0].read_bytes())
    event = s3_record("ObjectCreated:Put", stack.uploads_bucket, key, etag=response["ETag"].strip('"'))
    ClassifyService.from_env(classifier=cascade).handle_event(s3_event(event))
    (item,) = stack.items(key)
    assert item["sk"].startswith("etag#") and response.get("VersionId")
    counting = Counting(cascade)
    summary = BackfillService.from_env(classifier=counting).run(stack.uploads_bucket, "images/rc7-").to_dict()
    assert (summary["already_recorded"], summary["classified"], counting.calls) == (1, 0, 0)
    assert len(stack.items(key)) == 1
    reclassified = ReclassifyService.from_env(classifier=counting).run(
        stack.uploads_bucket, "images/rc7-", all_records=True
    )
    assert reclassified.to_dict()["reclassified"] == 1
    (item,) = stack.items(key)
    assert item["sk"].startswith("etag#") and item["revision"] == 2
