"""Benchmarks of the influence report: speed and memory against pyfixest, and the coverage of its intervals.

    python bench/report_bench.py speed     [--sizes 10000 100000 1000000] [--repeats 3] [--before DIR --compare-repeats 3]
    python bench/report_bench.py scale     [--scale-sizes 1000000 10000000] [--memory-limit-mb 2048]
    python bench/report_bench.py coverage  [--datasets 200]
    python bench/report_bench.py identification [--datasets 100]
    python bench/report_bench.py power     [--datasets 200]
    python bench/report_bench.py misclassification [--datasets 100]
    python bench/report_bench.py all

speed: for each size a simulated export (about 20k listings at 1M rows) is written to disk, then
  - end to end (read CSV, read records, as-of join, every fit, per-product effects, write json/csv/html) runs in a
    fresh process: wall time per stage and the process's peak RSS;
  - each headline fit (PPML, and OLS of log(units)), ours and pyfixest's (fepois / feols) on the same joined
    panel: timed in one process, interleaved (ours, pyfixest, ours, ...) after a warm-up so that a busy shared
    machine slows both alike, reporting medians and the median of the paired ratios; the peak RSS each adds
    above the loaded data, each alone in a fresh process; the largest coefficient and SE differences.
  - with --compare-repeats, end to end again in alternating fresh processes: the library as it was (--before, a
    layers/ folder from git archive), this one with BLAS on one thread per core, and this one as configured.
  Targets: 1M rows end to end <= 5 s on a quiet machine, each fit <= 0.5x pyfixest in the same run, peak <= 1.5 GB.
scale: the headline PPML on a joined panel of 1M and 10M rows (Parquet parts of ~1M rows built one at a time under
  .cache/report-scale/), each route alone in a fresh process: rows kept in DuckDB under a memory limit (one GROUP
  BY per Newton step), rows in numpy solved on cell sums, and the in-memory fit; time, peak RSS (VmHWM), and how
  far the routes' coefficients and standard errors are apart.
coverage: simulate many data sets with known effects and count how often the 95% intervals contain the truth
  (should be 93-97%), for the default data and for data where most weeks have no sale.

identification: Monte Carlo over the threats to the headline (a few huge sellers, effects that differ across
  products, photos chosen by listing quality, prices that follow demand): coverage and bias of the product + week
  headline (the range the report shows, and the CRV1, CR3 and wild score bootstrap ranges on every data set,
  whichever the rule picks), of the listing + week fit, of the elasticity and of the effect on units with the
  price channel; how often each warning fires; the per-product RMSE raw and shrunk. Also the threats to the event
  study (a launch promotion with the switch, effects that build up over weeks, prices set by each product's season,
  photos switched after sales rose): coverage and bias of the event study's pooled effect after the switch, how
  often its pre-trend test rejects, and how often each threat check warns. ``--scenarios`` runs some of them and
  merges them into the existing results file.

power: the minimum detectable lift the report states, planted: how often the report then finds the lift (about 80%).
misclassification: photos misclassified with a known matrix: bias, RMSE and coverage of the effects as measured and
  as corrected with a confusion matrix counted on a sample of labelled photos.

Results go to bench/results/report_speed.json, bench/results/report_scale.json, bench/results/report_coverage.json,
bench/results/identification.json, bench/results/power.json and bench/results/misclassification.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# the library under test: this checkout's, or in a child process the folder it was given (``_child(layers=...)``);
# put first on the path, it would otherwise shadow an earlier version passed through PYTHONPATH
sys.path.insert(0, os.environ.get("REPORT_BENCH_LAYERS", str(ROOT / "layers")))

LISTINGS_PER_PRODUCT = 4.0
WEEKS = 52


def _products_for(rows: int) -> int:
    # about 0.93 active weeks per listing-week slot (late starters), LISTINGS_PER_PRODUCT listings per product
    return max(10, round(rows / (LISTINGS_PER_PRODUCT * WEEKS * 0.93)))


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a child started by a parent that had
    built a large data set reports the parent's peak as its own.
    """
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


# ------------------------------------------------------------------------------------------- child processes


def child_end_to_end(data_dir: str, out_dir: str) -> dict:
    t0 = time.perf_counter()
    from imagelift.config import ReportConfig
    from imagelift.services import report_service
    from imagelift.services.report_service import run_local

    imports = time.perf_counter() - t0
    # the process's peak RSS when each stage ends: the high-water mark up to and including that stage
    stage_peaks: dict[str, float] = {"imports": _peak_rss_mb()}
    timed = report_service._Stages.run

    def run_and_record(self, name, stage):
        try:
            return timed(self, name, stage)
        finally:
            stage_peaks[name] = _peak_rss_mb()

    report_service._Stages.run = run_and_record
    fit_parts = _time_fit_parts()
    start, cpu_start = time.perf_counter(), time.process_time()
    run = run_local(
        [Path(data_dir) / "sales.csv"],
        Path(data_dir) / "categories.jsonl",
        Path(out_dir),
        ReportConfig.from_env(controls="promo"),
    )
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "seconds": total,
        # CPU time as well: on a shared machine the wall clock also counts the time spent waiting for a core
        "cpu_seconds": cpu,
        "import_seconds": imports,
        "stages": run.timings_s,
        "fit_parts_s": {name: round(seconds, 4) for name, seconds in sorted(fit_parts.items(), key=lambda kv: -kv[1])},
        "fit_other_s": run.timings_s.get("fit", 0.0) - sum(fit_parts.values()),
        "peak_rss_mb_after_stage": stage_peaks,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": run.report.counts.rows,
        "listings": run.report.counts.listings,
        "products": run.report.counts.products,
        "effects_pct": {e.category_name: e.effect_pct for e in run.report.effects},
    }


# What the fit stage (analysis.fit_models) calls, timed by wrapping the names it looks up in its module; none of
# them calls another, so their times add up (the rest is the fit stage's own work: designs, identification).
FIT_PARTS = (
    "fit_headline_ppml",
    "concentrated_intervals",
    "bootstrap_concentrated",
    "fit_two_way_ols",
    "_within_estimable",
    "fit_ppml",
    "identification_table",
    "fit_pooled_ols",
    "per_product_effects",
    "shrink_per_product",
    "switch_analyses",
    "leave_one_product_out",
    "identification",
)


def _time_fit_parts() -> dict[str, float]:
    from imagelift.influence import analysis

    seconds: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    for name in FIT_PARTS:
        if hasattr(analysis, name):  # an earlier version of the library may lack some
            setattr(analysis, name, timed(name, getattr(analysis, name)))
    if not hasattr(analysis, "fit_two_way_ols") and hasattr(analysis, "fit_ols_fe"):
        analysis.fit_ols_fe = timed("fit_ols_fe", analysis.fit_ols_fe)
    return seconds


def _panel(data_dir: str):
    import pandas as pd

    panel = pd.read_pickle(Path(data_dir) / "panel.pkl")
    return panel


def _fitter(implementation: str, model: str):
    names = ["category_model", "category_worn", "log_price", "promo"]
    if implementation == "ours":
        from threadpoolctl import threadpool_limits

        from imagelift.config import ReportConfig
        from imagelift.influence.estimation import fit_ppml
        from imagelift.influence.fits import fit_two_way_ols

        def run(frame):
            x = frame[names].to_numpy(dtype=float)
            product, week = frame["product_id"].to_numpy(), frame["week"].to_numpy()
            # BLAS as the report runs it (ReportConfig.blas_threads)
            with threadpool_limits(limits=1, user_api="blas"):
                if model == "ppml":
                    fit = fit_ppml(frame["units"].to_numpy(float), x, names, [product, week], product)
                else:
                    # the report's route: cell sums from ReportConfig.cell_sums_min_rows rows on
                    fit = fit_two_way_ols(
                        frame["log_units"].to_numpy(), x, names, product, week, ReportConfig(), model="ols_log_units"
                    )
            return fit.params, fit.std_err

        return run
    import pyfixest as pf

    formula = ("units" if model == "ppml" else "log_units") + " ~ " + " + ".join(names) + " | product_id + week"

    def run(frame):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if model == "ppml":
                fit = pf.fepois(formula, frame, vcov={"CRV1": "product_id"})
            else:
                fit = pf.feols(formula, frame, vcov={"CRV1": "product_id"})
        return fit.coef().to_numpy(), fit.se().to_numpy()

    return run


def _fit_panel(data_dir: str, model: str):
    panel = _panel(data_dir)
    if model == "ols":
        panel = panel[panel["units"] > 0].copy()
        panel["log_units"] = np.log(panel["units"])
    warmup = panel[panel["product_id"].isin(panel["product_id"].unique()[:50])]
    return panel, warmup


def child_memory(data_dir: str, implementation: str, model: str) -> dict:
    """One fit after a warm-up, alone in its process: the peak RSS it adds above the loaded data."""
    panel, warmup = _fit_panel(data_dir, model)
    run = _fitter(implementation, model)
    run(warmup)  # imports, JIT compilation, first-touch allocations
    baseline = _current_rss_mb()
    run(panel)
    return {"peak_above_baseline_mb": max(_peak_rss_mb() - baseline, 0.0), "peak_rss_mb": _peak_rss_mb()}


def child_timing(data_dir: str, model: str, repeats: int) -> dict:
    """Ours and pyfixest's fits in one process, interleaved, so that a busy machine slows both alike."""
    panel, warmup = _fit_panel(data_dir, model)
    runs = {name: _fitter(name, model) for name in ("ours", "pyfixest")}
    for run in runs.values():
        run(warmup)
    times: dict[str, list[float]] = {"ours": [], "pyfixest": []}
    results = {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run(panel)
            times[name].append(time.perf_counter() - start)
    ratios = [o / p for o, p in zip(times["ours"], times["pyfixest"], strict=True)]
    return {
        "seconds": times,
        "median_seconds": {name: statistics.median(t) for name, t in times.items()},
        "paired_ratios": ratios,
        "median_paired_ratio": statistics.median(ratios),
        "max_abs_coef_diff": float(np.max(np.abs(results["ours"][0] - results["pyfixest"][0]))),
        "max_abs_se_diff": float(np.max(np.abs(results["ours"][1] - results["pyfixest"][1]))),
        "nobs": len(panel),
    }


def _child(args: list[str], layers: Path | None = None, extra_env: dict[str, str] | None = None) -> dict:
    """One child process running ``args``, with the library from ``layers`` (default this checkout's)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(layers or ROOT / "layers"),
        "REPORT_BENCH_LAYERS": str(layers or ROOT / "layers"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
        **(extra_env or {}),
    }
    env = {k: v for k, v in env.items() if v != ""}
    out = subprocess.run(
        [sys.executable, __file__, "_child", *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- speed


def prepare(rows: int, directory: Path) -> dict:
    from imagelift.influence.records import join_categories, normalise_records
    from imagelift.influence.sales import Rejections, read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate, write_simulation

    spec = SimulationSpec(products=_products_for(rows), listings_per_product=LISTINGS_PER_PRODUCT, weeks=WEEKS, seed=1)
    sim = simulate(spec)
    paths = write_simulation(sim, directory)
    sales = read_sales([("sales.csv", paths["sales"].read_bytes())], controls=["promo"])
    panel = join_categories(sales.frame, normalise_records(sim.records), Rejections())
    panel["category_model"] = (panel["category"] == 1).astype(float)
    panel["category_worn"] = (panel["category"] == 2).astype(float)
    panel["log_price"] = np.log(panel["price"])
    panel.to_pickle(directory / "panel.pkl")
    return {"rows": len(sim.sales), "listings": sim.truth["listings"], "products": sim.truth["products"]}


# End-to-end variants compared in one run, alternating: the library before these changes (``--before``, with the
# BLAS threads it ran with), this checkout with BLAS left at one thread per core, and this checkout as configured.
E2E_VARIANTS = {
    "before": {},
    "default_blas_threads": {"REPORT_BLAS_THREADS": "0"},
    "now": {},
}


def compare_end_to_end(data: Path, before: Path | None, repeats: int) -> dict:
    """End to end per variant, ``repeats`` rounds of each in turn (fresh processes), so load slows all alike."""
    variants = {k: v for k, v in E2E_VARIANTS.items() if k != "before" or before is not None}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, env in variants.items():
            layers = before if name == "before" else None
            runs[name].append(_child(["e2e", str(data), str(data / f"out-{name}")], layers=layers, extra_env=env))
    out = {}
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        out[name] = {
            "seconds": seconds,
            "median_seconds": statistics.median(seconds),
            "median_import_seconds": statistics.median(r["import_seconds"] for r in results),
            "median_fit_seconds": statistics.median(r["stages"]["fit"] for r in results),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        }
        print(
            f"  {name:22s} end to end {out[name]['median_seconds']:.2f} s (fit {out[name]['median_fit_seconds']:.2f} s, "
            f"imports {out[name]['median_import_seconds']:.2f} s), peak {out[name]['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return out


def speed(sizes: list[int], repeats: int, before: Path | None = None, compare_repeats: int = 0) -> dict:
    results = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
            data = Path(tmp)
            shape = prepare(rows, data)
            print(
                f"\n== {shape['rows']:,} rows, {shape['listings']:,} listings, {shape['products']:,} products",
                flush=True,
            )
            comparison = compare_end_to_end(data, before, compare_repeats) if compare_repeats else None
            e2e = _child(["e2e", str(data), str(data / "out")])
            print(
                f"end to end {e2e['seconds']:.2f} s (imports {e2e['import_seconds']:.2f} s more), "
                f"peak RSS {e2e['peak_rss_mb']:.0f} MB; stages "
                + ", ".join(f"{k} {v:.2f}" for k, v in e2e["stages"].items()),
                flush=True,
            )
            fits = {}
            for model in ("ppml", "ols"):
                timing = _child(["time", str(data), model, str(repeats)])
                memory = {name: _child(["memory", str(data), name, model]) for name in ("ours", "pyfixest")}
                fits[model] = {**timing, "memory": memory, "time_ratio": timing["median_paired_ratio"]}
                med = timing["median_seconds"]
                print(
                    f"{model:5s} ours {med['ours']:.3f} s (+{memory['ours']['peak_above_baseline_mb']:.0f} MB)  "
                    f"pyfixest {med['pyfixest']:.3f} s (+{memory['pyfixest']['peak_above_baseline_mb']:.0f} MB)  "
                    f"paired ratio {timing['median_paired_ratio']:.2f}  |coef diff| {timing['max_abs_coef_diff']:.1e}  "
                    f"|se diff| {timing['max_abs_se_diff']:.1e}",
                    flush=True,
                )
            results.append({**shape, "end_to_end": e2e, "fits": fits, "end_to_end_compared": comparison})
    largest = results[-1]
    targets = {
        "end_to_end_seconds_at_largest": largest["end_to_end"]["seconds"],
        "end_to_end_target_s": 5.0,
        "peak_rss_mb_at_largest": largest["end_to_end"]["peak_rss_mb"],
        "peak_target_mb": 1536,
        "fit_time_ratios_at_largest": {m: f["time_ratio"] for m, f in largest["fits"].items()},
        "fit_ratio_target": 0.5,
    }
    return {"sizes": results, "targets": targets}


# ------------------------------------------------------------------------------------------------- scale

SCALE_NAMES = ["category_model", "category_worn", "log_price", "promo"]
SCALE_CHUNK_ROWS = 1_000_000


def prepare_scale(rows: int, directory: Path) -> dict:
    """The joined panel of ``rows`` listing-weeks as Parquet parts of about 1M rows, each simulated, read and
    joined on its own (products of part i are C<i>P...), so that no step ever holds more than one part.

    Parts are kept under ``directory`` (``.cache/``) and reused by later runs of the same size.
    """
    import duckdb

    from imagelift.influence.records import join_categories, normalise_records
    from imagelift.influence.sales import Rejections, read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate

    directory.mkdir(parents=True, exist_ok=True)
    done = directory / "shape.json"
    if done.is_file():
        return json.loads(done.read_text())
    connection = duckdb.connect(":memory:")
    total = listings = products = 0
    part = 0
    while total < rows:
        chunk = min(SCALE_CHUNK_ROWS, rows - total)
        spec = SimulationSpec(
            products=_products_for(chunk), listings_per_product=LISTINGS_PER_PRODUCT, weeks=WEEKS, seed=1000 + part
        )
        sim = simulate(spec)
        sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
        panel = join_categories(sales.frame, normalise_records(sim.records), Rejections())
        frame = {
            "product_id": (f"C{part:03d}" + panel["product_id"].astype(str)).to_numpy(dtype=object),
            "week": panel["week"].to_numpy(),
            "units": panel["units"].to_numpy(dtype=float),
            "category_model": (panel["category"] == 1).to_numpy(dtype=float),
            "category_worn": (panel["category"] == 2).to_numpy(dtype=float),
            "log_price": np.log(panel["price"].to_numpy(dtype=float)),
            "promo": panel["promo"].to_numpy(dtype=float),
        }
        import pandas as pd

        connection.register("part", pd.DataFrame(frame))
        connection.execute(f"COPY part TO '{directory / f'part-{part:03d}.parquet'}' (FORMAT parquet)")
        connection.unregister("part")
        total += len(panel)
        listings += sim.truth["listings"]
        products += sim.truth["products"]
        print(f"  part {part}: {len(panel):,} rows ({total:,} of {rows:,})", flush=True)
        part += 1
    shape = {"rows": total, "listings": listings, "products": products, "parts": part}
    done.write_text(json.dumps(shape))
    return shape


def child_scale(directory: str, route: str, memory_limit_mb: str) -> dict:
    """The headline PPML on the Parquet panel by one route, alone in its process: time and peak RSS.

    ``duckdb``: the rows stay in DuckDB (memory limit ``memory_limit_mb``), one GROUP BY per Newton step;
    ``cells``: rows loaded into numpy, solved on cell sums; ``rows``: rows loaded, fixed effects swept out of every
    row (the in-memory fit).
    """
    from threadpoolctl import threadpool_limits

    from imagelift.influence.aggregated import fit_ppml_aggregated, fit_ppml_rows
    from imagelift.influence.duck import DuckCellSums, connect
    from imagelift.influence.estimation import fit_ppml

    query = f"SELECT * FROM read_parquet('{Path(directory) / 'part-*.parquet'}')"
    baseline = _current_rss_mb()
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        if route == "duckdb":
            with tempfile.TemporaryDirectory(prefix="duckdb-spill-", dir=directory) as spill:
                connection = connect(int(memory_limit_mb), threads=1, temp_directory=Path(spill))
                source = DuckCellSums(connection, query, "units", SCALE_NAMES)
                loaded = time.perf_counter()
                fit = fit_ppml_aggregated(source)
                connection.close()
        else:
            import duckdb

            frame = duckdb.connect(":memory:").execute(query).df()
            y = frame["units"].to_numpy(dtype=float)
            x = frame[SCALE_NAMES].to_numpy(dtype=float)
            product, week = frame["product_id"].to_numpy(), frame["week"].to_numpy()
            del frame
            loaded = time.perf_counter()
            if route == "cells":
                fit = fit_ppml_rows(y, x, SCALE_NAMES, product, week)
            else:
                fit = fit_ppml(y, x, SCALE_NAMES, [product, week], product)
        end = time.perf_counter()
    return {
        "route": route,
        "seconds": end - start,
        "load_seconds": loaded - start,
        "fit_seconds": end - loaded,
        "iterations": fit.iterations,
        "nobs": fit.nobs,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_above_start_mb": _peak_rss_mb() - baseline,
        "memory_limit_mb": int(memory_limit_mb) if route == "duckdb" else None,
        "params": fit.params.tolist(),
        "std_err": fit.std_err.tolist(),
    }


SCALE_ROUTES = ("duckdb", "cells", "rows")

# The report's two OLS fits on the scale panel: outcome, regressors, weeks with sales only.
OLS_SCALE_FITS = {
    "ols_log_units": ("log_units", SCALE_NAMES, True),
    "price_premium": ("log_price", ["category_model", "category_worn", "promo"], False),
}
OLS_IMPLEMENTATIONS = ("cells", "rows", "pyfixest")


def _scale_frame(directory: str):
    """The Parquet panel with product and week codes (as the report's Panel holds them) and log(units)."""
    import duckdb

    from imagelift.influence.demean import factorize

    query = f"SELECT * FROM read_parquet('{Path(directory) / 'part-*.parquet'}')"
    frame = duckdb.connect(":memory:").execute(query).df()
    frame["product_code"] = factorize(frame.pop("product_id").to_numpy())[0]
    frame["week_code"] = factorize(frame.pop("week").to_numpy())[0]
    units = frame["units"].to_numpy()
    with np.errstate(divide="ignore"):
        frame["log_units"] = np.where(units > 0, np.log(units), np.nan)
    return frame


def _ols_runner(frame, implementation: str, model: str):
    """A no-argument callable fitting ``model`` by ``implementation`` on ``frame`` (inputs built beforehand)."""
    outcome, names, sold_only = OLS_SCALE_FITS[model]
    if sold_only:
        frame = frame[frame["units"].to_numpy() > 0]
    if implementation == "pyfixest":
        import pyfixest as pf

        data = frame[[outcome, *names, "product_code", "week_code"]].reset_index(drop=True)
        formula = f"{outcome} ~ " + " + ".join(names) + " | product_code + week_code"

        def run_pyfixest():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = pf.feols(formula, data, vcov={"CRV1": "product_code"})
            return fit.coef().to_numpy(), fit.se().to_numpy()

        return run_pyfixest
    from threadpoolctl import threadpool_limits

    from imagelift.config import ReportConfig
    from imagelift.influence.estimation import fit_ols_fe
    from imagelift.influence.fits import fit_two_way_ols

    y = frame[outcome].to_numpy(dtype=float)
    x = frame[names].to_numpy(dtype=float)
    product, week = frame["product_code"].to_numpy(), frame["week_code"].to_numpy()
    # the report's configuration; the warm-up on a few products is below its threshold and is sent to cells too
    config = ReportConfig()
    if implementation == "cells":
        config = replace(config, cell_sums_min_rows=min(config.cell_sums_min_rows, len(y)))

    def run_ours():
        with threadpool_limits(limits=1, user_api="blas"):
            if implementation == "cells":
                fit = fit_two_way_ols(y, x, names, product, week, config, model=model)
                assert fit.demeaned_x is None, "the cell route was not taken"
            else:
                fit = fit_ols_fe(y, x, names, [product, week], product, model=model, tol=config.fe_tol)
        return fit.params, fit.std_err

    return run_ours


def child_scale_ols(directory: str, repeats: str) -> dict:
    """The report's OLS fits by cell sums, by rows and by pyfixest's feols, in one process, interleaved."""
    frame = _scale_frame(directory)
    warmup = frame[frame["product_code"].to_numpy() < 50]
    out = {}
    for model in OLS_SCALE_FITS:
        for implementation in OLS_IMPLEMENTATIONS:  # imports, JIT compilation, first-touch allocations
            _ols_runner(warmup, implementation, model)()
        runs = {name: _ols_runner(frame, name, model) for name in OLS_IMPLEMENTATIONS}
        times: dict[str, list[float]] = {name: [] for name in runs}
        results = {}
        for _ in range(int(repeats)):
            for name, run in runs.items():
                start = time.perf_counter()
                results[name] = run()
                times[name].append(time.perf_counter() - start)
        ratios = {
            name: [a / b for a, b in zip(times[name], times["pyfixest"], strict=True)] for name in ("cells", "rows")
        }
        out[model] = {
            "nobs": int(len(frame) if model == "price_premium" else (frame["units"] > 0).sum()),
            "seconds": times,
            "median_seconds": {name: statistics.median(t) for name, t in times.items()},
            "median_paired_ratio_to_pyfixest": {name: statistics.median(r) for name, r in ratios.items()},
            "max_abs_coef_diff": {
                f"cells_vs_{other}": float(np.max(np.abs(results["cells"][0] - results[other][0])))
                for other in ("rows", "pyfixest")
            },
            "max_abs_se_diff": {
                f"cells_vs_{other}": float(np.max(np.abs(results["cells"][1] - results[other][1])))
                for other in ("rows", "pyfixest")
            },
            "params": results["cells"][0].tolist(),
            "std_err": results["cells"][1].tolist(),
        }
    return out


def child_scale_ols_memory(directory: str, implementation: str) -> dict:
    """Both OLS fits by one implementation after a warm-up, alone in a process: the peak RSS they add."""
    frame = _scale_frame(directory)
    warmup = frame[frame["product_code"].to_numpy() < 50]
    runs = {}
    for model in OLS_SCALE_FITS:
        _ols_runner(warmup, implementation, model)()
        runs[model] = _ols_runner(frame, implementation, model)
    baseline = _current_rss_mb()
    for run in runs.values():
        run()
    return {"peak_above_baseline_mb": max(_peak_rss_mb() - baseline, 0.0), "peak_rss_mb": _peak_rss_mb()}


def child_report_fits(directory: str) -> dict:
    """The report's three product + week fits as it runs them (headline PPML, log(units) OLS, price premium), alone
    in a process on the loaded panel: time of each and the process's peak RSS."""
    from threadpoolctl import threadpool_limits

    from imagelift.config import ReportConfig
    from imagelift.influence.fits import fit_two_way_ols
    from imagelift.influence.headline import fit_headline_ppml

    start = time.perf_counter()
    frame = _scale_frame(directory)
    loaded = time.perf_counter()
    config = ReportConfig()
    product, week = frame["product_code"].to_numpy(), frame["week_code"].to_numpy()
    seconds = {}
    with threadpool_limits(limits=1, user_api="blas"):
        t0 = time.perf_counter()
        x = frame[SCALE_NAMES].to_numpy(dtype=float)
        fit_headline_ppml(frame["units"].to_numpy(dtype=float), x, SCALE_NAMES, product, week, config)
        seconds["headline_ppml"] = time.perf_counter() - t0
        for model, (outcome, names, sold_only) in OLS_SCALE_FITS.items():
            t0 = time.perf_counter()
            rows = frame["units"].to_numpy() > 0 if sold_only else slice(None)
            y = frame[outcome].to_numpy(dtype=float)[rows]
            fit_two_way_ols(
                y, frame[names].to_numpy(dtype=float)[rows], names, product[rows], week[rows], config, model=model
            )
            seconds[model] = time.perf_counter() - t0
    return {
        "load_seconds": loaded - start,
        "fit_seconds": seconds,
        "fits_total_seconds": sum(seconds.values()),
        "peak_rss_mb": _peak_rss_mb(),
    }


def scale(
    sizes: list[int],
    memory_limit_mb: int,
    routes: list[str],
    ols_repeats: int = 3,
    e2e_max_rows: int = 0,
    e2e_repeats: int = 3,
    before: Path | None = None,
) -> dict:
    results = []
    for rows in sizes:
        directory = ROOT / ".cache" / "report-scale" / f"{rows}"
        if routes or ols_repeats:
            print(f"\n== {rows:,} rows: preparing Parquet parts under {directory.relative_to(ROOT)}", flush=True)
            shape = prepare_scale(rows, directory)
        else:  # the end-to-end comparison alone writes its own export
            print(f"\n== {rows:,} rows", flush=True)
            shape = {"rows_requested": rows}
        fits = {}
        for route in routes:
            fits[route] = _child(["scale", str(directory), route, str(memory_limit_mb)])
            f = fits[route]
            print(
                f"  {route:7s} {f['seconds']:.1f} s (load {f['load_seconds']:.1f} s, fit {f['fit_seconds']:.1f} s, "
                f"{f['iterations']} steps), peak RSS {f['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        entry = dict(shape)
        if fits:
            reference = fits.get("rows") or next(iter(fits.values()))
            agreement = {
                route: {
                    "max_abs_coef_diff": float(np.max(np.abs(np.subtract(f["params"], reference["params"])))),
                    "max_rel_se_diff": float(np.max(np.abs(np.divide(f["std_err"], reference["std_err"]) - 1))),
                }
                for route, f in fits.items()
            }
            entry.update({"fits": fits, "agreement_with_" + reference["route"]: agreement})
        if ols_repeats:
            entry["ols"] = _child(["scale_ols", str(directory), str(ols_repeats)])
            entry["ols_memory"] = {
                name: _child(["scale_ols_memory", str(directory), name]) for name in OLS_IMPLEMENTATIONS
            }
            for model, o in entry["ols"].items():
                med, ratio = o["median_seconds"], o["median_paired_ratio_to_pyfixest"]
                print(
                    f"  {model:14s} cells {med['cells']:.3f} s, rows {med['rows']:.3f} s, pyfixest {med['pyfixest']:.3f} s;"
                    f" paired ratio to pyfixest cells {ratio['cells']:.2f}, rows {ratio['rows']:.2f}",
                    flush=True,
                )
            report_fits = _child(["report_fits", str(directory)])
            entry["report_fits"] = report_fits
            print(
                f"  report's fits {report_fits['fits_total_seconds']:.1f} s ("
                + ", ".join(f"{k} {v:.1f}" for k, v in report_fits["fit_seconds"].items())
                + f"), peak RSS {report_fits['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        if rows <= e2e_max_rows:
            entry["end_to_end"] = _scale_end_to_end(rows, before, e2e_repeats)
        results.append(entry)
    return {
        "sizes": results,
        "memory_limit_mb": memory_limit_mb,
        "model": "ppml units ~ " + " + ".join(SCALE_NAMES),
        "ols_models": {
            m: f"{o} ~ " + " + ".join(n) + (" (units > 0)" if s else "") for m, (o, n, s) in OLS_SCALE_FITS.items()
        },
        "load": _load(),
    }


def _load() -> dict:
    """The machine's load averages (1, 5, 15 min) when the run ends."""
    one, five, fifteen = os.getloadavg()
    return {"load_1m": one, "load_5m": five, "load_15m": fifteen}


def _scale_end_to_end(rows: int, before: Path | None, repeats: int) -> dict:
    """End to end on a simulated export of ``rows`` rows (CSV, records): this checkout and, alternating in fresh
    processes, the library ``before``; per run the stages and what the fit stage spends its time on."""
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        data = Path(tmp)
        shape = prepare(rows, data)
        variants = {"now": None, **({"before": before} if before is not None else {})}
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for _ in range(repeats):
            for name, layers in variants.items():
                runs[name].append(_child(["e2e", str(data), str(data / f"out-{name}")], layers=layers))
                r = runs[name][-1]
                print(
                    f"  end to end ({name}) {r['seconds']:.2f} s (fit {r['stages'].get('fit', 0):.2f} s), "
                    f"{r['cpu_seconds']:.2f} s CPU, peak {r['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        out = {"rows": shape["rows"], "runs": runs}
        for name, results in runs.items():
            out[f"median_seconds_{name}"] = statistics.median(r["seconds"] for r in results)
            out[f"median_cpu_seconds_{name}"] = statistics.median(r["cpu_seconds"] for r in results)
            for part in ("switch_analyses", "fit_ppml"):
                out[f"median_{part}_seconds_{name}"] = statistics.median(
                    r["fit_parts_s"].get(part, 0.0) for r in results
                )
        if "before" in runs:
            for key in ("seconds", "cpu_seconds"):
                out[f"paired_ratio_now_to_before_{key}"] = statistics.median(
                    a[key] / b[key] for a, b in zip(runs["now"], runs["before"], strict=True)
                )
            out["paired_ratio_now_to_before"] = out["paired_ratio_now_to_before_seconds"]
        return out


# ---------------------------------------------------------------------------------------------- coverage


def coverage(datasets: int) -> dict:
    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import analyse
    from imagelift.influence.records import normalise_records
    from imagelift.influence.report import Effect
    from imagelift.influence.sales import read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate

    scenarios = {
        "default": {"products": 150, "weeks": 26},
        "many_zero_weeks": {"products": 200, "weeks": 26, "base_units": 0.3},
    }
    config = ReportConfig(controls="promo")
    out = {}
    for name, params in scenarios.items():
        hits: dict[str, list[bool]] = {}
        zero_share, per_product_hits = [], []
        start = time.perf_counter()
        for seed in range(datasets):
            sim = simulate(SimulationSpec(**params, seed=10_000 + seed))
            zero_share.append(float((sim.sales["units"] == 0).mean()))
            sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
            report = analyse(sales, normalise_records(sim.records), config)
            truth = sim.truth

            def hit(key: str, effect: Effect, value: float, hits: dict = hits) -> None:
                if effect.ci_low is not None:
                    hits.setdefault(key, []).append(effect.ci_low <= value <= effect.ci_high)

            for e in report.effects:
                hit(f"ppml_{e.category_name}", e, truth["log_effects"][e.category_name])
            hit("ppml_elasticity", report.price_elasticity, truth["elasticity"])
            for e in report.price_effects:
                hit(f"price_premium_{e.category_name}", e, np.log1p(truth["price_premium_pct"][e.category_name] / 100))
            for e in report.log_units_check.effects:
                hit(f"check_ols_log_units_{e.category_name}", e, truth["log_effects"][e.category_name])
            for e in report.pooled.effects:
                hit(f"pooled_ols_{e.category_name}", e, truth["log_effects"][e.category_name])
            for r in report.per_product:
                planted = truth["effects_pct"][r.category_name]
                per_product_hits.append(r.effect_pct_ci[0] <= planted <= r.effect_pct_ci[1])
            if (seed + 1) % 50 == 0:
                print(f"  {name}: {seed + 1}/{datasets} data sets, {time.perf_counter() - start:.0f} s", flush=True)
        rates = {k: {"coverage": float(np.mean(v)), "n": len(v)} for k, v in hits.items()}
        rates["per_product_pooled"] = {"coverage": float(np.mean(per_product_hits)), "n": len(per_product_hits)}
        headline = [h for k, v in hits.items() if k.startswith("ppml_") for h in v]
        out[name] = {
            "params": params,
            "datasets": datasets,
            "mean_zero_share": float(np.mean(zero_share)),
            "rows_per_dataset": len(sim.sales),
            "coverage": rates,
            "headline_pooled": {"coverage": float(np.mean(headline)), "n": len(headline)},
            "seconds": time.perf_counter() - start,
        }
        print(f"{name} (zero weeks {np.mean(zero_share):.0%}):", flush=True)
        for k, v in rates.items():
            print(f"  {k:32s} {v['coverage']:.3f}  (n={v['n']})", flush=True)
    sd = float(np.sqrt(0.95 * 0.05 / datasets))
    return {"scenarios": out, "nominal": 0.95, "binomial_sd_per_rate": sd, "target": [0.93, 0.97]}


# ------------------------------------------------------------------------------------------ identification

IDENTIFICATION_SCENARIOS = {
    "homogeneous": {},
    "huge_sellers": {"huge_products": 3, "huge_demand": 6.0},
    "heterogeneous_effects": {"model_lift_sd": 0.15},
    "selection_on_listing_quality": {"listing_selection": 1.0},
    "prices_follow_demand": {"price_follows_demand": 0.5, "product_week_sd": 0.3},
    "promotion_at_switches": {"switch_promotion_lift": 50.0, "switch_promotion_weeks": 2},
    "ramping_effects": {"lift_ramp_weeks": 8, "model_lift": 30.0},
    "seasonal_prices": {"product_season_sd": 0.3, "price_follows_season": 0.5},
    "reverse_causality": {"pre_switch_rise": 30.0, "pre_switch_weeks": 4},
}
THREAT_CHECKS = ("donut", "placebo_leads", "dynamic_profile", "product_season")


def _event_study_records(report, truth: dict, add) -> None:
    """Per data set: the event study's pooled effect after the switch against the planted lift, and the checks."""
    planted = truth["log_effects"]["model"]
    study = next((s for s in report.event_study if s.category == 1), None)
    if study is not None and study.after is not None and study.after.estimated:
        add("event_study_covers", study.after.ci_low <= planted <= study.after.ci_high)
        add("event_study_error", study.after.estimate - planted)
        add("event_study_switches", study.switches)
    if study is not None and study.pretrend_p_value is not None:
        add("pretrend_rejects_model", study.pretrend_p_value < 0.05)
    for check in THREAT_CHECKS:
        lines = [c for c in report.checks if c.check == check]
        add(f"warns_{check}", any(c.moved for c in lines))
        add(f"check_not_made_{check}", any(c.note for c in lines))
        model = next((c for c in lines if c.quantity in ("model effect", "model switches")), None)
        if model is not None and model.p_value is not None:
            add(f"warns_{check}_model", model.moved)
    add("warns_any_check", any(c.moved for c in report.checks))


def identification(datasets: int, products: int = 200, weeks: int = 40, scenarios: list[str] | None = None) -> dict:
    from scipy import stats

    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import assemble_report, fit_models, prepare_panel
    from imagelift.influence.bootstrap import restricted_interval, unrestricted_interval
    from imagelift.influence.records import join_categories, normalise_records
    from imagelift.influence.sales import read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate

    config = ReportConfig(controls="promo")
    out = {}

    def analyse_with_fits(sales, records):
        panel = prepare_panel(join_categories(sales.frame, records, sales.rejections), sales.controls)
        fits = fit_models(panel, config)
        return assemble_report(sales, records, panel, fits, config), fits

    for name, params in IDENTIFICATION_SCENARIOS.items():
        if scenarios and name not in scenarios:
            continue
        start = time.perf_counter()
        records: dict[str, list[float]] = {}

        def add(key: str, value: float, records: dict = records) -> None:
            records.setdefault(key, []).append(float(value))

        for seed in range(datasets):
            sim = simulate(SimulationSpec(products=products, weeks=weeks, **params, seed=20_000 + seed))
            sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
            report, fits = analyse_with_fits(sales, normalise_records(sim.records))
            truth = sim.truth
            planted = truth["log_effects"]["model"]
            model = report.effects[0]
            conc = next(c for c in report.concentration if c.category == 1)
            t_crit = float(stats.t.ppf(0.975, report.spec.clusters - 1))
            for label, se in (("crv1", conc.crv1_std_err), ("cr3", conc.cr3_std_err)):
                add(f"headline_{label}_covers", abs(model.estimate - planted) <= t_crit * se)
            add("headline_covers", model.ci_low <= planted <= model.ci_high)
            add("headline_uses_bootstrap", conc.interval == "wild bootstrap")
            # every interval on every data set, whichever the rule picks: the evidence for the rule
            for label, interval in (
                ("wcr_webb", restricted_interval(fits.ppml, "category_model", 0.95, draws=999, seed=seed)),
                (
                    "wcr_rademacher",
                    restricted_interval(fits.ppml, "category_model", 0.95, draws=999, seed=seed, kind="rademacher"),
                ),
                ("wcu_webb", unrestricted_interval(fits.ppml, "category_model", 0.95, draws=999, seed=seed)),
            ):
                bounded = interval.low is not None and interval.high is not None
                add(f"headline_{label}_bounded", bounded)
                add(
                    f"headline_{label}_covers",
                    (interval.low is None or interval.low <= planted)
                    and (interval.high is None or planted <= interval.high),
                )
                if bounded:
                    add(f"headline_{label}_width", interval.high - interval.low)
            add("headline_cr3_width", 2 * t_crit * conc.cr3_std_err)
            add("headline_width", model.ci_high - model.ci_low)
            loo = next((row for row in report.leave_one_out if row.category == 1), None)
            if loo is not None:
                add("warns_one_product_drives", loo.driven)
                add("leave_one_out_span", loo.high - loo.low)
            add("headline_error", model.estimate - planted)
            add("headline_uses_cr3", conc.interval == "CR3")
            add("top3_share", conc.top_share)
            add("effective_products", conc.effective_products)
            within = report.within_listing.effects[0] if report.within_listing else None
            if within is not None and within.estimated:
                add("within_listing_covers", within.ci_low <= planted <= within.ci_high)
                add("within_listing_error", within.estimate - planted)
            ident = report.identification[0]
            add("weight_within_listing", ident.weight_within_listing or 0.0)
            add("warns_disagreement", any("two comparisons disagree on model" in w for w in report.warnings))
            elasticity = report.price_elasticity
            add("elasticity", elasticity.estimate)
            add("elasticity_covers", elasticity.ci_low <= truth["elasticity"] <= elasticity.ci_high)
            add("warns_elasticity", any("price elasticity is" in w for w in report.warnings))
            premium = np.log1p(truth["price_premium_pct"]["model"] / 100)
            units = report.units_with_price[0]
            if units.estimated:
                add("units_with_price_covers", units.ci_low <= planted + truth["elasticity"] * premium <= units.ci_high)
            per_product = [r for r in report.per_product if r.category == 1 and r.shrunk_effect_pct is not None]
            if per_product and not params.get("model_lift_sd"):
                raw = np.array([r.estimate for r in per_product])
                shrunk = np.log1p(np.array([r.shrunk_effect_pct for r in per_product]) / 100)
                add("per_product_rmse_raw", np.sqrt(np.mean((raw - planted) ** 2)))
                add("per_product_rmse_shrunk", np.sqrt(np.mean((shrunk - planted) ** 2)))
                add("per_product_nominal_significant_share", np.mean([(r.p_value or 1) < 0.05 for r in per_product]))
                add("per_product_fdr_flag_share", np.mean([r.discovery for r in per_product]))
            shrink = next((s for s in report.shrinkage if s.category == 1), None)
            if shrink is not None:
                add("tau_model", shrink.tau)
            _event_study_records(report, truth, add)
        summary = {key: float(np.mean(values)) for key, values in records.items()}
        for key in ("headline_error", "within_listing_error", "event_study_error"):
            if key in records:
                summary[key.replace("_error", "_rmse")] = float(np.sqrt(np.mean(np.square(records[key]))))
                summary[key.replace("_error", "_bias")] = summary.pop(key)
        summary["n"] = datasets
        out[name] = {"params": params, "summary": summary, "seconds": time.perf_counter() - start}
        print(f"{name}:", flush=True)
        for key, value in summary.items():
            print(f"  {key:40s} {value:.4f}", flush=True)
    return {
        "scenarios": out,
        "products": products,
        "weeks": weeks,
        "planted": {"model_lift_pct": 9.0, "elasticity": -1.2, "model_price_premium_pct": 3.0},
        "nominal": 0.95,
        "binomial_sd_per_rate": float(np.sqrt(0.95 * 0.05 / datasets)),
    }


# --------------------------------------------------------------------------------------------------- power


def power_check(datasets: int, pilot: int = 40, products: int = 200, weeks: int = 40) -> dict:
    """Plant each comparison's reported minimum detectable lift and count how often the report rejects no lift.

    A pilot of ``pilot`` data sets gives the median minimum detectable model lift the report states, for the
    headline and for the within-listing fit; then ``datasets`` data sets with that lift planted give the share whose
    interval excludes zero (should be about the 80% power the figure promises).
    """
    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import analyse
    from imagelift.influence.records import normalise_records
    from imagelift.influence.sales import read_sales
    from imagelift.influence.simulate import SimulationSpec, simulate

    config = ReportConfig(controls="promo")

    def report_for(seed: int, model_lift: float):
        sim = simulate(SimulationSpec(products=products, weeks=weeks, model_lift=model_lift, seed=seed))
        sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
        return analyse(sales, normalise_records(sim.records), config)

    def model_row(report, comparison: str):
        return next(p for p in report.power if p.comparison == comparison and p.category == 1)

    pilot_mde = {"headline": [], "within_listing": []}
    for seed in range(pilot):
        report = report_for(40_000 + seed, 9.0)
        for comparison, values in pilot_mde.items():
            values.append(model_row(report, comparison).minimum_detectable_pct)
    out = {}
    for comparison, values in pilot_mde.items():
        planted = float(np.median(values))
        start = time.perf_counter()
        rejected, stated = [], []
        for seed in range(datasets):
            report = report_for(50_000 + seed, planted)
            effect = report.effects[0] if comparison == "headline" else report.within_listing.effects[0]
            rejected.append(effect.ci_low > 0 or effect.ci_high < 0)
            stated.append(model_row(report, comparison).minimum_detectable_pct)
        rate = float(np.mean(rejected))
        out[comparison] = {
            "planted_lift_pct": planted,
            "pilot_minimum_detectable_pct": {"median": planted, "min": min(values), "max": max(values)},
            "stated_minimum_detectable_pct_median": float(np.median(stated)),
            "rejection_rate": rate,
            "n": datasets,
            "binomial_sd": float(np.sqrt(rate * (1 - rate) / datasets)),
            "seconds": time.perf_counter() - start,
        }
        print(
            f"{comparison}: planted {planted:+.2f}% (the median stated MDE of {pilot} pilots), "
            f"rejection rate {rate:.3f} over {datasets} data sets (target {config.power:.2f})",
            flush=True,
        )
    return {"scenarios": out, "products": products, "weeks": weeks, "power": config.power, "level": 0.95}


# ---------------------------------------------------------------------------------------------- misclassification

MISCLASSIFICATION_MATRIX = [[0.80, 0.10, 0.10], [0.10, 0.75, 0.15], [0.05, 0.10, 0.85]]
"""Rows: true model, worn, product; columns: what the simulated classifier calls them."""


def misclassification_check(datasets: int, labelled_per_class: int = 100, products: int = 200, weeks: int = 40) -> dict:
    """Photos misclassified with a known matrix: bias, RMSE and coverage of the effects before and after correction.

    Each data set's confusion counts are a fresh sample of ``labelled_per_class`` labelled photos per true category
    from the same matrix, as a shop's labelled set would be.
    """
    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import assemble_report, fit_models, prepare_panel
    from imagelift.influence.misclassification import SOURCE_LABELLED, Confusion, with_misclassification
    from imagelift.influence.records import join_categories, normalise_records
    from imagelift.influence.sales import read_sales
    from imagelift.influence.simulate import SimulationSpec, misclassify_records, simulate

    matrix = np.array(MISCLASSIFICATION_MATRIX)
    config = ReportConfig(controls="promo")
    planted = {"model": 20.0, "worn": 10.0}
    values: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        values.setdefault(key, []).append(float(value))

    start = time.perf_counter()
    for seed in range(datasets):
        rng = np.random.default_rng(60_000 + seed)
        sim = simulate(
            SimulationSpec(
                products=products,
                weeks=weeks,
                model_lift=planted["model"],
                worn_lift=planted["worn"],
                seed=60_000 + seed,
            )
        )
        records = normalise_records(misclassify_records(sim.records, matrix, seed))
        sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
        panel = prepare_panel(join_categories(sales.frame, records, sales.rejections), sales.controls)
        fits = fit_models(panel, config)
        report = assemble_report(sales, records, panel, fits, config)
        counts = np.vstack([rng.multinomial(labelled_per_class, row) for row in matrix]).astype(float)
        report = with_misclassification(report, fits.ppml, Confusion(counts, "simulated", SOURCE_LABELLED), config)
        for k, name in enumerate(("model", "worn")):
            truth = sim.truth["log_effects"][name]
            for label, effect in (("measured", report.effects[k]), ("corrected", report.misclassification.effects[k])):
                if effect.estimate is None:
                    add(f"{name}_{label}_missing", 1)
                    continue
                add(f"{name}_{label}_error", effect.estimate - truth)
                add(
                    f"{name}_{label}_covers",
                    effect.ci_low is not None and effect.ci_low <= truth <= effect.ci_high,
                )
                if effect.ci_low is not None:
                    add(f"{name}_{label}_width", effect.ci_high - effect.ci_low)
    table = {}
    for name in ("model", "worn"):
        for label in ("measured", "corrected"):
            errors = np.array(values.get(f"{name}_{label}_error", []))
            table[f"{name}_{label}"] = {
                "bias": float(errors.mean()),
                "rmse": float(np.sqrt(np.mean(errors**2))),
                "coverage": float(np.mean(values[f"{name}_{label}_covers"])),
                "mean_width": float(np.mean(values.get(f"{name}_{label}_width", [np.nan]))),
                "n": len(errors),
            }
    print(f"misclassification ({datasets} data sets, planted model +20%, worn +10%):", flush=True)
    print(f"  {'':18s} {'bias':>8s} {'rmse':>8s} {'coverage':>9s} {'width':>7s}", flush=True)
    for key, row in table.items():
        print(
            f"  {key:18s} {row['bias']:+8.4f} {row['rmse']:8.4f} {row['coverage']:9.3f} {row['mean_width']:7.3f}",
            flush=True,
        )
    return {
        "matrix": MISCLASSIFICATION_MATRIX,
        "labelled_per_class": labelled_per_class,
        "planted_pct": planted,
        "planted_log": {k: float(np.log1p(v / 100)) for k, v in planted.items()},
        "products": products,
        "weeks": weeks,
        "results": table,
        "seconds": time.perf_counter() - start,
    }


# ---------------------------------------------------------------------------------------------------- main


def _write(name: str, payload: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(["python", "bench/report_bench.py", *sys.argv[1:]]),
        **payload,
    }
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "layers"], capture_output=True, text=True)
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _write_keeping_history(name: str, payload: dict) -> None:
    """``_write``, with the file's earlier runs kept under ``earlier_runs`` (newest first), each labelled."""
    path = RESULTS / name
    earlier: list[dict] = []
    if path.is_file():
        previous = json.loads(path.read_text())
        earlier = previous.pop("earlier_runs", [])
        if "commit" not in previous:  # a run written before runs were labelled: the commit that wrote the file
            log = ["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", str(path.relative_to(ROOT))]
            previous["commit"] = subprocess.run(log, capture_output=True, text=True).stdout.strip() or "unknown"
        previous.setdefault("label", f"{previous.get('generated_at', '?')} at commit {previous['commit']}")
        earlier = [previous, *earlier]
    commit = _commit()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    _write(name, {"commit": commit, "label": f"{now} at commit {commit}", **payload, "earlier_runs": earlier})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        kind, *rest = sys.argv[2:]
        if kind == "e2e":
            result = child_end_to_end(*rest)
        elif kind == "scale":
            result = child_scale(*rest)
        elif kind == "scale_ols":
            result = child_scale_ols(*rest)
        elif kind == "scale_ols_memory":
            result = child_scale_ols_memory(*rest)
        elif kind == "report_fits":
            result = child_report_fits(*rest)
        elif kind == "time":
            data_dir, model, repeats = rest
            result = child_timing(data_dir, model, int(repeats))
        else:
            data_dir, implementation, model = rest
            result = child_memory(data_dir, implementation, model)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=["speed", "scale", "coverage", "identification", "power", "misclassification", "all"],
        nargs="?",
        default="all",
    )
    parser.add_argument("--scale-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--memory-limit-mb", type=int, default=2048, help="DuckDB's memory limit in the scale runs")
    parser.add_argument(
        "--scale-results",
        default="report_scale.json",
        help="scale: the results file under bench/results (another name keeps, say, a 100M-row run apart)",
    )
    parser.add_argument("--routes", nargs="*", choices=SCALE_ROUTES, default=list(SCALE_ROUTES))
    parser.add_argument(
        "--ols-repeats", type=int, default=3, help="scale: interleaved rounds of the OLS fits (0: leave them out)"
    )
    parser.add_argument(
        "--e2e-max-rows", type=int, default=0, help="scale: end to end (with the fit stage's breakdown) up to this size"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a layers/ folder of an earlier version (git archive REV layers | tar -x -C DIR): timed alternately",
    )
    parser.add_argument(
        "--compare-repeats",
        type=int,
        default=0,
        help="rounds of the alternating end-to-end comparison (before / default BLAS threads / now) per size",
    )
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--scenarios", nargs="+", choices=sorted(IDENTIFICATION_SCENARIOS), default=None)
    parser.add_argument("--products", type=int, default=200, help="identification: products per catalogue")
    parser.add_argument("--weeks", type=int, default=40, help="identification: weeks per catalogue")
    args = parser.parse_args()
    if args.what in {"speed", "all"}:
        _write("report_speed.json", speed(args.sizes, args.repeats, args.before, args.compare_repeats))
    if args.what == "scale":
        result = scale(
            args.scale_sizes,
            args.memory_limit_mb,
            args.routes,
            ols_repeats=args.ols_repeats,
            e2e_max_rows=args.e2e_max_rows,
            e2e_repeats=args.compare_repeats or 3,
            before=args.before,
        )
        _write_keeping_history(args.scale_results, result)
    if args.what in {"coverage", "all"}:
        _write("report_coverage.json", coverage(args.datasets))
    if args.what in {"identification", "all"}:
        result = identification(args.datasets, args.products, args.weeks, scenarios=args.scenarios)
        # another catalogue size is another file, so its figures never mix with the default size's
        name = (
            "identification.json"
            if (args.products, args.weeks) == (200, 40)
            else (f"identification_{args.products}x{args.weeks}.json")
        )
        previous = RESULTS / name
        if args.scenarios and previous.exists():
            # a partial run keeps the other scenarios' last figures
            kept = json.loads(previous.read_text())["scenarios"]
            result["scenarios"] = {**kept, **result["scenarios"]}
        _write(name, result)
    if args.what in {"power", "all"}:
        _write("power.json", power_check(args.datasets))
    if args.what in {"misclassification", "all"}:
        _write("misclassification.json", misclassification_check(args.datasets))


if __name__ == "__main__":
    main()
