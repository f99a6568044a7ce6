"""Exact values: text, numbers, dates and nulls reach Parquet unchanged."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tests.extract.conftest import Harness, manifest_of, records_of

TRICKY = "Zürich 🚀🇯🇵 \"double\" 'single' back\\slash\nnew line\r\n\ttab \x00 nul — ü"
LONG_TEXT = (TRICKY * (131_072 // len(TRICKY) + 1))[:131_072]


def _row(table: pa.Table, record_id: str) -> dict[str, Any]:
    rows = table.filter(pc.equal(table["Id"], record_id)).to_pylist()
    assert len(rows) == 1
    return dict(rows[0])


def test_text_round_trips_exactly(harness: Harness) -> None:
    account = harness.admin.create(
        "Account", {"Name": TRICKY, "Description": TRICKY * 10, "Phone": None}
    )
    account_of_invoice = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[0]["Id"]
    invoice = harness.admin.create(
        "Invoice__c",
        {"Account__c": account_of_invoice, "Notes__c": LONG_TEXT, "Tags__c": "Priority;Export"},
    )

    accounts = records_of(harness.extract("Account"))
    invoices = records_of(harness.extract("Invoice__c"))

    row = _row(accounts, account)
    assert row["Name"] == TRICKY
    assert row["Description"] == TRICKY * 10
    assert row["Phone"] is None
    notes = _row(invoices, invoice)["Notes__c"]
    assert len(notes) == 131_072
    assert notes == LONG_TEXT
    assert _row(invoices, invoice)["Tags__c"] == "Priority;Export"


def test_numbers_round_trip_exactly(harness: Harness) -> None:
    big = harness.admin.create(
        "Account",
        {
            "Name": "Big",
            "NumberOfEmployees": 2_147_483_647,
            # 2**53 - 1: the largest integer the emulator's float storage keeps exactly.
            "AnnualRevenue": 9_007_199_254_740_991,
        },
    )
    small = harness.admin.create(
        "Account",
        {
            "Name": "Small",
            "NumberOfEmployees": -2_147_483_648,
            "AnnualRevenue": -9_007_199_254_740_991,
        },
    )
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[0]["Id"]
    invoice = harness.admin.create(
        "Invoice__c",
        {
            "Account__c": account,
            "Amount__c": Decimal("-1234567890123.45"),
            "Tax_Rate__c": Decimal("-0.05"),
            "Exchange_Rate__c": Decimal("123456.654321"),
        },
    )

    accounts = records_of(harness.extract("Account"))
    invoices = records_of(harness.extract("Invoice__c"))

    assert _row(accounts, big)["NumberOfEmployees"] == 2_147_483_647
    assert _row(accounts, big)["AnnualRevenue"] == Decimal(9_007_199_254_740_991)
    assert _row(accounts, small)["NumberOfEmployees"] == -2_147_483_648
    assert _row(accounts, small)["AnnualRevenue"] == Decimal(-9_007_199_254_740_991)
    row = _row(invoices, invoice)
    assert row["Amount__c"] == Decimal("-1234567890123.45")
    assert row["Tax_Rate__c"] == Decimal("-0.05")
    assert row["Exchange_Rate__c"] == Decimal("123456.654321")
    assert invoices.schema.field("Amount__c").type == pa.decimal128(16, 2)


def test_dates_outside_1970_to_2100(harness: Harness) -> None:
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[0]["Id"]
    old = harness.admin.create(
        "Invoice__c",
        {
            "Account__c": account,
            "Invoice_Date__c": "1850-03-01",
            "Paid_At__c": "1901-01-01T00:00:01.000+0000",
        },
    )
    future = harness.admin.create(
        "Invoice__c",
        {
            "Account__c": account,
            "Invoice_Date__c": "2150-12-31",
            "Paid_At__c": "2199-12-31T23:59:59.000+0000",
        },
    )

    table = records_of(harness.extract("Invoice__c"))

    assert _row(table, old)["Invoice_Date__c"] == date(1850, 3, 1)
    assert _row(table, old)["Paid_At__c"] == datetime(1901, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert _row(table, future)["Invoice_Date__c"] == date(2150, 12, 31)
    assert _row(table, future)["Paid_At__c"] == datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert table.schema.field("Paid_At__c").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("Invoice_Date__c").type == pa.date32()


def test_nulls_stay_null(harness: Harness) -> None:
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[0]["Id"]
    bare = harness.admin.create("Invoice__c", {"Account__c": account})

    result = harness.extract("Invoice__c")

    row = _row(records_of(result), bare)
    nullable = [
        f.name
        for f in manifest_of(result).fields
        if f.nillable and f.type != "boolean" and not f.calculated
    ]
    stored = harness.admin.get("Invoice__c", bare)
    empty = [name for name in nullable if stored.get(name) is None]
    assert len(empty) >= 5
    for name in empty:
        assert row[name] is None, name
    assert row["Paid__c"] is False
