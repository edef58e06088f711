"""How the five vision nets are best saved for a quick start: formats and optimisation levels, in fresh processes.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_session_formats.py [--rounds N] [--models DIR]

Each net of ``--models`` (the original ONNX files) is saved by ONNX Runtime after optimisation at a level
(``basic``, ``ext`` = extended, hardware-independent; ``all`` = with the NCHWc layout, which depends on the CPU),
in a format (``onnx``, ``ort`` = ONNX Runtime's flatbuffer format) and with the weights inside the file or in a
file of their own (``x``: ``allx``, ``extx``, which ONNX Runtime maps into memory). A variant name is
``<level>-<format>-<load>``: ``load`` is the optimisation level the session then opens it with (``all`` or
``off``). ``current`` opens the original files at full optimisation, as the cascade did before prepared nets.

Per round, each variant in a fresh process (rotated): every session's creation (wall and CPU), RSS after them,
the CPU ms of the first and of the median of 15 later runs of each net on fixed pseudo-random inputs (P-Net
480x360, R-Net 30 crops, O-Net 5, both YOLO nets 192x192), and a checksum of the outputs (the same in every
variant). Writes bench/results/vision_session_formats.json.
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
RESULTS = ROOT / "bench" / "results" / "vision_session_formats.json"
NETS = ["mtcnn/pnet", "mtcnn/rnet", "mtcnn/onet", "yolo/yolov3-tiny", "yolo/yolov4-tiny"]
VARIANTS = [
    "current",
    "ext-onnx-all",
    "ext-onnx-off",
    "ext-ort-all",
    "ext-ort-off",
    "all-onnx-off",
    "all-ort-off",
    "allx-onnx-off",
    "extx-onnx-all",
    "extx-onnx-off",
]

CHILD = r"""
import json, statistics, sys, time
import numpy as np, onnxruntime as ort
variant, models, prepared = sys.argv[1], sys.argv[2], sys.argv[3]
NETS = {nets!r}
L = ort.GraphOptimizationLevel
def path(net):
    if variant == "current":
        return f"{{models}}/{{net}}.onnx"
    tag, fmt, _ = variant.split("-", 2)
    return f"{{prepared}}/{{net.split('/')[1]}}.{{tag}}.{{fmt}}"
def options(net):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    if net.startswith("mtcnn"):  # the cascade's MTCNN options: shapes vary, so no arena and no memory patterns
        o.enable_mem_pattern = False
        o.enable_cpu_mem_arena = False
    if variant == "current":
        return o
    tag, fmt, load = variant.split("-", 2)
    o.graph_optimization_level = {{"all": L.ORT_ENABLE_ALL, "off": L.ORT_DISABLE_ALL}}[load]
    if fmt == "ort":
        o.add_session_config_entry("session.load_model_format", "ORT")
    return o
sessions, wall, cpu = {{}}, {{}}, {{}}
for net in NETS:
    name = net.split("/")[1]
    w, c = time.perf_counter(), time.process_time()
    sessions[name] = ort.InferenceSession(path(net), options(net), providers=["CPUExecutionProvider"])
    wall[name], cpu[name] = (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000
# VmHWM, not ru_maxrss (which Linux carries over exec from the parent)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
rss_after_load = int(status["VmHWM"].split()[0]) / 1024
rng = np.random.default_rng(0)
feeds = {{"pnet": (1, 480, 360, 3), "rnet": (30, 24, 24, 3), "onet": (5, 48, 48, 3), "yolov3-tiny": (1, 3, 192, 192),
          "yolov4-tiny": (1, 3, 192, 192)}}
first, steady, checksum = {{}}, {{}}, {{}}
for name, session in sessions.items():
    feed = {{session.get_inputs()[0].name: rng.random(feeds[name], dtype=np.float32)}}
    c = time.process_time()
    out = session.run(None, feed)
    first[name] = (time.process_time() - c) * 1000
    checksum[name] = [float(np.abs(x).sum()) for x in out]
    times = []
    for _ in range(15):
        c = time.process_time()
        session.run(None, feed)
        times.append((time.process_time() - c) * 1000)
    steady[name] = statistics.median(times)
print(json.dumps({{"create_wall_ms": wall, "create_cpu_ms": cpu, "rss_after_load_mb": rss_after_load,
                  "first_cpu_ms": first, "steady_cpu_ms": steady, "checksum": checksum}}))
"""


def prepare(models: Path, out: Path) -> None:
    import onnxruntime as ort

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "ext": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    for net in NETS:
        stem = net.split("/")[1]
        for tag, level in levels.items():
            for fmt in ("onnx", "ort"):
                o = ort.SessionOptions()
                o.log_severity_level = 3
                o.graph_optimization_level = level
                o.optimized_model_filepath = str(out / f"{stem}.{tag}.{fmt}")
                if fmt == "ort":
                    o.add_session_config_entry("session.save_model_format", "ORT")
                ort.InferenceSession(str(models / f"{net}.onnx"), o, providers=["CPUExecutionProvider"])
        for tag in ("all", "ext"):
            o = ort.SessionOptions()
            o.log_severity_level = 3
            o.graph_optimization_level = levels[tag]
            o.optimized_model_filepath = str(out / f"{stem}.{tag}x.onnx")
            o.add_session_config_entry("session.optimized_model_external_initializers_file_name", f"{stem}.{tag}x.data")
            o.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            ort.InferenceSession(str(models / f"{net}.onnx"), o, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.models, Path(tmp))
        code = CHILD.format(nets=NETS)
        for k in range(args.rounds):
            for variant in VARIANTS[k % len(VARIANTS) :] + VARIANTS[: k % len(VARIANTS)]:
                done = subprocess.run(
                    [sys.executable, "-c", code, variant, str(args.models), tmp],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                )
                runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))

    def med(rows: list[dict], key: str) -> dict[str, float]:
        return {n: round(statistics.median(r[key][n] for r in rows), 2) for n in rows[0][key]}

    summary = {}
    for variant, rows in runs.items():
        create_cpu = med(rows, "create_cpu_ms")
        steady = med(rows, "steady_cpu_ms")
        summary[variant] = {
            "create_cpu_ms": create_cpu,
            "create_cpu_total_ms": round(statistics.median(sum(r["create_cpu_ms"].values()) for r in rows), 1),
            "create_wall_total_ms": round(statistics.median(sum(r["create_wall_ms"].values()) for r in rows), 1),
            "rss_after_load_mb": round(statistics.median(r["rss_after_load_mb"] for r in rows), 1),
            "first_cpu_ms": med(rows, "first_cpu_ms"),
            "steady_cpu_ms": steady,
            "steady_cpu_total_ms": round(statistics.median(sum(r["steady_cpu_ms"].values()) for r in rows), 1),
            "outputs_as_current": rows[0]["checksum"] == runs["current"][0]["checksum"],
        }
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/vision_session_formats.py"
        + (f" --rounds {args.rounds}" if args.rounds != 6 else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "rounds": args.rounds,
        "variants": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| variant | create CPU ms | RSS after load MB | steady CPU ms (5 nets) | outputs as current |")
    print("|---|---|---|---|---|")
    for variant, r in summary.items():
        print(
            f"| {variant} | {r['create_cpu_total_ms']} | {r['rss_after_load_mb']} | {r['steady_cpu_total_ms']} | "
            f"{r['outputs_as_current']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
