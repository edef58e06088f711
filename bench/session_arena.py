"""ONNX Runtime's CPU memory arena for the fixed-shape nets (YOLO, HandTrack, MoveNet): the classifier's peak
memory and CPU per photo with and without it. MTCNN's sessions run without it either way (bench/mtcnn_arena.py).

    OMP_NUM_THREADS=1 .venv/bin/python bench/session_arena.py [--rounds 3]

Fresh processes, the two variants alternating for ``--rounds`` rounds, each classifying the 39 photos of
../shared/data/images as they are and at 2000 px (the classifier benchmark's 78): VmHWM at the end and the median
CPU milliseconds per photo. Writes bench/results/session_arena.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_bench import labelled, resized  # noqa: E402

CHILD = """
import pathlib, time
import imagelift.vision.mtcnn as mtcnn
import imagelift.vision.sessions as sessions
if {arena!r}:
    no_arena = sessions.session_options
    sessions.session_options = lambda threads, *, optimise=True, arena=True: no_arena(
        threads, optimise=optimise, arena=arena
    )
    mtcnn.session_options = lambda threads: no_arena(threads)
from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade
cascade = Cascade.load(VisionConfig.from_env(models_dir={models!r}, threads=1))
cpu = []
for path in sorted(pathlib.Path({folder!r}).iterdir()):
    c0 = time.process_time()
    cascade.classify_bytes(path.read_bytes())
    cpu.append((time.process_time() - c0) * 1000)
cpu.sort()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(hwm, cpu[len(cpu) // 2])
"""
VARIANTS = {"no arena (shipped)": False, "arena on the fixed-shape nets": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    items = labelled(ROOT.parent / "shared" / "data" / "images")
    out: dict = {name: {"peak_mb": [], "cpu_ms_median": []} for name in VARIANTS}
    loads = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers"), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for k, group in enumerate((items, resized(items))):
            for name, data, _ in group:
                (Path(tmp) / f"{k}_{name}").write_bytes(data)
        for _ in range(args.rounds):
            for name, arena in VARIANTS.items():
                code = CHILD.format(arena=arena, models=str(ROOT / "models"), folder=tmp)
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
                kib, ms = done.stdout.split()[-2:]
                out[name]["peak_mb"].append(round(int(kib) / 1024, 1))
                out[name]["cpu_ms_median"].append(round(float(ms), 1))
                loads.append(round(os.getloadavg()[0], 2))
                print(
                    f"{name}: {out[name]['peak_mb'][-1]} MB, CPU median {out[name]['cpu_ms_median'][-1]} ms", flush=True
                )
    for entry in out.values():
        entry["peak_mb_median"] = statistics.median(entry["peak_mb"])
        entry["cpu_ms_median_of_runs"] = statistics.median(entry["cpu_ms_median"])
    result = {
        "photos": 2 * len(items),
        "variants": out,
        "load_1min": loads,
        "seconds": round(time.monotonic() - started),
    }
    path = ROOT / "bench" / "results" / "session_arena.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
