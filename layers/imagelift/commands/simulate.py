"""Write a simulated sales export and category records with planted effects, for demos and tests.

``imagelift simulate --out DIR [--model-lift 9 --worn-lift 5 --elasticity -1.2 ...]`` writes DIR/sales.csv,
DIR/categories.jsonl and DIR/truth.json (the planted values).

Feed them to ``imagelift report --sales DIR/sales.csv --categories DIR/categories.jsonl --controls promo``.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

# option name -> SimulationSpec field; help text
OPTIONS = {
    "products": "number of products (default 300)",
    "listings_per_product": "average listings per product (default 4)",
    "weeks": "number of weeks (default 52)",
    "start": "first week, a date (default 2025-01-06)",
    "model_lift": "planted lift of model photos over product-only, percent (default 9)",
    "worn_lift": "planted lift of worn-look photos, percent (default 5)",
    "elasticity": "planted price elasticity (default -1.2)",
    "model_price_premium": "planted price premium of model photos, percent (default 3)",
    "worn_price_premium": "planted price premium of worn-look photos, percent (default 1)",
    "promo_lift": "planted lift of the promo control, percent (default 20)",
    "base_units": "mean weekly units of a typical listing; below 1 gives mostly zero weeks (default 4)",
    "switch_share": "share of listings that change photo during the period (default 0.35)",
    "bad_rows": "rows corrupted on purpose to show the rejection counts (default 0)",
    "failed_records": "share of listings with an extra failed classification record (default 0.02)",
    "seed": "random seed (default 0)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from imagelift.influence.simulate import SimulationSpec

    parser = subparsers.add_parser(
        "simulate",
        help="write a simulated sales export and category records with planted effects",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--gzip", action="store_true", help="write sales.csv.gz instead of sales.csv")
    types = {f.name: type(f.default) for f in fields(SimulationSpec)}
    for name, help_text in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=types[name], default=None, help=help_text)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagelift.influence.simulate import SimulationSpec, simulate, write_simulation

    spec = SimulationSpec(**{k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None})
    sim = simulate(spec)
    paths = write_simulation(sim, args.out, gzip_sales=args.gzip)
    truth = sim.truth
    print(
        f"{truth['rows']:,} sales rows ({truth['products']:,} products, {truth['listings']:,} listings, "
        f"{spec.weeks} weeks), {len(sim.records):,} category records; planted: model {spec.model_lift:+g}%, "
        f"worn {spec.worn_lift:+g}%, elasticity {spec.elasticity:g}"
    )
    for path in paths.values():
        print(f"wrote {path}")
    return 0
