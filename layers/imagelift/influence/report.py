"""The weekly influence report as typed values, and the one place its ``influence.json`` shape is written.

Every consumer (the service, the command line, the renderers, the benchmark) reads these attributes; only
:meth:`Report.to_dict` and :meth:`Report.from_dict` know the JSON keys. :class:`ReportSummary` is the short form
of a report: the InfluenceReports item, the scheduled function's return value and the command line's headline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Interval = tuple[float | None, float | None]

_NUMBERS = ("estimate", "std_err", "ci_low", "ci_high", "p_value", "effect_pct")


def _interval(value: Sequence[float | None] | None) -> Interval | None:
    return None if value is None else (value[0], value[1])


@dataclass(frozen=True)
class Effect:
    """One estimated coefficient: a category against the base, or the price elasticity (``category`` None).

    When the number could not be estimated every figure is None and ``note`` says why.
    """

    category: int | None
    category_name: str | None
    estimate: float | None = None
    std_err: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    effect_pct: float | None = None
    effect_pct_ci: Interval | None = None
    note: str | None = None
    n_rows: int | None = None
    """Listing-weeks with this category (headline effects only)."""
    varying_products: int | None = None
    """Products in which this category varies, the source of identification (headline effects only)."""
    effect_basis: str | None = None
    """What ``effect_pct`` measures when it is not the lift of a category (the elasticity)."""
    probability_above_zero: float | None = None
    """Normal approximation on the estimate and its standard error, Phi(estimate / std_err): how sure the data
    make us that the effect is positive, treating the estimate's sampling distribution as the uncertainty. When the
    report's interval is the wild bootstrap's (see ``Concentration``), it is the bootstrap's one-sided counterpart."""

    @property
    def estimated(self) -> bool:
        return self.effect_pct is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.category is not None:
            out["category"] = self.category
            out["category_name"] = self.category_name
        for key in _NUMBERS:
            out[key] = getattr(self, key)
        out["effect_pct_ci"] = None if self.effect_pct_ci is None else list(self.effect_pct_ci)
        for key in ("note", "effect_basis", "n_rows", "varying_products", "probability_above_zero"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Effect:
        return cls(
            category=data.get("category"),
            category_name=data.get("category_name"),
            **{key: data.get(key) for key in _NUMBERS},
            effect_pct_ci=_interval(data.get("effect_pct_ci")),
            note=data.get("note"),
            n_rows=data.get("n_rows"),
            varying_products=data.get("varying_products"),
            effect_basis=data.get("effect_basis"),
            probability_above_zero=data.get("probability_above_zero"),
        )


@dataclass(frozen=True)
class PerProductEffect:
    product_id: str
    category: int
    category_name: str
    effect_pct: float
    """The product's own (raw) estimate: noisy, read it with ``shrunk_effect_pct``."""
    effect_pct_ci: tuple[float, float]
    n: int
    """Listing-weeks of the product in this category and the base together."""
    estimate: float | None = None
    """The raw estimate in log points."""
    std_err: float | None = None
    p_value: float | None = None
    """Two-sided, normal approximation, against no effect."""
    q_value: float | None = None
    """Benjamini-Hochberg adjusted p-value within the category (false-discovery rate)."""
    discovery: bool = False
    """``q_value`` is at or below the report's false-discovery rate."""
    shrunk_effect_pct: float | None = None
    """Empirical-Bayes estimate: the raw one pulled towards the catalogue mean, more so the noisier it is."""
    shrunk_effect_pct_ci: tuple[float, float] | None = None
    title: str | None = None
    """The product's name in the sales export, when the export has one (reports written before it have none)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "category": self.category,
            "category_name": self.category_name,
            "effect_pct": self.effect_pct,
            "effect_pct_ci": list(self.effect_pct_ci),
            "n": self.n,
            "estimate": self.estimate,
            "std_err": self.std_err,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "discovery": self.discovery,
            "shrunk_effect_pct": self.shrunk_effect_pct,
            "shrunk_effect_pct_ci": None if self.shrunk_effect_pct_ci is None else list(self.shrunk_effect_pct_ci),
            "title": self.title,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerProductEffect:
        return cls(
            product_id=data["product_id"],
            category=data["category"],
            category_name=data["category_name"],
            effect_pct=data["effect_pct"],
            effect_pct_ci=tuple(data["effect_pct_ci"]),
            n=data["n"],
            estimate=data.get("estimate"),
            std_err=data.get("std_err"),
            p_value=data.get("p_value"),
            q_value=data.get("q_value"),
            discovery=bool(data.get("discovery", False)),
            shrunk_effect_pct=data.get("shrunk_effect_pct"),
            shrunk_effect_pct_ci=_interval(data.get("shrunk_effect_pct_ci")),
            title=data.get("title"),
        )


@dataclass(frozen=True)
class Shrinkage:
    """How much the per-product effects of one category really differ, and how far they were shrunk."""

    category: int
    category_name: str
    products: int
    tau: float
    """Estimated SD of the true per-product effects (log points), net of their sampling noise (REML)."""
    mean: float
    """Precision-weighted mean of the per-product effects (log points): what each is shrunk towards."""
    mean_std_err: float
    fdr: float
    """The false-discovery rate of the ``discovery`` flags."""
    discoveries: int
    """Products whose effect differs from zero at that false-discovery rate."""
    nominal_significant: int
    """Products with p < 1 - confidence before the correction: many are expected by chance alone."""

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shrinkage:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Identification:
    """Where one category's effect comes from, and whether the two ways of estimating it agree.

    The headline compares listings of one product in the same week (product + week effects); the within-listing
    fit compares each listing with itself before and after a photo switch (listing + week effects), so a listing
    that simply sells better cannot pass for the photo's effect there.
    """

    category: int
    category_name: str
    listings: int
    """Listings that ever show this category."""
    listings_switching: int
    """Listings that show this category in some weeks and another in others: the within-listing comparisons."""
    products_varying: int
    """Products whose listings differ in this category at some point: the headline's comparisons."""
    weight_within_listing: float | None = None
    """Share of the category's variation within products, weighted by the headline's Poisson weights, that comes
    from switches within a listing (the rest comes from comparing different listings of one product)."""
    difference: float | None = None
    """Headline minus within-listing estimate, log points."""
    difference_std_err: float | None = None
    """Clustered standard error of the difference, both fits' influences on the same products combined."""
    disagrees: bool = False
    """The difference exceeds its two-sided interval at the report's confidence."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "category_name": self.category_name,
            "listings": self.listings,
            "listings_switching": self.listings_switching,
            "products_varying": self.products_varying,
            "weight_within_listing": self.weight_within_listing,
            "difference": self.difference,
            "difference_std_err": self.difference_std_err,
            "disagrees": self.disagrees,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identification:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Concentration:
    """How evenly the products share the Poisson weight behind one headline coefficient, and which interval is used."""

    category: int | None
    """None for the price elasticity."""
    name: str
    effective_products: float
    """1 / sum of squared weight shares: the number of equally weighted products that would carry as much."""
    top_products: tuple[str, ...]
    top_share: float
    """Share of the weight carried by ``top_products``."""
    interval: str
    """``CRV1`` or ``CR3`` (leave-one-product-out jackknife), by the rule in ``rule``."""
    rule: str
    crv1_std_err: float | None = None
    cr3_std_err: float | None = None
    bootstrap_ci: Interval | None = None
    """The wild restricted score bootstrap's interval (log points; an end is None when no value was rejected)."""
    bootstrap_p_value: float | None = None
    """The bootstrap's p-value of no effect."""
    bootstrap_draws: int | None = None
    bootstrap_probability_above_zero: float | None = None
    """The bootstrap's one-sided counterpart of ``Effect.probability_above_zero``."""

    def to_dict(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in self.__dataclass_fields__}
        out["top_products"] = list(self.top_products)
        out["bootstrap_ci"] = _list(self.bootstrap_ci)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Concentration:
        return cls(
            **{
                **{key: data.get(key) for key in cls.__dataclass_fields__},
                "top_products": tuple(data["top_products"]),
                "bootstrap_ci": _interval(data.get("bootstrap_ci")),
            }
        )


@dataclass(frozen=True)
class LeaveOneOut:
    """The headline coefficient re-estimated without each product in turn: its range, and whether one product drives it.

    The data carry no seller above the product (keys and exports name products and listings only), so each
    product stands for its seller.
    """

    category: int | None
    """None for the price elasticity."""
    name: str
    products: int
    """Products left out in turn."""
    estimate: float
    """The headline estimate with every product (log points)."""
    low: float
    """Smallest estimate with one product left out (log points)."""
    low_without: str
    """The product whose removal gives ``low``."""
    high: float
    high_without: str
    driven: bool
    """Leaving one product out moves the estimate outside the headline's interval."""
    method: str
    """How each estimate without a product was had (a one-step update of the converged fit)."""

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeaveOneOut:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Power:
    """What one comparison could detect at this data size, and how much more data a given lift would need."""

    comparison: str
    """``headline`` (listings of one product compared in the same week) or ``within_listing`` (photo switches)."""
    category: int
    category_name: str
    std_err: float | None
    """The standard error the power rests on (log points), from the interval the report uses."""
    minimum_detectable_pct: float | None
    """The smallest lift (percent) the comparison detects with ``power`` at the report's confidence (two-sided)."""
    power: float
    units: str
    """What the data size is counted in: ``products with varying photos`` or ``listings that switch``."""
    units_now: int
    target_lift_pct: float
    units_needed: int | None
    """How many such units the target lift needs (the standard error shrinking with their square root)."""

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Power:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Misclassification:
    """The category effects corrected for the classifier's mistakes, beside the measured ones (``Report.effects``)."""

    source: str
    """Where the confusion matrix came from: labelled photos, or photos people corrected."""
    location: str
    """The file or key it was read from."""
    photos: int
    """Photos the matrix was counted on."""
    matrix: tuple[tuple[int, ...], ...]
    """Counts: rows the true category 1-3, columns the classifier's 1-3."""
    effects: tuple[Effect, ...]
    """Per effect category, the corrected lift (an empty one with a note where no correction exists)."""
    method: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "location": self.location,
            "photos": self.photos,
            "matrix": [list(row) for row in self.matrix],
            "effects": [e.to_dict() for e in self.effects],
            "method": self.method,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Misclassification:
        return cls(
            source=data["source"],
            location=data["location"],
            photos=data["photos"],
            matrix=tuple(tuple(row) for row in data["matrix"]),
            effects=tuple(Effect.from_dict(e) for e in data["effects"]),
            method=data["method"],
            note=data.get("note"),
        )


@dataclass(frozen=True)
class EventBin:
    """One relative week of an event study: the listings' sales against what they would have sold without a switch.

    ``relative_week`` counts weeks from the switch (0 = the first week with the new photo); the end bins hold
    every week at or beyond them. Before the switch (leads) nothing has changed yet, so the estimate should be
    near zero; a trend there says the switch followed the sales, not the other way round.
    """

    relative_week: int
    label: str
    estimate: float | None
    """Log ratio of actual to counterfactual units (log points)."""
    std_err: float | None
    ci_low: float | None
    ci_high: float | None
    effect_pct: float | None
    listings: int
    listing_weeks: int

    @property
    def lead(self) -> bool:
        return self.relative_week < 0

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventBin:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EventStudy:
    """Sales of listings around their first switch from the base photo type to ``category``, week by week."""

    category: int
    category_name: str
    estimator: str
    """How the counterfactual is built, and its controls."""
    switches: int
    """Listings whose first photo switch goes from the base photo type to this one."""
    products: int
    """Products of those listings: the clusters of the standard errors."""
    bins: tuple[EventBin, ...] = ()
    after: Effect | None = None
    """All weeks from the switch on, pooled (weighted by counterfactual sales)."""
    early: Effect | None = None
    """The first weeks after the switch, pooled."""
    late: Effect | None = None
    """The weeks long after the switch, pooled."""
    growth: Effect | None = None
    """``late`` minus ``early`` (log points): positive when the effect builds up, negative when it fades."""
    pretrend_statistic: float | None = None
    """Hotelling F statistic (clustered Wald, small-sample form) of the joint test that the leads (pooled in three
    groups, the week before the switch left out) are zero."""
    pretrend_df: int | None = None
    pretrend_p_value: float | None = None
    note: str | None = None
    """Why there is no estimate, when there is none."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            key: getattr(self, key)
            for key in (
                "category",
                "category_name",
                "estimator",
                "switches",
                "products",
                "pretrend_statistic",
                "pretrend_df",
                "pretrend_p_value",
                "note",
            )
        }
        out["bins"] = [b.to_dict() for b in self.bins]
        for key in ("after", "early", "late", "growth"):
            value = getattr(self, key)
            out[key] = None if value is None else value.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventStudy:
        def effect(key: str) -> Effect | None:
            return Effect.from_dict(data[key]) if data.get(key) else None

        return cls(
            category=data["category"],
            category_name=data["category_name"],
            estimator=data.get("estimator", ""),
            switches=data.get("switches", 0),
            products=data.get("products", 0),
            bins=tuple(EventBin.from_dict(b) for b in data.get("bins", ())),
            after=effect("after"),
            early=effect("early"),
            late=effect("late"),
            growth=effect("growth"),
            pretrend_statistic=data.get("pretrend_statistic"),
            pretrend_df=data.get("pretrend_df"),
            pretrend_p_value=data.get("pretrend_p_value"),
            note=data.get("note"),
        )


@dataclass(frozen=True)
class ThreatCheck:
    """One check of the headline against a way it could be wrong, for one number (a photo effect or the elasticity).

    ``moved`` is set when the check's figure differs from the reference by more than the difference's interval at
    the report's confidence; ``sentence`` then says so in plain words (and is among the report's warnings).
    """

    check: str
    """``donut``, ``placebo_leads``, ``dynamic_profile`` or ``product_season``."""
    question: str
    """The threat, in words."""
    quantity: str
    """What is compared, e.g. ``model effect``."""
    reference: float | None = None
    """The figure checked (log points, or the elasticity)."""
    value: float | None = None
    """The same figure under the check."""
    difference: float | None = None
    std_err: float | None = None
    """Of the difference (or the test's scale)."""
    p_value: float | None = None
    moved: bool = False
    sentence: str | None = None
    note: str | None = None
    """Why the check could not be made, when it could not."""

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThreatCheck:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Period:
    first_week: str | None
    """None when no week of sales could be used."""
    last_week: str | None

    def to_dict(self) -> dict[str, str]:
        return {"from": self.first_week, "to": self.last_week}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Period:
        return cls(first_week=data["from"], last_week=data["to"])


@dataclass(frozen=True)
class RecordCounts:
    read: int
    used: int
    excluded: dict[str, int]
    corrected: int = 0
    """Used records whose category is a person's correction (``imagelift correct``), not the classifier's."""

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "used": self.used, "excluded": dict(self.excluded), "corrected": self.corrected}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordCounts:
        return cls(
            read=data["read"], used=data["used"], excluded=dict(data["excluded"]), corrected=data.get("corrected", 0)
        )


@dataclass(frozen=True)
class Counts:
    rows: int
    """Sales rows read from every file."""
    rows_used: int
    rows_rejected: dict[str, int]
    """Rejected rows by reason (validation and join reasons alike)."""
    rejected_examples: dict[str, list[str]]
    products: int
    listings: int
    weeks: int
    listing_weeks_by_category: dict[str, int]
    records: RecordCounts
    files: tuple[str, ...]
    rows_superseded: int = 0
    """Rows a newer file also covered: not used, not rejected (rows = used + rejected + superseded)."""
    superseded_examples: tuple[str, ...] = ()
    files_failed: dict[str, str] = field(default_factory=dict)
    """Files that could not be read, with the reason (the others were used)."""
    listing_weeks: int = 0
    """Listing-weeks analysed (several daily rows make one)."""
    rows_filled: int = 0
    """Zero-sale listing-weeks added because the exports left them out (``fill_zeros``)."""
    aggregation: str = ""
    """How rows became listing-weeks and prices."""
    reading: tuple[str, ...] = ()
    """Per file: layout, date format, decimal mark, week convention, encoding notes."""

    @property
    def rows_rejected_total(self) -> int:
        return sum(self.rows_rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rows_used": self.rows_used,
            "rows_rejected": dict(self.rows_rejected),
            "rows_rejected_total": self.rows_rejected_total,
            "rejected_examples": {k: list(v) for k, v in self.rejected_examples.items()},
            "products": self.products,
            "listings": self.listings,
            "weeks": self.weeks,
            "listing_weeks_by_category": dict(self.listing_weeks_by_category),
            "records": self.records.to_dict(),
            "files": list(self.files),
            "rows_superseded": self.rows_superseded,
            "superseded_examples": list(self.superseded_examples),
            "files_failed": dict(self.files_failed),
            "listing_weeks": self.listing_weeks,
            "rows_filled": self.rows_filled,
            "aggregation": self.aggregation,
            "reading": list(self.reading),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        return cls(
            rows=data["rows"],
            rows_used=data["rows_used"],
            rows_rejected=dict(data["rows_rejected"]),
            rejected_examples={k: list(v) for k, v in data.get("rejected_examples", {}).items()},
            products=data["products"],
            listings=data["listings"],
            weeks=data["weeks"],
            listing_weeks_by_category=dict(data["listing_weeks_by_category"]),
            records=RecordCounts.from_dict(data["records"]),
            files=tuple(data.get("files", ())),
            rows_superseded=data.get("rows_superseded", 0),
            superseded_examples=tuple(data.get("superseded_examples", ())),
            files_failed=dict(data.get("files_failed", {})),
            listing_weeks=data.get("listing_weeks", 0),
            rows_filled=data.get("rows_filled", 0),
            aggregation=data.get("aggregation", ""),
            reading=tuple(data.get("reading", ())),
        )


@dataclass(frozen=True)
class Spec:
    """How the headline was estimated, in words a reviewer can check, and the size of its fit."""

    estimator: str
    formula: str
    base_category: str
    fixed_effects: tuple[str, ...]
    std_err: str
    confidence: float
    controls: tuple[str, ...]
    effect_pct: str
    week_assignment: str
    nobs: int
    clusters: int
    iterations: int
    dropped: dict[str, int]
    listing_category: str = ""
    """Which photos gave each listing-week its category (ReportConfig.listing_category: ``main`` or ``any_model``);
    empty in a report written before the rule was recorded, when the newest live photo counted."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "formula": self.formula,
            "base_category": self.base_category,
            "fixed_effects": list(self.fixed_effects),
            "std_err": self.std_err,
            "confidence": self.confidence,
            "controls": list(self.controls),
            "effect_pct": self.effect_pct,
            "week_assignment": self.week_assignment,
            "nobs": self.nobs,
            "clusters": self.clusters,
            "iterations": self.iterations,
            "dropped": dict(self.dropped),
            "listing_category": self.listing_category,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spec:
        return cls(
            **{
                **data,
                "fixed_effects": tuple(data["fixed_effects"]),
                "controls": tuple(data["controls"]),
                "dropped": dict(data["dropped"]),
            }
        )


@dataclass(frozen=True)
class FitSummary:
    """A comparison fit beside the headline: what it is, its size, its category effects and elasticity."""

    spec: str
    nobs: int
    effects: tuple[Effect, ...]
    price_elasticity: Effect

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "nobs": self.nobs,
            "effects": [e.to_dict() for e in self.effects],
            "price_elasticity": self.price_elasticity.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitSummary:
        return cls(
            spec=data["spec"],
            nobs=data["nobs"],
            effects=tuple(Effect.from_dict(e) for e in data["effects"]),
            price_elasticity=Effect.from_dict(data["price_elasticity"]),
        )


@dataclass(frozen=True)
class Report:
    generated_at: str
    """ISO 8601 UTC, to the second."""
    period: Period
    counts: Counts
    spec: Spec
    effects: tuple[Effect, ...]
    """The headline: one per effect category, against the base."""
    price_elasticity: Effect
    price_effects: tuple[Effect, ...]
    """The price premium each category carries (same design, log(price) as the outcome)."""
    per_product: tuple[PerProductEffect, ...]
    log_units_check: FitSummary
    """OLS of log(units), weeks with sales only: the robustness check."""
    pooled: FitSummary
    """Pooled OLS without fixed effects, the first version's method, for comparison."""
    warnings: tuple[str, ...] = field(default=())
    within_listing: FitSummary | None = None
    """PPML with listing + week effects: identified only by photo switches within a listing."""
    identification: tuple[Identification, ...] = ()
    """Per effect category: where the headline's comparisons come from and the within-listing comparison."""
    shrinkage: tuple[Shrinkage, ...] = ()
    """Per effect category with per-product effects: their spread and the shrinkage applied."""
    units_with_price: tuple[Effect, ...] = ()
    """Per effect category: the effect on units once the photo's price premium is passed through the elasticity
    (the headline holds price fixed)."""
    revenue_effects: tuple[Effect, ...] = ()
    """Per effect category: the effect on revenue, units with the price channel plus the premium itself."""
    concentration: tuple[Concentration, ...] = ()
    """Per headline coefficient: effective number of products, the top products' share, the interval used."""
    event_study: tuple[EventStudy, ...] = ()
    """Per effect category: sales around listings' switches to it, week by week, and the pre-trend test."""
    checks: tuple[ThreatCheck, ...] = ()
    """The threat checks (promotions at switches, reverse causality, growing effects, seasons), one per number."""
    leave_one_out: tuple[LeaveOneOut, ...] = ()
    """Per headline coefficient: its range when one product at a time is left out."""
    power: tuple[Power, ...] = ()
    """Per comparison and effect category: the minimum detectable lift and the data a target lift needs."""
    misclassification: Misclassification | None = None
    """The effects corrected for the classifier's mistakes, when the report was given its confusion matrix."""

    @property
    def confidence(self) -> float:
        return self.spec.confidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "period": self.period.to_dict(),
            "counts": self.counts.to_dict(),
            "spec": self.spec.to_dict(),
            "effects": [e.to_dict() for e in self.effects],
            "price_elasticity": self.price_elasticity.to_dict(),
            "price_effects": [e.to_dict() for e in self.price_effects],
            "per_product": [p.to_dict() for p in self.per_product],
            "robustness": {"ols_log_units": self.log_units_check.to_dict()},
            "pooled": self.pooled.to_dict(),
            "within_listing": None if self.within_listing is None else self.within_listing.to_dict(),
            "identification": [i.to_dict() for i in self.identification],
            "shrinkage": [s.to_dict() for s in self.shrinkage],
            "units_with_price": [e.to_dict() for e in self.units_with_price],
            "revenue_effects": [e.to_dict() for e in self.revenue_effects],
            "concentration": [c.to_dict() for c in self.concentration],
            "event_study": [e.to_dict() for e in self.event_study],
            "checks": [c.to_dict() for c in self.checks],
            "leave_one_out": [c.to_dict() for c in self.leave_one_out],
            "power": [p.to_dict() for p in self.power],
            "misclassification": None if self.misclassification is None else self.misclassification.to_dict(),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> bytes:
        """Strict JSON (no NaN), the top level indented for people and each entry on one line.

        json's C encoder only runs without indent, and the per-product list can hold tens of thousands of entries.
        """
        parts = [
            f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False, ensure_ascii=False)}"
            for key, value in self.to_dict().items()
        ]
        return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        return cls(
            generated_at=data["generated_at"],
            period=Period.from_dict(data["period"]),
            counts=Counts.from_dict(data["counts"]),
            spec=Spec.from_dict(data["spec"]),
            effects=tuple(Effect.from_dict(e) for e in data["effects"]),
            price_elasticity=Effect.from_dict(data["price_elasticity"]),
            price_effects=tuple(Effect.from_dict(e) for e in data["price_effects"]),
            per_product=tuple(PerProductEffect.from_dict(p) for p in data["per_product"]),
            log_units_check=FitSummary.from_dict(data["robustness"]["ols_log_units"]),
            pooled=FitSummary.from_dict(data["pooled"]),
            warnings=tuple(data["warnings"]),
            within_listing=FitSummary.from_dict(data["within_listing"]) if data.get("within_listing") else None,
            identification=tuple(Identification.from_dict(i) for i in data.get("identification", ())),
            shrinkage=tuple(Shrinkage.from_dict(s) for s in data.get("shrinkage", ())),
            units_with_price=tuple(Effect.from_dict(e) for e in data.get("units_with_price", ())),
            revenue_effects=tuple(Effect.from_dict(e) for e in data.get("revenue_effects", ())),
            concentration=tuple(Concentration.from_dict(c) for c in data.get("concentration", ())),
            event_study=tuple(EventStudy.from_dict(e) for e in data.get("event_study", ())),
            checks=tuple(ThreatCheck.from_dict(c) for c in data.get("checks", ())),
            leave_one_out=tuple(LeaveOneOut.from_dict(c) for c in data.get("leave_one_out", ())),
            power=tuple(Power.from_dict(p) for p in data.get("power", ())),
            misclassification=(
                Misclassification.from_dict(data["misclassification"]) if data.get("misclassification") else None
            ),
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Report:
        return cls.from_dict(json.loads(data))


@dataclass(frozen=True)
class ReportSummary:
    """A report in a few numbers: the InfluenceReports item, the scheduled run's result and the CLI headline."""

    generated_at: str
    period: Period
    rows: int
    rows_used: int
    rows_rejected: dict[str, int]
    products: int
    listings: int
    confidence: float
    effects: tuple[Effect, ...]
    price_elasticity: Effect
    price_effects: tuple[Effect, ...]
    warnings: tuple[str, ...]
    bootstrapped: tuple[int | None, ...] = ()
    """Categories whose range and chance above zero come from the wild bootstrap (None: the elasticity)."""

    @classmethod
    def of(cls, report: Report) -> ReportSummary:
        counts = report.counts
        return cls(
            generated_at=report.generated_at,
            period=report.period,
            rows=counts.rows,
            rows_used=counts.rows_used,
            rows_rejected=dict(counts.rows_rejected),
            products=counts.products,
            listings=counts.listings,
            confidence=report.confidence,
            effects=report.effects,
            price_elasticity=report.price_elasticity,
            price_effects=report.price_effects,
            warnings=report.warnings,
            bootstrapped=tuple(c.category for c in report.concentration if c.interval == "wild bootstrap"),
        )

    @property
    def rows_rejected_total(self) -> int:
        return sum(self.rows_rejected.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: what the scheduled function returns (and logs)."""
        return {
            "generated_at": self.generated_at,
            "period": self.period.to_dict(),
            "rows": self.rows,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected_total,
            "rows_rejected_by_reason": dict(self.rows_rejected),
            "products": self.products,
            "listings": self.listings,
            "effects": {e.category_name: e.effect_pct for e in self.effects},
            "effects_ci": {e.category_name: _list(e.effect_pct_ci) for e in self.effects},
            "price_elasticity": self.price_elasticity.estimate,
            "warnings": list(self.warnings),
        }

    def to_item(self, report_date: str, files: Mapping[str, str]) -> dict[str, Any]:
        """The InfluenceReports row: enough to list and compare weeks without opening the files (no None values)."""
        item: dict[str, Any] = {
            "report_date": report_date,
            "generated_at": self.generated_at,
            "period_from": self.period.first_week,
            "period_to": self.period.last_week,
            "rows": self.rows,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected_total,
            "products": self.products,
            "listings": self.listings,
            "warnings": len(self.warnings),
            "files": dict(files),
        }
        for effect in self.effects:
            item[f"{effect.category_name}_effect_pct"] = effect.effect_pct
            item[f"{effect.category_name}_effect_pct_ci"] = _list(effect.effect_pct_ci)
        item["price_elasticity"] = self.price_elasticity.estimate
        return {k: v for k, v in item.items() if v is not None}

    def _chance_basis(self, effect: Effect) -> str:
        """Where an effect's chance above zero comes from: the wild bootstrap when it gives the range."""
        return "wild bootstrap" if effect.category in self.bootstrapped else "normal approximation"

    def headline(self) -> str:
        """The lines the command line prints."""
        level = f"{self.confidence:.0%}"
        span = (
            f"period {self.period.first_week} to {self.period.last_week}"
            if self.period.first_week
            else "no usable weeks"
        )
        lines = [
            f"{span}: {self.rows_used:,} of {self.rows:,} rows used, {self.products:,} products, {self.listings:,} listings"
        ]
        if self.rows_rejected:
            lines.append("rejected: " + ", ".join(f"{k} {v}" for k, v in self.rows_rejected.items()))
        for e in self.effects:
            if not e.estimated:
                lines.append(f"{e.category_name}: no estimate ({e.note or ''})")
            else:
                lo, hi = e.effect_pct_ci
                chance = (
                    ""
                    if e.probability_above_zero is None
                    else f", chance above zero {e.probability_above_zero:.0%} ({self._chance_basis(e)})"
                )
                lines.append(
                    f"{e.category_name} vs product: {e.effect_pct:+.1f}% units ({level} CI {lo:+.1f}% to {hi:+.1f}%)"
                    + chance
                )
        el = self.price_elasticity
        if el.estimate is not None:
            lines.append(f"price elasticity {el.estimate:.2f} ({level} CI {el.ci_low:.2f} to {el.ci_high:.2f})")
        for e in self.price_effects:
            if e.estimated:
                lo, hi = e.effect_pct_ci
                lines.append(f"{e.category_name} price premium {e.effect_pct:+.1f}% ({lo:+.1f}% to {hi:+.1f}%)")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def listings_that_switch(n: int) -> str:
    """The start of a note on too few switching listings: "no listing switches", "only 1 listing switches",
    "only 2 listings switch" (the verb agrees with the count)."""
    if n == 0:
        return "no listing switches"
    return f"only {n:,} listing switches" if n == 1 else f"only {n:,} listings switch"


def _list(interval: Interval | None) -> list[float | None] | None:
    return None if interval is None else list(interval)
