"""``influence.html``: the report as a person reads it, on a phone or a desktop, as one self-contained file.

No network: the stylesheet, the charts (inline SVG) and a small script are in the file, and its only links are
relative ones to the data files written beside it. The page is :data:`SECTIONS` in order; a section is a function
``section_<what>(page: Page) -> str`` in a module of this package, and adding one is that function and a line in
:data:`SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from imagelift.influence.page.context import Page
from imagelift.influence.page.event_study import section_checks, section_event_study
from imagelift.influence.page.format import escape, span
from imagelift.influence.page.products import section_per_product
from imagelift.influence.page.sections import (
    section_assumptions,
    section_chart,
    section_concentration,
    section_counts,
    section_data_files,
    section_header,
    section_headline,
    section_identification,
    section_method,
    section_price_channels,
    section_robustness,
    section_summary,
    section_warnings,
)
from imagelift.influence.page.style import CSS, SCRIPT
from imagelift.influence.page.uncertainty import section_leave_one_out, section_misclassification, section_power
from imagelift.influence.report import Report

Section = Callable[[Page], str]

SECTIONS: tuple[Section, ...] = (
    section_header,
    section_headline,
    section_summary,
    section_warnings,
    section_data_files,
    section_chart,
    section_misclassification,
    section_identification,
    section_event_study,
    section_price_channels,
    section_concentration,
    section_leave_one_out,
    section_power,
    section_robustness,
    section_checks,
    section_assumptions,
    section_per_product,
    section_counts,
    section_method,
)


def render_page(report: Report, max_products: int = 60, data_files: Mapping[str, str] | None = None) -> bytes:
    page = Page(report=report, max_products=max_products, data_files=dict(data_files or {}))
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Photo influence report, {escape(span(report.period))}</title>",
        f"<style>{CSS}</style></head><body>",
        *(section(page) for section in SECTIONS),
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "".join(out).encode("utf-8")


__all__ = ["SECTIONS", "Page", "Section", "render_page"]
