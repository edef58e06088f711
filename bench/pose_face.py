"""A face seen by the pose net: where the cascade found a person but no face, does MoveNet see a head facing the
camera on a person box? Chosen by nested cross-validation.

    .venv/bin/python bench/pose_face.py      # after bench/pose_face_scores.py

Reads the scores of bench/pose_face_scores.py (every tuning photo and its four copies; a photo weighs 1 and its
copies share it). A rule is one head score of a person box and a threshold; it turns a worn call (person, no face)
into a model call when some box of the photo reaches the threshold. Head scores, each 0 unless every keypoint
it reads lies inside the photo (a head MoveNet places in the grey beyond a legs close-up's top edge is not a head
in the photo):

- ``face``: the mean of nose, left eye and right eye;
- ``face_min``: the smallest of the three;
- ``head``: the mean of nose, eyes and ears;

each also less an away penalty (0, 0.05, 0.1, 0.15, 0.2 or 1, i.e. never) where MoveNet places the eyes as on a
person turned away from the camera (imagelift.vision.body.facing_away): people seen from behind are worn photos.

Thresholds are fitted on a 0.01 grid from 0.20 to 0.80 for the most model recall + worn recall (each class's
photos weighing the same in total) on the training part; ties are broken towards the middle of the best run of
thresholds, not its edge. The rule (score and penalty) is chosen by an inner CV of the same scheme. Outer CV: 5 photo folds
(stratified by kind, copies together) and each MANIFEST ``source_repo`` left out. The in-sample row is the same
procedure on all photos judged on them. Writes bench/results/pose_face.json and .md.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from nested_cv import SCHEME_LABELS, SCHEMES, SEED, Rows, copy_rows, groups_of, pct, rows_columns, write_results  # noqa: E402
from pose_face_scores import load_scores  # noqa: E402

from imagelift.vision.body import HEAD_SCORES, head_score  # noqa: E402

AWAY_PENALTIES = (0.0, 0.05, 0.1, 0.15, 0.2, 1.0)

GRID = np.round(np.arange(0.20, 0.801, 0.01), 2)
REVIEW_MARGINS = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)
REVIEW_ERROR_SHARE = 0.5
WORN_BUDGET = 0.02
FP_WEIGHT = 15.0
MODES = {
    "budget": f"the most model recall with at most {100 * WORN_BUDGET:.0f}% of the part's worn photos called model "
    f"(inner CV: model recall - {FP_WEIGHT:.0f} x the worn share called model beyond that)",
    "balanced": "the most model recall + worn recall (each class weighing the same)",
}


@dataclass(frozen=True)
class Candidate:
    score: str
    away_penalty: float

    @property
    def key(self) -> str:
        return self.score if not self.away_penalty else f"{self.score}, away -{self.away_penalty}"


CANDIDATES = tuple(Candidate(score, penalty) for score in HEAD_SCORES for penalty in AWAY_PENALTIES)


@dataclass(frozen=True)
class Fitted:
    candidate: Candidate
    threshold: float


def table_of(records: list[dict]) -> tuple[Rows, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The rows, each head score's best over the copy's person boxes (0 where the cascade did not call it worn by
    a person), each row's label and whether it reaches the stage (a person found, no face)."""
    rows: defaultdict = defaultdict(list)
    scores: dict[str, list[float]] = {c.key: [] for c in CANDIDATES}
    labels, reached = [], []
    for value in copy_rows(records, rows):
        boxes = value.get("boxes", [])
        reached.append(bool(boxes))
        for c in CANDIDATES:
            best = max((head_score(b["keypoints"], b["crop"], c.score, c.away_penalty) for b in boxes), default=0.0)
            scores[c.key].append(best)
    for record in records:
        labels += [record["label"]] * sum("error" not in v for v in record["copies"].values())
    table = Rows(**rows_columns(records, rows))
    return table, {k: np.array(v) for k, v in scores.items()}, np.array(labels), np.array(reached)


def calls(table: Rows, scores: dict[str, np.ndarray], fitted: Fitted | None) -> np.ndarray:
    """Each row's category once the rule (None: no rule) has turned worn calls by a person into model calls."""
    category = table.category.copy()
    if fitted is not None:
        category[(scores[fitted.candidate.key] >= fitted.threshold) & (table.category == 2)] = 1
    return category


def recall(table: Rows, labels: np.ndarray, category: np.ndarray, rows: np.ndarray, label: int) -> float:
    mask = labels[rows] == label
    w = table.weight[rows][mask]
    return float((w * (category[rows][mask] == label)).sum() / w.sum())


def worn_called_model(table: Rows, labels: np.ndarray, category: np.ndarray, rows: np.ndarray) -> float:
    mask = labels[rows] == 2
    w = table.weight[rows][mask]
    return float((w * (category[rows][mask] == 1)).sum() / w.sum())


def objective(table: Rows, labels: np.ndarray, category: np.ndarray, rows: np.ndarray, mode: str) -> float:
    model = recall(table, labels, category, rows, 1)
    if mode == "balanced":
        return model + recall(table, labels, category, rows, 2)
    return model - FP_WEIGHT * max(0.0, worn_called_model(table, labels, category, rows) - WORN_BUDGET)


def fit(table: Rows, scores: dict, labels: np.ndarray, candidate: Candidate, rows: np.ndarray, mode: str) -> Fitted:
    values = []
    for t in GRID:
        category = calls(table, scores, Fitted(candidate, t))
        if mode == "budget":
            within = worn_called_model(table, labels, category, rows) <= WORN_BUDGET + 1e-12
            values.append(recall(table, labels, category, rows, 1) if within else -1.0)
        else:
            values.append(objective(table, labels, category, rows, mode))
    best = max(values)
    # the middle of the longest run of thresholds reaching the best objective
    runs, start = [], None
    for i, v in enumerate([*values, -np.inf]):
        if v >= best - 1e-12 and start is None:
            start = i
        elif v < best - 1e-12 and start is not None:
            runs.append((start, i - 1))
            start = None
    lo, hi = max(runs, key=lambda r: r[1] - r[0])
    return Fitted(candidate, float(GRID[(lo + hi) // 2]))


def left_out_calls(
    table: Rows, scores: dict, rows: np.ndarray, scheme: str, choose, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Each part of ``rows`` called with the rule ``choose(group, training rows)`` returns (other rows as the
    cascade called them), and each row's distance from its rule's threshold (inf outside ``rows``)."""
    groups = groups_of(table, rows, scheme, seed=seed)
    category = table.category.copy()
    distance = np.full(len(category), np.inf)
    for group in np.unique(groups):
        test, train = rows[groups == group], rows[groups != group]
        fitted = choose(group, train)
        category[test] = calls(table, scores, fitted)[test]
        distance[test] = np.abs(scores[fitted.candidate.key][test] - fitted.threshold)
    return category, distance


def nested_choice(
    table: Rows, scores: dict, labels: np.ndarray, rows: np.ndarray, scheme: str, mode: str
) -> tuple[Fitted, list]:
    ranking = []
    for c in CANDIDATES:
        inner, _ = left_out_calls(
            table, scores, rows, scheme, lambda _, train, c=c: fit(table, scores, labels, c, train, mode), SEED + 1
        )
        value = objective(table, labels, inner, rows, mode)
        ranking.append({"score": c.score, "away_penalty": c.away_penalty, "inner_cv_objective": round(value, 4)})
    ranking.sort(key=lambda r: -r["inner_cv_objective"])  # stable: the first candidate wins a tie
    best = Candidate(ranking[0]["score"], ranking[0]["away_penalty"])
    return fit(table, scores, labels, best, rows, mode), ranking


def figures(table: Rows, labels: np.ndarray, category: np.ndarray) -> dict:
    every = np.arange(len(labels))
    out = {
        "model": recall(table, labels, category, every, 1),
        "worn": recall(table, labels, category, every, 2),
        "product": recall(table, labels, category, every, 3),
    }
    for kind in ("hands", "legs"):
        mask = table.kind == kind
        w = table.weight[mask]
        out[kind] = float((w * (category[mask] == 2)).sum() / w.sum())
    products = labels == 3
    w = table.weight[products]
    out["products_called_model"] = float((w * (category[products] == 1)).sum() / w.sum())
    out["products_called_worn_or_model"] = float((w * (category[products] != 3)).sum() / w.sum())
    worn = labels == 2
    out["worn_called_model"] = float((table.weight[worn] * (category[worn] == 1)).sum() / table.weight[worn].sum())
    return {k: round(v, 4) for k, v in out.items()}


def review_curve(
    table: Rows, labels: np.ndarray, reached: np.ndarray, category: np.ndarray, distance: np.ndarray
) -> list[dict]:
    """For each review margin, over the copies that reach the stage: the share put in review (head score within
    the margin of its fold's threshold), the share of their wrong calls in review, the accuracy outside it."""
    w = table.weight
    wrong = reached & (category != labels)
    out = []
    for margin in REVIEW_MARGINS:
        review = reached & (distance < margin)
        outside = reached & ~review
        out.append(
            {
                "margin": margin,
                "in_review": round(float(w[review].sum() / w[reached].sum()), 4),
                "errors_in_review": round(float(w[review & wrong].sum() / w[wrong].sum()), 4),
                "accuracy_outside": round(float(w[outside & ~wrong].sum() / w[outside].sum()), 4),
            }
        )
    return out


def review_margin(curve: list[dict]) -> float:
    """The smallest margin that puts at least REVIEW_ERROR_SHARE of the stage's wrong calls in review, else the
    widest."""
    return next((r["margin"] for r in curve if r["errors_in_review"] >= REVIEW_ERROR_SHARE), curve[-1]["margin"])


def run_mode(table: Rows, scores: dict, labels: np.ndarray, reached: np.ndarray, mode: str) -> dict:
    every = np.arange(len(labels))
    entry: dict = {"fit": MODES[mode], "cv": {}, "fixed": {}}
    for scheme in SCHEMES:
        chosen = []

        def choose(group, train, scheme=scheme, chosen=chosen):
            fitted, _ = nested_choice(table, scores, labels, train, scheme, mode)
            c = fitted.candidate
            chosen.append(
                {
                    "left_out": str(group),
                    "score": c.score,
                    "away_penalty": c.away_penalty,
                    "threshold": fitted.threshold,
                }
            )
            print(f"  {mode} {scheme} {group}: {c.key} >= {fitted.threshold}", flush=True)
            return fitted

        category, distance = left_out_calls(table, scores, every, scheme, choose)
        entry["cv"][scheme] = {
            "test": figures(table, labels, category),
            "review": review_curve(table, labels, reached, category, distance),
            "chosen": chosen,
            "scores_chosen": dict(Counter(Candidate(c["score"], c["away_penalty"]).key for c in chosen).most_common()),
            "thresholds": [c["threshold"] for c in chosen],
        }
    for c in CANDIDATES:
        entry["fixed"][c.key] = {}
        for scheme in SCHEMES:
            category, _ = left_out_calls(
                table, scores, every, scheme, lambda _, train, c=c: fit(table, scores, labels, c, train, mode)
            )
            entry["fixed"][c.key][scheme] = figures(table, labels, category)
    entry["review_margin"] = review_margin(entry["cv"]["photos"]["review"])
    fitted, ranking = nested_choice(table, scores, labels, every, "photos", mode)
    entry["in_sample"] = {
        "score": fitted.candidate.score,
        "away_penalty": fitted.candidate.away_penalty,
        "threshold": fitted.threshold,
        "figures": figures(table, labels, calls(table, scores, fitted)),
        "ranking": ranking,
    }
    return entry


def run() -> dict:
    records = load_scores()
    table, scores, labels, reached = table_of(records)
    return {
        "rows": len(labels),
        "photos": len(records),
        "grid": [float(GRID[0]), float(GRID[-1]), 0.01],
        "cascade": figures(table, labels, table.category),
        "modes": {mode: run_mode(table, scores, labels, reached, mode) for mode in MODES},
    }


def markdown(result: dict) -> str:
    columns = ("model", "worn", "hands", "legs", "worn_called_model", "products_called_model", "product")
    lines = [
        "# A face seen by the pose net (MoveNet head keypoints on person boxes without a face), nested CV",
        "",
        f"Written by `bench/pose_face.py` from `bench/pose_face_scores.py`: {result['photos']} photos, "
        f"{result['rows']} copies (a photo weighs 1). The rule turns a worn call by a person into a model call when "
        "a head score of one of the person boxes reaches its threshold (0 where a keypoint lies outside the photo); "
        "the score and its away penalty are chosen by inner CV of the same scheme.",
    ]

    def row(name: str, f: dict) -> str:
        return f"| {name} | " + " | ".join(pct(f[c]) for c in columns) + " |"

    for mode, entry in result["modes"].items():
        lines += ["", f"## Fit `{mode}`: {entry['fit']}", ""]
        lines += [
            "| | model | worn | hands | legs | worn called model | products called model | products right |",
            "|---|---|---|---|---|---|---|---|",
            row("cascade as shipped before (no pose vote)", result["cascade"]),
        ]
        for scheme in SCHEMES:
            lines.append(row(f"**CV, {SCHEME_LABELS[scheme]}**", entry["cv"][scheme]["test"]))
        lines.append(row("in-sample (not a CV figure)", entry["in_sample"]["figures"]))
        for score, schemes in entry["fixed"].items():
            for scheme in SCHEMES:
                lines.append(row(f"fixed `{score}`, CV {scheme}", schemes[scheme]))
        in_sample = entry["in_sample"]
        chosen = Candidate(in_sample["score"], in_sample["away_penalty"]).key
        lines += ["", f"Rule chosen on all photos: `{chosen}` >= {in_sample['threshold']}.", ""]
        for scheme in SCHEMES:
            cv = entry["cv"][scheme]
            thresholds = cv["thresholds"]
            lines.append(
                f"Chosen in the {scheme} scheme's training parts: "
                + "; ".join(f"`{s}` x{n}" for s, n in cv["scores_chosen"].items())
                + f"; thresholds {min(thresholds)} to {max(thresholds)} (median {float(np.median(thresholds)):.2f})."
            )
        lines += [
            "",
            f"Review (copies reaching the stage, head score within the margin of its fold's threshold); the margin "
            f"kept is the smallest putting at least {REVIEW_ERROR_SHARE:.0%} of the stage's wrong calls in review "
            f"over photo folds: **{entry['review_margin']}**.",
            "",
            "| margin | in review (photo folds / sources) | wrong calls in review | accuracy outside review |",
            "|---|---|---|---|",
        ]
        curves = [entry["cv"][scheme]["review"] for scheme in SCHEMES]
        for photos, sources in zip(*curves, strict=True):
            lines.append(
                f"| {photos['margin']} | {pct(photos['in_review'])} / {pct(sources['in_review'])} | "
                f"{pct(photos['errors_in_review'])} / {pct(sources['errors_in_review'])} | "
                f"{pct(photos['accuracy_outside'])} / {pct(sources['accuracy_outside'])} |"
            )
        lines += ["", "Inner-CV objective on all photos, photo folds:", "", "| score | objective |", "|---|---|"]
        lines += [
            f"| `{Candidate(r['score'], r['away_penalty']).key}` | {r['inner_cv_objective']:.4f} |"
            for r in in_sample["ranking"]
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    started = time.monotonic()
    write_results("pose_face", run(), markdown, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
