"""REST discovery, describe and query through unmodified simple-salesforce."""

from __future__ import annotations

import re
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, error_body, salesforce, sobject, trusting_session

LIMIT_INFO = re.compile(r"^api-usage=(\d+)/15000$")


def test_versions_list_needs_no_session(emulator: Emulator) -> None:
    response = trusting_session(emulator).get(f"{emulator.production.instance_url}/services/data/")
    assert response.status_code == 200
    assert "Sforce-Limit-Info" not in response.headers
    versions = {v["version"]: v for v in response.json()}
    assert versions["59.0"] == {
        "label": "Winter '24",
        "url": "/services/data/v59.0",
        "version": "59.0",
    }
    assert versions["66.0"]["label"] == "Spring '26"


def test_resource_map_lists_query_and_sobjects(sf: Salesforce) -> None:
    resources: Any = sf.restful("")
    assert resources["query"] == "/services/data/v59.0/query"
    assert resources["sobjects"] == "/services/data/v59.0/sobjects"
    assert resources["identity"].startswith("https://127.0.0.1:")


def test_describe_global_lists_seeded_objects(sf: Salesforce) -> None:
    described: Any = sf.describe()
    names = {o["name"] for o in described["sobjects"]}
    assert {
        "Account",
        "Contact",
        "Opportunity",
        "Case",
        "Invoice__c",
        "User",
        "Organization",
    } <= names
    assert described["encoding"] == "UTF-8"
    invoice = next(o for o in described["sobjects"] if o["name"] == "Invoice__c")
    assert invoice["custom"] is True
    assert invoice["keyPrefix"] == "a01"


def test_describe_has_real_field_keys(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sobject(sf, "Invoice__c").describe()["fields"]}
    total = fields["Total__c"]
    assert total["calculated"] is True
    assert total["calculatedFormula"].startswith("Amount__c *")
    assert total["type"] == "currency"
    assert total["soapType"] == "xsd:double"
    assert total["createable"] is False
    account = fields["Account__c"]
    assert account["referenceTo"] == ["Account"]
    assert account["relationshipName"] == "Account__r"
    assert fields["Notes__c"]["length"] == 131072
    assert fields["Notes__c"]["filterable"] is False
    assert fields["Tags__c"]["type"] == "multipicklist"
    billing = {f["name"]: f for f in sobject(sf, "Account").describe()["fields"]}
    assert billing["BillingAddress"]["type"] == "address"
    assert billing["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert billing["Name"]["byteLength"] == 765
    for entry in fields.values():
        assert {"nillable", "precision", "scale", "picklistValues", "custom"} <= set(entry)


def test_unknown_object_describe_is_404(sf: Salesforce) -> None:
    from simple_salesforce.exceptions import SalesforceResourceNotFound

    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Nope__c/describe")


def test_query_pages_across_five_pages() -> None:
    settings = EmulatorSettings(seed=11, sizes={"Account": 1100})
    with Emulator(settings) as emulator:
        token = connect(emulator)
        session = trusting_session(emulator)
        session.headers["Sforce-Query-Options"] = "batchSize=200"
        sf = Salesforce(
            instance_url=token["instance_url"], session_id=token["access_token"], session=session
        )
        first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
        assert first["totalSize"] == 1100
        assert first["done"] is False
        assert len(first["records"]) == 200
        assert re.fullmatch(
            r"/services/data/v59\.0/query/0r8[A-Za-z0-9]{15}-200", first["nextRecordsUrl"]
        )
        pages = 1
        records = list(first["records"])
        result = first
        while not result["done"]:
            result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
            records += result["records"]
            pages += 1
        assert pages == 6
        assert "nextRecordsUrl" not in result
        assert len({r["Id"] for r in records}) == 1100
        names = [r["Name"].lower() for r in records]
        assert names == sorted(names)
        everything = sf.query_all("SELECT Id FROM Account")
        assert len(everything["records"]) == 1100


def test_default_batch_is_2000(emulator: Emulator) -> None:
    with Emulator(EmulatorSettings(seed=11, sizes={"Contact": 2500})) as big:
        sf = salesforce(big, connect(big))
        page = sf.query("SELECT Id FROM Contact")
        assert len(page["records"]) == 2000
        assert page["nextRecordsUrl"].endswith("-2000")


def test_batch_size_is_clamped_to_200(emulator: Emulator, token: dict) -> None:
    session = trusting_session(emulator)
    session.headers["Sforce-Query-Options"] = "batchSize=50"
    sf = Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )
    assert len(sf.query("SELECT Id FROM Contact")["records"]) == 200


def test_every_counted_response_has_limit_info(emulator: Emulator, token: dict) -> None:
    session = trusting_session(emulator)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    base = f"{token['instance_url']}/services/data/v59.0"
    before = session.get(f"{base}/limits", headers=headers)
    after = session.get(f"{base}/sobjects", headers=headers)
    before_match = LIMIT_INFO.match(before.headers["Sforce-Limit-Info"])
    after_match = LIMIT_INFO.match(after.headers["Sforce-Limit-Info"])
    assert before_match is not None
    assert after_match is not None
    used_before = int(before_match.group(1))
    used_after = int(after_match.group(1))
    assert used_after == used_before + 1
    limits = session.get(f"{base}/limits", headers=headers).json()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert limits["DailyApiRequests"]["Remaining"] == 15000 - (used_after + 1)


def test_simple_salesforce_parses_api_usage(sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account LIMIT 1")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 15000
    assert usage.used > 0


def test_count_returns_no_records(sf: Salesforce, emulator: Emulator) -> None:
    result = sf.query("SELECT COUNT() FROM Opportunity")
    assert result == {"totalSize": 200, "done": True, "records": []}


def test_where_with_and_or_and_datetime_literal(sf: Salesforce, emulator: Emulator) -> None:
    rows = emulator.production.admin.records("Opportunity")
    cutoff = sorted(r["CreatedDate"] for r in rows)[100]
    literal = cutoff.replace(".000+0000", "Z")
    expected = {
        r["Id"]
        for r in rows
        if r["CreatedDate"] >= cutoff
        and (r["StageName"] == "Closed Won" or (r["Amount"] or 0) > 100000)
    }
    result = sf.query_all(
        f"SELECT Id FROM Opportunity WHERE CreatedDate >= {literal} AND "
        f"(StageName = 'closed won' OR Amount > 100000)"
    )
    assert {r["Id"] for r in result["records"]} == expected


def test_order_by_and_limit(sf: Salesforce, emulator: Emulator) -> None:
    rows = emulator.production.admin.records("Opportunity")
    expected = [
        r["Id"]
        for r in sorted((r for r in rows if r["Amount"] is not None), key=lambda r: -r["Amount"])
    ][:5]
    result = sf.query(
        "SELECT Id, Amount FROM Opportunity WHERE Amount != null ORDER BY Amount DESC LIMIT 5"
    )
    assert [r["Id"] for r in result["records"]] == expected
    assert result["totalSize"] == 5


def test_records_carry_attributes_and_nulls(sf: Salesforce) -> None:
    record = sf.query("SELECT Id, Name, Rating, CreatedDate FROM Account LIMIT 1")["records"][0]
    assert record["attributes"]["type"] == "Account"
    assert record["attributes"]["url"] == f"/services/data/v59.0/sobjects/Account/{record['Id']}"
    assert set(record) == {"attributes", "Id", "Name", "Rating", "CreatedDate"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", record["CreatedDate"])


def test_unknown_field_gives_invalid_field_with_caret(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Naem FROM Account")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].startswith(
        "\nSELECT Naem FROM Account\n       ^\nERROR at Row:1:Column:8\n"
        "No such column 'Naem' on entity 'Account'."
    )


def test_unknown_object_gives_invalid_type(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("select count() from XYZZY")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "INVALID_TYPE"
    assert error["message"].startswith(
        "\nselect count() from XYZZY\n                    ^\nERROR at Row:1:Column:21\n"
        "sObject type 'XYZZY' is not supported."
    )


def test_syntax_error_gives_malformed_query(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id From From Account")
    error = error_body(raised.value)[0]
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert error["message"].endswith("unexpected token: 'From'")


def test_query_all_returns_deleted_rows(emulator: Emulator, sf: Salesforce) -> None:
    admin = emulator.production.admin
    record_id = admin.create("Case", {"Subject": "to delete", "Status": "New"})
    admin.delete("Case", record_id)
    soql = f"SELECT Id, IsDeleted FROM Case WHERE Id = '{record_id}'"
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(record_id, True)]
    admin.hard_delete("Case", record_id)
    assert sf.query_all(soql, include_deleted=True)["totalSize"] == 0


def test_org_is_sandbox_is_queryable(emulator: Emulator) -> None:
    production = salesforce(emulator, connect(emulator))
    sandbox = salesforce(emulator, connect(emulator, sandbox=True))
    assert (
        production.query("SELECT IsSandbox FROM Organization")["records"][0]["IsSandbox"] is False
    )
    assert sandbox.query("SELECT IsSandbox FROM Organization")["records"][0]["IsSandbox"] is True
    assert emulator.sandbox.org_id != emulator.production.org_id
