"""Card contents from the vault and the DuckDB warehouse: statuses, API usage, last sync."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.connect import ConnectionRecord, ConnectionStore, StoredTokens
from cora_pipeline.warehouse import Warehouse
from cora_pipeline.web.app import INTEGRATIONS_PATH
from cora_pipeline.web.cards import build_cards, read_sync_summaries

from .conftest import PRODUCTION_ORG, WebServer, holding_lock, signed_in_session

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ORG = OrgConfig(
    name="acme",
    login_url="https://login.salesforce.com",
    is_sandbox=False,
    client_id="3MVGexample",
    api_budget_share=0.5,
)


def sync_run(
    sobject: str,
    extract_id: str,
    finished_at: datetime,
    *,
    org: str = "acme",
    status: str = "succeeded",
    api_used: int | None = 120,
    api_max: int | None = 15000,
    baseline: bool = False,
) -> dict[str, Any]:
    return {
        "run_id": f"run-{extract_id}",
        "org": org,
        "object": sobject,
        "extract_id": extract_id,
        "mode": "incremental",
        "baseline": baseline,
        "started_at": finished_at - timedelta(seconds=30),
        "finished_at": finished_at,
        "status": status,
        "records_fetched": 7,
        "deleted_fetched": 0,
        "api_calls": 3,
        "api_used": api_used,
        "api_max": api_max,
        "watermark_field": "SystemModstamp",
        "watermark_from": None,
        "watermark": finished_at,
        "error": None,
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "undeleted": 0,
        "field_changes": 0,
        "schema_changes": 0,
        "current_rows": 7,
    }


def write_warehouse(
    data_root: Path, runs: list[dict[str, Any]], changes: list[tuple[str, str, str, str]]
) -> None:
    """Write sync runs and (object, extract_id, record_id, change_type) rows through the real
    warehouse schema."""
    with Warehouse(data_root) as warehouse:
        con = warehouse.con
        for run in runs:
            columns = ", ".join(run)
            marks = ", ".join("?" for _ in run)
            con.execute(
                f"INSERT INTO main.sync_runs ({columns}) VALUES ({marks})", list(run.values())
            )
        for sobject, extract_id, record_id, change_type in changes:
            con.execute(
                "INSERT INTO main.record_changes (org, object, record_id, change_type, "
                "changed_fields, run_id, extract_id, detected_at, modstamp) "
                "VALUES ('acme', ?, ?, ?, [], ?, ?, ?, NULL)",
                [sobject, record_id, change_type, f"run-{extract_id}", extract_id, NOW],
            )


def test_last_sync_per_object_counts_its_changes(tmp_path: Path) -> None:
    earlier = NOW - timedelta(hours=2)
    later = NOW - timedelta(minutes=5)
    write_warehouse(
        tmp_path,
        [
            sync_run("Account", "e1", earlier, baseline=True),
            sync_run("Account", "e2", later, api_used=300),
            sync_run("Contact", "e3", later),
            sync_run("Account", "other", later, org="globex"),
        ],
        [
            ("Account", "e1", "001A", "created"),
            ("Account", "e2", "001B", "created"),
            ("Account", "e2", "001C", "updated"),
            ("Account", "e2", "001D", "updated"),
            ("Account", "e2", "001E", "deleted"),
            ("Contact", "e3", "003A", "undeleted"),
        ],
    )

    summary = read_sync_summaries(tmp_path, [ORG], NOW)["acme"]

    assert summary.unavailable is None
    assert [o.sobject for o in summary.objects] == ["Account", "Contact"]
    account, contact = summary.objects
    assert account.finished_at == later
    assert account.baseline is False
    assert (account.created, account.updated, account.deleted, account.undeleted) == (1, 2, 1, 0)
    assert (contact.created, contact.updated, contact.deleted, contact.undeleted) == (0, 0, 0, 1)
    assert summary.usage is not None
    assert summary.usage.maximum == 15000
    assert summary.usage.budget == 7500
    assert summary.usage.exhausted is False


def test_usage_older_than_a_day_is_not_shown(tmp_path: Path) -> None:
    write_warehouse(tmp_path, [sync_run("Account", "e1", NOW - timedelta(hours=25))], [])

    summary = read_sync_summaries(tmp_path, [ORG], NOW)["acme"]

    assert summary.usage is None
    assert len(summary.objects) == 1


@pytest.mark.parametrize(
    ("status", "api_used", "expected"),
    [
        ("succeeded", 7499, "connected"),
        ("succeeded", 7500, "budget_exhausted"),
        ("stopped_budget", 100, "budget_exhausted"),
    ],
)
def test_budget_status_follows_usage_and_stops(
    tmp_path: Path, status: str, api_used: int, expected: str
) -> None:
    settings = Settings(data_root=tmp_path, orgs={"acme": ORG})
    store = ConnectionStore.open(settings, create_key=True)
    store.save(connection_record(), StoredTokens("00Dxx!access", "5Aep-refresh"))
    write_warehouse(
        tmp_path,
        [sync_run("Account", "e1", datetime.now(UTC), status=status, api_used=api_used)],
        [],
    )

    (card,) = build_cards(settings)

    assert card.status == expected


def test_missing_warehouse_shows_no_history(tmp_path: Path) -> None:
    summaries = read_sync_summaries(tmp_path, [ORG], NOW)

    assert summaries == {}


def test_locked_warehouse_is_reported(tmp_path: Path) -> None:
    write_warehouse(tmp_path, [sync_run("Account", "e1", NOW)], [])
    with holding_lock(tmp_path / "warehouse.duckdb"):
        summary = read_sync_summaries(tmp_path, [ORG], NOW)["acme"]

    assert summary.unavailable is not None
    assert "pipeline is writing to the warehouse" in summary.unavailable
    assert summary.objects == ()


def connection_record(**changes: Any) -> ConnectionRecord:
    values: dict[str, Any] = {
        "org": "acme",
        "org_id": "00D000000000001EAA",
        "org_name": "Acme Corporation",
        "user_id": "005000000000001AAA",
        "username": "admin@acme.example",
        "connected_at": "2026-03-01T09:30:00+00:00",
        "is_sandbox": False,
        "login_url": "https://login.salesforce.com",
        "instance_url": "https://acme.my.salesforce.com",
        "scopes": ("api", "refresh_token"),
        "flow": "web_server",
    }
    values.update(changes)
    return ConnectionRecord(**values)


def test_card_shows_budget_and_sync_table(web: WebServer, settings: Settings) -> None:
    store = ConnectionStore.open(settings, create_key=True)
    store.save(connection_record(org=PRODUCTION_ORG), StoredTokens("00Dxx!access", "5Aep-refresh"))
    finished = datetime.now(UTC) - timedelta(minutes=3)
    write_warehouse(
        settings.data_root,
        [sync_run("Account", "e1", finished, api_used=14000, api_max=15000)],
        [("Account", "e1", "001A", "updated"), ("Account", "e1", "001B", "updated")],
    )

    page = signed_in_session(web).get(web.base_url + INTEGRATIONS_PATH, timeout=10).text

    assert "API budget exhausted" in page
    assert "14,000 of 15,000 calls" in page
    assert "Cora stops at 7,500" in page
    assert '<td class="num" data-count="updated">2</td>' in page
    assert "Acme Corporation" in page
    assert "admin@acme.example" in page
    assert "1 Mar 2026, 09:30 UTC" in page


def test_card_with_unreadable_vault_says_why(web: WebServer, settings: Settings) -> None:
    ConnectionStore.open(settings, create_key=True)
    vault = settings.home / "vault"
    vault.mkdir(parents=True, mode=0o700, exist_ok=True)
    (vault / f"{PRODUCTION_ORG}.json").write_text("{not json", encoding="utf-8")
    (vault / f"{PRODUCTION_ORG}.json").chmod(0o600)

    session = signed_in_session(web)

    response = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10)
    reconnect = session.get(
        f"{web.base_url}{INTEGRATIONS_PATH}/salesforce/{PRODUCTION_ORG}/reconnect", timeout=10
    )

    assert response.status_code == 200
    assert "The stored connection cannot be read" in response.text
    assert "is not valid JSON" in response.text
    assert reconnect.status_code == 500
    assert "is not valid JSON" in reconnect.text


def test_no_sync_yet_names_the_schedule(web: WebServer, settings: Settings) -> None:
    store = ConnectionStore.open(settings, create_key=True)
    store.save(connection_record(org=PRODUCTION_ORG), StoredTokens("00Dxx!access", "5Aep-refresh"))

    text = signed_in_session(web).get(web.base_url + INTEGRATIONS_PATH, timeout=10).text

    assert "No sync has run yet" in text
    assert "Not measured yet" in text
