"""Category effects corrected for the classifier's mistakes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from imagelift.config import ReportConfig
from imagelift.influence.misclassification import (
    SOURCE_CORRECTIONS,
    SOURCE_LABELLED,
    ConfusionError,
    correct_lifts,
    read_confusion,
)
from imagelift.influence.report import Report
from imagelift.influence.simulate import SimulationSpec, misclassify_records, simulate, write_simulation
from imagelift.services.report_service import run_local

MATRIX = np.array([[0.8, 0.1, 0.1], [0.1, 0.75, 0.15], [0.05, 0.1, 0.85]])


def _measured(true_log: dict[int, float], true_shares: np.ndarray, classification: np.ndarray):
    """The forward model: the rate ratio of each label when labels mix the true categories."""
    theta = np.array([math.exp(true_log[1]), math.exp(true_log[2]), 1.0])
    joint = classification * true_shares[:, None]
    labelled = joint.sum(axis=0)
    mixing = (joint / labelled).T
    rates = mixing @ theta
    return {1: math.log(rates[0] / rates[2]), 2: math.log(rates[1] / rates[2])}, dict(
        zip((1, 2, 3), labelled, strict=True)
    )


def test_the_correction_inverts_the_mixing_it_assumes():
    truth = {1: math.log(1.2), 2: math.log(1.1)}
    shares = np.array([0.3, 0.25, 0.45])
    measured, label_shares = _measured(truth, shares, MATRIX)
    assert measured[1] < truth[1] and measured[2] < truth[2]  # attenuated
    counts = np.array([[label_shares[c] for c in (1, 2, 3)]])
    assert correct_lifts(measured, counts, MATRIX) == pytest.approx(truth, abs=1e-12)


def test_a_perfect_classifier_changes_nothing_and_an_impossible_one_admits_no_correction():
    measured = {1: 0.08, 2: 0.04}
    shares = np.array([[30.0, 30.0, 40.0], [10.0, 0.0, 20.0]])
    assert correct_lifts(measured, shares, np.eye(3)) == pytest.approx(measured)
    coin = np.full((3, 3), 1 / 3)  # labels carry no information about the photo
    assert correct_lifts(measured, shares, coin) is None


def test_the_confusion_json_of_evaluate_and_of_review_are_read_with_their_source():
    evaluate = {"photos": 30, "confusion": {"rows": "true 1-3", "columns": "predicted 1-3", "matrix": [[9, 1, 0]] * 3}}
    labelled = read_confusion(json.dumps(evaluate).encode(), "eval.json")
    assert labelled.photos == 30 and labelled.source == SOURCE_LABELLED
    review = {**evaluate, "by": {"ana": 30}}
    assert read_confusion(json.dumps(review), "review.json").source == SOURCE_CORRECTIONS
    for bad in (b"not json", b"{}", json.dumps({"confusion": {"matrix": [[1, 2], [3, 4]]}}).encode()):
        with pytest.raises(ConfusionError):
            read_confusion(bad, "bad.json")
    with pytest.raises(ConfusionError, match="no labelled photos of worn"):
        read_confusion(json.dumps({"confusion": {"matrix": [[5, 0, 0], [0, 0, 0], [0, 0, 5]]}}), "gap.json")


def test_the_report_shows_corrected_effects_beside_the_measured_ones(tmp_path):
    sim = simulate(SimulationSpec(products=200, weeks=30, model_lift=25.0, worn_lift=12.0, seed=11))
    sim.records = misclassify_records(sim.records, MATRIX, seed=1)
    paths = write_simulation(sim, tmp_path / "data")
    confusion = tmp_path / "confusion.json"
    counts = np.round(MATRIX * 400).astype(int).tolist()
    confusion.write_text(json.dumps({"photos": int(np.sum(counts)), "confusion": {"matrix": counts}}))
    config = ReportConfig(controls="promo", confusion=str(confusion), bootstrap_draws=199)
    run = run_local([paths["sales"]], paths["categories"], tmp_path / "out", config)
    report = Report.from_json((tmp_path / "out" / "influence.json").read_bytes())
    section = report.misclassification
    assert section is not None and section.photos == 1200 and section.location == str(confusion)
    assert section.matrix[0] == tuple(counts[0])
    for measured, corrected, name in zip(report.effects, section.effects, ("model", "worn"), strict=True):
        truth = sim.truth["log_effects"][name]
        # labels that mix in other photos pull the lift towards zero; the correction pushes it back out (whether
        # it lands on the truth on average is the Monte Carlo's job: bench/report_bench.py misclassification)
        assert measured.estimate < corrected.estimate
        assert corrected.ci_low < corrected.estimate < corrected.ci_high
        assert corrected.ci_low <= truth <= corrected.ci_high
        assert corrected.ci_high - corrected.ci_low > measured.ci_high - measured.ci_low
    assert any("classifier's mistakes" in w and "model lift" in w for w in report.warnings)
    assert run.report == report
    # without the setting the report has no such section
    plain = run_local([paths["sales"]], paths["categories"], tmp_path / "plain", ReportConfig(controls="promo"))
    assert plain.report.misclassification is None


def test_a_configured_confusion_file_that_is_missing_is_an_error(tmp_path):
    from imagelift.influence.sales import InputFileError

    sim = simulate(SimulationSpec(products=20, weeks=10, seed=1))
    paths = write_simulation(sim, tmp_path / "data")
    config = ReportConfig(controls="promo", confusion=str(tmp_path / "nowhere.json"))
    with pytest.raises(InputFileError, match="confusion"):
        run_local([paths["sales"]], paths["categories"], tmp_path / "out", config)
