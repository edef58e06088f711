"""A second face detector for small faces (MediaPipe BlazeFace, run where MTCNN found no face), as a curve.

    OMP_NUM_THREADS=1 .venv/bin/python bench/small_faces_curve.py [--nets DIR] [--time-photos N]

Photos: ../shared/data/images + ../shared/data/pool and four copies of each (bench/vision_data.py).

Collection (cached per photo under .cache/small_faces_curve/, so a rerun is seconds):
- ``mtcnn`` (bench/small_faces_mtcnn_pass.py): every copy through the shipped decode and ``Cascade.detect_faces``.
- ``blazeface_<net>``: for every copy on which that found no face, the best BlazeFace score of each tiling level
  (``imagelift.vision.blazeface.tile_grid``: level 1 the whole photo, level k about k tiles along the long side)
  on the same decode, with its CPU milliseconds. A setting (net, levels up to L) scores a copy with the best of its
  levels; the copy is called model when that reaches the threshold.

Curve: for every setting and threshold, the model copies gained (MTCNN missed them, BlazeFace finds a face) against
the product and worn copies turned into model (rates over all copies of the kind).

Selection (nested): an outer split (1: 5 photo folds stratified by kind, a photo's copies together; 2: each MANIFEST
``source_repo`` left out). Inside the outer training part an inner 5-fold photo CV picks the setting (or none) with
the threshold refitted on each inner training part; the threshold is then refitted on the whole outer training
part and the held-out part is judged with that choice only. Threshold rule: the most model copies gained with at
most ``FALSE_BUDGET`` of the product copies and of the worn copies called model, ties to the stricter threshold.
Setting rule (inner held-out counts): gained minus ``FALSE_WEIGHT`` x product or worn copies called model; ties go
to none, then to the cheaper setting. Only held-out figures are reported as CV figures.

Time: the chosen setting and MTCNN's face pass interleaved on originals (bench/vision_data.py's time_interleaved),
CPU medians at one thread, with the load.

Writes bench/results/small_faces_curve.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from small_faces_mtcnn_pass import cache_file, collect_mtcnn, decode_target  # noqa: E402
from vision_data import COPIES, KINDS, Photo, load_photos, make_copy, time_interleaved  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.blazeface import BlazeFace, sigmoid_scores, tile_grid, tile_inputs  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import decode_image  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "small_faces_curve.json"
NETS = ("full_range", "back")
LEVELS = (1, 2, 3)
MTCNN_AGREEMENT = (0.0, 0.5, 0.6, 0.7, 0.8)
"""Least MTCNN near-miss score (its best O-Net score under ``face_min_confidence``) a copy needs before BlazeFace
is asked; 0 asks it on every copy without a face. Both detectors must then agree on a face."""
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.72, 0.75, 0.78, 0.8, 0.82, 0.85, 0.87, 0.9, 0.93, 0.95, 0.97, 0.99)
FALSE_BUDGET = 0.01
FALSE_WEIGHT = 10
SENSITIVITY_WEIGHTS = (1, 3)  # the nested CV again with lighter penalties for a false model call
OUTER_FOLDS = 5
INNER_FOLDS = 5
SEED = 14
WORN = ("hands", "legs")
PRODUCT = ("amateur", "studio")


# ------------------------------------------------------------------------------------------------ collection
def level_scores(net: BlazeFace, image_bgr: np.ndarray) -> dict:
    """{level: {"best", "cpu_ms"}}: the best face score over the tiles of each level alone."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    out = {}
    for level in LEVELS:
        c0 = time.process_time()
        tiles = tile_grid(w, h, level)
        _, logits = net.raw(tile_inputs(rgb, tiles, net.spec.input_size))
        best = float(sigmoid_scores(logits).max())
        out[str(level)] = {
            "best": round(best, 5),
            "tiles": len(tiles),
            "cpu_ms": round((time.process_time() - c0) * 1000, 2),
        }
    return out


def collect_blazeface(photos: list[Photo], mtcnn: dict, net: BlazeFace, target: int) -> dict:
    stage = f"blazeface_{net.kind}"
    results, start = {}, time.perf_counter()
    for index, photo in enumerate(photos):
        cache = cache_file(stage, photo)
        if cache.is_file():
            results[photo.id] = json.loads(cache.read_text())
            continue
        raw = photo.path.read_bytes()
        per_copy = {}
        for copy in COPIES:
            record = mtcnn[photo.id][copy]
            if "error" in record or record["face_found"]:
                continue
            image = decode_image(make_copy(raw, copy), target_long_side=target).bgr
            per_copy[copy] = level_scores(net, image)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(per_copy))
        results[photo.id] = per_copy
        if (index + 1) % 50 == 0:
            print(f"  {stage}: {index + 1}/{len(photos)} ({time.perf_counter() - start:.0f} s)", flush=True)
    return results


# ------------------------------------------------------------------------------------------------ the table
@dataclass
class Table:
    photos: list[Photo]
    photo: np.ndarray  # per copy row: index into photos
    kind: np.ndarray
    source: np.ndarray
    mtcnn_face: np.ndarray
    mtcnn_best: np.ndarray
    scores: dict[tuple[str, int], np.ndarray]  # (net, max level) -> best score (0 where MTCNN found a face)
    cpu_ms: dict[tuple[str, int], np.ndarray]
    mtcnn_ms: np.ndarray


def build_table(photos: list[Photo], mtcnn: dict, blaze: dict[str, dict]) -> Table:
    rows, scores, cpu = [], {}, {}
    for i, photo in enumerate(photos):
        for copy in COPIES:
            record = mtcnn[photo.id][copy]
            if "error" in record:
                continue
            rows.append(
                (
                    i,
                    photo.kind,
                    photo.source,
                    record["face_found"],
                    record["face_cpu_ms"],
                    photo.id,
                    copy,
                    record["best_face"],
                )
            )
    for net in blaze:
        for top in LEVELS:
            s, t = [], []
            for _, _, _, face, _, pid, copy, _ in rows:
                levels = blaze[net][pid].get(copy)
                if face or levels is None:
                    s.append(0.0)
                    t.append(0.0)
                    continue
                s.append(max(levels[str(k)]["best"] for k in LEVELS if k <= top))
                t.append(sum(levels[str(k)]["cpu_ms"] for k in LEVELS if k <= top))
            scores[(net, top)], cpu[(net, top)] = np.array(s), np.array(t)
    return Table(
        photos,
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]),
        np.array([r[7] for r in rows]),
        scores,
        cpu,
        np.array([r[4] for r in rows]),
    )


def photo_folds(table: Table, folds: int, photo_subset: np.ndarray, seed: int) -> np.ndarray:
    """Per photo: its fold (stratified by kind, round robin after a shuffle); -1 outside ``photo_subset``."""
    rng = np.random.default_rng(seed)
    kinds = np.array([p.kind for p in table.photos])
    ids = np.full(len(table.photos), -1)
    for kind in KINDS:
        members = np.flatnonzero(photo_subset & (kinds == kind))
        rng.shuffle(members)
        ids[members] = np.arange(len(members)) % folds
    return ids


def outer_splits(table: Table, scheme: str) -> list[tuple[str, np.ndarray]]:
    """(name, held-out copy rows)."""
    if scheme == "photos":
        ids = photo_folds(table, OUTER_FOLDS, np.ones(len(table.photos), bool), SEED)[table.photo]
        return [(f"fold {k}", ids == k) for k in range(OUTER_FOLDS)]
    return [(s, table.source == s) for s in sorted(set(table.source.tolist()))]


# ------------------------------------------------------------------------------------------------ selection
NONE = None


def asked(table: Table, setting) -> np.ndarray:
    """The copies BlazeFace runs on under ``setting`` = (net, max level, least MTCNN near miss)."""
    return (~table.mtcnn_face) & (table.mtcnn_best >= setting[2])


def called(table: Table, setting, threshold: float) -> np.ndarray:
    if setting is NONE:
        return np.zeros(len(table.kind), bool)
    return asked(table, setting) & (table.scores[setting[:2]] >= threshold)


def counts(table: Table, model_called: np.ndarray, rows: np.ndarray) -> dict:
    model = rows & (table.kind == "model")
    product = rows & np.isin(table.kind, PRODUCT)
    worn = rows & np.isin(table.kind, WORN)
    return {
        "model_copies": int(model.sum()),
        "model_found_by_mtcnn": int((model & table.mtcnn_face).sum()),
        "model_gained": int((model & model_called).sum()),
        "product_copies": int(product.sum()),
        "product_called_model": int((product & model_called).sum()),
        "product_with_mtcnn_face": int((product & table.mtcnn_face).sum()),
        "worn_copies": int(worn.sum()),
        "worn_called_model": int((worn & model_called).sum()),
        "worn_with_mtcnn_face": int((worn & table.mtcnn_face).sum()),
    }


def within_budget(c: dict) -> bool:
    return (
        c["product_called_model"] <= FALSE_BUDGET * c["product_copies"]
        and c["worn_called_model"] <= FALSE_BUDGET * c["worn_copies"]
    )


def fit_threshold(table: Table, setting, rows: np.ndarray) -> float | None:
    """The threshold that gains the most model copies of ``rows`` within the budget; ties to the stricter one;
    None when no threshold gains anything within it."""
    best, best_gain = None, 0
    for threshold in sorted(THRESHOLDS, reverse=True):
        c = counts(table, called(table, setting, threshold), rows)
        if within_budget(c) and c["model_gained"] > best_gain:
            best, best_gain = threshold, c["model_gained"]
    return best


def settings(table: Table) -> list:
    # cheapest first (fewest copies asked, then fewer levels, then the cheaper net), so a tie goes to the cheaper
    return sorted(
        ((net, top, least) for net, top in table.scores for least in MTCNN_AGREEMENT),
        key=lambda s: (-s[2], s[1], float(np.median(table.cpu_ms[s[:2]][table.cpu_ms[s[:2]] > 0]))),
    )


def choose(table: Table, train: np.ndarray, seed: int, weight: float = FALSE_WEIGHT) -> tuple:
    """(setting, threshold) by inner photo CV over ``train`` rows (see module doc); (None, None) for none."""
    train_photos = np.zeros(len(table.photos), bool)
    train_photos[np.unique(table.photo[train])] = True
    inner = photo_folds(table, INNER_FOLDS, train_photos, seed)[table.photo]
    best, best_value = NONE, 0
    for setting in settings(table):
        value = 0
        for k in range(INNER_FOLDS):
            held = train & (inner == k)
            threshold = fit_threshold(table, setting, train & (inner != k) & (inner >= 0))
            if threshold is None:
                continue
            c = counts(table, called(table, setting, threshold), held)
            value += c["model_gained"] - weight * (c["product_called_model"] + c["worn_called_model"])
        if value > best_value:
            best, best_value = setting, value
    if best is NONE:
        return NONE, None
    threshold = fit_threshold(table, best, train)
    return (best, threshold) if threshold is not None else (NONE, None)


def name(setting) -> str:
    if setting is NONE:
        return "none"
    agreement = f", MTCNN near miss >= {setting[2]:g}" if len(setting) > 2 and setting[2] > 0 else ""
    return f"{setting[0]} levels 1-{setting[1]}{agreement}"


def outer_cv(table: Table, scheme: str, weight: float = FALSE_WEIGHT) -> dict:
    total = np.zeros(len(table.kind), bool)
    folds = []
    for label, held in outer_splits(table, scheme):
        setting, threshold = choose(table, ~held, SEED + 1, weight)
        decision = called(table, setting, threshold) if setting is not NONE else called(table, NONE, 0)
        total |= held & decision
        folds.append(
            {"held_out": label, "setting": name(setting), "threshold": threshold, **counts(table, decision, held)}
        )
    everything = np.ones(len(table.kind), bool)
    c = counts(table, total, everything)
    return {
        "scheme": scheme,
        **c,
        "model_recall": round((c["model_found_by_mtcnn"] + c["model_gained"]) / c["model_copies"], 4),
        "product_rate": round(c["product_called_model"] / c["product_copies"], 4),
        "worn_rate": round(c["worn_called_model"] / c["worn_copies"], 4),
        "folds": folds,
    }


def curve(table: Table) -> list[dict]:
    everything = np.ones(len(table.kind), bool)
    rows = []
    for setting in settings(table):
        run = asked(table, setting)
        spent = table.cpu_ms[setting[:2]][run]
        for threshold in THRESHOLDS:
            c = counts(table, called(table, setting, threshold), everything)
            rows.append(
                {
                    "setting": name(setting),
                    "threshold": threshold,
                    **c,
                    "product_rate": round(c["product_called_model"] / c["product_copies"], 4),
                    "worn_rate": round(c["worn_called_model"] / c["worn_copies"], 4),
                    "median_cpu_ms_where_run": round(float(np.median(spent)), 1) if spent.size else 0.0,
                    "share_of_copies_asked": round(float(run.mean()), 4),
                }
            )
    return rows


def best_within_budget(rows: list[dict]) -> dict | None:
    """The curve point gaining the most model copies within the budget on all photos: an upper bound of what a
    threshold fitted on these photos could gain, not a CV figure."""
    inside = [r for r in rows if r["product_rate"] <= FALSE_BUDGET and r["worn_rate"] <= FALSE_BUDGET]
    return max(inside, key=lambda r: (r["model_gained"], -r["median_cpu_ms_where_run"]), default=None)


def gained_photos(table: Table, setting, threshold) -> dict:
    decision = called(table, setting, threshold)
    out: dict[str, list] = {"model": [], "false": []}
    for row in np.flatnonzero(decision):
        photo = table.photos[table.photo[row]]
        out["model" if photo.kind == "model" else "false"].append(photo.id)
    return {k: sorted(set(v)) for k, v in out.items()}


# ------------------------------------------------------------------------------------------------ time
def interleaved_time(photos: list[Photo], cascade: Cascade, nets: dict, timed_settings: list, target: int) -> dict:
    """Decode + MTCNN's face pass against decode + each BlazeFace setting, interleaved on the same originals."""

    def mtcnn_run(data: bytes):
        return bool(cascade.detect_faces(decode_image(data, target_long_side=target).bgr).faces)

    def blaze_run(net: str, top: int):
        def run(data: bytes):
            image = decode_image(data, target_long_side=target).bgr
            return bool(nets[net].detect_bgr(image, levels=top).faces)

        return run

    variants = {"decode + mtcnn face pass": mtcnn_run}
    for setting in timed_settings:
        variants[f"decode + {name(setting)}"] = blaze_run(*setting)
    timed = time_interleaved(photos, variants, repeat=3)
    cpu = {k: statistics.median(v) for k, v in timed.cpu_ms.items()}
    reference = cpu["decode + mtcnn face pass"]
    return {
        "photos": len(photos),
        "repeat": 3,
        "cpu_median_ms": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ratio_to_mtcnn": {k: round(v / reference, 2) for k, v in cpu.items()},
        "wall_median_ms": {k: round(statistics.median(v), 1) for k, v in timed.wall_ms.items()},
        "load_after": os.getloadavg(),
    }


def score_listing(table: Table, setting, kinds: tuple[str, ...], top: int) -> list[dict]:
    """The highest-scoring copies of ``kinds`` among those MTCNN found no face on, with their score."""
    rows = np.flatnonzero(np.isin(table.kind, kinds) & ~table.mtcnn_face)
    rows = rows[np.argsort(-table.scores[setting][rows])][:top]
    return [
        {
            "photo": table.photos[table.photo[r]].id,
            "kind": str(table.kind[r]),
            "score": round(float(table.scores[setting][r]), 3),
            "mtcnn_near_miss": round(float(table.mtcnn_best[r]), 3),
        }
        for r in rows
    ]


def missed_model_photos(table: Table, setting) -> dict:
    """{photo id: best score over its copies} for the model photos MTCNN missed on some copy."""
    out: dict[str, list] = {}
    for r in np.flatnonzero((table.kind == "model") & ~table.mtcnn_face):
        pid = table.photos[table.photo[r]].id
        pair = [round(float(table.scores[setting][r]), 3), round(float(table.mtcnn_best[r]), 3)]
        out[pid] = max(out.get(pid, [0.0, 0.0]), pair)
    return dict(sorted(out.items(), key=lambda kv: -kv[1][0]))


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", type=Path, default=ROOT / "models" / "blazeface")
    parser.add_argument("--time-photos", type=int, default=60)
    args = parser.parse_args()
    config = VisionConfig.from_env()
    cv2.setNumThreads(1)
    cascade = Cascade.load(config)
    target = decode_target(config)
    photos = load_photos()
    mtcnn = collect_mtcnn(photos, cascade)
    nets = {kind: BlazeFace(args.nets / f"blazeface_{kind}.onnx", kind, threads=1) for kind in NETS}
    blaze = {kind: collect_blazeface(photos, mtcnn, net, target) for kind, net in nets.items()}
    table = build_table(photos, mtcnn, blaze)
    everything = np.ones(len(table.kind), bool)
    whole_setting, whole_threshold = choose(table, everything, SEED + 2)
    cv = {scheme: outer_cv(table, scheme) for scheme in ("photos", "sources")}
    sensitivity = {
        f"false_weight_{weight:g}": {scheme: outer_cv(table, scheme, weight) for scheme in ("photos", "sources")}
        for weight in SENSITIVITY_WEIGHTS
    }
    timing_photos = [p for p in photos][:: max(1, len(photos) // args.time_photos)][: args.time_photos]
    result = {
        "load_before_timing": os.getloadavg(),
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "copies": len(table.kind),
        "baseline_mtcnn": counts(table, called(table, NONE, 0), everything),
        "rule": {
            "false_budget": FALSE_BUDGET,
            "false_weight": FALSE_WEIGHT,
            "thresholds": THRESHOLDS,
            "levels": LEVELS,
            "mtcnn_agreement": MTCNN_AGREEMENT,
            "nets": NETS,
        },
        "chosen_on_all_photos": {"setting": name(whole_setting), "threshold": whole_threshold},
        "cv": cv,
        "cv_sensitivity": sensitivity,
        "curve": curve(table),
        "best_in_sample_within_budget": best_within_budget(curve(table)),
        "photos_called_model_at_chosen": gained_photos(table, whole_setting, whole_threshold)
        if whole_setting is not NONE
        else None,
    }
    inspected = ("back", max(LEVELS))  # the setting that gains the most model copies at any threshold
    result["scores_of_inspected_setting"] = {
        "setting": name(inspected),
        "model_photos_missed_by_mtcnn": missed_model_photos(table, inspected),
        "top_product_copies": score_listing(table, inspected, PRODUCT, 15),
        "top_worn_copies": score_listing(table, inspected, WORN, 10),
    }
    timed_settings = [("full_range", 2), ("back", 2), ("back", 3)]
    result["time"] = interleaved_time(timing_photos, cascade, nets, timed_settings, target)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    RESULTS.with_suffix(".md").write_text(markdown(result))
    print(RESULTS.with_suffix(".md").read_text())


def _decision(r: dict) -> str:
    best = r["best_in_sample_within_budget"]
    bound = (
        f"Even fitted on all photos, the best point within the budget gains {best['model_gained']} model copies "
        f"({best['setting']} at {best['threshold']}: {best['product_called_model']} product, "
        f"{best['worn_called_model']} worn copies called model)."
        if best
        else "No point of the curve is within the budget."
    )
    if r["chosen_on_all_photos"]["setting"] == "none":
        return f"Decision: no second face detector; the cascade stays as it is. {bound}"
    return f"Decision: {r['chosen_on_all_photos']['setting']} at {r['chosen_on_all_photos']['threshold']}. {bound}"


def markdown(r: dict) -> str:
    b = r["baseline_mtcnn"]
    lines = [
        "# A second face detector for small faces: BlazeFace where MTCNN found no face",
        "",
        "Written by `bench/small_faces_curve.py`; photos of ../shared/data/images + pool, five copies each "
        f"({r['copies']} copies). MTCNN (shipped first pass) finds {b['model_found_by_mtcnn']} of "
        f"{b['model_copies']} model copies and calls {b['product_with_mtcnn_face']} product and "
        f"{b['worn_with_mtcnn_face']} worn copies model (fixed settings, so not a fitted figure). BlazeFace runs "
        "only on the copies where MTCNN found no face; the counts below are what it adds.",
        "",
        f"Rule: threshold = most model copies gained with at most {r['rule']['false_budget']:.0%} of product and of "
        f"worn copies called model; setting by inner 5-fold photo CV (gained - {r['rule']['false_weight']} x false).",
        "",
        f"Chosen on all photos: **{r['chosen_on_all_photos']['setting']}**, threshold "
        f"{r['chosen_on_all_photos']['threshold']}.",
        "",
        _decision(r),
        "",
        "## Nested CV (held-out figures only)",
        "",
        "| outer split | model recall | gained | product called model | worn called model |",
        "|---|---|---|---|---|",
    ]
    for scheme, c in r["cv"].items():
        lines.append(
            f"| {scheme} | {c['model_found_by_mtcnn'] + c['model_gained']}/{c['model_copies']} "
            f"({c['model_recall']:.1%}) | {c['model_gained']} | {c['product_called_model']}/{c['product_copies']} "
            f"({c['product_rate']:.2%}) | {c['worn_called_model']}/{c['worn_copies']} ({c['worn_rate']:.2%}) |"
        )
    for label, by_scheme in r["cv_sensitivity"].items():
        for scheme, c in by_scheme.items():
            lines.append(
                f"| {scheme}, setting chosen with {label.replace('_', ' ')} | "
                f"{c['model_found_by_mtcnn'] + c['model_gained']}/{c['model_copies']} ({c['model_recall']:.1%}) | "
                f"{c['model_gained']} | {c['product_called_model']}/{c['product_copies']} ({c['product_rate']:.2%}) | "
                f"{c['worn_called_model']}/{c['worn_copies']} ({c['worn_rate']:.2%}) |"
            )
    lines += ["", "Per fold choices:", ""]
    for scheme, c in r["cv"].items():
        picks = [f"{f['held_out']}: {f['setting']} @ {f['threshold']}" for f in c["folds"]]
        lines.append(f"- {scheme}: " + "; ".join(picks))
    lines += [
        "",
        "## Curve (in-sample, all copies: for the shape only, not a CV figure)",
        "",
        "Points gaining a model copy with at most 5% of product copies called model (the JSON has every point).",
        "",
        "| setting | threshold | model gained | product called model | worn called model | median ms where run "
        "| share of copies asked |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["curve"]:
        if row["model_gained"] == 0 or row["product_rate"] > 0.05:
            continue
        lines.append(
            f"| {row['setting']} | {row['threshold']} | {row['model_gained']} | {row['product_called_model']} "
            f"({row['product_rate']:.2%}) | {row['worn_called_model']} ({row['worn_rate']:.2%}) | "
            f"{row['median_cpu_ms_where_run']} | {row['share_of_copies_asked']:.1%} |"
        )
    inspected = r["scores_of_inspected_setting"]
    lines += [
        "",
        f"## Scores of {inspected['setting']} (best over a photo's copies where MTCNN found no face)",
        "",
        "Model photos MTCNN misses (BlazeFace score, MTCNN near miss): "
        + ", ".join(
            f"`{p.split('/')[-1]}` {s[0]}, {s[1]}" for p, s in inspected["model_photos_missed_by_mtcnn"].items()
        ),
        "",
        "Highest product copies: "
        + ", ".join(
            f"`{c['photo'].split('/')[-1]}` {c['score']}, {c['mtcnn_near_miss']}"
            for c in inspected["top_product_copies"]
        ),
        "",
        "Highest worn copies: "
        + ", ".join(
            f"`{c['photo'].split('/')[-1]}` {c['score']}, {c['mtcnn_near_miss']}" for c in inspected["top_worn_copies"]
        ),
    ]
    t = r["time"]
    lines += [
        "",
        f"## Time (interleaved, {t['photos']} originals x {t['repeat']}, 1 thread, CPU medians)",
        "",
        *[
            f"- {k}: {v} ms, {t['cpu_ratio_to_mtcnn'][k]}x MTCNN's (wall {t['wall_median_ms'][k]} ms)"
            for k, v in t["cpu_median_ms"].items()
        ],
        f"- load average before timing {tuple(round(x, 2) for x in r['load_before_timing'])}, after "
        f"{tuple(round(x, 2) for x in t['load_after'])}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
