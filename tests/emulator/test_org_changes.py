"""Seeded values that break naive code, schema changes, the simulator and the HTTP admin API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, error_body, salesforce, sobject, trusting_session


@pytest.fixture
def changing() -> Iterator[Emulator]:
    settings = EmulatorSettings(
        seed=8,
        sizes={"Account": 40, "Contact": 40, "Opportunity": 40, "Case": 40, "Invoice__c": 40},
    )
    with Emulator(settings) as emulator:
        yield emulator


@pytest.fixture
def changing_sf(changing: Emulator) -> Salesforce:
    return salesforce(changing, connect(changing))


def test_awkward_values_survive_the_wire(changing_sf: Salesforce) -> None:
    descriptions = {
        r["Description"]
        for r in changing_sf.query_all("SELECT Description FROM Account")["records"]
    }
    assert "NUL inside\x00the value" in descriptions
    assert "Line one\nLine two\r\nLine three" in descriptions
    assert any("🎉" in (d or "") for d in descriptions)
    assert any('"double"' in (d or "") for d in descriptions)
    assert None in descriptions
    notes = [
        r["Notes__c"] for r in changing_sf.query_all("SELECT Notes__c FROM Invoice__c")["records"]
    ]
    assert max(len(n or "") for n in notes) == 131_072


def test_every_common_field_type_is_present(changing_sf: Salesforce) -> None:
    types = {
        f["type"]
        for name in ("Account", "Contact", "Opportunity", "Case", "Invoice__c")
        for f in getattr(changing_sf, name).describe()["fields"]
    }
    assert {
        "picklist",
        "multipicklist",
        "currency",
        "percent",
        "int",
        "double",
        "date",
        "datetime",
        "boolean",
        "textarea",
        "email",
        "phone",
        "url",
        "reference",
        "address",
        "id",
        "string",
    } <= types


def test_hidden_field_leaves_describe_and_soql(changing: Emulator, changing_sf: Salesforce) -> None:
    admin = changing.production.admin
    admin.hide_field("Account", "AnnualRevenue")
    names = {f["name"] for f in sobject(changing_sf, "Account").describe()["fields"]}
    assert "AnnualRevenue" not in names
    with pytest.raises(SalesforceMalformedRequest) as raised:
        changing_sf.query("SELECT Id, AnnualRevenue FROM Account")
    assert error_body(raised.value)[0]["errorCode"] == "INVALID_FIELD"
    assert (
        "No such column 'AnnualRevenue' on entity 'Account'"
        in error_body(raised.value)[0]["message"]
    )
    admin.show_field("Account", "AnnualRevenue")
    assert changing_sf.query("SELECT AnnualRevenue FROM Account LIMIT 1")["totalSize"] == 1


def test_added_and_removed_fields(changing: Emulator, changing_sf: Salesforce) -> None:
    admin = changing.production.admin
    admin.add_field("Case", "Severity__c", "picklist", label="Severity", picklist=["Sev1", "Sev2"])
    described = {f["name"]: f for f in sobject(changing_sf, "Case").describe()["fields"]}
    assert described["Severity__c"]["custom"] is True
    assert [v["value"] for v in described["Severity__c"]["picklistValues"]] == ["Sev1", "Sev2"]
    rows = changing_sf.query_all("SELECT Severity__c FROM Case")["records"]
    assert all(r["Severity__c"] is None for r in rows)
    admin.remove_field("Case", "Severity__c")
    with pytest.raises(SalesforceMalformedRequest):
        changing_sf.query("SELECT Severity__c FROM Case")


def test_added_formula_field(changing: Emulator, changing_sf: Salesforce) -> None:
    admin = changing.production.admin
    admin.add_field(
        "Invoice__c", "Double_Amount__c", "currency", precision=18, scale=2, formula="Amount__c * 2"
    )
    rows = changing_sf.query_all(
        "SELECT Amount__c, Double_Amount__c FROM Invoice__c WHERE Amount__c != null"
    )["records"]
    assert all(r["Double_Amount__c"] == round(r["Amount__c"] * 2, 2) for r in rows)


def test_simulator_is_deterministic_under_seed() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 2, 2, tzinfo=UTC)
    settings = EmulatorSettings(
        seed=31,
        sizes={"Account": 10, "Contact": 10, "Case": 10, "Opportunity": 10, "Invoice__c": 10},
        start_time=start,
    )
    first, second = Emulator(settings), Emulator(settings)
    try:
        assert first.production.simulator is not None
        assert second.production.simulator is not None
        events_a = first.production.simulator.run(60)
        events_b = second.production.simulator.run(60)
        assert events_a == events_b
        kinds = {e.kind for e in events_a}
        assert {"create", "update", "delete", "system_update"} <= kinds
        assert [r["Id"] for r in first.production.admin.records("Case", True)] == [
            r["Id"] for r in second.production.admin.records("Case", True)
        ]
    finally:
        first.stop()
        second.stop()


def test_simulator_deletes_show_in_query_all(changing: Emulator, changing_sf: Salesforce) -> None:
    simulator = changing.production.simulator
    assert simulator is not None
    event = simulator.step("delete", "Opportunity")
    soql = f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{event.record_id}'"
    assert changing_sf.query(soql)["totalSize"] == 0
    assert changing_sf.query_all(soql, include_deleted=True)["records"][0]["IsDeleted"] is True
    undo = simulator.step("undelete", "Opportunity")
    assert undo.kind == "undelete"


def test_simulator_system_update_keeps_last_modified(changing: Emulator) -> None:
    simulator = changing.production.simulator
    assert simulator is not None
    admin = changing.production.admin
    changing.production.admin.advance_clock(10)
    event = simulator.step("system_update", "Account")
    assert event.record_id is not None
    record = admin.get("Account", event.record_id)
    assert record["SystemModstamp"] > record["LastModifiedDate"]


def test_background_activity_runs_and_stops() -> None:
    settings = EmulatorSettings(seed=2, sizes={"Account": 5}, activity_rate=50)
    with Emulator(settings) as emulator:
        import time

        time.sleep(0.3)
        assert emulator.production.simulator is not None
        assert emulator.production.simulator.events_run > 0
    assert emulator.production.simulator._thread is None


def test_http_admin_endpoints(changing: Emulator, changing_sf: Salesforce) -> None:
    org = changing.production
    session = trusting_session(changing)
    base = f"{org.instance_url}/__emulator"
    created = session.post(f"{base}/records/Account", json={"Name": "Via HTTP"})
    assert created.status_code == 201
    record_id = created.json()["id"]

    patched = session.patch(f"{base}/records/Account/{record_id}?by=system", json={"Phone": "777"})
    assert patched.status_code == 200
    record = org.admin.get("Account", record_id)
    assert record["Phone"] == "777"
    assert session.post(f"{base}/records/Account/{record_id}/delete").status_code == 200
    assert org.admin.get("Account", record_id)["IsDeleted"] is True

    assert session.post(f"{base}/fields/Account/Phone/hide").status_code == 200
    assert "Phone" not in {f["name"] for f in sobject(changing_sf, "Account").describe()["fields"]}

    assert session.post(f"{base}/faults/fail_next", json={"n": 1, "status": 503}).ok
    assert (
        session.get(
            f"{org.instance_url}/services/data/v59.0/limits",
            headers={"Authorization": f"Bearer {changing_sf.session_id}"},
        ).status_code
        == 503
    )

    assert session.post(f"{base}/clock/advance", json={"seconds": 60}).ok
    assert session.put(f"{base}/api_usage", json={"used": 10}).ok
    assert session.get(f"{base}/org").json()["api_usage"] == {"used": 10, "max": 15000}
    events = session.post(f"{base}/simulator/run", json={"events": 3}).json()
    assert len(events) == 3

    bad = session.post(f"{base}/records/Nope", json={})
    assert bad.status_code == 400
    assert "Nope" in bad.json()["message"]


def test_simulator_rejects_unknown_kind(changing: Emulator) -> None:
    simulator = changing.production.simulator
    assert simulator is not None
    with pytest.raises(ValueError, match="unknown activity kind"):
        simulator.step("explode")
    with pytest.raises(ValueError, match="not 'User'"):
        simulator.step("update", "User")


def test_simulator_clock_step_moves_clock(changing: Emulator) -> None:
    simulator = changing.production.simulator
    assert simulator is not None
    before = changing.production.admin.now()
    simulator.step("clock")
    assert changing.production.admin.now() > before


def test_field_hidden_from_one_user_only(changing: Emulator, changing_sf: Salesforce) -> None:
    org = changing.production
    org.admin.hide_field("Contact", "Email", user=org.integration_username)
    admin_view = {f["name"] for f in sobject(changing_sf, "Contact").describe()["fields"]}
    assert "Email" in admin_view
    session = trusting_session(changing)
    token = session.post(
        f"{org.my_domain_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(changing.client_id, changing.client_secret),
    ).json()
    integration = Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )
    assert "Email" not in {f["name"] for f in sobject(integration, "Contact").describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest):
        integration.query("SELECT Email FROM Contact")
    with pytest.raises(SalesforceMalformedRequest):
        integration.query("SELECT Id, (SELECT Email FROM Contacts) FROM Account")
    assert changing_sf.query("SELECT Email FROM Contact LIMIT 1")["totalSize"] == 1
    org.admin.show_field("Contact", "Email", user=org.integration_username)
    assert integration.query("SELECT Email FROM Contact LIMIT 1")["totalSize"] == 1


def test_concurrent_queries_while_org_changes() -> None:
    from concurrent.futures import ThreadPoolExecutor

    settings = EmulatorSettings(
        seed=12,
        sizes={"Account": 50, "Contact": 300, "Case": 50, "Opportunity": 50, "Invoice__c": 50},
        activity_rate=200,
    )
    with Emulator(settings) as emulator:
        token = connect(emulator)

        def read(_: int) -> int:
            sf = salesforce(emulator, token)
            total = 0
            for _round in range(5):
                total += len(
                    sf.query_all(
                        "SELECT Id, Account.Name, (SELECT Id FROM Cases) FROM Contact",
                        include_deleted=True,
                    )["records"]
                )
                sobject(sf, "Account").describe()
            return total

        with ThreadPoolExecutor(max_workers=4) as pool:
            totals = list(pool.map(read, range(4)))
        assert all(total > 0 for total in totals)
        assert emulator.production.simulator is not None
        assert emulator.production.simulator.events_run > 0
