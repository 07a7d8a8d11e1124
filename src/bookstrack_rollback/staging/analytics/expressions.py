"""Expressions of the dialect as DuckDB SQL with ClickHouse's semantics and result types.

The generated text is built only from this module's templates, quoted names of existing columns and
re-quoted literals, so a query cannot reach a DuckDB function, a file or another table: the sandbox
is the whitelist of functions below (``AGGREGATES``, ``_SCALARS``), not a filter.

ClickHouse semantics kept on purpose (contract/cloudflare-api.md, "Workers Analytics Engine SQL"):
- ``/`` is float division: ``x/0`` is inf, ``0/0`` is NaN (DuckDB 1.5 agrees once operands are DOUBLE);
- over no rows ``sum``/``count`` give 0, ``avg`` and float ``quantileExactWeighted`` give NaN,
  ``min``/``max`` give the type's default (0, '', 1970-01-01 00:00:00): never NULL as DuckDB would;
- comparisons with NaN are false (``!=`` true), as IEEE and ClickHouse have it;
- a string literal compared with a number or a time is converted to it; a number compared with a
  time is Unix seconds; a number used as a condition is true when non-zero;
- ``quantileExactWeighted(level)(x, w)``: ClickHouse's algorithm (QuantileExactWeighted.h): NaN
  values skipped, weights (truncated to UInt64) summed per distinct value, threshold
  ``ceil(total_weight * level)``, the smallest value whose cumulative weight reaches it, else the
  largest; no rows: NaN (0 for integers). Each call becomes two window sums (cumulative over the value,
  total per group) that ``translate.py`` computes under the query, and a filtered ``min`` here;
- ``now()`` is the staging clock's now, truncated to the second as a ClickHouse DateTime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from . import chtypes as ct
from .chtypes import ChType
from .syntax import (
    AGGREGATES,
    FUNCTION_NAMES,
    INTERVAL_UNITS,
    AnalyticsSqlError,
    Between,
    Binary,
    Call,
    Case,
    Column,
    Expr,
    InList,
    Interval,
    IsNull,
    Literal,
    Unary,
    render,
)

_SCALARS = {"if", "now", "tostartofinterval"}
SUPPORTED_FUNCTIONS = (
    "count, sum, avg, min, max, countIf, sumIf, avgIf, minIf, maxIf, quantileExactWeighted, "
    "quantileWeighted, if, now, toStartOfInterval"
)
_COMPARISON = {"=", "!=", "<", "<=", ">", ">="}
_LIKE = {"LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"}


@dataclass(frozen=True)
class Typed:
    sql: str
    type: ChType
    literal: bool = False  # written in the query: never NaN


@dataclass(frozen=True)
class QuantileWindow:
    """What ``translate.py`` computes under the query for one quantileExactWeighted call."""

    index: int
    value_sql: str
    weight_sql: str


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def value_sql(t: Typed) -> str:
    """The expression as a value: a condition becomes UInt8 0/1."""
    return f"CAST({t.sql} AS UTINYINT)" if t.type.boolean else t.sql


def cast_sql(t: Typed, to: ChType) -> str:
    return f"CAST({value_sql(t)} AS {to.duck})"


def condition_sql(t: Typed, where: str) -> str:
    """The expression as a condition: a number is true when non-zero, as in ClickHouse."""
    if t.type.boolean:
        return t.sql
    if t.type.is_numeric or t.type.name == "Nothing":
        return f"({t.sql} <> 0)"
    raise AnalyticsSqlError(f"{where} needs a condition or a number, got a {t.type.label}")


class ExpressionCompiler:
    """Types and generates expressions over ``columns``; collects the quantile windows it needs.

    ``clause`` names where aggregates are refused (WHERE, GROUP BY); empty where they are allowed.
    """

    def __init__(self, columns: dict[str, ChType], dataset: str | None, now: float) -> None:
        self.columns = columns
        self.dataset = dataset
        stamp = datetime.fromtimestamp(math.floor(now), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.now_sql = f"TIMESTAMP '{stamp}'"
        self.quantiles: list[QuantileWindow] = []
        self.clause = ""
        self.inside_aggregate = False

    def compile(self, expr: Expr, refuse_aggregates_in: str = "") -> Typed:
        self.clause = refuse_aggregates_in
        return self.gen(expr)

    def gen(self, expr: Expr) -> Typed:
        if isinstance(expr, Column):
            t = self.columns.get(expr.name)
            if t is None:
                if self.dataset is None:
                    raise AnalyticsSqlError(f"unknown column {expr.name!r}: the query has no FROM <dataset>")
                raise AnalyticsSqlError(
                    f"unknown column {expr.name!r} in {self.dataset} (columns: dataset, timestamp, "
                    "_sample_interval, index1, blob1..blob20, double1..double20)"
                )
            return Typed(ident(expr.name), t)
        if isinstance(expr, Literal):
            return self._literal(expr)
        if isinstance(expr, Interval):
            raise AnalyticsSqlError(
                f"{render(expr)}: an interval can only be added to or subtracted from a time, "
                "or passed to toStartOfInterval"
            )
        if isinstance(expr, Unary):
            operand = self.gen(expr.operand)
            if expr.op == "NOT":
                return Typed(f"(NOT {condition_sql(operand, 'NOT')})", ct.UINT8_BOOL)
            self._need_numbers("negate", operand)
            t = ct.negate_type(operand.type.as_value())
            return Typed(f"(- {cast_sql(operand, t)})", t)
        if isinstance(expr, Binary):
            return self._binary(expr)
        if isinstance(expr, InList):
            operand = self.gen(expr.operand)
            values = [self._comparable(operand, self.gen(item), expr.operand, item)[1] for item in expr.items]
            keyword = "NOT IN" if expr.negated else "IN"
            return Typed(f"({value_sql(operand)} {keyword} ({', '.join(values)}))", ct.UINT8_BOOL)
        if isinstance(expr, Between):
            low = self._compare(">=", expr.operand, expr.low)
            high = self._compare("<=", expr.operand, expr.high)
            sql = f"({low.sql} AND {high.sql})"
            return Typed(f"(NOT {sql})" if expr.negated else sql, ct.UINT8_BOOL)
        if isinstance(expr, IsNull):
            operand = self.gen(expr.operand)
            return Typed(f"({operand.sql} IS {'NOT ' if expr.negated else ''}NULL)", ct.UINT8_BOOL)
        if isinstance(expr, Case):
            return self._case(expr)
        assert isinstance(expr, Call)
        return self._call(expr)

    @staticmethod
    def _literal(expr: Literal) -> Typed:
        value = expr.value
        if value is None:
            return Typed("NULL", ct.NOTHING, True)
        if isinstance(value, str):
            if "\0" in value:
                raise AnalyticsSqlError("string literals cannot contain NUL characters")
            return Typed("'" + value.replace("'", "''") + "'", ct.STRING, True)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise AnalyticsSqlError(f"the number {expr.text} is out of range")
            return Typed(f"CAST('{value!r}' AS DOUBLE)", ct.FLOAT64, True)
        t = ct.literal_int_type(value)
        return Typed(f"CAST({value} AS {t.duck})", t, True)

    @staticmethod
    def _need_numbers(function: str, *operands: Typed) -> None:
        if all(o.type.is_numeric or o.type.name == "Nothing" for o in operands):
            return
        labels = " and ".join(o.type.label for o in operands)
        plural = "s" if len(operands) > 1 else ""
        raise AnalyticsSqlError(f"illegal type{plural} {labels} of arguments of function {function}")

    def _binary(self, expr: Binary) -> Typed:
        op = expr.op
        if op in ("AND", "OR"):
            left, right = self.gen(expr.left), self.gen(expr.right)
            return Typed(f"({condition_sql(left, op)} {op} {condition_sql(right, op)})", ct.UINT8_BOOL)
        if op in _COMPARISON:
            return self._compare(op, expr.left, expr.right)
        if op in _LIKE:
            left, right = self.gen(expr.left), self.gen(expr.right)
            if {left.type.name, right.type.name} - {"String", "Nothing"}:
                raise AnalyticsSqlError(
                    f"{op} compares strings, got {left.type.label} and {right.type.label}"
                )
            return Typed(f"({left.sql} {op} {right.sql} ESCAPE '\\')", ct.UINT8_BOOL)
        if op in ("+", "-") and (isinstance(expr.left, Interval) or isinstance(expr.right, Interval)):
            return self._shift_time(expr)
        left, right = self.gen(expr.left), self.gen(expr.right)
        if "DateTime" in (left.type.name, right.type.name):
            raise AnalyticsSqlError(
                f"{FUNCTION_NAMES[op]}: times can only be shifted by an INTERVAL (e.g. now() - INTERVAL '10' MINUTE)"
            )
        self._need_numbers(FUNCTION_NAMES[op], left, right)
        lt, rt = left.type.as_value(), right.type.as_value()
        if op == "/":
            return Typed(f"({cast_sql(left, ct.FLOAT64)} / {cast_sql(right, ct.FLOAT64)})", ct.FLOAT64)
        if op == "%":
            t = ct.FLOAT64 if (lt.is_float or rt.is_float) else (lt if lt.name != "Nothing" else rt)
            wide = "DOUBLE" if t.is_float else "HUGEINT"
            remainder = f"(CAST({value_sql(left)} AS {wide}) % CAST({value_sql(right)} AS {wide}))"
            return Typed(f"CAST({remainder} AS {t.duck})", t)
        t = ct.arithmetic_type(op, lt, rt)
        return Typed(f"({cast_sql(left, t)} {op} {cast_sql(right, t)})", t)

    def _shift_time(self, expr: Binary) -> Typed:
        if isinstance(expr.right, Interval) and not isinstance(expr.left, Interval):
            moment, interval = self.gen(expr.left), expr.right
        elif expr.op == "+" and isinstance(expr.left, Interval) and not isinstance(expr.right, Interval):
            moment, interval = self.gen(expr.right), expr.left
        else:
            raise AnalyticsSqlError(f"{render(expr)}: an interval can only shift a time (time - INTERVAL ...)")
        if moment.type.name != "DateTime":
            raise AnalyticsSqlError(f"{render(expr)}: an interval shifts a DateTime, not a {moment.type.label}")
        return Typed(f"({moment.sql} {expr.op} {self._interval_sql(interval)})", moment.type)

    @staticmethod
    def _interval_sql(interval: Interval) -> str:
        return f"INTERVAL '{interval.amount * INTERVAL_UNITS[interval.unit]} seconds'"

    def _comparable(self, left: Typed, right: Typed, left_expr: Expr, right_expr: Expr) -> tuple[str, str]:
        lt, rt = left.type, right.type
        if "Nothing" in (lt.name, rt.name) or (lt.is_numeric and rt.is_numeric) or lt.name == rt.name:
            return value_sql(left), value_sql(right)
        for a, b, b_expr, flip in ((left, right, right_expr, False), (right, left, left_expr, True)):
            converted = None
            string_literal = isinstance(b_expr, Literal) and isinstance(b_expr.value, str)
            if string_literal and (a.type.is_numeric or a.type.name == "DateTime"):
                converted = f"CAST({b.sql} AS {a.type.as_value().duck})"
            elif a.type.name == "DateTime" and b.type.is_numeric:  # a number compared with a time: Unix seconds
                converted = f"make_timestamp(CAST({value_sql(b)} AS BIGINT) * 1000000)"
            if converted is not None:
                return (converted, value_sql(a)) if flip else (value_sql(a), converted)
        raise AnalyticsSqlError(f"cannot compare {lt.label} with {rt.label}")

    def _compare(self, op: str, left_expr: Expr, right_expr: Expr) -> Typed:
        left, right = self.gen(left_expr), self.gen(right_expr)
        left_sql, right_sql = self._comparable(left, right, left_expr, right_expr)
        sql = f"({left_sql} {op} {right_sql})"
        nan_sides = [t.sql for t in (left, right) if t.type.is_float and not t.literal]
        if nan_sides and op == "!=":
            sql = "(" + " OR ".join([sql, *(f"isnan({s})" for s in nan_sides)]) + ")"
        elif nan_sides:
            sql = "(" + " AND ".join([sql, *(f"NOT isnan({s})" for s in nan_sides)]) + ")"
        return Typed(sql, ct.UINT8_BOOL)

    def _case(self, expr: Case) -> Typed:
        results = [self.gen(result) for _, result in expr.whens]
        else_ = None if expr.else_ is None else self.gen(expr.else_)
        t = ct.supertype([r.type for r in results] + [else_.type if else_ else ct.NOTHING], "CASE")
        parts = []
        for (condition, _), result in zip(expr.whens, results):
            if expr.operand is not None:
                test = self._compare("=", expr.operand, condition).sql
            else:
                test = condition_sql(self.gen(condition), "CASE WHEN")
            parts.append(f"WHEN {test} THEN {cast_sql(result, t)}")
        tail = "NULL" if else_ is None else cast_sql(else_, t)
        return Typed(f"(CASE {' '.join(parts)} ELSE {tail} END)", t)

    def _call(self, expr: Call) -> Typed:
        name = expr.name.lower()
        if name in AGGREGATES:
            return self._aggregate(expr, name)
        if name not in _SCALARS:
            raise AnalyticsSqlError(f"unknown function {expr.name}; supported: {SUPPORTED_FUNCTIONS}")
        if expr.params is not None or expr.distinct or expr.star:
            raise AnalyticsSqlError(f"{expr.name} takes plain arguments: {render(expr)} is not valid")
        args = expr.args
        if name == "now":
            if args:
                raise AnalyticsSqlError("now() takes no arguments (time zones are not supported)")
            return Typed(self.now_sql, ct.DATETIME, True)
        if name == "if":
            if len(args) != 3:
                raise AnalyticsSqlError(f"if takes 3 arguments (condition, then, else), got {len(args)}")
            condition, then, otherwise = (self.gen(a) for a in args)
            t = ct.supertype([then.type, otherwise.type], "if")
            test = condition_sql(condition, "if")
            return Typed(f"(CASE WHEN {test} THEN {cast_sql(then, t)} ELSE {cast_sql(otherwise, t)} END)", t)
        if len(args) != 2 or not isinstance(args[1], Interval):
            raise AnalyticsSqlError(
                "toStartOfInterval takes a time and an interval: toStartOfInterval(timestamp, INTERVAL '1' MINUTE)"
            )
        moment = self.gen(args[0])
        if moment.type.name != "DateTime":
            raise AnalyticsSqlError(f"toStartOfInterval needs a DateTime, got a {moment.type.label}")
        bucket = f"time_bucket({self._interval_sql(args[1])}, {moment.sql}, TIMESTAMP '1970-01-01 00:00:00')"
        return Typed(bucket, moment.type)

    def _aggregate(self, expr: Call, name: str) -> Typed:
        if self.clause:
            raise AnalyticsSqlError(f"aggregate function {render(expr)} is not allowed in {self.clause}")
        if self.inside_aggregate:
            raise AnalyticsSqlError(f"aggregate function {render(expr)} is found inside another aggregate function")
        self.inside_aggregate = True
        try:
            if name in ("quantileexactweighted", "quantileweighted"):
                return self._quantile(expr, name)
            return self._plain_aggregate(expr, name)
        finally:
            self.inside_aggregate = False

    def _plain_aggregate(self, expr: Call, name: str) -> Typed:
        if expr.params is not None:
            raise AnalyticsSqlError(f"{expr.name} is not a parametric function: {render(expr)}")
        conditional = name.endswith("if")
        base = name[:-2] if conditional else name
        args = list(expr.args)
        where = ""
        if conditional:
            if not args:
                raise AnalyticsSqlError(f"{expr.name} needs a condition as its last argument")
            where = f" FILTER (WHERE {condition_sql(self.gen(args.pop()), expr.name)})"
        distinct = "DISTINCT " if expr.distinct else ""
        if base == "count":
            if len(args) > 1 or (expr.distinct and not args):
                raise AnalyticsSqlError(f"{render(expr)}: count takes at most one argument")
            inner = "count(*)" if not args else f"count({distinct}{value_sql(self.gen(args[0]))})"
            return Typed(f"CAST({inner}{where} AS UBIGINT)", ct.UINT64)
        if expr.star or len(args) != 1:
            raise AnalyticsSqlError(f"{render(expr)}: {expr.name} takes exactly one column or expression")
        arg = self.gen(args[0])
        t = arg.type.as_value()
        aggregated = f"{base}({distinct}{value_sql(arg)}){where}"
        if base in ("sum", "avg"):
            self._need_numbers(base, arg)
        if base == "sum":
            result = ct.sum_type(t)
            total = aggregated if t.nullable else f"coalesce({aggregated}, 0)"
            return Typed(f"CAST({total} AS {result.duck})", result.as_nullable(t.nullable))
        if base == "avg":
            mean = aggregated if t.nullable else f"coalesce({aggregated}, CAST('nan' AS DOUBLE))"
            return Typed(mean, ct.FLOAT64.as_nullable(t.nullable))
        if t.name == "Nothing" or t.nullable:
            return Typed(aggregated, t)
        return Typed(f"coalesce({aggregated}, {ct.default_sql(t)})", t)

    def _quantile(self, expr: Call, name: str) -> Typed:
        if name == "quantileexactweighted":
            if expr.params is None or len(expr.params) != 1 or len(expr.args) != 2:
                raise AnalyticsSqlError(
                    "quantileExactWeighted takes a level and two arguments: quantileExactWeighted(0.95)(value, weight)"
                )
            level_expr, (value_expr, weight_expr) = expr.params[0], expr.args
        else:
            if expr.params is not None or len(expr.args) != 3:
                raise AnalyticsSqlError("quantileWeighted takes three arguments: quantileWeighted(0.95, value, weight)")
            level_expr, value_expr, weight_expr = expr.args
        if expr.distinct or not (isinstance(level_expr, Literal) and isinstance(level_expr.value, (int, float))):
            raise AnalyticsSqlError(f"{render(expr)}: the level must be a number between 0 and 1")
        level = float(level_expr.value)
        if not 0.0 <= level <= 1.0:
            raise AnalyticsSqlError(f"{render(expr)}: the level must be between 0 and 1, got {level_expr.text}")
        value, weight = self.gen(value_expr), self.gen(weight_expr)
        self._need_numbers(expr.name, value, weight)
        t = ChType(value.type.name if value.type.name != "Nothing" else "Float64")
        k = len(self.quantiles)
        x = value_sql(value)
        valid_x = f"NOT isnan({x})" if t.is_float else f"{x} IS NOT NULL"
        w = f"trunc({value_sql(weight)})" if weight.type.is_float else value_sql(weight)
        self.quantiles.append(QuantileWindow(k, x, f"CASE WHEN {valid_x} THEN CAST({w} AS UBIGINT) ELSE 0 END"))
        v, c, total = f"__aeq{k}_v", f"__aeq{k}_c", f"__aeq{k}_t"
        valid = f"NOT isnan({v})" if t.is_float else f"{v} IS NOT NULL"
        threshold = f"ceil(CAST({total} AS DOUBLE) * CAST('{level!r}' AS DOUBLE))"
        sql = (
            f"coalesce(min({v}) FILTER (WHERE {c} >= {threshold} AND {valid}), "
            f"max({v}) FILTER (WHERE {valid}), {ct.empty_quantile_sql(t)})"
        )
        return Typed(f"CAST({sql} AS {t.duck})", t)
