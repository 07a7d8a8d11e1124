"""ClickHouse result types, as the SQL API reports them in ``meta`` (``Float64``, ``UInt64``, ``String``,
``DateTime``...), and the DuckDB types that carry them.

The Analytics Engine answers with ClickHouse's types and ClickHouse's rules: an integer literal takes
the smallest type that holds it, ``+``/``*`` widen integers, ``-`` makes them signed, ``/`` is always
Float64, ``sum`` of unsigned integers is UInt64 and ``count()`` is UInt64 (both written as JSON strings).
``translate.py`` follows these rules so that a client sees the same ``meta`` and the same JSON as from
the real API.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .syntax import AnalyticsSqlError

_DUCK = {
    "UInt8": "UTINYINT", "UInt16": "USMALLINT", "UInt32": "UINTEGER", "UInt64": "UBIGINT",
    "Int8": "TINYINT", "Int16": "SMALLINT", "Int32": "INTEGER", "Int64": "BIGINT",
    "Float64": "DOUBLE", "String": "VARCHAR", "DateTime": "TIMESTAMP", "Nothing": "INTEGER",
}


@dataclass(frozen=True)
class ChType:
    """A ClickHouse type. ``boolean``: the DuckDB expression is a BOOLEAN standing for a UInt8 0/1."""

    name: str
    nullable: bool = False
    boolean: bool = False

    @property
    def label(self) -> str:
        return f"Nullable({self.name})" if self.nullable else self.name

    @property
    def duck(self) -> str:
        return _DUCK[self.name]

    @property
    def is_int(self) -> bool:
        return self.name.startswith(("UInt", "Int"))

    @property
    def is_float(self) -> bool:
        return self.name == "Float64"

    @property
    def is_numeric(self) -> bool:
        return self.is_int or self.is_float

    @property
    def signed(self) -> bool:
        return self.name.startswith("Int")

    @property
    def bits(self) -> int:
        return int(self.name.removeprefix("U").removeprefix("Int")) if self.is_int else 64

    @property
    def is_64bit_int(self) -> bool:
        """Written as a JSON string, as ClickHouse does (output_format_json_quote_64bit_integers)."""
        return self.name in ("UInt64", "Int64")

    def as_nullable(self, nullable: bool = True) -> "ChType":
        return replace(self, nullable=self.nullable or nullable)

    def as_value(self) -> "ChType":
        return replace(self, boolean=False)


UINT8_BOOL = ChType("UInt8", boolean=True)
UINT32 = ChType("UInt32")
UINT64 = ChType("UInt64")
INT64 = ChType("Int64")
FLOAT64 = ChType("Float64")
STRING = ChType("String")
DATETIME = ChType("DateTime")
NOTHING = ChType("Nothing", nullable=True)


def int_type(signed: bool, bits: int) -> ChType:
    return ChType(f"{'Int' if signed else 'UInt'}{min(64, bits)}")


def literal_int_type(value: int) -> ChType:
    """The smallest type holding ``value``, as ClickHouse types integer literals."""
    for bits in (8, 16, 32, 64):
        if value >= 0 and value < 2**bits:
            return int_type(False, bits)
        if value < 0 and value >= -(2 ** (bits - 1)):
            return int_type(True, bits)
    raise AnalyticsSqlError(f"the integer literal {value} does not fit in 64 bits")


def arithmetic_type(op: str, left: ChType, right: ChType) -> ChType:
    """``plus``/``minus``/``multiply``: integers widen to the next size, ``minus`` is signed; a float
    operand gives Float64."""
    nullable = left.nullable or right.nullable
    if left.is_float or right.is_float:
        return FLOAT64.as_nullable(nullable)
    signed = left.signed or right.signed or op == "-"
    return int_type(signed, 2 * max(left.bits, right.bits)).as_nullable(nullable)


def negate_type(operand: ChType) -> ChType:
    if operand.is_float:
        return FLOAT64.as_nullable(operand.nullable)
    bits = operand.bits if operand.signed else 2 * operand.bits
    return int_type(True, bits).as_nullable(operand.nullable)


def supertype(types: list[ChType], context: str) -> ChType:
    """The common type of ``if``/``CASE`` branches; NULL makes it Nullable."""
    nullable = any(t.nullable for t in types)
    concrete = [t.as_value() for t in types if t.name != "Nothing"]
    if not concrete:
        return NOTHING
    names = {t.name for t in concrete}
    if len(names) == 1:
        return ChType(concrete[0].name, nullable)
    if all(t.is_numeric for t in concrete):
        if any(t.is_float for t in concrete):
            return ChType("Float64", nullable)
        signed = [t for t in concrete if t.signed]
        unsigned = [t for t in concrete if not t.signed]
        if not signed:
            return int_type(False, max(t.bits for t in unsigned)).as_nullable(nullable)
        bits = max(t.bits for t in signed)
        if unsigned:
            bits = max(bits, 2 * max(t.bits for t in unsigned))
        return int_type(True, bits).as_nullable(nullable)
    listed = ", ".join(sorted(names))
    raise AnalyticsSqlError(f"there is no common type for {listed} in {context}")


def sum_type(operand: ChType) -> ChType:
    if operand.is_float:
        return FLOAT64
    return INT64 if operand.signed else UINT64


def default_sql(t: ChType) -> str:
    """The value ClickHouse gives ``min``/``max`` over no rows: the type's default, not NULL."""
    if t.name == "String":
        return "''"
    if t.name == "DateTime":
        return "TIMESTAMP '1970-01-01 00:00:00'"
    if t.is_float:
        return "CAST(0 AS DOUBLE)"
    return f"CAST(0 AS {t.duck})"


def empty_quantile_sql(t: ChType) -> str:
    """quantileExactWeighted over no rows: NaN for floats, 0 for integers (ClickHouse's quiet_NaN)."""
    return "CAST('nan' AS DOUBLE)" if t.is_float else f"CAST(0 AS {t.duck})"
