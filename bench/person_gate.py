"""A person gate in front of the face stage, its threshold chosen by nested cross-validation.

    .venv/bin/python bench/person_gate.py    # after bench/person_gate_scores.py

The gate: MTCNN runs only where the primary YOLO net (yolov3-tiny, on the whole photo at the cascade's input
size, the pass the person stage runs first anyway) gives a person at least ``t``. Below it the face stage is
skipped and the photo goes on to the person and hand stages as before, so what the gate can change is a face found
on a photo where the net sees no person: a model photo lost, or a false face on a product shot removed. Its gain is
time: the face stage is most of the cascade's CPU time and most photos are product shots.

``t`` is fitted on a training part as the smallest value of the grid below with the fewest errors, by the
objective model recall - 15 x products called model or worn (15: the ratio of the two error budgets, as
bench/tune_vision.py); see ``fit`` for why the smallest. Outer schemes: 5 photo folds stratified by kind (copies
together) and leave one MANIFEST ``source_repo`` out, ``t`` refitted on each outer training part
(bench/nested_cv.py; with one candidate rule the inner CV, which ranks rules by that objective plus 0.001 x the
share gated, has nothing to choose). Every photo weighs 1 and its copies share it. The category of a gated photo
with a face is taken as product: the person stage cannot find a person under the gate (``t`` is below the person
threshold), and the hand stage's rare call is left out of this estimate; bench/person_gate_speed.py runs the real
cascade on every copy and compares.

Writes bench/results/person_gate.json and bench/results/person_gate.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import nested_cv as cv  # noqa: E402
from person_gate_scores import load_scores  # noqa: E402

GATE_NET = "yolov3-tiny"
GRID = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
SPEED_WEIGHT = 0.001
RESULTS = ROOT / "bench" / "results"


@dataclass
class Table(cv.Rows):
    gate: np.ndarray
    """The primary net's best person score of each row."""
    second: np.ndarray
    """The second net's best person score (informative: the gate does not read it)."""
    cpu_ms: dict[str, np.ndarray]
    photo_id: list[str]


@dataclass(frozen=True)
class Gate:
    name: str


@dataclass(frozen=True)
class FittedGate:
    candidate: Gate
    thresholds: tuple[float, ...]


def build_table(records: list[dict]) -> Table:
    rows: defaultdict = defaultdict(list)
    for value in cv.copy_rows(records, rows):
        rows["gate"].append(value["gate"][GATE_NET]["best"])
        rows["second"].append(max((v["best"] for n, v in value["gate"].items() if n != GATE_NET), default=0.0))
        for stage in ("mtcnn", "yolo", "hands"):
            rows[f"cpu_{stage}"].append(value["cpu_ms"][stage])
        rows["cpu_gate_net"].append(value["gate"][GATE_NET]["cpu_ms"])
    return Table(
        **cv.rows_columns(records, rows),
        gate=np.array(rows["gate"]),
        second=np.array(rows["second"]),
        cpu_ms={k.removeprefix("cpu_"): np.array(v) for k, v in rows.items() if k.startswith("cpu_")},
        photo_id=[r["id"] for r in records],
    )


def gated_categories(table: Table, rows: np.ndarray, gated: np.ndarray) -> np.ndarray:
    """The category of each of ``rows`` with the gate closed where ``gated``: a face found there is lost."""
    category = table.category[rows].copy()
    category[gated & (category == 1)] = 3
    return category


def _weighted_share(table: Table, rows: np.ndarray, flags: np.ndarray, mask: np.ndarray) -> float:
    w = table.weight[rows]
    total = w[mask].sum()
    return float((w * flags)[mask].sum() / total) if total > 0 else 0.0


def errors_objective(table: Table, rows: np.ndarray, gated: np.ndarray) -> float:
    """Model recall - 15 x products called worn or model, over ``rows`` with the gate closed where ``gated``."""
    category = gated_categories(table, rows, gated)
    kind = table.kind[rows]
    model = _weighted_share(table, rows, category == 1, kind == "model")
    false = _weighted_share(table, rows, category != 3, np.isin(kind, cv.PRODUCT_KINDS))
    return model - cv.FP_WEIGHT * false


def objective(table: Table, rows: np.ndarray, gated: np.ndarray) -> float:
    """The errors' objective plus 0.001 x the share gated (what the inner CV ranks rules by)."""
    speed = _weighted_share(table, rows, gated, np.ones(len(rows), bool))
    return errors_objective(table, rows, gated) + SPEED_WEIGHT * speed


def fit(candidate: Gate, table: Table, rows: np.ndarray) -> FittedGate:
    """The smallest threshold whose errors (the objective without its speed term) are the fewest on ``rows``.

    Not the largest: every threshold under the training part's lowest model score loses nothing there, and the
    largest of them sits just under it; out of sample that edge loses model photos (a grid reaching past the
    lowest model score showed it: the outer CV lost a model copy)."""
    scores = table.gate[rows]
    values = [errors_objective(table, rows, scores < t) for t in GRID]
    best = max(values)
    return FittedGate(candidate, (min(t for t, v in zip(GRID, values, strict=True) if v >= best - 1e-12),))


def fires(fitted: FittedGate, table: Table, rows: np.ndarray) -> np.ndarray:
    return table.gate[rows] < fitted.thresholds[0]


def figures(table: Table, gated: np.ndarray) -> dict:
    every = np.arange(len(table.photo))
    category = gated_categories(table, every, gated)
    label = np.select([table.kind == "model", table.worn], [1, 2], 3)
    called = {
        "right": category == label,
        "called_model": category == 1,
        "called_worn_or_model": category != 3,
        "gated": gated,
    }
    products = table.products
    models = table.kind == "model"
    return {
        "per_kind": cv.per_kind(table, called),
        "model_recall": cv.share(table, category == 1, models),
        "worn_recall": cv.share(table, category == 2, table.worn),
        "products_called_worn_or_model": cv.share(table, category != 3, products),
        "accuracy": cv.share(table, category == label, np.ones(len(every), bool)),
        "gated": cv.share(table, gated, np.ones(len(every), bool)),
        "gated_products": cv.share(table, gated, products),
        "model_copies_lost": int((gated & (table.category == 1) & models).sum()),
        "false_faces_removed": int((gated & (table.category == 1) & ~models).sum()),
    }


RULES = cv.Rules("gate", fit, fires, objective, figures)


def cost_estimate(table: Table, threshold: float) -> dict:
    """CPU ms per copy from the cached stage timings, shipped against gated at ``threshold``: an estimate for
    choosing, not the benchmark (the gated photo still pays for the person stage; a photo with a face now also
    pays for the gate's net, which the shipped cascade skipped)."""
    ms = table.cpu_ms
    shipped = ms["mtcnn"] + ms["yolo"] + ms["hands"]
    face_found = table.category == 1
    gated = table.gate < threshold
    with_gate = np.where(gated, 0.0, ms["mtcnn"]) + np.where(face_found, ms["gate_net"], ms["yolo"]) + ms["hands"]
    return {
        "threshold": threshold,
        "shipped_median_ms": round(float(np.median(shipped)), 1),
        "gated_median_ms": round(float(np.median(with_gate)), 1),
        "shipped_mean_ms": round(float(shipped.mean()), 1),
        "gated_mean_ms": round(float(with_gate.mean()), 1),
        "copies_gated": round(float(gated.mean()), 4),
        "note": "stage CPU ms from the score run (decode not included); estimate only",
    }


def _row(label: str, f: dict) -> str:
    k = f["per_kind"]
    return (
        f"| {label} | {cv.pct(f['model_recall'])} | {cv.pct(k['hands']['right'])} | {cv.pct(k['legs']['right'])} | "
        f"{cv.pct(f['products_called_worn_or_model'])} | {cv.pct(f['accuracy'])} | {cv.pct(f['gated'])} | "
        f"{cv.pct(f['gated_products'])} | {f['model_copies_lost']} | {f['false_faces_removed']} |"
    )


def write(entry: dict, table: Table) -> None:
    (RESULTS / "person_gate.json").write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    gate_by_kind = {
        kind: [round(float(np.quantile(table.gate[table.kind == kind], q)), 4) for q in (0.0, 0.01, 0.05, 0.5)]
        for kind in cv.KINDS
    }
    lines = [
        "# A person gate in front of the face stage (nested CV)",
        "",
        "Written by `bench/person_gate.py` from `bench/person_gate_scores.py` (every photo of `../shared/data/images` "
        "+ `../shared/data/pool` and its four copies, 470 photos, each weighing 1). MTCNN runs only where "
        f"{GATE_NET} gives a person >= t; below it a face is not looked for. Threshold grid {list(GRID)}, objective "
        "model recall - 15 x products called worn/model; the smallest threshold with the fewest errors.",
        "",
        "| | model recall | hands | legs | products called worn/model | accuracy | photos gated | products gated |"
        " model copies lost | false faces removed |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _row("no gate (the cascade before it)", entry["no_gate"]),
        *cv.cv_rows(entry, _row),
    ]
    lines += cv.chosen_lines(entry)
    lines += [
        f"{GATE_NET}'s best person score by kind (min, 1%, 5%, median over copies): "
        + "; ".join(f"{k} {v}" for k, v in gate_by_kind.items()),
        "",
        "CPU estimate from the score run's stage timings (not the benchmark): " + json.dumps(entry["cost_estimate"]),
        "",
    ]
    (RESULTS / "person_gate.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    started = time.monotonic()
    table = build_table(load_scores())
    every = np.arange(len(table.photo))
    entry, fitted, _ = cv.cross_validate(RULES, table, [Gate(GATE_NET)], fixed=())
    entry["no_gate"] = figures(table, np.zeros(len(every), bool))
    entry["in_sample"] = {
        "rule": fitted.candidate.name,
        "thresholds": list(fitted.thresholds),
        "figures": figures(table, fires(fitted, table, every)),
    }
    entry["grid"] = {
        str(t): figures(table, table.gate < t) | {"objective": round(objective(table, every, table.gate < t), 5)}
        for t in GRID
    }
    entry["cost_estimate"] = cost_estimate(table, fitted.thresholds[0])
    entry["second_net_under_gate"] = {
        str(t): round(float(statistics.fmean(table.second[table.gate < t]) if (table.gate < t).any() else 0.0), 4)
        for t in GRID[1:]
    }
    entry["seconds"] = round(time.monotonic() - started, 1)
    write(entry, table)
    print((RESULTS / "person_gate.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
