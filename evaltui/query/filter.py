r"""The filter language (DESIGN.md "Filter language"): parsed here, compiled to polars
expressions (the TUI's frames) and to parameterized SQL (the CLI, span-level queries).

    scores.Factuality < 0.5 and metadata.model = 'gpt-4o'
    error is not null or output ilike '%sorry%'
    tags includes 'triage' and not any_span(type = 'tool' and error is not null)

Grammar (keywords are case-insensitive; a hand-written tokenizer feeds a recursive-descent
parser, one function per precedence level, loosest first)::

    filter     := or
    or         := and ('or' and)*
    and        := not ('and' not)*
    not        := 'not' not | predicate
    predicate  := sum [ compare_op sum
                      | 'is' ['not'] 'null'
                      | ['not'] ('like' | 'ilike' | 'match') STRING
                      | ['not'] 'in' '(' literal (',' literal)* ')'
                      | ['not'] 'includes' literal ]
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/') unary)*
    unary      := '-' unary | primary
    primary    := NUMBER | STRING | 'true' | 'false' | 'null' | PATH
                | '(' or ')' | 'any_span' '(' or ')'
    compare_op := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    literal    := ['-'] NUMBER | STRING | 'true' | 'false'
    PATH       := part ('.' part | '[' DIGITS ']')*     part: name, "quoted", 'quoted' or `quoted`
                  (the first part: a name or `quoted`; parts after a dot may start with a digit)
    STRING     := '...' or "..."; escapes \\ \' \" \` \n \t \r \uXXXX, a doubled quote
                  is a quote, any other backslash stays as it is (so '\d+' is a regex)

Paths: ``input output expected error`` (the row's previews), ``scores.X``, ``metrics.X``,
``metadata.a.b`` (any depth, ``[0]`` indexes arrays; also inside ``input``/``output``/...
when the preview is JSON), ``tags``, ``name``, ``type``/``span_type`` (spans),
``review_status``, ``assignee``, every other column of the frame (custom columns: polars
only), and any frame column by its name (``tokens``, ``duration``, ``has_error``).

Values and types. A path is a number, text, a boolean (``has_error``), or a JSON value whose
type is only known per row (``metadata.*`` and paths inside JSON). JSON values mean what
SQLite's ``json_extract`` returns: strings are text, numbers numbers, true/false are 1/0,
null and missing keys are null, objects and arrays their compact JSON text.

- A comparison with a number side (number literal, numeric column, arithmetic, boolean)
  compares numbers: text holding a JSON number counts as that number (``metadata.n > 3``
  matches ``"7"`` and ``7``), other text is null. ``true``/``false`` are the numbers 1/0.
- Otherwise it compares text (binary, code point order). JSON numbers are not text:
  ``metadata.n = '7'`` matches the string ``"7"`` only. Comparing a number with a quoted
  text literal is an error, as is comparing with ``null`` (use ``is null``).
- ``like`` (case-sensitive) and ``ilike`` (ASCII case folding, as SQLite's LIKE) take ``%``
  and ``_`` wildcards, ``\%``/``\_`` for literal ones; ``match`` is a regular-expression
  search in the syntax both engines share (Rust regex in polars, Python ``re`` with ``$``
  meaning end-of-text in SQL; a pattern either engine rejects is an error).
- ``x includes v``: x is a JSON array (``tags``, a metadata list) with an element equal to v.
- ``+ - * /`` work on numbers (in floating point); division by zero is null.

Null semantics (SQL's three-valued logic, the same in both backends): a comparison, ``in``,
``like``, ``match`` or arithmetic with a null operand is unknown (null); ``not`` of unknown is
unknown; ``and``/``or`` are Kleene (``false and unknown`` is false, ``true or unknown`` is
true); a row matches only when the filter is true. ``is [not] null`` is never unknown, and
neither is ``includes`` (a missing list includes nothing, so ``not tags includes 'x'``
matches untagged rows) nor ``any_span(...)``.

``any_span(expr)`` (trace rows): some span of the trace satisfies ``expr`` (written in
span-row terms). In SQL it is ``EXISTS (SELECT 1 FROM spans AS s WHERE s.experiment_id =
traces.experiment_id AND s.root_span_id = traces.root_span_id AND <expr on spans>)``. In
polars the caller passes the experiment's span rows (``spans=`` a frame or a zero-argument
callable returning one, called only when the filter uses any_span): the inner filter runs on
that frame once, and the trace filter becomes ``root_span_id.is_in(<matching roots>)``.

The two compilers share one parser and one set of typing rules, so the TUI (polars) and
the CLI (SQL) select the same rows; tests/test_filter_properties.py checks it on random
data and random filters. Where they may differ: floats with more than ~15 significant
digits deep inside JSON (polars reads those with Python's float parser, SQLite with its
own, which may round the last digit differently), JSON text that one parser accepts and
the other rejects (previews of plain-text fields), and regular-expression corners outside
the shared syntax (Unicode classes such as ``\s`` differ on a few control characters).

Speed (polars): columns, scores, metrics, previews and top-level metadata keys compile to
vectorized expressions (a three-clause filter over 100k trace rows: tens of milliseconds).
Paths below the top level of JSON (``metadata.user.tier``, ``input.q``) and ``includes``
decode JSON in Python once per distinct document (about half a second per 100k distinct
documents), so the TUI runs filters in a worker.

SQL safety: the SQL text is assembled from fixed templates and whitelisted column
expressions only; every value from the filter (literals, patterns, JSON paths, score and
key names) is a ``?`` parameter. ``match`` calls ``evaltui_regexp(pattern, value)``, which
:func:`register_sql_functions` installs on a connection.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from evaltui.query import paths as P
from evaltui.query.paths import BOOL, JSON, NUM, TEXT, Column, JsonValue, PathError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "FilterError",
    "complete",
    "count_matching",
    "filter_frame",
    "format_filter",
    "matching_ids",
    "parse_filter",
    "register_sql_functions",
    "seen_values",
    "sql_schema",
    "to_polars",
    "to_sql",
    "word_start",
]

MAX_LENGTH = 10_000  # characters in a filter
MAX_DEPTH = 40  # nesting of the expression tree (keeps SQLite's and Python's stacks happy)
MAX_PATTERN = 5_000  # characters in a like/match pattern (SQLite caps LIKE patterns)


class FilterError(ValueError):
    """A filter that does not parse or compile. ``column`` is 1-based."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return self.message

    def caret(self, text: str) -> str:
        """The filter with a ``^`` under the column where it went wrong."""
        return f"{text}\n{' ' * (self.column - 1)}^"


def _error(problem: str, column: int, note: str = "") -> FilterError:
    return FilterError(f"{problem} at column {column}{note}", column)


# -- tokens ------------------------------------------------------------------------------------

KEYWORDS = P.KEYWORDS
COMPARE_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TWO_CHAR_OPS = ("<=", ">=", "!=", "<>", "==")
_ONE_CHAR_OPS = "=<>+-*/(),"
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "`": "`", "n": "\n", "t": "\t", "r": "\r"}
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, path, kw, op, eof; partial (lenient tokenizing only)
    value: Any
    pos: int  # 1-based column of the first character
    end: int  # 0-based index just after the token
    text: str


def _ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _digit(c: str) -> bool:
    return c.isascii() and c.isdigit()


def _ends_value(t: Token) -> bool:
    """Whether a token can end an operand (so a value right after it is missing an operator)."""
    return t.kind in ("num", "str", "path") or (t.kind == "op" and t.value == ")") or (
        t.kind == "kw" and t.value in ("null", "true", "false")
    )


def _lex_string(text: str, i: int, lenient: bool) -> tuple[str, int] | None:
    """The string starting at ``text[i]`` (a quote) and the index after it; None if unterminated
    (lenient mode only)."""
    quote, n, j, buf = text[i], len(text), i + 1, []
    while j < n:
        ch = text[j]
        if ch == quote:
            if j + 1 < n and text[j + 1] == quote:  # SQL style: '' is a quote
                buf.append(quote)
                j += 2
                continue
            return "".join(buf), j + 1
        if ch == "\\" and j + 1 < n:
            e = text[j + 1]
            if e in _ESCAPES:
                buf.append(_ESCAPES[e])
                j += 2
            elif e == "u":
                code, j = _lex_unicode(text, j)
                buf.append(code)
            else:  # kept as written: '\d' reaches the regex, '\%' the like pattern
                buf.append("\\")
                j += 1
            continue
        buf.append(ch)
        j += 1
    if lenient:
        return None
    raise _error("unterminated string starting", i + 1)


def _lex_unicode(text: str, j: int) -> tuple[str, int]:
    """A ``\\uXXXX`` escape at ``text[j]`` (the backslash): the character and the index after it."""

    def four(k: int) -> int | None:
        digits = text[k + 2 : k + 6]
        if text[k : k + 2] != "\\u" or len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            return None
        return int(digits, 16)

    code = four(j)
    if code is None:
        raise _error("invalid \\u escape (four hex digits expected)", j + 1)
    if 0xD800 <= code <= 0xDBFF:
        low = four(j + 6)
        if low is not None and 0xDC00 <= low <= 0xDFFF:
            return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), j + 12
    if 0xD800 <= code <= 0xDFFF:
        raise _error("invalid \\u escape (a lone surrogate)", j + 1)
    return chr(code), j + 6


def _lex_path(text: str, i: int, lenient: bool) -> tuple[Token, bool]:
    """A path (or keyword) starting at ``text[i]``; returns the token and whether it ends in
    a dangling dot (lenient mode)."""
    n, parts, j, quoted_head = len(text), [], i, text[i] == "`"
    if quoted_head:
        lexed = _lex_string(text, j, lenient)
        if lexed is None:
            return Token("partial", None, i + 1, n, text[i:]), False
        part, j = lexed
        parts.append(part)
    else:
        while j < n and _ident_char(text[j]):
            j += 1
        parts.append(text[i:j])
    dangling = False
    while j < n:
        if text[j] == ".":
            k = j + 1
            if k < n and text[k] in "\"'`":
                lexed = _lex_string(text, k, lenient)
                if lexed is None:
                    return Token("partial", None, k + 1, n, text[k:]), False
                part, j = lexed
                parts.append(part)
            elif k < n and _ident_char(text[k]):
                while k < n and _ident_char(text[k]):
                    k += 1
                parts.append(text[j + 1 : k])
                j = k
            elif lenient and k >= n:
                dangling, j = True, k
                break
            else:
                raise _error(f"expected a name after '{text[i:k]}'", k + 1)
        elif text[j] == "[":
            k = j + 1
            while k < n and text[k].isdigit() and text[k].isascii():
                k += 1
            if k == j + 1 or k >= n or text[k] != "]":
                if lenient and k >= n:
                    dangling, j = True, n
                    break
                raise _error("expected an index like [0]", j + 1)
            parts.append(int(text[j + 1 : k]))
            j = k + 1
        else:
            break
    source = text[i:j]
    if len(parts) == 1 and not quoted_head and source.lower() in KEYWORDS:
        return Token("kw", source.lower(), i + 1, j, source), False
    return Token("path", tuple(parts), i + 1, j, source), dangling


def _lex_number(text: str, i: int) -> Token:
    n, j = len(text), i
    while j < n and text[j].isascii() and text[j].isdigit():
        j += 1
    is_float = False
    if j + 1 < n and text[j] == "." and text[j + 1].isascii() and text[j + 1].isdigit():
        is_float, j = True, j + 1
        while j < n and text[j].isascii() and text[j].isdigit():
            j += 1
    if j < n and text[j] in "eE":
        k = j + 1
        if k < n and text[k] in "+-":
            k += 1
        if k < n and text[k].isascii() and text[k].isdigit():
            is_float, j = True, k
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
    if j < n and (_ident_char(text[j]) or text[j] == "."):
        k = j
        while k < n and (_ident_char(text[k]) or text[k] == "."):
            k += 1
        raise _error(f"invalid number '{text[i:k]}'", i + 1)
    source = text[i:j]
    value: int | float = float(source) if is_float else int(source)
    if isinstance(value, int) and value > _INT64_MAX:
        value = float(value)
    if value == float("inf"):
        raise _error(f"number '{source}' is too large", i + 1)
    return Token("num", value, i + 1, j, source)


def tokenize(text: str, *, lenient: bool = False) -> list[Token]:
    """The tokens of ``text``, ending with an ``eof`` token. Raises FilterError.

    ``lenient`` (for completion) turns an unterminated string or a path ending in ``.`` at
    the end of the text into a ``partial``/``path`` token instead of an error.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            tokens.append(Token("eof", None, n + 1, n, ""))
            return tokens
        c = text[i]
        if "\ud800" <= c <= "\udfff":
            raise _error("invalid character (a lone surrogate)", i + 1)
        if c in "'\"":
            lexed = _lex_string(text, i, lenient)
            if lexed is None:
                tokens.append(Token("partial", text[i + 1 :], i + 1, n, text[i:]))
                tokens.append(Token("eof", None, n + 1, n, ""))
                return tokens
            value, j = lexed
            tokens.append(Token("str", value, i + 1, j, text[i:j]))
            i = j
        elif c == "`" or c.isalpha() or c == "_":
            tok, dangling = _lex_path(text, i, lenient)
            tokens.append(tok)
            i = tok.end
            if dangling or tok.kind == "partial":
                tokens.append(Token("eof", None, n + 1, n, ""))
                return tokens
        elif _digit(c) or (c == "." and i + 1 < n and _digit(text[i + 1])):
            tok = _lex_number(text, i)
            tokens.append(tok)
            i = tok.end
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token("op", text[i : i + 2], i + 1, i + 2, text[i : i + 2]))
            i += 2
        elif c in _ONE_CHAR_OPS:
            tokens.append(Token("op", c, i + 1, i + 1, c))
            i += 1
        else:
            hint = {"!": " (did you mean '!='?)", "&": " (use 'and')", "|": " (use 'or')"}.get(c, "")
            shown = c if c.isprintable() else repr(c)[1:-1]
            raise _error(f"unexpected character '{shown}'", i + 1, hint)


# -- the expression tree ---------------------------------------------------------------------------


def _pos() -> Any:
    return field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Path:
    parts: tuple[str | int, ...]
    pos: int = _pos()

    @property
    def text(self) -> str:
        return P.format_path(self.parts)


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Arith:
    op: str  # + - * /
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = != < <= > >=
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class IsNull:
    operand: Expr
    negated: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class InList:
    operand: Expr
    values: tuple[Literal, ...]
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Like:
    operand: Expr
    pattern: str
    ignore_case: bool = False
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Match:
    operand: Expr
    pattern: str
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Includes:
    operand: Expr
    value: Literal
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]
    pos: int = _pos()


@dataclass(frozen=True, slots=True)
class AnySpan:
    expr: Expr
    pos: int = _pos()


Expr = Literal | Path | Neg | Arith | Compare | IsNull | InList | Like | Match | Includes | Not | And | Or | AnySpan
_CONDITIONS = (Compare, IsNull, InList, Like, Match, Includes, Not, And, Or, AnySpan)


# -- parsing -------------------------------------------------------------------------------------


def _describe(t: Token) -> str:
    return "end of input" if t.kind == "eof" else f"'{t.text}'"


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.toks = tokens
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def at(self, kind: str, *values: str) -> bool:
        t = self.peek()
        return t.kind == kind and (not values or t.value in values)

    def enter(self, t: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error("the filter is nested too deeply", t.pos)

    def parse(self) -> Expr:
        if self.at("eof"):
            raise FilterError("the filter is empty", 1)
        expr = self.or_()
        t = self.peek()
        if t.kind != "eof":
            raise self.unexpected(t)
        return expr

    def unexpected(self, t: Token) -> FilterError:
        prev = self.toks[self.i - 1] if self.i else None
        ends_value = prev is not None and _ends_value(prev)
        starts_value = t.kind in ("num", "str", "path") or t.value in ("(", "not", "any_span", "true", "false", "null")
        if t.value == ")" and t.kind == "op":
            return _error("unexpected ')' (no '(' to close)", t.pos)
        if t.kind == "kw" and t.value == "not" and ends_value:
            return _error("expected like, ilike, in, match or includes after 'not'", self.peek(1).pos)
        if ends_value and starts_value:
            return _error(f"expected 'and' or 'or' before {_describe(t)}", t.pos)
        return _error(f"unexpected {_describe(t)}", t.pos)

    def or_(self) -> Expr:
        first = self.peek()
        items = [self.and_()]
        while self.at("kw", "or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items), first.pos)

    def and_(self) -> Expr:
        first = self.peek()
        items = [self.not_()]
        while self.at("kw", "and"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items), first.pos)

    def not_(self) -> Expr:
        if self.at("kw", "not"):
            t = self.take()
            self.enter(t)
            operand = self.not_()
            self.depth -= 1
            return Not(operand, t.pos)
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.sum()
        t = self.peek()
        if t.kind == "op" and t.value in COMPARE_OPS:
            self.take()
            node = Compare(COMPARE_OPS[t.value], left, self.sum(), t.pos)
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value in COMPARE_OPS:
                raise _error("comparisons cannot be chained (join them with 'and')", nxt.pos)
            return node
        if t.kind == "kw" and t.value == "is":
            self.take()
            negated = self.at("kw", "not")
            if negated:
                self.take()
            if not self.at("kw", "null"):
                after = "is not" if negated else "is"
                raise _error(f"expected 'null' after '{after}'", self.peek().pos)
            self.take()
            return IsNull(left, negated, t.pos)
        negated_by = None
        if t.kind == "kw" and t.value == "not" and self.peek(1).kind == "kw" and self.peek(1).value in (
            "like", "ilike", "in", "match", "includes"
        ):
            negated_by = self.take()
            t = self.peek()
        if t.kind == "kw" and t.value in ("like", "ilike", "match", "in", "includes"):
            self.take()
            node = self.operator(t, left)
            return Not(node, negated_by.pos) if negated_by else node
        return left

    def operator(self, t: Token, left: Expr) -> Expr:
        if t.value in ("like", "ilike", "match"):
            pat = self.peek()
            if pat.kind != "str":
                raise _error(f"expected a quoted pattern after '{t.text}'", pat.pos)
            self.take()
            if len(pat.value) > MAX_PATTERN:
                raise _error(f"the pattern is longer than {MAX_PATTERN} characters", pat.pos)
            if t.value == "match":
                return Match(left, pat.value, t.pos)
            return Like(left, pat.value, t.value == "ilike", t.pos)
        if t.value == "includes":
            return Includes(left, self.literal(t), t.pos)
        # in
        if not self.at("op", "("):
            raise _error("expected '(' after 'in'", self.peek().pos)
        self.take()
        values = [self.literal(t)]
        while self.at("op", ","):
            self.take()
            values.append(self.literal(t))
        if not self.at("op", ")"):
            raise _error("expected ',' or ')' in the list", self.peek().pos)
        self.take()
        return InList(left, tuple(values), t.pos)

    def literal(self, op: Token) -> Literal:
        t = self.peek()
        if t.kind == "op" and t.value == "-" and self.peek(1).kind == "num":
            self.take()
            num = self.take()
            return Literal(-num.value, t.pos)
        if t.kind in ("num", "str"):
            self.take()
            return Literal(t.value, t.pos)
        if t.kind == "kw" and t.value in ("true", "false"):
            self.take()
            return Literal(t.value == "true", t.pos)
        if t.kind == "kw" and t.value == "null":
            raise _error("null cannot be a value here (use 'is null')", t.pos)
        found = "" if t.kind == "eof" else f", found {_describe(t)}"
        raise _error(f"expected a value after '{self.toks[self.i - 1].text}'", t.pos, found)

    def sum(self) -> Expr:
        left = self.product()
        while self.at("op", "+", "-"):
            t = self.take()
            left = Arith(t.value, left, self.product(), t.pos)
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.at("op", "*", "/"):
            t = self.take()
            left = Arith(t.value, left, self.unary(), t.pos)
        return left

    def unary(self) -> Expr:
        if self.at("op", "-"):
            t = self.take()
            if self.at("num"):  # a negative number literal
                return Literal(-self.take().value, t.pos)
            self.enter(t)
            operand = self.unary()
            self.depth -= 1
            return Neg(operand, t.pos)
        return self.primary()

    def primary(self) -> Expr:
        t = self.peek()
        if t.kind in ("num", "str"):
            self.take()
            return Literal(t.value, t.pos)
        if t.kind == "path":
            self.take()
            return Path(t.value, t.pos)
        if t.kind == "kw" and t.value in ("true", "false", "null"):
            self.take()
            return Literal(None if t.value == "null" else t.value == "true", t.pos)
        if t.kind == "op" and t.value == "(":
            self.take()
            self.enter(t)
            inner = self.or_()
            self.close(t)
            return inner
        if t.kind == "kw" and t.value == "any_span":
            self.take()
            if not self.at("op", "("):
                raise _error("expected '(' after 'any_span'", self.peek().pos)
            paren = self.take()
            self.enter(paren)
            inner = self.or_()
            self.close(paren)
            return AnySpan(inner, t.pos)
        prev = self.toks[self.i - 1] if self.i else None
        found = "" if t.kind == "eof" else f", found {_describe(t)}"
        if prev is None:
            raise _error("expected a value", t.pos, found)
        raise _error(f"expected a value after '{prev.text}'", t.pos, found)

    def close(self, opening: Token) -> None:
        t = self.peek()
        if not (t.kind == "op" and t.value == ")"):
            found = "" if t.kind == "eof" else f", found {_describe(t)}"
            raise _error("expected ')'", t.pos, f" to close the '(' at column {opening.pos}{found}")
        self.take()
        self.depth -= 1


def _check_depth(expr: Expr) -> None:
    # Chains like a + b + c + ... build deep trees without deep parser recursion.
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error("the expression is too long to evaluate (split it)", node.pos)
        for child in _children(node):
            # and/or lists are compiled as balanced trees: they cost log2(n) levels
            step = max(1, len(node.items).bit_length()) if isinstance(node, (And, Or)) else 1
            stack.append((child, depth + step))


def _children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, (And, Or)):
        return node.items
    if isinstance(node, (Arith, Compare)):
        return (node.left, node.right)
    if isinstance(node, (Neg, IsNull, InList, Like, Match, Includes, Not)):
        return (node.operand,)
    if isinstance(node, AnySpan):
        return (node.expr,)
    return ()


def _find(node: Expr, kind: type) -> Expr | None:
    """The first node of ``kind`` in the tree (an explicit stack: trees can be wide)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, kind):
            return n
        stack.extend(reversed(_children(n)))
    return None


def parse_filter(text: str) -> Expr:
    """Parse a filter into its expression tree. Raises FilterError (nothing else)."""
    if not isinstance(text, str):
        raise TypeError(f"a filter is text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    expr = _Parser(tokenize(text)).parse()
    _check_depth(expr)
    return expr


def _quote(value: str) -> str:
    out = []
    for ch in value:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable() and ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _format_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


def format_filter(expr: Expr) -> str:
    """The filter text of an expression tree (fully parenthesized; parses back to ``expr``)."""
    f = format_filter
    if isinstance(expr, Literal):
        return _format_literal(expr.value)
    if isinstance(expr, Path):
        return expr.text
    if isinstance(expr, Neg):
        return f"-({f(expr.operand)})"
    if isinstance(expr, (Arith, Compare)):
        return f"({f(expr.left)} {expr.op} {f(expr.right)})"
    if isinstance(expr, IsNull):
        return f"({f(expr.operand)} is {'not ' if expr.negated else ''}null)"
    if isinstance(expr, InList):
        return f"({f(expr.operand)} in ({', '.join(_format_literal(v.value) for v in expr.values)}))"
    if isinstance(expr, Like):
        return f"({f(expr.operand)} {'ilike' if expr.ignore_case else 'like'} {_quote(expr.pattern)})"
    if isinstance(expr, Match):
        return f"({f(expr.operand)} match {_quote(expr.pattern)})"
    if isinstance(expr, Includes):
        return f"({f(expr.operand)} includes {_format_literal(expr.value.value)})"
    if isinstance(expr, Not):
        return f"(not {f(expr.operand)})"
    if isinstance(expr, And):
        return "(" + " and ".join(f(i) for i in expr.items) + ")"
    if isinstance(expr, Or):
        return "(" + " or ".join(f(i) for i in expr.items) + ")"
    if isinstance(expr, AnySpan):
        return f"any_span({f(expr.expr)})"
    raise TypeError(f"not a filter expression: {expr!r}")


# -- like patterns and regular expressions ---------------------------------------------------------

_ANY, _ONE = object(), object()  # % and _


def _like_items(pattern: str) -> list[Any]:
    """A like pattern as literal characters and the _ANY/_ONE wildcards; backslash escapes %, _ and itself."""
    items: list[Any] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n and pattern[i + 1] in "%_\\":
            items.append(pattern[i + 1])
            i += 2
            continue
        items.append(_ANY if ch == "%" else _ONE if ch == "_" else ch)
        i += 1
    return items


def _like_sql(items: list[Any]) -> str:
    out = []
    for it in items:
        if it is _ANY:
            out.append("%")
        elif it is _ONE:
            out.append("_")
        else:
            out.append("\\" + it if it in "%_\\" else it)
    return "".join(out)


def _glob_sql(items: list[Any]) -> str:
    out = []
    for it in items:
        if it is _ANY:
            out.append("*")
        elif it is _ONE:
            out.append("?")
        else:
            out.append(f"[{it}]" if it in "*?[" else it)
    return "".join(out)


def _like_regex(items: list[Any], ignore_case: bool) -> str:
    """A Rust regex (polars) with the meaning of SQLite's LIKE (ilike) or GLOB (like)."""
    start, end = 0, len(items)
    anchored_start = not (items and items[0] is _ANY)
    anchored_end = not (items and items[-1] is _ANY)
    while start < end and items[start] is _ANY:
        start += 1
    while end > start and items[end - 1] is _ANY:
        end -= 1
    out = ["(?s)", r"\A" if anchored_start else ""]
    for it in items[start:end]:
        if it is _ANY:
            out.append(".*")
        elif it is _ONE:
            out.append(".")
        elif ignore_case and it.isascii() and it.isalpha():
            out.append(f"[{it.lower()}{it.upper()}]")
        elif it.isascii() and not it.isalnum():
            out.append(f"\\x{{{ord(it):x}}}")
        else:
            out.append(it)
    out.append(r"\z" if anchored_end else "")
    return "".join(out)


def _python_regex_source(pattern: str) -> str:
    """``pattern`` for Python's re with Rust's meaning of ``$`` (end of text, unless (?m))."""
    if "(?m" in pattern or re.search(r"\(\?[a-zA-Z]*m", pattern):
        return pattern
    out, i, n, in_class = [], 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal in both engines
                out.append("]")
                i += 1
            continue
        elif ch == "$":
            out.append(r"\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _python_regex(pattern: str) -> re.Pattern[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FutureWarning: syntax whose meaning differs (nested sets)
        return re.compile(_python_regex_source(pattern))


@functools.lru_cache(maxsize=256)
def _check_regex(pattern: str) -> str | None:
    """Why ``pattern`` is not a regular expression both engines accept, or None."""
    try:
        _python_regex(pattern)
    except (re.error, FutureWarning, DeprecationWarning, RecursionError, OverflowError) as e:
        return str(e).split("\n")[0]
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except Exception as e:  # polars raises ComputeError and friends for bad patterns
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        return lines[-1] if lines else type(e).__name__
    return None


def _sql_regexp(pattern: Any, value: Any) -> int | None:
    if pattern is None or value is None:
        return None
    return 1 if _python_regex(str(pattern)).search(str(value)) else 0


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """Install ``evaltui_regexp(pattern, value)`` (used by ``match``) on a connection."""
    conn.create_function("evaltui_regexp", 2, _sql_regexp, deterministic=True)


# -- compiling: the typing rules both backends share ------------------------------------------------

_LITERAL_TEXT = "literal text"  # the kind of a quoted string literal


class _Compiler:
    """Typing rules and the walk over the tree; subclasses emit polars or SQL."""

    backend = ""

    def __init__(self, row_type: str, columns: Mapping[str, Any] | None, *, in_any_span: bool = False):
        if row_type not in P.ROW_TYPES:
            raise ValueError(f"row_type must be one of {P.ROW_TYPES}, not {row_type!r}")
        self.row_type = row_type
        self.columns = columns
        self.in_any_span = in_any_span
        self._resolved: dict[tuple, P.Resolved] = {}

    def resolve(self, path: Path) -> P.Resolved:
        key = path.parts
        if key not in self._resolved:
            try:
                self._resolved[key] = P.resolve(
                    path.parts, row_type=self.row_type, columns=self.columns, backend=self.backend
                )
            except PathError as e:
                note = f" (did you mean {e.suggestion}?)" if e.suggestion else ""
                raise _error(e.message, path.pos, note) from None
        return self._resolved[key]

    def kind(self, node: Expr) -> str:
        if isinstance(node, Literal):
            if node.value is None:
                return "null"
            return _LITERAL_TEXT if isinstance(node.value, str) else NUM
        if isinstance(node, Path):
            return self.resolve(node).kind
        if isinstance(node, (Neg, Arith)):
            return NUM
        return "cond"

    # conditions

    def cond(self, node: Expr) -> Any:
        if isinstance(node, And):
            return self.balanced([self.cond(i) for i in node.items], self.and_)
        if isinstance(node, Or):
            return self.balanced([self.cond(i) for i in node.items], self.or_)
        if isinstance(node, Not):
            return self.not_(self.cond(node.operand))
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, IsNull):
            return self.null_check(node.operand, node.negated)
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, Like):
            items = _like_items(node.pattern)
            return self.like(self.text(node.operand, "ilike" if node.ignore_case else "like"), items, node.ignore_case)
        if isinstance(node, Match):
            problem = _check_regex(node.pattern)
            if problem:
                raise _error(f"invalid regular expression ({problem})", node.pos)
            return self.match(self.text(node.operand, "match"), node.pattern)
        if isinstance(node, Includes):
            return self.includes(node)
        if isinstance(node, AnySpan):
            if self.row_type != "traces" or self.in_any_span:
                raise _error("any_span(...) applies to trace rows", node.pos)
            nested = _find(node.expr, AnySpan)
            if nested is not None:
                raise _error("any_span(...) applies to trace rows", nested.pos)
            return self.any_span(node)
        if isinstance(node, Literal):
            if node.value is None:
                return self.null_condition()
            if isinstance(node.value, str):
                raise _error("expected a condition, found text", node.pos)
            return self.truthy(self.num(node))
        if isinstance(node, Path):
            r = self.resolve(node)
            if r.kind == TEXT:
                raise _error(f"'{node.text}' is text: compare it (e.g. {node.text} = '...')", node.pos)
            if isinstance(r, Column) and r.kind == BOOL:
                return self.bool_column(r)
            return self.truthy(self.num(node))
        return self.truthy(self.num(node))  # arithmetic: non-zero is true, as in SQL

    def balanced(self, parts: list[Any], join: Callable[[Any, Any], Any]) -> Any:
        # a balanced tree keeps SQLite's expression depth at log2(n) for long and/or lists
        while len(parts) > 1:
            parts = [join(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
        return parts[0]

    def compare(self, node: Compare) -> Any:
        kl, kr = self.kind(node.left), self.kind(node.right)
        if "null" in (kl, kr):
            raise _error("compare with null using 'is null' or 'is not null'", node.pos)
        if "cond" in (kl, kr):
            raise _error(f"'{node.op}' compares values, not conditions (add parentheses?)", node.pos)
        if NUM in (kl, kr) or BOOL in (kl, kr):
            if _LITERAL_TEXT in (kl, kr):
                lit = node.left if kl == _LITERAL_TEXT else node.right
                raise _error("cannot compare a number with text", lit.pos)
            return self.cmp(node.op, self.num(node.left), self.num(node.right))
        return self.cmp(node.op, self.text(node.left, node.op), self.text(node.right, node.op))

    def in_list(self, node: InList) -> Any:
        kinds = {_LITERAL_TEXT if isinstance(v.value, str) else NUM for v in node.values}
        if len(kinds) > 1:
            first = _LITERAL_TEXT if isinstance(node.values[0].value, str) else NUM
            odd = next(v for v in node.values if (_LITERAL_TEXT if isinstance(v.value, str) else NUM) != first)
            raise _error("a list holds numbers or text, not both", odd.pos)
        if kinds == {NUM}:
            if self.kind(node.operand) == _LITERAL_TEXT:
                raise _error("cannot compare text with numbers", node.operand.pos)
            return self.in_values(self.num(node.operand), [_number(v.value) for v in node.values])
        return self.in_values(self.text(node.operand, "in"), [v.value for v in node.values])

    def includes(self, node: Includes) -> Any:
        target = node.operand
        if not isinstance(target, Path):
            raise _error("includes looks inside a list, like tags", node.pos)
        r = self.resolve(target)
        if r.kind not in (TEXT, JSON):
            what = "a boolean" if r.kind == BOOL else "a number"
            raise _error(f"includes looks inside a list, but '{target.text}' is {what}", target.pos)
        v = node.value.value
        return self.includes_value(r, v if isinstance(v, str) else _number(v))

    # values

    def num(self, node: Expr) -> Any:
        if isinstance(node, Literal):
            if node.value is None:
                raise _error("null is not a number (use 'is null')", node.pos)
            if isinstance(node.value, str):
                raise _error("expected a number, found text", node.pos)
            return self.num_literal(_number(node.value))
        if isinstance(node, Path):
            r = self.resolve(node)
            if isinstance(r, JsonValue):
                return self.num_json(r)
            if r.kind == TEXT:
                return self.parse_number(self.column(r))
            return self.num_column(r)
        if isinstance(node, Neg):
            return self.neg(self.num(node.operand))
        if isinstance(node, Arith):
            return self.arith(node.op, self.num(node.left), self.num(node.right))
        raise _error("expected a number, found a condition", node.pos)

    def text(self, node: Expr, context: str) -> Any:
        if isinstance(node, Literal) and isinstance(node.value, str):
            return self.text_literal(node.value)
        if isinstance(node, Path):
            r = self.resolve(node)
            if isinstance(r, JsonValue):
                return self.text_json(r)
            if r.kind == TEXT:
                return self.column(r)
            what = "a boolean" if r.kind == BOOL else "a number"
            raise _error(f"'{context}' compares text, but '{node.text}' is {what}", node.pos)
        if isinstance(node, Literal) and node.value is None:
            raise _error("compare with null using 'is null' or 'is not null'", node.pos)
        what = "a condition" if isinstance(node, _CONDITIONS) else "a number"
        raise _error(f"'{context}' compares text, found {what}", node.pos)

    def null_check(self, node: Expr, negated: bool) -> Any:
        """``node is [not] null``, for a value of any kind."""
        if isinstance(node, Path):
            r = self.resolve(node)
            if isinstance(r, JsonValue):
                return self.json_is_null(r, negated)
            value = self.column(r)
        elif isinstance(node, Literal):
            if node.value is None:
                value = self.null_value()
            elif isinstance(node.value, str):
                value = self.text_literal(node.value)
            else:
                value = self.num_literal(_number(node.value))
        elif isinstance(node, (Neg, Arith)):
            value = self.num(node)
        else:
            value = self.cond(node)
        return self.is_null(value, negated)


def _number(value: Any) -> int | float:
    return int(value) if isinstance(value, bool) else value


# -- polars ---------------------------------------------------------------------------------------


def _per_unique(expr: pl.Expr, fn: Callable[[Any], Any], dtype: Any) -> pl.Expr:
    """``fn`` applied to each distinct value of ``expr`` (JSON documents repeat a lot)."""

    def run(s: pl.Series) -> pl.Series:
        default = fn(None)
        keys = s.drop_nulls().unique()
        if keys.len() == 0:
            return pl.Series(s.name, [default] * s.len(), dtype=dtype)
        if keys.len() * 2 > s.len():  # mostly distinct: mapping each row is cheaper than a join
            return pl.Series(s.name, [fn(v) for v in s.to_list()], dtype=dtype)
        values = pl.Series([fn(k) for k in keys.to_list()], dtype=dtype)
        return s.replace_strict(keys, values, default=default, return_dtype=dtype)

    return expr.map_batches(run, return_dtype=dtype, is_elementwise=True)


def _json_at(parts: tuple[Any, ...], view: Callable[[Any], Any]) -> Callable[[str | None], Any]:
    def fn(text: str | None) -> Any:
        doc = P.load_json(text)
        return view(None if doc is P.INVALID else P.walk(doc, parts))

    return fn


def _text_fixup(typed: str, root: str, key: str) -> pl.Expr:
    """The text view of a trace frame's ``metadata.<key>`` text column.

    The store writes numbers into a text column when a key's values have mixed types, so
    values that look like numbers are looked up in the raw JSON: only JSON strings are text.
    """

    def run(s: pl.Series) -> pl.Series:
        values = s.struct.field("v").clone()
        mask = values.str.contains(P.NUMBER_PATTERN).fill_null(False)
        if not mask.any():
            return values
        idx = mask.arg_true()
        fn = _json_at((key,), P.text_of)
        fixed = [fn(t) for t in s.struct.field("r").gather(idx).to_list()]
        return values.scatter(idx, pl.Series(fixed, dtype=pl.String))

    both = pl.struct(pl.col(typed).cast(pl.String).alias("v"), pl.col(root).cast(pl.String).alias("r"))
    return both.map_batches(run, return_dtype=pl.String, is_elementwise=True)


class _PolarsCompiler(_Compiler):
    backend = "polars"

    def __init__(self, row_type: str, columns: Mapping[str, Any], spans: Any = None, *, in_any_span: bool = False):
        super().__init__(row_type, columns, in_any_span=in_any_span)
        self.spans = spans

    def and_(self, a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return a & b

    def or_(self, a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return a | b

    def not_(self, a: pl.Expr) -> pl.Expr:
        return ~a

    def null_condition(self) -> pl.Expr:
        return pl.lit(None, dtype=pl.Boolean)

    def null_value(self) -> pl.Expr:
        return pl.lit(None)

    def truthy(self, a: pl.Expr) -> pl.Expr:
        return a != 0

    def bool_column(self, r: Column) -> pl.Expr:
        return pl.col(r.name)

    def cmp(self, op: str, a: pl.Expr, b: pl.Expr) -> pl.Expr:
        if op == "=":
            return a == b
        if op == "!=":
            return a != b
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b

    def num_literal(self, v: int | float) -> pl.Expr:
        return pl.lit(float(v), dtype=pl.Float64)

    def text_literal(self, s: str) -> pl.Expr:
        return pl.lit(s, dtype=pl.String)

    def column(self, r: Column) -> pl.Expr:
        c = pl.col(r.name)
        return c.cast(pl.String) if r.kind == TEXT and r.dtype != pl.String else c

    def num_column(self, r: Column) -> pl.Expr:
        return pl.col(r.name).cast(pl.Float64)

    def parse_number(self, e: pl.Expr) -> pl.Expr:
        number = e.str.strip_chars(P.JSON_WS).cast(pl.Float64, strict=False)
        return pl.when(e.str.contains(P.NUMBER_PATTERN)).then(number)

    def _typed_is_text(self, r: JsonValue) -> bool:
        return P.kind_of_dtype(r.typed_dtype) == TEXT

    def num_json(self, r: JsonValue) -> pl.Expr:
        if r.typed_column:
            if self._typed_is_text(r):
                return self.parse_number(pl.col(r.typed_column).cast(pl.String))
            return pl.col(r.typed_column).cast(pl.Float64)
        return _per_unique(pl.col(r.root).cast(pl.String), _json_at(r.parts, P.number_of), pl.Float64)

    def text_json(self, r: JsonValue) -> pl.Expr:
        if r.typed_column:
            if self._typed_is_text(r):
                return _text_fixup(r.typed_column, r.root, r.parts[0])  # type: ignore[arg-type]
            return pl.lit(None, dtype=pl.String)  # a numeric column: numbers are not text
        return _per_unique(pl.col(r.root).cast(pl.String), _json_at(r.parts, P.text_of), pl.String)

    def json_is_null(self, r: JsonValue, negated: bool) -> pl.Expr:
        if r.typed_column:
            missing = pl.col(r.typed_column).is_null()
        else:
            missing = _per_unique(pl.col(r.root).cast(pl.String), _json_at(r.parts, lambda v: v is None), pl.Boolean)
        return ~missing if negated else missing

    def is_null(self, value: pl.Expr, negated: bool) -> pl.Expr:
        return value.is_not_null() if negated else value.is_null()

    def neg(self, a: pl.Expr) -> pl.Expr:
        return -a

    def arith(self, op: str, a: pl.Expr, b: pl.Expr) -> pl.Expr:
        if op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        else:
            out = pl.when(b != 0).then(a / b)
        return out.fill_nan(None)  # SQLite turns NaN (inf - inf) into NULL

    def in_values(self, value: pl.Expr, values: list[Any]) -> pl.Expr:
        if values and not isinstance(values[0], str):
            values = [float(v) for v in values]
        # null in, null out (SQL's IN), whatever the polars version's default for nulls
        return pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Boolean)).otherwise(value.is_in(values))

    def like(self, value: pl.Expr, items: list[Any], ignore_case: bool) -> pl.Expr:
        if not ignore_case and items and all(it is not _ONE for it in items):
            lead, trail = items[0] is _ANY, items[-1] is _ANY
            core = items[(1 if lead else 0) : max(len(items) - (1 if trail else 0), 0)]
            if all(isinstance(it, str) for it in core):  # no wildcard inside: plain string functions
                literal = "".join(core)
                if lead and trail:
                    return value.str.contains(literal, literal=True)
                if trail:
                    return value.str.starts_with(literal)
                if lead:
                    return value.str.ends_with(literal)
                return value == literal
        if not items:
            return value == ""
        return value.str.contains(_like_regex(items, ignore_case))

    def match(self, value: pl.Expr, pattern: str) -> pl.Expr:
        return value.str.contains(pattern)

    def includes_value(self, r: P.Resolved, needle: Any) -> pl.Expr:
        if isinstance(r, JsonValue):
            fn = _json_at(r.parts, lambda v: P.array_includes(v, needle))
            return _per_unique(pl.col(r.root).cast(pl.String), fn, pl.Boolean)
        fn = _json_at((), lambda v: P.array_includes(v, needle))
        return _per_unique(self.column(r), fn, pl.Boolean)

    def any_span(self, node: AnySpan) -> pl.Expr:
        spans = self.spans() if callable(self.spans) else self.spans
        if spans is None:
            raise _error("any_span(...) needs the experiment's spans (none were given)", node.pos)
        self.spans = spans  # a callable is called once
        schema = dict(spans.collect_schema() if isinstance(spans, pl.LazyFrame) else spans.schema)
        if "root_span_id" not in schema or (self.columns is not None and "root_span_id" not in self.columns):
            raise _error("any_span(...) needs root_span_id in both the rows and the spans", node.pos)
        inner = _PolarsCompiler("spans", schema, in_any_span=True).cond(node.expr)
        roots = spans.lazy().filter(inner).select(pl.col("root_span_id")).unique().collect().to_series()
        return pl.col("root_span_id").is_in(roots.implode())


SpansArg = pl.DataFrame | pl.LazyFrame | Callable[[], pl.DataFrame | pl.LazyFrame] | None


def to_polars(
    expr: Expr | str,
    schema: Mapping[str, Any],
    *,
    row_type: str = "traces",
    spans: SpansArg = None,
) -> pl.Expr:
    """A boolean polars expression for ``expr`` over a frame with ``schema`` (name -> dtype).

    ``row_type`` is "traces" (load_trace_rows) or "spans" (load_span_rows). ``spans``
    serves ``any_span(...)``: the experiment's span rows, or a callable returning them
    (called only if the filter uses any_span). Raises FilterError.
    """
    if isinstance(expr, str):
        expr = parse_filter(expr)
    return _PolarsCompiler(row_type, dict(schema), spans).cond(expr)


def filter_frame(
    frame: pl.DataFrame, text: str, *, row_type: str = "traces", spans: SpansArg = None
) -> pl.DataFrame:
    """The rows of ``frame`` that match the filter ``text`` (all rows for a blank filter)."""
    if not text.strip():
        return frame
    return frame.filter(to_polars(parse_filter(text), frame.schema, row_type=row_type, spans=spans))


# -- SQL -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sql:
    text: str
    params: tuple[Any, ...] = ()


def _q(template: str, *args: _Sql) -> _Sql:
    """Fill the ``{}`` slots of a constant template with fragments, parameters in order."""
    params: list[Any] = []
    for a in args:
        params.extend(a.params)
    return _Sql(template.format(*(a.text for a in args)), tuple(params))


def _param(value: Any) -> _Sql:
    return _Sql("?", (value,))


_SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _SqlCompiler(_Compiler):
    backend = "sql"

    def __init__(
        self,
        row_type: str,
        columns: Mapping[str, Any] | None,
        qualifier: str,
        *,
        counter: list[int] | None = None,
        in_any_span: bool = False,
    ):
        super().__init__(row_type, columns, in_any_span=in_any_span)
        self.q = qualifier
        self.counter = counter if counter is not None else [0]

    def and_(self, a: _Sql, b: _Sql) -> _Sql:
        return _q("({} AND {})", a, b)

    def or_(self, a: _Sql, b: _Sql) -> _Sql:
        return _q("({} OR {})", a, b)

    def not_(self, a: _Sql) -> _Sql:
        return _q("(NOT {})", a)

    def null_condition(self) -> _Sql:
        return _Sql("NULL")

    def null_value(self) -> _Sql:
        return _Sql("NULL")

    def truthy(self, a: _Sql) -> _Sql:
        return _q("({} <> 0)", a)

    def bool_column(self, r: Column) -> _Sql:
        return _q("({} <> 0)", self.column(r))

    def cmp(self, op: str, a: _Sql, b: _Sql) -> _Sql:
        return _q("({} " + _SQL_OPS[op] + " {})", a, b)

    def num_literal(self, v: int | float) -> _Sql:
        return _param(v)

    def text_literal(self, s: str) -> _Sql:
        return _param(s)

    def column(self, r: Column) -> _Sql:
        assert r.sql is not None
        return _Sql(r.sql.format(q=self.q), r.sql_params)

    def num_column(self, r: Column) -> _Sql:
        return self.column(r)

    def parse_number(self, t: _Sql) -> _Sql:
        return _q(
            "(CASE WHEN json_valid({}) THEN CASE WHEN json_type({}) IN ('integer', 'real')"
            " THEN json_extract({}, '$') END END)",
            t, t, t,
        )

    def _container(self, r: JsonValue) -> _Sql:
        assert r.sql_root is not None
        root = r.sql_root.format(q=self.q)
        return _Sql(f"(CASE WHEN json_valid({root}) THEN {root} END)" if r.guard else root)

    def json_value(self, r: JsonValue) -> _Sql:
        return _q("json_extract({}, {})", self._container(r), _param(P.json_path(r.parts)))

    def num_json(self, r: JsonValue) -> _Sql:
        v = self.json_value(r)
        return _q(
            "(CASE typeof({}) WHEN 'integer' THEN {} WHEN 'real' THEN {} WHEN 'text' THEN {} END)",
            v, v, v, self.parse_number(v),
        )

    def text_json(self, r: JsonValue) -> _Sql:
        v = self.json_value(r)
        return _q("(CASE WHEN typeof({}) = 'text' THEN {} END)", v, v)

    def is_null(self, value: _Sql, negated: bool) -> _Sql:
        return _q("({} IS NOT NULL)" if negated else "({} IS NULL)", value)

    def json_is_null(self, r: JsonValue, negated: bool) -> _Sql:
        return self.is_null(self.json_value(r), negated)

    def neg(self, a: _Sql) -> _Sql:
        return _q("(- {})", a)

    def arith(self, op: str, a: _Sql, b: _Sql) -> _Sql:
        # floating point, like polars (SQLite divides integers as integers; x / 0 is NULL)
        return _q("(CAST({} AS REAL) " + op + " {})", a, b)

    def in_values(self, value: _Sql, values: list[Any]) -> _Sql:
        return _q("({} IN (" + ", ".join("{}" for _ in values) + "))", value, *map(_param, values))

    def like(self, value: _Sql, items: list[Any], ignore_case: bool) -> _Sql:
        if ignore_case:  # SQLite's LIKE folds ASCII case only, as the polars side does
            return _q("({} LIKE {} ESCAPE '\\')", value, _param(_like_sql(items)))
        return _q("({} GLOB {})", value, _param(_glob_sql(items)))

    def match(self, value: _Sql, pattern: str) -> _Sql:
        return _q("evaltui_regexp({}, {})", _param(pattern), value)

    def includes_value(self, r: P.Resolved, needle: Any) -> _Sql:
        self.counter[0] += 1
        alias = f"je{self.counter[0]}"
        if isinstance(needle, str):
            element = _q(f"{alias}.type = 'text' AND {alias}.value = {{}}", _param(needle))
        else:
            element = _q(
                f"{alias}.type IN ('integer', 'real', 'true', 'false') AND {alias}.value = {{}}", _param(needle)
            )
        if isinstance(r, JsonValue):
            c, path = self._container(r), _param(P.json_path(r.parts))
            return _q(
                "(CASE WHEN json_type({}, {}) = 'array' THEN EXISTS (SELECT 1 FROM json_each({}, {}) AS "
                + alias + " WHERE {}) ELSE 0 END)",
                c, path, c, path, element,
            )
        t = self.column(r)
        return _q(
            "(CASE WHEN json_valid({}) THEN CASE WHEN json_type({}) = 'array'"
            " THEN EXISTS (SELECT 1 FROM json_each({}) AS " + alias + " WHERE {}) ELSE 0 END ELSE 0 END)",
            t, t, t, element,
        )

    def any_span(self, node: AnySpan) -> _Sql:
        span_columns = None
        if self.columns is not None:  # validate as the span frame would: its fields, the experiment's scores
            span_columns = {k: None for k in P.SPAN_FIELDS if k not in P.SQL_ONLY["spans"]}
            span_columns.update({k: v for k, v in self.columns.items() if k.startswith("scores.")})
        inner = _SqlCompiler("spans", span_columns, "s", counter=self.counter, in_any_span=True).cond(node.expr)
        q = self.q
        return _q(
            f"EXISTS (SELECT 1 FROM spans AS s WHERE s.experiment_id = {q}.experiment_id"
            f" AND s.root_span_id = {q}.root_span_id AND {{}})",
            inner,
        )


def to_sql(
    expr: Expr | str,
    *,
    table: str = "traces",
    schema: Mapping[str, Any] | None = None,
    alias: str | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause for ``expr`` over the ``traces`` or ``spans`` table, and its parameters.

    Columns are qualified with ``alias`` (default: the table name), so the clause can sit
    next to joins and subqueries. Every value is a ``?`` parameter. ``schema`` (column
    names as in the frames, e.g. from :func:`sql_schema`) makes unknown scores and metadata
    keys errors, as they are in polars. A filter using ``match`` needs
    :func:`register_sql_functions` on the connection. Raises FilterError.
    """
    if table not in P.ROW_TYPES:
        raise ValueError(f"table must be one of {P.ROW_TYPES}, not {table!r}")
    qualifier = alias or table
    if not _ALIAS.fullmatch(qualifier):
        raise ValueError(f"invalid SQL alias {qualifier!r}")
    if isinstance(expr, str):
        expr = parse_filter(expr)
    sql = _SqlCompiler(table, schema, qualifier).cond(expr)
    assert sql.text.count("?") == len(sql.params)
    return sql.text, list(sql.params)


def sql_schema(store: Any, experiment_id: str, row_type: str = "traces") -> dict[str, Any]:
    """The frame columns an experiment's rows have, for validating paths in SQL."""
    from evaltui.store import experiment_fields

    fields = experiment_fields(store, experiment_id)
    out: dict[str, Any] = {name: None for name in P.FIELDS[row_type] if name not in P.SQL_ONLY[row_type]}
    out.update({f"scores.{s}": pl.Float64 for s in fields.get("score", [])})
    if row_type == "traces":
        out.update({f"metadata.{k}": pl.String for k in fields.get("metadata", [])})
    return out


def _run(store: Any, select: str, experiment_id: str, text: str, row_type: str) -> list[tuple]:
    table = "traces" if row_type == "traces" else "spans"
    if row_type not in P.ROW_TYPES:
        raise ValueError(f"row_type must be one of {P.ROW_TYPES}, not {row_type!r}")
    where, params = "1", []
    if text.strip():
        where, params = to_sql(text, table=table, schema=sql_schema(store, experiment_id, row_type))
    sql = f"SELECT {select} FROM {table} WHERE {table}.experiment_id = ? AND ({where})"
    with store.lock:
        register_sql_functions(store.conn)
        return store.conn.execute(sql, [experiment_id, *params]).fetchall()


def count_matching(store: Any, experiment_id: str, text: str, *, row_type: str = "traces") -> int:
    """How many trace (or span) rows of an experiment match the filter, counted by SQLite."""
    return _run(store, "count(*)", experiment_id, text, row_type)[0][0]


def matching_ids(store: Any, experiment_id: str, text: str, *, row_type: str = "traces") -> list[str]:
    """root_span_ids of the matching traces (row ids of the matching spans), via SQL."""
    col = "traces.root_span_id" if row_type == "traces" else "spans.id"
    return [r[0] for r in _run(store, col, experiment_id, text, row_type)]


# -- completion ----------------------------------------------------------------------------------

_OPERATORS = [
    "=", "!=", "<", "<=", ">", ">=", "in (", "is null", "is not null", "like", "ilike", "match", "includes", "not",
]
_AFTER_OPERAND = ("and", "or", "in", "is", "like", "ilike", "match", "includes", "not")
_VALUE_OPS = {"=", "==", "!=", "<>", "<", "<=", ">", ">="}


def word_start(text: str, cursor: int) -> int:
    """Where the word being completed at ``cursor`` starts: candidates replace text[start:cursor]."""
    try:
        tokens = tokenize(text[:cursor], lenient=True)
    except FilterError:
        return cursor
    last = tokens[-2] if len(tokens) >= 2 else None
    if last is not None and last.end == cursor and last.kind in ("path", "kw", "partial", "num"):
        return last.pos - 1
    return cursor


def _path_key(tok: Token) -> str:
    parts = tok.value
    if parts and parts[0] in ("scores", "metadata") and len(parts) > 1:
        return f"{parts[0]}.{'.'.join(map(str, parts[1:]))}"
    return ".".join(map(str, parts))


def complete(
    text: str,
    cursor: int,
    schema: Mapping[str, Any],
    values: Mapping[str, Iterable[Any]] | None = None,
    *,
    row_type: str = "traces",
) -> list[str]:
    """Completion candidates at ``cursor``: paths, operators, and values seen in the data.

    ``schema`` is the frame's (name -> dtype); ``values`` maps a path as the frame names it
    (``metadata.model``, ``tags``, ``review_status``) to values seen (see :func:`seen_values`).
    Each candidate replaces ``text[word_start(text, cursor):cursor]``.
    """
    values = values or {}
    try:
        tokens = tokenize(text[:cursor], lenient=True)[:-1]
    except FilterError:
        return []
    word = ""
    if tokens and tokens[-1].end == cursor and tokens[-1].kind in ("path", "kw", "partial", "num"):
        current = tokens.pop()
        word = text[current.pos - 1 : cursor]
    prev = tokens[-1] if tokens else None

    # after an operator that takes a value: values seen for the path before it
    field_tok = None
    if prev is not None and (
        (prev.kind == "op" and prev.value in _VALUE_OPS) or (prev.kind == "kw" and prev.value == "includes")
    ):
        field_tok = tokens[-2] if len(tokens) >= 2 else None
    elif prev is not None and prev.kind == "op" and prev.value in ("(", ","):
        # inside `path in (...`: find the path before `in`
        k = len(tokens) - 1
        while k >= 0 and not (tokens[k].kind == "kw" and tokens[k].value == "in"):
            if tokens[k].kind == "op" and tokens[k].value == ")":
                k = -1
                break
            k -= 1
        if k >= 1:
            field_tok = tokens[k - 1]
    if field_tok is not None and field_tok.kind == "path":
        quoted = word[:1] in ("'", '"')
        typed = (word[1:] if quoted else word).lower()
        seen = values.get(_path_key(field_tok), ())
        return sorted({
            _format_literal(v) for v in seen
            if (isinstance(v, str) or not quoted) and _format_literal(v).strip("'").lower().startswith(typed)
        })

    ends_operand = prev is not None and _ends_value(prev)
    if ends_operand and not word:
        before = tokens[-2] if len(tokens) >= 2 else None
        completes = before is not None and (
            (before.kind == "op" and before.value in _VALUE_OPS)
            or (before.kind == "kw" and before.value in ("like", "ilike", "match", "includes", "is", "not"))
        )
        if completes or (prev.kind == "op" and prev.value == ")") or prev.value == "null":
            return ["and", "or"]
        return list(_OPERATORS) + ["and", "or"]
    if ends_operand and word:
        return [k for k in _AFTER_OPERAND if k.startswith(word.lower())]

    names = P.known_paths(row_type, schema)
    extra = ["not", "any_span("] if row_type == "traces" else ["not"]
    candidates = names + extra
    low = word.lower()
    out = [c for c in candidates if c.lower().startswith(low)]
    if not out and low:  # search inside names: "fact" finds scores.Factuality
        out = [c for c in candidates if low in c.lower()]
    return out


def seen_values(frame: pl.DataFrame, *, limit: int = 50) -> dict[str, list[Any]]:
    """Values worth offering for completion: text columns with few distinct values, and tags."""
    out: dict[str, list[Any]] = {}
    skip = {
        "input", "output", "expected", "error", "metadata", "id", "root_span_id", "span_id", "parent_id",
        "comparison_key", "created", "dataset_record_id",
    }
    for name, dtype in frame.schema.items():
        if name in skip or name == "tags" or dtype != pl.String:
            continue
        distinct = frame.get_column(name).drop_nulls().unique()
        if 0 < distinct.len() <= limit:
            out[name] = sorted(distinct.to_list())
    if "tags" in frame.columns:
        tags: set[str] = set()
        for text in frame.get_column("tags").drop_nulls().unique().to_list():
            doc = P.load_json(text)
            if isinstance(doc, list):
                tags.update(t for t in doc if isinstance(t, str))
            if len(tags) > limit:
                break
        out["tags"] = sorted(tags)[:limit]
    return out
