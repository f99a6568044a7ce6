"""Analysts keep a connection to the catalog open while scheduled runs write the warehouse."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cora_pipeline.warehouse import Warehouse, WarehouseLockedError
from cora_pipeline.warehouse import analyst as analyst_module

from .builders import ExtractWriter, account, at, write_history

CHILD = Path(__file__).with_name("analyst_child.py")


class AnalystProcess:
    """A real second process holding a read-only connection to the analyst catalog."""

    def __init__(self, catalog: Path):
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(catalog)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        assert first == "open", self.process.stderr.read() if self.process.stderr else first

    def query(self, sql: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(sql.replace("\n", " ") + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def analyst_after_baseline(writer: ExtractWriter, warehouse: Warehouse) -> Iterator[AnalystProcess]:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    analyst = AnalystProcess(warehouse.analyst_path)
    yield analyst
    analyst.close()


def test_open_analyst_connection_does_not_block_runs(
    writer: ExtractWriter, warehouse: Warehouse, analyst_after_baseline: AnalystProcess
) -> None:
    analyst = analyst_after_baseline
    assert analyst.query('SELECT count(*) FROM acme."Account"') == [[2]]

    warehouse.close()
    second = Warehouse(writer.data_root, lock_timeout=5)
    try:
        result = second.apply_extract(
            writer.write([account("a1", Name="Edited", LastModifiedDate=at(1.5)), account("a3")])
        )
    finally:
        second.close()

    assert (result.created, result.updated, result.deleted) == (1, 1, 1)
    assert analyst.query(
        "SELECT record_id, field, old_value, new_value, cause FROM field_changes"
    ) == [["a1", "Name", "Account a1", "Edited", "edit"]]
    assert analyst.query('SELECT Id FROM acme."Account" ORDER BY Id') == [["a1"], ["a3"]]
    assert analyst.query(
        "SELECT record_id, change_type FROM record_changes ORDER BY record_id"
    ) == [["a1", "updated"], ["a2", "deleted"], ["a3", "created"]]


def test_analyst_catalog_answers_as_of(
    writer: ExtractWriter, warehouse: Warehouse, analyst_after_baseline: AnalystProcess
) -> None:
    warehouse.apply_extract(
        writer.write(
            [
                account("a1", Name="Edited", LastModifiedDate=at(1.5), SystemModstamp=at(1.5)),
                account("a2"),
            ]
        )
    )

    assert analyst_after_baseline.query(
        "SELECT Id, Name FROM acme.\"Account_as_of\"(TIMESTAMPTZ '2026-03-01 10:00:00+00') "
        "ORDER BY Id"
    ) == [["a1", "Account a1"], ["a2", "Account a2"]]
    assert analyst_after_baseline.query(
        "SELECT Id, Name FROM acme.\"Account_as_of\"(TIMESTAMPTZ '2026-03-01 10:30:00+00') "
        "ORDER BY Id"
    ) == [["a1", "Edited"], ["a2", "Account a2"]]


def test_new_object_appears_after_reconnecting(
    writer: ExtractWriter, warehouse: Warehouse, analyst_after_baseline: AnalystProcess
) -> None:
    warehouse.apply_extract(writer.write([account("c1")], sobject="Contact"))

    assert "error" in analyst_after_baseline.query('SELECT count(*) FROM acme."Contact"')
    fresh = AnalystProcess(warehouse.analyst_path)
    try:
        assert fresh.query('SELECT count(*) FROM acme."Contact"') == [[1]]
    finally:
        fresh.close()


def test_catalog_tables_match_the_warehouse(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    warehouse.apply_extract(
        writer.write([account("a1", Name="Edited", LastModifiedDate=at(1.5)), account("a3")])
    )
    analyst = duckdb.connect(str(warehouse.analyst_path), read_only=True)
    try:
        for table, order in [
            ("sync_runs", "extract_id"),
            ("record_changes", "record_id"),
            ("field_changes", "record_id"),
            ('acme."Account"', "Id"),
            ('acme."Account_history"', "Id, valid_from"),
        ]:
            query = f"SELECT * FROM {table} ORDER BY {order}"
            assert analyst.execute(query).fetchall() == warehouse.con.execute(query).fetchall()
    finally:
        analyst.close()


def test_locked_warehouse_raises_after_timeout(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1")]))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "time.sleep(60)",
            str(warehouse.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    warehouse.close()
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        blocked = Warehouse(writer.data_root, lock_timeout=0.5)
        with pytest.raises(WarehouseLockedError, match=r"analyst\.duckdb"):
            blocked.apply_extract(writer.write([account("a1")]))
    finally:
        holder.kill()
        holder.wait()


ANALYST_TABLES = [
    ("sync_runs", "extract_id"),
    ("record_changes", "extract_id, record_id"),
    ("field_changes", "extract_id, record_id, field"),
    ("schema_changes", "extract_id, field"),
    ('acme."Account"', "Id"),
    ('acme."Account_history"', "Id, valid_from, extract_id"),
    ('acme."Contact"', "Id"),
    ('acme."Contact_history"', "Id, valid_from, extract_id"),
]


def assert_catalog_matches(wh: Warehouse) -> None:
    analyst = duckdb.connect(str(wh.analyst_path), read_only=True)
    try:
        for table, order in ANALYST_TABLES:
            query = f"SELECT * FROM {table} ORDER BY {order}"
            try:
                expected = wh.con.execute(query).fetchall()
            except duckdb.CatalogException:
                continue  # not created yet by the extracts applied so far
            assert analyst.execute(query).fetchall() == expected, table
    finally:
        analyst.close()


def test_catalog_follows_every_kind_of_change(writer: ExtractWriter, warehouse: Warehouse) -> None:
    write_history(writer)
    for extract in writer.written:
        warehouse.apply_extract(extract)
        assert_catalog_matches(warehouse)

    files = sorted(
        p.name for p in (writer.data_root / "analyst/objects/acme/Account/current").iterdir()
    )
    # The last extract adds a field, so its export replaces the earlier deltas.
    assert files == [f"{writer.written[-1].name}.parquet"]


def test_catalog_consolidates_many_deltas(
    writer: ExtractWriter, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyst_module, "MAX_DELTA_FILES", 3)
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    for i in range(5):
        warehouse.apply_extract(
            writer.write([account("a1", Name=f"Name {i}", LastModifiedDate=at(i + 1.5))])
        )

    current_dir = writer.data_root / "analyst/objects/acme/Account/current"
    assert len(list(current_dir.glob("*.parquet"))) <= 4
    assert_catalog_matches(warehouse)


def test_catalog_recovers_from_lost_delta(writer: ExtractWriter, warehouse: Warehouse) -> None:
    warehouse.apply_extract(writer.write([account("a1"), account("a2")]))
    second = writer.write([account("a1", Name="Edited", LastModifiedDate=at(1.5))])
    warehouse.apply_extract(second)
    # As if the process died after the commit, before renaming the delta into place.
    (writer.data_root / f"analyst/objects/acme/Account/current/{second.name}.parquet").unlink()
    (writer.data_root / f"analyst/sync_runs/acme/Account/{second.name}.parquet").unlink()

    again = warehouse.apply_extract(second)

    assert again.already_applied
    assert_catalog_matches(warehouse)


def test_catalog_matches_after_rebuild(writer: ExtractWriter, warehouse: Warehouse) -> None:
    write_history(writer)
    for extract in writer.written:
        warehouse.apply_extract(extract)

    warehouse.rebuild()

    assert_catalog_matches(warehouse)
