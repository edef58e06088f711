"""A lever for bench/tune_vision.py: several weak votes fused by a logistic regression, cross-validated.

Each vote is a number the cascade already has (or would have after one more pass): each net's best person score
in the whole-photo pass, the score of the boxes both nets agree on, the size and shape of each net's best box, the
best face score that did not count, the share of skin-coloured pixels (bench/vision_skin.py: whole photo,
along the edges, largest region); the over-budget set adds the padded 320 canvas and the zoomed crops. The
regression (L2, standardised features) is fitted on worn against product photos without a face; its threshold is
chosen on out-of-fold probabilities of an inner 5-fold CV over the training part (never on the photos it was
fitted on); the outer test part is judged with both. Outer schemes as in tune_vision: 5 photo folds, and each
source left out. The fitted weights on all photos are reported beside the CV figures.
"""

from __future__ import annotations

import numpy as np

L2 = 1.0
PROBABILITY_GRID = np.round(np.arange(0.02, 0.981, 0.02), 3)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.005, 0.995)
    return np.log(p / (1 - p))


def features(tv, table, over_budget: bool) -> tuple[np.ndarray, list[str]]:
    """rows x features, and their names."""
    cols, names = [], []
    for net in ("yolov3-tiny", "yolov4-tiny"):
        cols.append(_logit(table.scores[(net, "full192")]))
        names.append(f"logit {net} full192")
        top = table.tops[(net, "full192")][:, 0]
        area = top[:, 3] * top[:, 4]
        cols.append(np.sqrt(area))
        names.append(f"sqrt area of {net}'s best box")
        cols.append(np.where(area > 0, np.log(np.maximum(top[:, 4], 1e-3) / np.maximum(top[:, 3], 1e-3)), 0.0))
        names.append(f"log aspect (h/w) of {net}'s best box")
    cols.append(_logit(tv.agreement(table, ("yolov3-tiny", "yolov4-tiny"), "full192", 0.3, 0.0)))
    names.append("logit agreed boxes (IoU 0.3)")
    cols.append(np.where(table.face_score < 0.005, 0.0, table.face_score))
    names.append("best face score (below the threshold)")
    for vote, values in table.skin.items():
        cols.append(np.sqrt(values))
        names.append(f"sqrt {vote.replace('_', ' ')} share (bench/vision_skin.py)")
    if over_budget:
        for net in ("yolov3-tiny", "yolov4-tiny"):
            cols.append(_logit(table.scores[(net, "padded320")]))
            names.append(f"logit {net} padded320")
            cols.append(_logit(table.tiles[net].max(1)))
            names.append(f"logit {net} best zoomed crop")
    return np.stack(cols, 1).astype(np.float64), names


def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights incl. intercept, mean, std) of an L2 logistic regression by Newton's method."""
    mean, std = x.mean(0), x.std(0) + 1e-9
    z = np.column_stack([np.ones(len(x)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], L2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w, mean, std


def predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    w, mean, std = model
    return 1 / (1 + np.exp(-(np.column_stack([np.ones(len(x)), (x - mean) / std]) @ w)))


def _train_rows(table, photos: np.ndarray) -> np.ndarray:
    label = table.label[table.photo_of_row]
    return photos[table.photo_of_row] & ~table.face & (label != 1)


def _objective(tv, table, probability: np.ndarray, photos: np.ndarray, weight: float) -> np.ndarray:
    """tune_vision's objective for every probability threshold, over ``photos``."""
    worn = (probability[:, None] >= PROBABILITY_GRID[None, :]) & ~table.face[:, None]
    hits = tv.per_photo(table, worn)
    worn_photos, product_photos = photos & (table.label == 2), photos & (table.label == 3)
    recall = hits[worn_photos].sum(0) / max(1, worn_photos.sum())
    fp = hits[product_photos].sum(0) / max(1, product_photos.sum())
    return recall - weight * fp


def choose_threshold(tv, table, x: np.ndarray, train: np.ndarray, seed: int, weight: float) -> float:
    inner = tv.fold_ids(table, tv.INNER_FOLDS, train, seed)
    out_of_fold = np.zeros(len(table.face))
    for k in range(tv.INNER_FOLDS):
        fit_rows = _train_rows(table, train & (inner != k))
        held_rows = (train & (inner == k))[table.photo_of_row]
        model = fit(x[fit_rows], (table.label[table.photo_of_row][fit_rows] == 2).astype(float))
        out_of_fold[held_rows] = predict(model, x[held_rows])
    value = _objective(tv, table, out_of_fold, train, weight)
    tied = np.flatnonzero(value >= value.max() - 1e-9)
    return float(PROBABILITY_GRID[tied[len(tied) // 2]])


def cross_validate(tv, table, x: np.ndarray, scheme: str, weight: float) -> dict:
    predicted = np.where(table.face, 1, 3)
    for index, test in enumerate(tv.outer_groups(table, scheme)):
        train = ~test
        if not ((table.label[train] == 2).any() and (table.label[train] == 3).any()):
            continue
        threshold = choose_threshold(tv, table, x, train, tv.SEED + index, weight)
        rows = _train_rows(table, train)
        model = fit(x[rows], (table.label[table.photo_of_row][rows] == 2).astype(float))
        test_rows = test[table.photo_of_row]
        worn = (predict(model, x[test_rows]) >= threshold) & ~table.face[test_rows]
        predicted[test_rows] = np.where(table.face[test_rows], 1, np.where(worn, 2, 3))
    figures = tv.judge(table, predicted, np.full(len(table.face), np.inf), 0.0, np.ones(len(table.face), bool))
    return {
        "hands": figures["per_kind"]["hands"]["recall"],
        "legs": figures["per_kind"]["legs"]["recall"],
        "worn": figures["worn_recall"],
        "product_fp": figures["product_called_worn_or_model"],
        "studio_fp": round(1 - (figures["per_kind"]["studio"]["recall"] or 1.0), 4),
    }


def lever(tv, table) -> list[dict]:
    out = []
    everything = np.ones(len(table.photos), bool)
    for over_budget in (False, True):
        x, names = features(tv, table, over_budget)
        rows = _train_rows(table, everything)
        model = fit(x[rows], (table.label[table.photo_of_row][rows] == 2).astype(float))
        w, mean, std = model
        cost = tv.COST["yolov3-tiny"][192] + tv.COST["yolov4-tiny"][192]
        if over_budget:
            windows = len(tv.TILE_WINDOWS["tiles+centre"])
            cost += (tv.COST["yolov3-tiny"][320] + tv.COST["yolov4-tiny"][320]) + windows * cost
        out.append(
            {
                "lever": "weak votes fused by logistic regression"
                + (" (with padded 320 and zoomed crops)" if over_budget else " (whole-photo pass only)"),
                "best_strategy": "logistic regression on: " + ", ".join(names),
                "cost": round(cost, 2),
                "within_budget": cost <= tv.YOLO_BUDGET,
                "fitted_on_all_photos": {
                    "intercept": round(float(w[0]), 4),
                    "weights_on_standardised_features": {
                        n: round(float(v), 4) for n, v in zip(names, w[1:], strict=True)
                    },
                    "feature_means": {n: round(float(v), 4) for n, v in zip(names, mean, strict=True)},
                    "feature_stds": {n: round(float(v), 4) for n, v in zip(names, std, strict=True)},
                    "l2": L2,
                },
                "cv_photos": cross_validate(tv, table, x, "photos", tv.FP_WEIGHT),
                "cv_sources": cross_validate(tv, table, x, "sources", tv.FP_WEIGHT),
                "cv_curve_photos": [
                    {"fp_weight": weight, **cross_validate(tv, table, x, "photos", weight)}
                    for weight in tv.CURVE_WEIGHTS
                ],
            }
        )
    return out
