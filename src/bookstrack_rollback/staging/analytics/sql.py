"""The Analytics Engine SQL dialect's reader: query text to the syntax tree of ``syntax.py``
(contract/cloudflare-api.md, "Workers Analytics Engine SQL"; Cloudflare's "Workers Analytics Engine
SQL Reference").

Only what the dialect allows is representable, so nothing the client writes reaches DuckDB as text:
DuckDB SQL is generated from the tree alone. Accepted::

    SELECT [DISTINCT] expr [[AS] alias], ... | *
    [FROM dataset] [WHERE expr] [GROUP BY expr, ...] [HAVING expr]
    [ORDER BY expr [ASC|DESC], ...] [LIMIT n [OFFSET m] | LIMIT m, n | LIMIT ALL] [OFFSET m]
    [FORMAT JSON|JSONEachRow|TabSeparated] [;]

Expressions: literals, columns, ``+ - * / %``, comparisons (``= == != <> < <= > >=``), ``AND OR NOT``,
``[NOT] LIKE/ILIKE``, ``[NOT] IN (...)``, ``[NOT] BETWEEN``, ``IS [NOT] NULL``, ``CASE``, intervals
(``INTERVAL '10' MINUTE``, ``INTERVAL 10 MINUTE``, ``INTERVAL '10 MINUTE'``), function calls (parametric
ones too: ``quantileExactWeighted(0.95)(double2, _sample_interval)``). Which functions exist and what they
mean is ``expressions.py``'s business.

Every refusal is an :class:`AnalyticsSqlError` whose message says what was expected and what was seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .syntax import (
    FORMATS,
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
    OrderItem,
    Query,
    SelectItem,
    Star,
    Unary,
)

__all__ = ["AnalyticsSqlError", "parse", "tokenize"]

# Words that end an expression or a clause, so they are never read as an implicit alias.
_RESERVED = {
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "FORMAT", "AS", "AND",
    "OR", "NOT", "IN", "LIKE", "ILIKE", "BETWEEN", "IS", "NULL", "CASE", "WHEN", "THEN", "ELSE", "END",
    "INTERVAL", "DISTINCT", "ASC", "DESC", "TRUE", "FALSE", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS",
    "ARRAY", "GLOBAL", "ANY", "ALL", "SEMI", "ANTI", "ASOF", "PASTE", "UNION", "INTERSECT", "EXCEPT", "ON",
    "USING", "SETTINGS", "SAMPLE", "FINAL", "PREWHERE", "WITH", "WINDOW", "QUALIFY", "INTO", "OUTFILE",
}
_JOIN_WORDS = {"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "ARRAY", "GLOBAL", "ASOF", "SEMI", "ANTI", "PASTE"}
_SET_WORDS = {"UNION", "INTERSECT", "EXCEPT"}
_UNSUPPORTED_CLAUSES = {"SETTINGS", "SAMPLE", "FINAL", "PREWHERE", "WINDOW", "QUALIFY", "INTO", "WITH", "USING", "ON"}

# ------------------------------------------------------------------------------------------ tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|<=|>=|\|\||[-+*/%=<>(),.;])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "\\": "\\", "'": "'"}


@dataclass(frozen=True)
class Token:
    kind: str  # number | string | quoted | word | op | end
    text: str
    value: object
    at: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif ch == "'" and body[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 20]
            if text.startswith(("'", '"', "`", "/*"), pos):
                raise AnalyticsSqlError(f"unterminated quote or comment at position {pos}: {snippet!r}")
            raise AnalyticsSqlError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "number":
            value: object = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token(kind, raw, value, pos))
        elif kind == "string":
            tokens.append(Token(kind, raw, _unescape(raw[1:-1]), pos))
        elif kind == "quoted":
            quote = raw[0]
            tokens.append(Token(kind, raw, raw[1:-1].replace(quote * 2, quote), pos))
        elif kind in ("word", "op"):
            tokens.append(Token(kind, raw, raw, pos))
        pos = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


# ------------------------------------------------------------------------------------------ parser

_COMPARISONS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    # -- cursor
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def at_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.upper in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def accept_word(self, *words: str) -> bool:
        if self.at_word(*words):
            self.advance()
            return True
        return False

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.advance()
            return True
        return False

    def expect_word(self, word: str, context: str) -> None:
        if not self.accept_word(word):
            raise self.error(f"expected {word} {context}")

    def expect_op(self, op: str, context: str) -> None:
        if not self.accept_op(op):
            raise self.error(f"expected '{op}' {context}")

    def error(self, what: str) -> AnalyticsSqlError:
        seen = "the end of the query" if self.tok.kind == "end" else repr(self.tok.text)
        return AnalyticsSqlError(f"syntax error: {what}, found {seen} at position {self.tok.at}")

    # -- statement
    def statement(self) -> Query:
        if self.tok.kind == "end":
            raise AnalyticsSqlError("the query is empty: send one SELECT statement as the request body")
        if not self.at_word("SELECT"):
            first = self.tok.text.upper() if self.tok.kind == "word" else self.tok.text
            if first == "WITH":
                raise AnalyticsSqlError("WITH clauses are not supported: send one SELECT over one dataset")
            raise AnalyticsSqlError(f"only SELECT statements are supported, got {first!r}")
        query = self.select()
        self.accept_op(";")
        if self.tok.kind != "end":
            if self.at_word(*_SET_WORDS):
                raise AnalyticsSqlError(f"{self.tok.upper} is not supported: a query reads one table")
            if self.at_word(*_UNSUPPORTED_CLAUSES):
                raise AnalyticsSqlError(f"{self.tok.upper} is not supported in the Analytics Engine SQL dialect")
            raise self.error("expected the end of the statement (one statement per request)")
        return query

    def select(self) -> Query:
        self.expect_word("SELECT", "at the start of the query")
        distinct = self.accept_word("DISTINCT")
        items = [self.select_item()]
        while self.accept_op(","):
            items.append(self.select_item())
        fields: dict[str, object] = {"items": tuple(items), "distinct": distinct}
        if self.accept_word("FROM"):
            fields["table"] = self.table()
        if self.accept_word("WHERE"):
            fields["where"] = self.expr()
        if self.accept_word("GROUP"):
            self.expect_word("BY", "after GROUP")
            fields["group_by"] = tuple(self.expr_list())
        if self.accept_word("HAVING"):
            fields["having"] = self.expr()
        if self.accept_word("ORDER"):
            self.expect_word("BY", "after ORDER")
            fields["order_by"] = tuple(self.order_list())
        if self.accept_word("LIMIT"):
            if self.at_word("ALL"):
                self.advance()
            else:
                first = self.count("LIMIT")
                if self.accept_op(","):
                    fields["offset"], fields["limit"] = first, self.count("LIMIT")
                else:
                    fields["limit"] = first
        if self.accept_word("OFFSET"):
            fields["offset"] = self.count("OFFSET")
        if self.accept_word("FORMAT"):
            fields["format"] = self.format_name()
        return Query(**fields)  # type: ignore[arg-type]

    def select_item(self) -> SelectItem:
        if self.accept_op("*"):
            return SelectItem(Star(), None)
        expr = self.expr()
        alias = None
        if self.accept_word("AS"):
            alias = self.identifier("after AS")
        elif self.tok.kind == "quoted" or (self.tok.kind == "word" and self.tok.upper not in _RESERVED):
            alias = self.identifier("as an alias")
        return SelectItem(expr, alias)

    def table(self) -> str:
        if self.at_op("("):
            raise AnalyticsSqlError("subqueries in FROM are not supported by the embedded staging: query one dataset")
        name = self.identifier("after FROM (a dataset name)")
        if self.at_op("."):
            raise AnalyticsSqlError(f"a dataset name has no database prefix: write FROM {name.split('.')[-1]}")
        if self.at_op("("):
            raise AnalyticsSqlError(f"table functions are not supported: {name}(...) is not a dataset")
        if self.at_op(",") or self.at_word(*_JOIN_WORDS):
            raise AnalyticsSqlError("JOIN is not supported: queries can only operate on a single table")
        if self.accept_word("AS"):
            self.identifier("after AS")
        elif self.tok.kind == "quoted" or (self.tok.kind == "word" and self.tok.upper not in _RESERVED):
            self.advance()  # a table alias: harmless, columns are unqualified anyway
        if self.at_op(",") or self.at_word(*_JOIN_WORDS):
            raise AnalyticsSqlError("JOIN is not supported: queries can only operate on a single table")
        return name

    def identifier(self, context: str) -> str:
        tok = self.tok
        if tok.kind == "quoted" or (tok.kind == "word" and tok.upper not in _RESERVED):
            self.advance()
            return str(tok.value)
        raise self.error(f"expected a name {context}")

    def count(self, clause: str) -> int:
        tok = self.tok
        if tok.kind != "number" or not isinstance(tok.value, int):
            raise self.error(f"expected a whole number after {clause}")
        self.advance()
        return int(tok.value)  # type: ignore[arg-type]

    def format_name(self) -> str:
        tok = self.advance()
        name = FORMATS.get(tok.text.lower()) if tok.kind == "word" else None
        if name is None:
            raise AnalyticsSqlError(f"unknown format {tok.text!r}: use JSON, JSONEachRow or TabSeparated")
        return name

    def expr_list(self) -> list[Expr]:
        items = [self.expr()]
        while self.accept_op(","):
            items.append(self.expr())
        return items

    def order_list(self) -> list[OrderItem]:
        items = []
        while True:
            expr = self.expr()
            descending = False
            if self.accept_word("DESC"):
                descending = True
            else:
                self.accept_word("ASC")
            items.append(OrderItem(expr, descending))
            if not self.accept_op(","):
                return items

    # -- expressions, lowest precedence first
    def expr(self) -> Expr:
        left = self.conjunction()
        while self.accept_word("OR"):
            left = Binary("OR", left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.accept_word("AND"):
            left = Binary("AND", left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.accept_word("NOT"):
            return Unary("NOT", self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        if self.at_op(*_COMPARISONS):
            op = _COMPARISONS[self.advance().text]
            return Binary(op, left, self.additive())
        negated = False
        if self.at_word("NOT") and self.peek().upper in ("LIKE", "ILIKE", "IN", "BETWEEN"):
            self.advance()
            negated = True
        if self.at_word("LIKE", "ILIKE"):
            op = self.advance().upper
            return Binary(f"NOT {op}" if negated else op, left, self.additive())
        if self.accept_word("IN"):
            self.expect_op("(", "after IN")
            if self.at_word("SELECT"):
                raise AnalyticsSqlError("subqueries are not supported: IN takes a list of values")
            items = tuple(self.expr_list())
            self.expect_op(")", "to close the IN list")
            return InList(left, items, negated)
        if self.accept_word("BETWEEN"):
            low = self.additive()
            self.expect_word("AND", "in BETWEEN ... AND ...")
            return Between(left, low, self.additive(), negated)
        if negated:
            raise self.error("expected LIKE, ILIKE, IN or BETWEEN after NOT")
        if self.accept_word("IS"):
            is_not = self.accept_word("NOT")
            self.expect_word("NULL", "after IS [NOT]")
            return IsNull(left, is_not)
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.advance().text
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.advance().text
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.accept_op("-"):
            operand = self.unary()
            if isinstance(operand, Literal) and isinstance(operand.value, (int, float)):
                return Literal(-operand.value, f"-{operand.text}")
            return Unary("-", operand)
        if self.accept_op("+"):
            return self.unary()
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Literal(tok.value, tok.text)  # type: ignore[arg-type]
        if tok.kind == "string":
            self.advance()
            return Literal(str(tok.value), tok.text)
        if tok.kind == "quoted":
            self.advance()
            return Column(str(tok.value))
        if self.accept_op("("):
            if self.at_word("SELECT"):
                raise AnalyticsSqlError("subqueries are not supported by the embedded staging")
            inner = self.expr()
            if self.at_op(","):
                raise self.error("tuples are not supported; expected ')'")
            self.expect_op(")", "to close '('")
            return inner
        if tok.kind != "word":
            raise self.error("expected an expression")
        word = tok.upper
        if word == "NULL":
            self.advance()
            return Literal(None, "NULL")
        if word in ("TRUE", "FALSE"):
            self.advance()
            return Literal(1 if word == "TRUE" else 0, word.lower())
        if word == "CASE":
            return self.case()
        if word == "INTERVAL":
            return self.interval()
        if word in _RESERVED:
            raise self.error("expected an expression")
        self.advance()
        if self.at_op("("):
            return self.call(tok.text)
        if self.at_op("."):
            raise AnalyticsSqlError(
                f"qualified names are not supported: write the column name alone, not {tok.text}.…"
            )
        return Column(tok.text)

    def call(self, name: str) -> Call:
        self.expect_op("(", f"after {name}")
        star = False
        distinct = self.accept_word("DISTINCT")
        args: tuple[Expr, ...] = ()
        if self.at_op("*") and self.peek().text == ")":
            self.advance()
            star = True
        elif not self.at_op(")"):
            args = tuple(self.expr_list())
        self.expect_op(")", f"to close the arguments of {name}")
        if self.at_op("("):  # parametric: name(params)(args)
            if star or distinct:
                raise self.error(f"unexpected second argument list after {name}(...)")
            self.advance()
            params = args
            inner_distinct = self.accept_word("DISTINCT")
            inner: tuple[Expr, ...] = () if self.at_op(")") else tuple(self.expr_list())
            self.expect_op(")", f"to close the arguments of {name}")
            return Call(name, inner, params, inner_distinct)
        return Call(name, args, None, distinct, star)

    def case(self) -> Case:
        self.expect_word("CASE", "")
        operand = None if self.at_word("WHEN") else self.expr()
        whens = []
        while self.accept_word("WHEN"):
            condition = self.expr()
            self.expect_word("THEN", "after CASE WHEN ...")
            whens.append((condition, self.expr()))
        if not whens:
            raise self.error("expected WHEN after CASE")
        else_ = self.expr() if self.accept_word("ELSE") else None
        self.expect_word("END", "to close CASE")
        return Case(operand, tuple(whens), else_)

    def interval(self) -> Interval:
        self.expect_word("INTERVAL", "")
        tok = self.advance()
        unit_text: str | None = None
        if tok.kind == "string":
            parts = str(tok.value).split()
            if len(parts) == 2:
                amount_text, unit_text = parts
            elif len(parts) == 1:
                amount_text = parts[0]
            else:
                raise AnalyticsSqlError(f"cannot read the interval {tok.text}: write INTERVAL '10' MINUTE")
        elif tok.kind == "number":
            amount_text = tok.text
        else:
            raise AnalyticsSqlError(f"expected a number after INTERVAL, found {tok.text!r} at position {tok.at}")
        if not re.fullmatch(r"\d+", amount_text):
            raise AnalyticsSqlError(f"an interval needs a whole number of units, got {amount_text!r}")
        if unit_text is None:
            unit_tok = self.advance()
            if unit_tok.kind != "word":
                raise AnalyticsSqlError(
                    f"expected an interval unit (SECOND, MINUTE, HOUR, DAY) after INTERVAL {amount_text}"
                )
            unit_text = unit_tok.text
        unit = unit_text.upper()
        if unit not in INTERVAL_UNITS:
            raise AnalyticsSqlError(f"interval unit {unit_text!r} is not supported: use SECOND, MINUTE, HOUR or DAY")
        return Interval(int(amount_text), unit)


def parse(text: str) -> Query:
    """Read one statement of the dialect, or raise :class:`AnalyticsSqlError` naming the problem."""
    return _Parser(text).statement()
