"""Replication, composite, record counts, limits and faults through the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, error_body, sobject, trusting_session


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    settings = EmulatorSettings(
        seed=4, sizes={"Account": 30, "Contact": 600, "Case": 10}, daily_api_limit=50
    )
    with Emulator(settings) as emulator:
        yield emulator


@pytest.fixture
def fresh_sf(fresh: Emulator) -> Salesforce:
    token = connect(fresh)
    session = trusting_session(fresh)
    session.headers["Sforce-Query-Options"] = "batchSize=200"
    return Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )


def test_deleted_and_updated_windows(fresh: Emulator, fresh_sf: Salesforce) -> None:
    admin = fresh.production.admin
    start = admin.now()
    changed = admin.create("Case", {"Subject": "new"})
    gone = admin.records("Case")[0]["Id"]
    admin.delete("Case", gone)
    admin.advance_clock(120)
    end = admin.now()
    deleted = sobject(fresh_sf, "Case").deleted(start - timedelta(minutes=1), end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    assert deleted["deletedRecords"][0]["deletedDate"].endswith(".000+0000")
    assert deleted["latestDateCovered"].endswith(":00.000+0000")
    assert "earliestDateAvailable" in deleted
    updated = sobject(fresh_sf, "Case").updated(start - timedelta(minutes=1), end)
    assert changed in updated["ids"]
    assert gone not in updated["ids"]


def test_replication_window_rules(fresh: Emulator, fresh_sf: Salesforce) -> None:
    now = fresh.production.admin.now()
    minute = now.replace(second=0) - timedelta(minutes=5)
    # Seconds are dropped, so both ends fall on the same minute.
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sobject(fresh_sf, "Case").updated(minute, minute + timedelta(seconds=30))
    assert error_body(raised.value)[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest):
        sobject(fresh_sf, "Case").deleted(now - timedelta(days=16), now)
    assert "ids" in sobject(fresh_sf, "Case").updated(now - timedelta(days=29), now)


def test_record_count(fresh_sf: Salesforce) -> None:
    counts = fresh_sf.restful("limits/recordCount", params={"sObjects": "Account,Case"})
    assert counts == {"sObjects": [{"count": 30, "name": "Account"}, {"count": 10, "name": "Case"}]}


def test_composite_counts_as_one_call(fresh: Emulator, fresh_sf: Salesforce) -> None:
    used_before, _ = fresh.production.admin.api_usage()
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "GET",
                "url": "/services/data/v59.0/query/?q=SELECT+count()+FROM+Case",
                "referenceId": "refCount",
            },
            {"method": "GET", "url": "/services/data/v59.0/sobjects/Nope", "referenceId": "refBad"},
        ],
    }
    result: Any = fresh_sf.restful("composite", method="POST", json=body)
    responses = result["compositeResponse"]
    assert responses[0]["body"] == {"totalSize": 10, "done": True, "records": []}
    assert responses[0]["httpStatusCode"] == 200
    assert responses[1]["httpStatusCode"] == 404
    assert responses[1]["body"][0]["errorCode"] == "NOT_FOUND"
    assert fresh.production.admin.api_usage()[0] == used_before + 1


def test_composite_batch_counts_each_subrequest(fresh: Emulator, fresh_sf: Salesforce) -> None:
    used_before, _ = fresh.production.admin.api_usage()
    body = {
        "haltOnError": False,
        "batchRequests": [
            {"method": "GET", "url": "v59.0/limits"},
            {"method": "GET", "url": "v59.0/query?q=SELECT+Id+FROM+Case+LIMIT+1"},
            {"method": "GET", "url": "v59.0/sobjects/Nope/describe"},
        ],
    }
    result: Any = fresh_sf.restful("composite/batch", method="POST", json=body)
    assert result["hasErrors"] is True
    assert [r["statusCode"] for r in result["results"]] == [200, 200, 404]
    assert fresh.production.admin.api_usage()[0] == used_before + 3


def test_limit_exhaustion_gives_403(fresh: Emulator, fresh_sf: Salesforce) -> None:
    fresh.production.admin.set_api_usage(49)
    fresh_sf.query("SELECT Id FROM Case LIMIT 1")
    assert fresh_sf.api_usage["api-usage"].used == 50
    with pytest.raises(SalesforceRefusedRequest) as raised:
        fresh_sf.query("SELECT Id FROM Case LIMIT 1")
    assert error_body(raised.value) == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    session = trusting_session(fresh)
    response = session.get(
        f"{fresh.production.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {fresh_sf.session_id}"},
    )
    assert response.status_code == 403
    assert response.headers["Sforce-Limit-Info"] == "api-usage=50/50"
    # The window rolls: a day later the calls have aged out.
    fresh.production.admin.advance_clock(24 * 3600 + 60)
    assert fresh_sf.limits()["DailyApiRequests"] == {"Max": 50, "Remaining": 49}


def test_locator_expires_after_two_days(fresh: Emulator, fresh_sf: Salesforce) -> None:
    first = fresh_sf.query("SELECT Id FROM Contact")
    assert first["done"] is False
    fresh.production.admin.advance_clock(2 * 24 * 3600 + 1)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        fresh_sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert error_body(raised.value) == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]


def test_query_all_locator_keeps_deleted_rows(fresh: Emulator, fresh_sf: Salesforce) -> None:
    admin = fresh.production.admin
    contacts = admin.records("Contact")
    for record in contacts[-5:]:
        admin.delete("Contact", record["Id"])
    result = fresh_sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)
    assert result["totalSize"] == 600
    assert sum(r["IsDeleted"] for r in result["records"]) == 5
    assert fresh_sf.query_all("SELECT Id FROM Contact")["totalSize"] == 595


def test_fault_401_for_next_calls(fresh: Emulator, fresh_sf: Salesforce) -> None:
    fresh.production.admin.faults.fail_next(2, status=401)
    for _ in range(2):
        with pytest.raises(SalesforceExpiredSession):
            fresh_sf.query("SELECT Id FROM Case")
    assert fresh_sf.query("SELECT Id FROM Case")["totalSize"] == 10


def test_fault_503_with_and_without_body(fresh: Emulator, fresh_sf: Salesforce) -> None:
    faults = fresh.production.admin.faults
    faults.unavailable(1, json_body=True)
    faults.unavailable(1, json_body=False)
    with pytest.raises(SalesforceGeneralError) as raised:
        fresh_sf.query("SELECT Id FROM Case")
    assert raised.value.status == 503
    assert error_body(raised.value)[0]["errorCode"] == "SERVER_UNAVAILABLE"
    response = trusting_session(fresh).get(
        f"{fresh.production.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {fresh_sf.session_id}"},
    )
    assert response.status_code == 503
    assert response.content == b""


def test_fault_query_timeout(fresh: Emulator, fresh_sf: Salesforce) -> None:
    fresh.production.admin.faults.query_timeout()
    with pytest.raises(SalesforceMalformedRequest) as raised:
        fresh_sf.query("SELECT Id FROM Case")
    assert error_body(raised.value)[0] == {
        "message": "Your query request was running for too long.",
        "errorCode": "QUERY_TIMEOUT",
    }


def test_fault_slow_response(fresh: Emulator, fresh_sf: Salesforce) -> None:
    import time

    fresh.production.admin.faults.slow(0.5)
    started = time.monotonic()
    fresh_sf.query("SELECT Id FROM Case")
    assert time.monotonic() - started >= 0.5


def test_fault_dropped_connection(fresh: Emulator, fresh_sf: Salesforce) -> None:
    fresh.production.admin.faults.drop_connection()
    with pytest.raises(requests.exceptions.RequestException):
        fresh_sf.query("SELECT Id, Name FROM Contact")
    assert fresh_sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 600


def test_fault_expire_locators(fresh: Emulator, fresh_sf: Salesforce) -> None:
    first = fresh_sf.query("SELECT Id FROM Contact")
    fresh.production.admin.expire_locators()
    with pytest.raises(SalesforceMalformedRequest):
        fresh_sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)


def test_fault_revoked_refresh_token(fresh: Emulator) -> None:
    token = connect(fresh)
    fresh.production.admin.revoke_refresh_tokens()
    response = trusting_session(fresh).post(
        f"{fresh.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": fresh.client_id,
            "client_secret": fresh.client_secret,
        },
    )
    assert response.json()["error_description"] == "expired access/refresh token"


def test_retrieve_create_update_delete_via_rest(fresh: Emulator, fresh_sf: Salesforce) -> None:
    created = sobject(fresh_sf, "Account").create({"Name": "REST made"})
    assert created["success"] is True
    record_id = created["id"]
    assert sobject(fresh_sf, "Account").update(record_id, {"Phone": "42"}) == 204
    assert sobject(fresh_sf, "Account").get(record_id)["Phone"] == "42"
    assert sobject(fresh_sf, "Account").delete(record_id) == 204
    assert fresh.production.admin.get("Account", record_id)["IsDeleted"] is True


def test_unknown_version_is_404(fresh: Emulator, fresh_sf: Salesforce) -> None:
    response = trusting_session(fresh).get(
        f"{fresh.production.instance_url}/services/data/v12.0/limits",
        headers={"Authorization": f"Bearer {fresh_sf.session_id}"},
    )
    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


def test_long_text_pages_end_early(fresh: Emulator) -> None:
    admin = fresh.production.admin
    for index in range(3):
        admin.create("Invoice__c", {"Notes__c": "x" * 60_000, "Amount__c": index})
    sf = Salesforce(
        instance_url=fresh.production.instance_url,
        session_id=connect(fresh)["access_token"],
        session=trusting_session(fresh),
    )
    first = sf.query("SELECT Id, Notes__c FROM Invoice__c")
    assert first["totalSize"] == 3
    assert len(first["records"]) < 3
    assert first["done"] is False
    everything = sf.query_all("SELECT Id, Notes__c FROM Invoice__c")
    assert len(everything["records"]) == 3


def test_last_page_can_be_fetched_again(fresh: Emulator, fresh_sf: Salesforce) -> None:
    first = fresh_sf.query("SELECT Id FROM Contact")
    locator = first["nextRecordsUrl"].rsplit("-", 1)[0]
    last = fresh_sf.query_more(f"{locator}-400", identifier_is_url=True)
    assert last["done"] is True
    again = fresh_sf.query_more(f"{locator}-400", identifier_is_url=True)
    assert again["records"] == last["records"]


def test_post_to_query_is_405(fresh: Emulator, fresh_sf: Salesforce) -> None:
    response = trusting_session(fresh).post(
        f"{fresh.production.instance_url}/services/data/v59.0/query",
        headers={"Authorization": f"Bearer {fresh_sf.session_id}"},
    )
    assert response.status_code == 405
    assert response.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def test_oversized_headers_give_431(fresh: Emulator, fresh_sf: Salesforce) -> None:
    response = trusting_session(fresh).get(
        f"{fresh.production.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {fresh_sf.session_id}", "X-Padding": "p" * 17_000},
    )
    assert response.status_code == 431


def test_rest_create_checks_required_and_writable(fresh_sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sobject(fresh_sf, "Account").create({"Phone": "1"})
    assert error_body(raised.value) == [
        {
            "message": "Required fields are missing: [Name]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Name"],
        }
    ]
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sobject(fresh_sf, "Opportunity").create(
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "IsWon": True}
        )
    assert error_body(raised.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error_body(raised.value)[0]["fields"] == ["IsWon"]


def test_statement_over_100000_characters_is_malformed(fresh_sf: Salesforce) -> None:
    padding = " ".join(["Id"] * 40_000)
    soql = f"SELECT {padding.replace(' ', ', ')} FROM Account"
    assert len(soql) > 100_000
    body = {
        "compositeRequest": [
            {"method": "GET", "referenceId": "long", "url": "/services/data/v59.0/query?q=" + soql}
        ]
    }
    result: Any = fresh_sf.restful("composite", method="POST", json=body)
    response = result["compositeResponse"][0]
    assert response["httpStatusCode"] == 400
    assert response["body"][0]["errorCode"] == "MALFORMED_QUERY"


def test_replication_id_cap(
    fresh: Emulator, fresh_sf: Salesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cora_pipeline.emulator import rest

    monkeypatch.setattr(rest, "MAX_REPLICATION_IDS", 5)
    now = fresh.production.admin.now()
    for index in range(6):
        fresh.production.admin.create("Case", {"Subject": f"cap {index}"})
    fresh.production.admin.advance_clock(120)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sobject(fresh_sf, "Case").updated(now - timedelta(minutes=1), now + timedelta(minutes=2))
    assert error_body(raised.value)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
