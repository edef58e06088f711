"""Simulated sales exports and category records with known (planted) effects, for demos, tests and benchmarks.

The data are built to be hard in the ways real catalogues are: better products use model photos more often
and cost more (so a pooled regression is biased), listings differ persistently, demand moves with the season
and with product-week shocks (errors correlated within product), sales are over-dispersed counts with many
zero weeks, some listings start late, and about a third of listings change their photo during the period.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imagelift.config import StorageConfig
from imagelift.records.categories import CATEGORY_NAMES
from imagelift.records.category_record import SOURCE_SIMULATED, CategoryRecord
from imagelift.records.keys import image_key, normalize_sequencer

UPLOADS_BUCKET = "imagelift-uploads"  # a name only: simulated records point at no real object
IMAGES_PREFIX = StorageConfig().images_prefix
"""Simulated photos sit where a default deployment puts them."""


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate. Lifts and premiums are in percent; the elasticity is d log(units) / d log(price)."""

    products: int = 300
    listings_per_product: float = 4.0
    weeks: int = 52
    start: str = "2025-01-06"
    model_lift: float = 9.0
    worn_lift: float = 5.0
    elasticity: float = -1.2
    model_price_premium: float = 3.0
    worn_price_premium: float = 1.0
    promo_lift: float = 20.0
    promo_share: float = 0.1
    base_units: float = 4.0
    switch_share: float = 0.35
    late_start_share: float = 0.2
    dispersion: float = 2.0  # gamma shape of the multiplicative noise (smaller: more over-dispersed)
    product_week_sd: float = 0.15
    listing_sd: float = 0.3
    failed_records: float = 0.02  # share of listings that also have a failed classification record
    deleted_records: float = 0.01
    unmatched_records: int = 3
    bad_rows: int = 0  # rows corrupted on purpose, spread over the rejection reasons
    listing_selection: float = 0.0
    """How strongly a listing's own persistent demand (in SDs) raises the odds of model photos: listings that
    sell better anyway get model photos, which only a within-listing comparison sees through."""
    model_lift_sd: float = 0.0
    """SD across products of the model lift (log points around the planted mean): heterogeneous effects."""
    huge_products: int = 0
    """The first products sell ``huge_demand`` log points more than the rest: a few sellers carrying most sales."""
    huge_demand: float = 0.0
    price_follows_demand: float = 0.0
    """Log points of price per log point of the product's weekly demand shock: sellers raising prices in their
    busy weeks, which biases the elasticity towards zero and beyond."""
    switch_promotion_lift: float = 0.0
    """Percent more units in the first ``switch_promotion_weeks`` weeks after a listing switches to model photos: a
    launch promotion run with the new photo that the exports do not record."""
    switch_promotion_weeks: int = 2
    lift_ramp_weeks: int = 0
    """When positive, the model lift of a listing that switches to model photos builds up linearly, reaching its
    full size this many weeks after the switch (listings that show model photos from the start have it in full)."""
    pre_switch_rise: float = 0.0
    """Percent rise in demand of a listing that switches to model photos, from ``pre_switch_weeks`` weeks before the
    switch on, for good: sellers give new photos to listings that have started to sell (reverse causality)."""
    pre_switch_weeks: int = 4
    product_season_sd: float = 0.0
    """SD (log points) of the amplitude of each product's own yearly demand cycle, its phase drawn at random."""
    price_follows_season: float = 0.0
    """Log points of price per log point of the product's own seasonal demand: prices set by season."""
    seed: int = 0


@dataclass
class Simulation:
    sales: pd.DataFrame
    records: list[dict[str, Any]]
    truth: dict[str, Any] = field(default_factory=dict)


def _monday(text: str) -> date:
    day = date.fromisoformat(text)
    return day - timedelta(days=day.weekday())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def simulate(spec: SimulationSpec | None = None) -> Simulation:
    spec = spec or SimulationSpec()
    rng = np.random.default_rng(spec.seed)
    start = _monday(spec.start)
    n_products, n_weeks = spec.products, spec.weeks

    quality = rng.normal(size=n_products)  # drives demand, price and the use of model photos alike
    n_listings = 1 + rng.poisson(max(spec.listings_per_product - 1, 0), n_products)
    listing_product = np.repeat(np.arange(n_products), n_listings)
    n_total = len(listing_product)
    listing_number = np.concatenate([np.arange(k) for k in n_listings])

    category_draw = rng.random(n_total)  # drawn here so that the same seed gives the same data as before
    first_week = np.where(
        rng.random(n_total) < spec.late_start_share, rng.integers(1, max(n_weeks // 2, 2), n_total), 0
    )
    switches = (rng.random(n_total) < spec.switch_share) & (first_week < n_weeks - 2)
    # a listing switches strictly inside the period; the bound only matters for listings that do not switch
    switch_week = np.where(switches, rng.integers(first_week + 1, np.maximum(n_weeks - 1, first_week + 2)), n_weeks)
    category_step = rng.integers(1, 3, n_total)

    listing_effect = rng.normal(-(spec.listing_sd**2) / 2, spec.listing_sd, n_total)
    listing_standardised = (listing_effect + spec.listing_sd**2 / 2) / max(spec.listing_sd, 1e-12)
    # photo category: model photos more likely on better products (and, if asked, on better-selling listings)
    model_logit = 0.9 * quality[listing_product] + spec.listing_selection * listing_standardised
    logits = np.column_stack([model_logit, np.full(n_total, 0.2), np.zeros(n_total)])
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    first_category = 1 + (category_draw[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    second_category = (first_category + category_step - 1) % 3 + 1
    listing_markup = rng.normal(0, 0.05, n_total)
    base_log_price = 4.0 + 0.3 * quality + rng.normal(0, 0.3, n_products)

    # listing-week panel (late starters have no rows before their first week)
    weeks = np.arange(n_weeks)
    listing, week = np.meshgrid(np.arange(n_total), weeks, indexing="ij")
    listing, week = listing.ravel(), week.ravel()
    active = week >= first_week[listing]
    listing, week = listing[active], week[active]
    product = listing_product[listing]
    n_rows = len(listing)
    category = np.where(week >= switch_week[listing], second_category[listing], first_category[listing])

    premium = np.select(
        [category == 1, category == 2],
        [math.log1p(spec.model_price_premium / 100), math.log1p(spec.worn_price_premium / 100)],
        0.0,
    )
    discounted = rng.random(n_rows) < 0.15
    log_price = (
        base_log_price[product]
        + listing_markup[listing]
        + premium
        + np.where(discounted, math.log(0.8), 0.0)
        + rng.normal(0, 0.03, n_rows)
    )
    price = np.round(np.exp(log_price), 2)
    log_price = np.log(price)  # the model sees the rounded price, so plant the effect on it
    promo = (rng.random(n_rows) < spec.promo_share).astype(int)

    season = 0.2 * np.sin(2 * np.pi * weeks / 52) + rng.normal(0, 0.05, n_weeks)
    product_week = rng.normal(-(spec.product_week_sd**2) / 2, spec.product_week_sd, (n_products, n_weeks))
    model_lift = np.full(n_products, math.log1p(spec.model_lift / 100))
    if spec.model_lift_sd > 0:
        model_lift += rng.normal(0, spec.model_lift_sd, n_products)
    lift = np.select([category == 1, category == 2], [model_lift[product], math.log1p(spec.worn_lift / 100)], 0.0)
    if spec.price_follows_demand:
        price = np.round(np.exp(log_price + spec.price_follows_demand * product_week[product, week]), 2)
        log_price = np.log(price)
    # the threats below draw from their own stream, so that switching them on leaves every other draw as it was
    extra_rng = np.random.default_rng([spec.seed, 7])
    product_season = np.zeros((n_products, n_weeks))
    if spec.product_season_sd > 0:
        amplitude = extra_rng.normal(0, spec.product_season_sd, n_products)
        phase = extra_rng.uniform(0, 2 * np.pi, n_products)
        product_season = amplitude[:, None] * np.sin(2 * np.pi * weeks[None, :] / 52 + phase[:, None])
        if spec.price_follows_season:
            price = np.round(np.exp(log_price + spec.price_follows_season * product_season[product, week]), 2)
            log_price = np.log(price)
    to_model = (switch_week[listing] < n_weeks) & (second_category[listing] == 1)
    since_switch = week - switch_week[listing]
    if spec.lift_ramp_weeks > 0:
        ramp = np.minimum(1.0, (since_switch + 1) / spec.lift_ramp_weeks)
        lift = np.where(to_model & (since_switch >= 0), lift * ramp, lift)
    threats = product_season[product, week]
    if spec.switch_promotion_lift:
        launch = to_model & (since_switch >= 0) & (since_switch < spec.switch_promotion_weeks)
        threats = threats + launch * math.log1p(spec.switch_promotion_lift / 100)
    if spec.pre_switch_rise:
        risen = to_model & (since_switch >= -spec.pre_switch_weeks)
        threats = threats + risen * math.log1p(spec.pre_switch_rise / 100)
    log_mu = (
        math.log(spec.base_units)
        + 0.5 * quality[product]
        + listing_effect[listing]
        + season[week]
        + product_week[product, week]
        + lift
        + spec.elasticity * (log_price - base_log_price[product])
        + promo * math.log1p(spec.promo_lift / 100)
        + spec.huge_demand * (product < spec.huge_products)
        + threats
    )
    noise = rng.gamma(spec.dispersion, 1 / spec.dispersion, n_rows)
    units = rng.poisson(np.exp(log_mu) * noise)

    product_ids = np.array([f"P{i:05d}" for i in range(n_products)])
    listing_ids = np.array([f"L{i:06d}" for i in range(n_total)])
    week_dates = np.array([(start + timedelta(weeks=int(w))).isoformat() for w in weeks])
    sales = pd.DataFrame(
        {
            "week": week_dates[week],
            "product_id": product_ids[product],
            "listing_id": listing_ids[listing],
            "units": units,
            "price": price,
            "promo": promo,
        }
    )

    records = _records(
        spec,
        rng,
        start,
        product_ids,
        listing_ids,
        listing_product,
        listing_number,
        first_week,
        switch_week,
        first_category,
        second_category,
    )
    expected_rejections: dict[str, int] = {}
    if spec.bad_rows:
        sales, expected_rejections = _corrupt(sales, spec.bad_rows, rng)

    truth = {
        "spec": asdict(spec),
        "effects_pct": {"model": spec.model_lift, "worn": spec.worn_lift},
        "log_effects": {"model": math.log1p(spec.model_lift / 100), "worn": math.log1p(spec.worn_lift / 100)},
        "price_premium_pct": {"model": spec.model_price_premium, "worn": spec.worn_price_premium},
        "elasticity": spec.elasticity,
        "promo_lift_pct": spec.promo_lift,
        "rows": len(sales),
        "products": n_products,
        "listings": n_total,
        "expected_rejections": expected_rejections,
        "listing_weeks_by_category": {CATEGORY_NAMES[c]: int((category == c).sum()) for c in CATEGORY_NAMES},
    }
    return Simulation(sales=sales, records=records, truth=truth)


def _records(
    spec,
    rng,
    start,
    product_ids,
    listing_ids,
    listing_product,
    listing_number,
    first_week,
    switch_week,
    first_category,
    second_category,
) -> list[dict[str, Any]]:
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    sequencer = iter(range(10**15, 10**16))
    records = []

    def simulated(key: str, when: datetime, status: str, **values: Any) -> dict[str, Any]:
        # a made-up version id per record, so each is its own item (sk v#sim-<n>) as an upload would be
        number = f"{next(sequencer):X}"
        return CategoryRecord.build(
            bucket=UPLOADS_BUCKET,
            key=key,
            images_prefix=IMAGES_PREFIX,
            version_id=f"sim-{number}",
            sequencer=normalize_sequencer(number),
            event_time=_iso(when),
            status=status,
            source=SOURCE_SIMULATED,
            **values,
        ).to_item()

    def record(i: int, when: datetime, status: str, category: int | None, photo: int, **values: Any) -> dict[str, Any]:
        product, listing = product_ids[listing_product[i]], listing_ids[i]
        key = image_key(IMAGES_PREFIX, product, listing, f"photo-{photo}.jpg")
        return simulated(key, when, status, category=None if category is None else int(category), **values)

    hours_before = rng.uniform(1, 60, (len(listing_ids), 2))
    for i in range(len(listing_ids)):
        week_start = origin + timedelta(weeks=int(first_week[i]))
        first_at = week_start - timedelta(hours=float(hours_before[i, 0]) + 24 * float(first_week[i] == 0) * 30)
        records.append(record(i, first_at, "classified", first_category[i], 1))
        if switch_week[i] < spec.weeks:
            switch_at = origin + timedelta(weeks=int(switch_week[i])) - timedelta(hours=float(hours_before[i, 1]))
            records.append(record(i, switch_at, "classified", second_category[i], 2))
    period_hours = spec.weeks * 7 * 24
    for share, status in ((spec.failed_records, "failed"), (spec.deleted_records, "deleted")):
        for i in np.flatnonzero(rng.random(len(listing_ids)) < share):
            when = origin + timedelta(hours=float(rng.uniform(0, period_hours)))
            error = {"code": "corrupt", "message": "simulated decode failure"} if status == "failed" else None
            records.append(record(int(i), when, status, None, 9, error=error))
    for j in range(spec.unmatched_records):
        records.append(simulated(f"uploads/stray-{j}.jpg", origin, "classified", category=3))
    order = rng.permutation(len(records))  # the table has no order
    return [records[k] for k in order]


BAD_ROW_KINDS = (
    "missing_field",
    "non_numeric",
    "bad_week",
    "negative_units",
    "price_not_positive",
    "duplicate_listing_week",
    "unknown_listing",
)


def _corrupt(sales: pd.DataFrame, count: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, int]]:
    sales = sales.astype({"units": object, "price": object, "week": object})
    victims = rng.choice(len(sales), size=min(count, len(sales)), replace=False)
    expected: dict[str, int] = {}
    extra = []
    for n, row in enumerate(victims):
        kind = BAD_ROW_KINDS[n % len(BAD_ROW_KINDS)]
        if kind == "missing_field":
            sales.at[row, "price"] = ""
        elif kind == "non_numeric":
            sales.at[row, "units"] = "n/a"
        elif kind == "bad_week":
            sales.at[row, "week"] = "week 12"
        elif kind == "negative_units":
            sales.at[row, "units"] = -3
        elif kind == "price_not_positive":
            sales.at[row, "price"] = 0
        elif kind == "duplicate_listing_week":
            # a second, different row for the same listing-week (an exact copy would simply be counted once)
            copy = sales.loc[row].copy()
            copy["units"] = int(copy["units"]) + 1
            extra.append(copy)
            expected[kind] = expected.get(kind, 0) + 1  # the original as well as the copy is rejected
        elif kind == "unknown_listing":
            sales.at[row, "listing_id"] = f"GHOST{n}"
        expected[kind] = expected.get(kind, 0) + 1
    if extra:
        sales = pd.concat([sales, pd.DataFrame(extra)], ignore_index=True)
    return sales, expected


def write_simulation(sim: Simulation, out_dir: Path, *, gzip_sales: bool = False) -> dict[str, Path]:
    """sales.csv (or sales.csv.gz), categories.jsonl and truth.json under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sales_path = out_dir / ("sales.csv.gz" if gzip_sales else "sales.csv")
    text = sim.sales.to_csv(index=False)
    if gzip_sales:
        sales_path.write_bytes(gzip.compress(text.encode(), compresslevel=5))
    else:
        sales_path.write_text(text, encoding="utf-8")
    categories_path = out_dir / "categories.jsonl"
    with categories_path.open("w", encoding="utf-8") as handle:
        for item in sim.records:
            handle.write(json.dumps(item) + "\n")
    truth_path = out_dir / "truth.json"
    truth_path.write_text(json.dumps(sim.truth, indent=2) + "\n", encoding="utf-8")
    return {"sales": sales_path, "categories": categories_path, "truth": truth_path}


def misclassify_records(records: list[dict[str, Any]], classification: np.ndarray, seed: int) -> list[dict[str, Any]]:
    """The records with each classified photo's category redrawn as a classifier with this matrix would call it.

    ``classification[t - 1, j - 1]``: the chance that a photo of true category t is called j (rows sum to one).
    The mistakes do not depend on sales, as the misclassification correction assumes.
    """
    rng = np.random.default_rng(seed)
    out = []
    for item in records:
        category = item.get("category")
        if item.get("status") != "classified" or category is None:
            out.append(item)
            continue
        called = 1 + int(rng.choice(len(classification), p=classification[int(category) - 1]))
        out.append({**item, "category": called, "category_name": CATEGORY_NAMES[called]})
    return out
