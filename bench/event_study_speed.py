"""What the event study and the threat checks add to the report's fit stage, at 1M rows.

    python bench/event_study_speed.py [--rows 1000000] [--repeats 2]

One simulated export the size of the speed benchmark's largest (bench/report_bench.py speed), joined once; then,
alternating so that a busy shared machine slows both alike, the whole fit stage (``fit_models``) with and without
the switch analyses, and the switch analyses alone split into the event study and each threat check. Writes
bench/results/event_study_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from report_bench import LISTINGS_PER_PRODUCT, WEEKS, _products_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from imagelift.config import ReportConfig
    from imagelift.influence import analysis, threats
    from imagelift.influence.analysis import _design, fit_models, prepare_panel
    from imagelift.influence.records import join_categories, normalise_records
    from imagelift.influence.sales import read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate

    spec = SimulationSpec(
        products=_products_for(args.rows), listings_per_product=LISTINGS_PER_PRODUCT, weeks=WEEKS, seed=1
    )
    sim = simulate(spec)
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    panel = prepare_panel(join_categories(sales.frame, normalise_records(sim.records), sales.rejections), ("promo",))
    config = ReportConfig(controls="promo")
    print(f"{len(panel.frame):,} listing-weeks, {len(panel.product_ids):,} products", flush=True)

    with_switches = analysis.switch_analyses

    def without(*args, **kwargs):
        return [], [], []

    timings: dict[str, list[float]] = {"fit_stage_with": [], "fit_stage_without": []}
    fits = None
    for _ in range(args.repeats):
        for name, replacement in (("fit_stage_with", with_switches), ("fit_stage_without", without)):
            analysis.switch_analyses = replacement
            start = time.perf_counter()
            result = fit_models(panel, config)
            timings[name].append(time.perf_counter() - start)
            if name == "fit_stage_with":
                fits = result
    analysis.switch_analyses = with_switches

    # the parts, on the same design as the report's
    frame = panel.frame
    x, names = _design(frame, fits.categories, panel.controls)
    parts = {
        "timing": lambda: threats.switch_timing(frame["listing_code"].to_numpy(), frame["week"], frame["category"]),
    }
    timing = parts["timing"]()
    columns = [j for j, n in enumerate(names) if not n.startswith("category_")]
    parts["event_study"] = lambda: threats.event_studies(
        panel.units,
        x[:, columns],
        [names[j] for j in columns],
        frame["listing_code"].to_numpy(),
        frame["week"],
        panel.week,
        panel.product,
        frame["category"].to_numpy(),
        fits.categories,
        timing=timing,
    )
    common = {"level": config.confidence, "tol": config.fe_tol, "irls_tol": config.irls_tol}
    parts["donut"] = lambda: threats.donut_check(
        panel.units, x, names, panel.product, panel.week, timing, fits.ppml, **common
    )
    parts["product_season"] = lambda: threats.product_season_check(
        panel.units, x, names, panel.product, panel.week, frame["week"], fits.ppml, **common
    )
    for name, part in parts.items():
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            part()
            seconds.append(time.perf_counter() - start)
        timings[name] = seconds
    medians = {k: statistics.median(v) for k, v in timings.items()}
    added = medians["fit_stage_with"] - medians["fit_stage_without"]
    for k, v in medians.items():
        print(f"  {k:20s} {v:.2f} s", flush=True)
    print(f"added by the event study and the checks: {added:.2f} s", flush=True)
    out = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/event_study_speed.py", *sys.argv[1:]]),
        "listing_weeks": len(frame),
        "products": len(panel.product_ids),
        "seconds": timings,
        "median_seconds": medians,
        "added_seconds": added,
        "event_study_switches": {s.category_name: s.switches for s in fits.event_study},
    }
    path = ROOT / "bench" / "results" / "event_study_speed.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
