"""The pure parts of the operator features: when a record is out of date with the classifier, and what one
report run emits as metrics."""

from __future__ import annotations

import pytest

from imagelift.records.category_record import CategoryRecord
from imagelift.services.reclassify import drift
from imagelift.services.report_metrics import REJECTED_SHARE_METRIC, report_metrics

MODELS = {"mtcnn": "07a69013", "yolo": "5e1c2a9d"}
THRESHOLDS = {"face_min_confidence": 0.9, "person_min_confidence": 0.25, "mtcnn_steps": [0.7, 0.7, 0.7]}


def record(**values) -> CategoryRecord:
    base = {"status": "classified", "category": 2, "models": dict(MODELS), "thresholds": dict(THRESHOLDS)}
    base.update(values)
    return CategoryRecord.build(
        bucket="b",
        key="images/P/L/a.jpg",
        images_prefix="images/",
        sequencer="",
        event_time="2026-11-23T09:15:00Z",
        **base,
    )


def test_a_record_of_the_current_classifier_is_up_to_date():
    assert drift(record(), MODELS, THRESHOLDS) is None
    # DynamoDB gives back 1 for a stored 1.0: the same threshold
    assert (
        drift(
            record(thresholds={**THRESHOLDS, "face_min_confidence": 1}),
            MODELS,
            {**THRESHOLDS, "face_min_confidence": 1.0},
        )
        is None
    )


def test_changed_missing_and_new_settings_are_each_named():
    reason = drift(record(), {**MODELS, "yolo": "aa11bb22"}, {**THRESHOLDS, "person_min_confidence": 0.3, "new": 1})
    assert reason == (
        "models.yolo '5e1c2a9d' -> 'aa11bb22'; thresholds.new None -> 1; thresholds.person_min_confidence 0.25 -> 0.3"
    )
    assert drift(record(models=None), MODELS, THRESHOLDS).startswith("models.mtcnn None -> ")


@pytest.mark.parametrize("status", ["failed", "deleted"])
def test_only_classified_records_drift(status: str):
    assert drift(record(status=status, category=None, models=None, thresholds=None), MODELS, THRESHOLDS) is None


def test_report_metrics_of_a_run():
    summary = {"rows": 2000, "rows_used": 1900, "rows_rejected": 100, "effects": {"model": 9.1, "worn": None}}
    metrics = {m.name: (m.unit, m.value) for m in report_metrics(summary, seconds=12.3456)}
    assert metrics == {
        "rows": ("Count", 2000),
        "rows_used": ("Count", 1900),
        "rows_rejected": ("Count", 100),
        REJECTED_SHARE_METRIC: ("Percent", 5.0),
        "effects_estimated": ("Count", 1),
        "duration_seconds": ("Seconds", 12.346),
        "effect_pct_model": ("Percent", 9.1),
    }


def test_an_empty_export_has_no_rejected_share_to_divide():
    metrics = {m.name: m.value for m in report_metrics({"rows": 0, "rows_rejected": 0, "effects": {}}, seconds=1)}
    assert metrics[REJECTED_SHARE_METRIC] == 0.0 and metrics["effects_estimated"] == 0
