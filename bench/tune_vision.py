"""Choose the person stage (nets, combine rule, passes, thresholds) and the review margin by nested cross-validation.

    .venv/bin/python bench/tune_vision.py      # after bench/vision_scores.py has filled .cache/vision_scores

Data: every photo of ../shared/data/images + ../shared/data/pool and its four copies (bench/vision_data.py), with
the raw scores bench/vision_scores.py cached. A photo whose best face score reaches the shipped
``face_min_confidence`` is category 1 whatever the person stage says; the rest go to the person stage.

Strategy: which nets (yolov3-tiny, yolov4-tiny, or both combined by ``max`` / ``mean`` / ``min``), which passes
(whole photo at 192 / 256 / 320 or none; padded canvas at 192 / 256 / 320 or none) and a threshold per pass on a
0.05-0.95 grid. A photo is worn when the whole-photo score reaches its threshold or (that pass having found nothing)
the padded score reaches its own.

Design: only strategies that keep yolov3-tiny (DESIGN_NET) and that the cascade can run are chosen; every other
one (yolov4-tiny alone, zoomed crops, box agreement; vision_fusion's fused votes) is reported as a lever.

Speed: only strategies whose person stage costs at most YOLO_BUDGET on a photo where it finds nobody (every pass
and net runs) are chosen; COST holds ONNX Runtime CPU time per net and input size at 1 thread relative to
yolov3-tiny at 192 (measured here: 13.6 ms CPU on the loaded 2-core machine; yolov4-tiny 192: 16.0, 256: 28.9,
320: 43.0; yolov3-tiny 256: 22.6, 320: 33.4). The budget, 2.2 units (about 30 ms), is what is left of the 60 ms
target after MTCNN and decoding. Every strategy's figures are reported, within budget or not.

Objective, one number per candidate: worn recall - 15 x product false-positive rate (each photo weighs 1, its five
copies 1/5 each). 15 = (1 - 0.85) / (1 - 0.99): the acceptance targets allow 15% of worn photos missed and 1% of
products called worn, so each error costs the share of its budget it uses.

Nested CV, two outer schemes, each reported:
- ``photos``: 5 folds of photos (stratified by kind; a photo's copies always leave together);
- ``sources``: leave one MANIFEST ``source_repo`` out (a strategy that works only within one source's style fails).
In each outer training part: an inner 5-fold CV (by photo) picks the strategy; its thresholds are then refitted on
the whole training part; the review margin is the one that best separates the training part's wrong decisions from
its right ones (share of errors inside the margin minus share of right decisions inside it).
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

import vision_fusion  # noqa: E402
import vision_skin  # noqa: E402
from vision_data import COPIES, KINDS, load_photos  # noqa: E402
from vision_scores import FULL_SIZES, NETS, PADDED_SIZES, SCORES_VERSION, TILE_GRID, load_scores  # noqa: E402
from vision_skin import load_skin  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "vision_tuning.json"
COST = {
    "yolov3-tiny": {192: 1.0, 256: 1.66, 320: 2.46},
    "yolov4-tiny": {192: 1.18, 256: 2.13, 320: 3.17},
}
YOLO_BUDGET = 2.2
DESIGN_NET = "yolov3-tiny"
"""The users' design names YOLOv3 as the person detector: only strategies that keep it are chosen (the others,
yolov4-tiny alone among them, are measured and listed all the same)."""
TILE_WINDOWS = {"tiles": tuple(range(TILE_GRID * TILE_GRID)), "tiles+centre": tuple(range(TILE_GRID * TILE_GRID + 1))}
TILE_WINDOWS["centre"] = (TILE_GRID * TILE_GRID,)
AGREE_IOUS = (0.3, 0.5)
AGREE_MIN_AREAS = (0.0, 0.05, 0.15)
""" "agree" second pass: the nets' boxes of the whole-photo pass overlapping by at least an IoU of AGREE_IOUS, each
at least AGREE_MIN_AREAS of the photo, may fire at their own (lower) threshold; it costs no network run."""
SECOND_PASSES = (
    *TILE_WINDOWS,
    *(f"agree iou{iou:g} area{area:g}" for iou in AGREE_IOUS for area in AGREE_MIN_AREAS),
)
GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
FP_WEIGHT = (1 - 0.85) / (1 - 0.99)
MARGINS = np.round(np.arange(0.0, 0.301, 0.01), 3)
INNER_FOLDS = 5
OUTER_FOLDS = 5
SEED = 14
TOP = 5  # boxes per net and pass kept for the agreement rule


@dataclass(frozen=True)
class Strategy:
    nets: tuple[str, ...]
    combine: str
    full: int  # 0 = no whole-photo pass
    padded: int  # 0 = no padded pass
    second: str = ""
    """Instead of the padded pass, another second look (SECOND_PASSES): ``tiles`` / ``centre`` / ``tiles+centre``
    (crops of the photo, each at 192), or ``agree ...`` (boxes both nets agree on, no extra run)."""

    @property
    def name(self) -> str:
        nets = "+".join(self.nets) + (f" ({self.combine})" if len(self.nets) > 1 else "")
        passes = " + ".join(
            p
            for p in (
                f"full {self.full}" if self.full else "",
                f"padded {self.padded}" if self.padded else "",
                self.second,
            )
            if p
        )
        return f"{nets}: {passes}"

    @property
    def cost(self) -> float:
        """Relative CPU cost of the person stage on a photo where it finds nobody (all passes run)."""
        runs = [size for size in (self.full, self.padded) if size]
        if self.second in TILE_WINDOWS:
            runs += [192] * len(TILE_WINDOWS[self.second])
        return round(sum(COST[net][size] for net in self.nets for size in runs), 2)

    def config(self, full_t: float, padded_t: float, margin: float) -> dict:
        second = [n for n in self.nets if n != "yolov3-tiny"]
        if self.second:
            raise ValueError(f"the cascade has no {self.second!r} pass: {self.name} is measured, not shippable")
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
    for (nets, rule), full, second in itertools.product(net_sets, FULL_SIZES, SECOND_PASSES):
        # Boxes beyond the best are kept for the 192 pass only (vision_scores.py --reuse keeps the other passes).
        if second.startswith("agree") and (len(nets) < 2 or full != 192):
            continue
        out.append(Strategy(nets, rule, full, 0, second))
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
    face: np.ndarray  # per row: the best face score reaches face_min_confidence
    scores: dict[tuple[str, str], np.ndarray]  # (net, pass name) -> per-row score
    face_score: np.ndarray  # per row: the best face score
    tops: dict[tuple[str, str], np.ndarray]  # (net, full pass) -> rows x TOP x [score, x, y, w, h]
    tiles: dict[str, np.ndarray]  # net -> rows x windows: best person score in each crop
    skin: dict[str, np.ndarray]  # vote (bench/vision_skin.py) -> per-row value; empty until it has run


VIEWS = ("person", "shared")
VIEWS_HELP = "which decode YOLO saw: the person stage's own (person) or the face stage's (shared)"
"""``shared`` (the cascade as shipped): the whole-photo passes on the face stage's decode, one decode for both
stages (padded canvases as in ``person``); ``person``: YOLO on a second decode of its own for ``decode_long_side``
(the cascade before it shared the decode)."""


def load_table(face_min_confidence: float, view: str = "person") -> Table:
    photos = load_photos()
    cached = load_scores(photos)
    missing = [p.id for p in photos if p.id not in cached]
    if missing:
        print(f"warning: {len(missing)} photos not scored yet (run bench/vision_scores.py); left out", file=sys.stderr)
    photos = [p for p in photos if p.id in cached]
    skin_cached = load_skin(photos)
    if len(skin_cached) < len(photos):  # cheap (no network): fill the cache so `make tune` needs no extra step
        vision_skin.main()
        skin_cached = load_skin(photos)
    skin: dict[str, list[float]] = {}
    rows_photo, rows_copy, face = [], [], []
    scores: dict[tuple[str, str], list[float]] = {}
    tops: dict[tuple[str, str], list[np.ndarray]] = {}
    tiles: dict[str, list[list[float]]] = {}
    for index, photo in enumerate(photos):
        for c, copy in enumerate(COPIES):
            entry = cached[photo.id][copy]
            rows_photo.append(index)
            rows_copy.append(c)
            face.append(entry["face"])
            for net, passes in entry["persons"].items():
                if view == "shared" and "persons_shared" in entry:
                    passes = {**passes, **entry["persons_shared"][net]}
                for pass_name, best in passes.items():
                    scores.setdefault((net, pass_name), []).append(best["score"])
                    if pass_name.startswith("full"):
                        top = np.zeros((TOP, 5), np.float32)
                        listed = best.get("top", [])[:TOP]
                        if listed:
                            top[: len(listed)] = listed
                        tops.setdefault((net, pass_name), []).append(top)
            for net, windows in entry["tiles"].items():
                tiles.setdefault(net, []).append([w[0] for w in windows])
            for vote, value in skin_cached.get(photo.id, {}).get(copy, {}).items():
                skin.setdefault(vote, []).append(value)
    return Table(
        photos,
        np.asarray(rows_photo),
        np.asarray(rows_copy),
        np.asarray([p.label for p in photos]),
        np.asarray([p.kind for p in photos]),
        np.asarray([p.source for p in photos]),
        np.asarray(face) >= face_min_confidence,
        {k: np.asarray(v, dtype=np.float32) for k, v in scores.items()},
        np.asarray(face, dtype=np.float32),
        {k: np.stack(v) for k, v in tops.items()},
        {k: np.asarray(v, dtype=np.float32) for k, v in tiles.items()},
        {k: np.asarray(v, dtype=np.float32) for k, v in skin.items() if len(v) == len(face)},
    )


def agreement(table: Table, nets: tuple[str, ...], pass_name: str, min_iou: float, min_area: float) -> np.ndarray:
    """Per row: the best min(score A, score B) over pairs of the two nets' boxes that overlap by ``min_iou`` and
    each cover ``min_area`` of the photo (0 when no pair does)."""
    a, b = table.tops[(nets[0], pass_name)], table.tops[(nets[1], pass_name)]
    ax1, ay1, aw, ah = (a[:, :, i][:, :, None] for i in range(1, 5))
    bx1, by1, bw, bh = (b[:, :, i][:, None, :] for i in range(1, 5))
    iw = np.clip(np.minimum(ax1 + aw, bx1 + bw) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay1 + ah, by1 + bh) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    ok = (iou >= min_iou) & (aw * ah >= min_area) & (bw * bh >= min_area)
    pair = np.minimum(a[:, :, 0][:, :, None], b[:, :, 0][:, None, :])
    return np.where(ok, pair, 0.0).reshape(len(a), -1).max(1).astype(np.float32)


def second_scores(table: Table, strategy: Strategy) -> np.ndarray:
    """The score of a strategy's ``second`` look, per row."""
    rule = {"max": np.max, "mean": np.mean, "min": np.min}[strategy.combine]
    if strategy.second in TILE_WINDOWS:
        windows = list(TILE_WINDOWS[strategy.second])
        # Per crop the nets are combined (for ``min`` both must see the person in the same crop), then the best crop.
        stack = np.stack([table.tiles[net][:, windows] for net in strategy.nets])
        return rule(stack, axis=0).max(1)
    _, iou, area = strategy.second.split()
    return agreement(table, strategy.nets, f"full{strategy.full}", float(iou[3:]), float(area[4:]))


def combined_scores(table: Table, strategy: Strategy) -> tuple[np.ndarray | None, np.ndarray | None]:
    def one(pass_name: str) -> np.ndarray:
        stack = np.stack([table.scores[(net, pass_name)] for net in strategy.nets])
        return {"max": stack.max(0), "mean": stack.mean(0), "min": stack.min(0)}[strategy.combine]

    if strategy.second:
        return one(f"full{strategy.full}"), second_scores(table, strategy)
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
def objective(candidate: Candidate, table: Table, mask: np.ndarray, weight: float = FP_WEIGHT) -> np.ndarray:
    """worn recall - ``weight`` x product FP rate over the photos in ``mask``, for every grid point."""
    worn = mask & (table.label == 2)
    product = mask & (table.label == 3)
    recall = candidate.worn_hits[worn].sum(0) / max(1, worn.sum())
    fp = candidate.worn_hits[product].sum(0) / max(1, product.sum())
    return recall - weight * fp


def best_grid_point(candidate: Candidate, table: Table, mask: np.ndarray, weight: float = FP_WEIGHT) -> int:
    """The best thresholds on ``mask``; among ties the one farthest from the grid's edges of the tie (its middle)."""
    value = objective(candidate, table, mask, weight)
    # An unused pass's threshold is irrelevant: keep it at the grid's middle so ties do not wander.
    g = len(GRID)
    value = value.reshape(g, g)
    if not candidate.strategy.full:
        value = np.where(np.arange(g)[:, None] == g // 2, value, -np.inf)
    if not (candidate.strategy.padded or candidate.strategy.second):
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
    """Inner CV over ``train`` picks the strategy (within the speed budget); its thresholds are refitted on all of
    ``train``."""
    # Crops and box agreement are levers measured here, not passes the cascade has: never chosen.
    candidates = [
        c
        for c in candidates
        if c.strategy.cost <= YOLO_BUDGET and DESIGN_NET in c.strategy.nets and not c.strategy.second
    ]
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
    """The margin that best separates wrong decisions from right ones: share of the person stage's errors inside it
    minus share of its right decisions inside it, largest (the smaller margin among ties)."""
    truth = table.label[table.photo_of_row]
    decided = rows & np.isfinite(gap)
    wrong, right = decided & (predicted != truth), decided & (predicted == truth)
    if not wrong.any() or not right.any():
        return 0.0
    separation = [(gap[wrong] < m).mean() - (gap[right] < m).mean() for m in MARGINS]
    return float(MARGINS[int(np.argmax(separation))])


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
                "cost": candidate.strategy.cost,
                "within_budget": candidate.strategy.cost <= YOLO_BUDGET,
                "keeps_yolov3_tiny": DESIGN_NET in candidate.strategy.nets,
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


def outer_groups(table: Table, scheme: str) -> list[np.ndarray]:
    if scheme == "photos":
        outer = fold_ids(table, OUTER_FOLDS, np.ones(len(table.photos), bool), SEED)
        return [outer == k for k in range(OUTER_FOLDS)]
    return [table.source == s for s in sorted(set(table.source))]


def fixed_strategy_cv(candidate: Candidate, table: Table, scheme: str, weight: float = FP_WEIGHT) -> dict:
    """One strategy, its thresholds refitted on each outer training part (objective with ``weight``), judged on
    the held-out part: hands, legs, worn and product figures."""
    predicted = np.full(len(table.face), 3)
    for test in outer_groups(table, scheme):
        train = ~test
        if not ((table.label[train] == 2).any() and (table.label[train] == 3).any()):
            predicted[test[table.photo_of_row]] = np.where(table.face[test[table.photo_of_row]], 1, 3)
            continue
        pred, _ = row_outcomes(
            table, candidate.strategy, *thresholds_of(best_grid_point(candidate, table, train, weight))
        )
        predicted[test[table.photo_of_row]] = pred[test[table.photo_of_row]]
    figures = judge(table, predicted, np.full(len(table.face), np.inf), 0.0, np.ones(len(table.face), bool))
    return {
        "hands": figures["per_kind"]["hands"]["recall"],
        "legs": figures["per_kind"]["legs"]["recall"],
        "worn": figures["worn_recall"],
        "product_fp": figures["product_called_worn_or_model"],
        "studio_fp": round(1 - (figures["per_kind"]["studio"]["recall"] or 1.0), 4),
    }


CURVE_WEIGHTS = (2, 5, 10, 15, 30, 60)
"""FP weights of the objective traced for each lever's curve: a low weight buys recall with false positives."""


def lever_family(strategy: Strategy) -> str:
    if strategy.second.startswith("agree"):
        return "agree (both nets' boxes overlap: a second, lower threshold)"
    if strategy.second:
        return f"zoomed crops ({strategy.second}, each letterboxed to 192)"
    return "padded canvas" if strategy.padded else "whole photo only"


def lever_report(candidates: list[Candidate], table: Table, rows: list[dict]) -> list[dict]:
    """For each lever family, its best strategy by the photo-fold CV objective (strategy_table), then that strategy
    cross-validated with sources left out too, and its CV curve: recall against product false positives as the
    objective's FP weight moves (thresholds refitted per fold at each weight)."""
    by_name = {c.strategy.name: c for c in candidates}
    best: dict[str, dict] = {}
    for row in rows:  # sorted best first
        family = lever_family(by_name[row["strategy"]].strategy)
        best.setdefault(family, row)
    out = []
    for family, row in best.items():
        candidate = by_name[row["strategy"]]
        out.append(
            {
                "lever": family,
                "best_strategy": row["strategy"],
                "cost": row["cost"],
                "within_budget": row["within_budget"],
                "cv_photos": fixed_strategy_cv(candidate, table, "photos"),
                "cv_sources": fixed_strategy_cv(candidate, table, "sources"),
                "cv_curve_photos": [
                    {"fp_weight": w, **fixed_strategy_cv(candidate, table, "photos", w)} for w in CURVE_WEIGHTS
                ],
            }
        )
    return out


def recall_curve(candidate: Candidate, table: Table, full_t: float, padded_t: float) -> list[dict]:
    """Hand and leg recall against the product false-positive rate as one threshold moves (the other held at its
    chosen value): how much hand recall costs in false persons. In-sample: a description, not an estimate."""
    g = len(GRID)
    fi, pi = int(np.argmin(np.abs(GRID - full_t))), int(np.argmin(np.abs(GRID - padded_t)))
    moving = "full" if candidate.strategy.full else "padded"
    points = []
    for i, t in enumerate(GRID):
        point = (i * g + pi) if moving == "full" else (fi * g + i)
        hits = candidate.worn_hits[:, point]
        figures = {"threshold": float(t)}
        for kind in ("hands", "legs"):
            figures[f"{kind}_recall"] = round(float(hits[table.kind == kind].mean()), 4)
        figures["product_fp"] = round(float(hits[table.label == 3].mean()), 4)
        points.append(figures)
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--view", choices=VIEWS, default="shared", help=VIEWS_HELP)
    args = parser.parse_args(argv)
    started = time.monotonic()
    shipped = VisionConfig.from_env({})
    table = load_table(shipped.face_min_confidence, args.view)
    candidates = build_candidates(table)
    everything = np.ones(len(table.photos), bool)

    final, point, inner_top = choose(candidates, table, everything, SEED)
    full_t, padded_t = thresholds_of(point)
    pred, gap = row_outcomes(table, final.strategy, full_t, padded_t)
    rows = np.ones(len(table.face), bool)
    margin = calibrate_margin(table, pred, gap, rows)
    in_sample = judge(table, pred, gap, margin, rows)
    in_sample["confusion"] = confusion(table, pred, rows)

    strategies_tried = strategy_table(candidates, table)
    report = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/tune_vision.py"
        + (f" --view {args.view}" if args.view != "shared" else "")
        + (f" --out {args.out}" if args.out.resolve() != RESULTS else ""),
        "scores_version": SCORES_VERSION,
        "view": args.view,
        "photos": len(table.photos),
        "rows": len(table.face),
        "copies": list(COPIES),
        "photos_per_kind": dict(Counter(table.kind.tolist())),
        "sources": len(set(table.source.tolist())),
        "face_min_confidence": shipped.face_min_confidence,
        "objective": f"worn recall - {FP_WEIGHT:g} x product FP rate",
        "speed_budget": {"units": YOLO_BUDGET, "cost_per_net_and_size": COST},
        "review_rule": "margin maximising (share of training errors in review - share of right training decisions in review)",
        "chosen": {"strategy": final.strategy.name, **final.strategy.config(full_t, padded_t, margin)},
        "inner_cv_top5": inner_top,
        "cv": {"photos": outer_cv(candidates, table, "photos"), "sources": outer_cv(candidates, table, "sources")},
        "in_sample": in_sample,
        "strategies": strategies_tried,
        "levers": lever_report(candidates, table, strategies_tried) + vision_fusion.lever(sys.modules[__name__], table),
        "hand_curve_of_the_chosen_strategy": recall_curve(final, table, full_t, padded_t),
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
    lines.append("| strategy | cost | CV worn recall | CV product FP | in-sample worn | in-sample FP |")
    lines.append("|---|---|---|---|---|---|")
    for r in report["strategies"][:15]:
        lines.append(
            f"| {r['strategy']} | {r['cost']}{'' if r['within_budget'] else ' (over)'} | {r['cv_worn_recall']} | "
            f"{r['cv_product_fp']} | {r['in_sample_worn_recall']} | {r['in_sample_product_fp']} |"
        )
    lines.append("")
    lines.append("| lever | best strategy | cost | CV photos: hands / legs / worn / product FP | CV sources: same |")
    lines.append("|---|---|---|---|---|")
    for lever in report["levers"]:
        cells = [
            " / ".join(f"{lever[scheme][k]:.1%}" for k in ("hands", "legs", "worn", "product_fp"))
            for scheme in ("cv_photos", "cv_sources")
        ]
        lines.append(
            f"| {lever['lever']} | {lever['best_strategy'][:60]} | {lever['cost']}"
            f"{'' if lever['within_budget'] else ' (over)'} | {cells[0]} | {cells[1]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
