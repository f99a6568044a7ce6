"""``cora rebuild`` rebuilds every table from the extracts alone; ``cora changes`` prints them."""

import argparse
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cora_pipeline.errors import ConfigError
from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.warehouse import Warehouse
from cora_pipeline.warehouse import cli as warehouse_cli
from cora_pipeline.warehouse.apply import ExtractApplier

from .builders import ACCOUNT_FIELDS, ExtractWriter, account, at, write_history

TABLES = (
    "main.sync_runs",
    "main.record_changes",
    "main.field_changes",
    "main.schema_changes",
    'acme."Account"',
    'acme."Account_history"',
    'acme."Contact"',
    'acme."Contact_history"',
)


def snapshot(wh: Warehouse) -> dict[str, list[tuple]]:
    result = {}
    for table in TABLES:
        query = f"SELECT * FROM {table} ORDER BY ALL"
        result[table] = wh.con.execute(query).fetchall()
    return result


def apply_all(wh: Warehouse, writer: ExtractWriter) -> None:
    for extract in writer.written:
        wh.apply_extract(extract)


def test_rebuild_reproduces_every_table(writer: ExtractWriter, warehouse: Warehouse) -> None:
    write_history(writer)
    apply_all(warehouse, writer)
    before = snapshot(warehouse)

    results = warehouse.rebuild()

    assert len(results) == len(writer.written)
    assert snapshot(warehouse) == before
    assert len(before["main.record_changes"]) == 5
    assert len(before["main.schema_changes"]) == 3


def test_rebuild_from_parquet_alone(writer: ExtractWriter, tmp_path: Path) -> None:
    write_history(writer)
    with Warehouse(writer.data_root) as wh:
        apply_all(wh, writer)
        before = snapshot(wh)
    writer.data_root.joinpath("warehouse.duckdb").unlink()

    code = warehouse_cli.run_rebuild(argparse.Namespace(data_root=writer.data_root, config=None))

    assert code == 0
    with Warehouse(writer.data_root) as wh:
        assert snapshot(wh) == before


def test_rebuild_after_crash_leftover(writer: ExtractWriter, warehouse: Warehouse) -> None:
    write_history(writer)
    apply_all(warehouse, writer)
    before = snapshot(warehouse)
    writer.data_root.joinpath("warehouse.duckdb.rebuild").write_bytes(b"half-written")

    warehouse.rebuild()

    assert snapshot(warehouse) == before


def run_changes(data_root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    warehouse_cli.add_changes_arguments(parser)
    args = parser.parse_args([*argv, "--data-root", str(data_root)])
    assert warehouse_cli.run_changes(args) == 0
    return capsys.readouterr().out


@pytest.fixture
def applied(writer: ExtractWriter, warehouse: Warehouse) -> Path:
    write_history(writer)
    apply_all(warehouse, writer)
    return writer.data_root


def test_changes_as_json(applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_changes(applied, capsys, "acme", "--object", "Account", "--format", "json")

    rows = json.loads(out)
    assert [(r["record_id"], r["change_type"], r["field"]) for r in rows] == [
        ("a2", "undeleted", None),
        ("a3", "deleted", None),
        ("a1", "updated", "Name"),
        ("a2", "deleted", None),
        ("a4", "created", None),
    ]
    assert rows[2]["old_value"] == "Account a1"
    assert rows[2]["new_value"] == "Edited"
    assert rows[2]["detected_at"] == "2026-03-01T12:00:00.000Z"


def test_changes_filtered_by_field_as_csv(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_changes(applied, capsys, "--field", "Name", "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["record_id"], r["old_value"], r["new_value"], r["cause"]) for r in rows] == [
        ("a1", "Account a1", "Edited", "edit")
    ]


def test_changes_since_filters_by_detected_at(
    applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_changes(applied, capsys, "--since", "2026-03-01T13:00Z", "--format", "json")

    assert [(r["record_id"], r["change_type"]) for r in json.loads(out)] == [
        ("a2", "undeleted"),
        ("a3", "deleted"),
    ]


def test_changes_table_lists_fields(
    applied: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = run_changes(applied, capsys, "--object", "Account")

    assert "Edited" in out
    assert "undeleted" in out


def test_since_accepts_spans_and_rejects_garbage() -> None:
    now = datetime(2026, 3, 8, tzinfo=UTC)

    assert warehouse_cli.parse_since("7d", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert warehouse_cli.parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not a valid time"):
        warehouse_cli.parse_since("yesterday")


def test_changes_without_catalog_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="cora sync"):
        run_changes(tmp_path, capsys)


def test_row_hash_prefilter_matches_full_comparison(
    writer: ExtractWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_history(writer)
    writer.write(
        [
            account("a1", Name="Again", LastModifiedDate=at(6.5), SystemModstamp=at(6.5)),
            account("a2", NumberOfEmployees=None, SystemModstamp=at(6.5)),
            account("a4", Rating="Warm", SystemModstamp=at(6.5)),
            account("a5"),
        ],
        fields=[*ACCOUNT_FIELDS, FieldInfo("Rating", "picklist", "string")],
    )
    with Warehouse(writer.data_root) as wh:
        apply_all(wh, writer)
        prefiltered = snapshot(wh)

    monkeypatch.setattr(ExtractApplier, "_can_prefilter", lambda self, plan: False)
    with Warehouse(writer.data_root) as wh:
        wh.rebuild()
        compared = snapshot(wh)

    assert compared == prefiltered
    assert len(prefiltered["main.field_changes"]) == 3


def test_compact_runs_when_deleted_rows_pile_up(
    writer: ExtractWriter, warehouse: Warehouse
) -> None:
    warehouse.apply_extract(writer.write([account(f"a{i}") for i in range(50)]))
    warehouse.con.execute("UPDATE cora_meta.vacuum_state SET deleted_rows = 1")

    assert not warehouse.compact(only_if_needed=True)
    warehouse.con.execute("UPDATE cora_meta.vacuum_state SET deleted_rows = 10000")
    assert warehouse.compact(only_if_needed=True)
    assert warehouse.con.execute("SELECT deleted_rows FROM cora_meta.vacuum_state").fetchall() == [
        (0,)
    ]


def test_stale_row_ids_fall_back_to_ids(
    writer: ExtractWriter, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse.apply_extract(writer.write([account(f"a{i}") for i in range(20)]))
    warehouse.apply_extract(writer.write([account(f"a{i}") for i in range(20)]))
    warehouse.con.execute('UPDATE cora_meta."acme.Account" SET row_id = (row_id + 7) % 20')

    result = warehouse.apply_extract(
        writer.write(
            [account(f"a{i}") for i in range(1, 20)]
            + [account("a5", Name="Edited", LastModifiedDate=at(1.5))]
        )
    )

    assert "no longer match" in caplog.text
    assert (result.updated, result.deleted, result.field_changes) == (1, 1, 1)
    assert warehouse.con.execute(
        'SELECT count(*) FROM cora_meta."acme.Account" h JOIN acme."Account" o '
        "ON o.rowid = h.row_id AND o.Id = h.Id"
    ).fetchall() == [(19,)]


def test_compact_keeps_row_ids_pointing_at_records(
    writer: ExtractWriter, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse.apply_extract(writer.write([account(f"a{i:04d}") for i in range(3000)]))
    warehouse.apply_extract(writer.write([account(f"a{i:04d}") for i in range(0, 3000, 3)]))
    warehouse.compact()

    result = warehouse.apply_extract(
        writer.write(
            [account(f"a{i:04d}", Name="Edited", LastModifiedDate=at(2.5)) for i in range(0, 30, 3)]
            + [account(f"a{i:04d}") for i in range(30, 3000, 3)]
        )
    )

    assert "no longer match" not in caplog.text
    assert result.updated == 10
