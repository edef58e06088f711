"""``imagelift correct`` and ``imagelift review`` on the deployed template (moto) with real photos: a correction is
stored beside the classifier's result (who, when, why), survives a re-classification, wins in the seller's view
and in the report's records (counted); review lists the live, uncorrected photos marked for review and draws them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from ingest_stack import DeployedStack, s3_event

from imagelift.adapters.categories_table import CategoriesTable
from imagelift.adapters.category_records import scan_category_records
from imagelift.cli import main
from imagelift.influence.records import normalise_records
from imagelift.records.category_record import SOURCE_BACKFILL, CategoryRecord
from imagelift.services.classify_service import ClassifyService
from imagelift.services.reclassify import ReclassifyService


def first(labelled_photos, category: int):
    return next(path for path, label in labelled_photos if label == category)


@pytest.fixture()
def target(stack: DeployedStack, monkeypatch) -> list[str]:
    monkeypatch.delenv("CATEGORIES_TABLE")
    return ["--stack", stack.info.stack_name]


def test_a_correction_is_kept_beside_the_classifiers_result(
    stack: DeployedStack, cascade, labelled_photos, target, monkeypatch, capsys
):
    key = "images/CR-1/A/1.jpg"
    ClassifyService.from_env(classifier=cascade, environ=stack.env).handle_event(
        s3_event(stack.put_photo(key, first(labelled_photos, 3).read_bytes()))
    )
    (before,) = stack.items(key)
    monkeypatch.setenv("IMAGELIFT_REVIEWER", "ana@example.com")
    assert main(["correct", key, "--category", "worn", "--note", "legs at the edge", *target]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out[captured.out.index("{") :])
    (item,) = stack.items(key)
    # the classifier's verdict stays as it was; the correction sits beside it
    for name in ("category", "category_name", "decided_by", "faces", "persons", "thresholds", "classified_at"):
        assert item.get(name) == before.get(name), name
    correction = item["correction"]
    assert correction["category"] == 2 and correction["category_name"] == "worn"
    assert (correction["by"], correction["note"]) == ("ana@example.com", "legs at the edge")
    assert correction["classifier_category"] == before["category"] and correction["at"] == item["recorded_at"]
    assert printed["correction"] == correction

    # the seller's view and the report's records take the corrected category
    assert main(["categories", "--product", "CR-1", "--json", *target]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["category"], row["corrected"], row["classifier_category"]) == (2, True, before["category"])
    records = normalise_records(scan_category_records(stack.table_name, stack.dynamodb))
    mine = records.frame[records.frame["product_id"] == "CR-1"]
    assert mine["category"].tolist() == [2] and records.corrected >= 1

    # correcting again keeps the earlier correction; a re-classification keeps the correction
    assert main(["correct", f"s3://{stack.uploads_bucket}/{key}", "--category", "1", "--by", "bob", *target]) == 0
    ReclassifyService.from_env(classifier=cascade, environ=stack.env).run(
        stack.uploads_bucket, "images/CR-1/", all_records=True
    )
    (item,) = stack.items(key)
    assert item["revision"] == 2 and item["category"] == before["category"]
    assert (item["correction"]["category"], item["correction"]["by"]) == (1, "bob")
    assert [(e["category"], e["by"]) for e in item["correction"]["earlier"]] == [(2, "ana@example.com")]


def test_correct_refuses_what_it_cannot_store(stack: DeployedStack, cascade, labelled_photos, target, capsys):
    assert main(["correct", "images/CR-2/A/1.jpg", "--category", "shoe", *target]) == 2
    assert "unknown category 'shoe'" in capsys.readouterr().err
    assert main(["correct", "images/CR-2/A/none.jpg", "--category", "worn", "--by", "ana", *target]) == 1
    assert "no record of" in capsys.readouterr().err
    key = "images/CR-2/A/gone.jpg"
    service = ClassifyService.from_env(classifier=cascade, environ=stack.env)
    service.handle_event(s3_event(stack.put_photo(key, first(labelled_photos, 3).read_bytes())))
    service.handle_event(s3_event(stack.delete_photo(key)))
    assert main(["correct", key, "--category", "worn", "--by", "ana", *target]) == 1
    assert "no live classified version" in capsys.readouterr().err
    assert all("correction" not in item for item in stack.items(key))


def put_marked_for_review(stack: DeployedStack, cascade, key: str, data: bytes) -> CategoryRecord:
    """The photo uploaded and recorded with the cascade's real result, marked for review."""
    response = stack.s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=data)
    outcome = cascade.classify_bytes(data).to_record()
    outcome["review"] = True
    record = CategoryRecord.build(
        bucket=stack.uploads_bucket,
        key=key,
        images_prefix="images/",
        sequencer="",
        event_time="2026-11-22T10:00:00.000Z",  # before the events the tests send
        status="classified",
        version_id=response.get("VersionId"),
        source=SOURCE_BACKFILL,
        recorded_at="2026-11-22T10:00:01.000Z",
        **outcome,
    )
    assert CategoriesTable(stack.table_name, client=stack.dynamodb).put_if_absent(record)
    return record


def test_review_lists_live_uncorrected_photos_and_draws_them(
    stack: DeployedStack, cascade, labelled_photos, target, tmp_path, capsys
):
    model = first(labelled_photos, 1)
    pending = put_marked_for_review(stack, cascade, "images/RV-1/A/face.jpg", model.read_bytes())
    put_marked_for_review(stack, cascade, "images/RV-1/B/fixed.jpg", first(labelled_photos, 2).read_bytes())
    put_marked_for_review(stack, cascade, "images/RV-1/C/gone.jpg", first(labelled_photos, 3).read_bytes())
    assert main(["correct", "images/RV-1/B/fixed.jpg", "--category", "worn", "--by", "ana", *target]) == 0
    ClassifyService.from_env(classifier=cascade, environ=stack.env).handle_event(
        s3_event(stack.delete_photo("images/RV-1/C/gone.jpg"))
    )
    capsys.readouterr()

    sheet = tmp_path / "sheet"
    for scope in (["--product", "RV-1"], []):
        assert main(["review", *scope, "--html", str(sheet), *target]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [row["key"] for row in rows if row["product_id"] == "RV-1"] == [pending.key]
    row = next(row for row in rows if row["key"] == pending.key)
    assert row["category"] == pending.category and row["face_score"] == pytest.approx(
        max(face["confidence"] for face in pending.faces)
    )
    page = (sheet / "index.html").read_text(encoding="utf-8")
    assert f"imagelift correct s3://{stack.uploads_bucket}/{pending.key} --category worn" in page
    thumbnails = sorted(sheet.glob("*.jpg"))
    assert thumbnails and len(thumbnails) == page.count("<img ")
    shown = cv2.imdecode(np.frombuffer(thumbnails[0].read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert max(shown.shape[:2]) == 360
    # the face box is drawn: the thumbnail holds the face colour, which the photo itself barely has
    face_colour = np.all(np.abs(shown.astype(int) - (255, 155, 0)) < 30, axis=2).sum()
    assert face_colour > 200


def test_corrections_make_a_confusion_matrix(stack: DeployedStack, cascade, labelled_photos, target, capsys):
    service = ClassifyService.from_env(classifier=cascade, environ=stack.env)
    said = {}
    for index, label in enumerate((1, 2, 3)):
        key = f"images/CF-1/L-{index}/photo.jpg"
        path = first(labelled_photos, label)
        service.handle_event(s3_event(stack.put_photo(key, path.read_bytes())))
        said[key] = stack.items(key)[0]["category"]
        truth = {1: "model", 2: "worn", 3: "product"}[label]
        assert main(["correct", key, "--category", truth, "--by", f"reviewer-{index % 2}", *target]) == 0
    capsys.readouterr()
    assert main(["review", "--confusion", "--product", "CF-1", *target]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{") :])
    matrix = [[0, 0, 0] for _ in range(3)]
    for truth, predicted in zip((1, 2, 3), said.values(), strict=True):
        matrix[truth - 1][predicted - 1] += 1
    assert summary["photos"] == 3 and summary["confusion"]["matrix"] == matrix
    assert summary["correct"] == sum(t == p for t, p in zip((1, 2, 3), said.values(), strict=True))
    assert summary["by"] == {"reviewer-0": 2, "reviewer-1": 1}
    assert main(["review", "--confusion", *target]) == 0  # every product: a filtered scan
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["photos"] >= 3
