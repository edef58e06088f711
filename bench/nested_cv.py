"""Nested cross-validation of threshold rules, shared by bench/hands_fusion.py and bench/body_votes.py.

A script describes its rules by four callables bound to one way of fitting (a mode or a budget), gathered in
``Rules``: ``fit`` (thresholds of a candidate on a training part), ``fires`` (where a fitted rule turns a row worn),
``objective`` (how an inner CV judges the rows a candidate fired on) and ``figures`` (what the report shows of the
pooled outer test parts). This module supplies the rest: the table rows both scripts share, the 0.01 grid the
thresholds are fitted on, the folds (5 photo folds stratified by kind with the copies of a photo together, or one
MANIFEST ``source_repo`` left out), the inner-CV choice of a candidate, the outer CV and the CV of one fixed
candidate, and the parts of the reports that read the same in both.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vision_data import KINDS

ROOT = Path(__file__).resolve().parents[1]

FP_WEIGHT = 15.0
TARGET_FP = 0.01
FOLDS = 5
SEED = 7
LEVELS = 101  # scores binned on a 0.01 grid
PRODUCT_KINDS = ("amateur", "studio")
WORN_KINDS = ("hands", "legs")
SCHEMES = ("photos", "sources")
SCHEME_LABELS = {"photos": "5 photo folds", "sources": "sources left out"}


@dataclass
class Rows:
    """One row per photo copy that decoded; a photo weighs 1 and its copies share it."""

    photo: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    category: np.ndarray
    weight: np.ndarray
    photo_kind: list[str]

    @property
    def worn(self) -> np.ndarray:
        return np.isin(self.kind, WORN_KINDS)

    @property
    def products(self) -> np.ndarray:
        return np.isin(self.kind, PRODUCT_KINDS)


def copy_rows(records: list[dict], rows: defaultdict) -> Iterator[dict]:
    """Each copy that decoded of each photo's record, once its ``Rows`` columns are appended to ``rows``."""
    for index, record in enumerate(records):
        copies = [v for v in record["copies"].values() if "error" not in v]
        for value in copies:
            rows["photo"].append(index)
            rows["kind"].append(record["kind"])
            rows["source"].append(record["source"])
            rows["category"].append(value["category"])
            rows["weight"].append(1.0 / len(copies))
            yield value


def rows_columns(records: list[dict], rows: defaultdict) -> dict:
    """The ``Rows`` fields of a table whose columns ``copy_rows`` filled."""
    columns = {name: np.array(rows[name]) for name in ("photo", "kind", "source", "category", "weight")}
    return {**columns, "photo_kind": [r["kind"] for r in records]}


def share(table: Rows, called: np.ndarray, mask: np.ndarray) -> float:
    """The weighted share of the rows of ``mask`` that are ``called``, rounded as the reports give it."""
    w = table.weight
    return round(float((w * called)[mask].sum() / w[mask].sum()), 4)


def per_kind(table: Rows, called: dict[str, np.ndarray]) -> dict:
    """Per kind: its photos (the copies' weights summed) and the share of it each flag of ``called`` marks."""
    out = {}
    for kind in KINDS:
        mask = table.kind == kind
        photos = round(float(table.weight[mask].sum()), 1)
        out[kind] = {"photos": photos, **{name: share(table, flags, mask) for name, flags in called.items()}}
    return out


@dataclass(frozen=True)
class Rules:
    """How a script fits, applies and judges its candidate rules under one mode or budget (``label``)."""

    label: str
    fit: Callable[[Any, Any, np.ndarray], Any]
    fires: Callable[[Any, Any, np.ndarray], np.ndarray]
    objective: Callable[[Any, np.ndarray, np.ndarray], float]
    figures: Callable[[Any, np.ndarray], dict]
    # ``rules_chosen`` in the outer CV: the most chosen first, or in the order first chosen (body_votes.json has
    # always listed them so; sorting would reorder its committed results without changing a figure)
    most_common_first: bool = True


# -- the threshold grid ------------------------------------------------------------------------------------------
def bins(values: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(values * 100 + 1e-9).astype(int), 0, LEVELS - 1)


def region_sums(family: str, b1: np.ndarray, b2: np.ndarray | None, values: np.ndarray) -> np.ndarray:
    """The sum of ``values`` over the rows the rule fires on, for every threshold (pair) of the 0.01 grid:
    ``b1 >= t`` alone, ``b1 >= t1 AND b2 >= t2`` (``hand_and_person``) or ``b1 >= t1 OR b2 >= t2`` (any other
    ``family``)."""
    if b2 is None:
        return np.bincount(b1, values, LEVELS)[::-1].cumsum()[::-1]
    cell = np.bincount(b1 * LEVELS + b2, values, LEVELS * LEVELS).reshape(LEVELS, LEVELS)
    if family == "hand_and_person":
        return cell[::-1, ::-1].cumsum(0).cumsum(1)[::-1, ::-1]
    below = np.zeros((LEVELS + 1, LEVELS + 1))
    below[1:, 1:] = cell.cumsum(0).cumsum(1)
    return cell.sum() - below[:LEVELS, :LEVELS]


def share_values(table: Rows, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a part: its share of the part's worn photos (0 unless worn) and of its product photos."""
    w = table.weight[rows]
    worn = table.worn[rows]
    prod = table.products[rows]
    return np.where(worn, w, 0.0) / w[worn].sum(), np.where(prod, w, 0.0) / w[prod].sum()


# -- folds -------------------------------------------------------------------------------------------------------
def photo_folds(kinds: list[str], photos: np.ndarray, seed: int = SEED) -> dict[int, int]:
    """A fold per photo of ``photos``, stratified by kind."""
    rng = np.random.default_rng(seed)
    by_kind = defaultdict(list)
    for p in photos:
        by_kind[kinds[p]].append(int(p))
    fold = {}
    for members in by_kind.values():
        for position, p in enumerate(rng.permutation(members)):
            fold[int(p)] = position % FOLDS
    return fold


def groups_of(table: Rows, rows: np.ndarray, scheme: str, seed: int = SEED) -> np.ndarray:
    """The part of each of ``rows``: its photo's fold (``photos``) or its source (``sources``)."""
    if scheme == "photos":
        fold = photo_folds(table.photo_kind, np.unique(table.photo[rows]), seed)
        return np.array([fold[int(p)] for p in table.photo[rows]])
    return table.source[rows]


# -- cross-validation --------------------------------------------------------------------------------------------
def left_out(
    rules: Rules, table: Rows, rows: np.ndarray, groups: np.ndarray, fitted_on: Callable[[Any, np.ndarray], Any]
) -> np.ndarray:
    """Where each part of ``rows`` fires under the rule ``fitted_on(its group, the other parts' rows)`` returns."""
    fired = np.zeros(len(rows), bool)
    for group in np.unique(groups):
        test = groups == group
        fired[test] = rules.fires(fitted_on(group, rows[~test]), table, rows[test])
    return fired


def cv_objective(rules: Rules, candidate: Any, table: Rows, rows: np.ndarray, scheme: str) -> float:
    """The objective of ``candidate`` over ``rows``, each part judged with thresholds fitted on the others."""
    groups = groups_of(table, rows, scheme, seed=SEED + 1)
    fired = left_out(rules, table, rows, groups, lambda _, train: rules.fit(candidate, table, train))
    return rules.objective(table, rows, fired)


def nested(rules: Rules, table: Rows, rows: np.ndarray, scheme: str, pool: list) -> tuple[Any, list[dict]]:
    """The candidate with the best inner-CV objective on ``rows``, refitted on all of ``rows``."""
    ranked = sorted(
        ({"candidate": c, "inner_cv_objective": cv_objective(rules, c, table, rows, scheme)} for c in pool),
        key=lambda r: -r["inner_cv_objective"],
    )
    return rules.fit(ranked[0]["candidate"], table, rows), ranked


def outer_cv(rules: Rules, table: Rows, scheme: str, pool: list) -> dict:
    """Each outer part judged by the candidate and thresholds nested CV chose on the others: pooled test figures."""
    every = np.arange(len(table.photo))
    chosen = []

    def choose(group: Any, train: np.ndarray) -> Any:
        fitted, _ = nested(rules, table, train, scheme, pool)
        chosen.append({"left_out": str(group), "rule": fitted.candidate.name, "thresholds": fitted.thresholds})
        print(f"  {rules.label} {scheme} {group}: {fitted.candidate.name} {fitted.thresholds}", flush=True)
        return fitted

    fired = left_out(rules, table, every, groups_of(table, every, scheme), choose)
    counts = Counter(c["rule"] for c in chosen)
    return {
        "test": rules.figures(table, fired),
        "chosen": chosen,
        "rules_chosen": dict(counts.most_common()) if rules.most_common_first else dict(counts),
    }


def fixed_cv(rules: Rules, table: Rows, candidate: Any, scheme: str) -> dict:
    """One candidate, thresholds fitted per training part (no candidate choice): pooled test figures."""
    every = np.arange(len(table.photo))
    thresholds = []

    def refit(_: Any, train: np.ndarray) -> Any:
        fitted = rules.fit(candidate, table, train)
        thresholds.append(fitted.thresholds)
        return fitted

    fired = left_out(rules, table, every, groups_of(table, every, scheme), refit)
    return {"test": rules.figures(table, fired), "thresholds": thresholds}


def cross_validate(rules: Rules, table: Rows, pool: list, fixed: tuple) -> tuple[dict, Any, list[dict]]:
    """The fixed candidates' and the nested choice's CV in both schemes, then the nested choice on all photos (its
    fitted rule and the ranking of ``pool``, labelled in-sample by the scripts)."""
    entry: dict = {"fixed": {}}
    for candidate in fixed:
        entry["fixed"][candidate.name] = {s: fixed_cv(rules, table, candidate, s) for s in SCHEMES}
    entry["cv"] = {scheme: outer_cv(rules, table, scheme, pool) for scheme in SCHEMES}
    fitted, ranked = nested(rules, table, np.arange(len(table.photo)), "photos", pool)
    return entry, fitted, ranked


# -- report ------------------------------------------------------------------------------------------------------
def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def cv_rows(entry: dict, row: Callable[[str, dict], str]) -> list[str]:
    """The table rows of one mode or budget: the outer CV of each scheme, in-sample, then each fixed candidate."""
    lines = [row(f"**CV, {SCHEME_LABELS[scheme]}**", entry["cv"][scheme]["test"]) for scheme in SCHEMES]
    lines.append(row("in-sample (not a CV figure)", entry["in_sample"]["figures"]))
    for name, fixed in entry["fixed"].items():
        for scheme in SCHEMES:
            lines.append(row(f"fixed `{name}`, CV {scheme}", fixed[scheme]["test"]))
    return lines


def chosen_lines(entry: dict, note: str = "") -> list[str]:
    """The rule chosen on all photos (``note`` said after its thresholds) and those chosen in each scheme."""
    in_sample = entry["in_sample"]
    lines = ["", f"Rule chosen on all photos: `{in_sample['rule']}`, thresholds {in_sample['thresholds']}{note}.", ""]
    for scheme in SCHEMES:
        lines.append(
            f"Rules chosen in the {scheme} scheme's training parts: "
            + "; ".join(f"`{rule}` x{n}" for rule, n in entry["cv"][scheme]["rules_chosen"].items())
            + "."
        )
        lines.append("")
    return lines


def ranking_lines(entry: dict, title: str, column: str) -> list[str]:
    """The eight best rules on all photos by their inner-CV objective."""
    lines = [title, "", f"| rule | {column} |", "|---|---|"]
    for ranked in entry["ranking_all_photos"][:8]:
        lines.append(f"| `{ranked['rule']}` | {ranked['inner_cv_objective']:.4f} |")
    return lines


def write_results(name: str, result: dict, markdown: Callable[[dict], str], started: float) -> None:
    """``result`` with its run time and load written to bench/results/<name>.json and, as ``markdown``, .md."""
    result["seconds"] = round(time.monotonic() - started)
    result["load"] = "uptime load averages at the end " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    out = ROOT / "bench" / "results"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
