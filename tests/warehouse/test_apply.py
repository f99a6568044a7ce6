"""Diffing extracts into record_changes, field_changes, the current table and the history."""

from datetime import date
from decimal import Decimal

import pytest

from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.warehouse import ExtractOrderError, Warehouse

from .builders import ExtractWriter, account, at, rows


def field_changes(wh: Warehouse) -> list[tuple]:
    return rows(
        wh,
        "SELECT record_id, field, old_value, new_value, cause, run_id FROM field_changes "
        "ORDER BY extract_id, record_id, field",
    )


def record_changes(wh: Warehouse) -> list[tuple]:
    return rows(
        wh,
        "SELECT record_id, change_type, changed_fields, run_id FROM record_changes "
        "ORDER BY extract_id, record_id",
    )


def test_first_extract_is_a_baseline(writer: ExtractWriter, warehouse: Warehouse) -> None:
    result = warehouse.apply_extract(writer.write([account("a1"), account("a2")]))

    assert result.baseline
    assert (result.created, result.updated, result.deleted, result.field_changes) == (0, 0, 0, 0)
    assert result.current_rows == 2
    assert record_changes(warehouse) == []
    assert rows(warehouse, "SELECT extract_id, baseline, mode, current_rows FROM sync_runs") == [
        (writer.written[0].name, True, "full", 2)
    ]
    assert rows(warehouse, 'SELECT Id, Name FROM acme."Account" ORDER BY Id') == [
        ("a1", "Account a1"),
        ("a2", "Account a2"),
    ]


def test_causes_follow_the_audit_fields(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2"), account("a3")]))
    result = warehouse.apply_extract(
        writer.write(
            [
                account("a1", Name="Edited", LastModifiedDate=at(1.5), SystemModstamp=at(1.5)),
                account("a2", NumberOfEmployees=11, SystemModstamp=at(1.5)),
                account("a3", Health__c=Decimal("0.7500")),
            ]
        )
    )

    assert (result.created, result.updated, result.field_changes) == (0, 3, 3)
    assert field_changes(warehouse) == [
        ("a1", "Name", "Account a1", "Edited", "edit", "run-2"),
        ("a2", "NumberOfEmployees", "10", "11", "system", "run-2"),
        ("a3", "Health__c", "0.5", "0.75", "formula", "run-2"),
    ]
    assert record_changes(warehouse) == [
        ("a1", "updated", ["Name"], "run-2"),
        ("a2", "updated", ["NumberOfEmployees"], "run-2"),
        ("a3", "updated", ["Health__c"], "run-2"),
    ]


def test_change_rows_carry_detected_at_and_modstamp(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    second = writer.write(
        [account("a1", Name="Edited", LastModifiedDate=at(1.5), SystemModstamp=at(1.6))]
    )
    warehouse.apply_extract(second)

    assert rows(warehouse, "SELECT extract_id, detected_at, modstamp FROM field_changes") == [
        (second.name, at(2), at(1.6))
    ]
    assert rows(warehouse, "SELECT extract_id, detected_at, modstamp FROM record_changes") == [
        (second.name, at(2), at(1.6))
    ]


def test_null_transitions_are_changes(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(
        writer.write(
            [
                account("a1", SLAExpirationDate__c=None, Name=None),
                account("a2", SLAExpirationDate__c=date(2026, 5, 1), AnnualRevenue=None),
            ]
        )
    )
    warehouse.apply_extract(
        writer.write(
            [
                account(
                    "a1",
                    SLAExpirationDate__c=date(2026, 6, 30),
                    Name="Named",
                    LastModifiedDate=at(1.5),
                    SystemModstamp=at(1.5),
                ),
                account(
                    "a2",
                    SLAExpirationDate__c=None,
                    AnnualRevenue=Decimal("2500.50"),
                    IsPartner__c=None,
                    LastModifiedDate=at(1.5),
                    SystemModstamp=at(1.5),
                ),
            ]
        )
    )

    assert field_changes(warehouse) == [
        ("a1", "Name", None, "Named", "edit", "run-2"),
        ("a1", "SLAExpirationDate__c", None, "2026-06-30", "edit", "run-2"),
        ("a2", "AnnualRevenue", None, "2500.5", "edit", "run-2"),
        ("a2", "IsPartner__c", "false", None, "edit", "run-2"),
        ("a2", "SLAExpirationDate__c", "2026-05-01", None, "edit", "run-2"),
    ]


def test_same_number_written_differently_is_no_change(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1", AnnualRevenue=Decimal("1"))]))
    result = warehouse.apply_extract(
        writer.write([account("a1", AnnualRevenue=Decimal("1.0"), SystemModstamp=at(1.5))])
    )

    assert result.field_changes == 0
    assert result.updated == 0
    assert field_changes(warehouse) == []


def test_audit_only_difference_is_no_change(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    result = warehouse.apply_extract(
        writer.write([account("a1", LastModifiedDate=at(1.5), SystemModstamp=at(1.5))])
    )

    assert (result.updated, result.field_changes) == (0, 0)
    assert record_changes(warehouse) == []
    assert rows(warehouse, 'SELECT SystemModstamp FROM acme."Account"') == [(at(1.5),)]
    assert rows(warehouse, 'SELECT count(*), max(SystemModstamp) FROM acme."Account_history"') == [
        (1, at(1.5))
    ]


def test_full_extract_finds_created_and_hard_deleted(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(writer.write([account("a1"), account("a3")]))

    assert (result.created, result.deleted, result.current_rows) == (1, 1, 2)
    assert record_changes(warehouse) == [
        ("a2", "deleted", [], "run-2"),
        ("a3", "created", [], "run-2"),
    ]
    assert rows(warehouse, 'SELECT Id FROM acme."Account" ORDER BY Id') == [("a1",), ("a3",)]


def test_stopped_full_extract_proves_no_absence(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(writer.write([account("a1")], status="stopped_budget"))

    assert result.deleted == 0
    assert result.current_rows == 2


def test_soft_delete_and_undelete(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    warehouse.apply_extract(
        writer.write([account("a1", IsDeleted=True, SystemModstamp=at(1.5))], mode="incremental")
    )
    result = warehouse.apply_extract(
        writer.write(
            [
                account(
                    "a1",
                    IsDeleted=False,
                    Name="Restored",
                    LastModifiedDate=at(2.5),
                    SystemModstamp=at(2.5),
                )
            ],
            mode="incremental",
        )
    )

    assert result.undeleted == 1
    assert record_changes(warehouse) == [
        ("a1", "deleted", [], "run-2"),
        ("a1", "undeleted", ["Name"], "run-3"),
    ]
    assert field_changes(warehouse) == [("a1", "Name", "Account a1", "Restored", "edit", "run-3")]
    assert rows(
        warehouse,
        'SELECT valid_from, valid_to, is_deleted FROM acme."Account_history" ORDER BY valid_from',
    ) == [
        (at(0), at(1.5), False),
        (at(1.5), at(2.5), True),
        (at(2.5), None, False),
    ]


def test_incremental_absence_means_nothing(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(
        writer.write([account("a3", SystemModstamp=at(1.5))], mode="incremental")
    )

    assert (result.created, result.deleted, result.current_rows) == (1, 0, 3)


def test_deleted_parquet_hard_deletes(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(
        writer.write([], mode="incremental", deleted=[("a2", at(1.25)), ("zz", at(1.25))])
    )

    assert (result.deleted, result.current_rows) == (1, 1)
    assert rows(warehouse, "SELECT record_id, change_type, modstamp FROM record_changes") == [
        ("a2", "deleted", at(1.25))
    ]
    assert rows(
        warehouse,
        'SELECT valid_from, valid_to, is_deleted FROM acme."Account_history" '
        "WHERE Id = 'a2' ORDER BY valid_from",
    ) == [(at(0), at(1.25), False), (at(1.25), None, True)]


def test_hard_deleted_record_that_returns_is_undeleted(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    warehouse.apply_extract(writer.write([account("a1")]))
    result = warehouse.apply_extract(writer.write([account("a1"), account("a2")]))

    assert (result.created, result.undeleted) == (0, 1)


def test_formula_extract_updates_calculated_fields(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    from .builders import ACCOUNT_FIELDS

    formula_fields = [f for f in ACCOUNT_FIELDS if f.name == "Id" or f.calculated]
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    result = warehouse.apply_extract(
        writer.write(
            [
                {"Id": "a1", "Health__c": Decimal("0.9")},
                {"Id": "a2", "Health__c": Decimal("0.5")},
                {"Id": "unknown", "Health__c": Decimal("0.1")},
            ],
            mode="formula",
            fields=formula_fields,
        )
    )

    assert (result.created, result.updated, result.deleted, result.schema_changes) == (0, 1, 0, 0)
    assert field_changes(warehouse) == [("a1", "Health__c", "0.5", "0.9", "formula", "run-2")]
    assert rows(warehouse, 'SELECT Id, Name, Health__c FROM acme."Account" ORDER BY Id') == [
        ("a1", "Account a1", Decimal("0.9000")),
        ("a2", "Account a2", Decimal("0.5000")),
    ]
    assert rows(
        warehouse,
        "SELECT valid_from, valid_to FROM acme.\"Account_history\" WHERE Id = 'a1' "
        "ORDER BY valid_from",
    ) == [(at(0), at(2)), (at(2), None)]


def test_same_extract_twice_changes_nothing(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    second = writer.write([account("a1", Name="Edited", LastModifiedDate=at(1.5))])
    first_result = warehouse.apply_extract(second)
    again = warehouse.apply_extract(second)

    assert not first_result.already_applied
    assert again.already_applied
    assert (again.updated, again.field_changes) == (1, 1)
    assert len(field_changes(warehouse)) == 1
    assert len(record_changes(warehouse)) == 1
    assert rows(warehouse, "SELECT count(*) FROM sync_runs") == [(2,)]
    assert rows(warehouse, 'SELECT count(*) FROM acme."Account_history"') == [(2,)]


def test_older_extract_is_rejected(writer: ExtractWriter, warehouse: Warehouse) -> None:
    first = writer.write([account("a1")])
    second = writer.write([account("a1")])
    warehouse.apply_extract(second)

    with pytest.raises(ExtractOrderError, match="cora rebuild"):
        warehouse.apply_extract(first)


def test_as_of_returns_the_record_as_it_was(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1", Name="First")]))
    warehouse.apply_extract(
        writer.write(
            [account("a1", Name="Second", LastModifiedDate=at(1.5), SystemModstamp=at(1.5))]
        )
    )
    warehouse.apply_extract(writer.write([]))

    def name_at(hours: float) -> list[tuple]:
        return rows(warehouse, 'SELECT Id, Name FROM acme."Account_as_of"(?)', [at(hours)])

    assert name_at(-1) == []
    assert name_at(1) == [("a1", "First")]
    assert name_at(1.5) == [("a1", "Second")]
    assert name_at(2.9) == [("a1", "Second")]
    assert name_at(3) == []


def test_org_names_must_be_slugs(tmp_path) -> None:
    writer = ExtractWriter(tmp_path / "data", org="Bad-Org")
    wh = Warehouse(tmp_path / "data")
    try:
        with pytest.raises(ValueError, match="not a valid slug"):
            wh.apply_extract(writer.write([account("a1")]))
    finally:
        wh.close()


def test_recent_field_changes_lists_newest_first(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    warehouse.apply_extract(writer.write([account("a1", Name="B", LastModifiedDate=at(1.5))]))
    warehouse.apply_extract(writer.write([account("a1", Name="C", LastModifiedDate=at(2.5))]))

    recent = warehouse.recent_field_changes("acme", "Account", limit=1)

    assert [(c["record_id"], c["field"], c["old_value"], c["new_value"]) for c in recent] == [
        ("a1", "Name", "B", "C")
    ]


def test_repeated_record_keeps_latest_copy(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(
        writer.write([account("a1"), account("a1", Name="Later", SystemModstamp=at(0.5))])
    )
    result = warehouse.apply_extract(
        writer.write(
            [
                account("a1", Name="Old copy", LastModifiedDate=at(0.5), SystemModstamp=at(1.2)),
                account("a1", Name="New copy", LastModifiedDate=at(0.5), SystemModstamp=at(1.4)),
            ],
            mode="incremental",
        )
    )

    assert result.current_rows == 1
    assert field_changes(warehouse) == [("a1", "Name", "Later", "New copy", "edit", "run-2")]
    assert rows(warehouse, 'SELECT count(*) FROM acme."Account_history"') == [(2,)]


def test_object_without_audit_fields(writer: ExtractWriter, warehouse: Warehouse) -> None:
    fields = [
        FieldInfo("Id", "id", "string"),
        FieldInfo("Name", "string", "string"),
        FieldInfo("Score__c", "int", "int64", calculated=True),
    ]
    warehouse.apply_extract(
        writer.write(
            [{"Id": "x1", "Name": "One", "Score__c": 1}], sobject="Thing__c", fields=fields
        )
    )
    warehouse.apply_extract(
        writer.write(
            [{"Id": "x1", "Name": "Uno", "Score__c": 2}], sobject="Thing__c", fields=fields
        )
    )

    assert field_changes(warehouse) == [
        ("x1", "Name", "One", "Uno", "unknown", "run-2"),
        ("x1", "Score__c", "1", "2", "formula", "run-2"),
    ]
    assert rows(
        warehouse,
        'SELECT Name, valid_from, valid_to FROM acme."Thing__c_history" ORDER BY valid_from',
    ) == [("One", at(1), at(2)), ("Uno", at(2), None)]
