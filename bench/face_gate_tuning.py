"""The face stage's cap and smallest face behind the face gate: what costlier settings would find, by nested CV.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_gate_tuning.py    # after bench/person_gate_scores.py

With the gate, MTCNN runs only on the copies where yolov3-tiny sees a person (about a fifth of them), so a face
stage that bench/face_tuning.py found too slow or too prone to false faces on products may now pay. For every copy
of the 470 tuning photos whose gate opens (the gate's scores and the cascade's categories from
bench/person_gate_scores.py's cache), decoded as the cascade would decode it for that cap, this scores each
``VARIANTS`` setting (MTCNN cap on the long side, smallest face): the best O-Net score of a face, and the category
the cascade gives with no face counted (the person and hand stages' call). A gated copy keeps its category.

A candidate is a setting and a face score on ``SCORES``; on a training part the candidate with the highest
objective (model recall - 15 x the share of other copies called model) is chosen, ties to the shipped setting and
then the cheaper one; outer schemes: 5 photo folds stratified by kind and each MANIFEST ``source_repo`` left out
(bench/nested_cv.py's folds). Nothing here changes the shipped defaults. The scored copies are cached in
.cache/face_gate_tuning/ (about 4.5 min to fill at one thread). Writes bench/results/face_gate_tuning.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

import nested_cv as cv  # noqa: E402
from person_gate_scores import load_scores  # noqa: E402
from score_cache import decode_upload  # noqa: E402
from vision_data import COPIES, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

SHIPPED = (640, 16)
VARIANTS = ((640, 16), (640, 12), (800, 16), (800, 12), (960, 16))
SCORES = (0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
RESULTS = ROOT / "bench" / "results" / "face_gate_tuning.json"
CACHE = ROOT / ".cache" / "face_gate_tuning" / "rows-v1.json"
"""The scored copies (delete it after a change to the models, the gate or the photos)."""


def _name(variant: tuple[int, int]) -> str:
    return f"{variant[0]}/{variant[1]}"


def score_open_copies(config: VisionConfig) -> list[dict]:
    """One row per copy: photo index, kind, source, the cached category, and for gate-open copies each variant's
    best face score and CPU ms, and the no-face category."""
    cached = {r["id"]: r for r in load_scores(Path(config.models_dir))}
    cascades = {v: Cascade.load(replace(config, face_max_side=v[0], face_min_size=v[1])) for v in VARIANTS}
    no_face = Cascade.load(replace(config, face_min_confidence=1.01))
    rows = []
    started = time.monotonic()
    for index, photo in enumerate(load_photos()):
        data = photo.path.read_bytes()
        for copy in COPIES:
            value = cached[photo.id]["copies"][copy]
            if "error" in value:
                continue
            row = {"photo": index, "kind": photo.kind, "source": photo.source, "category": value["category"]}
            if value["gate"]["yolov3-tiny"]["best"] >= config.face_gate_min_person:
                encoded = make_copy(data, copy)
                row["no_face_category"] = no_face.classify_decoded(decode_upload(encoded, config)).category
                row["faces"] = {}
                for variant, cascade in cascades.items():
                    image = decode_upload(encoded, cascade.config).bgr
                    c0 = time.process_time()
                    detection = cascade.detect_faces(image)  # the faces that count and the best one that did not
                    ms = (time.process_time() - c0) * 1000
                    best = max([f.confidence for f in detection.faces] + [detection.best_rejected])
                    row["faces"][_name(variant)] = {"best": round(float(best), 5), "cpu_ms": round(ms, 2)}
            rows.append(row)
        if (index + 1) % 50 == 0:
            print(f"{index + 1} photos, {time.monotonic() - started:.0f} s", flush=True)
    return rows


def categories(rows: list[dict], variant: str, score: float) -> np.ndarray:
    out = []
    for r in rows:
        if "faces" not in r:  # gated: a face the cascade without the gate found is not looked for
            out.append(3 if r["category"] == 1 else r["category"])
        elif r["faces"][variant]["best"] >= score:
            out.append(1)
        else:
            out.append(r["no_face_category"])
    return np.array(out)


def objective(rows: list[dict], called: np.ndarray, weight: np.ndarray) -> float:
    model = np.array([r["kind"] == "model" for r in rows])
    return float(
        (weight * (called == 1))[model].sum() / weight[model].sum()
        - cv.FP_WEIGHT * (weight * (called == 1))[~model].sum() / weight[~model].sum()
    )


def main() -> int:
    config = VisionConfig.from_env({}, models_dir=ROOT / "models", threads=1)
    started = time.monotonic()
    if CACHE.is_file():
        rows = json.loads(CACHE.read_text(encoding="utf-8"))
    else:
        rows = score_open_copies(config)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(rows), encoding="utf-8")
    per_photo = {}
    for r in rows:
        per_photo[r["photo"]] = per_photo.get(r["photo"], 0) + 1
    weight = np.array([1.0 / per_photo[r["photo"]] for r in rows])
    kinds = [None] * (max(per_photo) + 1)
    for r in rows:
        kinds[r["photo"]] = r["kind"]
    candidates = [(_name(v), s) for v in VARIANTS for s in SCORES]
    called = {c: categories(rows, *c) for c in candidates}
    shipped = (_name(SHIPPED), config.face_min_confidence)
    cost = {v: statistics.median(r["faces"][v]["cpu_ms"] for r in rows if "faces" in r) for v, _ in candidates}

    def choose(train: np.ndarray) -> tuple[str, float]:
        def key(c):
            return (
                round(objective([rows[i] for i in train], called[c][train], weight[train]), 9),
                c == shipped,
                -cost[c[0]],
            )

        return max(candidates, key=key)

    report: dict = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "shipped": list(shipped)}
    every = np.arange(len(rows))
    photo_of = np.array([r["photo"] for r in rows])
    source_of = np.array([r["source"] for r in rows])
    for scheme in cv.SCHEMES:
        if scheme == "photos":
            fold = cv.photo_folds(kinds, np.unique(photo_of))
            groups = np.array([fold[int(p)] for p in photo_of])
        else:
            groups = source_of
        out = np.zeros(len(rows), dtype=int)
        chosen = []
        for group in np.unique(groups):
            test = groups == group
            pick = choose(every[~test])
            chosen.append(pick)
            out[test] = called[pick][test]
        report[scheme] = {"figures": _figures(rows, out, weight), "chosen": _counts(chosen)}
    report["in_sample"] = {"chosen": list(choose(every))}
    report["each_candidate_in_sample"] = {f"{v} @ {s}": _figures(rows, called[(v, s)], weight) for v, s in candidates}
    report["face_stage_cpu_median_ms_on_open_copies"] = cost
    report["open_copies"] = sum("faces" in r for r in rows)
    report["copies"] = len(rows)
    report["seconds"] = round(time.monotonic() - started)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("shipped", "photos", "sources", "in_sample", "open_copies")}, indent=1))
    print(json.dumps(cost))
    return 0


def _figures(rows: list[dict], called: np.ndarray, weight: np.ndarray) -> dict:
    model = np.array([r["kind"] == "model" for r in rows])
    worn = np.array([r["kind"] in cv.WORN_KINDS for r in rows])
    product = ~model & ~worn
    model_calls = (called == 1).astype(float)
    return {
        "model_recall": round(float((weight * model_calls)[model].sum() / weight[model].sum()), 4),
        "model_copies_found": int((model_calls * model).sum()),
        "worn_copies_called_model": int((model_calls * worn).sum()),
        "product_copies_called_model": int((model_calls * product).sum()),
    }


def _counts(chosen: list) -> dict:
    out: dict = {}
    for c in chosen:
        out[f"{c[0]} @ {c[1]}"] = out.get(f"{c[0]} @ {c[1]}", 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
