"""The weekly report on bad inputs: bad files listed and the rest used, implausible values rejected by reason,
estimation failures as warnings, thin and empty data still giving a complete report."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime

import pytest

from imagelift.config import ReportConfig, SalesConfig
from imagelift.influence.report import Report
from imagelift.influence.sales import SalesSource
from imagelift.influence.simulate import SimulationSpec, simulate
from imagelift.services.report_service import build_report

WHEN = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
CONFIG = ReportConfig(controls="promo")


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulationSpec(products=60, weeks=16, seed=5))


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def _report(sources, records, config=CONFIG, sales_config=None) -> Report:
    run = build_report(sources, records, config, generated_at=WHEN, sales_config=sales_config)
    report = run.report
    counts = report.counts
    # nothing lost, and the JSON is strict (no NaN or infinity anywhere)
    assert counts.rows == counts.rows_used + counts.rows_rejected_total + counts.rows_superseded
    json.loads(run.files["influence.json"], parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    return report


def test_bad_files_are_listed_with_their_reason_and_the_good_one_used(sim):
    header = b"week,product_id,listing_id,units,price,promo\n"
    sources = [
        ("sales/good.csv", _csv(sim.sales)),
        ("sales/empty.csv", b""),
        ("sales/header-only.csv", header),
        ("sales/broken.csv.gz", b"\x1f\x8b\x08\x00cut short"),
        ("sales/no-price.csv", b"week,product_id,listing_id,units\n2025-01-06,P1,L1,1\n"),
        ("sales/latin1.csv", header + "2025-01-06,Bott\xe9,L1,1,2,0\n".encode("latin-1")),
        ("sales/ragged.csv", header + b"2025-01-06,P1,L1,1,2,0,9,9\n"),
    ]
    report = _report(sources, sim.records)
    counts = report.counts
    assert set(counts.files_failed) == {
        "sales/empty.csv",
        "sales/header-only.csv",
        "sales/broken.csv.gz",
        "sales/no-price.csv",
    }
    assert counts.files_failed["sales/empty.csv"] == "is empty"
    assert counts.rows_rejected["bad_id"] == 1  # the Latin-1 row, read, then rejected for its id
    assert counts.rows_rejected["ragged_row"] == 1
    assert counts.rows_used == len(sim.sales)
    assert all(e.estimated for e in report.effects)
    assert sum("could not be read" in w for w in report.warnings) == 4


def test_a_storage_error_on_one_file_is_listed_too(sim):
    def fail() -> bytes:
        raise OSError("connection reset")

    report = _report([SalesSource("s3://b/sales/a.csv", opener=fail), ("b.csv", _csv(sim.sales))], sim.records)
    assert "connection reset" in report.counts.files_failed["s3://b/sales/a.csv"]
    assert report.counts.rows_used == len(sim.sales)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("units", 1e15, "implausible_units"),
        ("units", 1e300, "implausible_units"),
        ("price", 1e-300, "implausible_price"),
    ],
)
def test_implausible_values_are_rejected_by_reason_and_do_not_move_the_estimate(sim, column, value, reason):
    clean = _report([("s.csv", _csv(sim.sales))], sim.records)
    bad = sim.sales.copy()
    bad[column] = bad[column].astype(float)
    bad.loc[bad.index[10], column] = value
    report = _report([("s.csv", _csv(bad))], sim.records)
    assert report.counts.rows_rejected == {reason: 1}
    for got, want in zip(report.effects, clean.effects, strict=True):
        assert math.isfinite(got.effect_pct)
        assert got.effect_pct == pytest.approx(want.effect_pct, abs=0.5)


def test_the_bounds_are_configurable(sim):
    report = _report([("s.csv", _csv(sim.sales))], sim.records, sales_config=SalesConfig(max_units=5))
    assert report.counts.rows_rejected["implausible_units"] > 0


def test_a_fit_that_fails_is_a_warning_and_the_report_still_comes_out(sim, monkeypatch):
    import numpy as np

    from imagelift.influence import analysis

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    # a linear-algebra failure deep in the fit, as 1e15 units once caused, through the fit's own error handling
    from imagelift.influence.estimation import _linear_algebra_is_an_estimation_error

    monkeypatch.setattr(analysis, "fit_ppml", _linear_algebra_is_an_estimation_error(singular))
    report = _report([("s.csv", gzip.compress(_csv(sim.sales)))], sim.records)
    assert not any(e.estimated for e in report.effects)
    assert any("could not be estimated" in w and "SVD did not converge" in w for w in report.warnings)
