"""`imagelift simulate` then `imagelift report` on local files: the files, the headline, the error paths."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from html.parser import HTMLParser

import pytest

from imagelift.cli import main


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--products",
                "200",
                "--weeks",
                "26",
                "--bad-rows",
                "7",
                "--seed",
                "3",
                "--gzip",
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def report_dir(simulated, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = main(
        [
            "report",
            "--sales",
            str(simulated),
            "--categories",
            str(simulated / "categories.jsonl"),
            "--out",
            str(out),
            "--controls",
            "promo",
        ]
    )
    assert code == 0
    return out


def test_simulate_writes_the_export_records_and_truth(simulated):
    truth = json.loads((simulated / "truth.json").read_text())
    assert truth["effects_pct"] == {"model": 9.0, "worn": 5.0}
    text = gzip.decompress((simulated / "sales.csv.gz").read_bytes()).decode()
    assert text.startswith("week,product_id,listing_id,units,price,promo\n")
    assert text.count("\n") == truth["rows"] + 1
    first = json.loads((simulated / "categories.jsonl").read_text().splitlines()[0])
    assert {"product_id", "listing_id", "status", "event_time", "sequencer"} <= first.keys() or "key" in first


def test_report_writes_three_files_that_agree(report_dir, simulated):
    report = json.loads((report_dir / "influence.json").read_text())
    truth = json.loads((simulated / "truth.json").read_text())
    assert report["counts"]["rows_rejected"] == truth["expected_rejections"]
    rows = list(csv.DictReader(io.StringIO((report_dir / "influence.csv").read_text())))
    sales = [r for r in rows if r["section"] == "sales_effect"]
    assert [r["category_name"] for r in sales] == ["model", "worn"]
    assert float(sales[0]["effect_pct"]) == pytest.approx(report["effects"][0]["effect_pct"])
    assert sum(r["section"] == "per_product" for r in rows) == len(report["per_product"])


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links, self.sources, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "href" and value and not value.startswith("#"):
                self.links.append(value)
            if name == "src":
                self.sources.append(value)

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_says_the_numbers(report_dir):
    report = json.loads((report_dir / "influence.json").read_text())
    page = (report_dir / "influence.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert "svg" in parser.tags and "circle" in parser.tags and "table" in parser.tags
    assert parser.sources == []  # nothing loaded from anywhere: style, charts and script are inline
    # the only links are to the data files, by a name relative to the page, and those files were written
    for link in parser.links:
        assert "/" not in link and ":" not in link, link
        assert (report_dir / link).is_file(), link
    assert {"influence.csv", "influence.json"} <= set(parser.links)
    text = " ".join(parser.text)
    model = report["effects"][0]
    assert f"{model['effect_pct']:+.1f}%" in text
    assert f"{model['effect_pct_ci'][0]:+.1f}% to {model['effect_pct_ci'][1]:+.1f}%" in text
    assert "duplicate_listing_week" in text  # rejection counts by reason are shown
    assert re.search(r"Product by product", text)


def test_report_names_an_unusable_file_and_exits_2(tmp_path, simulated, capsys):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x1f\x8b\x08\x00 a gzip stream cut short")
    code = main(
        [
            "report",
            "--sales",
            str(bad),
            "--categories",
            str(simulated / "categories.jsonl"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert f"{bad}: looks gzipped but cannot be decompressed" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert (
        main(
            [
                "report",
                "--sales",
                str(empty),
                "--categories",
                str(simulated / "categories.jsonl"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert f"{empty}: is empty" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                "--sales",
                str(simulated),
                "--categories",
                str(tmp_path / "missing.jsonl"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "missing.jsonl: does not exist" in capsys.readouterr().err
