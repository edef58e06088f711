"""Vision benchmark: our cascade against the stock one, side by side in one run, on the labelled photos.

    .venv/bin/python bench/vision_bench.py [--photos DIR] [--models DIR] [--repeat N] [--quick]

Sets: ../shared/data/images as they are, and the same photos resized to 2000 px on the long side (JPEG q90).
Runs: ours and stock, each at 1 thread and at ONNX Runtime / OpenCV default threads, interleaved photo by photo
so that both see the same machine load. Reports median / p95 ms per photo (bytes in, category out, decode
included), the speed-up ratio, accuracy and confusion matrices, worn recall, product shots called face/person,
cold start (imports + model loading, in a fresh process) and peak RSS (a fresh process classifying every photo),
the measured effect of each speed / accuracy lever (the cross-validated choice of the person stage is
bench/tune_vision.py's, in bench/results/vision_tuning.json), and
agreement on scikit-image's photos (none of which were used for tuning).

Writes bench/results/vision.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "tests"))  # the stock cascade is test support, not library code

from support.stock import MTCNN_SDIST, YOLO_SDIST, StockCascade, find_sdist  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.records.categories import CATEGORY_NAMES  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

CATEGORY_BY_FOLDER = {"cat1_model": 1, "cat2_legs": 2, "cat3_product": 3}
RESULTS = ROOT / "bench" / "results" / "vision.json"
# scikit-image's bundled photos with the category a person would give them (none shows footwear; they test
# that faces are found and that nothing else is mistaken for a face or a person).
SKIMAGE_LABELS = {
    "astronaut": 1,
    "camera": 1,
    "coffee": 3,
    "chelsea": 3,
    "cat": 3,
    "rocket": 3,
    "hubble_deep_field": 3,
    "immunohistochemistry": 3,
    "retina": 3,
    "clock": 3,
    "horse": 3,
    "coins": 3,
    "moon": 3,
    "brick": 3,
    "grass": 3,
    "gravel": 3,
    "colorwheel": 3,
    "logo": 3,
    "page": 3,
    "text": 3,
}


def labelled(photos: Path) -> list[tuple[str, bytes, int]]:
    items = []
    for path in sorted(photos.glob("cat*/*")):
        if path.parent.name in CATEGORY_BY_FOLDER and path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}:
            items.append((path.name, path.read_bytes(), CATEGORY_BY_FOLDER[path.parent.name]))
    return items


def resized(items: list[tuple[str, bytes, int]], long_side: int = 2000) -> list[tuple[str, bytes, int]]:
    out = []
    for name, data, label in items:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        scale = long_side / max(h, w)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=interpolation)
        ok, encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append((name, encoded.tobytes(), label))
    return out


def skimage_photos() -> list[tuple[str, bytes, int]]:
    import skimage.data

    out = []
    for name, label in SKIMAGE_LABELS.items():
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.dtype != np.uint8:
            image = (image * 255).astype(np.uint8) if image.max() <= 1 else image.astype(np.uint8)
        ext = ".png" if image.shape[2] == 4 else ".jpg"
        bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(ext, bgr)
        assert ok
        out.append((name, encoded.tobytes(), label))
    return out


# ------------------------------------------------------------------------------------------------ scoring
def score(labels: list[int], predicted: list[int]) -> dict:
    matrix = [[0] * 3 for _ in range(3)]
    for truth, guess in zip(labels, predicted, strict=True):
        matrix[truth - 1][guess - 1] += 1
    n = len(labels)
    correct = sum(matrix[i][i] for i in range(3))
    return {
        "n": n,
        "correct": correct,
        "accuracy": round(correct / n, 4) if n else None,
        "worn_recall": f"{matrix[1][1]}/{sum(matrix[1])}",
        "products_called_face_or_person": matrix[2][0] + matrix[2][1],
        "confusion": {"rows_truth_cols_predicted": ["model", "worn", "product"], "matrix": matrix},
    }


def stats(ms: list[float], cpu_ms: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        # CPU time of the process: on a shared machine it is what a 1-thread run really costs (wall time also
        # counts waiting for a core); with several threads it adds them up, so compare wall time there.
        "cpu_median_ms": round(statistics.median(cpu_ms), 1),
        "cpu_p95_ms": round(float(np.percentile(cpu_ms, 95)), 1),
    }


# ------------------------------------------------------------------------------------------------ runners
def run_ours(cascade: Cascade, data: bytes) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    result = cascade.classify_bytes(data)
    return result.category, (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def run_stock(stock: StockCascade, data: bytes) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    result = stock.classify_bgr(image)
    return result.category, (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def side_by_side(runners: dict, items: list[tuple[str, bytes, int]], repeat: int) -> dict:
    """Every runner on every photo, interleaved; the per-photo time is the median over ``repeat`` runs."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu_times: dict[str, list[float]] = {name: [] for name in runners}
    categories: dict[str, list[int]] = {name: [] for name in runners}
    for runner in runners.values():
        runner(items[0][1])  # one warm-up each; later photos are timed as first seen, as in production
    for _name, data, _label in items:
        per_photo: dict[str, list[float]] = {name: [] for name in runners}
        per_photo_cpu: dict[str, list[float]] = {name: [] for name in runners}
        last: dict[str, int] = {}
        for _ in range(repeat):
            for runner_name, runner in runners.items():
                last[runner_name], ms, cpu_ms = runner(data)
                per_photo[runner_name].append(ms)
                per_photo_cpu[runner_name].append(cpu_ms)
        for runner_name in runners:
            times[runner_name].append(statistics.median(per_photo[runner_name]))
            cpu_times[runner_name].append(statistics.median(per_photo_cpu[runner_name]))
            categories[runner_name].append(last[runner_name])
    labels = [label for _, _, label in items]
    return {
        name: {
            **stats(times[name], cpu_times[name]),
            **score(labels, categories[name]),
            "per_photo_ms": [round(t, 1) for t in times[name]],
            "predicted": categories[name],
        }
        for name in runners
    }


def evaluate_sets(cascade: Cascade, folders: dict[str, Path]) -> dict:
    """What `imagelift evaluate` reports for each labelled folder: confusion, recall, review share and accuracy."""
    from imagelift.vision.evaluation import labelled_files, summarise

    out = {}
    for name, folder in folders.items():
        files = labelled_files([folder])
        summary = summarise([(f, cascade.classify_path(f.path).to_record()) for f in files])
        summary["mistakes"] = [
            {k: m[k] for k in ("path", "label", "predicted", "persons", "person_scores", "review")}
            for m in summary["mistakes"]
        ]
        out[name] = summary
    return out


# ------------------------------------------------------------------------------------------------ fresh processes
COLD_START = """
import time
t0 = time.perf_counter()
from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade
t1 = time.perf_counter()
cascade = Cascade.load(VisionConfig.from_env(models_dir={models!r}, threads=1))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

PEAK_RSS = """
import pathlib
from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade
cascade = Cascade.load(VisionConfig.from_env(models_dir={models!r}, threads=1))
for path in sorted(pathlib.Path({folder!r}).iterdir()):
    cascade.classify_bytes(path.read_bytes())
# VmHWM, not ru_maxrss: a child started by fork keeps its parent's ru_maxrss through exec
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def fresh_python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fresh process failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def cold_start(models: Path, runs: int = 5) -> dict:
    imports, loads = [], []
    for _ in range(runs):
        a, b = fresh_python(COLD_START.format(models=str(models))).split()
        imports.append(float(a) * 1000)
        loads.append(float(b) * 1000)
    total = [a + b for a, b in zip(imports, loads, strict=True)]
    return {
        "imports_ms": round(statistics.median(imports), 1),
        "model_load_ms": round(statistics.median(loads), 1),
        "total_ms": round(statistics.median(total), 1),
        "runs": runs,
    }


def peak_rss(models: Path, sets: list[list[tuple[str, bytes, int]]]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for k, items in enumerate(sets):
            for name, data, _ in items:
                (Path(tmp) / f"{k}_{name}").write_bytes(data)
        kib = int(fresh_python(PEAK_RSS.format(models=str(models), folder=tmp)))
    return {"peak_rss_mb": round(kib / 1024, 1), "photos": sum(len(s) for s in sets)}


# ------------------------------------------------------------------------------------------------ levers
def lever_runs(config: VisionConfig, items: list[tuple[str, bytes, int]], int8_path: Path | None, repeat: int) -> dict:
    variants = {
        "default (all levers)": {},
        "full-size JPEG decode": {"decode_long_side": 0},
        "no MTCNN long-side cap": {"face_max_side": 100_000},
        "P-Net threshold 0.6 (paper)": {"face_pnet_threshold": 0.6},
        "yolov3-tiny alone (no second net)": {"second_yolo_model": ""},
        "yolov3-tiny alone at 416, no padded pass, person > 0.5 (stock-like)": {
            "second_yolo_model": "",
            "yolo_input_size": 416,
            "padded_pass": False,
            "person_min_confidence": 0.5,
        },
        "no padded pass": {"padded_pass": False},
        "no whole-photo pass": {"yolo_input_size": 0, "padded_pass": True},
    }
    if int8_path is not None:
        variants["YOLO static int8 (QDQ, per-channel)"] = {"yolo_model": str(int8_path)}
    cascades = {name: Cascade.load(replace(config, **changes)) for name, changes in variants.items()}
    runners = {name: (lambda data, c=c: run_ours(c, data)) for name, c in cascades.items()}
    results = side_by_side(runners, items, repeat)
    for name in results:
        results[name].pop("per_photo_ms")
        results[name]["changes"] = variants[name]
    return results


def quantise_yolo(models: Path, out: Path) -> Path | None:
    """Static int8 YOLO (QDQ, per-channel weights), calibrated on scikit-image photos (not the labelled set)."""
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        return None
    from imagelift.vision.yolo import letterbox, to_blob

    calibration = []
    for _name, data, _ in skimage_photos():
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        for size in (192, 320):
            calibration.append({"images": to_blob(letterbox(image, size).image)})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self):
            return next(self.batches, None)

    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    pre = out / "yolov3-tiny.pre.onnx"
    target = out / "yolov3-tiny.int8.onnx"
    source_path = (models / "yolo" / "yolov3-tiny.onnx").resolve()
    cwd = Path.cwd()
    os.chdir(out)  # the quantisation tools drop temporary files into the working directory
    try:
        quant_pre_process(str(source_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        os.chdir(cwd)
    # Keep the YOLO metadata (anchors, masks, names) that the detector reads.
    import onnx

    source = onnx.load(str(source_path), load_external_data=False)
    quantised = onnx.load(str(target))
    del quantised.metadata_props[:]
    quantised.metadata_props.extend(source.metadata_props)
    onnx.save(quantised, str(target))
    return target


def graph_optimisation(models: Path, repeat: int) -> dict:
    """The same nets with ONNX Runtime graph optimisation off and fully on (1 thread)."""
    import onnxruntime as ort

    inputs = {
        "yolo 192": (models / "yolo" / "yolov3-tiny.onnx", np.random.rand(1, 3, 192, 192).astype(np.float32)),
        "pnet 400x300": (models / "mtcnn" / "pnet.onnx", np.random.rand(1, 267, 200, 3).astype(np.float32)),
        "rnet x50": (models / "mtcnn" / "rnet.onnx", np.random.rand(50, 24, 24, 3).astype(np.float32)),
    }
    out = {}
    for name, (path, x) in inputs.items():
        row = {}
        for level_name, level in (
            ("off", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
            ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
        ):
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.graph_optimization_level = level
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x}
            session.run(None, feed)
            times = []
            for _ in range(max(5, repeat * 5)):
                started = time.perf_counter()
                session.run(None, feed)
                times.append((time.perf_counter() - started) * 1000)
            row[level_name] = round(statistics.median(times), 2)
        out[name] = row
    return out


# ------------------------------------------------------------------------------------------------ main
def markdown(report: dict) -> str:
    lines = []
    main = report["side_by_side"]
    lines.append(
        "| set | cascade | threads | median ms | p95 ms | CPU median ms | CPU p95 ms | accuracy | worn recall "
        "| products called face/person |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for set_name, runs in main.items():
        for name, r in runs.items():
            who, threads = name.split("@")
            lines.append(
                f"| {set_name} | {who} | {threads} | {r['median_ms']} | {r['p95_ms']} | {r['cpu_median_ms']} | "
                f"{r['cpu_p95_ms']} | {r['accuracy']:.0%} ({r['correct']}/{r['n']}) | {r['worn_recall']} | "
                f"{r['products_called_face_or_person']} |"
            )
    lines.append("")
    speedups = ", ".join(f"{k}: {v}x" for k, v in report["speedup"].items())
    lines.append(f"Speed-up, stock median / ours median (wall time): {speedups}.")
    cpu_speedups = ", ".join(f"{k}: {v}x" for k, v in report["speedup_cpu_1_thread"].items())
    lines.append(f"Speed-up at 1 thread in CPU time: {cpu_speedups}.")
    tuning = report.get("tuning_photos_1_thread")
    if tuning:
        lines.append(
            f"Tuning photos ({tuning['photos']}, images + pool), 1 thread: ours {tuning['ours_median_ms']} ms median, "
            f"stock {tuning['stock_median_ms']} ms ({tuning['speedup']}x)."
        )
    for set_name, summary in report.get("evaluate", {}).items():
        review = summary["review"]
        lines.append(
            f"evaluate {set_name}: {summary['correct']}/{summary['photos']} correct, matrix "
            f"{summary['confusion']['matrix']}, review {review['share']:.1%} with "
            f"{review['accuracy_outside_review']:.1%} right outside it (in-sample for the thresholds' tuning)."
        )
    lines.append("")
    cs, rss = report["cold_start"], report["peak_rss"]
    lines.append(
        f"Cold start (imports + model load, fresh process, median of {cs['runs']}): {cs['total_ms']} ms "
        f"(imports {cs['imports_ms']} ms, models {cs['model_load_ms']} ms). Peak RSS: {rss['peak_rss_mb']} MB."
    )
    lines.append("")
    lines.append("Confusion matrices, original photos, 1 thread (rows: true model/worn/product; columns: predicted):")
    for name in ("ours@1", "stock@1"):
        lines.append(f"- {name.split('@')[0]}: {main['original'][name]['confusion']['matrix']}")
    if report.get("levers"):
        lines.append("")
        lines.append(
            "| lever (original photos, 1 thread) | median ms | p95 ms | CPU median ms | accuracy | worn recall "
            "| product FPs |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for name, r in report["levers"].items():
            lines.append(
                f"| {name} | {r['median_ms']} | {r['p95_ms']} | {r['cpu_median_ms']} | {r['accuracy']:.0%} | "
                f"{r['worn_recall']} | {r['products_called_face_or_person']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "images")
    parser.add_argument("--pool", type=Path, default=ROOT.parent / "shared" / "data" / "pool")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per photo and runner (median taken)")
    parser.add_argument("--quick", action="store_true", help="1 timed run, skip levers and 2000 px set")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"error: photos not found at {args.photos}", file=sys.stderr)
        return 1
    repeat = 1 if args.quick else args.repeat
    mtcnn_sdist, yolo_sdist = find_sdist(MTCNN_SDIST), find_sdist(YOLO_SDIST)
    if mtcnn_sdist is None or yolo_sdist is None:
        print(
            "error: stock sdists not found (run `imagelift models build`, which caches them in .cache/sdists)",
            file=sys.stderr,
        )
        return 1

    report: dict = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
    }
    print("cold start and peak RSS (fresh processes) ...", file=sys.stderr)
    items = labelled(args.photos)
    big = resized(items)
    report["cold_start"] = cold_start(args.models)
    report["peak_rss"] = peak_rss(args.models, [items, big])

    config = VisionConfig.from_env(models_dir=args.models)
    report["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()}
    ours_1 = Cascade.load(replace(config, threads=1))
    ours_d = Cascade.load(replace(config, threads=0))
    stock_1 = StockCascade(mtcnn_sdist, yolo_sdist, threads=1)
    runners_1 = {"ours@1": lambda d: run_ours(ours_1, d), "stock@1": lambda d: run_stock(stock_1, d)}
    sets = {"original": items} if args.quick else {"original": items, "2000px": big}
    pool = labelled(args.pool) if args.pool.is_dir() else []
    if pool:
        sets["pool"] = pool
    report["side_by_side"] = {}
    for set_name, set_items in sets.items():
        print(f"side by side, {set_name}, 1 thread ...", file=sys.stderr)
        cv2.setNumThreads(1)
        report["side_by_side"][set_name] = side_by_side(runners_1, set_items, repeat)
    # Default threads: a second stock instance with OpenCV / ONNX Runtime choosing their thread counts.
    cv2.setNumThreads(-1)
    stock_d = StockCascade(mtcnn_sdist, yolo_sdist, threads=0)
    cv2.setNumThreads(-1)
    runners_d = {"ours@default": lambda d: run_ours(ours_d, d), "stock@default": lambda d: run_stock(stock_d, d)}
    for set_name, set_items in sets.items():
        if set_name == "pool":
            continue  # the pool is timed at 1 thread only (the Lambda's setting): 431 photos
        print(f"side by side, {set_name}, default threads ...", file=sys.stderr)
        report["side_by_side"][set_name].update(side_by_side(runners_d, set_items, repeat))
    cv2.setNumThreads(1)
    report["speedup"] = {
        f"{set_name} {threads}": round(runs[f"stock@{threads}"]["median_ms"] / runs[f"ours@{threads}"]["median_ms"], 2)
        for set_name, runs in report["side_by_side"].items()
        for threads in ("1", "default")
        if f"ours@{threads}" in runs
    }
    tuning_runs = [
        report["side_by_side"][name]["ours@1"]["per_photo_ms"] for name in ("original", "pool") if name in sets
    ]
    stock_runs = [
        report["side_by_side"][name]["stock@1"]["per_photo_ms"] for name in ("original", "pool") if name in sets
    ]
    ours_all, stock_all = [t for run in tuning_runs for t in run], [t for run in stock_runs for t in run]
    report["tuning_photos_1_thread"] = {
        "photos": len(ours_all),
        "ours_median_ms": round(statistics.median(ours_all), 1),
        "stock_median_ms": round(statistics.median(stock_all), 1),
        "speedup": round(statistics.median(stock_all) / statistics.median(ours_all), 2),
    }
    print("evaluate (imagelift.vision.evaluation) ...", file=sys.stderr)
    folders = {"images": args.photos, **({"pool": args.pool} if pool else {})}
    report["evaluate"] = evaluate_sets(ours_1, folders)
    report["speedup_cpu_1_thread"] = {
        set_name: round(runs["stock@1"]["cpu_median_ms"] / runs["ours@1"]["cpu_median_ms"], 2)
        for set_name, runs in report["side_by_side"].items()
    }
    report["photos"] = [name for name, _, _ in items]
    for set_name, runs in report["side_by_side"].items():
        names = [name for name, _, _ in sets[set_name]]
        labels = [label for _, _, label in sets[set_name]]
        for r in runs.values():
            r["errors"] = [
                {"photo": names[i], "truth": CATEGORY_NAMES[labels[i]], "predicted": CATEGORY_NAMES[p]}
                for i, p in enumerate(r.pop("predicted"))
                if p != labels[i]
            ]
    if not args.quick:
        print("levers ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            int8 = quantise_yolo(args.models, Path(tmp))
            report["levers"] = lever_runs(replace(config, threads=1), items, int8, repeat)
        report["graph_optimisation_ms"] = graph_optimisation(args.models, repeat)
    else:
        report["levers"] = {}
    print("held-out views ...", file=sys.stderr)
    sk = skimage_photos()
    sk_runs = side_by_side(runners_1, sk, 1)
    report["skimage"] = {
        name: {
            "accuracy": r["accuracy"],
            "errors": [
                {"photo": sk[i][0], "truth": CATEGORY_NAMES[sk[i][2]], "predicted": CATEGORY_NAMES[p]}
                for i, p in enumerate(r["predicted"])
                if p != sk[i][2]
            ],
        }
        for name, r in sk_runs.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
