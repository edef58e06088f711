"""The page and the CSV show the bootstrap ranges, the leave-one-product-out range, power and the corrected effects."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from imagelift.config import ReportConfig
from imagelift.influence.report import Report
from imagelift.influence.simulate import SimulationSpec, misclassify_records, simulate, write_simulation
from imagelift.services.report_service import run_local

MATRIX = np.array([[0.8, 0.1, 0.1], [0.1, 0.75, 0.15], [0.05, 0.1, 0.85]])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("uncertainty")
    sim = simulate(SimulationSpec(products=150, weeks=26, huge_products=3, huge_demand=4.0, seed=5))
    sim.records = misclassify_records(sim.records, MATRIX, seed=1)
    paths = write_simulation(sim, root / "data")
    confusion = root / "confusion.json"
    confusion.write_text(json.dumps({"photos": 600, "confusion": {"matrix": (MATRIX * 200).astype(int).tolist()}}))
    config = ReportConfig(controls="promo", confusion=str(confusion), bootstrap_draws=199)
    run = run_local([paths["sales"]], paths["categories"], root / "out", config)
    return run.files, run.report


def test_the_page_has_the_sections_and_names_the_bootstrap(files):
    data, report = files
    page = data["influence.html"].decode()
    for heading in (
        "Without one product at a time",
        "What these data could detect (80% power)",
        "Corrected for the classifier's mistakes",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "a wild bootstrap re-weighting whole products" in page
    assert "By the bootstrap that gives the range, the chance that the effect is above zero" in page
    assert "600 photos" in page and "labelled photos" in page
    rows = report.leave_one_out
    assert rows and f"without {rows[0].low_without}" in page


def test_the_csv_has_a_row_per_new_figure(files):
    data, report = files
    rows = list(csv.DictReader(io.StringIO(data["influence.csv"].decode())))
    sections = [r["section"] for r in rows]
    assert sections.count("leave_one_product_out") == len(report.leave_one_out)
    assert sections.count("power_headline") + sections.count("power_within_listing") == len(report.power)
    corrected = [r for r in rows if r["section"] == "misclassification_corrected"]
    assert len(corrected) == 2 and corrected[0]["n"] == "600"
    model = next(r for r in rows if r["section"] == "sales_effect" and r["category_name"] == "model")
    assert float(model["ci_low"]) == pytest.approx(report.concentration[0].bootstrap_ci[0])
    assert Report.from_json(data["influence.json"]) == report
