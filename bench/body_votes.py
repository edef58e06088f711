"""Worn recall for feet and legs close up from body votes (MoveNet keypoints, CenterNet persons), by nested CV.

    .venv/bin/python bench/body_votes.py [--body DIR]    # after bench/body_votes_scores.py

The vote runs only where the cascade with the hand stage on still says product (category 3) and turns the photo
worn when its rule fires. Features of such a row (bench/body_votes_scores.py):

- ``legs``: best keypoint score of knees and ankles; ``lower``: of hips, knees and ankles;
- ``count@t``: how many of the six lower-body keypoints score >= t (t = 0.1 .. 0.4), divided by 6;
- ``centernet``: CenterNet's best person score; ``yolo``: the YOLO nets' best person score in any pass (the
  person stage's near miss, free).

Candidate rules: one feature >= t; a keypoint feature >= t1 AND a person vote (``centernet`` or ``yolo``) >= t2;
``centernet`` >= t1 AND ``yolo`` >= t2. Thresholds on a 0.01 grid are fitted on a training part to maximise worn
recall with at most 1% of the part's products called worn or model in total (cascade + hand stage + the vote);
the candidate is chosen by an inner cross-validation of the training part (same scheme as the outer one, by the
objective worn recall - 15 x products called worn/model), refitted on the whole training part and judged on the
test part. Outer schemes: 5 photo folds stratified by kind (copies together) and leave one MANIFEST ``source_repo``
out. Every photo weighs 1 and its copies share it. Reported: pooled outer test figures (CV) per kind and, labelled
in-sample, the same procedure run on all photos and judged on them; the CPU ms of each net where it ran.

Writes bench/results/body_votes.json and bench/results/body_votes.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import nested_cv as cv  # noqa: E402
from body_votes_scores import load_scores  # noqa: E402

MIN_T = 5  # a threshold under 0.05 would fire on nearly every photo
HIPS, KNEES, ANKLES = (11, 12), (13, 14), (15, 16)
COUNT_TS = (0.1, 0.2, 0.3, 0.4)
KEYPOINT_FEATURES = ("legs", "lower", *(f"count@{t}" for t in COUNT_TS))
PERSON_FEATURES = ("centernet", "yolo")
# What the 1% product budget counts: products called worn or model (the task's rule), or called worn only (the rule
# bench/hands_fusion.py fitted the hand stage under).
# A third, informative only: the vote's own flips capped at 0.5% of products, whatever the cascade already calls.
BUDGETS = {"worn_or_model": ((1, 2), cv.TARGET_FP), "worn": ((2,), cv.TARGET_FP), "vote_flips": ((), 0.005)}


@dataclass
class Table(cv.Rows):
    feature: dict[str, np.ndarray]
    photo_id: list[str]


def build_table(records: list[dict]) -> tuple[Table, dict]:
    rows = defaultdict(list)
    cpu = defaultdict(list)
    for value in cv.copy_rows(records, rows):
        k = np.array(value.get("keypoints") or np.zeros((17, 3)))
        scores = k[:, 2]
        lower = scores[list(HIPS + KNEES + ANKLES)]
        rows["legs"].append(float(scores[list(KNEES + ANKLES)].max()))
        rows["lower"].append(float(lower.max()))
        for t in COUNT_TS:
            rows[f"count@{t}"].append(float((lower >= t).sum()) / 6)
        rows["centernet"].append(float(value.get("centernet") or 0.0))
        rows["yolo"].append(float(value.get("person_best") or 0.0))
        for net, ms in value.get("cpu_ms", {}).items():
            cpu[net].append(ms)
    table = Table(
        **cv.rows_columns(records, rows),
        feature={f: np.array(rows[f]) for f in (*KEYPOINT_FEATURES, *PERSON_FEATURES)},
        photo_id=[r["id"] for r in records],
    )
    timing = {
        net: {
            "runs": len(v),
            "cpu_median_ms": round(statistics.median(v), 1),
            "cpu_mean_ms": round(statistics.mean(v), 1),
        }
        for net, v in cpu.items()
    }
    return table, timing


@dataclass(frozen=True)
class Candidate:
    first: str
    second: str | None = None

    @property
    def name(self) -> str:
        return self.first if self.second is None else f"{self.first} AND {self.second}"

    @property
    def nets(self) -> tuple[str, ...]:
        """The body nets this rule needs (the YOLO vote is free)."""
        needs = []
        if self.first in KEYPOINT_FEATURES or self.second in KEYPOINT_FEATURES:
            needs.append("movenet")
        if "centernet" in (self.first, self.second):
            needs.append("centernet")
        return tuple(needs)


def candidates() -> list[Candidate]:
    pool = [Candidate(f) for f in (*KEYPOINT_FEATURES, "centernet")]
    pool += [Candidate(k, p) for k in KEYPOINT_FEATURES for p in PERSON_FEATURES]
    pool.append(Candidate("centernet", "yolo"))
    return pool


@dataclass
class Fitted:
    candidate: Candidate
    thresholds: tuple[float, ...]


def fit(candidate: Candidate, table: Table, rows: np.ndarray, budget: str) -> Fitted:
    """Thresholds maximising worn recall on ``rows`` within ``budget`` (:data:`BUDGETS`: the share of their products
    called worn or model, or worn, the cascade's and hand stage's own calls included; or the vote's own flips);
    ties: the fewest flips. No threshold pair within the budget: a rule that never fires."""
    worn_share, product_share = cv.share_values(table, rows)
    counted, cap = BUDGETS[budget]
    already = float((product_share * np.isin(table.category[rows], counted)).sum())
    keep = table.category[rows] == 3
    part = rows[keep]
    b1 = cv.bins(table.feature[candidate.first][part])
    b2 = None if candidate.second is None else cv.bins(table.feature[candidate.second][part])
    family = "hand" if b2 is None else "hand_and_person"
    worn = cv.region_sums(family, b1, b2, worn_share[keep])
    products = cv.region_sums(family, b1, b2, product_share[keep])
    flips = cv.region_sums(family, b1, b2, table.weight[part])
    score = np.where(already + products <= cap + 1e-12, worn, -1.0) - 1e-6 * flips
    score[:MIN_T] = -np.inf
    if b2 is not None:
        score[:, :MIN_T] = -np.inf
    if not np.isfinite(score).any() or score.max() < 0:
        return Fitted(candidate, (1.01,) if b2 is None else (1.01, 1.01))
    index = np.unravel_index(int(np.argmax(score)), score.shape)
    return Fitted(candidate, tuple(float(i) / 100 for i in index))


def fires(fitted: Fitted, table: Table, rows: np.ndarray) -> np.ndarray:
    c, t = fitted.candidate, fitted.thresholds
    fire = table.feature[c.first][rows] >= t[0] - 1e-9
    if c.second is not None:
        fire &= table.feature[c.second][rows] >= t[1] - 1e-9
    return fire & (table.category[rows] == 3)


def objective(table: Table, rows: np.ndarray, fired: np.ndarray, budget: str) -> float:
    w = table.weight[rows]
    worn, prod = table.worn[rows], table.products[rows]
    called = fired | np.isin(table.category[rows], BUDGETS[budget][0])
    recall = (w * (fired | (table.category[rows] == 2)))[worn].sum() / w[worn].sum()
    return float(recall - cv.FP_WEIGHT * (w * called)[prod].sum() / w[prod].sum())


def figures(table: Table, fired: np.ndarray) -> dict:
    """Per kind: share called worn (cascade + hand stage + vote) and by the vote alone; products called worn or
    model in total and flipped by the vote."""
    worn = (table.category == 2) | fired
    out = cv.per_kind(table, {"called_worn": worn, "called_worn_by_vote": fired})
    out["worn"] = {"called_worn": cv.share(table, worn, table.worn)}
    out["product_called_worn_or_model"] = cv.share(table, fired | (table.category != 3), table.products)
    out["product_called_worn"] = cv.share(table, worn, table.products)
    out["product_flipped_by_vote"] = cv.share(table, fired, table.products)
    out["objective"] = round(out["worn"]["called_worn"] - cv.FP_WEIGHT * out["product_called_worn_or_model"], 4)
    return out


def _row(label: str, f: dict) -> str:
    return (
        f"| {label} | {cv.pct(f['hands']['called_worn'])} | {cv.pct(f['legs']['called_worn'])} | "
        f"{cv.pct(f['worn']['called_worn'])} | {cv.pct(f['product_called_worn'])} | "
        f"{cv.pct(f['product_called_worn_or_model'])} | {cv.pct(f['product_flipped_by_vote'])} | "
        f"{cv.pct(f['legs']['called_worn_by_vote'])} | {cv.pct(f['hands']['called_worn_by_vote'])} |"
    )


BUDGET_TEXT = {
    "worn_or_model": "at most 1% of the training part's products called worn or model in total (cascade + hand "
    "stage + vote), the task's budget",
    "worn": "at most 1% of the training part's products called worn (cascade + hand stage + vote; products called "
    "model not counted), the budget bench/hands_fusion.py fitted the hand stage under",
    "vote_flips": "informative only, not the task's budget: the vote's own flips capped at 0.5% of the training "
    "part's products (what the vote would cost on top of whatever the cascade and hand stage already call)",
}


def markdown(result: dict) -> str:
    header = [
        "| | hands | legs (other worn) | all worn | products called worn | products called worn/model | products "
        "flipped by the vote | legs flipped by the vote | hands flipped by the vote |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines = [
        "# Feet and legs close up: body votes (MoveNet keypoints, CenterNet persons) after the hand stage (nested CV)",
        "",
        "Written by `bench/body_votes.py` from `bench/body_votes_scores.py` (every photo of `../shared/data/images` + "
        f"`../shared/data/pool` and its four copies, {result['photos']} photos, each weighing 1). The vote runs only "
        "where the cascade with the hand stage on (config defaults) still says product. "
        f"{result['candidates']} candidate rules; thresholds fitted per training part for the most worn recall "
        "within the budget; the rule chosen by an inner CV of the same scheme (objective worn recall - 15 x products "
        "counted by the budget). CV rows pool the outer test parts; the in-sample row is the same procedure run on "
        "all photos and judged on them. The cascade + hand stage row is itself in-sample for the hand stage, whose "
        "two thresholds bench/hands_fusion.py chose on these photos.",
        "",
    ]
    for budget, entry in result["budgets"].items():
        lines += [f"## Budget: {budget}", "", BUDGET_TEXT[budget] + ".", "", *header]
        lines.append(_row("cascade + hand stage (no vote)", result["without_vote"]))
        lines += cv.cv_rows(entry, _row)
        lines += cv.chosen_lines(entry, " (1.01: nothing fits the budget, the vote never fires)")
        lines += cv.ranking_lines(entry, "Top rules on all photos by inner-CV objective (photo folds):", "CV objective")
        lines += ["", f"Verdict ({budget}): {entry['verdict']}", ""]
    lines += [
        "## What each vote sees (in-sample, rows the vote runs on)",
        "",
        "Quantiles of each feature on the worn rows still called product and on the product rows:",
        "",
        "| feature | legs missed: median / 90% | hands missed: median / 90% | products: median / 90% / 99% |",
        "|---|---|---|---|",
    ]
    for name, q in result["quantiles"].items():
        lines.append(
            f"| `{name}` | {q['legs'][0]:.2f} / {q['legs'][1]:.2f} | {q['hands'][0]:.2f} / {q['hands'][1]:.2f} | "
            f"{q['products'][0]:.2f} / {q['products'][1]:.2f} / {q['products'][2]:.2f} |"
        )
    lines += [
        "",
        "In-sample curve of one vote alone (threshold = the lowest that flips at most the given share of products; "
        "not a CV figure):",
        "",
        "| vote | products flipped at most | threshold | worn gained | legs gained | hands gained |",
        "|---|---|---|---|---|---|",
    ]
    for point in result["curve"]:
        lines.append(
            f"| `{point['feature']}` | {cv.pct(point['flip_cap'])} | {point['threshold']} | {cv.pct(point['worn'])} | "
            f"{cv.pct(point['legs'])} | {cv.pct(point['hands'])} |"
        )
    flips = result["centernet_flips"]
    lines += [
        "",
        f"Photos `centernet >= {flips['threshold']}` alone turns worn (the in-sample 0.5% point; copies of 5):",
        "",
        "| photo | kind | copies |",
        "|---|---|---|",
        *(f"| `{p['photo']}` | {p['kind']} | {p['copies']} |" for p in flips["photos"]),
    ]
    lines += ["", "CPU ms per photo copy where the vote runs (process time, one thread, padded to a square):", ""]
    for net, t in result["timing"].items():
        lines.append(f"- {net}: median {t['cpu_median_ms']} ms, mean {t['cpu_mean_ms']} ms over {t['runs']} runs")
    lines += ["", f"Run: {result['seconds']} s; {result['load']}.", ""]
    return "\n".join(lines)


def verdict(base: dict, tests: list[dict], budget: str) -> tuple[bool, str]:
    key = {"worn_or_model": "product_called_worn_or_model", "worn": "product_called_worn"}.get(
        budget, "product_flipped_by_vote"
    )
    cap = BUDGETS[budget][1]
    helps = all(t["worn"]["called_worn"] > base["worn"]["called_worn"] and t[key] <= cap for t in tests)
    text = (
        "{} - all worn {} / {} (photo folds / sources out) against {} without the vote; legs {} / {} against {}; "
        "hands {} / {} against {}; products counted {} / {} against {}".format(
            "the vote helps within the budget in both schemes" if helps else "no rule helps within the budget",
            *(cv.pct(t["worn"]["called_worn"]) for t in tests),
            cv.pct(base["worn"]["called_worn"]),
            *(cv.pct(t["legs"]["called_worn"]) for t in tests),
            cv.pct(base["legs"]["called_worn"]),
            *(cv.pct(t["hands"]["called_worn"]) for t in tests),
            cv.pct(base["hands"]["called_worn"]),
            *(cv.pct(t[key]) for t in tests),
            cv.pct(base[key]),
        )
    )
    return helps, text


def rules_of(budget: str) -> cv.Rules:
    return cv.Rules(
        budget,
        partial(fit, budget=budget),
        fires,
        partial(objective, budget=budget),
        figures,
        most_common_first=False,
    )


def run_budget(table: Table, pool: list[Candidate], budget: str, base: dict) -> dict:
    fixed = (Candidate("centernet"), Candidate("legs"), Candidate("legs", "centernet"))
    entry, fitted, ranked = cv.cross_validate(rules_of(budget), table, pool, fixed)
    every = np.arange(len(table.photo))
    entry["in_sample"] = {
        "rule": fitted.candidate.name,
        "candidate": fitted.candidate.__dict__,
        "nets": fitted.candidate.nets,
        "thresholds": fitted.thresholds,
        "figures": figures(table, fires(fitted, table, every)),
    }
    entry["ranking_all_photos"] = [
        {"rule": r["candidate"].name, "inner_cv_objective": round(r["inner_cv_objective"], 4)} for r in ranked
    ]
    entry["helps"], entry["verdict"] = verdict(base, [entry["cv"][s]["test"] for s in cv.SCHEMES], budget)
    return entry


def quantiles(table: Table) -> dict:
    runs = table.category == 3
    out = {}
    for name, values in table.feature.items():
        out[name] = {
            "legs": [round(float(v), 3) for v in np.quantile(values[runs & (table.kind == "legs")], [0.5, 0.9])],
            "hands": [round(float(v), 3) for v in np.quantile(values[runs & (table.kind == "hands")], [0.5, 0.9])],
            "products": [round(float(v), 3) for v in np.quantile(values[runs & table.products], [0.5, 0.9, 0.99])],
        }
    return out


def curve(table: Table, caps: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.02)) -> list[dict]:
    w, runs = table.weight, table.category == 3
    share = {k: (w * (table.kind == k)) / (w * (table.kind == k)).sum() for k in ("legs", "hands")}
    worn = np.where(table.worn, w, 0.0) / w[table.worn].sum()
    product = np.where(table.products, w, 0.0) / w[table.products].sum()
    out = []
    for feature in ("centernet", "legs", "lower", "yolo"):
        values = table.feature[feature]
        for cap in caps:
            threshold = next(
                (t / 100 for t in range(MIN_T, 101) if (product * (runs & (values >= t / 100))).sum() <= cap), 1.01
            )
            fired = runs & (values >= threshold - 1e-9)
            out.append(
                {
                    "feature": feature,
                    "flip_cap": cap,
                    "threshold": threshold,
                    "worn": round(float((worn * fired).sum()), 4),
                    "legs": round(float((share["legs"] * fired).sum()), 4),
                    "hands": round(float((share["hands"] * fired).sum()), 4),
                }
            )
    return out


def flipped_photos(table: Table, feature: str, threshold: float) -> list[dict]:
    """The photos one vote alone turns worn at ``threshold``: id, kind and how many of its copies."""
    fired = (table.category == 3) & (table.feature[feature] >= threshold - 1e-9)
    counts = Counter(int(p) for p in table.photo[fired])
    return [
        {"photo": table.photo_id[p], "kind": table.photo_kind[p], "copies": n}
        for p, n in sorted(
            counts.items(), key=lambda item: (table.photo_kind[item[0]] not in cv.PRODUCT_KINDS, item[0])
        )
    ]


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body", type=Path, default=ROOT / "models", help="folder holding body/*.onnx")
    args = parser.parse_args()
    started = time.monotonic()
    records = load_scores(args.body)
    table, timing = build_table(records)
    pool = candidates()
    result: dict = {"photos": len(records), "rows": len(table.photo), "candidates": len(pool), "timing": timing}
    result["without_vote"] = figures(table, np.zeros(len(table.photo), bool))
    result["budgets"] = {b: run_budget(table, pool, b, result["without_vote"]) for b in BUDGETS}
    result["quantiles"] = quantiles(table)
    result["curve"] = curve(table)
    at = next(p["threshold"] for p in result["curve"] if p["feature"] == "centernet" and p["flip_cap"] == 0.005)
    result["centernet_flips"] = {"threshold": at, "photos": flipped_photos(table, "centernet", at)}
    cv.write_results("body_votes", result, markdown, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
