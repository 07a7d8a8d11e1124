"""A parsed query as one DuckDB SELECT over the dataset's visible rows (contract/cloudflare-api.md,
"Workers Analytics Engine SQL"). ``expressions.py`` compiles each expression; this module gives the
query its shape, as ClickHouse does:

- ``SELECT *`` is every column of the dataset, in the table's order;
- aliases may be used anywhere (WHERE, GROUP BY, HAVING, ORDER BY, other items) and win over columns;
  GROUP BY and ORDER BY accept result positions (``GROUP BY 1``);
- in an aggregating query every column outside an aggregate must be a GROUP BY key;
- NaN sorts last, descending too;
- result columns are named by their alias, else as ClickHouse names the expression (``count()``,
  ``divide(a, b)``), and typed with ClickHouse's types;
- quantileExactWeighted's window sums are computed in a subquery under the aggregation, after WHERE
  and partitioned by the GROUP BY keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import chtypes as ct
from .chtypes import ChType
from .expressions import ExpressionCompiler, Typed, cast_sql, condition_sql, value_sql
from .syntax import (
    AnalyticsSqlError,
    Column,
    Expr,
    Literal,
    OrderItem,
    Query,
    SelectItem,
    Star,
    children,
    contains_aggregate,
    is_aggregate,
    map_children,
    render,
)

TABLE_COLUMNS: dict[str, ChType] = {
    "dataset": ct.STRING,
    "timestamp": ct.DATETIME,
    "_sample_interval": ct.UINT32,
    "index1": ct.STRING,
    **{f"blob{i}": ct.STRING for i in range(1, 21)},
    **{f"double{i}": ct.FLOAT64 for i in range(1, 21)},
}


@dataclass(frozen=True)
class Source:
    """The dataset a query reads: its name and a DuckDB relation of its visible rows."""

    dataset: str
    sql: str


@dataclass(frozen=True)
class ResultColumn:
    name: str
    type: ChType


@dataclass(frozen=True)
class Plan:
    sql: str
    columns: tuple[ResultColumn, ...]


class _Planner:
    def __init__(self, query: Query, source: Source | None, now: float) -> None:
        self.query = query
        self.source = source
        self.columns = TABLE_COLUMNS if source is not None else {}
        self.compiler = ExpressionCompiler(self.columns, None if source is None else source.dataset, now)

    def plan(self) -> Plan:
        q = self.query
        items = self._expand_stars(q.items)
        aliases = self._aliases(items)
        exprs = [self._resolve(item.expr, aliases, {item.alias} if item.alias else set()) for item in items]
        where = None if q.where is None else self._resolve(q.where, aliases, set())
        keys = [self._positional(self._resolve(e, aliases, set()), exprs, "GROUP BY") for e in q.group_by]
        having = None if q.having is None else self._resolve(q.having, aliases, set())
        order = [
            OrderItem(self._positional(self._resolve(o.expr, aliases, set()), exprs, "ORDER BY"), o.descending)
            for o in q.order_by
        ]
        self._check_aggregation(exprs, keys, having, order)

        compile_ = self.compiler.compile
        where_sql = None if where is None else condition_sql(compile_(where, "WHERE"), "WHERE")
        key_sqls = [compile_(key, "GROUP BY").sql for key in keys]
        typed = [compile_(expr) for expr in exprs]
        having_sql = None if having is None else condition_sql(compile_(having), "HAVING")
        order_sqls = [self._order_sql(o, exprs, typed) for o in order]

        columns = tuple(
            ResultColumn(item.alias or render(item.expr), t.type.as_value()) for item, t in zip(items, typed)
        )
        select = ", ".join(f"{cast_sql(t, t.type)} AS c{i}" for i, t in enumerate(typed))
        sql = f"SELECT {'DISTINCT ' if q.distinct else ''}{select}"
        sql += self._from(where_sql, key_sqls)
        if where_sql and not self.compiler.quantiles:
            sql += f" WHERE {where_sql}"
        if key_sqls:
            sql += f" GROUP BY {', '.join(key_sqls)}"
        if having_sql:
            sql += f" HAVING {having_sql}"
        if order_sqls:
            sql += f" ORDER BY {', '.join(order_sqls)}"
        if q.limit is not None:
            sql += f" LIMIT {q.limit}"
        if q.offset:
            sql += f" OFFSET {q.offset}"
        return Plan(sql, columns)

    def _expand_stars(self, items: tuple[SelectItem, ...]) -> list[SelectItem]:
        expanded: list[SelectItem] = []
        for item in items:
            if isinstance(item.expr, Star):
                if self.source is None:
                    raise AnalyticsSqlError("SELECT * needs FROM <dataset>")
                expanded += [SelectItem(Column(name), None) for name in TABLE_COLUMNS]
            else:
                expanded.append(item)
        return expanded

    @staticmethod
    def _aliases(items: list[SelectItem]) -> dict[str, Expr]:
        aliases: dict[str, Expr] = {}
        for item in items:
            if item.alias is None:
                continue
            assert not isinstance(item.expr, Star)
            if item.alias in aliases and aliases[item.alias] != item.expr:
                raise AnalyticsSqlError(f"different expressions share the alias {item.alias!r}")
            aliases[item.alias] = item.expr
        return aliases

    def _resolve(self, expr: Expr, aliases: dict[str, Expr], seen: set[str]) -> Expr:
        """``expr`` with every alias replaced by its expression; inside an alias's own expression its
        name is the column (``double1 * 2 AS double1``)."""
        if isinstance(expr, Column) and expr.name in aliases and expr.name not in seen:
            return self._resolve(aliases[expr.name], aliases, seen | {expr.name})
        if isinstance(expr, Column) and expr.name in seen and expr.name not in self.columns:
            raise AnalyticsSqlError(f"cyclic aliases: {expr.name!r} refers to itself")
        return map_children(expr, lambda child: self._resolve(child, aliases, seen))

    @staticmethod
    def _positional(expr: Expr, items: list[Expr], clause: str) -> Expr:
        if isinstance(expr, Literal) and isinstance(expr.value, int) and expr.text.isdigit():
            if not 1 <= expr.value <= len(items):
                raise AnalyticsSqlError(f"{clause} {expr.value}: there are only {len(items)} result columns")
            return items[expr.value - 1]
        return expr

    def _check_aggregation(
        self, exprs: list[Expr], keys: list[Expr], having: Expr | None, order: list[OrderItem]
    ) -> None:
        after = [*([having] if having is not None else []), *(o.expr for o in order)]
        if not keys and not any(contains_aggregate(e) for e in [*exprs, *after]):
            if having is not None:
                raise AnalyticsSqlError("HAVING needs GROUP BY or an aggregate function; filter rows with WHERE")
            return
        for expr in exprs:
            self._check_grouped(expr, keys, "SELECT")
        if having is not None:
            self._check_grouped(having, keys, "HAVING")
        for o in order:
            self._check_grouped(o.expr, keys, "ORDER BY")

    def _check_grouped(self, expr: Expr, keys: list[Expr], clause: str) -> None:
        if expr in keys or is_aggregate(expr):
            return
        if isinstance(expr, Column):
            raise AnalyticsSqlError(
                f"column {expr.name} in {clause} is neither in GROUP BY nor inside an aggregate function"
            )
        for child in children(expr):
            self._check_grouped(child, keys, clause)

    def _order_sql(self, item: OrderItem, exprs: list[Expr], typed: list[Typed]) -> str:
        if item.expr in exprs:  # by the result column: what SELECT DISTINCT requires
            index = exprs.index(item.expr)
            t, sql = typed[index], f"c{index}"
        else:
            t = self.compiler.compile(item.expr)
            sql = value_sql(t)
        direction = " DESC" if item.descending else ""
        if t.type.is_float and item.descending:  # NaN last, as ClickHouse sorts it
            return f"isnan({sql}), {sql}{direction}"
        return f"{sql}{direction}"

    def _from(self, where_sql: str | None, key_sqls: list[str]) -> str:
        quantiles = self.compiler.quantiles
        if self.source is None:
            if quantiles:
                raise AnalyticsSqlError("quantileExactWeighted needs FROM <dataset>")
            return ""
        if not quantiles:
            return f" FROM {self.source.sql} AS src"
        partition = f"PARTITION BY {', '.join(key_sqls)}" if key_sqls else ""
        windows = []
        for q in quantiles:
            k = q.index
            windows += [
                f"{q.value_sql} AS __aeq{k}_v",
                f"sum({q.weight_sql}) OVER ({partition} ORDER BY {q.value_sql} "
                f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __aeq{k}_c",
                f"sum({q.weight_sql}) OVER ({partition}) AS __aeq{k}_t",
            ]
        inner = f"SELECT *, {', '.join(windows)} FROM {self.source.sql} AS src"
        if where_sql:
            inner += f" WHERE {where_sql}"
        return f" FROM ({inner}) AS src"


def translate(query: Query, source: Source | None, now: float) -> Plan:
    """DuckDB SQL for ``query`` over ``source`` (None without FROM), with ``now()`` = ``now``."""
    return _Planner(query, source, now).plan()
