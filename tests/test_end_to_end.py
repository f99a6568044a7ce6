"""The whole job against the emulator: OAuth connect, two Dagster syncs, exact rows in DuckDB."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from cora_pipeline.cli import main
from cora_pipeline.config import DEMO_ORG, Settings, load_settings
from cora_pipeline.demo import DEMO_SECRET_ENV, connect_demo_org, write_demo_config
from cora_pipeline.emulator.browser import free_port
from cora_pipeline.orchestration.runner import run_sync

REPO = Path(__file__).resolve().parents[1]
# Salesforce access tokens start with the 15-character org id and "!".
ACCESS_TOKEN = re.compile(r"00D[0-9A-Za-z]{12}![0-9A-Za-z._-]{20,}")
SIZES = {"Account": 30, "Contact": 60, "Opportunity": 30, "Case": 30, "Invoice__c": 25}


@pytest.fixture
def connected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Settings]]:
    """An emulator whose Production org is connected through the OAuth web-server flow."""
    from cora_pipeline.emulator import Emulator, EmulatorSettings

    callback_port = free_port()
    settings = EmulatorSettings(
        seed=11,
        sizes=SIZES,
        auto_approve=True,
        callback_urls=(f"http://127.0.0.1:{callback_port}/callback",),
        data_dir=tmp_path / "emulator",
    )
    data_root = tmp_path / "data"
    data_root.mkdir()
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    with Emulator(settings) as emu:
        monkeypatch.setenv(DEMO_SECRET_ENV, emu.client_secret)
        cora_settings = load_settings(write_demo_config(data_root, emu, callback_port))
        connect_demo_org(cora_settings, emu)
        yield emu, cora_settings


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def test_two_syncs_record_exact_changes(
    connected: tuple[Any, Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu, settings = connected
    admin = emu.production.admin
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    instance = dg.DagsterInstance.local_temp(str(dagster_home))

    first = run_sync(settings, DEMO_ORG, instance=instance)
    assert first.success, first.error

    account = next(
        r
        for r in sorted(admin.records("Account"), key=lambda r: r["Id"])
        if r["Website"] is not None
    )
    new_rating = "Cold" if account["Rating"] != "Cold" else "Warm"
    contact = sorted(admin.records("Contact"), key=lambda r: r["Id"])[0]
    case = sorted(admin.records("Case"), key=lambda r: r["Id"])[-1]
    admin.update(
        "Account",
        account["Id"],
        {"Name": "Renamed Ltd", "Rating": new_rating, "Website": None},
        by="user",
    )
    admin.update(
        "Contact",
        contact["Id"],
        {"HasOptedOutOfEmail": not contact["HasOptedOutOfEmail"]},
        by="system",
    )
    created = admin.create("Contact", {"LastName": "Nul\x00l 🚀", "AccountId": account["Id"]})
    admin.delete("Case", case["Id"])
    open_invoice = next(
        r
        for r in sorted(admin.records("Invoice__c"), key=lambda r: r["Id"])
        if r.get("Days_Outstanding__c") is not None
    )
    admin.advance_clock(24 * 3600)
    moved_invoice = admin.get("Invoice__c", open_invoice["Id"])

    second = run_sync(settings, DEMO_ORG, instance=instance)
    assert second.success, second.error

    from cora_pipeline.warehouse import Warehouse

    wh = Warehouse(settings.data_root)
    path = wh.warehouse_path
    wh.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        run = second.run_id
        assert _rows(
            con,
            "SELECT field, old_value, new_value, cause FROM field_changes "
            "WHERE run_id = ? AND record_id = ? ORDER BY field",
            run,
            account["Id"],
        ) == [
            ("Name", account["Name"], "Renamed Ltd", "edit"),
            ("Rating", account["Rating"], new_rating, "edit"),
            ("Website", account["Website"], None, "edit"),
        ]

        assert _rows(
            con,
            "SELECT field, old_value, new_value, cause FROM field_changes "
            "WHERE run_id = ? AND record_id = ?",
            run,
            contact["Id"],
        ) == [
            (
                "HasOptedOutOfEmail",
                str(contact["HasOptedOutOfEmail"]).lower(),
                str(not contact["HasOptedOutOfEmail"]).lower(),
                "system",
            )
        ]

        assert _rows(
            con,
            "SELECT change_type FROM record_changes WHERE run_id = ? AND record_id = ?",
            run,
            created,
        ) == [("created",)]
        assert _rows(
            con,
            "SELECT change_type FROM record_changes WHERE run_id = ? AND record_id = ?",
            run,
            case["Id"],
        ) == [("deleted",)]

        formula_rows = _rows(
            con,
            "SELECT old_value, new_value, cause FROM field_changes "
            "WHERE run_id = ? AND record_id = ? AND field = 'Days_Outstanding__c'",
            run,
            open_invoice["Id"],
        )
        assert formula_rows == [
            (
                str(int(open_invoice["Days_Outstanding__c"])),
                str(int(moved_invoice["Days_Outstanding__c"])),
                "formula",
            )
        ]

        # The NUL character and the emoji survive into the current-state table unchanged.
        assert _rows(con, f'SELECT LastName FROM "{DEMO_ORG}"."Contact" WHERE Id = ?', created) == [
            ("Nul\x00l 🚀",)
        ]

        # Nothing else changed: no record the test did not touch shows up.
        touched = {account["Id"], contact["Id"], created, case["Id"]}
        others = _rows(
            con,
            "SELECT DISTINCT record_id, object FROM field_changes WHERE run_id = ? "
            "AND cause <> 'formula'",
            run,
        )
        assert {record_id for record_id, _ in others} <= touched

        runs = _rows(
            con,
            "SELECT object, status FROM sync_runs WHERE run_id = ? ORDER BY object",
            run,
        )
        assert {status for _, status in runs} == {"succeeded"}
        assert {obj for obj, _ in runs} == {
            "Account",
            "Case",
            "Contact",
            "Invoice__c",
            "Opportunity",
        }
    finally:
        con.close()

    # `cora status` shows the connection and, from the warehouse, the usage and the last syncs.
    assert main(["--config", str(settings.source), "status", DEMO_ORG]) == 0
    status = capsys.readouterr().out
    assert "state           connected" in status
    assert emu.production.org_id in status
    assert re.search(r"API usage\s+\d+ of 15000 daily calls", status)
    assert re.search(r"Case\s+succeeded .* 0 created, 0 updated, 1 deleted", status)

    # The pipeline's own log lines reach the run's event log (python_logs in dagster.yaml), and
    # none of them carries an access token.
    messages = [entry.user_message for entry in instance.all_logs(first.run_id)]
    assert any("no earlier extract" in message for message in messages)
    assert not any(ACCESS_TOKEN.search(message) for message in messages)

    # The runs are in the Dagster instance, as the UI would show them.
    assert instance.get_run_by_id(first.run_id) is not None
    materialization = instance.get_latest_materialization_event(
        dg.AssetKey(["salesforce", DEMO_ORG, "Account"])
    )
    assert materialization is not None
    assert materialization.run_id == second.run_id
