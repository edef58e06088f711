"""The main-photo convention through template.yaml deployed in moto: real photos classified by the real cascade on the
classifier's event path, the weekly report run by its handler with the function's own environment (the template's
``REPORT_LISTING_CATEGORY``), and ``imagelift categories --listing`` showing main photo and gallery."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from ingest_stack import DeployedStack, s3_event

from imagelift.cli import main
from imagelift.services.classify_service import ClassifyService

ROOT = Path(__file__).resolve().parents[2]
REPORT_FUNCTION = "InfluenceReportFunction"
WEEKS = ("2026-11-30", "2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28")  # after the uploads (2026-11-23)
SCHEDULED_EVENT = {
    "version": "0",
    "id": "0c9d2a3e-6c52-4f0e-9a55-1f3c2b7d8e90",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2027-01-04T06:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/Weekly"],
    "detail": {},
}


def _first_classified_as(cascade, labelled_photos, category: int) -> bytes:
    for path, label in labelled_photos:
        data = path.read_bytes()
        if label == category and cascade.classify_bytes(data).category == category:
            return data
    raise AssertionError(f"no photo of category {category} is classified as such")


@pytest.fixture(scope="module")
def gallery(stack: DeployedStack, cascade, labelled_photos):
    """MP-1/A: main photo ``01-front.jpg`` a product shot, gallery photo ``05-detail.jpg`` a product shot then
    re-uploaded as a model shot. MP-1/B: ``main.jpg`` a model shot and ``02-box.jpg`` a product shot uploaded later."""
    product = _first_classified_as(cascade, labelled_photos, 3)
    model = _first_classified_as(cascade, labelled_photos, 1)
    service = ClassifyService.from_env(classifier=cascade)
    for key, data in [
        ("images/MP-1/A/01-front.jpg", product),
        ("images/MP-1/A/05-detail.jpg", product),
        ("images/MP-1/B/main.jpg", model),
        ("images/MP-1/B/02-box.jpg", product),
        ("images/MP-1/A/05-detail.jpg", model),  # the re-upload of gallery photo 5
    ]:
        service.handle_event(s3_event(stack.put_photo(key, data)))


@pytest.fixture()
def report_env(stack, monkeypatch):
    env = stack.info.function_env[REPORT_FUNCTION]
    for name in stack.env:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sales = "week,product_id,listing_id,units,price\n" + "".join(
        f"{week},MP-1,{listing},{units},20\n" for week in WEEKS for listing, units in (("A", 3), ("B", 5))
    )
    stack.s3.put_object(Bucket=env["DATA_BUCKET"], Key="sales/main-photo.csv", Body=sales.encode())
    return env


def _run_report(stack, env, lambda_context) -> dict:
    spec = importlib.util.spec_from_file_location("influence_report_app", ROOT / "functions/influence_report/app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    app.lambda_handler(SCHEDULED_EVENT, lambda_context)
    body = stack.s3.get_object(Bucket=env["DATA_BUCKET"], Key="reports/latest/influence.json")["Body"].read()
    return json.loads(body)


def test_every_gallery_photo_keeps_its_record_with_its_position(stack: DeployedStack, gallery):
    (front,) = stack.items("images/MP-1/A/01-front.jpg")
    versions = stack.items("images/MP-1/A/05-detail.jpg")
    (main_photo,) = stack.items("images/MP-1/B/main.jpg")
    assert (front["photo_position"], main_photo["photo_position"]) == (1, 0)
    assert [(v["photo_position"], v["category"]) for v in versions] == [(5, 3), (5, 1)]


def test_the_report_takes_the_main_photo_so_a_gallery_reupload_does_not_flip_the_listing(
    stack, gallery, report_env, lambda_context
):
    assert report_env["REPORT_LISTING_CATEGORY"] == "main"  # the template's default
    report = _run_report(stack, report_env, lambda_context)
    assert report["spec"]["listing_category"] == "main"
    assert "main photo" in report["spec"]["week_assignment"]
    # A: its main photo is a product shot all along; B: its main photo, the model shot, beats the newer box photo
    assert report["counts"]["listing_weeks_by_category"] == {"model": 5, "worn": 0, "product": 5}


def test_the_any_model_option_counts_a_model_photo_anywhere_in_the_gallery(
    stack, gallery, report_env, lambda_context, monkeypatch
):
    monkeypatch.setenv("REPORT_LISTING_CATEGORY", "any_model")
    report = _run_report(stack, report_env, lambda_context)
    assert report["spec"]["listing_category"] == "any_model"
    assert report["counts"]["listing_weeks_by_category"] == {"model": 10, "worn": 0, "product": 0}


def test_categories_listing_shows_main_photo_and_gallery(stack, gallery, capsys):
    assert main(["categories", "--listing", "A", "--product", "MP-1", "--json", "--table", stack.table_name]) == 0
    (listing,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listing["key"], listing["category_name"], listing["photo_position"]) == (
        "images/MP-1/A/01-front.jpg",
        "product",
        1,
    )
    assert [(p["role"], p["key"].rsplit("/", 1)[-1], p["category_name"]) for p in listing["photos"]] == [
        ("main", "01-front.jpg", "product"),
        ("gallery", "05-detail.jpg", "model"),
    ]
    assert main(["categories", "--listing", "A", "--product", "MP-1", "--table", stack.table_name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-2:] == ["role", "photo"]
    assert lines[1].split()[-2:] == ["main", "images/MP-1/A/01-front.jpg"]
    assert lines[2].split()[-2:] == ["gallery", "images/MP-1/A/05-detail.jpg"]
