"""Tune the second look for small faces, and the face stage's cap and smallest face, by nested cross-validation.

    OMP_NUM_THREADS=1 .venv/bin/python bench/second_look_tuning.py [--collect-only] [--no-pyramids] [--quick]

Photos: ../shared/data/images + ../shared/data/pool and four copies of each (bench/vision_data.py).

Collection (cached per photo under .cache/second_look_tuning/, so a rerun is seconds):
- ``shipped``: every copy through the shipped cascade's own decode, first face pass (``Cascade.detect_faces``) and
  person stage (``PersonFinder.search``). Where the first pass finds no face and the person stage finds someone
  (where the cascade says worn, the only place ``second_look.py`` runs), the best raw O-Net score over the head crops
  of the person boxes for every (head fraction, upscale, crop source) of the grid, with its time. The crop source is
  ``capped`` (the decode both stages look at) or ``full`` (the same crop box cut from the full-resolution decode and
  resized to the same MTCNN input size: the same geometry with more real pixels; identical where the decode was not
  reduced).
- ``pyramid_<cap>_<min face>``: the best O-Net score of the first face pass with another MTCNN cap
  (``face_max_side``, decode target raised with it) or smallest face (``face_min_size``), for every copy. On the
  originals the shipped pyramid runs again, interleaved, so the time ratios come from one run.

Selection (nested): an outer split (1: 5 photo folds stratified by kind, a photo's copies together; 2: each MANIFEST
``source_repo`` left out); inside the outer training part an inner 5-fold photo CV picks the geometry (head fraction,
upscale, source; or the second look off) with its minimum score refitted on each inner training part; the minimum
score is then refitted on the whole outer training part and the held-out part is judged with that choice only.
Objective (counts of copies): model copies turned from worn into model minus ``FALSE_WEIGHT`` x worn or product
copies turned into model (a hand photo is category 2: a face found on it is an error). Ties go to the second look
off, then to the cheaper geometry (capped source, smaller upscale, smaller fraction), then to the stricter score.
The face-stage pyramids are chosen by the same nested scheme (pyramid, with face_min_confidence refitted), with
the rule that chose the shipped score (bench/face_tuning.py): the most model copies found with at most 0.5% of the
non-model copies called model; ties go to the shipped pyramid, then to the stricter score.

Writes bench/results/second_look_tuning.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
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

from vision_data import COPIES, KINDS, Photo, file_digest, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import ImageDecodeError, decode_image  # noqa: E402
from imagelift.vision.person import Person  # noqa: E402
from imagelift.vision.second_look import crop_input, finer_long_side, head_crops  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "second_look_tuning.json"
CACHE = ROOT / ".cache" / "second_look_tuning"
CACHE_VERSION = 1
FRACTIONS = (0.25, 0.35, 0.5)
UPSCALES = (1.5, 2.0, 3.0)
SOURCES = ("capped", "full")
GEOMETRIES = list(itertools.product(FRACTIONS, UPSCALES, SOURCES))
MIN_SCORES = (0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
FACE_MIN_CONFIDENCES = (0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995)
# (face_max_side, face_min_size): the shipped one first. A 25 px face of a 1000 px photo is 16 px at the 640 cap.
SHIPPED_PYRAMID = (VisionConfig().face_max_side, VisionConfig().face_min_size)
PYRAMIDS = (SHIPPED_PYRAMID, (640, 12), (800, 16), (960, 16))
FALSE_WEIGHT = 10
FALSE_FACE_BUDGET = 0.005  # bench/face_tuning.py's budget of non-model copies called model
MAX_FACE_TIME_RATIO = 1.25
"""Most face-stage time a new pyramid may cost against the shipped one (interleaved CPU medians over the originals
with a long side of at least LARGE_PHOTO: the median tuning photo is 534 px, under every cap tried, while sellers'
uploads are mostly larger). The cascade is already over its 60 ms CPU median target (README)."""
LARGE_PHOTO = 1280
SENSITIVITY_WEIGHTS = (3, 30)  # the nested CV again with a lighter and a heavier penalty
FULL_RULE = 2  # the full source's decode: 1 = always full size, 2 = the cascade's finer decode
OUTER_FOLDS = 5
INNER_FOLDS = 5
SEED = 14


def geometry_name(geometry: tuple[float, float, str]) -> str:
    fraction, upscale, source = geometry
    return f"fraction {fraction:g}, upscale {upscale:g}, {source}"


# ------------------------------------------------------------------------------------------------ collection
def _cache_file(stage: str, photo: Photo) -> Path:
    key = hashlib.sha256(f"{photo.id}:{file_digest(photo.path)}".encode()).hexdigest()[:20]
    return CACHE / f"v{CACHE_VERSION}" / stage / f"{key}.json"


def second_look_scores(
    cascade: Cascade, capped: np.ndarray, data: bytes, reduced: bool, persons: list[Person], sources=SOURCES
) -> dict:
    """For each geometry: best O-Net score over the person boxes' head crops, the best face's side in capped pixels,
    and the milliseconds (CPU and wall) of the whole second look, a finer decode included. The ``full`` source
    decodes the photo again as the cascade does (``second_look.finer_long_side``: large enough that no crop is
    enlarged from it); where the decode was not reduced, or no crop is enlarged, it is the capped source."""
    h, w = capped.shape[:2]
    out = {}
    for fraction, upscale, source in GEOMETRIES:
        if source not in sources or (source == "full" and not reduced):
            continue
        c0, w0 = time.process_time(), time.perf_counter()
        crops = head_crops(
            persons, w, h, head_fraction=fraction, upscale=upscale, max_side=cascade.config.face_max_side
        )
        finer = None
        if source == "full" and finer_long_side(crops, capped) > max(h, w):
            finer = decode_image(data, target_long_side=finer_long_side(crops, capped)).bgr
        inputs = [crop_input(crop, capped, finer) for crop in crops]
        finer_side = None if finer is None else max(finer.shape[:2])
        del finer
        best, side = 0.0, 0.0
        for crop, image in zip(crops, inputs, strict=True):
            detection = cascade.mtcnn.detect_bgr(image)
            if detection.best_rejected > best:
                best, side = detection.best_rejected, 0.0
            for face in detection.faces:
                if face.confidence > best:
                    best, side = face.confidence, min(face.box[2], face.box[3]) / crop.upscale
        out[geometry_name((fraction, upscale, source))] = {
            "best": round(float(best), 5),
            "face_side_px": round(float(side), 1),
            "crops": len(crops),
            "finer_decode_long_side": finer_side,
            "cpu_ms": round((time.process_time() - c0) * 1000, 2),
            "wall_ms": round((time.perf_counter() - w0) * 1000, 2),
        }
    return out


def _persons(record: dict) -> list[Person]:
    return [Person(tuple(row[:4]), row[4], "full") for row in record["persons"]]  # type: ignore[arg-type]


def collect_shipped(photos: list[Photo], cascade: Cascade) -> dict:
    """{photo id: {copy: record}}: first face pass, person decision and the second-look grid (see module doc)."""
    config = cascade.config
    target = max(config.decode_long_side, config.face_max_side)
    results, start, done = {}, time.perf_counter(), 0
    for index, photo in enumerate(photos):
        cache = _cache_file("shipped", photo)
        if cache.is_file():
            per_copy = json.loads(cache.read_text())
            stale = [c for c, r in per_copy.items() if "second_look" in r and r.get("full_rule") != FULL_RULE]
            if stale:  # the full source's cached scores came from an older rule: only those are measured again
                raw = photo.path.read_bytes()
                for copy in stale:
                    record, data = per_copy[copy], make_copy(raw, copy)
                    decoded = decode_image(data, target_long_side=target)
                    looks = {k: v for k, v in record["second_look"].items() if not k.endswith("full")}
                    looks.update(
                        second_look_scores(
                            cascade, decoded.bgr, data, decoded.scale < 1.0, _persons(record), sources=("full",)
                        )
                    )
                    record["second_look"], record["full_rule"] = looks, FULL_RULE
                cache.write_text(json.dumps(per_copy))
            results[photo.id] = per_copy
            continue
        raw = photo.path.read_bytes()
        per_copy = {}
        for copy in COPIES:
            data = make_copy(raw, copy)
            try:
                decoded = decode_image(data, target_long_side=target)
            except ImageDecodeError as exc:
                per_copy[copy] = {"error": exc.code}
                continue
            image = decoded.bgr
            c0 = time.process_time()
            faces = cascade.detect_faces(image)
            face_ms = (time.process_time() - c0) * 1000
            best_face = max([f.confidence for f in faces.faces] + [faces.best_rejected])
            record = {
                "width": decoded.width,
                "height": decoded.height,
                "decoded_long_side": max(image.shape[:2]),
                "face_found": bool(faces.faces),
                "best_face": round(float(best_face), 5),
                "face_cpu_ms": round(face_ms, 2),
            }
            if not faces.faces:
                c0 = time.process_time()
                search = cascade.persons.search(image)
                record["person_cpu_ms"] = round((time.process_time() - c0) * 1000, 2)
                record["person_found"] = search.found
                record["persons"] = [[round(v, 1) for v in p.box] + [round(p.confidence, 4)] for p in search.persons]
                if search.found:
                    record["second_look"] = second_look_scores(
                        cascade, image, data, decoded.scale < 1.0, search.persons
                    )
                    record["full_rule"] = FULL_RULE
            per_copy[copy] = record
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(per_copy))
        results[photo.id] = per_copy
        done += 1
        if done % 25 == 0:
            rate = (time.perf_counter() - start) / done
            print(f"  shipped: {index + 1}/{len(photos)} photos ({rate:.2f} s/photo)", flush=True)
    return results


def collect_pyramid(photos: list[Photo], shipped: Cascade, side: int, min_size: int) -> dict:
    """{photo id: {copy: {"best", "cpu_ms"[, "shipped_cpu_ms"]}}} for the first face pass at (side, min_size)."""
    config = dataclasses.replace(shipped.config, face_max_side=side, face_min_size=min_size)
    cascade = Cascade(
        config,
        type(shipped.mtcnn)(
            config.models_dir / "mtcnn",
            min_face_size=min_size,
            thresholds=(config.face_pnet_threshold, config.face_rnet_threshold, config.face_onet_threshold),
            scale_factor=config.face_scale_factor,
            threads=config.threads,
        ),
        shipped.persons,
        shipped.models,
    )
    stage = f"pyramid_{side}_{min_size}"
    results, start, done = {}, time.perf_counter(), 0
    for index, photo in enumerate(photos):
        cache = _cache_file(stage, photo)
        if cache.is_file():
            results[photo.id] = json.loads(cache.read_text())
            continue
        raw = photo.path.read_bytes()
        per_copy = {}
        for copy in COPIES:
            data = make_copy(raw, copy)
            try:
                image = decode_image(data, target_long_side=max(config.decode_long_side, side)).bgr
            except ImageDecodeError as exc:
                per_copy[copy] = {"error": exc.code}
                continue
            runs = [("cpu_ms", cascade)]
            if copy == "original":  # the shipped pass again, alternating which goes first, for the time ratio
                shipped_image = decode_image(
                    data, target_long_side=max(shipped.config.decode_long_side, shipped.config.face_max_side)
                ).bgr
                runs.append(("shipped_cpu_ms", shipped))
                if index % 2:
                    runs.reverse()
            record = {}
            for key, which in runs:
                c0 = time.process_time()
                detection = which.detect_faces(image if which is cascade else shipped_image)
                record[key] = round((time.process_time() - c0) * 1000, 2)
                if which is cascade:
                    record["best"] = round(
                        float(max([f.confidence for f in detection.faces] + [detection.best_rejected])), 5
                    )
            per_copy[copy] = record
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(per_copy))
        results[photo.id] = per_copy
        done += 1
        if done % 25 == 0:
            rate = (time.perf_counter() - start) / done
            print(f"  {stage}: {index + 1}/{len(photos)} photos ({rate:.2f} s/photo)", flush=True)
    return results


# ------------------------------------------------------------------------------------------------ tables
@dataclass
class Table:
    photos: list[Photo]
    label: np.ndarray  # (photos,)
    kind: np.ndarray
    source: np.ndarray
    face: np.ndarray  # (photos, copies): the shipped first pass found a face
    worn: np.ndarray  # (photos, copies): no face, a person: where the second look runs
    scores: np.ndarray  # (geometries, photos, copies): best second-look score (0 where it did not run)
    cpu_ms: np.ndarray  # (geometries, photos, copies): second-look CPU ms (nan where it did not run)
    valid: np.ndarray  # (photos, copies): decodable
    long_side: np.ndarray  # (photos, copies): the photo's long side, full resolution


def build_table(photos: list[Photo], shipped: dict) -> Table:
    n, c, g = len(photos), len(COPIES), len(GEOMETRIES)
    face, worn, valid = np.zeros((n, c), bool), np.zeros((n, c), bool), np.zeros((n, c), bool)
    long_side = np.zeros((n, c))
    scores, cpu = np.zeros((g, n, c)), np.full((g, n, c), np.nan)
    for p, photo in enumerate(photos):
        for k, copy in enumerate(COPIES):
            record = shipped[photo.id][copy]
            if "error" in record:
                continue
            valid[p, k] = True
            long_side[p, k] = max(record["width"], record["height"])
            face[p, k] = record["face_found"]
            if record.get("person_found"):
                worn[p, k] = True
                looks = record["second_look"]
                for i, (fraction, upscale, source) in enumerate(GEOMETRIES):
                    # Where the decode was not reduced the full source is the capped decode itself.
                    look = (
                        looks.get(geometry_name((fraction, upscale, source)))
                        or looks[geometry_name((fraction, upscale, "capped"))]
                    )
                    scores[i, p, k] = look["best"]
                    cpu[i, p, k] = look["cpu_ms"]
    return Table(
        photos,
        np.array([p.label for p in photos]),
        np.array([p.kind for p in photos]),
        np.array([p.source for p in photos]),
        face,
        worn,
        scores,
        cpu,
        valid,
        long_side,
    )


def photo_folds(table: Table, folds: int, subset: np.ndarray, seed: int) -> np.ndarray:
    """Stratified by kind: each kind's photos are shuffled and dealt round-robin; -1 outside ``subset``."""
    rng = np.random.default_rng(seed)
    ids = np.full(len(table.photos), -1)
    for kind in KINDS:
        members = np.flatnonzero(subset & (table.kind == kind))
        rng.shuffle(members)
        ids[members] = np.arange(len(members)) % folds
    return ids


def outer_groups(table: Table, scheme: str) -> list[tuple[str, np.ndarray]]:
    if scheme == "photos":
        ids = photo_folds(table, OUTER_FOLDS, np.ones(len(table.photos), bool), SEED)
        return [(f"fold {k}", ids == k) for k in range(OUTER_FOLDS)]
    return [(s, table.source == s) for s in sorted(set(table.source.tolist()))]


# ------------------------------------------------------------------------------------------------ second look
OFF = -1  # the "second look off" candidate


def gains(table: Table, geometry: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per minimum score: model copies turned into model, non-model copies turned into model, within ``rows``."""
    if geometry == OFF:
        return np.zeros(len(MIN_SCORES)), np.zeros(len(MIN_SCORES))
    model = (table.label == 1)[:, None] & table.worn & rows[:, None]
    other = (table.label != 1)[:, None] & table.worn & rows[:, None]
    s = table.scores[geometry]
    thresholds = np.asarray(MIN_SCORES)[:, None]
    return (s[model][None, :] >= thresholds).sum(1), (s[other][None, :] >= thresholds).sum(1)


def objective(gained: np.ndarray, false: np.ndarray, weight: float = FALSE_WEIGHT) -> np.ndarray:
    return gained - weight * false


def best_score_index(table: Table, geometry: int, rows: np.ndarray, weight: float = FALSE_WEIGHT) -> int:
    """Minimum score with the best objective on ``rows``; ties to the stricter score."""
    values = objective(*gains(table, geometry, rows), weight)
    top = np.flatnonzero(values == values.max())
    return int(top[-1])


def geometry_cost_key(geometry: int) -> tuple:
    if geometry == OFF:
        return (0,)
    fraction, upscale, source = GEOMETRIES[geometry]
    return (1, source != "capped", upscale, fraction)


def choose_second_look(
    table: Table, train: np.ndarray, seed: int, weight: float = FALSE_WEIGHT
) -> tuple[int, int, dict]:
    """Inner photo CV over ``train`` picks the geometry (or off), the score is refitted on all of ``train``."""
    inner = photo_folds(table, INNER_FOLDS, train, seed)
    candidates = [OFF, *range(len(GEOMETRIES))]
    totals = {}
    for geometry in candidates:
        total = 0.0
        for k in range(INNER_FOLDS):
            fit, held = train & (inner != k), train & (inner == k)
            point = best_score_index(table, geometry, fit, weight)
            total += objective(*gains(table, geometry, held), weight)[point]
        totals[geometry] = total
    best = max(candidates, key=lambda g: (totals[g], tuple(-v for v in geometry_cost_key(g))))
    ranking = sorted(candidates, key=lambda g: -totals[g])[:5]
    top = {("off" if g == OFF else geometry_name(GEOMETRIES[g])): totals[g] for g in ranking}
    return best, best_score_index(table, best, train, weight), top


def decisions(table: Table, geometry: int, score_index: int) -> np.ndarray:
    """Category 1 per (photo, copy) with the second look at (geometry, score)."""
    if geometry == OFF:
        return table.face.copy()
    return table.face | (table.worn & (table.scores[geometry] >= MIN_SCORES[score_index]))


def figures(table: Table, called: np.ndarray, rows: np.ndarray | None = None) -> dict:
    """Copies called model by kind, and the headline shares (valid copies only)."""
    rows = np.ones(len(table.photos), bool) if rows is None else rows
    mask = table.valid & rows[:, None]
    by_kind = {}
    for kind in KINDS:
        sel = mask & (table.kind == kind)[:, None]
        by_kind[kind] = {"called_model": int(called[sel].sum()), "copies": int(sel.sum())}
    model = mask & (table.label == 1)[:, None]
    product = mask & (table.label == 3)[:, None]
    worn = mask & (table.label == 2)[:, None]

    def share(k: int, n: int) -> dict:
        p = k / n if n else 0.0
        return {"k": k, "n": n, "share": round(p, 4), "binomial_se": round(float(np.sqrt(p * (1 - p) / n)), 4)}

    return {
        "model_recall": share(int(called[model].sum()), int(model.sum())),
        "product_called_model": share(int(called[product].sum()), int(product.sum())),
        "worn_called_model": share(int(called[worn].sum()), int(worn.sum())),
        "originals": {
            "model_found": [int(called[model[:, 0], 0].sum()), int(model[:, 0].sum())],
            "product_called_model": [int(called[product[:, 0], 0].sum()), int(product[:, 0].sum())],
            "worn_called_model": [int(called[worn[:, 0], 0].sum()), int(worn[:, 0].sum())],
        },
        "by_kind": by_kind,
    }


def outer_cv_second_look(table: Table, scheme: str, weight: float = FALSE_WEIGHT) -> dict:
    held_out = table.face.copy()
    chosen = []
    for index, (name, test) in enumerate(outer_groups(table, scheme)):
        geometry, point, top = choose_second_look(table, ~test, SEED + index, weight)
        held_out[test] = decisions(table, geometry, point)[test]
        chosen.append(
            {
                "held_out": name,
                "photos": int(test.sum()),
                "geometry": "off" if geometry == OFF else geometry_name(GEOMETRIES[geometry]),
                "min_score": None if geometry == OFF else MIN_SCORES[point],
                "inner_cv_top": top,
            }
        )
    return {
        "figures": figures(table, held_out),
        "changed": changed_copies(table, held_out),
        "chosen_per_fold": chosen,
    }


def geometry_table(table: Table) -> list[dict]:
    """Each geometry alone (its score refitted per outer fold of each scheme; and its in-sample best score), with
    its time where it ran."""
    rows = []
    everything = np.ones(len(table.photos), bool)
    for i, geometry in enumerate(GEOMETRIES):
        held = {}
        for scheme in ("photos", "sources"):
            held_out = table.face.copy()
            for _, test in outer_groups(table, scheme):
                held_out[test] = decisions(table, i, best_score_index(table, i, ~test))[test]
            held[scheme] = figures(table, held_out)
        point = best_score_index(table, i, everything)
        ran = table.worn & table.valid
        gained, false = gains(table, i, everything)
        rows.append(
            {
                "geometry": geometry_name(geometry),
                "in_sample_best_min_score": MIN_SCORES[point],
                "in_sample": figures(table, decisions(table, i, point)),
                "in_sample_by_score": {
                    f"{t:g}": {"model_gained": int(a), "non_model_called_model": int(b)}
                    for t, a, b in zip(MIN_SCORES, gained, false, strict=True)
                },
                "cv_photo_folds_score_refitted": held["photos"],
                "cv_sources_score_refitted": held["sources"],
                "cpu_ms_median_where_it_ran": round(float(np.nanmedian(table.cpu_ms[i][ran])), 1),
                "cpu_ms_p90_where_it_ran": round(float(np.nanpercentile(table.cpu_ms[i][ran], 90)), 1),
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------ pyramids
def pyramid_table(photos: list[Photo], table: Table, runs: dict) -> tuple[np.ndarray, list[tuple]]:
    """(settings, photos, copies) category-1 calls for every (pyramid, face_min_confidence)."""
    settings = [(pyr, t) for pyr in runs for t in FACE_MIN_CONFIDENCES]
    called = np.zeros((len(settings), len(photos), len(COPIES)), bool)
    best = {pyr: np.zeros((len(photos), len(COPIES))) for pyr in runs}
    for pyr, run in runs.items():
        for p, photo in enumerate(photos):
            for k, copy in enumerate(COPIES):
                best[pyr][p, k] = run[photo.id][copy].get("best", 0.0)
    for s, (pyr, t) in enumerate(settings):
        called[s] = (best[pyr] >= t) & table.valid
    return called, settings


def pyramid_objective(table: Table, called: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The face stage's own selection rule (bench/face_tuning.py, which chose the shipped score): the most model
    copies found while at most ``FALSE_FACE_BUDGET`` of the non-model copies are called model, then fewer false
    faces; over budget, fewer false faces first."""
    model = ((table.label == 1) & rows)[:, None] & table.valid
    other = ((table.label != 1) & rows)[:, None] & table.valid
    found, false = called[:, model].sum(1).astype(float), called[:, other].sum(1).astype(float)
    feasible = false <= FALSE_FACE_BUDGET * other.sum()
    return np.where(feasible, found * 10_000 - false, -1e9 - false)


def choose_pyramid(table: Table, called: np.ndarray, settings: list, train: np.ndarray, seed: int) -> int:
    """Inner photo CV picks the pyramid, its minimum score is refitted on all of ``train``; ties to the shipped
    pyramid (listed first), then to the stricter score."""
    inner = photo_folds(table, INNER_FOLDS, train, seed)
    pyramids = list(dict.fromkeys(p for p, _ in settings))

    def best_in(pyramid: tuple, rows: np.ndarray) -> int:
        idx = [i for i, (p, _) in enumerate(settings) if p == pyramid]
        values = pyramid_objective(table, called[idx], rows)
        return idx[int(np.flatnonzero(values == values.max())[-1])]

    totals = []
    for pyramid in pyramids:
        # The inner held-out calls are pooled over the inner folds, then judged by the rule on all of ``train``.
        pooled = np.zeros_like(table.face)
        for k in range(INNER_FOLDS):
            fit, held = train & (inner != k), train & (inner == k)
            pooled[held] = called[best_in(pyramid, fit)][held]
        totals.append(pyramid_objective(table, pooled[None], train)[0])
    winner = pyramids[int(np.argmax(totals))]  # argmax keeps the first (shipped) among ties
    return best_in(winner, train)


def pyramid_report(photos: list[Photo], table: Table, runs: dict) -> dict:
    called, settings = pyramid_table(photos, table, runs)
    everything = np.ones(len(photos), bool)
    out: dict = {"pyramids": {}}
    for scheme in ("photos", "sources"):
        held_out = np.zeros_like(table.face)
        chosen = []
        for index, (name, test) in enumerate(outer_groups(table, scheme)):
            pick = choose_pyramid(table, called, settings, ~test, SEED + index)
            held_out[test] = called[pick][test]
            (side, size), t = settings[pick]
            chosen.append({"held_out": name, "face_max_side": side, "face_min_size": size, "face_min_confidence": t})
        out[f"cv_{scheme}"] = {"figures": figures(table, held_out), "chosen_per_fold": chosen}
    pick = choose_pyramid(table, called, settings, everything, SEED)
    (side, size), t = settings[pick]
    out["chosen_on_all_photos"] = {"face_max_side": side, "face_min_size": size, "face_min_confidence": t}
    out["in_sample"] = figures(table, called[pick])
    out["shipped"] = {"face_max_side": PYRAMIDS[0][0], "face_min_size": PYRAMIDS[0][1]}
    for pyramid, run in runs.items():
        idx = [i for i, (p, _) in enumerate(settings) if p == pyramid]
        refitted = {}
        for scheme in ("photos", "sources"):
            held_out = np.zeros_like(table.face)
            for _, test in outer_groups(table, scheme):
                values = pyramid_objective(table, called[idx], ~test)
                held_out[test] = called[idx[int(np.flatnonzero(values == values.max())[-1])]][test]
            refitted[scheme] = figures(table, held_out)
        values = pyramid_objective(table, called[idx], everything)
        best = idx[int(np.flatnonzero(values == values.max())[-1])]
        at_shipped = called[settings.index((pyramid, VisionConfig().face_min_confidence))]
        originals = [run[p.id]["original"] for p in photos if "cpu_ms" in run[p.id].get("original", {})]
        large = [
            run[p.id]["original"]
            for i, p in enumerate(photos)
            if "shipped_cpu_ms" in run[p.id].get("original", {}) and table.long_side[i, 0] >= LARGE_PHOTO
        ]
        timing = {
            "cpu_ms_median_all_copies": round(
                statistics.median(r["cpu_ms"] for v in run.values() for r in v.values() if "cpu_ms" in r), 1
            ),
            "note": "all copies: each pyramid's run at its own time and load; compare originals_interleaved",
        }
        paired = [r for r in originals if "shipped_cpu_ms" in r]
        if large:
            timing["large_originals_interleaved"] = {
                "long_side_at_least": LARGE_PHOTO,
                "photos": len(large),
                "cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in large), 1),
                "shipped_cpu_ms_median": round(statistics.median(r["shipped_cpu_ms"] for r in large), 1),
                "ratio_of_medians": round(
                    statistics.median(r["cpu_ms"] for r in large)
                    / statistics.median(r["shipped_cpu_ms"] for r in large),
                    2,
                ),
            }
        if paired:
            timing["originals_interleaved"] = {
                "cpu_ms_median": round(statistics.median(r["cpu_ms"] for r in paired), 1),
                "shipped_cpu_ms_median": round(statistics.median(r["shipped_cpu_ms"] for r in paired), 1),
                "ratio_of_medians": round(
                    statistics.median(r["cpu_ms"] for r in paired)
                    / statistics.median(r["shipped_cpu_ms"] for r in paired),
                    2,
                ),
                "cpu_ms_p90": round(float(np.percentile([r["cpu_ms"] for r in paired], 90)), 1),
                "shipped_cpu_ms_p90": round(float(np.percentile([r["shipped_cpu_ms"] for r in paired], 90)), 1),
                "cpu_ms_mean": round(statistics.mean(r["cpu_ms"] for r in paired), 1),
                "shipped_cpu_ms_mean": round(statistics.mean(r["shipped_cpu_ms"] for r in paired), 1),
                "photos": len(paired),
            }
        out["pyramids"][f"{pyramid[0]}/{pyramid[1]}"] = {
            "in_sample_best_face_min_confidence": settings[best][1],
            "in_sample": figures(table, called[best]),
            "at_shipped_face_min_confidence": figures(table, at_shipped),
            "at_shipped_score_vs_shipped": {
                "model_gained": [
                    [table.photos[p].id, COPIES[k]]
                    for p, k in zip(*np.nonzero(at_shipped & ~table.face & (table.label == 1)[:, None]), strict=True)
                ],
                "model_lost": int((~at_shipped & table.face & (table.label == 1)[:, None]).sum()),
                "non_model_new": [
                    [table.photos[p].id, COPIES[k]]
                    for p, k in zip(*np.nonzero(at_shipped & ~table.face & (table.label != 1)[:, None]), strict=True)
                ],
                "non_model_gone": int((~at_shipped & table.face & (table.label != 1)[:, None]).sum()),
            },
            "cv_photo_folds_score_refitted": refitted["photos"],
            "cv_sources_score_refitted": refitted["sources"],
            "time": timing,
        }
    # Like for like: the nested choice against the shipped pyramid with its score refitted in the same folds.
    shipped_row = out["pyramids"][f"{PYRAMIDS[0][0]}/{PYRAMIDS[0][1]}"]
    checks = {}
    for scheme, key in (("cv_photos", "cv_photo_folds_score_refitted"), ("cv_sources", "cv_sources_score_refitted")):
        f, base = out[scheme]["figures"], shipped_row[key]
        checks[scheme] = {
            "more_model_recall": f["model_recall"]["k"] > base["model_recall"]["k"],
            "product_called_model_at_most_1pct": f["product_called_model"]["share"] <= 0.01,
            "product_called_model_vs_shipped": [f["product_called_model"]["k"], base["product_called_model"]["k"]],
            "worn_not_hurt": f["worn_called_model"]["k"] <= base["worn_called_model"]["k"],
        }
    supported = (
        all(
            c["more_model_recall"] and c["product_called_model_at_most_1pct"] and c["worn_not_hurt"]
            for c in checks.values()
        )
        and (side, size) != PYRAMIDS[0]
    )
    chosen_time = out["pyramids"][f"{side}/{size}"]["time"].get("large_originals_interleaved", {})
    out["decision"] = {
        "cv_supports_the_choice": supported,
        "checks_against_shipped_pyramid_score_refitted": checks,
        "face_stage_time_ratio": chosen_time.get("ratio_of_medians", 1.0),
        "cost_acceptable": chosen_time.get("ratio_of_medians", 1.0) <= MAX_FACE_TIME_RATIO,
    }
    out["decision"]["change_defaults"] = supported and out["decision"]["cost_acceptable"]
    return out


# ------------------------------------------------------------------------------------------------ main
def changed_copies(table: Table, called: np.ndarray) -> list[dict]:
    rows = []
    for p, k in zip(*np.nonzero(called & ~table.face), strict=True):
        photo = table.photos[p]
        rows.append({"photo": photo.id, "source": photo.source, "copy": COPIES[k], "label": int(table.label[p])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--no-pyramids", action="store_true", help="leave the face-stage pyramids out")
    parser.add_argument(
        "--pyramids",
        default=",".join(f"{side}/{size}" for side, size in PYRAMIDS[1:]),
        help="face-stage pyramids besides the shipped one, CAP/MIN_FACE,... (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="every 10th photo (a smoke run; writes nothing)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    photos = load_photos()
    if args.quick:
        photos = photos[::10]
    config = VisionConfig.from_env({}, models_dir=ROOT / "models", threads=1, face_second_look=False)
    cascade = Cascade.load(config)
    print(f"{len(photos)} photos x {len(COPIES)} copies; {len(GEOMETRIES)} second-look geometries", flush=True)
    shipped = collect_shipped(photos, cascade)
    runs = {}
    if not args.no_pyramids:
        for item in args.pyramids.split(","):
            side, size = (int(v) for v in item.split("/"))
            runs[(side, size)] = collect_pyramid(photos, cascade, side, size)
    if args.collect_only:
        return
    table = build_table(photos, shipped)
    everything = np.ones(len(photos), bool)
    geometry, point, _ = choose_second_look(table, everything, SEED)
    chosen_called = decisions(table, geometry, point)
    ran = table.worn & table.valid
    finer = [
        look["finer_decode_long_side"]
        for v in shipped.values()
        for r in v.values()
        for look in r.get("second_look", {}).values()
        if look.get("finer_decode_long_side")
    ]
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 python bench/second_look_tuning.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "photos": len(photos),
        "copies_per_photo": list(COPIES),
        "objective": f"model copies gained - {FALSE_WEIGHT} x worn or product copies turned into model",
        "grid": {
            "head_fraction": FRACTIONS,
            "upscale": UPSCALES,
            "crop_source": SOURCES,
            "min_score": MIN_SCORES,
        },
        "second_look_ran_on": {kind: int((ran & (table.kind == kind)[:, None]).sum()) for kind in KINDS},
        "shipped_without_second_look": figures(table, table.face),
        "second_look": {
            "chosen_on_all_photos": {
                "on": geometry != OFF,
                "geometry": "off" if geometry == OFF else geometry_name(GEOMETRIES[geometry]),
                "head_fraction": None if geometry == OFF else GEOMETRIES[geometry][0],
                "upscale": None if geometry == OFF else GEOMETRIES[geometry][1],
                "crop_source": None if geometry == OFF else GEOMETRIES[geometry][2],
                "min_score": None if geometry == OFF else MIN_SCORES[point],
            },
            "in_sample": figures(table, chosen_called),
            "cv_photos": outer_cv_second_look(table, "photos"),
            "cv_sources": outer_cv_second_look(table, "sources"),
            "cv_by_false_weight": {
                str(weight): {
                    scheme: outer_cv_second_look(table, scheme, weight)["figures"] for scheme in ("photos", "sources")
                }
                for weight in SENSITIVITY_WEIGHTS
            },
            "changed_in_sample": changed_copies(table, chosen_called),
            "cpu_ms_median_where_it_ran": None
            if geometry == OFF
            else round(float(np.nanmedian(table.cpu_ms[geometry][ran])), 1),
            "finer_decodes_over_the_grid": len(finer),
            "geometries": geometry_table(table),
        },
    }
    result["second_look"]["decision"] = decide(result)
    if runs:
        runs = {
            PYRAMIDS[0]: {
                pid: {c: {"best": r.get("best_face", 0.0), "cpu_ms": r.get("face_cpu_ms", 0.0)} for c, r in v.items()}
                for pid, v in shipped.items()
            },
            **runs,
        }
        result["face_stage_pyramids"] = pyramid_report(photos, table, runs)
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        RESULTS.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def decide(result: dict) -> dict:
    """Switch the second look on only if both CV schemes find more model copies with at most 1% of product copies
    and no more worn copies called model than without it."""
    base = result["shipped_without_second_look"]
    checks = {}
    for scheme in ("cv_photos", "cv_sources"):
        f = result["second_look"][scheme]["figures"]
        checks[scheme] = {
            "more_model_recall": f["model_recall"]["k"] > base["model_recall"]["k"],
            "product_called_model_at_most_1pct": f["product_called_model"]["share"] <= 0.01,
            "worn_not_hurt": f["worn_called_model"]["k"] <= base["worn_called_model"]["k"],
        }
    on = all(all(c.values()) for c in checks.values()) and result["second_look"]["chosen_on_all_photos"]["on"]
    return {"switch_on": on, "checks": checks}


def _cell(f: dict) -> str:
    m, p, w = f["model_recall"], f["product_called_model"], f["worn_called_model"]
    return (
        f"{m['k']}/{m['n']} ({m['share']:.1%}) | {p['k']}/{p['n']} ({p['share']:.2%}) | "
        f"{w['k']}/{w['n']} ({w['share']:.2%})"
    )


def _short(f: dict) -> str:
    return f"{f['model_recall']['k']} / {f['product_called_model']['k']} / {f['worn_called_model']['k']}"


def markdown(result: dict) -> str:
    look = result["second_look"]
    lines = [
        "# Second look for small faces: nested CV",
        "",
        f"Generated {result['generated_at']} by `{result['command']}` (load {result['machine']['load_average']}).",
        f"{result['photos']} photos x {len(result['copies_per_photo'])} copies. Objective: {result['objective']}.",
        f"The second look runs where the shipped cascade says worn: {result['second_look_ran_on']} copies.",
        "",
        f"Chosen on all photos: {look['chosen_on_all_photos']}.",
        "",
        "| figure | model recall | product called model | worn called model |",
        "|---|---|---|---|",
        f"| shipped, second look off | {_cell(result['shipped_without_second_look'])} |",
        f"| CV, photo folds | {_cell(look['cv_photos']['figures'])} |",
        f"| CV, sources left out | {_cell(look['cv_sources']['figures'])} |",
        f"| in-sample (misleads) | {_cell(look['in_sample'])} |",
        "",
        f"Decision: switch on = {look['decision']['switch_on']}; checks {look['decision']['checks']}.",
        "",
        "Nested CV with another false-call weight (model / product / worn copies called model):",
        "",
        *(
            f"- weight {w}: photo folds {_short(v['photos'])}; sources left out {_short(v['sources'])}"
            for w, v in look["cv_by_false_weight"].items()
        ),
        "",
        "Per fold (photo folds): "
        + "; ".join(f"{r['geometry']} @ {r['min_score']}" for r in look["cv_photos"]["chosen_per_fold"]),
        "",
        "Each geometry alone, its score refitted per outer fold (model / product / worn copies called model):",
        "",
        "| geometry | CV photo folds | CV sources left out | in-sample best score | CPU ms median where it ran |",
        "|---|---|---|---|---|",
    ]
    for row in look["geometries"]:
        lines.append(
            f"| {row['geometry']} | {_short(row['cv_photo_folds_score_refitted'])} | "
            f"{_short(row['cv_sources_score_refitted'])} | {row['in_sample_best_min_score']} | "
            f"{row['cpu_ms_median_where_it_ran']} |"
        )
    pyr = result.get("face_stage_pyramids")
    if pyr:
        lines += [
            "",
            "## Face stage: cap and smallest face",
            "",
            f"Chosen on all photos: {pyr['chosen_on_all_photos']}.",
            f"Decision: {pyr['decision']}.",
            "",
            "| figure | model recall | product called model | worn called model |",
            "|---|---|---|---|",
            f"| CV, photo folds | {_cell(pyr['cv_photos']['figures'])} |",
            f"| CV, sources left out | {_cell(pyr['cv_sources']['figures'])} |",
            f"| in-sample | {_cell(pyr['in_sample'])} |",
            "",
            "Each pyramid alone, its score refitted per outer fold (model / product / worn copies called model);"
            " face-stage CPU ms median (shipped pyramid's in brackets) on the originals, interleaved in one run:",
            "",
            "| pyramid (cap/min face) | CV photo folds | CV sources left out | in-sample best score | at score "
            f"{VisionConfig().face_min_confidence} | CPU ms (shipped) ratio |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in pyr["pyramids"].items():
            t, big = row["time"].get("originals_interleaved"), row["time"].get("large_originals_interleaved")
            timing = f"{t['cpu_ms_median']} ({t['shipped_cpu_ms_median']}) {t['ratio_of_medians']}x" if t else "-"
            if big:
                timing += f"; {big['photos']} photos >= {big['long_side_at_least']} px: "
                timing += f"{big['cpu_ms_median']} ({big['shipped_cpu_ms_median']}) {big['ratio_of_medians']}x"
            lines.append(
                f"| {name} | {_short(row['cv_photo_folds_score_refitted'])} | "
                f"{_short(row['cv_sources_score_refitted'])} | {row['in_sample_best_face_min_confidence']} | "
                f"{_short(row['at_shipped_face_min_confidence'])} | {timing} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
