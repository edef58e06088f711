"""Hostile benchmark: every hostile case of infra.localstack.hostile, classified in its own process.

    .venv/bin/python bench/hostile_bench.py [--cases NAME,...] [--out bench/results/hostile.json]

Each case runs in a fresh Python process (one thread, like the function with one vCPU): the real cascade is
loaded from models/ (the function's cold start), then the case's bytes go through
imagelift.services.classify_service.classify_object with an in-memory photo store, which is what the function does
with an upload after reading it. The process reports the outcome (status and error code: the record the function
writes), the time of that one call, and its peak resident memory (``ru_maxrss``) before and after the call. A case
passes when its outcome is the expected one, it took at most a few seconds, and the peak stayed within 1 GB.

Prints the case table and writes bench/results/hostile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_LIMIT_MB = 1024
TIME_LIMIT_S = 5.0


class _Photos:
    """The PhotoStore surface classify_object uses, over one file: HEAD is its size, GET reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def head(self, bucket: str, key: str, **_: Any) -> Any:
        from imagelift.adapters.s3 import ObjectInfo

        return ObjectInfo(bucket, key, self.path.stat().st_size)

    def read(self, bucket: str, key: str, *, max_bytes: int, **_: Any) -> bytes:
        return self.path.read_bytes()


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(name: str) -> dict[str, Any]:
    """One case in this process: the record classify_object makes, its time and the peak memory."""
    from imagelift.config import VisionConfig
    from imagelift.services.classify_service import classify_object, utc_now
    from imagelift.vision.cascade import Cascade
    from infra.localstack.hostile import build_file, case

    path = build_file(case(name))
    config = VisionConfig.from_env(models_dir=ROOT / "models")
    cascade = Cascade.load(config)
    cascade.classify_image(__import__("numpy").full((64, 64, 3), 128, "uint8"))  # warm the sessions
    baseline = _peak_mb()
    started = time.perf_counter()
    outcome = classify_object(
        _Photos(path), cascade, "bench", f"images/BENCH/{name}/photo", max_bytes=config.max_bytes, clock=utc_now
    )
    seconds = time.perf_counter() - started
    return {
        "status": outcome["status"],
        "code": (outcome.get("error") or {}).get("code"),
        "message": (outcome.get("error") or {}).get("message"),
        "category": outcome.get("category"),
        "bytes": path.stat().st_size,
        "seconds": round(seconds, 3),
        "peak_rss_mb_before": round(baseline, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child)))
        return 0

    from infra.localstack.hostile import CASES, build_file

    wanted = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "IMAGELIFT_THREADS": "1"}
    rows = []
    print(f"{'case':28} {'bytes':>11} {'expected':22} {'got':22} {'time s':>7} {'peak MB':>8}  ok")
    for item in wanted:
        build_file(item)  # made (and cached) outside the measured process
        child = subprocess.run(
            [sys.executable, __file__, "--child", item.name], capture_output=True, text=True, env=env, cwd=ROOT
        )
        if child.returncode != 0:
            result: dict[str, Any] = {"status": "crashed", "code": child.stderr.strip().splitlines()[-1:]}
        else:
            result = json.loads(child.stdout.strip().splitlines()[-1])
        expected = item.status + (f"/{item.code}" if item.code else "")
        got = result["status"] + (f"/{result['code']}" if result.get("code") else "")
        ok = (
            got == expected
            and result.get("seconds", 1e9) <= TIME_LIMIT_S
            and result.get("peak_rss_mb", 1e9) <= PEAK_LIMIT_MB
        )
        rows.append({"case": item.name, "input": item.what, "expected": expected, "got": got, "ok": ok, **result})
        print(
            f"{item.name:28} {result.get('bytes', 0):>11} {expected:22} {got:22} "
            f"{result.get('seconds', float('nan')):7.2f} {result.get('peak_rss_mb', float('nan')):8.0f}  "
            f"{'yes' if ok else 'NO'}",
            flush=True,
        )
    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "method": "each case in a fresh process: cascade loaded and warmed, then classify_object on the file; "
        "time of that call, VmHWM after it (before it: the loaded models)",
        "limits": {"seconds": TIME_LIMIT_S, "peak_rss_mb": PEAK_LIMIT_MB},
        "all_ok": all(r["ok"] for r in rows),
        "max_seconds": max((r.get("seconds", 0) for r in rows), default=0),
        "max_peak_rss_mb": max((r.get("peak_rss_mb", 0) for r in rows), default=0),
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"\n{sum(r['ok'] for r in rows)}/{len(rows)} cases as expected within {TIME_LIMIT_S:g} s and "
        f"{PEAK_LIMIT_MB} MB; slowest {summary['max_seconds']:.2f} s, peak {summary['max_peak_rss_mb']:.0f} MB "
        f"-> {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
