"""Number columns: the JSON text the client keeps is cast to decimal128 or float64 exactly."""

import json
from decimal import Decimal

import pyarrow as pa
import pytest

from cora_pipeline.errors import SalesforceAPIError
from cora_pipeline.extract.convert import to_arrow
from cora_pipeline.extract.files import FieldInfo

AMOUNT = FieldInfo("Amount__c", "currency", "decimal128(18, 2)", precision=18, scale=2)
RATE = FieldInfo("Rate__c", "double", "double", precision=0, scale=0)
EMPLOYEES = FieldInfo("NumberOfEmployees", "int", "int64")


def _records(body: str) -> list[dict[str, object]]:
    """Decode a query page the way the client does: fractions stay text, integers become int."""
    return list(json.loads(body, parse_float=str)["records"])


def test_currency_text_casts_exactly() -> None:
    rows = _records(
        '{"records": [{"Amount__c": 1234567890123456.78}, {"Amount__c": -0.05},'
        ' {"Amount__c": null}, {"Amount__c": 2500}, {"Amount__c": 1.5E+3},'
        ' {"Amount__c": -9007199254740993}, {"Amount__c": 1.50}]}'
    )

    table = to_arrow(rows, [AMOUNT])

    assert table.schema.field("Amount__c").type == pa.decimal128(18, 2)
    assert table["Amount__c"].to_pylist() == [
        Decimal("1234567890123456.78"),
        Decimal("-0.05"),
        None,
        Decimal("2500"),
        Decimal("1500"),
        Decimal("-9007199254740993"),
        Decimal("1.5"),
    ]


def test_double_without_precision_is_float64() -> None:
    texts = ["0.1", "-2.2250738585072014e-308", "1.7976931348623157e308", "123456.654321"]
    rows = _records('{"records": [' + ", ".join(f'{{"Rate__c": {t}}}' for t in texts) + "]}")
    rows.append({"Rate__c": 7})
    rows.append({"Rate__c": None})

    table = to_arrow(rows, [RATE])

    assert table.schema.field("Rate__c").type == pa.float64()
    assert table["Rate__c"].to_pylist() == [*(float(t) for t in texts), 7.0, None]


def test_decimal_objects_still_convert() -> None:
    rows: list[dict[str, object]] = [{"Amount__c": Decimal("-1234567890123.45")}, {"Amount__c": 3}]

    table = to_arrow(rows, [AMOUNT])

    assert table["Amount__c"].to_pylist() == [Decimal("-1234567890123.45"), Decimal("3")]


def test_scale_over_field_scale_names_field() -> None:
    rows = _records('{"records": [{"Amount__c": 1.00}, {"Amount__c": 1.234}]}')

    with pytest.raises(SalesforceAPIError) as caught:
        to_arrow(rows, [AMOUNT])

    assert "Amount__c" in str(caught.value)
    assert "decimal128(18, 2)" in str(caught.value)


def test_precision_overflow_names_field() -> None:
    rows = _records('{"records": [{"Amount__c": 1e17}]}')

    with pytest.raises(SalesforceAPIError) as caught:
        to_arrow(rows, [AMOUNT])

    assert "Amount__c" in str(caught.value)


def test_whole_number_text_in_int_field() -> None:
    rows = _records('{"records": [{"NumberOfEmployees": 5.0}, {"NumberOfEmployees": -2147483648}]}')

    table = to_arrow(rows, [EMPLOYEES])

    assert table["NumberOfEmployees"].to_pylist() == [5, -2_147_483_648]


def test_fractional_text_in_int_field_names_field() -> None:
    rows = _records('{"records": [{"NumberOfEmployees": 5.5}]}')

    with pytest.raises(SalesforceAPIError) as caught:
        to_arrow(rows, [EMPLOYEES])

    assert "NumberOfEmployees" in str(caught.value)
