"""The numbers a faster switch analysis and within-listing fit must keep: the report sections they feed, on
simulated catalogues, written by ``python tests/support/switch_reference.py`` with the library before the speed-up."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from imagelift.config import ReportConfig
from imagelift.influence.analysis import analyse
from imagelift.influence.records import normalise_records
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

REFERENCE = Path(__file__).parents[1] / "unit" / "data" / "switch_reference.json"
CONFIG = ReportConfig(controls="promo")
CATALOGUES = {
    "clean": {"products": 200, "weeks": 40, "seed": 3},
    # threats that move checks, failed and started fits, dropped rows: other branches of the same code
    "season": {"products": 200, "weeks": 40, "seed": 2, "product_season_sd": 0.3, "price_follows_season": 0.5},
    "promotion": {"products": 150, "weeks": 30, "seed": 5, "switch_promotion_lift": 40.0, "bad_rows": 20},
    "one_quarter": {"products": 120, "weeks": 10, "seed": 4},
}
LEFT_OUT = ("generated_at", "per_product")
"""The run's time, and the per-product list (long, and none of its numbers comes from the code this guards)."""


def sections(params: dict[str, Any]) -> dict[str, Any]:
    sim = simulate(SimulationSpec(**params))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    report = analyse(sales, normalise_records(sim.records), CONFIG).to_dict()
    return {key: value for key, value in report.items() if key not in LEFT_OUT}


if __name__ == "__main__":
    out = {name: sections(params) for name, params in CATALOGUES.items()}
    REFERENCE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size:,} bytes)", file=sys.stderr)
