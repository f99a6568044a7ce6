"""The opening ``/composite`` call: describe, first page and deletes of a quiet run in one call."""

import pyarrow.compute as pc

from tests.extract.conftest import Harness, deleted_ids, manifest_of, records_of


def test_quiet_incremental_costs_one_call(harness: Harness) -> None:
    harness.extract("Account")
    client = harness.client()
    client.read_api_usage()
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[0]["Id"]
    harness.admin.update("Account", account, {"Name": "Opened"})
    harness.admin.advance_clock(120)

    second = harness.extract("Account", client=client)

    assert second.mode == "incremental"
    assert second.api_calls == 1
    assert manifest_of(second).extra["composite_first_page"] is True
    table = records_of(second)
    row = table.filter(pc.equal(table["Id"], account)).to_pylist()
    assert row[0]["Name"] == "Opened"
    assert manifest_of(second).deleted_covered_to is not None


def test_composite_carries_hard_deletes(harness: Harness) -> None:
    harness.extract("Account")
    victim = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[-1]["Id"]
    harness.admin.hard_delete("Account", victim)
    harness.admin.advance_clock(120)
    client = harness.client()
    client.read_api_usage()

    second = harness.extract("Account", client=client)

    assert deleted_ids(second) == {victim}
    assert second.api_calls == 1


def test_new_field_discards_composite_page(harness: Harness) -> None:
    harness.extract("Account")
    harness.admin.add_field("Account", "Region__c", "string", length=40)
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[1]["Id"]
    harness.admin.update("Account", account, {"Region__c": "EMEA"})
    client = harness.client()
    client.read_api_usage()

    second = harness.extract("Account", client=client)

    assert manifest_of(second).extra["composite_first_page"] is False
    table = records_of(second)
    assert "Region__c" in table.column_names
    row = table.filter(pc.equal(table["Id"], account)).to_pylist()
    assert row[0]["Region__c"] == "EMEA"
    # The composite call stood in for describe and the query ran again on its own.
    assert second.api_calls == 2


def test_401_on_composite_refreshes_token(harness: Harness) -> None:
    harness.extract("Account")
    client = harness.client()
    client.read_api_usage()
    token_before = client.tokens.current().access_token
    harness.admin.faults.fail_next(1, status=401, path_contains="/composite")

    second = harness.extract("Account", client=client)

    assert second.status == "succeeded"
    assert manifest_of(second).extra["composite_first_page"] is True
    assert client.tokens.current().access_token != token_before
    # The rejected composite call and its repeat.
    assert second.api_calls == 2


def test_custom_batch_size_queries_outside_composite(harness: Harness) -> None:
    config = harness.org_config(batch_size=500)
    harness.extract("Account", org_config=config)

    second = harness.extract("Account", org_config=config)

    assert manifest_of(second).extra["composite_first_page"] is False
    assert second.mode == "incremental"


def test_limit_exceeded_on_composite_stops(harness: Harness) -> None:
    first = harness.extract("Account")
    harness.admin.faults.fail_next(1, status=403, path_contains="/composite")

    stopped = harness.extract("Account")

    assert stopped.status == "stopped_budget"
    assert stopped.watermark_to == first.watermark_to
    assert harness.sleeps == []
    assert [f.name for f in manifest_of(stopped).fields] == [
        f.name for f in manifest_of(first).fields
    ]
