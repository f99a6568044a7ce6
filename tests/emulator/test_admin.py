"""The Python admin API: record changes, timestamps and formula fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce

from cora_pipeline.emulator import AdminError, Emulator, EmulatorSettings

from .helpers import connect, error_body, salesforce, sobject


@pytest.fixture(scope="module")
def small() -> Iterator[Emulator]:
    start = datetime(2026, 3, 10, 22, 0, 0, tzinfo=UTC)
    with Emulator(
        EmulatorSettings(
            seed=5, sizes={"Account": 20, "Opportunity": 20, "Invoice__c": 30}, start_time=start
        )
    ) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def small_sf(small: Emulator) -> Salesforce:
    return salesforce(small, connect(small))


def test_user_update_moves_both_stamps(small: Emulator, small_sf: Salesforce) -> None:
    admin = small.production.admin
    record_id = admin.create("Account", {"Name": "Stamp test"})
    before = admin.get("Account", record_id)
    admin.advance_clock(5)
    admin.update("Account", record_id, {"Phone": "123"}, by="user")
    after = sobject(small_sf, "Account").get(record_id)
    assert after["Phone"] == "123"
    assert after["LastModifiedDate"] > before["LastModifiedDate"]
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == after["SystemModstamp"]


def test_system_update_moves_only_modstamp(small: Emulator) -> None:
    admin = small.production.admin
    record_id = admin.create("Account", {"Name": "System test"})
    before = admin.get("Account", record_id)
    admin.advance_clock(5)
    admin.system_update("Account", record_id)
    after = admin.get("Account", record_id)
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after["SystemModstamp"] > before["SystemModstamp"]
    admin.advance_clock(5)
    admin.update("Account", record_id, {"Rating": "Hot"}, by="system")
    changed = admin.get("Account", record_id)
    assert changed["Rating"] == "Hot"
    assert changed["LastModifiedDate"] == before["LastModifiedDate"]


def test_today_formula_changes_without_modstamp(small: Emulator, small_sf: Salesforce) -> None:
    admin = small.production.admin
    today = admin.now().date()
    record_id = admin.create(
        "Invoice__c",
        {
            "Amount__c": 100,
            "Tax_Rate__c": 7.5,
            "Invoice_Date__c": (today - timedelta(days=3)).isoformat(),
        },
    )
    soql = (
        f"SELECT Days_Outstanding__c, Total__c, SystemModstamp FROM Invoice__c "
        f"WHERE Id = '{record_id}'"
    )
    before = small_sf.query(soql)["records"][0]
    assert before["Days_Outstanding__c"] == 3.0
    assert before["Total__c"] == 107.5
    admin.advance_clock(24 * 3600)
    after = small_sf.query(soql)["records"][0]
    assert after["Days_Outstanding__c"] == 4.0
    assert after["SystemModstamp"] == before["SystemModstamp"]


def test_formula_filter_and_change(small: Emulator, small_sf: Salesforce) -> None:
    admin = small.production.admin
    record_id = admin.create("Invoice__c", {"Amount__c": 10, "Tax_Rate__c": 10})
    admin.set_formula("Invoice__c", "Total__c", "Amount__c * 2")
    try:
        row = small_sf.query(
            f"SELECT Total__c FROM Invoice__c WHERE Id = '{record_id}' AND Total__c = 20"
        )["records"]
        assert row[0]["Total__c"] == 20.0
        described = {f["name"]: f for f in sobject(small_sf, "Invoice__c").describe()["fields"]}
        assert described["Total__c"]["calculatedFormula"] == "Amount__c * 2"
    finally:
        admin.set_formula(
            "Invoice__c", "Total__c", "Amount__c * (1 + BLANKVALUE(Tax_Rate__c, 0) / 100)"
        )


def test_delete_undelete_and_hard_delete(small: Emulator) -> None:
    admin = small.production.admin
    record_id = admin.create(
        "Opportunity", {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-05-01"}
    )
    admin.delete("Opportunity", record_id)
    assert record_id not in {r["Id"] for r in admin.records("Opportunity")}
    assert record_id in {r["Id"] for r in admin.records("Opportunity", include_deleted=True)}
    admin.undelete("Opportunity", record_id)
    assert admin.get("Opportunity", record_id)["IsDeleted"] is False
    admin.hard_delete("Opportunity", record_id)
    with pytest.raises(AdminError):
        admin.get("Opportunity", record_id)


def test_commit_late_sets_past_modstamp(small: Emulator) -> None:
    admin = small.production.admin
    past = admin.now() - timedelta(hours=2)
    record_id = admin.commit_late("Account", {"Name": "Late"}, past)
    record = admin.get("Account", record_id)
    assert record["SystemModstamp"] == past.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_unknown_field_is_rejected(small: Emulator) -> None:
    with pytest.raises(AdminError, match="Nope__c"):
        small.production.admin.create("Account", {"Name": "x", "Nope__c": 1})


def test_seeded_data_is_deterministic() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    settings = EmulatorSettings(seed=9, sizes={"Account": 30, "Invoice__c": 10}, start_time=start)
    first = Emulator(settings)
    second = Emulator(settings)
    try:
        assert first.production.admin.records("Account") == second.production.admin.records(
            "Account"
        )
        assert first.production.org_id == second.production.org_id
    finally:
        first.stop()
        second.stop()


def test_account_delete_cascades_and_undelete_restores(
    small: Emulator, small_sf: Salesforce
) -> None:
    admin = small.production.admin
    account = admin.create("Account", {"Name": "Parent"})
    contact = admin.create("Contact", {"LastName": "Child", "AccountId": account})
    invoice = admin.create("Invoice__c", {"Account__c": account})
    admin.delete("Account", account)
    deleted = small_sf.query_all(
        f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{contact}'", include_deleted=True
    )["records"]
    assert deleted[0]["IsDeleted"] is True
    assert admin.get("Invoice__c", invoice)["Account__c"] is None
    admin.undelete("Account", account)
    assert admin.get("Contact", contact)["IsDeleted"] is False
    assert admin.get("Invoice__c", invoice)["Account__c"] == account
    admin.hard_delete("Account", account)
    with pytest.raises(AdminError):
        admin.get("Contact", contact)


def test_unqueryable_object_leaves_soql(small: Emulator, small_sf: Salesforce) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    admin = small.production.admin
    admin.set_object_flags("Case", queryable=False)
    try:
        described: Any = small_sf.describe()
        entry = next(o for o in described["sobjects"] if o["name"] == "Case")
        assert entry["queryable"] is False
        with pytest.raises(SalesforceMalformedRequest) as raised:
            small_sf.query("SELECT Id FROM Case")
        assert error_body(raised.value)[0]["errorCode"] == "INVALID_TYPE"
    finally:
        admin.set_object_flags("Case", queryable=True)


def test_date_header_follows_org_clock(small: Emulator, small_sf: Salesforce) -> None:
    from email.utils import parsedate_to_datetime

    small.production.admin.advance_clock(3 * 86400)
    response = small_sf.session.get(
        f"{small.production.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {small_sf.session_id}"},
    )
    served = parsedate_to_datetime(response.headers["Date"])
    assert abs((served - small.production.admin.now()).total_seconds()) < 5
