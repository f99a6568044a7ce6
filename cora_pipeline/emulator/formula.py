"""A compiler for the subset of the Salesforce formula language the emulated org uses.

Supported: field references, number/string/boolean/null literals, ``+ - * / ^ &``, comparisons
(``= == != <> < <= > >=``), ``&& ||``, and the functions in ``_FUNCTIONS``. Blank fields stay blank
in arithmetic (the "treat blank fields as blanks" option), so ``BLANKVALUE`` supplies defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .clock import format_datetime, parse_datetime


class FormulaError(ValueError):
    """A formula that does not parse or names a field the object does not have."""


@dataclass(frozen=True)
class FormulaContext:
    today: date
    now: datetime


Record = dict[str, Any]
Compiled = Callable[[Record, FormulaContext], Any]

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>&&|\|\||==|!=|<>|<=|>=|[-+*/^&=<>!(),]))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FormulaError(f"unexpected character {text[position]!r} at {position} in {text!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _to_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _is_blank(value: Any) -> bool:
    return value is None or value == ""


def _arith(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if op == "+":
        if isinstance(left, date) and isinstance(right, int | float):
            return left + timedelta(days=int(right))
        return left + right
    if op == "-":
        if isinstance(left, datetime) and isinstance(right, datetime):
            return (left - right).total_seconds() / 86400
        if isinstance(left, date) and isinstance(right, date):
            return (left - right).days
        if isinstance(left, date) and isinstance(right, int | float):
            return left - timedelta(days=int(right))
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return None if right == 0 else left / right
    if op == "^":
        return left**right
    raise FormulaError(f"unknown operator {op!r}")


def _compare(op: str, left: Any, right: Any) -> bool | None:
    if op in ("=", "=="):
        return left == right
    if op in ("!=", "<>"):
        return left != right
    if left is None or right is None:
        return None
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _round(value: Any, digits: Any = 0) -> Any:
    if value is None:
        return None
    # Salesforce rounds half away from zero, unlike Python's banker's rounding.
    factor = 10 ** int(digits)
    return math.copysign(math.floor(abs(value) * factor + 0.5), value) / factor


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ABS": lambda v: None if v is None else abs(v),
    "BLANKVALUE": lambda v, default: default if _is_blank(v) else v,
    "NULLVALUE": lambda v, default: default if v is None else v,
    "ISBLANK": _is_blank,
    "ISNULL": lambda v: v is None,
    "ROUND": _round,
    "FLOOR": lambda v: None if v is None else math.floor(v),
    "CEILING": lambda v: None if v is None else math.ceil(v),
    "MOD": lambda v, d: None if v is None or d in (None, 0) else math.fmod(v, d),
    "MAX": lambda *values: None if None in values else max(values),
    "MIN": lambda *values: None if None in values else min(values),
    "TEXT": _text,
    "LEN": lambda v: len(v or ""),
    "UPPER": lambda v: None if v is None else str(v).upper(),
    "LOWER": lambda v: None if v is None else str(v).lower(),
    "VALUE": lambda v: None if _is_blank(v) else float(v),
    "DATEVALUE": _to_date,
    "ISPICKVAL": lambda v, literal: (v or "") == literal,
    "INCLUDES": lambda v, literal: literal in (v or "").split(";"),
}


class _Parser:
    def __init__(self, text: str, field_types: dict[str, str]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0
        self.field_types = {name.lower(): (name, kind) for name, kind in field_types.items()}
        self.references: set[str] = set()

    def peek(self) -> str | None:
        if self.position < len(self.tokens):
            return self.tokens[self.position][1]
        return None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise FormulaError(f"formula ends too early: {self.text!r}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, value: str) -> None:
        _, text = self.take()
        if text != value:
            raise FormulaError(f"expected {value!r} but found {text!r} in {self.text!r}")

    def parse(self) -> Compiled:
        compiled = self.logical_or()
        if self.peek() is not None:
            raise FormulaError(f"unexpected {self.peek()!r} in {self.text!r}")
        return compiled

    def logical_or(self) -> Compiled:
        left = self.logical_and()
        while self.peek() == "||":
            self.take()
            right = self.logical_and()
            left = (lambda a, b: lambda r, c: bool(a(r, c)) or bool(b(r, c)))(left, right)
        return left

    def logical_and(self) -> Compiled:
        left = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            left = (lambda a, b: lambda r, c: bool(a(r, c)) and bool(b(r, c)))(left, right)
        return left

    def comparison(self) -> Compiled:
        left = self.concat()
        op = self.peek()
        if op in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            self.take()
            right = self.concat()
            return (lambda a, b, o: lambda r, c: _compare(o, a(r, c), b(r, c)))(left, right, op)
        return left

    def concat(self) -> Compiled:
        left = self.additive()
        while self.peek() == "&":
            self.take()
            right = self.additive()
            left = (lambda a, b: lambda r, c: _text(a(r, c)) + _text(b(r, c)))(left, right)
        return left

    def additive(self) -> Compiled:
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.multiplicative()
            left = (lambda a, b, o: lambda r, c: _arith(o, a(r, c), b(r, c)))(left, right, op)
        return left

    def multiplicative(self) -> Compiled:
        left = self.power()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            right = self.power()
            left = (lambda a, b, o: lambda r, c: _arith(o, a(r, c), b(r, c)))(left, right, op)
        return left

    def power(self) -> Compiled:
        left = self.unary()
        while self.peek() == "^":
            self.take()
            right = self.unary()
            left = (lambda a, b: lambda r, c: _arith("^", a(r, c), b(r, c)))(left, right)
        return left

    def unary(self) -> Compiled:
        if self.peek() == "-":
            self.take()
            operand = self.unary()
            return lambda r, c: None if (v := operand(r, c)) is None else -v
        if self.peek() == "!":
            self.take()
            operand = self.unary()
            return lambda r, c: not operand(r, c)
        return self.primary()

    def primary(self) -> Compiled:
        kind, text = self.take()
        if kind == "number":
            number = float(text)
            return lambda r, c: number
        if kind == "string":
            literal = bytes(text[1:-1], "utf-8").decode("unicode_escape")
            return lambda r, c: literal
        if text == "(":
            inner = self.logical_or()
            self.expect(")")
            return inner
        if kind != "name":
            raise FormulaError(f"unexpected {text!r} in {self.text!r}")
        upper = text.upper()
        if self.peek() == "(":
            return self.call(upper)
        if upper in ("TRUE", "FALSE"):
            flag = upper == "TRUE"
            return lambda r, c: flag
        if upper == "NULL":
            return lambda r, c: None
        return self.field(text)

    def field(self, name: str) -> Compiled:
        resolved = self.field_types.get(name.lower())
        if resolved is None:
            raise FormulaError(
                f"field {name!r} does not exist; check the spelling in {self.text!r}"
            )
        field_name, kind = resolved
        self.references.add(field_name)
        if kind == "date":
            return lambda r, c: _to_date(r.get(field_name))
        if kind == "datetime":
            return lambda r, c: None if (v := r.get(field_name)) is None else parse_datetime(v)
        if kind in ("int", "double", "currency", "percent", "long"):
            return lambda r, c: None if (v := r.get(field_name)) is None else float(v)
        return lambda r, c: r.get(field_name)

    def call(self, name: str) -> Compiled:
        self.expect("(")
        args: list[Compiled] = []
        if self.peek() != ")":
            args.append(self.logical_or())
            while self.peek() == ",":
                self.take()
                args.append(self.logical_or())
        self.expect(")")
        if name == "TODAY":
            return lambda r, c: c.today
        if name == "NOW":
            return lambda r, c: c.now
        if name == "IF":
            if len(args) != 3:
                raise FormulaError(f"IF takes 3 arguments, got {len(args)} in {self.text!r}")
            test, then, otherwise = args
            return lambda r, c: then(r, c) if test(r, c) else otherwise(r, c)
        if name == "AND":
            return lambda r, c: all(bool(a(r, c)) for a in args)
        if name == "OR":
            return lambda r, c: any(bool(a(r, c)) for a in args)
        if name == "NOT":
            (operand,) = args
            return lambda r, c: not operand(r, c)
        if name == "CASE":
            subject, rest = args[0], args[1:]
            pairs = list(zip(rest[0::2], rest[1::2], strict=False))
            default = rest[-1] if len(rest) % 2 else (lambda r, c: None)

            def case(record: Record, context: FormulaContext) -> Any:
                value = subject(record, context)
                for match, result in pairs:
                    if value == match(record, context):
                        return result(record, context)
                return default(record, context)

            return case
        function = _FUNCTIONS.get(name)
        if function is None:
            raise FormulaError(f"function {name}() is not supported in {self.text!r}")
        return lambda r, c: function(*(a(r, c) for a in args))


@dataclass(frozen=True)
class CompiledFormula:
    text: str
    result_type: str
    scale: int
    evaluate_raw: Compiled
    references: frozenset[str]

    def evaluate(self, record: Record, context: FormulaContext) -> Any:
        """Evaluate and convert the result to the JSON value REST returns for the result type."""
        try:
            value = self.evaluate_raw(record, context)
        except (TypeError, ValueError, ArithmeticError, OverflowError):
            # Salesforce shows #Error! in the UI and returns null through the API.
            return None
        if value is None:
            return None
        kind = self.result_type
        if kind in ("double", "currency", "percent"):
            return float(_round(float(value), self.scale))
        if kind in ("int", "long"):
            return int(value)
        if kind == "boolean":
            return bool(value)
        if kind == "date":
            return value.isoformat() if isinstance(value, date) else str(value)
        if kind == "datetime":
            return format_datetime(value) if isinstance(value, datetime) else str(value)
        return _text(value)


def compile_formula(
    text: str, result_type: str, scale: int, field_types: dict[str, str]
) -> CompiledFormula:
    """Compile ``text`` against the object's fields (name -> describe type)."""
    parser = _Parser(text, field_types)
    evaluate = parser.parse()
    return CompiledFormula(text, result_type, scale, evaluate, frozenset(parser.references))
