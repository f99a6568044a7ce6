"""Convert REST query records (JSON values) to Arrow tables with the planned types.

The client parses JSON numbers with a fraction or exponent with ``parse_float=str``, so a
``double``, ``currency`` or ``percent`` value reaches :func:`to_arrow` as the text Salesforce sent
(JSON integers arrive as :class:`int`). Arrow casts the whole column from that text to
``decimal128`` or ``float64`` in one call, so no value passes through a binary float on the way to
``decimal128``. The cast raises rather than round when a value has more decimal places than the
field's scale, as the value-by-value :class:`~decimal.Decimal` conversion does.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import pyarrow as pa

from cora_pipeline.errors import SalesforceAPIError
from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.extract.schema import arrow_schema


def parse_datetime(value: str) -> datetime:
    """Parse Salesforce's ``2020-10-22T21:03:23.000+0000`` (and the ``Z`` form) as an aware datetime."""
    return datetime.fromisoformat(value)


def soql_datetime(moment: datetime) -> str:
    """Format an instant as a SOQL datetime literal (UTC, milliseconds, no quotes)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_arrow(rows: Iterable[dict[str, Any]], fields: list[FieldInfo]) -> pa.Table:
    """Convert REST query records to an Arrow table with the planned types.

    A field missing from a record becomes null; ``attributes`` and fields not planned are ignored.
    Each column is first handed to Arrow as it is, and Arrow's ISO 8601 cast parses datetimes and
    dates. A column Arrow rejects is converted value by value in Python. If that fails too, the
    error names the field.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    schema = arrow_schema(fields)
    columns = []
    for info, target in zip(fields, schema, strict=True):
        values = _values(rows, info.name)
        try:
            columns.append(_column(values, info, target.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, ArithmeticError):
            columns.append(_column_by_value(values, info, target.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _values(rows: list[dict[str, Any]], name: str) -> list[Any]:
    """Return one field of every record, None where a record lacks it."""
    try:
        # Query results contain every selected field (null included), so this fast path is the
        # usual one: map with itemgetter reads about twice as fast as a comprehension with get.
        return list(map(itemgetter(name), rows))
    except KeyError:
        return [row.get(name) for row in rows]


def _column(values: list[Any], info: FieldInfo, arrow_type: pa.DataType) -> pa.Array:
    if info.type in ("datetime", "date"):
        return pa.array(values, pa.string()).cast(arrow_type)
    if pa.types.is_decimal(arrow_type) or pa.types.is_floating(arrow_type):
        return _number_text(values).cast(arrow_type)
    if info.type == "anyType":
        # Mixed anyType values (text, numbers, booleans) need Python's conversion.
        return pa.array(_convert(values, info, arrow_type), arrow_type)
    return pa.array(values, arrow_type)


def _number_text(values: list[Any]) -> pa.Array:
    """Return a number column as Arrow strings: JSON text as sent, integers in decimal notation."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # JSON integers arrive as int, and callers may pass Decimal or float. str() of each is
        # its exact decimal text (for a float, the shortest text that reads back as that float).
        return pa.array(
            [v if v is None or isinstance(v, str) else str(v) for v in values], pa.string()
        )


def _column_by_value(values: list[Any], info: FieldInfo, arrow_type: pa.DataType) -> pa.Array:
    try:
        return pa.array(_convert(values, info, arrow_type), arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, ArithmeticError) as exc:
        raise SalesforceAPIError(
            f"field {info.name} ({info.type}, precision {info.precision}, scale {info.scale}) "
            f"has a value that does not fit {arrow_type}: {exc}"
        ) from exc


def _convert(values: list[Any], info: FieldInfo, arrow_type: pa.DataType) -> list[Any]:
    if info.type == "datetime":
        return [parse_datetime(v) if v is not None else None for v in values]
    if info.type == "date":
        return [date.fromisoformat(v) if v is not None else None for v in values]
    if info.type in ("int", "long"):
        return [_integer(v) if v is not None else None for v in values]
    if pa.types.is_decimal(arrow_type):
        return [_decimal(v) if v is not None else None for v in values]
    if pa.types.is_floating(arrow_type):
        return [float(v) if v is not None else None for v in values]
    if pa.types.is_string(arrow_type):
        return [_text(v) for v in values]
    return values


def _text(value: Any) -> str | None:
    """Return text values as they are; ``anyType`` numbers and booleans as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, int):
        return value
    number = Decimal(str(value))
    if number != number.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
