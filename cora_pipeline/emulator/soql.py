"""A SOQL parser and evaluator for the subset that pipelines and analysts use.

The field list takes parent relationship paths (``Owner.Name``), compound address fields,
parent-to-child subqueries (``(SELECT Id FROM Contacts)``), ``COUNT()`` and, with ``GROUP BY``,
the aggregate functions ``COUNT``, ``COUNT_DISTINCT``, ``SUM``, ``AVG``, ``MIN`` and ``MAX`` with
aliases. ``WHERE`` takes comparisons, ``AND``/``OR``/``NOT``, parentheses, ``IN``, ``NOT IN``,
``LIKE``, ``INCLUDES``/``EXCLUDES``, null checks, date and datetime literals and date functions
(``TODAY``, ``LAST_N_DAYS:n``...). ``ORDER BY`` takes several keys with ``NULLS FIRST|LAST``,
followed by ``LIMIT`` and ``OFFSET``. Errors carry Salesforce's error codes and its message
layout: the query line, a caret under the offending token and ``ERROR at Row:r:Column:c``.

NOTE: semi-joins, ``HAVING``, ``ORDER BY`` on an aggregate function, ``WITH``, ``FOR`` and
``USING SCOPE`` are valid SOQL that the emulator rejects with MALFORMED_QUERY, and child
subquery results are never paged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .clock import format_datetime, parse_datetime
from .ids import is_valid_id, to_id18
from .schema import NUMBER_TYPES, FieldDef, ObjectDef

if TYPE_CHECKING:
    from .org import EmulatedOrg

Record = dict[str, Any]
Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]

# SOQL statements may be up to 100,000 characters long.
MAX_QUERY_LENGTH = 100_000
MAX_OFFSET = 2000

_NO_SUCH_COLUMN = (
    "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, "
    "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
    "describe call for the appropriate names."
)
_BAD_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a "
    "custom relationship, be sure to append the '__r' after the custom relationship name. Please "
    "reference your WSDL or the describe call for the appropriate names."
)
_NO_SUCH_TYPE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
    "call for the appropriate names."
)
# Salesforce names these types this way in filter type errors.
_FILTER_TYPE_NAMES = {
    "datetime": "dateTime",
    "currency": "double",
    "percent": "double",
    "int": "double",
    "long": "double",
}


class SoqlError(Exception):
    """A query Salesforce would reject, with its errorCode and message text."""

    def __init__(
        self, error_code: str, detail: str, query: str = "", position: int | None = None
    ) -> None:
        self.error_code = error_code
        self.detail = detail
        self.query = query
        self.position = position
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.position is None:
            return self.detail
        before = self.query[: self.position]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        line_end = self.query.find("\n", self.position)
        line = self.query[line_start : line_end if line_end >= 0 else len(self.query)]
        column = self.position - line_start + 1
        return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{self.detail}"


# ---------------------------------------------------------------------------------------------
# Tokens

_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<string>'(?:[^'\\]|\\.)*')"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))"
    r"|(?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))"
    r"|(?P<number>[+-]?\d+(?:\.\d+)?)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>!=|<>|<=|>=|=|<|>)"
    r"|(?P<punct>[(),:])"
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN_RE.match(query, position)
        if match is None:
            bad = query[position:].split(None, 1)[0]
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{bad}'", query, position)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("eof", "<EOF>", len(query)))
    return tokens


# ---------------------------------------------------------------------------------------------
# Syntax tree


@dataclass
class FieldPath:
    text: str
    position: int
    alias: str | None = None


@dataclass
class AggregateCall:
    """``COUNT(Id)``, ``SUM(Amount) total``...; ``path`` is None only for ``COUNT()``."""

    function: str
    path: FieldPath | None
    position: int
    alias: str | None = None


@dataclass
class Literal:
    kind: str  # string, number, date, datetime, boolean, null, date_function
    value: Any
    position: int
    text: str


@dataclass
class Comparison:
    path: FieldPath
    operator: str  # = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES
    values: list[Literal]


@dataclass
class Logical:
    operator: str  # AND, OR, NOT
    operands: list[Any]


@dataclass
class OrderKey:
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass
class ParsedQuery:
    text: str
    # A ParsedQuery is a parent-to-child subquery, an AggregateCall an aggregate function.
    fields: list[FieldPath | ParsedQuery | AggregateCall]
    count: bool
    object_name: str
    object_position: int
    where: Any = None
    order_by: list[OrderKey] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    group_by: list[FieldPath] = field(default_factory=list)

    @property
    def is_aggregate(self) -> bool:
        return bool(self.group_by) or any(isinstance(f, AggregateCall) for f in self.fields)


_DATE_FUNCTIONS = {
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "THIS_QUARTER",
    "LAST_QUARTER",
    "NEXT_QUARTER",
}
_DATE_FUNCTIONS_N = {
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "N_WEEKS_AGO",
    "N_MONTHS_AGO",
}
_UNSUPPORTED_CLAUSES = {"HAVING", "WITH", "FOR", "USING", "TYPEOF", "UPDATE"}
_AGGREGATE_FUNCTIONS = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"}
_RESERVED = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "ORDER",
    "BY",
    "LIMIT",
    "OFFSET",
    "NULL",
    "TRUE",
    "FALSE",
    "IN",
    "LIKE",
    "INCLUDES",
    "EXCLUDES",
    "GROUP",
    "HAVING",
}


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0
        # True inside a child subquery, where another subquery is not allowed.
        self.nested = False

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.current
        return SoqlError(
            "MALFORMED_QUERY", f"unexpected token: '{token.text}'", self.query, token.position
        )

    def keyword(self, word: str) -> bool:
        if self.current.kind == "ident" and self.current.upper == word:
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        token = self.current
        if not self.keyword(word):
            raise self.unexpected()
        return token

    def expect_punct(self, text: str) -> Token:
        token = self.current
        if token.text != text or token.kind != "punct":
            raise self.unexpected()
        return self.advance()

    def parse(self) -> ParsedQuery:
        self.expect_keyword("SELECT")
        fields, count = self.select_list()

        self.expect_keyword("FROM")
        object_token = self.current
        if object_token.kind != "ident" or object_token.upper in _RESERVED:
            raise self.unexpected()
        self.advance()
        parsed = ParsedQuery(self.query, fields, count, object_token.text, object_token.position)

        self.reject_unsupported_clause()
        if self.keyword("WHERE"):
            parsed.where = self.condition()
        if self.keyword("GROUP"):
            self.expect_keyword("BY")
            parsed.group_by = self.group_keys()
        self.reject_unsupported_clause()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            parsed.order_by = self.order_keys()
        if self.keyword("LIMIT"):
            parsed.limit = self.integer()
        if self.keyword("OFFSET"):
            token = self.current
            parsed.offset = self.integer()
            if parsed.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                    self.query,
                    token.position,
                )

        if self.current.kind != "eof":
            raise self.unexpected()
        return parsed

    def subquery(self) -> ParsedQuery:
        """Parse ``SELECT ... FROM <child relationship> ...)`` after the opening parenthesis."""
        self.expect_keyword("SELECT")
        self.nested = True
        fields, count = self.select_list()
        self.nested = False
        if count:
            raise self.unexpected()
        self.expect_keyword("FROM")
        relationship = self.current
        if relationship.kind != "ident" or relationship.upper in _RESERVED:
            raise self.unexpected()
        self.advance()
        parsed = ParsedQuery(self.query, fields, False, relationship.text, relationship.position)
        self.reject_unsupported_clause()
        if self.keyword("WHERE"):
            parsed.where = self.condition()
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            parsed.order_by = self.order_keys()
        if self.keyword("LIMIT"):
            parsed.limit = self.integer()
        self.expect_punct(")")
        return parsed

    def group_keys(self) -> list[FieldPath]:
        keys = []
        while True:
            token = self.current
            if token.kind != "ident" or token.upper in _RESERVED:
                raise self.unexpected()
            self.advance()
            keys.append(FieldPath(token.text, token.position))
            if self.current.text != ",":
                return keys
            self.advance()

    def alias(self) -> str | None:
        token = self.current
        if token.kind == "ident" and token.upper not in _RESERVED:
            self.advance()
            return token.text
        return None

    def aggregate_call(self) -> AggregateCall | None:
        """Parse ``FUNCTION(field) [alias]``; return None for a bare ``COUNT()``."""
        function_token = self.advance()
        self.expect_punct("(")
        if self.current.text == ")" and function_token.upper == "COUNT":
            self.advance()
            return None
        token = self.current
        if token.kind != "ident":
            raise self.unexpected()
        self.advance()
        self.expect_punct(")")
        path = FieldPath(token.text, token.position)
        return AggregateCall(function_token.upper, path, function_token.position, self.alias())

    def reject_unsupported_clause(self) -> None:
        if self.current.kind == "ident" and self.current.upper in _UNSUPPORTED_CLAUSES:
            raise self.unexpected()

    def select_list(self) -> tuple[list[FieldPath | ParsedQuery | AggregateCall], bool]:
        """Parse the fields after SELECT; return them and whether the list is ``COUNT()``."""
        fields: list[FieldPath | ParsedQuery | AggregateCall] = []
        count = False
        while True:
            token = self.current
            is_function = (
                token.kind == "ident"
                and token.upper in _AGGREGATE_FUNCTIONS
                and self.tokens[self.index + 1].text == "("
            )
            if is_function:
                call = self.aggregate_call()
                if call is None:
                    count = True
                else:
                    fields.append(call)
            elif token.kind == "ident" and token.upper != "FROM":
                self.advance()
                fields.append(FieldPath(token.text, token.position, self.alias()))
            elif token.text == "(" and not self.nested:
                self.advance()
                fields.append(self.subquery())
            else:
                raise self.unexpected()

            if self.current.text != ",":
                break
            self.advance()

        if count and fields:
            raise SoqlError(
                "MALFORMED_QUERY",
                "COUNT() cannot be combined with other fields",
                self.query,
                _position(fields[0]),
            )
        return fields, count

    def integer(self) -> int:
        token = self.current
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)

    def order_keys(self) -> list[OrderKey]:
        keys = []
        while True:
            token = self.current
            if token.kind != "ident":
                raise self.unexpected()
            self.advance()
            descending = False
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
            # Salesforce puts nulls first in ascending and last in descending order by default.
            nulls_first = not descending
            if self.keyword("NULLS"):
                if self.keyword("FIRST"):
                    nulls_first = True
                else:
                    self.expect_keyword("LAST")
                    nulls_first = False
            keys.append(OrderKey(FieldPath(token.text, token.position), descending, nulls_first))
            if self.current.text != ",":
                return keys
            self.advance()

    def condition(self) -> Any:
        first = self.unary()
        operator = None
        operands = [first]
        while self.current.kind == "ident" and self.current.upper in ("AND", "OR"):
            word = self.current.upper
            if operator is not None and word != operator:
                # SOQL requires parentheses when AND and OR are mixed at one level.
                raise self.unexpected()
            operator = word
            self.advance()
            operands.append(self.unary())
        if operator is None:
            return first
        return Logical(operator, operands)

    def unary(self) -> Any:
        if self.keyword("NOT"):
            return Logical("NOT", [self.unary()])
        if self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.current
        if token.kind != "ident" or token.upper in ("AND", "OR", "NOT"):
            raise self.unexpected()
        self.advance()
        path = FieldPath(token.text, token.position)
        operator_token = self.current
        if operator_token.kind == "op":
            self.advance()
            operator = "!=" if operator_token.text == "<>" else operator_token.text
            return Comparison(path, operator, [self.literal()])
        word = operator_token.upper if operator_token.kind == "ident" else ""
        if word == "NOT":
            self.advance()
            self.expect_keyword("IN")
            return Comparison(path, "NOT IN", self.literal_list())
        if word == "IN":
            self.advance()
            return Comparison(path, "IN", self.literal_list())
        if word in ("INCLUDES", "EXCLUDES"):
            self.advance()
            return Comparison(path, word, self.literal_list())
        if word == "LIKE":
            self.advance()
            return Comparison(path, "LIKE", [self.literal()])
        raise self.unexpected()

    def literal_list(self) -> list[Literal]:
        self.expect_punct("(")
        if self.current.kind == "ident" and self.current.upper == "SELECT":
            raise SoqlError(
                "MALFORMED_QUERY",
                "semi-join subqueries are not supported by the emulator",
                self.query,
                self.current.position,
            )
        values = [self.literal()]
        while self.current.text == ",":
            self.advance()
            values.append(self.literal())
        self.expect_punct(")")
        return values

    def literal(self) -> Literal:
        token = self.advance()
        kind = token.kind
        if kind == "string":
            return Literal("string", _unescape(token.text[1:-1]), token.position, token.text)
        if kind == "number":
            value: Any = float(token.text) if "." in token.text else int(token.text)
            return Literal("number", value, token.position, token.text)
        if kind == "date":
            try:
                day = date.fromisoformat(token.text)
            except ValueError:
                raise self.unexpected(token) from None
            return Literal("date", day, token.position, token.text)
        if kind == "datetime":
            try:
                moment = parse_datetime(token.text)
            except ValueError:
                raise self.unexpected(token) from None
            return Literal("datetime", moment, token.position, token.text)
        if kind == "ident":
            word = token.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", token.position, token.text)
            if word == "NULL":
                return Literal("null", None, token.position, token.text)
            if word in _DATE_FUNCTIONS:
                return Literal("date_function", (word, 0), token.position, token.text)
            if word in _DATE_FUNCTIONS_N:
                self.expect_punct(":")
                amount = self.integer()
                return Literal("date_function", (word, amount), token.position, token.text)
        raise self.unexpected(token)


_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "%": "\\%",
    "_": "\\_",
}


def _unescape(text: str) -> str:
    """Resolve SOQL string escapes; ``\\%`` and ``\\_`` stay escaped for LIKE."""
    if "\\" not in text:
        return text
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(_ESCAPES.get(text[index + 1], text[index + 1]))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _position(item: FieldPath | ParsedQuery | AggregateCall) -> int:
    return item.object_position if isinstance(item, ParsedQuery) else item.position


def parse(query: str) -> ParsedQuery:
    """Parse a SOQL statement or raise SoqlError."""
    if len(query) > MAX_QUERY_LENGTH:
        # NOTE: Salesforce's exact errorCode for an over-long statement is not documented;
        # MALFORMED_QUERY is the most likely one.
        raise SoqlError(
            "MALFORMED_QUERY",
            f"SOQL statements cannot be longer than {MAX_QUERY_LENGTH} characters",
        )
    return _Parser(query).parse()


# ---------------------------------------------------------------------------------------------
# Date literal ranges


def _month_start(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def date_range(function: str, amount: int, today: date) -> tuple[date, date]:
    """Return the [start, end) day range of a SOQL date literal, weeks starting on Sunday (en_US)."""
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)
    quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    day = timedelta(days=1)

    ranges: dict[str, tuple[date, date]] = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (_month_start(today, -1), _month_start(today, 0)),
        "THIS_MONTH": (_month_start(today, 0), _month_start(today, 1)),
        "NEXT_MONTH": (_month_start(today, 1), _month_start(today, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "THIS_YEAR": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
        "THIS_QUARTER": (quarter_start, _month_start(quarter_start, 3)),
        "LAST_QUARTER": (_month_start(quarter_start, -3), quarter_start),
        "NEXT_QUARTER": (_month_start(quarter_start, 3), _month_start(quarter_start, 6)),
    }

    if function in ranges:
        return ranges[function]
    if function == "LAST_N_DAYS":
        return today - amount * day, today + day
    if function == "NEXT_N_DAYS":
        return today + day, today + (amount + 1) * day
    if function == "N_DAYS_AGO":
        return today - amount * day, today - (amount - 1) * day
    if function == "LAST_N_WEEKS":
        return week_start - 7 * amount * day, week_start
    if function == "NEXT_N_WEEKS":
        return week_start + 7 * day, week_start + 7 * (amount + 1) * day
    if function == "N_WEEKS_AGO":
        return week_start - 7 * amount * day, week_start - 7 * (amount - 1) * day
    if function == "LAST_N_MONTHS":
        return _month_start(today, -amount), _month_start(today, 0)
    if function == "NEXT_N_MONTHS":
        return _month_start(today, 1), _month_start(today, amount + 1)
    if function == "N_MONTHS_AGO":
        return _month_start(today, -amount), _month_start(today, -amount + 1)
    raise ValueError(f"unknown date literal {function}")


def _day_bound(day: date, kind: str) -> str:
    if kind == "date":
        return day.isoformat()
    return format_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------
# Compilation against an org's schema


@dataclass
class _Resolved:
    """A field path resolved to the final field and the relationship hops to reach it."""

    hops: list[tuple[FieldDef, str]]  # (reference field, target object name)
    field: FieldDef
    object_name: str  # object that owns ``field``


class _Compiler:
    def __init__(
        self,
        org: EmulatedOrg,
        parsed: ParsedQuery,
        root: ObjectDef | None = None,
        user_id: str | None = None,
    ) -> None:
        self.org = org
        self.user_id = user_id
        self.parsed = parsed
        self.query = parsed.text
        self.context = org.formula_context()
        self.today = self.context.today
        definition = root
        for name, candidate in org.schema.items():
            if definition is None and name.lower() == parsed.object_name.lower():
                definition = candidate
        if definition is None or not definition.queryable:
            raise SoqlError(
                "INVALID_TYPE",
                _NO_SUCH_TYPE.format(name=parsed.object_name),
                self.query,
                parsed.object_position,
            )
        self.root: ObjectDef = definition

    def error(self, detail: str, position: int, code: str = "INVALID_FIELD") -> SoqlError:
        return SoqlError(code, detail, self.query, position)

    def resolve(self, path: FieldPath) -> _Resolved:
        parts = path.text.split(".")
        if len(parts) > 1 and parts[0].lower() == self.root.name.lower():
            parts = parts[1:]
        current = self.root
        hops: list[tuple[FieldDef, str]] = []
        for part in parts[:-1]:
            reference = current.visible_relationship(part, self.user_id)
            if reference is None:
                raise self.error(_BAD_RELATIONSHIP.format(name=part), path.position)
            # Polymorphic Owner lookups point at Group or User; the emulated orgs have users only.
            target = "User" if "User" in reference.reference_to else reference.reference_to[0]
            hops.append((reference, target))
            current = self.org.schema[target]
        final = current.visible_field(parts[-1], self.user_id)
        if final is None:
            raise self.error(
                _NO_SUCH_COLUMN.format(field=parts[-1], entity=current.name), path.position
            )
        return _Resolved(hops, final, current.name)

    def value_getter(self, resolved: _Resolved) -> Getter:
        """Build a function that reads the field's stored (wire) value from a root record."""
        definition = resolved.field
        name = definition.name
        base: Getter
        if definition.calculated:
            formula = self.org.formulas[(resolved.object_name, name)]
            context = self.context
            base = lambda record: formula.evaluate(record, context)  # noqa: E731
        elif definition.type == "address":
            base = _address_getter(self.org.schema[resolved.object_name], name)
        else:
            base = lambda record: record.get(name)  # noqa: E731
        for reference, target in reversed(resolved.hops):
            table = self.org.tables[target]
            inner = base
            reference_name = reference.name

            def hop(
                record: Record,
                inner: Getter = inner,
                table: dict = table,
                reference_name: str = reference_name,
            ) -> Any:
                parent = table.get(record.get(reference_name) or "")
                return None if parent is None else inner(parent)

            base = hop
        return base

    # ---- WHERE

    def predicate(self, node: Any) -> Predicate:
        if isinstance(node, Logical):
            operands = [self.predicate(o) for o in node.operands]
            if node.operator == "NOT":
                (inner,) = operands
                return lambda record: not inner(record)
            if node.operator == "AND":
                return lambda record: all(p(record) for p in operands)
            return lambda record: any(p(record) for p in operands)
        return self.comparison(node)

    def comparison(self, node: Comparison) -> Predicate:
        resolved = self.resolve(node.path)
        definition = resolved.field
        if not definition.describe()["filterable"]:
            raise self.error(
                f"field '{definition.name}' can not be filtered in a query call", node.path.position
            )
        getter = self.value_getter(resolved)
        kind = definition.type
        operator = node.operator
        for literal in node.values:
            self.check_literal(definition, literal, operator)

        if operator in ("INCLUDES", "EXCLUDES"):
            if kind != "multipicklist":
                raise self.error(
                    f"{operator} operator is only valid on multi-select picklist fields",
                    node.path.position,
                    "INVALID_QUERY_FILTER_OPERATOR",
                )
            required_groups = [
                {part.strip().lower() for part in str(v.value).split(";")} for v in node.values
            ]

            def includes(record: Record) -> bool:
                value = getter(record)
                chosen = {p.lower() for p in value.split(";")} if value else set()
                return any(group <= chosen for group in required_groups)

            if operator == "INCLUDES":
                return includes
            return lambda record: not includes(record)

        if operator == "LIKE":
            if kind not in (
                "string",
                "textarea",
                "picklist",
                "email",
                "phone",
                "url",
                "id",
                "reference",
                "combobox",
            ):
                raise self.error(
                    f"invalid operator on {kind} field",
                    node.path.position,
                    "INVALID_QUERY_FILTER_OPERATOR",
                )
            pattern = _like_regex(str(node.values[0].value))
            return lambda record: (
                (v := getter(record)) is not None and pattern.fullmatch(v) is not None
            )

        if operator in ("IN", "NOT IN"):
            members = [self.normalize(kind, literal) for literal in node.values]
            plain = {m for m in members if not isinstance(m, tuple)}
            ranges = [m for m in members if isinstance(m, tuple)]
            has_null = None in plain
            plain.discard(None)
            normalize = self.value_normalizer(kind)

            def member(record: Record) -> bool:
                value = getter(record)
                if value is None:
                    return has_null
                value = normalize(value)
                return value in plain or any(lo <= value < hi for lo, hi in ranges)

            if operator == "IN":
                return member
            return lambda record: not member(record)

        (literal,) = node.values
        target = self.normalize(kind, literal)
        normalize = self.value_normalizer(kind)
        if target is None:
            if operator == "=":
                return lambda record: getter(record) is None
            if operator == "!=":
                return lambda record: getter(record) is not None
            return lambda record: False
        if isinstance(target, tuple):
            lo, hi = target
            range_tests: dict[str, Callable[[Any], bool]] = {
                "=": lambda v: lo <= v < hi,
                "!=": lambda v: not lo <= v < hi,
                "<": lambda v: v < lo,
                "<=": lambda v: v < hi,
                ">": lambda v: v >= hi,
                ">=": lambda v: v >= lo,
            }
            test = range_tests[operator]
            # Unlike SQL, rows whose value is null match != (null is not equal to the literal).
            # NOTE: this matches observed SOQL behaviour; Salesforce does not document it.
            if operator == "!=":
                return lambda record: (v := getter(record)) is None or test(normalize(v))
            return lambda record: (v := getter(record)) is not None and test(normalize(v))
        tests: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: v == target,
            "!=": lambda v: v != target,
            "<": lambda v: v < target,
            "<=": lambda v: v <= target,
            ">": lambda v: v > target,
            ">=": lambda v: v >= target,
        }
        test = tests[operator]
        if operator == "!=":
            return lambda record: (v := getter(record)) is None or test(normalize(v))
        return lambda record: (v := getter(record)) is not None and test(normalize(v))

    def check_literal(self, definition: FieldDef, literal: Literal, operator: str) -> None:
        kind = definition.type
        expected = _FILTER_TYPE_NAMES.get(kind, kind)
        if literal.kind == "null":
            return
        quoted_types = (
            "string",
            "textarea",
            "picklist",
            "multipicklist",
            "email",
            "phone",
            "url",
            "id",
            "reference",
            "combobox",
            "encryptedstring",
        )
        if kind in quoted_types:
            if literal.kind != "string":
                raise self.error(
                    f"value of filter criterion for field '{definition.name}' must "
                    f"be of type string and should be enclosed in quotes",
                    literal.position,
                )
            if (
                kind in ("id", "reference")
                and operator not in ("LIKE",)
                and not is_valid_id(str(literal.value))
            ):
                raise self.error(
                    f"invalid ID field: {literal.value}",
                    literal.position,
                    "INVALID_QUERY_FILTER_OPERATOR",
                )
            return
        allowed = {
            "boolean": ("boolean",),
            "date": ("date", "date_function"),
            "datetime": ("datetime", "date_function"),
        }.get(kind, ("number",) if kind in NUMBER_TYPES else ())
        if literal.kind not in allowed:
            raise self.error(
                f"value of filter criterion for field '{definition.name}' must be "
                f"of type {expected} and should not be enclosed in quotes",
                literal.position,
            )

    def normalize(self, kind: str, literal: Literal) -> Any:
        """Convert a literal to the stored form, or to a [lo, hi) range for date literals."""
        if literal.kind == "null":
            return None
        if literal.kind == "date_function":
            function, amount = literal.value
            start, end = date_range(function, amount, self.today)
            return (_day_bound(start, kind), _day_bound(end, kind))
        if literal.kind == "date":
            return literal.value.isoformat()
        if literal.kind == "datetime":
            return format_datetime(literal.value)
        if kind in ("id", "reference"):
            return to_id18(str(literal.value))
        if kind in NUMBER_TYPES:
            return float(literal.value)
        if literal.kind == "string":
            return str(literal.value).lower()
        return literal.value

    @staticmethod
    def value_normalizer(kind: str) -> Callable[[Any], Any]:
        if kind in ("id", "reference"):
            return lambda v: v
        if kind in NUMBER_TYPES:
            return float
        if kind in ("date", "datetime", "boolean"):
            return lambda v: v
        # SOQL compares text case-insensitively.
        return lambda v: v.lower()

    # ---- ORDER BY

    def sorter(self, keys: list[OrderKey]) -> Callable[[list[Record]], None]:
        plans = []
        for key in keys:
            resolved = self.resolve(key.path)
            if not resolved.field.sortable:
                raise self.error(
                    f"field '{resolved.field.name}' can not be sorted in a query call",
                    key.path.position,
                )
            getter = self.value_getter(resolved)
            text = resolved.field.type not in NUMBER_TYPES and resolved.field.type not in (
                "date",
                "datetime",
                "boolean",
                "id",
                "reference",
            )
            plans.append((getter, key.descending, key.nulls_first, text))

        def sort(rows: list[Record]) -> None:
            for getter, descending, nulls_first, text in reversed(plans):
                null_rank = 0 if nulls_first != descending else 2

                def sort_key(
                    record: Record,
                    getter: Getter = getter,
                    text: bool = text,
                    null_rank: int = null_rank,
                ) -> tuple[int, Any]:
                    value = getter(record)
                    if value is None:
                        return (null_rank, 0)
                    return (1, value.lower() if text else value)

                rows.sort(key=sort_key, reverse=descending)

        return sort


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern) and pattern[index + 1] in "%_":
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


_ADDRESS_KEYS = (
    ("City", "city"),
    ("Country", "country"),
    ("GeocodeAccuracy", "geocodeAccuracy"),
    ("Latitude", "latitude"),
    ("Longitude", "longitude"),
    ("PostalCode", "postalCode"),
    ("State", "state"),
    ("Street", "street"),
)


def _address_getter(definition: ObjectDef, compound: str) -> Getter:
    prefix = compound[: -len("Address")]
    parts = [
        (prefix + suffix, key)
        for suffix, key in _ADDRESS_KEYS
        if prefix + suffix in definition.fields
    ]

    def address(record: Record) -> dict[str, Any] | None:
        value = {key: record.get(name) for name, key in parts}
        if all(v is None for v in value.values()):
            return None
        return value

    return address


# ---------------------------------------------------------------------------------------------
# Projection and execution


@dataclass
class _Node:
    """Output plan of one record level: scalar fields and nested parent relationships."""

    object_name: str
    # (output key, stored field name | Getter | _Relation), in SELECT order.
    entries: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class _Relation:
    reference_name: str
    table: dict[str, Record]
    node: _Node


class CompiledQuery:
    """A parsed and resolved query, ready to select rows and project pages of them."""

    def __init__(
        self,
        org: EmulatedOrg,
        text: str | ParsedQuery,
        include_deleted: bool,
        root: ObjectDef | None = None,
        user_id: str | None = None,
    ) -> None:
        parsed = parse(text) if isinstance(text, str) else text
        compiler = _Compiler(org, parsed, root, user_id)
        self.org = org
        self.parsed = parsed
        self.include_deleted = include_deleted
        self.object_name = compiler.root.name
        self.count = parsed.count
        self.children: list[_Children] = []
        self.predicate = compiler.predicate(parsed.where) if parsed.where is not None else None
        self.sort = compiler.sorter(parsed.order_by) if parsed.order_by else None
        self.aggregation: _Aggregation | None = None
        if parsed.is_aggregate:
            self.aggregation = _Aggregation(compiler, parsed)
            self.plan = _Node(self.object_name)
        else:
            self.plan = self._plan(compiler, parsed.fields)
        definition = compiler.root
        self.long_text_fields = [
            key
            for key, entry in self.plan.entries
            if isinstance(entry, str) and definition.fields[key].long_text
        ]

    def _plan(
        self, compiler: _Compiler, paths: list[FieldPath | ParsedQuery | AggregateCall]
    ) -> _Node:
        root = _Node(self.object_name)
        for path in paths:
            # An AggregateCall makes the query an aggregate one, which has no plan of its own.
            assert not isinstance(path, AggregateCall)
            if isinstance(path, FieldPath) and path.alias:
                # Field aliases are allowed only in aggregate queries.
                raise compiler.error(
                    f"unexpected token: '{path.alias}'", path.position, "MALFORMED_QUERY"
                )
            if isinstance(path, ParsedQuery):
                children = _Children.compile(
                    self.org, compiler.root, path, self.include_deleted, compiler.user_id
                )
                root.entries.append((children.relationship_name, children))
                self.children.append(children)
                continue
            resolved = compiler.resolve(path)
            node = root
            for reference, target in resolved.hops:
                assert reference.relationship_name is not None
                existing = next(
                    (e for k, e in node.entries if k == reference.relationship_name), None
                )
                if not isinstance(existing, _Relation):
                    existing = _Relation(reference.name, self.org.tables[target], _Node(target))
                    node.entries.append((reference.relationship_name, existing))
                node = existing.node
            if any(key == resolved.field.name for key, _ in node.entries):
                raise compiler.error(
                    f"duplicate field selected: {resolved.field.name}",
                    path.position,
                    "MALFORMED_QUERY",
                )
            definition = resolved.field
            if definition.calculated or definition.is_compound:
                leaf = _Resolved([], definition, resolved.object_name)
                node.entries.append((definition.name, compiler.value_getter(leaf)))
            else:
                # A stored field is read by name, the fastest path when pages are serialized.
                node.entries.append((definition.name, definition.name))
        return root

    def select(self) -> list[Record]:
        """Return the matching stored records, sorted, with OFFSET and LIMIT applied.

        For an aggregate query the result rows are the AggregateResult groups.
        """
        rows = self.select_unlimited()
        if self.aggregation is not None:
            rows = self.aggregation.run(rows)
        offset = self.parsed.offset or 0
        if offset:
            rows = rows[offset:]
        if self.parsed.limit is not None:
            rows = rows[: self.parsed.limit]
        return rows

    def select_unlimited(self) -> list[Record]:
        """Return the matching stored records, sorted, before OFFSET and LIMIT."""
        org = self.org
        with org.lock:
            rows = list(org.tables[self.object_name].values())
        if not self.include_deleted:
            rows = [r for r in rows if not r.get("IsDeleted")]
        if self.predicate is not None:
            predicate = self.predicate
            rows = [r for r in rows if predicate(r)]
        if self.sort is not None:
            self.sort(rows)
        return rows

    def row_weight(self, record: Record) -> int:
        """Count a row and its child subquery rows, which all count toward the batch size."""
        return 1 + sum(len(c.rows_for(record["Id"])) for c in self.children)

    def project(self, rows: list[Record], version: str) -> list[dict[str, Any]]:
        """Build the REST JSON records for ``rows``, every selected field present."""
        return [_project(self.plan, row, version) for row in rows]


class _Aggregation:
    """The GROUP BY keys and output columns of an aggregate query."""

    def __init__(self, compiler: _Compiler, parsed: ParsedQuery) -> None:
        self.group_getters: list[Getter] = []
        group_index: dict[str, int] = {}
        for path in parsed.group_by:
            resolved = compiler.resolve(path)
            if not resolved.field.groupable and resolved.field.type != "id":
                raise compiler.error(
                    f"field '{resolved.field.name}' can not be grouped in a query call",
                    path.position,
                )
            group_index[_canonical(resolved)] = len(self.group_getters)
            self.group_getters.append(compiler.value_getter(resolved))

        # (output key, group index or None, aggregate function or None, value getter)
        self.columns: list[tuple[str, int | None, str | None, Getter | None]] = []
        unnamed = 0
        for item in parsed.fields:
            if isinstance(item, ParsedQuery):
                raise compiler.error(
                    "unexpected token: '('", item.object_position, "MALFORMED_QUERY"
                )
            if isinstance(item, FieldPath):
                resolved = compiler.resolve(item)
                index = group_index.get(_canonical(resolved))
                if index is None:
                    raise compiler.error(
                        f"Field must be grouped or aggregated: {item.text}",
                        item.position,
                        "MALFORMED_QUERY",
                    )
                self.columns.append((item.alias or resolved.field.name, index, None, None))
                continue
            assert item.path is not None
            resolved = compiler.resolve(item.path)
            numeric = resolved.field.type in NUMBER_TYPES
            if item.function in ("SUM", "AVG") and not numeric:
                raise compiler.error(
                    f"field {resolved.field.name} does not support aggregate operator "
                    f"{item.function}",
                    item.path.position,
                )
            key = item.alias
            if key is None:
                key = f"expr{unnamed}"
                unnamed += 1
            self.columns.append((key, None, item.function, compiler.value_getter(resolved)))

    def run(self, rows: list[Record]) -> list[dict[str, Any]]:
        """Group ``rows`` (already filtered and sorted) and build the AggregateResult rows."""
        groups: dict[tuple[Any, ...], list[Record]] = {}
        for row in rows:
            key = tuple(getter(row) for getter in self.group_getters)
            groups.setdefault(key, []).append(row)
        if not self.group_getters and not groups:
            # Without GROUP BY an aggregate query returns one row even when nothing matches.
            groups[()] = []
        result = []
        for key, members in groups.items():
            out: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for name, group, function, getter in self.columns:
                if group is not None:
                    out[name] = key[group]
                else:
                    assert function is not None and getter is not None
                    out[name] = _aggregate(function, [getter(m) for m in members])
            result.append(out)
        return result


def _canonical(resolved: _Resolved) -> str:
    names = [reference.relationship_name or "" for reference, _ in resolved.hops]
    return ".".join([*names, resolved.field.name]).lower()


def _aggregate(function: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if function == "COUNT":
        return len(present)
    if function == "COUNT_DISTINCT":
        return len({v.lower() if isinstance(v, str) else v for v in present})
    if not present:
        return None
    if function == "SUM":
        return float(sum(present))
    if function == "AVG":
        return float(sum(present)) / len(present)
    if function == "MIN":
        return min(present)
    return max(present)


class _Children:
    """A parent-to-child subquery, evaluated per parent row against an index built once."""

    def __init__(
        self, query: CompiledQuery, relationship_name: str, reference_field: str, limit: int | None
    ) -> None:
        self.query = query
        self.relationship_name = relationship_name
        self.reference_field = reference_field
        self.limit = limit
        self._index: dict[str, list[Record]] | None = None

    @classmethod
    def compile(
        cls,
        org: EmulatedOrg,
        parent: ObjectDef,
        parsed: ParsedQuery,
        include_deleted: bool,
        user_id: str | None,
    ) -> _Children:
        relationship = next(
            (
                c
                for c in parent.child_relationships
                if c.relationship_name and c.relationship_name.lower() == parsed.object_name.lower()
            ),
            None,
        )
        if relationship is None:
            raise SoqlError(
                "INVALID_TYPE",
                f"Didn't understand relationship '{parsed.object_name}' in FROM part of query "
                f"call. If you are attempting to use a custom relationship, be sure to append "
                f"the '__r' after the custom relationship name. Please reference your WSDL or "
                f"the describe call for the appropriate names.",
                parsed.text,
                parsed.object_position,
            )
        child_object = org.schema[relationship.child_sobject]
        # The child query's own LIMIT applies per parent, so it is taken off before compiling.
        limit, parsed.limit = parsed.limit, None
        compiled = CompiledQuery(org, parsed, include_deleted, child_object, user_id)
        assert relationship.relationship_name is not None
        return cls(compiled, relationship.relationship_name, relationship.field, limit)

    def rows_for(self, parent_id: str) -> list[Record]:
        if self._index is None:
            # Built on first use, so a cursor keeps the children it saw on its first page.
            index: dict[str, list[Record]] = {}
            for row in self.query.select_unlimited():
                parent = row.get(self.reference_field)
                if parent:
                    index.setdefault(parent, []).append(row)
            if self.limit is not None:
                index = {key: rows[: self.limit] for key, rows in index.items()}
            self._index = index
        return self._index.get(parent_id, [])

    def render(self, parent_id: str, version: str) -> dict[str, Any] | None:
        rows = self.rows_for(parent_id)
        if not rows:
            # NOTE: an empty child result is assumed to be null, as widely observed.
            return None
        return {"totalSize": len(rows), "done": True, "records": self.query.project(rows, version)}


def _project(node: _Node, record: Record, version: str) -> dict[str, Any]:
    object_name = node.object_name
    out: dict[str, Any] = {
        "attributes": {
            "type": object_name,
            "url": f"/services/data/v{version}/sobjects/{object_name}/{record['Id']}",
        }
    }
    for key, entry in node.entries:
        if entry.__class__ is str:
            out[key] = record.get(entry)
        elif entry.__class__ is _Relation:
            parent = entry.table.get(record.get(entry.reference_name) or "")
            out[key] = None if parent is None else _project(entry.node, parent, version)
        elif entry.__class__ is _Children:
            out[key] = entry.render(record["Id"], version)
        else:
            out[key] = entry(record)
    return out
