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
    from imagelift.influence import headline
    from imagelift.influence.estimation import _linear_algebra_is_an_estimation_error

    monkeypatch.setattr(analysis, "fit_ppml", _linear_algebra_is_an_estimation_error(singular))
    monkeypatch.setattr(headline, "fit_ppml", _linear_algebra_is_an_estimation_error(singular))
    report = _report([("s.csv", gzip.compress(_csv(sim.sales)))], sim.records)
    assert not any(e.estimated for e in report.effects)
    assert any("could not be estimated" in w and "SVD did not converge" in w for w in report.warnings)


def test_thin_data_gives_a_complete_report_saying_what_is_missing():
    thin = simulate(SimulationSpec(products=2, weeks=8, seed=2))
    report = _report([("thin.csv", _csv(thin.sales))], thin.records)
    assert not any(e.estimated for e in report.effects)
    first = report.warnings[0]
    assert first.startswith("Too little data for any effect: 2 products, 8 weeks")
    assert "at least 30 listing-weeks inside at least 3 products" in first
    assert report.counts.rows_used == len(thin.sales)
    assert report.period.first_week == "2025-01-06"


def test_no_exports_at_all_is_a_report_saying_so(sim):
    report = _report([], sim.records)
    assert report.warnings[0].startswith("No sales exports yet")
    assert report.counts.rows == 0 and report.period.first_week is None


def test_the_command_line_prints_counts_and_examples_when_every_row_is_rejected(sim, tmp_path, capsys):
    from imagelift.cli import main

    ghosts = sim.sales.head(50).assign(listing_id=[f"GHOST{i}" for i in range(50)])  # listings with no photo
    (tmp_path / "s.csv").write_bytes(_csv(ghosts))
    cats = tmp_path / "c.jsonl"
    cats.write_text("".join(json.dumps(r) + "\n" for r in sim.records))
    args = ["report", "--sales", str(tmp_path / "s.csv"), "--categories", str(cats), "--out", str(tmp_path / "out")]
    code = main([*args, "--report-date", "2025-06-02"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no usable weeks: 0 of 50 rows used" in out
    assert "rejected: " in out and "unknown_listing" in out
    assert f"unknown_listing: e.g. {tmp_path / 's.csv'}:" in out
    assert "warning: No sales row could be used" in out
    assert (tmp_path / "out" / "influence.html").read_text().count("unknown") >= 1


def test_the_command_line_reads_a_shopify_export_with_its_options(tmp_path, capsys):
    from test_sales_exports import PRODUCTS, _truth, shopify_export

    from imagelift.cli import main
    from imagelift.influence.exports.formats import shopify_handle

    truth = _truth(weeks=4, seed=9)
    path = tmp_path / "shopify.csv"
    path.write_bytes(shopify_export(truth))
    records = [
        {
            "product_id": shopify_handle(title),
            "listing_id": sku,
            "status": "classified",
            "category": 1 + k % 3,
            "event_time": "2024-12-01T00:00:00Z",
            "key": f"images/{shopify_handle(title)}/{sku}/photo.jpg",
        }
        for title, skus in PRODUCTS.items()
        for k, sku in enumerate(skus)
    ]
    cats = tmp_path / "c.jsonl"
    cats.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["report", "--sales", str(path), "--categories", str(cats), "--out", str(tmp_path / "out")]
    code = main([*args, "--format", "shopify", "--report-date", "2025-06-02", "--monthfirst"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "out" / "influence.json").read_text())
    counts = report["counts"]
    assert counts["rows"] == counts["rows_used"] == int((truth["units"] > 0).sum())
    assert counts["listing_weeks"] == 7 * 4 and report["period"] == {"from": "2025-01-06", "to": "2025-01-27"}
    assert "daily rows summed" in counts["aggregation"]
    assert report["warnings"][0].startswith("Too little data for any effect: 3 products, 4 weeks, 28 listing-weeks")
    assert main([*args, "--columns", "colour=Red"]) == 2
    assert "unknown field 'colour'" in capsys.readouterr().err


def test_exports_that_leave_out_zero_sale_weeks_are_detected_and_filled_on_request():
    full_sim = simulate(SimulationSpec(products=150, weeks=20, base_units=1.5, seed=11, deleted_records=0.0))
    config = ReportConfig(controls="")
    sales = full_sim.sales.drop(columns="promo")
    full = _report([("s.csv", _csv(sales))], full_sim.records, config)
    sold = sales[sales["units"] > 0]
    omitted = len(sales) - len(sold)
    assert omitted > 0.2 * len(sales)

    warned = _report([("s.csv", _csv(sold))], full_sim.records, config)
    (warning,) = [w for w in warned.warnings if "leave out weeks without sales" in w]
    assert f"{omitted:,} listing-weeks" in warning and "--fill-zeros" in warning

    filled = _report([("s.csv", _csv(sold))], full_sim.records, config, SalesConfig(fill_zeros=True))
    assert filled.counts.rows_filled == omitted
    assert filled.counts.rows_used == len(sold)  # filled weeks are not rows read
    assert filled.counts.listing_weeks == full.counts.listing_weeks
    # the filled weeks are the very weeks the full export had, each at its listing's median price
    assert filled.counts.listing_weeks_by_category == full.counts.listing_weeks_by_category
    assert all(e.estimated for e in filled.effects)


def test_the_scheduled_window_reads_only_the_last_weeks(sim):
    from datetime import date

    from imagelift.influence.sales import read_sales

    # the simulation runs 16 weeks from 2025-01-06; a 10-week window before 2025-04-28 starts on 2025-02-17
    table = read_sales([("s.csv", _csv(sim.sales))], controls=["promo"], report_date=date(2025, 4, 28), window_weeks=10)
    assert table.frame["week"].min() == datetime(2025, 2, 17)
    before = int((sim.sales["week"] < "2025-02-17").sum())
    assert table.rejections.as_dict() == {"before_window": before}
    assert table.rows_read == table.rows_used + table.rejections.total
