"""What every section of the page is rendered from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from imagelift.influence.report import FitSummary, Report


@dataclass(frozen=True)
class Page:
    report: Report
    max_products: int = 60
    """Rows of the per-product table; the CSV has every product."""
    data_files: Mapping[str, str] = field(default_factory=dict)
    """``csv`` / ``json`` -> the file's name beside the page: links are relative, so they work in a local folder
    and under an S3 prefix alike."""

    @property
    def level(self) -> float:
        return self.report.confidence

    @cached_property
    def titles(self) -> dict[str, str]:
        """product_id -> the export's name for it, for the products the report has one for."""
        return {p.product_id: p.title for p in self.report.per_product if p.title}

    def product_name(self, product_id: str) -> str:
        """How the page names a product: its title and id when the export gave a title, else the id."""
        title = self.titles.get(product_id)
        return f"{title} ({product_id})" if title else product_id

    @property
    def headline(self) -> FitSummary:
        """The headline fit in the shape of the comparison fits, to sit in the same tables."""
        report = self.report
        return FitSummary(
            spec=report.spec.estimator,
            nobs=report.spec.nobs,
            effects=report.effects,
            price_elasticity=report.price_elasticity,
        )
