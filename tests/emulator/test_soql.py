"""The SOQL subset: operators, literals, ordering, relationships and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, error_body, salesforce, trusting_session

START = datetime(2026, 6, 17, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def org_emulator() -> Iterator[Emulator]:
    settings = EmulatorSettings(
        seed=21,
        sizes={"Account": 60, "Contact": 120, "Opportunity": 60, "Case": 40, "Invoice__c": 40},
        start_time=START,
    )
    with Emulator(settings) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(org_emulator: Emulator) -> Salesforce:
    return salesforce(org_emulator, connect(org_emulator))


def ids(api: Salesforce, soql: str) -> set[str]:
    return {r["Id"] for r in api.query_all(soql)["records"]}


def rows(emulator: Emulator, sobject: str) -> list[dict]:
    return emulator.production.admin.records(sobject)


def test_in_and_not_in(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Case")
    wanted = {"New", "Escalated"}
    assert ids(api, "SELECT Id FROM Case WHERE Status IN ('New', 'Escalated')") == {
        r["Id"] for r in data if r["Status"] in wanted
    }
    assert ids(api, "SELECT Id FROM Case WHERE Status NOT IN ('New', 'Escalated')") == {
        r["Id"] for r in data if r["Status"] not in wanted
    }


def test_like_is_case_insensitive(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Account")
    expected = {r["Id"] for r in data if "acme" in r["Name"].lower()}
    assert expected
    assert ids(api, "SELECT Id FROM Account WHERE Name LIKE '%ACME%'") == expected


def test_not_and_parentheses(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Opportunity")
    expected = {
        r["Id"]
        for r in data
        if not (r["IsClosed"] or (r["Amount"] is not None and r["Amount"] < 1000))
    }
    assert (
        ids(api, "SELECT Id FROM Opportunity WHERE NOT (IsClosed = true OR Amount < 1000)")
        == expected
    )


def test_mixing_and_or_without_parentheses_is_malformed(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query(
            "SELECT Id FROM Case WHERE Status = 'New' AND Priority = 'High' OR Origin = 'Web'"
        )
    assert error_body(raised.value)[0]["errorCode"] == "MALFORMED_QUERY"


def test_null_checks(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Account")
    assert ids(api, "SELECT Id FROM Account WHERE Industry = null") == {
        r["Id"] for r in data if r["Industry"] is None
    }
    assert ids(api, "SELECT Id FROM Account WHERE Industry != null") == {
        r["Id"] for r in data if r["Industry"] is not None
    }


def test_date_literals_today_and_last_n_days(api: Salesforce, org_emulator: Emulator) -> None:
    admin = org_emulator.production.admin
    today = admin.now().date()
    fresh = admin.create("Invoice__c", {"Invoice_Date__c": today.isoformat()})
    old = admin.create("Invoice__c", {"Invoice_Date__c": (today - timedelta(days=20)).isoformat()})
    todays = ids(api, "SELECT Id FROM Invoice__c WHERE Invoice_Date__c = TODAY")
    assert fresh in todays
    assert old not in todays
    recent = ids(api, "SELECT Id FROM Invoice__c WHERE Invoice_Date__c = LAST_N_DAYS:7")
    assert fresh in recent
    assert old not in recent
    created_today = ids(api, "SELECT Id FROM Invoice__c WHERE CreatedDate = TODAY")
    assert {fresh, old} <= created_today


def test_date_literal_compared_to_date_field(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Opportunity")
    assert ids(api, "SELECT Id FROM Opportunity WHERE CloseDate >= 2026-06-01") == {
        r["Id"] for r in data if r["CloseDate"] >= "2026-06-01"
    }


def test_datetime_with_offset_literal(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Contact")
    expected = {r["Id"] for r in data if r["SystemModstamp"] > "2026-03-01T10:00:00.000+0000"}
    assert (
        ids(api, "SELECT Id FROM Contact WHERE SystemModstamp > 2026-03-01T12:00:00+02:00")
        == expected
    )


def test_string_for_datetime_field_is_rejected(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id FROM Contact WHERE CreatedDate > '2026-01-01'")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "must be of type dateTime and should not be enclosed in quotes" in error["message"]


def test_order_by_several_keys_with_nulls_last(api: Salesforce, org_emulator: Emulator) -> None:
    result = api.query_all(
        "SELECT Id, Industry, Name FROM Account ORDER BY Industry ASC NULLS LAST, Name DESC"
    )["records"]
    industries = [r["Industry"] for r in result]
    non_null = [i for i in industries if i is not None]
    assert industries[: len(non_null)] == sorted(non_null, key=str.lower)
    assert all(i is None for i in industries[len(non_null) :])
    for industry in set(non_null):
        names = [r["Name"].lower() for r in result if r["Industry"] == industry]
        assert names == sorted(names, reverse=True)


def test_nulls_first_is_default_ascending(api: Salesforce) -> None:
    result = api.query_all("SELECT Industry FROM Account ORDER BY Industry")["records"]
    assert result[0]["Industry"] is None


def test_limit_and_offset(api: Salesforce) -> None:
    everything = [r["Id"] for r in api.query_all("SELECT Id FROM Contact ORDER BY Id")["records"]]
    window = api.query("SELECT Id FROM Contact ORDER BY Id LIMIT 10 OFFSET 5")
    assert [r["Id"] for r in window["records"]] == everything[5:15]
    assert window["totalSize"] == 10


def test_offset_over_2000_is_rejected(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id FROM Contact OFFSET 2001")
    assert error_body(raised.value)[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_relationship_fields_nest_parents(api: Salesforce, org_emulator: Emulator) -> None:
    org = org_emulator.production
    result = api.query_all(
        "SELECT Id, Account.Name, Account.Owner.Username, Owner.Name FROM Contact"
    )["records"]
    accounts = {r["Id"]: r for r in rows(org_emulator, "Account")}
    with_account = [r for r in result if r["Account"] is not None]
    without = [r for r in result if r["Account"] is None]
    assert with_account
    assert without
    sample = with_account[0]
    contact = org.admin.get("Contact", sample["Id"])
    assert sample["Account"]["attributes"]["type"] == "Account"
    assert sample["Account"]["Name"] == accounts[contact["AccountId"]]["Name"]
    assert sample["Account"]["Owner"]["Username"].endswith("@cora-demo.example.com")
    assert sample["Owner"]["attributes"]["type"] == "User"


def test_filter_on_parent_field(api: Salesforce, org_emulator: Emulator) -> None:
    contacts = rows(org_emulator, "Contact")
    accounts = {r["Id"]: r for r in rows(org_emulator, "Account")}
    expected = {
        c["Id"]
        for c in contacts
        if c["AccountId"] and accounts[c["AccountId"]]["Industry"] == "Banking"
    }
    assert ids(api, "SELECT Id FROM Contact WHERE Account.Industry = 'Banking'") == expected


def test_compound_address_field(api: Salesforce) -> None:
    result = api.query_all("SELECT BillingAddress, BillingCity FROM Account")["records"]
    with_address = [r for r in result if r["BillingAddress"] is not None]
    assert with_address
    assert any(r["BillingAddress"] is None for r in result)
    address = with_address[0]["BillingAddress"]
    assert set(address) == {
        "city",
        "country",
        "geocodeAccuracy",
        "latitude",
        "longitude",
        "postalCode",
        "state",
        "street",
    }
    assert address["city"] == with_address[0]["BillingCity"]


def test_multipicklist_includes(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Invoice__c")
    expected = {r["Id"] for r in data if r["Tags__c"] and "Recurring" in r["Tags__c"].split(";")}
    assert ids(api, "SELECT Id FROM Invoice__c WHERE Tags__c INCLUDES ('Recurring')") == expected


def test_bad_relationship_is_invalid_field(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Acount.Name FROM Contact")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "Didn't understand relationship 'Acount'" in error["message"]


def test_long_text_cannot_be_filtered(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id FROM Invoice__c WHERE Notes__c = 'x'")
    assert "can not be filtered in a query call" in error_body(raised.value)[0]["message"]


def test_invalid_id_literal(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id FROM Account WHERE Id = 'abc'")
    assert error_body(raised.value)[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"


def test_fifteen_character_id_matches(api: Salesforce, org_emulator: Emulator) -> None:
    record_id = rows(org_emulator, "Account")[0]["Id"]
    assert ids(api, f"SELECT Id FROM Account WHERE Id = '{record_id[:15]}'") == {record_id}


def test_error_position_on_second_line(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id\nFROM Account WHERE Nme = 'x'")
    message = error_body(raised.value)[0]["message"]
    assert (
        "\nFROM Account WHERE Nme = 'x'\n                   ^\nERROR at Row:2:Column:20\n"
        in message
    )


def test_uri_over_16384_bytes_gives_414(org_emulator: Emulator, api: Salesforce) -> None:
    soql = (
        "SELECT Id FROM Account WHERE Name IN ("
        + ",".join(f"'name {i:05d}'" for i in range(1500))
        + ")"
    )
    response = trusting_session(org_emulator).get(
        f"{org_emulator.production.instance_url}/services/data/v59.0/query",
        params={"q": soql},
        headers={"Authorization": f"Bearer {api.session_id}"},
    )
    assert response.status_code == 414


def test_escaped_quotes_in_string_literal(api: Salesforce, org_emulator: Emulator) -> None:
    record_id = org_emulator.production.admin.create("Account", {"Name": "O'Brien \\ Sons"})
    assert ids(api, "SELECT Id FROM Account WHERE Name = 'O\\'Brien \\\\ Sons'") == {record_id}


def test_child_subquery_nests_results(api: Salesforce, org_emulator: Emulator) -> None:
    contacts = rows(org_emulator, "Contact")
    result = api.query_all(
        "SELECT Id, Name, (SELECT Id, LastName FROM Contacts ORDER BY LastName) FROM Account"
    )["records"]
    by_account: dict[str, list[str]] = {}
    for contact in contacts:
        if contact["AccountId"]:
            by_account.setdefault(contact["AccountId"], []).append(contact["Id"])
    for account in result:
        children = account["Contacts"]
        expected = by_account.get(account["Id"], [])
        if not expected:
            assert children is None
            continue
        assert children["totalSize"] == len(expected)
        assert children["done"] is True
        assert {c["Id"] for c in children["records"]} == set(expected)
        assert children["records"][0]["attributes"]["type"] == "Contact"
        last_names = [c["LastName"].lower() for c in children["records"]]
        assert last_names == sorted(last_names)


def test_child_subquery_where_and_limit(api: Salesforce) -> None:
    result = api.query_all(
        "SELECT Id, (SELECT Id FROM Contacts WHERE Email != null LIMIT 1) FROM Account"
    )["records"]
    sizes = [a["Contacts"]["totalSize"] for a in result if a["Contacts"] is not None]
    assert sizes
    assert set(sizes) == {1}


def test_unknown_child_relationship_is_invalid_type(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Id, (SELECT Id FROM Contact) FROM Account")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "INVALID_TYPE"
    assert "Didn't understand relationship 'Contact' in FROM part of query call" in error["message"]


def test_child_rows_count_toward_batch(org_emulator: Emulator, api: Salesforce) -> None:
    session = trusting_session(org_emulator)
    session.headers["Sforce-Query-Options"] = "batchSize=200"
    batched = Salesforce(
        instance_url=org_emulator.production.instance_url,
        session_id=api.session_id,
        session=session,
    )
    for index in range(150):
        org_emulator.production.admin.create(
            "Contact",
            {"LastName": f"Batch {index}", "AccountId": rows(org_emulator, "Account")[0]["Id"]},
        )
    first = batched.query("SELECT Id, (SELECT Id FROM Contacts) FROM Account")
    children = sum((a["Contacts"] or {"totalSize": 0})["totalSize"] for a in first["records"])
    assert len(first["records"]) + children <= 200 or len(first["records"]) == 1
    assert first["done"] is False


def test_group_by_with_aggregates(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Opportunity")
    result = api.query(
        "SELECT StageName, COUNT(Id), SUM(Amount) total, MAX(CloseDate) "
        "FROM Opportunity GROUP BY StageName ORDER BY StageName"
    )
    records = result["records"]
    assert result["totalSize"] == len(records)
    assert result["done"] is True
    stages = [r["StageName"] for r in records]
    assert stages == sorted(stages, key=str.lower)
    for record in records:
        members = [r for r in data if r["StageName"] == record["StageName"]]
        assert record["attributes"] == {"type": "AggregateResult"}
        assert record["expr0"] == len(members)
        amounts = [r["Amount"] for r in members if r["Amount"] is not None]
        assert (
            record["total"] == pytest.approx(sum(amounts)) if amounts else record["total"] is None
        )
        assert record["expr1"] == max(r["CloseDate"] for r in members)


def test_aggregate_without_group_by(api: Salesforce, org_emulator: Emulator) -> None:
    data = rows(org_emulator, "Invoice__c")
    record = api.query(
        "SELECT COUNT(Id) n, COUNT_DISTINCT(Status__c), AVG(Amount__c) FROM Invoice__c"
    )["records"][0]
    assert record["n"] == len(data)
    assert record["expr0"] == len({r["Status__c"] for r in data if r["Status__c"]})
    amounts = [r["Amount__c"] for r in data if r["Amount__c"] is not None]
    assert record["expr1"] == pytest.approx(sum(amounts) / len(amounts))


def test_ungrouped_field_is_malformed(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Name, COUNT(Id) FROM Account GROUP BY Industry")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert error["message"].endswith("Field must be grouped or aggregated: Name")


def test_sum_of_text_field_is_invalid(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT SUM(Name) FROM Account")
    assert error_body(raised.value)[0]["errorCode"] == "INVALID_FIELD"


def test_alias_outside_aggregate_is_malformed(api: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        api.query("SELECT Name n FROM Account")
    assert error_body(raised.value)[0]["errorCode"] == "MALFORMED_QUERY"
