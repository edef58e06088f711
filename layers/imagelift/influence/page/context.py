"""What every section of the page is rendered from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
