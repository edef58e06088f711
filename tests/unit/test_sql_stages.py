"""The SQL stages on DuckDB against the pandas route: the same rejection counts (every reason), the same examples,
the same weekly and joined frames, on real export layouts, hostile files and a simulated 200k-row export."""

from __future__ import annotations

import importlib.util
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_sales_exports import PRODUCTS, _truth, amazon_export, asin, shopify_export

from imagelift.config import ReportConfig, SalesConfig
from imagelift.influence.exports.formats import shopify_handle
from imagelift.influence.records import JOIN_REJECTION_REASONS, CategoryRecords, join_categories, normalise_records
from imagelift.influence.sales import SalesSource, SalesTable, read_sales
from imagelift.influence.sales_route import PANDAS_ROUTE, SQL_ROUTE, read_sales_routed
from imagelift.influence.simulate import SimulationSpec, simulate
from imagelift.influence.sql_stages import CHECK_STAGES, JOIN_STAGES, SqlStagesError

REPORT_DATE = date(2025, 6, 2)
HEADER = "week,product_id,listing_id,units,price,promo\n"
ROOT = Path(__file__).resolve().parents[2]


def _bench_cases():
    """bench/sales_cases.py, whose Shopify and Amazon writers the analyst's cases use (loaded without its side
    effects on warnings)."""
    spec = importlib.util.spec_from_file_location("sales_cases", ROOT / "bench" / "sales_cases.py")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        spec.loader.exec_module(module)
    return module


def both_routes(
    sources,
    records: CategoryRecords | None = None,
    *,
    config: SalesConfig | None = None,
    controls=(),
    report_date: date = REPORT_DATE,
    window_weeks: int | None = None,
    expect: set[str] = frozenset(),
) -> tuple[SalesTable, pd.DataFrame | None]:
    """Both routes on the same files; every output compared. ``expect``: reasons the case must produce."""
    kwargs = {"controls": controls, "report_date": report_date, "window_weeks": window_weeks}
    want = read_sales(list(sources), config, **kwargs)
    want_joined = join_categories(want.frame, records, want.rejections) if records is not None else None
    with read_sales_routed(list(sources), config, sql_min_rows=0, memory_limit_mb=256, **kwargs) as routed:
        assert routed.route == SQL_ROUTE
        got = routed.sales
        got_joined = routed.join(records) if records is not None else None
    assert got.rejections.as_dict() == want.rejections.as_dict()
    assert got.rejections.examples == want.rejections.examples
    for name in ("rows_read", "files", "controls", "superseded", "superseded_examples", "failed_files", "notes"):
        assert getattr(got, name) == getattr(want, name), name
    assert (got.aggregation, got.titles, got.report_date) == (want.aggregation, want.titles, want.report_date)
    pd.testing.assert_frame_equal(got.frame, want.frame, check_exact=False, rtol=1e-10, atol=0)
    if records is not None:
        pd.testing.assert_frame_equal(got_joined, want_joined, check_exact=False, rtol=1e-10, atol=0)
    joined_away = sum(got.rejections.counts[r] for r in JOIN_REJECTION_REASONS)
    assert got.rows_read == got.rows_used + got.rejections.total - joined_away + got.superseded  # nothing lost
    missing = {r for r in expect if not want.rejections.counts.get(r)} - {"superseded" if want.superseded else ""}
    assert not missing, f"the case should produce {missing}"
    return got, got_joined


def _records(listings: list[tuple[str, str]], **changes) -> CategoryRecords:
    """One classified photo per listing from before the exports, and the ``changes`` named by listing."""
    items = []
    for n, (product, listing) in enumerate(listings):
        change = changes.get(listing)
        if change == "unknown":
            continue
        when = "2025-01-16T00:00:00Z" if change == "late" else "2024-12-01T00:00:00Z"
        key = f"images/{product}/{listing}/main.jpg"
        items.append(
            {
                "product_id": product,
                "listing_id": listing,
                "status": "classified",
                "category": 1 + n % 3,
                "event_time": when,
                "sequencer": f"{n:04X}",
                "key": key,
            }
        )
        if change == "deleted":
            items.append({**items[-1], "status": "deleted", "event_time": "2025-01-22T09:00:00Z", "sequencer": "FFFF"})
        if change == "switch":
            items.append({**items[-1], "category": 3, "event_time": "2025-01-20T00:00:00Z", "sequencer": "FFFE"})
        if change == "at_midpoint":  # a new photo at Thursday 12:00 exactly: that week is already the new one's
            items.append({**items[-1], "category": 3, "event_time": "2025-01-16T12:00:00Z", "sequencer": "FFFE"})
    return normalise_records(items)


# DuckDB-only forms that Trino (Athena) lacks or spells otherwise
DUCKDB_ONLY = ("ASOF", "QUALIFY", "EXCLUDE", "MEDIAN(", "ARG_MIN", "ARG_MAX", "LIST(", "::", "//", "STRUCT", "FILTER (")


def test_the_stages_are_named_and_keep_to_portable_sql():
    names = [s.name for s in (*CHECK_STAGES, *JOIN_STAGES)]
    assert len(set(names)) == len(names)
    truth = _truth(weeks=3, seed=1)
    listings = [(shopify_handle(t), sku) for t, skus in PRODUCTS.items() for sku in skus]
    with read_sales_routed([("s.csv", shopify_export(truth))], sql_min_rows=0, report_date=REPORT_DATE) as routed:
        routed.join(_records(listings))
    executed = routed.executed_sql
    assert [table.split("_", 2)[2] for table, _ in executed] == names  # every stage ran, in order
    for table, text in executed:  # the SQL as sent, placeholders filled
        upper = text.upper()
        for form in DUCKDB_ONLY:
            assert form not in upper, (table, form)


def test_shopify_daily_export_with_photo_changes():
    truth = _truth(weeks=4, seed=3)
    listings = [(shopify_handle(t), sku) for t, skus in PRODUCTS.items() for sku in skus]
    records = _records(
        listings,
        **{
            "CLB-38-BLK": "unknown",
            "TR2-41": "late",
            "SL-39-TAN": "deleted",
            "SL-44-NAVY": "switch",
            "CLB-40-BLK": "at_midpoint",
        },
    )
    sales, joined = both_routes(
        [("shopify.csv", shopify_export(truth))],
        records,
        expect={"unknown_listing", "no_category_that_week", "no_live_photo"},
    )
    assert "daily rows summed" in sales.aggregation
    assert set(joined["category"]) == {1, 2, 3}
    at_midpoint = joined[joined["listing_id"] == "CLB-40-BLK"].set_index("week")["category"]
    assert at_midpoint[pd.Timestamp("2025-01-06")] == 2 and at_midpoint[pd.Timestamp("2025-01-13")] == 3


def test_amazon_business_report_with_dollars_and_us_dates():
    truth = _truth(weeks=3, seed=1)
    listings = [(f"B0{n}PARENT{n}", asin(sku)) for n, skus in enumerate(PRODUCTS.values()) for sku in skus]
    records = _records(listings, **{asin("TR2-43"): "late"})
    both_routes([("BusinessReport.csv", amazon_export(truth))], records, expect={"no_category_that_week"})


def test_the_bench_cases_shopify_amazon_and_generic_exports():
    cases = _bench_cases()
    sim = simulate(SimulationSpec(products=30, weeks=10, seed=3))
    records = normalise_records(sim.records)
    lower = normalise_records(cases.lower_ids(sim.records))
    both_routes([("shopify.csv", cases.shopify(sim.sales))], lower)
    both_routes([("BusinessReport.csv", cases.amazon(sim.sales))], records)
    generic = cases.csv_bytes(sim.sales)
    both_routes([("s.csv", generic)], records, controls=("promo",))
    eu = sim.sales.assign(price=[f"{p:,.2f}".replace(",", " ").replace(".", ",") for p in sim.sales["price"]])
    both_routes([("eu.csv", cases.csv_bytes(eu, sep=";"))], records, controls=("promo",))


def test_every_field_level_and_listing_week_reason():
    text = HEADER + (
        "2025-01-06,P1,L1,3,10.0,0\n"
        "2025-01-06,P1,L2,,10.0,0\n"  # missing units
        "2025-01-06,P1,L3,abc,10.0,0\n"  # non-numeric
        "2025-01-06,P1,L4,2,inf,0\n"  # non-finite price
        "2025-01-06,P1,L5,2,10.0,yes\n"  # non-numeric control
        "someday,P1,L6,2,10.0,0\n"  # bad week
        "2025-01-06,P 1,L7,2,10.0,0\n"  # bad id
        "2025-01-06,P1,L8,-1,10.0,0\n"  # negative units
        "2025-01-06,P1,L9,1.5,10.0,0\n"  # fractional units
        "2025-01-06,P1,L10,1,0,0\n"  # price zero
        "2025-01-06,P1,L11,1,-4,0\n"  # negative price
        "2025-01-07,P1,L12,1,5,0\n"  # the same Monday week as the next row
        "2025-01-06,P1,L12,2,5,0\n"
        "2025-01-13,P1,L1,4,10.0,1\n"
        "2025-01-13,P1,L1,4,10.0,1\n"  # an exact copy
        "2025-01-13,P1,L13,1,10.0,0,9\n"  # ragged
        "2025-01-13,P1,L14,200000,10.0,0\n"  # implausible units
        "2025-01-06,P1,L15,1,10.0,0\n"
        "2025-01-13,P1,L15,1,10.0,0\n"
        "2025-01-20,P1,L15,1,500.0,0\n"  # 50 times the listing's median price
        # even counts: the median is the mean of the two middle prices (15.5 and 130), which keeps all of these
        "2025-01-06,P1,L18,1,1,0\n2025-01-13,P1,L18,1,1,0\n2025-01-20,P1,L18,1,30,0\n2025-01-27,P1,L18,1,30,0\n"
        "2025-01-06,P1,L19,1,10,0\n2025-01-13,P1,L19,1,10,0\n2025-01-20,P1,L19,1,250,0\n2025-01-27,P1,L19,1,260,0\n"
        "2099-01-05,P1,L16,1,10.0,0\n"  # future
        "2025-06-09,P1,L17,1,10.0,0\n"  # the week after the report date
    )
    listings = [("P1", f"L{n}") for n in range(1, 20)]
    sales, _ = both_routes(
        [("sales.csv", text.encode())],
        _records(listings),
        controls=("promo",),
        expect={
            "ragged_row",
            "missing_field",
            "non_numeric",
            "bad_week",
            "bad_id",
            "non_integer_units",
            "duplicate_row",
            "future_week",
            "duplicate_listing_week",
            "negative_units",
            "price_not_positive",
            "implausible_units",
            "implausible_price",
        },
    )
    assert sales.rejections.counts["implausible_price"] == 1  # only L15's 500
    assert set(sales.frame["listing_id"]) >= {"L18", "L19"}


def test_overlapping_exports_weekly_daily_and_both():
    weeks = [date(2025, 1, 6) + timedelta(weeks=w) for w in range(8)]
    old = HEADER + "".join(f"{w},P1,L{k},3,10,0\n" for w in weeks for k in range(3))
    new = HEADER + "".join(f"{w},P1,L{k},4,10,0\n" for w in weeks[4:] for k in range(3))
    truth = _truth(weeks=4, seed=3)
    first = truth[truth["day"] <= date(2025, 1, 6) + timedelta(days=16)]
    second = truth[truth["day"] >= date(2025, 1, 6) + timedelta(days=14)]
    # a weekly export of Shopify's listings too: newer than the first daily file, older than the second
    weekly_shopify = "week,product_id,listing_id,units,price\n" + "".join(
        f"{date(2025, 1, 6) + timedelta(weeks=w)},{shopify_handle(t)},{sku},{w + 1},{40 + w}\n"
        for t, skus in PRODUCTS.items()
        for sku in skus
        for w in range(4)
    )
    sources = [
        SalesSource("sales/old.csv", old.encode(), last_modified=1.0),
        SalesSource("sales/new.csv", new.encode(), last_modified=4.0),
        SalesSource("sales/a.csv", shopify_export(first), last_modified=2.0),
        SalesSource("sales/weekly.csv", weekly_shopify.encode(), last_modified=3.0),
        SalesSource("sales/b.csv", shopify_export(second), last_modified=5.0),
    ]
    listings = [("P1", f"L{k}") for k in range(3)] + [(shopify_handle(t), s) for t, ss in PRODUCTS.items() for s in ss]
    sales, _ = both_routes(sources, _records(listings))
    assert sales.failed_files == {}
    # the weekly file wins the first daily file's weeks, the second daily file the weekly file's last weeks
    assert set(sales.frame["_source"]) == {"sales/new.csv", "sales/old.csv", "sales/weekly.csv", "sales/b.csv"}
    assert sales.superseded > 0
    reversed_order = both_routes(list(reversed(sources)), _records(listings))[0]
    assert reversed_order.superseded == sales.superseded


def test_partial_weeks_the_window_and_words_for_dates():
    truth = _truth(weeks=3, seed=4)
    cut = truth[truth["day"] <= date(2025, 1, 6) + timedelta(days=16)].copy()
    cut.loc[cut["day"] == cut["day"].max(), "units"] += 1
    words = "week,product_id,listing_id,units,price\n" + (
        "today,P1,L1,1,10\nnow,P1,L2,1,10\n2025-01-06,P1,L1,1,10\n2024-06-03,P1,L1,1,10\n2025-06-09,P1,L3,1,10\n"
    )
    both_routes(
        [("cut.csv", shopify_export(cut)), ("words.csv", words.encode())],
        window_weeks=26,
        expect={"partial_week", "future_week", "bad_week", "before_window"},
    )


def test_prices_from_sales_zero_weeks_and_mixed_files():
    # units and sales only: a week without units takes the listing's price over the period; a listing that never
    # sells has none; sales of zero for units sold is no price
    sales_only = "week,product_id,listing_id,units,sales\n" + (
        "2025-01-06,P1,L1,2,20\n2025-01-13,P1,L1,0,0\n2025-01-20,P1,L1,3,33\n"
        "2025-01-06,P1,L2,0,0\n2025-01-13,P1,L2,0,0\n"
        "2025-01-06,P1,L3,2,0\n2025-01-13,P1,L3,1,-5\n"
    )
    # weeks of one listing in two weekly files: a week sold at a price, a week without units or price; its price
    # over the period is then 0 (the priced week has no sales to add), against a median of 5
    priced = "week,product_id,listing_id,units,price\n2025-01-06,P3,L20,2,10\n"
    unpriced = "week,product_id,listing_id,units,sales\n2025-01-13,P3,L20,0,0\n"
    listings = [("P1", "L1"), ("P1", "L2"), ("P1", "L3"), ("P3", "L20")]
    sources = [("s.csv", sales_only.encode()), ("r.csv", priced.encode()), ("u.csv", unpriced.encode())]
    sales, _ = both_routes(sources, _records(listings), expect={"no_price", "price_not_positive", "implausible_price"})
    assert sales.failed_files == {}
    # the days of one listing-week in two daily files, one with a price column and one with sales only
    with_price = "day,product_id,listing_id,units,price\n2025-01-06,P2,L9,1,10\n2025-01-12,P2,L9,2,11\n" + (
        "2025-01-13,P2,L9,0,10\n2025-01-19,P2,L9,0,12\n"  # a week without units: the plain mean price
    )
    with_sales = "day,product_id,listing_id,units,sales\n2025-01-08,P2,L9,1,12\n2025-01-10,P2,L9,0,0\n"
    sales, _ = both_routes(
        [("p.csv", with_price.encode()), ("q.csv", with_sales.encode())],
        _records([("P2", "L9")]),
        config=SalesConfig(columns="week=day"),
    )
    assert sales.failed_files == {} and "daily rows summed" in sales.aggregation
    assert sales.frame[["units", "_rows"]].values.tolist() == [[4.0, 4], [0.0, 2]]
    assert sales.frame["price"].tolist() == pytest.approx([(10 + 22) / 4, 11])  # the priced days' value / all units


def test_unreadable_files_beside_good_ones():
    good = HEADER + "2025-01-06,P1,L1,3,10.0,0\n"
    sources = [
        ("empty.csv", b""),
        ("good.csv", good.encode()),
        ("broken.csv.gz", b"\x1f\x8b\x08\x00cut short"),
        ("latin1.csv", (HEADER + "2025-01-06,P\xe9,L1,1,2,0\n").encode("latin-1")),
        ("no-price.csv", b"week,product_id,listing_id,units\n2025-01-06,P1,L1,1\n"),
    ]
    sales, _ = both_routes(sources, _records([("P1", "L1")]), controls=("promo",), expect={"bad_id"})
    assert set(sales.failed_files) == {"empty.csv", "broken.csv.gz", "no-price.csv"}
    both_routes([("empty.csv", b"")], _records([("P1", "L1")]))  # nothing read at all
    both_routes([], _records([("P1", "L1")]))


def test_a_simulated_200k_row_export_with_a_re_export_and_bad_rows():
    sim = simulate(SimulationSpec(products=1040, weeks=52, seed=7, bad_rows=600, deleted_records=0.05))
    sales = sim.sales
    assert len(sales) > 195_000
    weeks = pd.to_datetime(sales["week"], errors="coerce")
    recent = sales[weeks >= weeks.max() - pd.Timedelta(weeks=7)].copy()
    recent = recent[pd.to_numeric(recent["units"], errors="coerce").notna()]
    recent["units"] = pd.to_numeric(recent["units"]) + 1
    recent.loc[recent.index[:50], "price"] = 1e6  # implausible against the listing's median
    sources = [
        SalesSource("sales/all.csv", sales.to_csv(index=False).encode(), last_modified=1.0),
        SalesSource("sales/recent.csv", recent.to_csv(index=False).encode(), last_modified=2.0),
    ]
    # photos deleted in September, and listings whose only photo came in March
    items = [dict(r) for r in sim.records]
    by_listing: dict[tuple, list[dict]] = {}
    for item in items:
        if item.get("status") == "classified" and item.get("product_id") and item.get("key"):
            by_listing.setdefault((item["product_id"], item["listing_id"]), []).append(item)
    single = [photos[0] for photos in by_listing.values() if len(photos) == 1]
    for item in single[:40]:
        items.append({**item, "status": "deleted", "event_time": "2025-09-01T10:00:00Z", "sequencer": "F" * 20})
    for item in single[40:80]:
        item["event_time"] = "2025-03-05T10:00:00Z"
    got, joined = both_routes(
        sources,
        normalise_records(items),
        controls=("promo",),
        report_date=date(2025, 12, 28),  # the day before the last week starts: its rows are future_week
        expect={"future_week", "missing_field", "non_numeric", "bad_week", "negative_units", "duplicate_listing_week"},
    )
    assert got.superseded > 0 and got.rejections.counts["implausible_price"] > 0
    for reason in ("unknown_listing", "no_category_that_week", "no_live_photo"):
        assert got.rejections.counts[reason] > 0, reason
    assert len(joined) > 150_000


def test_the_route_follows_the_rows_read():
    sim = simulate(SimulationSpec(products=20, weeks=10, seed=2))
    parts = [sim.sales.iloc[i::3] for i in range(3)]
    sources = [(f"part{i}.csv", p.to_csv(index=False).encode()) for i, p in enumerate(parts)]
    records = normalise_records(sim.records)
    want = read_sales(sources, controls=["promo"], report_date=REPORT_DATE)
    want_joined = join_categories(want.frame, records, want.rejections)
    # the threshold crossed at the second file: the first file's rows go to DuckDB with the rest
    for threshold, route in ((len(parts[0]) + 1, SQL_ROUTE), (len(sim.sales) + 1, PANDAS_ROUTE)):
        with read_sales_routed(sources, controls=["promo"], report_date=REPORT_DATE, sql_min_rows=threshold) as routed:
            assert routed.route == route
            assert routed.rows_parsed == len(sim.sales)
            joined = routed.join(records)
        assert routed.sales.rejections.as_dict() == want.rejections.as_dict()
        pd.testing.assert_frame_equal(routed.sales.frame, want.frame, check_exact=False, rtol=1e-10)
        pd.testing.assert_frame_equal(joined, want_joined, check_exact=False, rtol=1e-10)


def test_the_report_is_the_same_by_either_route():
    from imagelift.services.report_service import build_report

    sim = simulate(SimulationSpec(products=80, weeks=20, seed=4, bad_rows=30))
    sources = [("s.csv", sim.sales.to_csv(index=False).encode())]
    runs = [
        build_report(sources, sim.records, ReportConfig(controls="promo", sql_stages_min_rows=rows), report_date=d)
        for rows, d in ((0, REPORT_DATE), (10**9, REPORT_DATE))
    ]
    sql, pandas = (r.report for r in runs)
    assert sql.counts == pandas.counts
    assert sql.counts.rows_rejected and sql.counts.rows_rejected_total > 0
    for a, b in zip(sql.effects, pandas.effects, strict=True):
        assert a.estimate == pytest.approx(b.estimate, rel=1e-9, abs=1e-12)
        assert a.std_err == pytest.approx(b.std_err, rel=1e-9, abs=1e-12)


def test_sql_settings_are_read_from_the_environment():
    config = ReportConfig.from_env({"REPORT_SQL_STAGES_MIN_ROWS": "0", "REPORT_SQL_MEMORY_LIMIT_MB": "300"})
    assert (config.sql_stages_min_rows, config.sql_memory_limit_mb) == (0, 300)
    assert np.isfinite(ReportConfig().sql_stages_min_rows)


def test_a_stage_out_of_room_is_a_clear_error_naming_the_settings():
    sim = simulate(SimulationSpec(products=300, weeks=52, seed=3))
    sources = [("s.csv", sim.sales.to_csv(index=False).encode())]
    with (
        pytest.raises(SqlStagesError) as caught,
        read_sales_routed(
            sources, report_date=date(2026, 1, 5), sql_min_rows=0, memory_limit_mb=8, max_temp_mb=0
        ) as routed,
    ):
        routed.join(normalise_records(sim.records))
    message = str(caught.value)
    assert message.startswith("the SQL stages failed at ")
    assert "REPORT_SQL_MEMORY_LIMIT_MB" in message and "REPORT_SQL_STAGES_MIN_ROWS" in message
    assert caught.value.code == "sql_stages_failed"
