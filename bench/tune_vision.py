"""Choose the person stage (nets, combine rule, passes, thresholds) and the review margin by nested cross-validation.

    .venv/bin/python bench/tune_vision.py      # after bench/vision_scores.py has filled .cache/vision_scores

Data: every photo of ../shared/data/images + ../shared/data/pool and its four copies (bench/vision_data.py), with
the raw scores bench/vision_scores.py cached. A photo whose best face score reaches the shipped
``face_min_confidence`` is category 1 whatever the person stage says; the rest go to the person stage.

Strategy: which nets (yolov3-tiny, yolov4-tiny, or both combined by ``max`` / ``mean`` / ``min``), which passes
(whole photo at 192 / 256 / 320 or none; padded canvas at 192 / 256 / 320 or none) and a threshold per pass on a
0.05-0.95 grid. A photo is worn when the whole-photo score reaches its threshold or (that pass having found nothing)
the padded score reaches its own.

Objective, one number per candidate: worn recall - 15 x product false-positive rate (each photo weighs 1, its five
copies 1/5 each). 15 = (1 - 0.85) / (1 - 0.99): the acceptance targets allow 15% of worn photos missed and 1% of
products called worn, so each error costs the share of its budget it uses.

Nested CV, two outer schemes, each reported:
- ``photos``: 5 folds of photos (stratified by kind; a photo's copies always leave together);
- ``sources``: leave one MANIFEST ``source_repo`` out (a strategy that works only within one source's style fails).
In each outer training part: an inner 5-fold CV (by photo) picks the strategy; its thresholds are then refitted on
the whole training part; the review margin is the smallest that puts half of the training part's errors in review.
The outer test part is judged with those values only. The values shipped (config.py defaults) are the same choice
made on all photos; their in-sample figures are printed beside the cross-validated ones, never instead of them.

Writes bench/results/vision_tuning.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, KINDS, load_photos  # noqa: E402
from vision_scores import FULL_SIZES, NETS, PADDED_SIZES, load_scores  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "vision_tuning.json"
GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
FP_WEIGHT = (1 - 0.85) / (1 - 0.99)
MARGINS = np.round(np.arange(0.0, 0.301, 0.01), 3)
REVIEW_CATCH = 0.5
INNER_FOLDS = 5
OUTER_FOLDS = 5
SEED = 14


@dataclass(frozen=True)
class Strategy:
    nets: tuple[str, ...]
    combine: str
    full: int  # 0 = no whole-photo pass
    padded: int  # 0 = no padded pass

    @property
    def name(self) -> str:
        nets = "+".join(self.nets) + (f" ({self.combine})" if len(self.nets) > 1 else "")
        passes = " + ".join(
            p for p in (f"full {self.full}" if self.full else "", f"padded {self.padded}" if self.padded else "") if p
        )
        return f"{nets}: {passes}"

    def config(self, full_t: float, padded_t: float, margin: float) -> dict:
        second = [n for n in self.nets if n != "yolov3-tiny"]
        return {
            "yolo_model": NETS["yolov3-tiny"] if "yolov3-tiny" in self.nets else NETS[self.nets[0]],
            "second_yolo_model": NETS[second[0]] if second and "yolov3-tiny" in self.nets else "",
            "person_combine": self.combine,
            "yolo_input_size": self.full,
            "person_min_confidence": float(full_t),
            "padded_pass": bool(self.padded),
            "padded_input_size": self.padded or 320,
            "person_padded_min_confidence": float(padded_t),
            "review_margin": float(margin),
        }


def strategies() -> list[Strategy]:
    net_sets = [(("yolov3-tiny",), "max"), (("yolov4-tiny",), "max")]
    net_sets += [(("yolov3-tiny", "yolov4-tiny"), rule) for rule in ("max", "mean", "min")]
    out = []
    for (nets, rule), full, padded in itertools.product(net_sets, (0, *FULL_SIZES), (0, *PADDED_SIZES)):
        if full or padded:
            out.append(Strategy(nets, rule, full, padded))
    return out


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Table:
    photos: list
    photo_of_row: np.ndarray  # row -> photo index
    copy_of_row: np.ndarray
    label: np.ndarray  # per photo
    kind: np.ndarray  # per photo
    source: np.ndarray  # per photo
    face: np.ndarray  # per row
    scores: dict[tuple[str, str], np.ndarray]  # (net, pass name) -> per-row score


def load_table(face_min_confidence: float) -> Table:
    photos = load_photos()
    cached = load_scores(photos)
    missing = [p.id for p in photos if p.id not in cached]
    if missing:
        print(f"warning: {len(missing)} photos not scored yet (run bench/vision_scores.py); left out", file=sys.stderr)
    photos = [p for p in photos if p.id in cached]
    rows_photo, rows_copy, face = [], [], []
    scores: dict[tuple[str, str], list[float]] = {}
    for index, photo in enumerate(photos):
        for c, copy in enumerate(COPIES):
            entry = cached[photo.id][copy]
            rows_photo.append(index)
            rows_copy.append(c)
            face.append(entry["face"])
            for net, passes in entry["persons"].items():
                for pass_name, best in passes.items():
                    scores.setdefault((net, pass_name), []).append(best["score"])
    return Table(
        photos,
        np.asarray(rows_photo),
        np.asarray(rows_copy),
        np.asarray([p.label for p in photos]),
        np.asarray([p.kind for p in photos]),
        np.asarray([p.source for p in photos]),
        np.asarray(face) >= face_min_confidence,
        {k: np.asarray(v, dtype=np.float32) for k, v in scores.items()},
    )


def combined_scores(table: Table, strategy: Strategy) -> tuple[np.ndarray | None, np.ndarray | None]:
    def one(pass_name: str) -> np.ndarray:
        stack = np.stack([table.scores[(net, pass_name)] for net in strategy.nets])
        return {"max": stack.max(0), "mean": stack.mean(0), "min": stack.min(0)}[strategy.combine]

    return (
        one(f"full{strategy.full}") if strategy.full else None,
        one(f"padded{strategy.padded}") if strategy.padded else None,
    )


def decisions(full: np.ndarray | None, padded: np.ndarray | None) -> np.ndarray:
    """rows x (full threshold x padded threshold): True = worn. A missing pass never fires."""
    n = len(full if full is not None else padded)
    g = len(GRID)
    fire_full = full[:, None] >= GRID[None, :] if full is not None else np.zeros((n, g), bool)
    fire_padded = padded[:, None] >= GRID[None, :] if padded is not None else np.zeros((n, g), bool)
    return (fire_full[:, :, None] | fire_padded[:, None, :]).reshape(n, g * g)


def per_photo(table: Table, rows_matrix: np.ndarray) -> np.ndarray:
    """Mean over each photo's copies (photos x grid)."""
    out = np.zeros((len(table.photos), rows_matrix.shape[1]), np.float32)
    np.add.at(out, table.photo_of_row, rows_matrix.astype(np.float32))
    return out / len(COPIES)


@dataclass
class Candidate:
    strategy: Strategy
    worn_hits: np.ndarray  # photos x grid: share of copies called worn (rows with a face count 0)
    face_share: np.ndarray  # photos: share of copies with a face


def build_candidates(table: Table) -> list[Candidate]:
    no_face = ~table.face
    face_share = per_photo(table, table.face[:, None])[:, 0]
    out = []
    for strategy in strategies():
        full, padded = combined_scores(table, strategy)
        worn = decisions(full, padded) & no_face[:, None]
        out.append(Candidate(strategy, per_photo(table, worn), face_share))
    return out


# ------------------------------------------------------------------------------------------------ selection
def objective(candidate: Candidate, table: Table, mask: np.ndarray) -> np.ndarray:
    """worn recall - FP_WEIGHT x product FP rate over the photos in ``mask``, for every grid point."""
    worn = mask & (table.label == 2)
    product = mask & (table.label == 3)
    recall = candidate.worn_hits[worn].sum(0) / max(1, worn.sum())
    fp = candidate.worn_hits[product].sum(0) / max(1, product.sum())
    return recall - FP_WEIGHT * fp


def best_grid_point(candidate: Candidate, table: Table, mask: np.ndarray) -> int:
    """The best thresholds on ``mask``; among ties the one farthest from the grid's edges of the tie (its middle)."""
    value = objective(candidate, table, mask)
    # An unused pass's threshold is irrelevant: keep it at the grid's middle so ties do not wander.
    g = len(GRID)
    value = value.reshape(g, g)
    if not candidate.strategy.full:
        value = np.where(np.arange(g)[:, None] == g // 2, value, -np.inf)
    if not candidate.strategy.padded:
        value = np.where(np.arange(g)[None, :] == g // 2, value, -np.inf)
    flat = value.reshape(-1)
    tied = np.flatnonzero(flat >= flat.max() - 1e-9)
    return int(tied[len(tied) // 2])


def fold_ids(table: Table, folds: int, subset: np.ndarray, seed: int) -> np.ndarray:
    """Stratified by kind: each kind's photos are shuffled and dealt round-robin. -1 outside ``subset``."""
    rng = np.random.default_rng(seed)
    ids = np.full(len(table.photos), -1)
    for kind in KINDS:
        members = np.flatnonzero(subset & (table.kind == kind))
        rng.shuffle(members)
        ids[members] = np.arange(len(members)) % folds
    return ids


def choose(candidates: list[Candidate], table: Table, train: np.ndarray, seed: int) -> tuple[Candidate, int, dict]:
    """Inner CV over ``train`` picks the strategy; its thresholds are refitted on all of ``train``."""
    inner = fold_ids(table, INNER_FOLDS, train, seed)
    inner_scores = []
    for candidate in candidates:
        total = 0.0
        for k in range(INNER_FOLDS):
            fit, held = train & (inner != k), train & (inner == k)
            point = best_grid_point(candidate, table, fit)
            total += objective(candidate, table, held)[point] * held.sum()
        inner_scores.append(total / train.sum())
    best = int(np.argmax(inner_scores))
    ranking = sorted(range(len(candidates)), key=lambda i: -inner_scores[i])[:5]
    top = {candidates[i].strategy.name: round(float(inner_scores[i]), 4) for i in ranking}
    return candidates[best], best_grid_point(candidates[best], table, train), top


def thresholds_of(point: int) -> tuple[float, float]:
    g = len(GRID)
    return float(GRID[point // g]), float(GRID[point % g])


# ------------------------------------------------------------------------------------------------ judging
def row_outcomes(table: Table, strategy: Strategy, full_t: float, padded_t: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: predicted category, and the distance of the deciding score(s) to their thresholds."""
    full, padded = combined_scores(table, strategy)
    n = len(table.face)
    fire_full = full >= full_t if full is not None else np.zeros(n, bool)
    fire_padded = padded >= padded_t if padded is not None else np.zeros(n, bool)
    worn = (fire_full | fire_padded) & ~table.face
    predicted = np.where(table.face, 1, np.where(worn, 2, 3))
    gap_full = np.abs(full - full_t) if full is not None else np.full(n, np.inf)
    gap_padded = np.abs(padded - padded_t) if padded is not None else np.full(n, np.inf)
    # The padded pass runs only when the whole-photo pass found nobody.
    gap = np.where(fire_full, gap_full, np.minimum(gap_full, gap_padded))
    gap = np.where(table.face, np.inf, gap)  # the person stage did not run
    return predicted, gap


def calibrate_margin(table: Table, predicted: np.ndarray, gap: np.ndarray, rows: np.ndarray) -> float:
    truth = table.label[table.photo_of_row]
    wrong = rows & (predicted != truth) & np.isfinite(gap)
    if not wrong.any():
        return 0.0
    for margin in MARGINS:
        if (gap[wrong] < margin).mean() >= REVIEW_CATCH:
            return float(margin)
    return float(MARGINS[-1])


def judge(table: Table, predicted: np.ndarray, gap: np.ndarray, margin: float, rows: np.ndarray) -> dict:
    """Per kind: correct / total (copies counted as photos' fractions, rounded), plus review figures."""
    truth = table.label[table.photo_of_row]
    kind = table.kind[table.photo_of_row]
    correct = predicted == truth
    out: dict = {"per_kind": {}}
    for k in KINDS:
        sel = rows & (kind == k)
        n_photos = sel.sum() / len(COPIES)
        out["per_kind"][k] = {
            "correct": round(float(correct[sel].sum() / len(COPIES)), 1),
            "photos": round(float(n_photos)),
            "recall": round(float(correct[sel].mean()), 4) if sel.any() else None,
        }
    worn_rows = rows & (truth == 2)
    product_rows = rows & (truth == 3)
    review = rows & (gap < margin)
    out["worn_recall"] = round(float(correct[worn_rows].mean()), 4)
    out["product_called_worn_or_model"] = round(float((~correct[product_rows]).mean()), 4)
    out["accuracy"] = round(float(correct[rows].mean()), 4)
    out["review_share"] = round(float(review.sum() / rows.sum()), 4)
    outside = rows & ~review
    out["accuracy_outside_review"] = round(float(correct[outside].mean()), 4) if outside.any() else None
    out["accuracy_in_review"] = round(float(correct[review].mean()), 4) if review.any() else None
    return out


def confusion(table: Table, predicted: np.ndarray, rows: np.ndarray) -> list[list[float]]:
    truth = table.label[table.photo_of_row]
    return [
        [round(float(((truth == t) & (predicted == p) & rows).sum() / len(COPIES)), 1) for p in (1, 2, 3)]
        for t in (1, 2, 3)
    ]


def outer_cv(candidates: list[Candidate], table: Table, scheme: str) -> dict:
    n_photos = len(table.photos)
    everything = np.ones(n_photos, bool)
    if scheme == "photos":
        outer = fold_ids(table, OUTER_FOLDS, everything, SEED)
        groups = [outer == k for k in range(OUTER_FOLDS)]
    else:
        groups = [table.source == s for s in sorted(set(table.source))]
    predicted = np.zeros(len(table.face), int)
    gap = np.full(len(table.face), np.inf)
    margins = np.zeros(len(table.face))
    chosen = Counter()
    for index, test in enumerate(groups):
        train = ~test
        if not ((table.label[train] == 2).any() and (table.label[train] == 3).any()):
            continue
        candidate, point, _ = choose(candidates, table, train, SEED + index)
        full_t, padded_t = thresholds_of(point)
        pred, g = row_outcomes(table, candidate.strategy, full_t, padded_t)
        train_rows, test_rows = train[table.photo_of_row], test[table.photo_of_row]
        margin = calibrate_margin(table, pred, g, train_rows)
        predicted[test_rows], gap[test_rows], margins[test_rows] = pred[test_rows], g[test_rows], margin
        chosen[f"{candidate.strategy.name} @ {full_t:g}/{padded_t:g}, margin {margin:g}"] += int(test.sum())
    rows = np.ones(len(table.face), bool)
    review = gap < margins
    result = judge(table, predicted, gap, 0.0, rows)
    truth = table.label[table.photo_of_row]
    correct = predicted == truth
    result["review_share"] = round(float(review.mean()), 4)
    result["accuracy_outside_review"] = round(float(correct[~review].mean()), 4)
    result["accuracy_in_review"] = round(float(correct[review].mean()), 4) if review.any() else None
    result["confusion"] = confusion(table, predicted, rows)
    result["chosen_per_fold_photos"] = dict(chosen.most_common())
    result["folds"] = len(groups)
    return result


def strategy_table(candidates: list[Candidate], table: Table) -> list[dict]:
    """Every strategy with its own in-sample-best thresholds, and its cross-validated figure (photo folds, thresholds
    refitted per fold): what each one tried is worth."""
    everything = np.ones(len(table.photos), bool)
    outer = fold_ids(table, OUTER_FOLDS, everything, SEED)
    rows_all = np.ones(len(table.face), bool)
    out = []
    for candidate in candidates:
        point = best_grid_point(candidate, table, everything)
        full_t, padded_t = thresholds_of(point)
        pred_in, _ = row_outcomes(table, candidate.strategy, full_t, padded_t)
        predicted = np.zeros(len(table.face), int)
        for k in range(OUTER_FOLDS):
            test = outer == k
            p_k = best_grid_point(candidate, table, ~test)
            pred, _ = row_outcomes(table, candidate.strategy, *thresholds_of(p_k))
            predicted[test[table.photo_of_row]] = pred[test[table.photo_of_row]]
        cv, ins = (
            judge(table, predicted, np.full(len(table.face), np.inf), 0.0, rows_all),
            judge(table, pred_in, np.full(len(table.face), np.inf), 0.0, rows_all),
        )
        out.append(
            {
                "strategy": candidate.strategy.name,
                "thresholds_in_sample": [full_t, padded_t],
                "cv_worn_recall": cv["worn_recall"],
                "cv_product_fp": cv["product_called_worn_or_model"],
                "cv_accuracy": cv["accuracy"],
                "in_sample_worn_recall": ins["worn_recall"],
                "in_sample_product_fp": ins["product_called_worn_or_model"],
                "cv_objective": round(cv["worn_recall"] - FP_WEIGHT * cv["product_called_worn_or_model"], 4),
            }
        )
    out.sort(key=lambda r: -r["cv_objective"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    shipped = VisionConfig.from_env({})
    table = load_table(shipped.face_min_confidence)
    candidates = build_candidates(table)
    everything = np.ones(len(table.photos), bool)

    final, point, inner_top = choose(candidates, table, everything, SEED)
    full_t, padded_t = thresholds_of(point)
    pred, gap = row_outcomes(table, final.strategy, full_t, padded_t)
    rows = np.ones(len(table.face), bool)
    margin = calibrate_margin(table, pred, gap, rows)
    in_sample = judge(table, pred, gap, margin, rows)
    in_sample["confusion"] = confusion(table, pred, rows)

    report = {
        "photos": len(table.photos),
        "rows": len(table.face),
        "copies": list(COPIES),
        "photos_per_kind": dict(Counter(table.kind.tolist())),
        "sources": len(set(table.source.tolist())),
        "face_min_confidence": shipped.face_min_confidence,
        "objective": f"worn recall - {FP_WEIGHT:g} x product FP rate",
        "review_rule": f"smallest margin putting {REVIEW_CATCH:.0%} of the training errors in review",
        "chosen": {"strategy": final.strategy.name, **final.strategy.config(full_t, padded_t, margin)},
        "inner_cv_top5": inner_top,
        "cv": {"photos": outer_cv(candidates, table, "photos"), "sources": outer_cv(candidates, table, "sources")},
        "in_sample": in_sample,
        "strategies": strategy_table(candidates, table),
        "seconds": None,
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = [f"Chosen on all {report['photos']} photos x {len(report['copies'])} copies: {report['chosen']}", ""]
    lines.append("| figure | CV, photo folds | CV, sources left out | in-sample |")
    lines.append("|---|---|---|---|")
    cv_p, cv_s, ins = report["cv"]["photos"], report["cv"]["sources"], report["in_sample"]
    for kind in KINDS:
        cells = []
        for r in (cv_p, cv_s, ins):
            k = r["per_kind"][kind]
            cells.append(f"{k['correct']:g}/{k['photos']} ({k['recall']:.0%})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for key in ("worn_recall", "product_called_worn_or_model", "accuracy", "review_share", "accuracy_outside_review"):
        lines.append(f"| {key} | {cv_p[key]} | {cv_s[key]} | {ins[key]} |")
    lines.append("")
    lines.append("| strategy | CV worn recall | CV product FP | in-sample worn | in-sample FP |")
    lines.append("|---|---|---|---|---|")
    for r in report["strategies"][:12]:
        lines.append(
            f"| {r['strategy']} | {r['cv_worn_recall']} | {r['cv_product_fp']} | {r['in_sample_worn_recall']} | "
            f"{r['in_sample_product_fp']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
