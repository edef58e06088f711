"""Sections on how far the headline can be trusted: one product's pull, what the data could detect, and the
classifier's mistakes."""

from __future__ import annotations

import math

from imagelift.influence.page.context import Page
from imagelift.influence.page.format import effect_cell, escape, pct, table
from imagelift.influence.power import HEADLINE, power_sentence
from imagelift.influence.robust_intervals import leave_one_out_sentence
from imagelift.records.categories import CATEGORY_NAMES


def _value(category: int | None, value: float) -> str:
    if category is None:
        return f"{value:+.2f}"
    return pct(100 * math.expm1(value))


def section_leave_one_out(page: Page) -> str:
    """The headline re-estimated without each product in turn: does one product carry it?"""
    rows = page.report.leave_one_out
    if not rows:
        return ""
    head = (
        "<tr><th>Estimate</th><th>With every product</th><th>Lowest without one product</th>"
        "<th>Highest without one product</th><th>One product drives it</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(r.name)}</td><td class='n'>{_value(r.category, r.estimate)}</td>"
        f"<td class='n'>{_value(r.category, r.low)} <span class='muted'>(without {escape(r.low_without)})</span></td>"
        f"<td class='n'>{_value(r.category, r.high)} <span class='muted'>(without {escape(r.high_without)})</span>"
        f"</td><td>{'<strong>yes</strong>' if r.driven else 'no'}</td></tr>"
        for r in rows
    )
    sentences = "".join(f"<li>{escape(leave_one_out_sentence(r))}</li>" for r in rows if r.driven)
    return (
        "<h2>Without one product at a time</h2>"
        + table(head, body, "wide")
        + (f"<ul>{sentences}</ul>" if sentences else "")
        + "<p class='muted'>Each product is left out in turn and the estimate recomputed (the data name no seller "
        "above the product, so a product stands for its seller). &ldquo;Drives it&rdquo;: without that one product the "
        f"estimate would fall outside the {page.level:.0%} range. {escape(rows[0].method.capitalize())}.</p>"
    )


def section_power(page: Page) -> str:
    """The smallest lift each comparison could detect, and the data a target lift would need."""
    rows = page.report.power
    if not rows:
        return ""
    head = (
        "<tr><th>Comparison</th><th>Photo type</th><th>Smallest lift detected</th><th>Data now</th>"
        f"<th>Needed for {pct(rows[0].target_lift_pct, digits=0)}</th></tr>"
    )
    body = []
    for r in rows:
        comparison = (
            "listings of one product, same week (headline)"
            if r.comparison == HEADLINE
            else "each listing before and after a switch"
        )
        needed = (
            "n/a"
            if r.units_needed is None
            else "already enough"
            if r.units_needed <= r.units_now
            else (f"{r.units_needed:,}")
        )
        body.append(
            f"<tr><td>{escape(comparison)}</td><td>{escape(r.category_name)}</td>"
            f"<td class='n'>{pct(r.minimum_detectable_pct)}</td><td class='n'>{r.units_now:,} "
            f"<span class='muted'>{escape(r.units)}</span></td><td class='n'>{needed}</td></tr>"
        )
    sentences = "".join(f"<li>{escape(power_sentence(r))}</li>" for r in rows if r.comparison == HEADLINE)
    return (
        f"<h2>What these data could detect ({rows[0].power:.0%} power)</h2>"
        + table(head, "".join(body), "wide")
        + f"<ul>{sentences}</ul>"
        + "<p class='muted'>A lift smaller than the smallest detectable one may well be there and go unseen: a range "
        "that includes zero is not evidence of no effect. The data needed assume the standard error shrinks with the "
        "square root of the products (or switching listings) that carry the comparison.</p>"
    )


def section_misclassification(page: Page) -> str:
    """The effects as measured beside the effects corrected for the classifier's mistakes, and the matrix used."""
    section = page.report.misclassification
    if section is None:
        return ""
    measured = {e.category: e for e in page.report.effects}
    head = "<tr><th>Photo type</th><th>As labelled</th><th>Corrected for the classifier's mistakes</th></tr>"
    body = "".join(
        f"<tr><td>{escape(e.category_name)}</td>{effect_cell(measured.get(e.category))}{effect_cell(e)}</tr>"
        for e in section.effects
    )
    names = [CATEGORY_NAMES[c] for c in (1, 2, 3)]
    matrix_head = "<tr><th>true \\ called</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    matrix_body = "".join(
        f"<tr><th>{escape(name)}</th>" + "".join(f"<td class='n'>{v:,}</td>" for v in row) + "</tr>"
        for name, row in zip(names, section.matrix, strict=True)
    )
    note = f" {escape(section.note)}." if section.note else ""
    return (
        "<h2>Corrected for the classifier's mistakes</h2>"
        + table(head, body, "wide")
        + f"<p>Confusion matrix from {escape(section.source)}: {section.photos:,} photos, read from "
        f"<code>{escape(section.location)}</code>.</p>"
        + table(matrix_head, matrix_body)
        + f"<p class='muted'>{escape(section.method)}.{note}</p>"
    )
