"""Field selection from describe: types, visibility, compound and skipped fields, config lists."""

from typing import Any

import pyarrow as pa
import pytest

from cora_pipeline.config import ObjectConfig
from cora_pipeline.extract.schema import arrow_type_for, plan_fields
from tests.extract.conftest import Harness, manifest_of, records_of


@pytest.mark.parametrize(
    ("sf_type", "extra", "expected"),
    [
        ("id", {}, pa.string()),
        ("reference", {}, pa.string()),
        ("masterrecord", {}, pa.string()),
        ("string", {}, pa.string()),
        ("textarea", {}, pa.string()),
        ("picklist", {}, pa.string()),
        ("multipicklist", {}, pa.string()),
        ("combobox", {}, pa.string()),
        ("email", {}, pa.string()),
        ("phone", {}, pa.string()),
        ("url", {}, pa.string()),
        ("encryptedstring", {}, pa.string()),
        ("datacategorygroupreference", {}, pa.string()),
        ("anyType", {}, pa.string()),
        ("time", {}, pa.string()),
        ("boolean", {}, pa.bool_()),
        ("int", {"digits": 9}, pa.int64()),
        ("long", {"digits": 18}, pa.int64()),
        ("currency", {"precision": 18, "scale": 2}, pa.decimal128(18, 2)),
        ("percent", {"precision": 5, "scale": 2}, pa.decimal128(5, 2)),
        ("double", {"precision": 18, "scale": 0}, pa.decimal128(18, 0)),
        ("double", {"precision": 0, "scale": 0}, pa.float64()),
        ("date", {}, pa.date32()),
        ("datetime", {}, pa.timestamp("ms", tz="UTC")),
        ("address", {}, None),
        ("location", {}, None),
        ("base64", {}, None),
        ("complexvalue", {}, None),
        ("json", {}, None),
    ],
)
def test_describe_type_maps_to_arrow(
    sf_type: str, extra: dict[str, Any], expected: pa.DataType | None
) -> None:
    assert arrow_type_for({"type": sf_type, **extra}) == expected


def test_plan_notes_why_fields_are_skipped() -> None:
    describe = [
        {"name": "Id", "type": "id"},
        {"name": "BillingAddress", "type": "address"},
        {"name": "Body", "type": "base64"},
        {"name": "Shape", "type": "json"},
    ]

    fields, skipped = plan_fields(describe)

    assert [f.name for f in fields] == ["Id"]
    reasons = {s.name: s.reason for s in skipped}
    assert "component fields" in reasons["BillingAddress"]
    assert "base64" in reasons["Body"]
    assert "no value representation" in reasons["Shape"]


def test_address_components_extracted_not_compound(harness: Harness) -> None:
    result = harness.extract("Account")

    names = [f.name for f in manifest_of(result).fields]
    assert "BillingAddress" not in names
    assert "BillingCity" in names
    assert "BillingLatitude" in names
    row = records_of(result).to_pylist()[0]
    assert "BillingAddress" not in row


def test_hidden_field_is_not_extracted(harness: Harness) -> None:
    harness.admin.hide_field("Account", "Rating")

    result = harness.extract("Account")

    assert "Rating" not in [f.name for f in manifest_of(result).fields]
    assert "Rating" not in records_of(result).column_names


def test_include_keeps_listed_and_required_fields(harness: Harness) -> None:
    obj = ObjectConfig("Account", include=("Name", "Rating"))

    result = harness.extract("Account", obj=obj)

    names = records_of(result).column_names
    assert sorted(names) == sorted(
        ["Id", "IsDeleted", "LastModifiedDate", "SystemModstamp", "Name", "Rating"]
    )


def test_exclude_drops_listed_fields(harness: Harness) -> None:
    obj = ObjectConfig("Account", exclude=("Description", "Website"))

    result = harness.extract("Account", obj=obj)

    names = records_of(result).column_names
    assert "Description" not in names
    assert "Website" not in names
    assert "Name" in names


def test_unknown_object_is_skipped_with_reason(harness: Harness) -> None:
    result = harness.extract("Nonexistent__c")

    assert result.status == "skipped"
    assert "Nonexistent__c" in (result.message or "")
    assert result.extract_dirs == []


def test_unqueryable_object_is_skipped(harness: Harness) -> None:
    harness.admin.set_object_flags("Case", queryable=False)

    result = harness.extract("Case")

    assert result.status == "skipped"
    assert "queryable=false" in (result.message or "")
    assert result.extract_dirs == []
