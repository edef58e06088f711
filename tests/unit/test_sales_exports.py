"""Sales exports as shops write them: Shopify and Amazon Business Report samples, column mapping, daily -> weekly.

The samples are built here from a known listing-week truth, with the header names those systems write, and
the reader must give the truth back: the right Monday weeks, units and prices. Every test also checks that no
row is lost: rows read = used + rejected + superseded.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from imagelift.config import SalesConfig
from imagelift.influence.exports.formats import ColumnError, parse_column_mapping, shopify_handle
from imagelift.influence.sales import InputFileError, SalesSource, SalesTable, read_sales

REPORT_DATE = date(2025, 6, 2)
FIRST_MONDAY = date(2025, 1, 6)

SHOPIFY_HEADER = (
    "Day,Product title,Product vendor,Product type,Variant title,Variant SKU,Net quantity,Gross sales,"
    "Discounts,Returns,Net sales,Taxes,Total sales"
)
AMAZON_HEADER = (
    '"Date","(Parent) ASIN","(Child) ASIN","Title","Sessions - Total","Session Percentage - Total",'
    '"Page Views - Total","Page Views Percentage - Total","Featured Offer (Buy Box) Percentage","Units Ordered",'
    '"Units Ordered - B2B","Unit Session Percentage","Ordered Product Sales","Ordered Product Sales - B2B",'
    '"Total Order Items"'
)
PRODUCTS = {
    "Classic Leather Boot": ["CLB-38-BLK", "CLB-40-BLK", "CLB-42-BRN"],
    "Trail Runner 2.0": ["TR2-41", "TR2-43"],
    "Suede Loafer": ["SL-39-TAN", "SL-44-NAVY"],
}


def invariant(table: SalesTable) -> None:
    assert table.rows_read == table.rows_used + table.rejections.total + table.superseded


def _truth(weeks: int = 4, seed: int = 0) -> pd.DataFrame:
    """Daily sales per listing: units and the day's unit price, so weekly units and sales / units are known."""
    rng = np.random.default_rng(seed)
    rows = []
    for title, skus in PRODUCTS.items():
        for k, sku in enumerate(skus):
            base = 40.0 + 15 * k + len(title)
            for day in range(7 * weeks):
                units = int(rng.poisson(1.5))
                if day in (0, 7 * weeks - 1):
                    units += 1  # the export's first and last day have sales, so its span is the full weeks
                price = round(base * (0.8 if rng.random() < 0.2 else 1.0), 2)
                rows.append(
                    {
                        "day": FIRST_MONDAY + timedelta(days=day),
                        "title": title,
                        "sku": sku,
                        "units": units,
                        "sales": round(units * price, 2),
                    }
                )
    return pd.DataFrame(rows)


def _weekly(truth: pd.DataFrame) -> pd.DataFrame:
    weekly = truth.assign(week=[d - timedelta(days=d.weekday()) for d in truth["day"]])
    out = weekly.groupby(["sku", "week"], as_index=False)[["units", "sales"]].sum()
    out["price"] = out["sales"] / out["units"]
    return out


def shopify_export(truth: pd.DataFrame, *, zero_days: bool = False) -> bytes:
    """A Shopify "Sales by product variant SKU" report over days: no row on a day without sales."""
    lines = [SHOPIFY_HEADER]
    for row in truth.itertuples(index=False):
        if row.units == 0 and not zero_days:
            continue
        gross = row.sales * 1.1
        lines.append(
            f'{row.day.isoformat()},"{row.title}",Imagelift Footwear,Shoes,{row.sku.split("-", 1)[1]},{row.sku},'
            f"{row.units},{gross:.2f},{row.sales - gross:.2f},0.00,{row.sales:.2f},{row.sales * 0.2:.2f},"
            f"{row.sales * 1.2:.2f}"
        )
    return ("\n".join(lines) + "\n").encode()


PARENT = {title: f"B0{n}PARENT{n}" for n, title in enumerate(PRODUCTS)}


def asin(sku: str) -> str:
    return "B0" + "".join(c for c in sku if c.isalnum()).upper().ljust(8, "X")[:8]


def amazon_export(truth: pd.DataFrame) -> bytes:
    """Seller Central's Detail Page Sales and Traffic By Child Item, by date: US dates and dollar amounts."""
    lines = [AMAZON_HEADER]
    for row in truth.itertuples(index=False):
        sessions = 3 * row.units + 5
        sales = f"${row.sales:,.2f}"
        lines.append(
            f'"{row.day.month}/{row.day.day}/{row.day.year}","{PARENT[row.title]}","{asin(row.sku)}","{row.title}",'
            f'"{sessions}","0.12%","{sessions + 4}","0.10%","98.50%","{row.units}","0","{row.units / sessions:.2%}",'
            f'"{sales}","$0.00","{row.units}"'
        )
    return ("\n".join(lines) + "\n").encode()


def _read(*files: tuple[str, bytes], config: SalesConfig | None = None, **kwargs) -> SalesTable:
    table = read_sales(list(files), config, report_date=REPORT_DATE, **kwargs)
    invariant(table)
    return table


def test_shopify_daily_export_becomes_listing_weeks_with_prices_from_sales():
    truth = _truth()
    table = _read(("shopify.csv", shopify_export(truth)), config=SalesConfig(sales_format="shopify"))
    assert table.rejections.as_dict() == {}
    assert table.failed_files == {}
    frame = table.frame
    assert frame["week"].dt.day_of_week.eq(0).all()
    expected = _weekly(truth)
    assert len(frame) == len(expected)  # every listing sold something every week
    got = frame.set_index(["listing_id", "week"]).sort_index()
    want = expected.assign(week=pd.to_datetime(expected["week"])).set_index(["sku", "week"]).sort_index()
    np.testing.assert_array_equal(got["units"].to_numpy(), want["units"].to_numpy())
    np.testing.assert_allclose(got["price"].to_numpy(), want["price"].to_numpy(), rtol=1e-9)
    # product folders are Shopify's handles of the titles
    assert set(frame["product_id"]) == {"classic-leather-boot", "trail-runner-2-0", "suede-loafer"}
    assert table.rows_used == int((truth["units"] > 0).sum())  # each daily row counted once
    assert "daily rows summed" in table.aggregation
    assert any("shopify layout" in note and "daily" in note for note in table.notes)


def test_amazon_business_report_reads_parent_and_child_asins_dollars_and_us_dates():
    truth = _truth(weeks=3, seed=1)
    table = _read(("BusinessReport-1-27-25.csv", amazon_export(truth)))  # auto: recognised by its headers
    assert table.rejections.as_dict() == {}
    frame = table.frame
    expected = _weekly(truth)
    assert len(frame) == len(expected)
    assert sorted(frame["week"].dt.date.unique()) == [FIRST_MONDAY + timedelta(weeks=w) for w in range(3)]
    got = frame.assign(sku=frame["listing_id"]).set_index(["sku", "week"]).sort_index()
    want = expected.assign(sku=expected["sku"].map(asin), week=pd.to_datetime(expected["week"]))
    want = want.set_index(["sku", "week"]).sort_index()
    np.testing.assert_array_equal(got["units"].to_numpy(), want["units"].to_numpy())
    np.testing.assert_allclose(got["price"].to_numpy(), want["price"].to_numpy(), rtol=1e-9)
    assert set(frame["product_id"]) == set(PARENT.values())
    assert any("amazon-business-report layout" in note for note in table.notes)


def test_weekly_imagelift_rows_pass_through():
    text = "week,product_id,listing_id,units,price\n2025-01-06,P1,L1,3,10.5\n2025-01-15,P1,L1,0,10.5\n"
    table = _read(("weekly.csv", text.encode()))
    assert table.frame["week"].astype(str).tolist() == ["2025-01-06", "2025-01-13"]
    assert table.frame["units"].tolist() == [3.0, 0.0]
    assert "one row per listing and week" in table.aggregation


def test_columns_map_any_export_onto_the_fields():
    text = (
        "Order week;Style;Item number;Qty;Revenue\n2025-01-06;boot-1;SKU-1;4;200.00\n2025-01-13;boot-1;SKU-1;2;90.00\n"
    )
    config = SalesConfig(columns='week="Order week",product_id=Style,listing_id="Item number",units=Qty,sales=Revenue')
    table = _read(("custom.csv", text.encode()), config=config)
    assert table.frame["price"].tolist() == [50.0, 45.0]
    assert table.frame["product_id"].tolist() == ["boot-1", "boot-1"]


def test_a_named_layout_the_file_does_not_follow_says_which_headers_are_missing():
    text = "week,product_id,listing_id,units,price\n2025-01-06,P1,L1,3,10.5\n"
    with pytest.raises(InputFileError) as caught:
        read_sales([SalesSource("mine.csv", text.encode(), strict=True)], SalesConfig(sales_format="shopify"))
    assert "mine.csv: lacks column(s) product_id ('Product handle' or 'Product title'" in str(caught.value)
    assert "'Variant SKU'" in str(caught.value)


def test_column_mapping_text():
    assert parse_column_mapping('week=Day,listing_id="Variant SKU", units = Net quantity') == {
        "week": "Day",
        "listing_id": "Variant SKU",
        "units": "Net quantity",
    }
    with pytest.raises(ColumnError, match="unknown field 'colour'"):
        parse_column_mapping("colour=Red")
    with pytest.raises(ColumnError, match="is not field=Header"):
        parse_column_mapping("week")
    assert shopify_handle("Trail Runner 2.0 (Women's)") == "trail-runner-2-0-women-s"


def test_shopify_zero_sale_days_and_returns_are_summed_into_the_week():
    text = (
        SHOPIFY_HEADER
        + "\n"
        + "".join(
            f"2025-01-{d:02d},Suede Loafer,V,Shoes,39,SL-39,{u},0,0,0,{s},0,0\n"
            for d, u, s in [(6, 2, "100.00"), (7, 0, "0.00"), (8, -1, "-50.00"), (12, 3, "150.00")]
        )
    )
    table = _read(("returns.csv", text.encode()))
    assert table.frame[["units", "price"]].values.tolist() == [[4.0, 50.0]]
    assert table.rows_used == 4


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ parsing

WEEKLY = "week,product_id,listing_id,units,price\n"


def _weekly_rows(rows: list[tuple[str, str, str, str, str]], sep: str = ",") -> str:
    header = sep.join(["week", "product_id", "listing_id", "units", "price"])
    return header + "\n" + "".join(sep.join(r) + "\n" for r in rows)


def test_semicolons_decimal_commas_and_currency_symbols_are_read():
    text = _weekly_rows(
        [("2025-01-06", "P1", "L1", "3", "71,20"), ("2025-01-13", "P1", "L1", "2", "€ 1.071,20")], sep=";"
    )
    table = _read(("eu.csv", text.encode()))
    assert table.frame["price"].tolist() == [71.2, 1071.2]
    assert any("decimal ','" in note for note in table.notes)
    us = _weekly_rows([("2025-01-06", "P1", "L1", "3", '"$7,120.00"'), ("2025-01-13", "P1", "L2", "2", "$71.20")])
    assert _read(("us.csv", us.encode())).frame["price"].tolist() == [7120.0, 71.2]
    tabs = _weekly_rows([("2025-01-06", "P1", "L1", "3", "10")], sep="\t")
    assert _read(("tabs.tsv", tabs.encode())).frame["units"].tolist() == [3.0]


def test_an_explicit_decimal_mark_wins_and_mixed_marks_are_an_error_asking_for_it():
    text = _weekly_rows([("2025-01-06", "P1", "L1", "3", '"7,120"'), ("2025-01-13", "P1", "L1", "2", '"7,150"')])
    assert _read(("a.csv", text.encode())).frame["price"].tolist() == [7120.0, 7150.0]
    comma = _read(("a.csv", text.encode()), config=SalesConfig(decimal=","))
    assert comma.frame["price"].tolist() == [7.12, 7.15]
    mixed = _weekly_rows([("2025-01-06", "P1", "L1", "3", '"71,20"'), ("2025-01-13", "P1", "L1", "2", '"1,071.20"')])
    table = _read(("mixed.csv", mixed.encode()))
    assert "set --decimal . or --decimal ," in table.failed_files["mixed.csv"]
    assert table.rows_read == 0


def test_xlsx_utf16_and_bom_files_are_read():
    frame = pd.DataFrame(
        {
            "week": pd.to_datetime(["2025-01-06", "2025-01-13"]),
            "product_id": ["P1", "P1"],
            "listing_id": ["L1", "L1"],
            "units": [3, 0],
            "price": [10.5, 10.5],
        }
    )
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    xlsx = _read(("export.xlsx", buffer.getvalue()))
    assert xlsx.failed_files == {}
    assert xlsx.frame["week"].astype(str).tolist() == ["2025-01-06", "2025-01-13"]
    assert xlsx.frame["price"].tolist() == [10.5, 10.5]
    text = _weekly_rows([("2025-01-06", "P1", "L1", "3", "10.5")], sep="\t")
    assert _read(("unicode.txt", text.encode("utf-16"))).frame["units"].tolist() == [3.0]  # Excel "Unicode text"
    assert _read(("bom.csv", b"\xef\xbb\xbf" + WEEKLY.encode() + b"2025-01-06,P1,L1,3,10.5\n")).frame[
        "units"
    ].tolist() == [3.0]


def test_day_first_dates_are_inferred_from_the_whole_column_or_asked_for():
    day_first = _weekly_rows([("06/01/2025", "P1", "L1", "3", "10"), ("13/01/2025", "P1", "L1", "2", "10")])
    assert _read(("d.csv", day_first.encode())).frame["week"].astype(str).tolist() == ["2025-01-06", "2025-01-13"]
    ambiguous = _weekly_rows([("06/01/2025", "P1", "L1", "3", "10"), ("03/02/2025", "P1", "L2", "2", "10")])
    table = _read(("amb.csv", ambiguous.encode()))
    assert "--dayfirst" in table.failed_files["amb.csv"]
    with pytest.raises(InputFileError, match=r"^amb.csv: dates such as '06/01/2025' read as day/month and as month"):
        read_sales([SalesSource("amb.csv", ambiguous.encode(), strict=True)], report_date=REPORT_DATE)
    chosen = _read(("amb.csv", ambiguous.encode()), config=SalesConfig(dayfirst="true"))
    assert chosen.frame["week"].astype(str).tolist() == ["2025-01-06", "2025-02-03"]
    month = _read(("amb.csv", ambiguous.encode()), config=SalesConfig(dayfirst="false"))
    # 1 June and 2 March are Sundays: weeks labelled by their Sunday start the Monday after
    assert month.frame["week"].astype(str).tolist() == ["2025-06-02", "2025-03-03"]


def test_words_are_not_dates_and_future_weeks_are_rejected():
    text = _weekly_rows(
        [
            ("2025-01-06", "P1", "L1", "3", "10"),
            ("today", "P1", "L2", "3", "10"),
            ("now", "P1", "L3", "3", "10"),
            ("2099-01-05", "P1", "L4", "3", "10"),
            ("2025-06-09", "P1", "L5", "3", "10"),  # the week after the report date
        ]
    )
    table = _read(("w.csv", text.encode()))
    assert table.rejections.as_dict() == {"bad_week": 2, "future_week": 2}
    assert table.frame["week"].max() == pd.Timestamp("2025-01-06")


def test_weeks_labelled_by_their_sunday_are_moved_to_the_monday():
    text = _weekly_rows([("2025-01-05", "P1", "L1", "3", "10"), ("2025-01-12", "P1", "L1", "2", "10")])
    table = _read(("sun.csv", text.encode()))
    assert table.frame["week"].astype(str).tolist() == ["2025-01-06", "2025-01-13"]
    assert any("weeks from sunday" in note for note in table.notes)
    monday = _read(("sun.csv", text.encode()), config=SalesConfig(week_start="monday"))
    assert monday.frame["week"].astype(str).tolist() == ["2024-12-30", "2025-01-06"]


def test_a_ragged_row_is_counted_and_the_file_kept():
    text = WEEKLY + "2025-01-06,P1,L1,3,10\n2025-01-06,P1,L2,3,10,extra,fields\n2025-01-13,P1,L1,1,10\n"
    table = _read(("ragged.csv", text.encode()))
    assert table.rejections.as_dict() == {"ragged_row": 1}
    assert table.rejections.examples["ragged_row"] == ["ragged.csv:3"]
    assert len(table.frame) == 2


# ------------------------------------------------------------------------------------------------ overlaps


def test_a_re_export_of_the_last_weeks_supersedes_the_older_copy():
    weeks = [FIRST_MONDAY + timedelta(weeks=w) for w in range(12)]
    old = _weekly_rows([(w.isoformat(), "P1", f"L{k}", "3", "10") for w in weeks for k in range(3)])
    # re-exported later: the last 8 weeks, with corrected units
    new = _weekly_rows([(w.isoformat(), "P1", f"L{k}", "4", "10") for w in weeks[4:] for k in range(3)])
    older = SalesSource("sales/jan-mar.csv", old.encode(), last_modified=1_000.0)
    newer = SalesSource("sales/last-8-weeks.csv", new.encode(), last_modified=2_000.0)
    for order in ([older, newer], [newer, older]):  # LastModified decides, not the order listed
        table = _read(*order)
        assert table.rejections.as_dict() == {}
        assert table.superseded == 8 * 3
        assert len(table.frame) == 12 * 3  # the period is whole
        by_week = table.frame.groupby("week")["units"].first()
        assert by_week.iloc[:4].eq(3).all() and by_week.iloc[4:].eq(4).all()
        assert table.superseded_examples[0].startswith("sales/jan-mar.csv:")


def test_daily_exports_overlap_day_by_day_so_a_week_split_between_files_stays_whole():
    truth = _truth(weeks=4, seed=3)
    first = truth[truth["day"] <= FIRST_MONDAY + timedelta(days=16)]  # to a Wednesday
    second = truth[truth["day"] >= FIRST_MONDAY + timedelta(days=14)]  # from the Monday before
    table = _read(
        SalesSource("a.csv", shopify_export(first), last_modified=1.0),
        SalesSource("b.csv", shopify_export(second), last_modified=2.0),
    )
    expected = _weekly(truth)
    assert table.rejections.as_dict() == {}
    assert table.superseded == int(
        (truth["units"] > 0)[
            truth["day"].between(FIRST_MONDAY + timedelta(days=14), FIRST_MONDAY + timedelta(days=16))
        ].sum()
    )
    assert table.frame["units"].sum() == expected["units"].sum()
    assert len(table.frame) == len(expected)


def test_exact_copies_inside_one_file_count_once_and_conflicting_ones_are_rejected():
    text = WEEKLY + "2025-01-06,P1,L1,3,10\n2025-01-06,P1,L1,3,10\n2025-01-06,P1,L2,3,10\n2025-01-06,P1,L2,4,10\n"
    table = _read(("dups.csv", text.encode()))
    assert table.rejections.as_dict() == {"duplicate_row": 1, "duplicate_listing_week": 2}
    assert table.frame["listing_id"].tolist() == ["L1"]


def test_a_daily_export_that_stops_mid_week_leaves_that_week_out():
    truth = _truth(weeks=2, seed=4)
    cut = truth[truth["day"] <= FIRST_MONDAY + timedelta(days=9)].copy()  # the second week only to Wednesday
    cut.loc[cut["day"] == cut["day"].max(), "units"] += 1
    table = _read(("cut.csv", shopify_export(cut)))
    assert set(table.rejections.as_dict()) == {"partial_week"}
    assert table.frame["week"].astype(str).unique().tolist() == ["2025-01-06"]


def test_blanks_around_fields_are_ignored():
    text = WEEKLY + " 2025-01-06 , P1 ,L1 , 3 ,10.5 \n2025-01-13,P1,L1,2,10.5\n"
    table = _read(("blanks.csv", text.encode()))
    assert table.rejections.as_dict() == {}
    assert table.frame[["product_id", "listing_id"]].drop_duplicates().values.tolist() == [["P1", "L1"]]
    assert table.frame["units"].tolist() == [3.0, 2.0]


def test_a_mapped_daily_date_column_is_summed_into_weeks():
    text = "Order date,Style,Item,Qty,Revenue\n2025-01-06,boot-1,SKU-1,1,50\n2025-01-08,boot-1,SKU-1,2,90\n2025-01-12,boot-1,SKU-1,1,40\n"
    config = SalesConfig(columns='week="Order date",product_id=Style,listing_id=Item,units=Qty,sales=Revenue')
    table = _read(("orders.csv", text.encode()), config=config)
    assert table.frame[["units", "price"]].values.tolist() == [[4.0, 45.0]]
    assert table.rows_used == 3


def test_product_titles_come_from_the_shopify_amazon_and_generic_title_columns():
    truth = _truth(weeks=2)
    shopify = _read(("shopify.csv", shopify_export(truth)))
    assert shopify.titles == {shopify_handle(title): title for title in PRODUCTS}
    amazon = _read(("amazon.csv", amazon_export(truth)))
    assert amazon.titles == {PARENT[title]: title for title in PRODUCTS}
    weekly = _weekly(truth).assign(product_id=lambda f: f["sku"].str.split("-").str[0], listing_id=lambda f: f["sku"])
    plain = weekly[["week", "product_id", "listing_id", "units", "price"]]
    assert _read(("plain.csv", plain.to_csv(index=False).encode())).titles == {}
    names = {"CLB": "  Classic   Leather Boot ", "TR2": "", "SL": "x" * 300}
    titled = plain.assign(title=plain["product_id"].map(names))
    titles = _read(("titled.csv", titled.to_csv(index=False).encode())).titles
    # blanks squeezed, an empty title is no title, a long one is cut for the page
    assert titles["CLB"] == "Classic Leather Boot" and "TR2" not in titles
    assert len(titles["SL"]) == 200 and titles["SL"].endswith("\u2026")


def test_a_title_column_can_be_named_and_the_newest_export_names_the_product():
    rows = "week,product_id,listing_id,units,price,Name\n2025-01-06,P1,L1,3,10.0,{name}\n"
    older = SalesSource("old.csv", rows.format(name="Old name").encode(), last_modified=1.0)
    newer = SalesSource("new.csv", rows.format(name="New name").encode(), last_modified=2.0)
    config = SalesConfig(columns="title=Name")
    assert read_sales([newer, older], config, report_date=REPORT_DATE).titles == {"P1": "New name"}
    assert parse_column_mapping("title=Name") == {"title": "Name"}
    with pytest.raises(InputFileError, match="title"):
        read_sales([SalesSource("x.csv", rows.encode(), strict=True)], SalesConfig(columns="title=Missing"))
