"""Import time of the report's service module, this checkout against an earlier library, interleaved.

    python bench/report_imports.py --before DIR [--rounds 10]

DIR is a layers/ folder of the earlier version (``git archive REV layers | tar -x -C DIR``). Each round starts a
fresh ``python -X importtime -c "import imagelift.services.report_service"`` for each version in turn, so that a
busy machine slows both alike; reported: medians of the total and of the pandas and numpy parts, the median
paired ratio, whether scipy.stats and scipy.sparse end up imported (and how many scipy modules), and the load. Writes bench/results/report_imports.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "imagelift.services.report_service"
# scipy's submodules are loaded through its lazy attribute access, which -X importtime does not list under their
# own names: whether they were imported is read from sys.modules instead
PARTS = ("pandas", "numpy")
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def measure(layers: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(layers)}
    code = f"import sys, {MODULE}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    cumulative = {}
    for match in LINE.finditer(out.stderr):
        name = match.group(4)
        if name == MODULE or (name in PARTS and name not in cumulative):
            cumulative[name] = int(match.group(2)) / 1e6  # microseconds -> seconds
    scipy_modules = json.loads(out.stdout.strip().replace("'", '"'))
    return {
        "total_s": cumulative[MODULE],
        "parts_s": cumulative,
        "scipy_modules": len(scipy_modules),
        "scipy_stats": "scipy.stats" in scipy_modules,
        "scipy_sparse": "scipy.sparse" in scipy_modules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    variants = {"before": args.before, "now": ROOT / "layers"}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for layers in variants.values():  # warm the page cache once
        measure(layers)
    for _ in range(args.rounds):
        for name, layers in variants.items():
            runs[name].append(measure(layers))
    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "median_total_s": statistics.median(r["total_s"] for r in results),
            "median_parts_s": {part: statistics.median(r["parts_s"].get(part, 0.0) for r in results) for part in PARTS},
            "imports_scipy_stats": results[0]["scipy_stats"],
            "imports_scipy_sparse": results[0]["scipy_sparse"],
            "scipy_modules": results[0]["scipy_modules"],
        }
        print(f"{name}: {summary[name]['median_total_s']:.3f} s (median of {len(results)})")
    ratio = statistics.median(a["total_s"] / b["total_s"] for a, b in zip(runs["now"], runs["before"], strict=True))
    print(f"paired ratio now / before {ratio:.2f}")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip(),
        "command": " ".join(["python", "bench/report_imports.py", *sys.argv[1:]]),
        "module": MODULE,
        "load": dict(zip(("load_1m", "load_5m", "load_15m"), os.getloadavg(), strict=True)),
        "summary": summary,
        "median_paired_ratio_now_to_before": ratio,
        "runs": runs,
    }
    path = ROOT / "bench" / "results" / "report_imports.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
