"""Where the report's fit stage spends its time at 1M rows: cProfile of ``fit_models`` on a simulated panel.

    python bench/fit_profile.py [--rows 1000000] [--before DIR] [--rounds 2]

The panel (the simulated export read, joined and prepared as the report does) is built once under
``.cache/fit-profile/``; each round profiles ``fit_models`` on it in a fresh process, this checkout and, alternating,
the library ``--before`` (a ``layers`` folder). Reported per function: calls and cumulative seconds (medians over the
rounds) of CPU time (``cProfile`` timed by ``time.process_time``: a shared machine's wall clock also counts
waiting for a core), for the report's fits and what they spend their time on. Threads: 1 (set before numpy loads). Results go
to bench/results/fit_profile.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "fit-profile"
RESULTS = ROOT / "bench" / "results" / "fit_profile.json"

# (label, file suffix, function name) of the entries kept from the profile
WATCHED = {
    "fit stage (fit_models)": ("analysis.py", "fit_models"),
    "headline PPML": ("headline.py", "fit_headline_ppml"),
    "switch analyses": ("threats.py", "switch_analyses"),
    "event study": ("event_study.py", "event_studies"),
    "- untreated PPML (listing + week, 2 steps)": ("event_study.py", "untreated_poisson"),
    "- week effects of the untreated fit": ("event_study.py", "_week_effects"),
    "- switch timing": ("event_study.py", "switch_timing"),
    "threat checks": ("threats.py", "threat_checks"),
    "- donut (1 step)": ("threats.py", "donut_check"),
    "- product by season (2 steps)": ("threats.py", "product_season_check"),
    "PPML on rows (within-listing, untreated, donut, season)": ("estimation.py", "fit_ppml"),
    "- demeaning": ("demean.py", "demean"),
    "- - exact two-way solution": ("demean.py", "_direct"),
    "- factorising codes": ("demean.py", "factorize"),
    "- dropping separated levels": ("estimation.py", "_separated"),
    "- design check (rank)": ("estimation.py", "_check_design"),
    "- clustered sandwich": ("estimation.py", "_absorbed_fit_result"),
    "- deviance": ("estimation.py", "__call__"),
    "listings that switch (twice)": ("analysis.py", "_switching_listings"),
    "within-listing weight shares, CR3 (and the headline's)": ("analysis.py", "concentrated_intervals"),
    "per-product effects": ("analysis.py", "per_product_effects"),
    "identification table": ("analysis.py", "identification_table"),
}


def build_panel(rows: int) -> Path:
    """The prepared panel the fit stage gets, pickled (built with this checkout's library)."""
    target = CACHE / f"panel-{rows}.pkl"
    if target.exists():
        return target
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT / "layers"))
    import report_bench

    from imagelift.config import ReportConfig
    from imagelift.services import report_service

    data = CACHE / f"data-{rows}"
    data.mkdir(parents=True, exist_ok=True)
    report_bench.prepare(rows, data)

    class Captured(Exception):
        pass

    def capture(panel, config):
        target.write_bytes(pickle.dumps(panel))
        raise Captured

    report_service.fit_models = capture
    with contextlib.suppress(Captured):
        report_service.run_local(
            [data / "sales.csv"], data / "categories.jsonl", data / "out", ReportConfig.from_env(controls="promo")
        )
    return target


def child(panel_path: str) -> dict:
    import cProfile
    import pstats

    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import fit_models

    panel = pickle.loads(Path(panel_path).read_bytes())
    config = ReportConfig.from_env(controls="promo")
    # CPU time, not wall time: on a shared machine the wall clock also counts the time spent waiting for a core
    profile = cProfile.Profile(time.process_time)
    start, cpu = time.perf_counter(), time.process_time()
    profile.enable()
    fit_models(panel, config)
    profile.disable()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    stats = pstats.Stats(profile).stats
    out = {}
    for label, (suffix, function) in WATCHED.items():
        hits = [(v[1], v[3]) for (path, _, name), v in stats.items() if name == function and path.endswith(suffix)]
        if hits:
            out[label] = {"calls": sum(h[0] for h in hits), "seconds": round(sum(h[1] for h in hits), 3)}
    return {"wall_seconds_profiled": wall, "cpu_seconds_profiled": cpu, "functions": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, default=None, help="a layers/ folder of the library to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    panel = build_panel(args.rows)
    variants = {"now": ROOT / "layers", **({"before": args.before} if args.before else {})}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, layers in variants.items():
            env = {**os.environ, "PYTHONPATH": str(layers)}
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(panel)], env=env, capture_output=True, text=True, check=True
            )
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = runs[name][-1]
            print(
                f"  {name}: fit stage {r['cpu_seconds_profiled']:.2f} s CPU, {r['wall_seconds_profiled']:.2f} s wall",
                flush=True,
            )
    medians = {
        name: {
            label: {
                "calls": results[0]["functions"][label]["calls"],
                "seconds": statistics.median(r["functions"][label]["seconds"] for r in results),
            }
            for label in results[0]["functions"]
        }
        for name, results in runs.items()
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    one, five, fifteen = os.getloadavg()
    payload = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit.strip(),
        "rows": args.rows,
        "threads": 1,
        "clock": "CPU seconds (time.process_time), under cProfile",
        "load": {"load_1m": one, "load_5m": five, "load_15m": fifteen},
        "median_seconds": medians,
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(payload, indent=1) + "\n")
    for label in medians["now"]:
        line = f"{label:58s} now {medians['now'][label]['seconds']:6.2f} s ({medians['now'][label]['calls']} calls)"
        if "before" in medians and label in medians["before"]:
            line += (
                f"   before {medians['before'][label]['seconds']:6.2f} s ({medians['before'][label]['calls']} calls)"
            )
        print(line)


if __name__ == "__main__":
    main()
