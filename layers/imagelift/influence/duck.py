"""Rows in DuckDB (embedded, no server): the cell sums of :mod:`imagelift.influence.aggregated` as SQL.

The rows never come into Python: DuckDB keeps them in its own buffer, within ``memory_limit`` (spilling to a
temporary directory past it), and each Newton step is one GROUP BY over them. What comes back is one row per
product-week cell. The SQL uses only plain aggregates (count, sum, max, abs, exp, ln) and window ranks, which
Trino/Athena also have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imagelift.influence.aggregated import ConstantSums, VaryingSums
from imagelift.influence.aggregated import pairs as packed_pairs
from imagelift.influence.estimation import EstimationError

ROWS_TABLE = "ppml_rows"


def connect(memory_limit_mb: int, threads: int = 1, temp_directory: Path | None = None) -> Any:
    """An in-memory DuckDB connection that holds at most ``memory_limit_mb`` and spills beyond it."""
    import duckdb

    connection = duckdb.connect(":memory:")
    connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
    connection.execute(f"SET threads = {int(threads)}")
    # sums in a fixed order: the same data give the same bits on every run
    connection.execute("SET preserve_insertion_order = true")
    if temp_directory is not None:
        connection.execute(f"SET temp_directory = '{temp_directory}'")
    return connection


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckCellSums:
    """Cell sums over a DuckDB query holding ``product``, ``week``, the outcome and the regressor columns.

    The query's rows are copied once into a table of (cell, y, x...) with integer cell codes; labels of the
    products (the clusters) are kept in product-code order.
    """

    def __init__(
        self,
        connection: Any,
        query: str,
        outcome: str,
        names: list[str],
        product: str = "product_id",
        week: str = "week",
    ) -> None:
        self.names = list(names)
        self._connection = connection
        self._cell_ids: np.ndarray | None = None
        xs = ", ".join(f"CAST({_quote(n)} AS DOUBLE) AS x{j}" for j, n in enumerate(names))
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE ppml_source AS
            SELECT {_quote(product)} AS product, {_quote(week)} AS week, CAST({_quote(outcome)} AS DOUBLE) AS y, {xs}
            FROM ({query})
            """
        )
        negative = connection.execute("SELECT count(*) FROM ppml_source WHERE y < 0").fetchone()[0]
        if negative:
            raise EstimationError("PPML needs a non-negative outcome")
        connection.execute(
            """
            CREATE OR REPLACE TEMP TABLE ppml_products AS
            SELECT product, CAST(row_number() OVER (ORDER BY product) - 1 AS BIGINT) AS code
            FROM (SELECT DISTINCT product FROM ppml_source)
            """
        )
        connection.execute(
            """
            CREATE OR REPLACE TEMP TABLE ppml_weeks AS
            SELECT week, CAST(row_number() OVER (ORDER BY week) - 1 AS BIGINT) AS code
            FROM (SELECT DISTINCT week FROM ppml_source)
            """
        )
        self._n_weeks = int(connection.execute("SELECT count(*) FROM ppml_weeks").fetchone()[0])
        x_columns = ", ".join(f"s.x{j}" for j in range(len(names)))
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {ROWS_TABLE} AS
            SELECT p.code * {self._n_weeks} + w.code AS cell, s.y, {x_columns}
            FROM ppml_source s JOIN ppml_products p USING (product) JOIN ppml_weeks w USING (week)
            """
        )
        connection.execute("DROP TABLE ppml_source")
        self.product_labels = np.asarray(
            connection.execute("SELECT product FROM ppml_products ORDER BY code").fetchnumpy()["product"],
            dtype=object,
        )

    def rows(self) -> int:
        return int(self._connection.execute(f"SELECT count(*) FROM {ROWS_TABLE}").fetchone()[0])

    def constant(self) -> ConstantSums:
        k = len(self.names)
        yx = ", ".join(f"sum(y * x{j}) AS yx{j}" for j in range(k))
        x_max = ", ".join(f"max(abs(x{j})) AS m{j}" for j in range(k))
        got = self._connection.execute(
            f"""
            SELECT cell, count(*) AS n, sum(y) AS y, {yx},
                   sum(CASE WHEN y > 0 THEN y * ln(y) ELSE 0 END) AS ylogy
            FROM {ROWS_TABLE} GROUP BY cell ORDER BY cell
            """
        ).fetchnumpy()
        maxima = self._connection.execute(f"SELECT {x_max} FROM {ROWS_TABLE}").fetchone()
        cell = np.asarray(got["cell"], dtype=np.int64)
        self._cell_ids = cell  # sorted: the order every later sum is put back into
        return ConstantSums(
            product=cell // self._n_weeks,
            week=cell % self._n_weeks,
            rows=np.asarray(got["n"], dtype=np.float64),
            y=np.asarray(got["y"], dtype=np.float64),
            yx=np.column_stack([np.asarray(got[f"yx{j}"], dtype=np.float64) for j in range(k)]).reshape(-1, k),
            y_log_y=np.asarray(got["ylogy"], dtype=np.float64),
            x_max=np.array([float(m or 0.0) for m in maxima]),
            product_labels=self.product_labels,
        )

    def varying(self, beta: np.ndarray) -> VaryingSums:
        if self._cell_ids is None:
            self.constant()
        k = len(self.names)
        linear = " + ".join(f"x{j} * ?" for j in range(k)) or "0"
        pairs = packed_pairs(k)
        sums = ", ".join(
            ["sum(e) AS e"]
            + [f"sum(e * x{a}) AS ex{a}" for a in range(k)]
            + [f"sum(e * x{a} * x{b}) AS exx{a}_{b}" for a, b in pairs]
        )
        got = self._connection.execute(
            f"SELECT cell, {sums} FROM (SELECT *, exp({linear}) AS e FROM {ROWS_TABLE}) GROUP BY cell",
            [float(b) for b in beta],
        ).fetchnumpy()
        # the groups come back in any order: put them in the constant sums' (sorted) cell order, without a sort in SQL
        position = np.searchsorted(self._cell_ids, np.asarray(got.pop("cell"), dtype=np.int64))

        def column(name: str) -> np.ndarray:
            out = np.empty(len(position))
            out[position] = np.asarray(got.pop(name), dtype=np.float64)
            return out

        exx = np.empty((len(position), len(pairs)))
        for index, (a, b) in enumerate(pairs):
            exx[:, index] = column(f"exx{a}_{b}")
        ex = np.empty((len(position), k))
        for a in range(k):
            ex[:, a] = column(f"ex{a}")
        return VaryingSums(e=column("e"), ex=ex, exx=exx)
