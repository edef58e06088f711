"""Sales exports as an analyst would try them: every case of the sales-export issue, run through the weekly report.

    python bench/sales_cases.py            # prints a table; writes bench/results/sales_cases.json

The catalogue is the library's default simulation (300 products, 52 weeks from 2025-01-06, planted lifts model
+9% and worn +5%), so each case's effect can be set beside the clean export's. Each case builds the export a shop
would write (Shopify, Amazon Business Report, a re-export, a broken file...) and records what the report made of
it: rows read, used, rejected by reason, superseded, files not read, the model effect and the first warning.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
warnings.simplefilter("ignore")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "layers"))

from imagelift.config import ReportConfig, SalesConfig  # noqa: E402
from imagelift.influence.sales import InputFileError, SalesSource  # noqa: E402
from imagelift.influence.simulate import SimulationSpec, simulate  # noqa: E402
from imagelift.services.report_service import build_report  # noqa: E402

WHEN = datetime(2026, 12, 2, 6, tzinfo=UTC)  # the report date: every simulated week is in the past
CONFIG = ReportConfig(controls="promo")
PLAIN = ReportConfig()  # shop exports carry no promo column: compare them with the clean export without it


def csv_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


def daily(sales: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each listing-week spread over its seven days (units drawn multinomially); zero days dropped, as shops do."""
    rng = np.random.default_rng(seed)
    units = sales["units"].to_numpy(dtype=np.int64)
    split = np.vstack([rng.multinomial(u, [1 / 7] * 7) for u in units])
    frame = sales.loc[sales.index.repeat(7)].reset_index(drop=True)
    frame["day"] = pd.to_datetime(frame["week"]) + pd.to_timedelta(np.tile(np.arange(7), len(sales)), unit="D")
    frame["units"] = split.ravel()
    frame["sales"] = (frame["units"] * frame["price"]).round(2)
    return frame[frame["units"] > 0]


def shopify(sales: pd.DataFrame) -> bytes:
    days = daily(sales)
    out = pd.DataFrame(
        {
            "Day": days["day"].dt.strftime("%Y-%m-%d"),
            "Product title": days["product_id"],
            "Product vendor": "Imagelift Footwear",
            "Variant SKU": days["listing_id"],
            "Net quantity": days["units"],
            "Gross sales": (days["sales"] * 1.1).round(2),
            "Net sales": days["sales"],
        }
    )
    return csv_bytes(out)


def amazon(sales: pd.DataFrame) -> bytes:
    days = daily(sales, seed=1)
    out = pd.DataFrame(
        {
            "Date": [f"{d.month}/{d.day}/{d.year}" for d in days["day"]],
            "(Parent) ASIN": days["product_id"],
            "(Child) ASIN": days["listing_id"],
            "Title": "Shoe",
            "Sessions - Total": days["units"] * 3 + 4,
            "Units Ordered": days["units"],
            "Ordered Product Sales": [f"${v:,.2f}" for v in days["sales"]],
            "Total Order Items": days["units"],
        }
    )
    return csv_bytes(out)


def lower_ids(records: list[dict]) -> list[dict]:
    """Photo folders named by the Shopify handle (the title lower-cased)."""
    out = []
    for r in records:
        r = dict(r)
        if r.get("product_id"):
            r["key"] = r["key"].replace(f"/{r['product_id']}/", f"/{r['product_id'].lower()}/")
            r["product_id"] = r["product_id"].lower()
        out.append(r)
    return out


def run_case(
    name: str,
    sources: list,
    records: list[dict],
    sales_config: SalesConfig | None = None,
    config: ReportConfig = CONFIG,
) -> dict:
    try:
        report = build_report(sources, records, config, generated_at=WHEN, sales_config=sales_config).report
    except InputFileError as exc:
        return {"case": name, "error": str(exc)}
    counts = report.counts
    assert counts.rows == counts.rows_used + counts.rows_rejected_total + counts.rows_superseded, name
    model = next(e for e in report.effects if e.category_name == "model")
    return {
        "case": name,
        "rows": counts.rows,
        "used": counts.rows_used,
        "listing_weeks": counts.listing_weeks,
        "rejected": counts.rows_rejected,
        "superseded": counts.rows_superseded,
        "filled": counts.rows_filled,
        "files_failed": counts.files_failed,
        "period": report.period.to_dict(),
        "model_pct": None if model.effect_pct is None else round(model.effect_pct, 2),
        "model_ci": None if model.effect_pct_ci is None else [round(v, 2) for v in model.effect_pct_ci],
        "elasticity": None if report.price_elasticity.estimate is None else round(report.price_elasticity.estimate, 3),
        "warning": report.warnings[0] if report.warnings else "",
    }


def cases() -> list[tuple[str, Callable[[], dict]]]:
    sim = simulate(SimulationSpec())
    sales, records = sim.sales, sim.records
    clean = csv_bytes(sales)
    weeks = sorted(sales["week"].unique())

    def mutate(column: str, value, row: int = 100) -> bytes:
        bad = sales.astype({column: object})
        bad.at[row, column] = value
        return csv_bytes(bad)

    def day_first() -> bytes:
        out = sales.assign(week=pd.to_datetime(sales["week"]).dt.strftime("%d/%m/%Y"))
        return csv_bytes(out)

    def sundays() -> bytes:
        return csv_bytes(sales.assign(week=(pd.to_datetime(sales["week"]) - timedelta(days=1)).dt.strftime("%Y-%m-%d")))

    def semicolon_comma() -> bytes:
        out = sales.assign(price=[f"{p:,.2f}".replace(",", " ").replace(".", ",") for p in sales["price"]])
        return csv_bytes(out, sep=";")

    def dollars() -> bytes:
        return csv_bytes(sales.assign(price=[f"${p * 100:,.2f}" for p in sales["price"]]))

    def xlsx() -> bytes:
        buffer = io.BytesIO()
        sales.assign(week=pd.to_datetime(sales["week"])).to_excel(buffer, index=False)
        return buffer.getvalue()

    reexport = sales[sales["week"] >= weeks[-8]].assign(units=lambda f: f["units"])
    header = b"week,product_id,listing_id,units,price,promo\n"
    live_records = []
    first_seen: set[tuple[str, str]] = set()
    # the catalogue's first photos were uploaded the day before the report, and the seller says since when each
    # one was live (backfill --live-from): the upload time moves to today, the statement keeps the history
    for r in sorted(records, key=lambda r: r["event_time"]):
        r = dict(r)
        listing = (r.get("product_id"), r.get("listing_id"))
        if r.get("status") == "classified" and listing not in first_seen:
            first_seen.add(listing)
            r["live_from"], r["event_time"] = r["event_time"], "2026-12-01T09:00:00.000Z"
        live_records.append(r)
    uploaded_today = [{**r, "live_from": None} for r in live_records]
    thin = simulate(SimulationSpec(products=2, weeks=8, seed=2))
    sold = sales[sales["units"] > 0]
    return [
        ("clean imagelift export", lambda: run_case("clean imagelift export", [("s.csv", clean)], records)),
        (
            "clean imagelift export, no controls",
            lambda: run_case("clean imagelift export, no controls", [("s.csv", clean)], records, config=PLAIN),
        ),
        (
            "Shopify daily export (no zero days)",
            lambda: run_case(
                "Shopify daily export (no zero days)",
                [("shopify.csv", shopify(sales))],
                lower_ids(records),
                config=PLAIN,
            ),
        ),
        (
            "Shopify daily export, --fill-zeros",
            lambda: run_case(
                "Shopify daily export, --fill-zeros",
                [("shopify.csv", shopify(sales))],
                lower_ids(records),
                SalesConfig(fill_zeros=True),
                PLAIN,
            ),
        ),
        (
            "Amazon Business Report by day, --fill-zeros",
            lambda: run_case(
                "Amazon Business Report by day, --fill-zeros",
                [("BusinessReport.csv", amazon(sales))],
                records,
                SalesConfig(fill_zeros=True),
                PLAIN,
            ),
        ),
        ("';' and decimal comma", lambda: run_case("';' and decimal comma", [("eu.csv", semicolon_comma())], records)),
        ("prices like $7,120.00", lambda: run_case("prices like $7,120.00", [("us.csv", dollars())], records)),
        (".xlsx", lambda: run_case(".xlsx", [("export.xlsx", xlsx())], records)),
        (
            "day-first dates 06/01/2025",
            lambda: run_case("day-first dates 06/01/2025", [("d.csv", day_first())], records),
        ),
        (
            "ambiguous day/month (named file)",
            lambda: run_case(
                "ambiguous day/month (named file)",
                [SalesSource("amb.csv", csv_bytes(sales.head(3).assign(week="06/01/2025")), strict=True)],
                records,
            ),
        ),
        (
            "week 'today' / 'now'",
            lambda: run_case("week 'today' / 'now'", [("t.csv", mutate("week", "today"))], records),
        ),
        ("a 2099 week", lambda: run_case("a 2099 week", [("f.csv", mutate("week", "2099-01-05"))], records)),
        ("weeks labelled by Sunday", lambda: run_case("weeks labelled by Sunday", [("sun.csv", sundays())], records)),
        (
            "zero-sale rows left out",
            lambda: run_case("zero-sale rows left out", [("sold.csv", csv_bytes(sold))], records),
        ),
        (
            "zero-sale rows left out, --fill-zeros",
            lambda: run_case(
                "zero-sale rows left out, --fill-zeros",
                [("sold.csv", csv_bytes(sold))],
                records,
                SalesConfig(fill_zeros=True),
            ),
        ),
        (
            "re-export of the last 8 weeks",
            lambda: run_case(
                "re-export of the last 8 weeks",
                [
                    SalesSource("a.csv", clean, last_modified=1.0),
                    SalesSource("b.csv", csv_bytes(reexport), last_modified=2.0),
                ],
                records,
            ),
        ),
        (
            "bad files beside a good one",
            lambda: run_case(
                "bad files beside a good one",
                [
                    ("good.csv", clean),
                    ("empty.csv", b""),
                    ("header-only.csv", header),
                    ("latin1.csv", header + "2025-01-06,Bott\xe9,L1,1,2,0\n".encode("latin-1")),
                    ("corrupt.csv.gz", gzip.compress(clean)[:500]),
                    ("no-price.csv", b"week,product_id,listing_id,units\n2025-01-06,P1,L1,1\n"),
                    ("ragged.csv", clean.replace(b"\n", b",9,9\n", 1)[:0] + header + b"2025-01-06,P1,L1,1,2,0,9\n"),
                ],
                records,
            ),
        ),
        ("units 1e15", lambda: run_case("units 1e15", [("u.csv", mutate("units", "1e15"))], records)),
        ("units 1e300", lambda: run_case("units 1e300", [("u.csv", mutate("units", "1e300"))], records)),
        ("price 1e-300", lambda: run_case("price 1e-300", [("p.csv", mutate("price", "1e-300"))], records)),
        (
            "2 products over 8 weeks",
            lambda: run_case("2 products over 8 weeks", [("thin.csv", csv_bytes(thin.sales))], thin.records),
        ),
        ("no exports yet", lambda: run_case("no exports yet", [], records)),
        (
            "every row rejected",
            lambda: run_case(
                "every row rejected",
                [("ghost.csv", csv_bytes(sales.assign(listing_id="X" + sales["listing_id"])))],
                records,
            ),
        ),
        (
            "catalogue uploaded today, no live_from",
            lambda: run_case("catalogue uploaded today, no live_from", [("s.csv", clean)], uploaded_today),
        ),
        (
            "catalogue uploaded today, backfill --live-since",
            lambda: run_case("catalogue uploaded today, backfill --live-since", [("s.csv", clean)], live_records),
        ),
    ]


def main() -> int:
    results = []
    for name, run in cases():
        result = run()
        results.append(result)
        if "error" in result:
            print(f"{name:48s} one-line error: {result['error']}")
            continue
        rejected = ", ".join(f"{k} {v:,}" for k, v in result["rejected"].items()) or "-"
        failed = f" files not read {len(result['files_failed'])}" if result["files_failed"] else ""
        sup = f" superseded {result['superseded']:,}" if result["superseded"] else ""
        fill = f" filled {result['filled']:,}" if result["filled"] else ""
        model = "n/a" if result["model_pct"] is None else f"{result['model_pct']:+.1f}% {result['model_ci']}"
        print(
            f"{name:48s} rows {result['rows']:>7,} used {result['used']:>7,}{sup}{fill}{failed} | rejected {rejected}"
            f" | model {model} | {result['warning'][:90]}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report_date": str(date(2026, 12, 2)),
        "cases": results,
    }
    (RESULTS / "sales_cases.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'sales_cases.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
