"""Reading sales exports at scale: the pandas route against the SQL stages on DuckDB, time and peak memory.

    python bench/ingest_bench.py [--sizes 1000000 10000000] [--repeats 2] [--shape daily|weekly]
                                 [--memory-limit-mb 1024]

Each size is a set of export files of about 1M rows each under .cache/ingest-scale/<shape>-<rows>/ (built once,
reused), plus one re-export of part 0's last four weeks (newer, so it supersedes) and the category records of all
parts. ``daily``: Shopify "Sales by product variant SKU" exports by day (zero-sale days left out, as Shopify does),
so the rows are about three times the listing-weeks; ``weekly``: the library's own weekly layout, one row per
listing-week. Every part carries a few hundred corrupted rows (every field-level reason).

Each run is a fresh process reading the files from disk one at a time, checking them and joining the listing-weeks
to the photo categories (read_sales_routed + join, as the report does): wall time per step and the process's peak
RSS (VmHWM). The routes alternate (pandas, duckdb, then duckdb, pandas, ...) so that load on the shared machine
falls on both alike; medians, the ratio of medians, the load average around each run and a digest of the results
(rejection counts, rows, sums) are written to bench/results/ingest_scale.json, the digests compared between routes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "layers"))

PART_ROWS = 1_000_000
WEEKS = 52
LISTINGS_PER_PRODUCT = 4.0
REPORT_DATE = date(2026, 1, 5)  # after the 52 simulated weeks from 2025-01-06
BAD_ROWS_PER_PART = 300
ROUTES = ("pandas", "duckdb")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry a parent's peak across exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _load() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------------------------- the data


def _part(part: int, rows: int, shape: str):
    """One export part of about ``rows`` rows and its records; products C<part>P..., so parts never share one."""
    import numpy as np
    import pandas as pd

    from imagelift.influence.simulate import SimulationSpec, simulate

    per_listing_week = 3.0 if shape == "daily" else 1.0  # daily rows per listing-week (zero days left out)
    products = max(10, round(rows / per_listing_week / (LISTINGS_PER_PRODUCT * WEEKS * 0.93)))
    spec = SimulationSpec(
        products=products,
        listings_per_product=LISTINGS_PER_PRODUCT,
        weeks=WEEKS,
        seed=2000 + part,
        bad_rows=BAD_ROWS_PER_PART if shape == "weekly" else 0,
    )
    sim = simulate(spec)
    prefix = f"C{part:03d}"
    records = []
    for item in sim.records:
        item = dict(item)
        if item.get("product_id"):
            product = (prefix + item["product_id"]).lower() if shape == "daily" else prefix + item["product_id"]
            item["key"] = item["key"].replace(f"/{item['product_id']}/", f"/{product}/")
            item["product_id"] = product
        records.append(item)
    sales = sim.sales.assign(product_id=prefix + sim.sales["product_id"].astype(str))
    if shape == "weekly":
        return sales, records
    rng = np.random.default_rng(part)
    units = pd.to_numeric(sales["units"]).to_numpy(dtype=np.int64)
    split = rng.multinomial(units, [1 / 7] * 7)  # each listing-week's units over its seven days
    days = pd.to_datetime(sales["week"]).to_numpy()[:, None] + np.arange(7) * np.timedelta64(1, "D")
    sold = split > 0
    row = np.repeat(np.arange(len(sales)), 7).reshape(-1, 7)[sold]
    price = pd.to_numeric(sales["price"]).to_numpy(dtype=float)[row]
    day_units = split[sold]
    out = pd.DataFrame(
        {
            "Day": pd.DatetimeIndex(days[sold]).strftime("%Y-%m-%d"),
            "Product title": sales["product_id"].to_numpy()[row],
            "Product vendor": "Imagelift Footwear",
            "Variant SKU": sales["listing_id"].to_numpy()[row],
            "Net quantity": day_units,
            "Gross sales": np.round(day_units * price * 1.1, 2),
            "Net sales": np.round(day_units * price, 2),
        }
    )
    # a few hostile rows: a blank quantity, a word for a date, a fractional quantity, an exact copy
    victims = rng.choice(len(out), size=BAD_ROWS_PER_PART, replace=False)
    out = out.astype({"Net quantity": object, "Day": object})
    for n, at in enumerate(victims):
        kind = n % 4
        if kind == 0:
            out.at[at, "Net quantity"] = ""
        elif kind == 1:
            out.at[at, "Day"] = "today"
        elif kind == 2:
            out.at[at, "Net quantity"] = "1.5"
    copies = out.iloc[victims[3::4]]
    return pd.concat([out, copies], ignore_index=True), records


def write_reexport(directory: Path, shape: str) -> None:
    """Part 0's last four weeks exported again, later: newer than every part, so those rows of part 0 are superseded."""
    import pandas as pd

    part = pd.read_csv(directory / "part-000.csv", dtype=str, keep_default_na=False)
    column = "Day" if shape == "daily" else "week"
    # pandas reads "today" as today's date even with a format: dates only
    when = pd.to_datetime(part[column].where(part[column].str.fullmatch(r"\d{4}-\d{2}-\d{2}")), format="%Y-%m-%d")
    part[when >= when.max() - pd.Timedelta(days=27)].to_csv(directory / "reexport.csv", index=False)
    now = time.time()
    for n, path in enumerate(sorted(directory.glob("part-*.csv"))):
        os.utime(path, (now - 1000 + n, now - 1000 + n))


def prepare(rows: int, shape: str) -> tuple[Path, dict]:
    directory = ROOT / ".cache" / "ingest-scale" / f"{shape}-{rows}"
    done = directory / "shape.json"
    if done.is_file():
        return directory, json.loads(done.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    total, part, records_written = 0, 0, 0
    with (directory / "categories.jsonl").open("w") as categories:
        while total < rows:
            frame, records = _part(part, min(PART_ROWS, rows - total), shape)
            frame.to_csv(directory / f"part-{part:03d}.csv", index=False)
            for item in records:
                categories.write(json.dumps(item) + "\n")
            total += len(frame)
            records_written += len(records)
            print(f"  part {part}: {len(frame):,} rows ({total:,} of {rows:,})", flush=True)
            part += 1
    write_reexport(directory, shape)
    shape_info = {
        "rows": total,
        "parts": part,
        "records": records_written,
        "csv_mb": round(sum(p.stat().st_size for p in directory.glob("*.csv")) / 2**20, 1),
    }
    done.write_text(json.dumps(shape_info))
    return directory, shape_info


# --------------------------------------------------------------------------------------------- one run


class _DiskWatch:
    """The most disk the route's temporary databases (imagelift-sql-* in the temp directory) held, sampled."""

    def __init__(self, every_s: float = 0.25) -> None:
        import tempfile
        import threading

        self.root = Path(tempfile.gettempdir())
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _size(self) -> float:
        total = 0
        for folder in self.root.glob("imagelift-sql-*"):
            for path in folder.rglob("*"):
                with contextlib.suppress(OSError):  # a spill file removed while summing
                    total += path.stat().st_size if path.is_file() else 0
        return total / 2**20

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.peak_mb = max(self.peak_mb, self._size())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def child(directory: str, route: str, memory_limit_mb: str) -> dict:
    from imagelift.config import SalesConfig
    from imagelift.influence.records import normalise_records, read_jsonl
    from imagelift.influence.sales_route import read_sales_routed
    from imagelift.services.report_service import local_sales_sources

    folder = Path(directory)
    disk = _DiskWatch()
    start = time.perf_counter()
    records = normalise_records(read_jsonl("categories.jsonl", (folder / "categories.jsonl").read_bytes()))
    records_done = time.perf_counter()
    sources = list(local_sales_sources([folder]))
    routed = read_sales_routed(
        sources,
        SalesConfig(),
        report_date=REPORT_DATE,
        sql_min_rows=0 if route == "duckdb" else 10**12,
        memory_limit_mb=int(memory_limit_mb),
    )
    read_done = time.perf_counter()
    read_peak = _peak_rss_mb()
    with routed:
        joined = routed.join(records)
    end = time.perf_counter()
    sales = routed.sales
    return {
        "temp_disk_peak_mb": disk.stop(),
        "route": routed.route,
        "seconds": end - start,
        "records_seconds": records_done - start,
        "read_and_check_seconds": read_done - records_done,
        "join_seconds": end - read_done,
        "peak_rss_mb_after_read": read_peak,
        "peak_rss_mb": _peak_rss_mb(),
        "digest": {
            "rows_read": sales.rows_read,
            "rows_used": sales.rows_used,
            "superseded": sales.superseded,
            "rejections": sales.rejections.as_dict(),
            "listing_weeks": len(sales.frame),
            "joined": len(joined),
            "units": float(joined["units"].sum()),
            "price_sum": float(sales.frame["price"].sum()),
            "categories": {str(k): int(v) for k, v in joined["category"].value_counts().sort_index().items()},
        },
    }


def _child(directory: Path, route: str, memory_limit_mb: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers")}
    load_before = _load()
    out = subprocess.run(
        [sys.executable, __file__, "_child", str(directory), route, str(memory_limit_mb)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{route} run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load_before, _load()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shape", choices=("daily", "weekly"), default="daily")
    parser.add_argument("--memory-limit-mb", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest_scale.json")
    args = parser.parse_args()
    results = []
    for rows in args.sizes:
        print(f"\n== {rows:,} rows ({args.shape}): preparing", flush=True)
        directory, shape = prepare(rows, args.shape)
        runs: dict[str, list[dict]] = {route: [] for route in ROUTES}
        for repeat in range(args.repeats):
            order = ROUTES if repeat % 2 == 0 else tuple(reversed(ROUTES))
            for route in order:
                run = _child(directory, route, args.memory_limit_mb)
                runs[route].append(run)
                print(
                    f"  {route:6s} {run['seconds']:6.1f} s (read+check {run['read_and_check_seconds']:.1f}, join "
                    f"{run['join_seconds']:.1f}), peak RSS {run['peak_rss_mb']:.0f} MB, load {run['load_before']:.1f}",
                    flush=True,
                )
        digests = {route: runs[route][0]["digest"] for route in ROUTES}
        same = all(r["digest"] == digests[route] for route in ROUTES for r in runs[route])
        identical = same and digests["pandas"]["rejections"] == digests["duckdb"]["rejections"]
        keys = ("rows_read", "rows_used", "superseded", "listing_weeks", "joined", "categories")
        identical = identical and all(digests["pandas"][k] == digests["duckdb"][k] for k in keys)
        close = all(
            abs(digests["pandas"][k] - digests["duckdb"][k]) <= 1e-9 * abs(digests["pandas"][k])
            for k in ("units", "price_sum")
        )
        medians = {
            route: {
                "seconds": statistics.median(r["seconds"] for r in runs[route]),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs[route]),
                "read_and_check_seconds": statistics.median(r["read_and_check_seconds"] for r in runs[route]),
                "join_seconds": statistics.median(r["join_seconds"] for r in runs[route]),
            }
            for route in ROUTES
        }
        results.append(
            {
                **shape,
                "shape": args.shape,
                "runs": runs,
                "medians": medians,
                "duckdb_over_pandas": {
                    "seconds": medians["duckdb"]["seconds"] / medians["pandas"]["seconds"],
                    "peak_rss_mb": medians["duckdb"]["peak_rss_mb"] / medians["pandas"]["peak_rss_mb"],
                },
                "identical_counts_and_rows": identical,
                "sums_within_1e-9": close,
            }
        )
        print(
            f"  medians: pandas {medians['pandas']['seconds']:.1f} s {medians['pandas']['peak_rss_mb']:.0f} MB, "
            f"duckdb {medians['duckdb']['seconds']:.1f} s {medians['duckdb']['peak_rss_mb']:.0f} MB; "
            f"identical counts {identical}, sums close {close}",
            flush=True,
        )
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    shapes = previous.get("shapes", {})
    shapes[args.shape] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "memory_limit_mb": args.memory_limit_mb,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "threads": {"duckdb": 1, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "sizes": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"shapes": shapes}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(child(*sys.argv[2:5])))
        raise SystemExit(0)
    raise SystemExit(main())
