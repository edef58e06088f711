"""OLS with product and week effects from cell sums on a sparse catalogue: 300k products x 52 weeks, 4M rows.

    python bench/ols_cells_memory.py [--before DIR]

Each library version (this checkout, and ``--before``: a layers/ folder from ``git archive REV layers``) fits the
same simulated rows in a fresh process, one after the other, under tracemalloc (numpy reports its buffers to it):
peak traced memory, time (slowed by tracemalloc alike for both) and the coefficients. Almost every row is its own
cell here, the case where a dense products x weeks matrix or a cells x k x k array costs the most.
Writes bench/results/ols_cells_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS, PRODUCTS, WEEKS = 4_000_000, 300_000, 52


def child() -> dict:
    import time
    import tracemalloc

    import numpy as np

    from imagelift.influence.aggregated_ols import CellSums, fit_ols_two_way

    rng = np.random.default_rng(0)
    product, week = rng.integers(0, PRODUCTS, ROWS), rng.integers(0, WEEKS, ROWS)
    x = np.column_stack(
        [rng.integers(0, 2, ROWS), rng.integers(0, 2, ROWS), 4 + 0.1 * rng.normal(size=ROWS), rng.integers(0, 2, ROWS)]
    ).astype(float)
    y = x @ np.array([0.08, 0.05, -1.2, 0.18]) + 0.001 * product + rng.normal(size=ROWS)
    tracemalloc.start()
    start = time.perf_counter()
    fit = fit_ols_two_way(CellSums.from_rows(y, x, product, week))
    seconds = time.perf_counter() - start
    return {
        "seconds_under_tracemalloc": seconds,
        "peak_traced_mb": tracemalloc.get_traced_memory()[1] / 2**20,
        "inputs_mb": (y.nbytes + x.nbytes + product.nbytes + week.nbytes) / 2**20,
        "dense_products_x_weeks_mb": PRODUCTS * WEEKS * 8 / 2**20,
        "params": fit.params.tolist(),
        "std_err": fit.std_err.tolist(),
    }


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        print(json.dumps(child()))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args()
    runs = {}
    for name, layers in (("before", args.before), ("now", ROOT / "layers")):
        if layers is None:
            continue
        env = {**os.environ, "PYTHONPATH": str(layers), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, __file__, "_child"], capture_output=True, text=True, env=env, check=True)
        runs[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: peak {runs[name]['peak_traced_mb']:.0f} MB, {runs[name]['seconds_under_tracemalloc']:.1f} s")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip(),
        "command": " ".join(["python", "bench/ols_cells_memory.py", *sys.argv[1:]]),
        "shape": {"rows": ROWS, "products": PRODUCTS, "weeks": WEEKS},
        "load": dict(zip(("load_1m", "load_5m", "load_15m"), os.getloadavg(), strict=True)),
        "runs": runs,
    }
    path = ROOT / "bench" / "results" / "ols_cells_memory.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
