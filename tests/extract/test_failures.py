"""Failures in the middle of an extract: retries, token refresh, expired locators, budgets."""

import math
from collections.abc import Iterator
from typing import Any

import pytest

from cora_pipeline.errors import SalesforceAPIError, TransientAPIError
from cora_pipeline.extract.extractor import latest_manifest
from cora_pipeline.extract.files import list_extracts, object_dir
from cora_pipeline.salesforce.client import RetryPolicy, SalesforceClient
from tests.extract.conftest import Harness, ids_of, records_of

PAGE = 200


def _grow(harness: Harness, count: int = 700) -> set[str]:
    return {harness.admin.create("Account", {"Name": f"Bulk {n}"}) for n in range(count)}


def _all_ids(harness: Harness) -> set[str]:
    return {r["Id"] for r in harness.admin.records("Account", include_deleted=True)}


def _no_staging_left(harness: Harness) -> bool:
    base = object_dir(harness.data_root, "demo", "Account")
    return not any(p.name.startswith(".") for p in base.iterdir()) if base.exists() else True


def test_401_on_page_three_resumes_there(harness: Harness) -> None:
    _grow(harness)
    config = harness.org_config(batch_size=PAGE)
    client = harness.client(config)
    token_before = client.tokens.current().access_token
    # Page three is the second query-more request: its locator offset is 400.
    harness.admin.faults.fail_next(1, status=401, path_contains="-400")

    result = harness.extract("Account", client=client, org_config=config)

    ids = ids_of(records_of(result))
    assert sorted(ids) == sorted(_all_ids(harness))
    assert len(ids) == len(set(ids))
    assert result.pages == 4
    # /limits, describe, 4 pages and the rejected page-three request: nothing was read twice.
    assert result.api_calls == 7
    assert client.tokens.current().access_token != token_before


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda faults: faults.unavailable(2), id="503"),
        pytest.param(lambda faults: faults.fail_next(1, status=500), id="500"),
        pytest.param(lambda faults: faults.fail_next(1, status=420, json_body=False), id="420"),
        pytest.param(lambda faults: faults.drop_connection(1), id="dropped-connection"),
        pytest.param(lambda faults: faults.query_timeout(1), id="query-timeout"),
    ],
)
def test_transient_failure_is_retried(harness: Harness, inject: Any) -> None:
    _grow(harness, 300)
    config = harness.org_config(batch_size=PAGE)
    client = harness.client(config)
    client.read_api_usage()
    inject(harness.admin.faults)

    result = harness.extract("Account", client=client, org_config=config)

    assert result.status == "succeeded"
    assert sorted(ids_of(records_of(result))) == sorted(_all_ids(harness))
    assert len(harness.sleeps) >= 1
    assert harness.admin.faults.pending() == 0


def test_expired_locator_restarts_from_watermark(harness: Harness) -> None:
    _grow(harness)
    config = harness.org_config(batch_size=PAGE)
    harness.extract("Account", org_config=config)
    changed = sorted(_grow(harness, 500))
    client = harness.client(config)
    _expire_locators_after(client, harness, pages=2)

    second = harness.extract("Account", client=client, org_config=config)

    ids = ids_of(records_of(second))
    assert second.mode == "incremental"
    assert set(changed) <= set(ids)
    assert len(ids) == len(set(ids))
    # The two pages read before the locator expired, then every page of the restarted query.
    assert second.pages == 2 + math.ceil(len(ids) / PAGE)


def test_request_limit_exceeded_stops_without_retry(harness: Harness) -> None:
    _grow(harness)
    config = harness.org_config(batch_size=PAGE)
    first = harness.extract("Account", org_config=config)
    _grow(harness, 500)
    harness.admin.faults.fail_next(1, status=403, path_contains="-200")

    stopped = harness.extract("Account", org_config=config)

    assert stopped.status == "stopped_budget"
    assert "REQUEST_LIMIT_EXCEEDED" in (stopped.message or "")
    assert harness.sleeps == []
    assert stopped.watermark_to == first.watermark_to
    newest = latest_manifest(harness.data_root, "demo", "Account", mode="watermark")
    assert newest is not None
    assert newest.extract_id == first.extract_dirs[0].name
    assert _no_staging_left(harness)


def test_budget_reached_mid_run_stops_cleanly(harness: Harness) -> None:
    _grow(harness)
    config = harness.org_config(batch_size=PAGE, api_budget_share=0.5)
    harness.admin.set_api_limit(200)
    # The budget is 100 calls: /limits, describe and two pages reach it.
    harness.admin.set_api_usage(96)

    stopped = harness.extract("Account", org_config=config)

    assert stopped.status == "stopped_budget"
    assert stopped.pages == 2
    assert stopped.api_used == 100
    assert stopped.api_max == 200
    assert "api_budget_share" in (stopped.message or "")
    assert latest_manifest(harness.data_root, "demo", "Account", mode="watermark") is None
    assert _no_staging_left(harness)


def test_limits_checked_before_describe(harness: Harness) -> None:
    config = harness.org_config(api_budget_share=0.5)
    harness.admin.set_api_limit(1000)
    harness.admin.set_api_usage(600)

    stopped = harness.extract("Account", org_config=config)

    assert stopped.status == "stopped_budget"
    assert stopped.api_calls == 1
    assert stopped.pages == 0
    assert stopped.api_used == 601
    assert stopped.extract_dirs == []


def test_failure_halfway_leaves_nothing_visible(harness: Harness) -> None:
    _grow(harness)
    config = harness.org_config(batch_size=PAGE)
    first = harness.extract("Account", org_config=config)
    _grow(harness, 500)
    harness.admin.faults.fail_next(10, status=500, path_contains="-200")

    with pytest.raises(TransientAPIError, match="after 4 attempts"):
        harness.extract("Account", org_config=config)

    assert list_extracts(harness.data_root, "demo", "Account") == first.extract_dirs
    assert _no_staging_left(harness)
    newest = latest_manifest(harness.data_root, "demo", "Account", mode="watermark")
    assert newest is not None
    assert newest.watermark_to == first.watermark_to


def _expire_locators_after(client: SalesforceClient, harness: Harness, pages: int) -> None:
    """Expire every open query locator of the org once the first query has yielded ``pages``."""
    original = client.query_pages
    state = {"queries": 0}

    def query_pages(*args: Any, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        state["queries"] += 1
        first_query = state["queries"] == 1
        for number, page in enumerate(original(*args, **kwargs), start=1):
            yield page
            if first_query and number == pages:
                harness.admin.expire_locators()

    client.query_pages = query_pages  # type: ignore[method-assign]


def test_certificate_failure_is_not_retried(harness: Harness) -> None:
    # Without the emulator's CA the system trust store cannot verify its certificate.
    config = harness.org_config(ca_file=None)

    with pytest.raises(SalesforceAPIError, match="TLS verification"):
        harness.extract("Account", org_config=config)

    assert harness.sleeps == []


def test_retry_delay_grows_with_jitter() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=4.0)

    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 1
