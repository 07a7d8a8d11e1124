"""The syntax tree of the Analytics Engine SQL dialect, and what is said of a tree without running it:
its children, its aggregate calls, and the name ClickHouse gives an unaliased result column.

Only what the dialect allows is representable: ``sql.py`` builds these nodes from the query text, and
``translate.py``/``expressions.py`` generate DuckDB SQL from them alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Union


class AnalyticsSqlError(ValueError):
    """A query the SQL API refuses: HTTP 422, a plain-text message (see ``routes.py``)."""


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Literal:
    value: Union[int, float, str, None]
    text: str  # as written, for result column names


@dataclass(frozen=True)
class Interval:
    amount: int
    unit: str  # SECOND | MINUTE | HOUR | DAY


@dataclass(frozen=True)
class Call:
    name: str  # as written; looked up case-insensitively
    args: tuple["Expr", ...]
    params: tuple["Expr", ...] | None = None  # parametric functions: name(params)(args)
    distinct: bool = False
    star: bool = False  # count(*)


@dataclass(frozen=True)
class Unary:
    op: str  # "-" | "NOT"
    operand: "Expr"


@dataclass(frozen=True)
class Binary:
    op: str  # OR AND = != < <= > >= LIKE ILIKE NOT LIKE NOT ILIKE + - * / %
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class InList:
    operand: "Expr"
    items: tuple["Expr", ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    operand: "Expr"
    low: "Expr"
    high: "Expr"
    negated: bool


@dataclass(frozen=True)
class IsNull:
    operand: "Expr"
    negated: bool


@dataclass(frozen=True)
class Case:
    operand: "Expr | None"
    whens: tuple[tuple["Expr", "Expr"], ...]
    else_: "Expr | None"


Expr = Union[Column, Literal, Interval, Call, Unary, Binary, InList, Between, IsNull, Case]


@dataclass(frozen=True)
class Star:
    """``*`` in the select list."""


@dataclass(frozen=True)
class SelectItem:
    expr: Expr | Star
    alias: str | None


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    descending: bool


@dataclass(frozen=True)
class Query:
    items: tuple[SelectItem, ...]
    distinct: bool = False
    table: str | None = None
    where: Expr | None = None
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    format: str = "JSON"


FORMATS = {"json": "JSON", "jsoneachrow": "JSONEachRow", "tabseparated": "TabSeparated", "tsv": "TabSeparated"}
INTERVAL_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}

AGGREGATES = {
    "count", "sum", "avg", "min", "max", "countif", "sumif", "avgif", "minif", "maxif",
    "quantileexactweighted", "quantileweighted",
}

FUNCTION_NAMES = {
    "+": "plus", "-": "minus", "*": "multiply", "/": "divide", "%": "modulo", "=": "equals",
    "!=": "notEquals", "<": "less", "<=": "lessOrEquals", ">": "greater", ">=": "greaterOrEquals",
    "AND": "and", "OR": "or", "LIKE": "like", "NOT LIKE": "notLike", "ILIKE": "ilike", "NOT ILIKE": "notILike",
}


# ------------------------------------------------------------------------------------ tree helpers


def children(expr: Expr) -> list[Expr]:
    if isinstance(expr, Call):
        return [*(expr.params or ()), *expr.args]
    if isinstance(expr, (Unary, IsNull)):
        return [expr.operand]
    if isinstance(expr, Binary):
        return [expr.left, expr.right]
    if isinstance(expr, InList):
        return [expr.operand, *expr.items]
    if isinstance(expr, Between):
        return [expr.operand, expr.low, expr.high]
    if isinstance(expr, Case):
        parts = [] if expr.operand is None else [expr.operand]
        for condition, result in expr.whens:
            parts += [condition, result]
        return parts if expr.else_ is None else [*parts, expr.else_]
    return []


def map_children(expr: Expr, f: Callable[[Expr], Expr]) -> Expr:
    if isinstance(expr, Call):
        params = None if expr.params is None else tuple(map(f, expr.params))
        return replace(expr, args=tuple(map(f, expr.args)), params=params)
    if isinstance(expr, (Unary, IsNull)):
        return replace(expr, operand=f(expr.operand))
    if isinstance(expr, Binary):
        return replace(expr, left=f(expr.left), right=f(expr.right))
    if isinstance(expr, InList):
        return replace(expr, operand=f(expr.operand), items=tuple(map(f, expr.items)))
    if isinstance(expr, Between):
        return replace(expr, operand=f(expr.operand), low=f(expr.low), high=f(expr.high))
    if isinstance(expr, Case):
        return Case(
            None if expr.operand is None else f(expr.operand),
            tuple((f(c), f(r)) for c, r in expr.whens),
            None if expr.else_ is None else f(expr.else_),
        )
    return expr


def is_aggregate(expr: Expr) -> bool:
    return isinstance(expr, Call) and expr.name.lower() in AGGREGATES


def contains_aggregate(expr: Expr) -> bool:
    return is_aggregate(expr) or any(contains_aggregate(child) for child in children(expr))


def render(expr: Expr) -> str:
    """A result column's name when it has no alias, in ClickHouse's function form (``divide(a, b)``)."""
    if isinstance(expr, Column):
        return expr.name
    if isinstance(expr, Literal):
        if isinstance(expr.value, str):
            return "'" + expr.value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return expr.text
    if isinstance(expr, Interval):
        return f"toInterval{expr.unit.title()}({expr.amount})"
    if isinstance(expr, Call):
        args = ", ".join(map(render, expr.args))
        if expr.distinct:
            args = f"DISTINCT {args}"
        if expr.params is not None:
            return f"{expr.name}({', '.join(map(render, expr.params))})({args})"
        return f"{expr.name}({args})"
    if isinstance(expr, Unary):
        return f"{'negate' if expr.op == '-' else 'not'}({render(expr.operand)})"
    if isinstance(expr, Binary):
        return f"{FUNCTION_NAMES[expr.op]}({render(expr.left)}, {render(expr.right)})"
    if isinstance(expr, InList):
        items = ", ".join(map(render, expr.items))
        return f"{'notIn' if expr.negated else 'in'}({render(expr.operand)}, tuple({items}))"
    if isinstance(expr, Between):
        x, low, high = render(expr.operand), render(expr.low), render(expr.high)
        if expr.negated:
            return f"or(less({x}, {low}), greater({x}, {high}))"
        return f"and(greaterOrEquals({x}, {low}), lessOrEquals({x}, {high}))"
    if isinstance(expr, IsNull):
        return f"{'isNotNull' if expr.negated else 'isNull'}({render(expr.operand)})"
    assert isinstance(expr, Case)
    parts = [render(p) for pair in expr.whens for p in pair]
    parts.append("NULL" if expr.else_ is None else render(expr.else_))
    if expr.operand is not None:
        return f"caseWithExpression({render(expr.operand)}, {', '.join(parts)})"
    return f"multiIf({', '.join(parts)})"
