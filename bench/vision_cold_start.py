"""The classifier's cold start, memory and per-photo time: each lever against the nets as built before, interleaved.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_cold_start.py [--rounds N] [--repeat R] [--photos N]

``--models`` must hold the prepared nets (``imagelift models build`` writes them, infra/models/prepare.py). The
``original nets`` variant is the same directory seen without them (a temporary directory with links to the nets
and the manifest minus its ``prepared`` section), so both variants load the very same ONNX files otherwise.

1. Cold start, in fresh processes, the variants in turn each round (rotated): the imports (numpy, cv2,
   onnxruntime, imagelift), each session's creation (wall and CPU), ``Cascade.load`` in all, then the first and
   the second classification of the same photo; peak and current RSS after each stage (imports, sessions, decode
   of a 4000 px JPEG, its classification).
2. Peak RSS (VmHWM) of a fresh process classifying the photos vision_bench.py uses for it (../images as they are
   and at 2000 px), per variant: also with the memory arena the fixed-shape nets had before
   (imagelift.vision.sessions.session_options) and with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``),
   with each one's CPU time per photo.
3. Per photo, in one process, interleaved at 1 thread: the CPU and wall ms of ``classify_bytes`` for each variant
   on every tuning photo (../images + ../pool, the files as they are), and the check that every variant gives
   every photo the same category, the same faces and the same persons as the original nets.

Writes bench/results/vision_cold_start.json and .md.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

import vision_bench  # noqa: E402
from vision_data import load_photos, time_interleaved  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "vision_cold_start.json"
ALL_SECTIONS = {"cold", "rss", "photo", "profile"}

FRESH = r"""
import os, sys, time
def rss():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would start at the parent's size.
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    mb = lambda key: round(int(status[key].split()[0]) / 1024, 1)
    return {{"peak_mb": mb("VmHWM"), "now_mb": mb("VmRSS"), "anon_mb": mb("RssAnon")}}
out = {{"imports_ms": {{}}, "sessions": {{}}, "rss": {{}}}}
cpu_start = time.process_time()
t = time.perf_counter()
import numpy
out["imports_ms"]["numpy"] = (time.perf_counter() - t) * 1000; t = time.perf_counter()
import cv2
out["imports_ms"]["cv2"] = (time.perf_counter() - t) * 1000; t = time.perf_counter()
import onnxruntime as ort
out["imports_ms"]["onnxruntime"] = (time.perf_counter() - t) * 1000; t = time.perf_counter()
from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade
out["imports_ms"]["imagelift"] = (time.perf_counter() - t) * 1000
out["imports_cpu_ms"] = (time.process_time() - cpu_start) * 1000
out["rss"]["imports"] = rss()
{prelude}
_Session = ort.InferenceSession
class TimedSession(_Session):
    def __init__(self, path, *args, **kwargs):
        w, c = time.perf_counter(), time.process_time()
        super().__init__(path, *args, **kwargs)
        out["sessions"][os.path.basename(os.path.dirname(str(path))) + "/" + os.path.basename(str(path))] = {{
            "wall_ms": (time.perf_counter() - w) * 1000, "cpu_ms": (time.process_time() - c) * 1000}}
ort.InferenceSession = TimedSession
w, c = time.perf_counter(), time.process_time()
cascade = Cascade.load(VisionConfig.from_env({{}}, models_dir={models!r}, threads=1))
out["load_ms"], out["load_cpu_ms"] = (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000
out["rss"]["sessions"] = rss()
data = open({photo!r}, "rb").read()
from imagelift.vision.image_io import DecodeLimits, decode_image
config = cascade.config
decoded = decode_image(data, limits=DecodeLimits.from_config(config),
                       target_long_side=max(config.decode_long_side, config.face_max_side))
out["rss"]["decode_4000px"] = rss()
del decoded
for name in ("first", "second"):
    w, c = time.perf_counter(), time.process_time()
    result = cascade.classify_bytes(data)
    out[name + "_photo_ms"], out[name + "_photo_cpu_ms"] = (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000
    out["rss"]["classified_" + name] = rss()
out["category"] = result.category
print(__import__("json").dumps(out))
"""

ARENA_ON = """
import imagelift.vision.mtcnn as _mtcnn
import imagelift.vision.sessions as _sessions
_options = _sessions.session_options
_sessions.session_options = lambda threads, *, optimise=True, arena=True: _options(threads, optimise=optimise, arena=arena)
_mtcnn.session_options = lambda threads: _options(threads)
"""


def original_view(models: Path, into: Path) -> Path:
    """``models`` without its prepared nets: links to the nets, the manifest minus ``prepared``."""
    into.mkdir(parents=True, exist_ok=True)
    for child in models.iterdir():
        if child.name not in ("prepared", "manifest.json"):
            (into / child.name).symlink_to(child.resolve())
    manifest = json.loads((models / "manifest.json").read_text(encoding="utf-8"))
    if "prepared" not in manifest:
        raise SystemExit(f"{models} has no prepared nets: build it with `imagelift models build`")
    manifest.pop("prepared")
    (into / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return into


def fresh(code: str, extra_env: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers"), "OMP_NUM_THREADS": "1", **(extra_env or {})}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fresh process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def cold_starts(variants: dict[str, tuple[Path, str, dict]], photo: Path, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    names = list(variants)
    for k in range(rounds):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            models, prelude, env = variants[name]
            runs[name].append(fresh(FRESH.format(models=str(models), photo=str(photo), prelude=prelude), env))
    out = {}
    for name, rows in runs.items():
        imports = {m: median([r["imports_ms"][m] for r in rows]) for m in rows[0]["imports_ms"]}
        total_imports = [sum(r["imports_ms"].values()) for r in rows]
        out[name] = {
            "imports_ms": imports,
            "imports_total_ms": median(total_imports),
            "imports_cpu_ms": median([r["imports_cpu_ms"] for r in rows]),
            "sessions_wall_ms": {s: median([r["sessions"][s]["wall_ms"] for r in rows]) for s in rows[0]["sessions"]},
            "sessions_cpu_ms": {s: median([r["sessions"][s]["cpu_ms"] for r in rows]) for s in rows[0]["sessions"]},
            "load_ms": median([r["load_ms"] for r in rows]),
            "load_cpu_ms": median([r["load_cpu_ms"] for r in rows]),
            "cold_start_ms": median([i + r["load_ms"] for i, r in zip(total_imports, rows, strict=True)]),
            "cold_start_cpu_ms": median([r["imports_cpu_ms"] + r["load_cpu_ms"] for r in rows]),
            "first_photo_ms": median([r["first_photo_ms"] for r in rows]),
            "first_photo_cpu_ms": median([r["first_photo_cpu_ms"] for r in rows]),
            "second_photo_ms": median([r["second_photo_ms"] for r in rows]),
            "second_photo_cpu_ms": median([r["second_photo_cpu_ms"] for r in rows]),
            "cold_start_and_first_photo_ms": median(
                [i + r["load_ms"] + r["first_photo_ms"] for i, r in zip(total_imports, rows, strict=True)]
            ),
            "cold_start_and_first_photo_cpu_ms": median(
                [r["imports_cpu_ms"] + r["load_cpu_ms"] + r["first_photo_cpu_ms"] for r in rows]
            ),
            "rss_mb": {
                stage: {k: median([r["rss"][stage][k] for r in rows]) for k in ("peak_mb", "now_mb", "anon_mb")}
                for stage in rows[0]["rss"]
            },
            "categories": sorted({r["category"] for r in rows}),
            "runs": len(rows),
        }
    return out


PEAK = r"""
import json, pathlib, statistics, time
{prelude}
from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade
cascade = Cascade.load(VisionConfig.from_env(models_dir={models!r}, threads=1))
cpu = []
for path in sorted(pathlib.Path({folder!r}).iterdir()):
    data = path.read_bytes()
    c = time.process_time()
    cascade.classify_bytes(data)
    cpu.append((time.process_time() - c) * 1000)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
mb = lambda key: round(int(status[key].split()[0]) / 1024, 1)
print(json.dumps({{"peak_mb": mb("VmHWM"), "anon_end_mb": mb("RssAnon"), "cpu_median_ms": statistics.median(cpu),
                  "cpu_total_ms": sum(cpu)}}))
"""


def peak_rss(variants: dict[str, tuple[Path, str, dict]], folder: Path, rounds: int) -> dict:
    """Each variant classifies every photo in ``folder`` in a fresh process, ``rounds`` times, rotated."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    names = list(variants)
    for k in range(rounds):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            models, prelude, env = variants[name]
            code = PEAK.format(models=str(models), folder=str(folder), prelude=prelude)
            runs[name].append(fresh(code, env))
    return {
        name: {
            "peak_rss_mb": median([r["peak_mb"] for r in rows]),
            "anon_rss_at_end_mb": median([r["anon_end_mb"] for r in rows]),
            "cpu_median_ms_per_photo": median([r["cpu_median_ms"] for r in rows]),
            "cpu_total_ms": median([r["cpu_total_ms"] for r in rows]),
            "peak_rss_runs_mb": [r["peak_mb"] for r in rows],
            "env": env_of(variants[name]),
        }
        for name, rows in runs.items()
    }


def env_of(variant: tuple) -> dict:
    return variant[2] if len(variant) > 2 else {}


def decision(result) -> tuple:
    """What must not change: the category and every box and score that the record carries."""
    record = result.to_record()
    return (
        record["category"],
        record["decided_by"],
        json.dumps(record["faces"]),
        json.dumps(record["persons"]),
        json.dumps(record["person_scores"]),
        record["best_face_score"],
        record["review"],
    )


def big_jpeg(photo: Path, into: Path, long_side: int = 4000) -> Path:
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    target = into / "photo_4000px.jpg"
    cv2.imwrite(str(target), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--rounds", type=int, default=10, help="fresh processes per variant for the cold start")
    parser.add_argument("--rss-rounds", type=int, default=2, help="fresh processes per variant for the peak RSS")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per photo and variant (median taken)")
    parser.add_argument("--photos", type=int, default=0, help="tuning photos timed (0 = all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--markdown", action="store_true", help="only rewrite the .md from the JSON")
    parser.add_argument(
        "--sections", default="cold,rss,photo,profile", help="which parts to run (others are kept from the JSON)"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        md = markdown(json.loads(args.out.read_text(encoding="utf-8")))
        args.out.with_suffix(".md").write_text(md + "\n", encoding="utf-8")
        print(md)
        return 0
    sections = set(args.sections.split(","))
    kept = json.loads(args.out.read_text(encoding="utf-8")) if sections != ALL_SECTIONS else {}
    report: dict = {
        **kept,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/vision_cold_start.py"
        + (f" --rounds {args.rounds}" if args.rounds != 10 else "")
        + (f" --rss-rounds {args.rss_rounds}" if args.rss_rounds != 2 else "")
        + (f" --repeat {args.repeat}" if args.repeat != 1 else "")
        + (f" --photos {args.photos}" if args.photos else "")
        + (f" --sections {args.sections}" if sections != ALL_SECTIONS else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()},
    }
    # Byte-compiled as pip installs it in the image: otherwise every fresh process compiles the library again.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "layers" / "imagelift")], check=True)
    manifest = json.loads((args.models / "manifest.json").read_text(encoding="utf-8"))
    report["prepared_signature"] = (manifest.get("prepared") or {}).get("signature")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        original = original_view(args.models, tmp / "original")
        cold_variants = {"original nets (before)": (original, "", {}), "prepared nets": (args.models, "", {})}
        photo = big_jpeg(
            ROOT.parent / "shared" / "data" / "images" / "cat1_model" / "cat1_model_portrait_official.jpg", tmp
        )
        runs = report.setdefault("section_runs", {})
        for section, run in (
            ("cold", lambda: report.update(cold_start=cold_starts(cold_variants, photo, args.rounds))),
            ("rss", lambda: rss_section(report, args, original, tmp)),
            ("photo", lambda: photo_section(report, args, original)),
            ("profile", lambda: profile_section(report, args)),
        ):
            if section in sections:
                print(f"{section} ...", file=sys.stderr)
                started, load_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getloadavg()
                run()
                runs[section] = {
                    "started": started,
                    "command": report["command"],
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg(),
                }
    report["machine"]["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md = markdown(report)
    args.out.with_suffix(".md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


def rss_section(report: dict, args: argparse.Namespace, original: Path, tmp: Path) -> None:
    print("peak RSS (fresh processes) ...", file=sys.stderr)
    folder = tmp / "rss_photos"
    folder.mkdir()
    items = vision_bench.labelled(ROOT.parent / "shared" / "data" / "images")
    for k, photos in enumerate([items, vision_bench.resized(items)]):
        for name, data, _ in photos:
            (folder / f"{k}_{name}").write_bytes(data)
    # glibc raises its mmap threshold after each large free and then keeps freed blocks in the heap; fixing it
    # (its own environment variable) returns them to the system, at the price of faulting them in again.
    fixed_heap = {"MALLOC_MMAP_THRESHOLD_": "131072"}
    rss_variants = {
        "original nets (before)": (original, "", {}),
        "prepared nets": (args.models, "", {}),
        "prepared nets, arena and memory patterns on for YOLO, HandTrack, MoveNet (before)": (
            args.models,
            ARENA_ON,
            {},
        ),
        "prepared nets, MALLOC_MMAP_THRESHOLD_=131072": (args.models, "", fixed_heap),
    }
    report["peak_rss"] = peak_rss(rss_variants, folder, args.rss_rounds)
    report["peak_rss_photos"] = len(list(folder.iterdir()))


def photo_section(report: dict, args: argparse.Namespace, original: Path) -> None:
    print("per photo, interleaved ...", file=sys.stderr)
    cv2.setNumThreads(1)
    variants = {"original nets": original, "prepared nets": args.models}
    cascades = {
        name: Cascade.load(VisionConfig.from_env({}, models_dir=models, threads=1)) for name, models in variants.items()
    }
    photos = load_photos()
    if args.photos:
        photos = photos[:: max(1, len(photos) // args.photos)][: args.photos]
    runners = {name: (lambda data, c=c: decision(c.classify_bytes(data))) for name, c in cascades.items()}
    for run in runners.values():
        run(photos[0].path.read_bytes())
    load_before = os.getloadavg()
    timed = time_interleaved(photos, runners, args.repeat)
    reference = [runs[-1] for runs in timed.returned["original nets"]]
    per_photo = {}
    for name in runners:
        got = [runs[-1] for runs in timed.returned[name]]
        per_photo[name] = {
            "cpu_median_ms": median(timed.cpu_ms[name]),
            "cpu_mean_ms": round(statistics.mean(timed.cpu_ms[name]), 1),
            "wall_median_ms": median(timed.wall_ms[name]),
            "photos_with_another_category": sum(a[0] != b[0] for a, b in zip(got, reference, strict=True)),
            "photos_with_another_record": sum(a != b for a, b in zip(got, reference, strict=True)),
        }
    ratio = per_photo["original nets"]["cpu_median_ms"] / per_photo["prepared nets"]["cpu_median_ms"]
    report["per_photo"] = {
        "photos": len(photos),
        "repeat": args.repeat,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "variants": per_photo,
        "cpu_median_ratio_original_over_prepared": round(ratio, 3),
    }


def profile_section(report: dict, args: argparse.Namespace) -> None:
    """CPU profile (cProfile on process_time) of the median photo of a sample, 30 runs, by function."""
    import cProfile
    import pstats
    import random

    cv2.setNumThreads(1)
    cascade = Cascade.load(VisionConfig.from_env({}, models_dir=args.models, threads=1))
    timed = []
    for photo in random.Random(3).sample(load_photos(), 120):
        data = photo.path.read_bytes()
        cascade.classify_bytes(data)
        c = time.process_time()
        cascade.classify_bytes(data)
        timed.append(((time.process_time() - c) * 1000, photo, data))
    timed.sort(key=lambda t: t[0])
    ms, photo, data = timed[len(timed) // 2]
    runs = 30
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(runs):
        result = cascade.classify_bytes(data)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = sum(tt for _, _, tt, _, _ in stats.values())
    rows = sorted(
        ((f"{Path(key[0]).name}:{key[1]}({key[2]})", cc, tt) for key, (cc, _, tt, _, _) in stats.items()),
        key=lambda row: -row[2],
    )
    report["profile_median_photo"] = {
        "photo": photo.id,
        "sample": len(timed),
        "cpu_ms": round(ms, 1),
        "runs": runs,
        "profiled_cpu_ms_per_run": round(total * 1000 / runs, 1),
        "timings_ms_last_run": {k: round(v, 1) for k, v in result.timings_ms.items()},
        "top_by_own_time": [
            {
                "function": name,
                "calls_per_run": round(calls / runs, 1),
                "cpu_ms_per_run": round(tt * 1000 / runs, 2),
                "share": round(tt / total, 3),
            }
            for name, calls, tt in rows[:12]
        ],
    }


def markdown(report: dict) -> str:
    cs = report["cold_start"]
    names = list(cs)
    lines = [
        "# Classifier cold start, memory and per-photo time",
        "",
        f"Prepared for {report['prepared_signature']}; {report['machine']['cpus']} CPUs shared with other jobs.",
        "",
        *(
            f"- {section}: `{run['command']}` from {run['started']}, load average "
            f"{[round(v, 2) for v in run['load_average_before']]} -> {[round(v, 2) for v in run['load_average_after']]}"
            for section, run in report.get("section_runs", {}).items()
        ),
        "",
        "## Cold start (fresh processes, medians of " + str(cs[names[0]]["runs"]) + " each, interleaved)",
        "",
        "| stage | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label: str, get) -> None:
        lines.append(f"| {label} | " + " | ".join(str(get(cs[n])) for n in names) + " |")

    for module in cs[names[0]]["imports_ms"]:
        row(f"import {module} ms", lambda r, m=module: r["imports_ms"][m])
    row("imports ms (CPU ms)", lambda r: f"{r['imports_total_ms']} ({r['imports_cpu_ms']})")
    for session in cs[names[0]]["sessions_cpu_ms"]:
        row(f"session {session} CPU ms", lambda r, s=session: r["sessions_cpu_ms"].get(s))
    row("Cascade.load ms (CPU ms)", lambda r: f"{r['load_ms']} ({r['load_cpu_ms']})")
    row("**cold start ms** (imports + load; CPU ms)", lambda r: f"**{r['cold_start_ms']}** ({r['cold_start_cpu_ms']})")
    row("first photo ms (CPU ms)", lambda r: f"{r['first_photo_ms']} ({r['first_photo_cpu_ms']})")
    row("second photo ms (CPU ms)", lambda r: f"{r['second_photo_ms']} ({r['second_photo_cpu_ms']})")
    row(
        "cold start + first photo ms (CPU ms)",
        lambda r: f"{r['cold_start_and_first_photo_ms']} ({r.get('cold_start_and_first_photo_cpu_ms')})",
    )
    for stage in cs[names[0]]["rss_mb"]:
        row(
            f"RSS after {stage} MB (peak / now / anonymous)",
            lambda r, s=stage: " / ".join(str(r["rss_mb"][s].get(k)) for k in ("peak_mb", "now_mb", "anon_mb")),
        )
    lines += [
        "",
        f"## Peak RSS classifying {report['peak_rss_photos']} photos (../images as they are and at 2000 px), "
        "fresh processes, medians",
        "",
        "| variant | peak RSS MB | anonymous RSS at the end MB | CPU median ms per photo | CPU total ms |",
        "|---|---|---|---|---|",
    ]
    for name, r in report["peak_rss"].items():
        lines.append(
            f"| {name} | {r['peak_rss_mb']} | {r['anon_rss_at_end_mb']} | {r['cpu_median_ms_per_photo']} | "
            f"{r['cpu_total_ms']} |"
        )
    pp = report["per_photo"]
    lines += [
        "",
        f"## Per photo ({pp['photos']} tuning photos, 1 thread, interleaved, repeat {pp['repeat']})",
        "",
        "| variant | CPU median ms | CPU mean ms | wall median ms | photos with another category | another record |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in pp["variants"].items():
        lines.append(
            f"| {name} | {r['cpu_median_ms']} | {r['cpu_mean_ms']} | {r['wall_median_ms']} | "
            f"{r['photos_with_another_category']} | {r['photos_with_another_record']} |"
        )
    lines.append(f"\nCPU median ratio, original / prepared: {pp['cpu_median_ratio_original_over_prepared']}.")
    prof = report.get("profile_median_photo")
    if prof:
        lines += [
            "",
            f"## CPU profile of the median photo ({prof['photo']}, {prof['cpu_ms']} ms CPU, the median of "
            f"{prof['sample']} tuning photos; {prof['runs']} runs, {prof['profiled_cpu_ms_per_run']} ms per run "
            "under the profiler)",
            "",
            "| function | calls per run | CPU ms per run | share |",
            "|---|---|---|---|",
        ]
        for r in prof["top_by_own_time"]:
            lines.append(f"| `{r['function']}` | {r['calls_per_run']} | {r['cpu_ms_per_run']} | {r['share']:.1%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
