"""The report page in a real browser (headless Chromium, skipped where it is not installed), at a phone's 390 CSS px
and a desktop's 1280: every text it shows, in the charts and around them, is at least 12 px; the page itself never
scrolls sideways (wide tables scroll in their own box); the per-product table sorts and filters with its script.

Headless Chromium will not make a window narrower than 500 px, so the page is opened in an iframe of the width
under test (its media queries see the iframe's width, as a phone's browser would its screen), from ``srcdoc`` so
the host page's script may read it; what it measures is written into the host page and read back with
``--dump-dom``. Networking features are off and nothing is fetched.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imagelift.config import ReportConfig
from imagelift.influence.page.svg import MIN_TEXT_PX
from imagelift.influence.simulate import SimulationSpec, simulate, write_simulation
from imagelift.services.report_service import run_local

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [
    pytest.mark.optional_tool,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)"),
]

HOST = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" style="border:0;width:@WIDTH@px;height:2000px" srcdoc="@PAGE@"></iframe>
<script>
document.getElementById('page').addEventListener('load', function () {
  var win = this.contentWindow, doc = this.contentDocument;
  var out = {width: win.innerWidth, scrollWidth: doc.documentElement.scrollWidth, svg: [], text: 1e9};
  doc.querySelectorAll('svg text').forEach(function (t) {
    var svg = t.ownerSVGElement;
    if (!svg.getClientRects().length) return;  // the drawing for the other layout
    out.svg.push(parseFloat(win.getComputedStyle(t).fontSize) * svg.getScreenCTM().a);
  });
  var walk = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    var el = walk.currentNode.parentElement;
    if (!walk.currentNode.textContent.trim() || el.closest('svg,script,style')) continue;
    if (!el.getClientRects().length) continue;
    out.text = Math.min(out.text, parseFloat(win.getComputedStyle(el).fontSize));
  }
  var table = doc.getElementById('per-product'), rows = table.tBodies[0].rows;
  function column(i) { return Array.prototype.map.call(rows, function (r) { return r.cells[i].getAttribute('data-value'); }); }
  var button = table.tHead.rows[0].cells[2].querySelector('button');
  out.button = !!button;
  button.click(); out.ascending = column(2).map(parseFloat);
  button.click(); out.descending = column(2).map(parseFloat);
  table.tHead.rows[0].cells[0].querySelector('button').click(); out.byTitle = column(0);
  var box = doc.querySelector('[data-filter-for]'), input = box.querySelector('input[type=search]');
  out.filterShown = !box.hidden;
  var wanted = rows[3].cells[0].getAttribute('data-value');
  input.value = wanted.toUpperCase(); input.dispatchEvent(new win.Event('input'));
  out.filtered = Array.prototype.filter.call(rows, function (r) { return !r.hidden; }).map(function (r) { return r.cells[0].getAttribute('data-value'); });
  out.wanted = wanted;
  var pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    sim = simulate(SimulationSpec(products=60, weeks=20, seed=5))
    inputs = tmp_path_factory.mktemp("inputs")
    paths = write_simulation(sim, inputs)
    titles = {p: f"Boot {p[-2:]} {'with a rather long name ' * (int(p[-1]) % 3)}".strip() for p in sim.sales.product_id}
    sim.sales.assign(title=sim.sales["product_id"].map(titles)).to_csv(paths["sales"], index=False)
    out = tmp_path_factory.mktemp("report")
    run_local([paths["sales"]], paths["categories"], out, ReportConfig(controls="promo"))
    return out / "influence.html"


def _measure(page: Path, width: int, tmp_path: Path) -> dict:
    host = tmp_path / f"host-{width}.html"
    source = html.escape(page.read_text(encoding="utf-8"), quote=True)
    host.write_text(HOST.replace("@WIDTH@", str(width)).replace("@PAGE@", source), encoding="utf-8")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={max(width, 500) + 40},2000",
        "--virtual-time-budget=5000",
        "--dump-dom",
        host.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_reads_at_phone_and_desktop_widths(page, width, tmp_path):
    m = _measure(page, width, tmp_path)
    assert m["width"] == width
    assert m["scrollWidth"] <= width  # nothing runs off the right edge; wide tables scroll inside their box
    assert m["svg"] and min(m["svg"]) >= MIN_TEXT_PX, sorted(m["svg"])[:5]
    assert m["text"] >= MIN_TEXT_PX
    assert m["button"] and m["filterShown"]
    assert m["ascending"] == sorted(m["ascending"]) and m["descending"] == sorted(m["descending"], reverse=True)
    assert m["byTitle"] == sorted(m["byTitle"], key=str.lower)
    assert m["filtered"] and all(m["wanted"].lower() in t.lower() for t in m["filtered"])
