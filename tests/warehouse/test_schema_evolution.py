"""Fields added, hidden, removed, shown again and retyped between extracts."""

from decimal import Decimal

from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.warehouse import Warehouse

from .builders import ACCOUNT_FIELDS, ExtractWriter, account, at, retyped, rows, without


def schema_changes(wh: Warehouse) -> list[tuple]:
    return rows(
        wh,
        "SELECT field, change, old_type, new_type, run_id FROM schema_changes "
        "ORDER BY extract_id, field",
    )


def field_changes(wh: Warehouse) -> list[tuple]:
    return rows(
        wh,
        "SELECT record_id, field, old_value, new_value, cause, run_id FROM field_changes "
        "ORDER BY extract_id, record_id, field",
    )


RATING = FieldInfo("Rating", "picklist", "string")


def test_new_field_is_one_schema_change(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(
        writer.write(
            [account("a1", Rating="Hot"), account("a2", Rating=None)],
            fields=[*ACCOUNT_FIELDS, RATING],
        )
    )

    assert (result.schema_changes, result.field_changes, result.updated) == (1, 0, 0)
    assert schema_changes(warehouse) == [("Rating", "added", None, "picklist (VARCHAR)", "run-2")]
    assert rows(warehouse, 'SELECT Id, Rating FROM acme."Account" ORDER BY Id') == [
        ("a1", "Hot"),
        ("a2", None),
    ]
    assert rows(
        warehouse, 'SELECT Id, Rating, valid_to FROM acme."Account_history" ORDER BY Id'
    ) == [("a1", "Hot", None), ("a2", None, None)]


def test_added_field_compared_from_next_extract(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    fields = [*ACCOUNT_FIELDS, RATING]
    warehouse.apply_extract(writer.write([account("a1", Rating="Hot")], fields=fields))
    warehouse.apply_extract(
        writer.write([account("a1", Rating="Cold", LastModifiedDate=at(2.5))], fields=fields)
    )

    assert field_changes(warehouse) == [("a1", "Rating", "Hot", "Cold", "edit", "run-3")]


def test_hidden_field_is_not_a_change_to_null(writer: ExtractWriter, warehouse: Warehouse) -> None:
    hidden_fields = without(ACCOUNT_FIELDS, "NumberOfEmployees")
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(
        writer.write(
            [account("a1"), account("a2")],
            fields=hidden_fields,
            extra={"hidden_fields": ["NumberOfEmployees"]},
        )
    )

    assert (result.schema_changes, result.field_changes, result.updated) == (1, 0, 0)
    assert schema_changes(warehouse) == [
        ("NumberOfEmployees", "hidden", "int (BIGINT)", None, "run-2")
    ]
    assert rows(warehouse, 'SELECT Id, NumberOfEmployees FROM acme."Account" ORDER BY Id') == [
        ("a1", 10),
        ("a2", 10),
    ]


def test_field_missing_without_a_reason_is_removed(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    warehouse.apply_extract(
        writer.write([account("a1")], fields=without(ACCOUNT_FIELDS, "SLAExpirationDate__c"))
    )

    assert schema_changes(warehouse) == [
        ("SLAExpirationDate__c", "removed", "date (DATE)", None, "run-2")
    ]
    assert field_changes(warehouse) == []


def test_field_shown_again_reports_only_real_changes(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    hidden_fields = without(ACCOUNT_FIELDS, "NumberOfEmployees")
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    warehouse.apply_extract(
        writer.write(
            [account("a1"), account("a2"), account("a3", SystemModstamp=at(1.5))],
            fields=hidden_fields,
            extra={"hidden_fields": ["NumberOfEmployees"]},
        )
    )
    result = warehouse.apply_extract(
        writer.write(
            [
                account("a1"),
                account("a2", NumberOfEmployees=20, LastModifiedDate=at(2.5)),
                account("a3", NumberOfEmployees=5, SystemModstamp=at(1.5)),
            ]
        )
    )

    assert schema_changes(warehouse) == [
        ("NumberOfEmployees", "hidden", "int (BIGINT)", None, "run-2"),
        ("NumberOfEmployees", "visible", "int (BIGINT)", "int (BIGINT)", "run-3"),
    ]
    assert field_changes(warehouse) == [("a2", "NumberOfEmployees", "10", "20", "edit", "run-3")]
    assert (result.updated, result.field_changes) == (1, 1)
    assert rows(warehouse, 'SELECT Id, NumberOfEmployees FROM acme."Account" ORDER BY Id') == [
        ("a1", 10),
        ("a2", 20),
        ("a3", 5),
    ]


def test_retyped_field_is_recorded_once(writer: ExtractWriter, warehouse: Warehouse) -> None:
    as_double = retyped(ACCOUNT_FIELDS, "AnnualRevenue", type="double", precision=0, scale=0)
    warehouse.apply_extract(
        writer.write(
            [account("a1", AnnualRevenue=1.0), account("a2", AnnualRevenue=2.5)], fields=as_double
        )
    )
    result = warehouse.apply_extract(
        writer.write(
            [
                account("a1", AnnualRevenue=Decimal("1.00")),
                account("a2", AnnualRevenue=Decimal("3.00"), LastModifiedDate=at(1.5)),
            ]
        )
    )

    assert schema_changes(warehouse) == [
        ("AnnualRevenue", "retyped", "double (DOUBLE)", "currency (DECIMAL(18,2))", "run-2")
    ]
    assert field_changes(warehouse) == [("a2", "AnnualRevenue", "2.5", "3", "edit", "run-2")]
    assert result.updated == 1
    assert rows(warehouse, 'SELECT Id, AnnualRevenue FROM acme."Account" ORDER BY Id') == [
        ("a1", Decimal("1.00")),
        ("a2", Decimal("3.00")),
    ]


def test_change_while_hidden_has_unknown_cause(writer: ExtractWriter, warehouse: Warehouse) -> None:
    hidden_fields = without(ACCOUNT_FIELDS, "NumberOfEmployees")
    warehouse.apply_extract(writer.write([account("a1")]))
    warehouse.apply_extract(
        writer.write(
            [account("a1", LastModifiedDate=at(1.5), SystemModstamp=at(1.5))],
            fields=hidden_fields,
        )
    )
    warehouse.apply_extract(
        writer.write(
            [account("a1", NumberOfEmployees=99, LastModifiedDate=at(1.5), SystemModstamp=at(1.5))]
        )
    )

    assert field_changes(warehouse) == [("a1", "NumberOfEmployees", "10", "99", "unknown", "run-3")]
