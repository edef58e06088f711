"""The report page as a person reads it, parsed as a browser would (html.parser): the links to the data files
point at files that were written, the per-product table is sortable and names products by their titles, every
chart has a viewBox and text of at least 12 CSS px at the narrowest width it is drawn for, nothing is fetched.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from imagelift.config import ReportConfig
from imagelift.influence.outputs import render_html
from imagelift.influence.page.style import CSS, PAGE_PAD_PX, WIDE_FROM_PX, chart_gutter_px
from imagelift.influence.page.svg import MIN_TEXT_PX, PHONE_PX
from imagelift.influence.report import Report
from imagelift.influence.simulate import SimulationSpec, simulate, write_simulation
from imagelift.services.report_service import run_local

NAMES = ("Classic Leather Boot", "Trail Runner", "Suede Loafer", "Chelsea Boot", "Canvas High-Top")


def title_of(product_id: str) -> str:
    return f"{NAMES[int(product_id[1:]) % len(NAMES)]} no. {int(product_id[1:])}"


class Page(HTMLParser):
    """What the tests read off the page: links, sources, every attribute, the SVGs and the per-product table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.sources: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.svgs: list[dict] = []
        self.headers: list[dict] = []
        self.rows: list[list[dict]] = []
        self.filter_box: dict | None = None
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._svg: dict | None = None
        self._in: list[str] = []
        self._table = False
        self._cell: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in.append(tag)
        for name, value in attrs.items():
            self.attributes.append((tag, name, value or ""))
        if "href" in attrs:
            self.links.append(attrs["href"])
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if tag == "svg":
            self._svg = {"attrs": attrs, "font_sizes": [], "texts": [], "circles": []}
            self.svgs.append(self._svg)
        elif self._svg is not None and tag == "text":
            self._svg["font_sizes"].append(float(attrs["font-size"]))
        elif self._svg is not None and tag == "circle":
            self._svg["circles"].append(attrs)
        if tag == "table" and attrs.get("id") == "per-product":
            self._table = True
            self.table_attrs = attrs
        if self._table and tag == "th":
            self._cell = {"attrs": attrs, "text": ""}
            self.headers.append(self._cell)
        if self._table and tag == "tr" and "thead" not in self._in:
            self.rows.append([])
            self.row_attrs = attrs
        if self._table and tag == "td":
            self._cell = {"attrs": attrs, "text": ""}
            self.rows[-1].append(self._cell)
        if attrs.get("data-filter-for"):
            self.filter_box = attrs

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "svg":
            self._svg = None
        if tag == "table":
            self._table = False
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._svg is not None and self._in and self._in[-1] in ("text", "title"):
            self._svg["texts"].append(data)
        if self._cell is not None:
            self._cell["text"] += data
        if self._in and self._in[-1] == "script":
            self.scripts.append(data)
        if self._in and self._in[-1] == "style":
            self.styles.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """``imagelift report`` on a simulated export that carries a title column, as Shopify's and Amazon's do."""
    sim = simulate(SimulationSpec(products=60, weeks=20, seed=5))
    inputs = tmp_path_factory.mktemp("inputs")
    paths = write_simulation(sim, inputs)
    sales = sim.sales.assign(title=sim.sales["product_id"].map(title_of))
    sales.to_csv(paths["sales"], index=False)
    out = tmp_path_factory.mktemp("report")
    run_local([paths["sales"]], paths["categories"], out, ReportConfig(controls="promo"))
    return out


@pytest.fixture(scope="module")
def page(written) -> Page:
    return Page((written / "influence.html").read_text(encoding="utf-8"))


def test_the_page_links_the_csv_and_json_written_beside_it(written, page):
    assert sorted(set(page.links)) == ["influence.csv", "influence.json"]
    for link in page.links:
        assert (written / link).is_file()  # relative: the same name works in a folder and under an S3 prefix
    report = json.loads((written / "influence.json").read_text())
    rows = list(csv.DictReader(io.StringIO((written / "influence.csv").read_text())))
    # the page says the CSV has every product, and it does
    assert sum(r["section"] == "per_product" for r in rows) == len(report["per_product"]) > len(page.rows) > 0


def test_nothing_on_the_page_is_fetched_from_anywhere(page):
    assert page.sources == []
    for tag, name, value in page.attributes:
        if name == "xmlns":  # a namespace name, never fetched
            continue
        assert "://" not in value and not value.startswith("//"), (tag, name, value)
    style, script = "".join(page.styles), "".join(page.scripts)
    assert style and "url(" not in style and "@import" not in style
    assert script and not re.search(r"fetch|XMLHttpRequest|import\(|\.src\s*=", script)


def test_the_per_product_table_sorts_and_filters_and_names_products_by_title(written, page):
    report = Report.from_json((written / "influence.json").read_text())
    assert "data-sortable" in page.table_attrs
    sortable = [h for h in page.headers if h["attrs"].get("data-sort")]
    assert [h["text"].strip() for h in sortable][:3] == ["Product", "Photo type", "Own estimate"]
    assert len(sortable) >= 6 and {h["attrs"]["data-sort"] for h in sortable} == {"text", "num"}
    # printed largest first, which is the order the table reads in with scripts off
    weeks = [int(row[-1]["attrs"]["data-value"]) for row in page.rows]
    assert weeks == sorted(weeks, reverse=True)
    numeric = [i for i, h in enumerate(page.headers) if h["attrs"].get("data-sort") == "num"]
    for row in page.rows:
        for i in numeric:
            value = row[i]["attrs"]["data-value"]
            assert value == "" or float(value) == float(value)
    by_id = {p.product_id: p for p in report.per_product}
    for row in page.rows:
        product = row[0]
        product_id = product["text"].removeprefix(product["attrs"]["data-value"])
        assert by_id[product_id].title == title_of(product_id) == product["attrs"]["data-value"]
    # the filter box needs the script, so it is hidden until the script shows it
    assert page.filter_box is not None and "hidden" in page.filter_box
    assert page.filter_box["data-filter-for"] == "per-product"


def test_every_chart_has_a_viewbox_and_text_of_12_px_or_more_where_it_is_shown(page):
    charts = [svg for svg in page.svgs if svg["font_sizes"]]
    layouts = [svg["attrs"]["class"] for svg in charts]
    assert layouts.count("chart-wide") == layouts.count("chart-narrow") >= 2  # effects and identification
    narrowest = {"chart-narrow": PHONE_PX - 2 * chart_gutter_px("narrow")}
    narrowest["chart-wide"] = WIDE_FROM_PX - 2 * chart_gutter_px("wide")
    for svg in page.svgs:
        # html.parser lower-cases attribute names, as an HTML parser does before it restores SVG's viewBox
        _, _, width, height = (float(v) for v in svg["attrs"]["viewbox"].split())
        assert width > 0 and height > 0
        if not svg["font_sizes"]:
            continue
        shown_from = float(svg["attrs"]["data-min-width"])
        assert shown_from == narrowest[svg["attrs"]["class"]]
        assert min(svg["font_sizes"]) * shown_from / width >= MIN_TEXT_PX
    # the stylesheet switches drawings at the width the charts were sized for
    assert f"@media (max-width:{WIDE_FROM_PX - 0.02:.2f}px)" in CSS
    assert f"body{{padding:0 {PAGE_PAD_PX['narrow']}px" in CSS  # the narrow page padding the sizes assume


def test_the_two_identifications_are_drawn_side_by_side(page):
    drawn = [svg for svg in page.svgs if "two comparisons" in svg["attrs"].get("aria-label", "")]
    assert len(drawn) == 2  # the wide and the narrow drawing
    for svg in drawn:
        texts = " ".join(svg["texts"])
        assert "Model: between listings" in texts and "Model: within a listing" in texts
        assert "Worn: between listings" in texts and "Worn: within a listing" in texts
        fills = [c["fill"] for c in svg["circles"]]
        assert fills.count("#ffffff") == 2 and len(fills) == 4  # the within-listing estimates are open circles


def test_a_report_written_before_titles_still_loads_and_shows_ids(written):
    data = json.loads((written / "influence.json").read_text())
    for entry in data["per_product"]:
        del entry["title"]
    report = Report.from_dict(data)
    assert report.per_product and all(p.title is None for p in report.per_product)
    old = Page(render_html(report).decode())
    assert old.rows and all(row[0]["text"] == row[0]["attrs"]["data-value"] for row in old.rows)
    assert all(re.fullmatch(r"P\d{5}", row[0]["text"]) for row in old.rows)


def test_the_csv_carries_the_titles(written):
    rows = [r for r in csv.DictReader(io.StringIO((written / "influence.csv").read_text())) if r["product_id"]]
    assert rows and all(r["title"] == title_of(r["product_id"]) for r in rows)


def test_a_range_with_almost_no_data_is_cut_at_the_axis_and_marked(written):
    data = json.loads((written / "influence.json").read_text())
    within = data["within_listing"]["effects"][0]
    within["effect_pct"], within["effect_pct_ci"] = 4.0e6, [-99.9, 2.2e24]  # a fit from a handful of switches
    drawn = Page(render_html(Report.from_dict(data)).decode())
    charts = [svg for svg in drawn.svgs if "two comparisons" in svg["attrs"].get("aria-label", "")]
    for svg in charts:
        _, _, width, _ = (float(v) for v in svg["attrs"]["viewbox"].split())
        assert all(0 <= float(c["cx"]) <= width for c in svg["circles"])
        assert "range continues to >+10,000%" in svg["texts"]
