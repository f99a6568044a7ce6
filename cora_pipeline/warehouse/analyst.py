"""The analyst catalog: Parquet copies of the warehouse tables and a DuckDB file of views over them.

DuckDB allows one process to open a database file read-write, and any open connection, even a read-only
one, blocks every other process from opening it read-write. An analyst who keeps ``warehouse.duckdb`` open
would therefore make every scheduled run fail. Analysts open ``analyst.duckdb`` instead:

- After each committed extract the writer exports what changed to Parquet under ``<data_root>/analyst/``:
  one file per extract for ``sync_runs``, ``record_changes``, ``field_changes`` and ``schema_changes``
  (written once, never changed), and ``current.parquet`` and ``history.parquet`` per object, replaced
  whole. Every file is written under a temporary name and renamed into place, so a reader sees the old
  file or the new one, never a partial one.
- ``analyst.duckdb`` holds only views over those files (and the ``<Object>_as_of`` table macros). It is
  built under a temporary name and renamed over the old catalog, so the writer never opens a file an
  analyst holds. An open analyst connection reads the new Parquet files at its next query; objects and
  columns added since it connected appear when the analyst reconnects.

The warehouse file stays the source of truth: :meth:`AnalystCatalog.publish_object` re-exports any
per-extract file that is missing, so a process killed between commit and export is caught up by the
next run.
"""

# ruff: noqa: S608 -- SQL is assembled from identifiers passed through quote_ident and from
# literals passed through quote_literal; values travel as bound parameters.

import logging
import secrets
from pathlib import Path

import duckdb

from cora_pipeline.warehouse.apply import as_of_macro_sql, table_exists
from cora_pipeline.warehouse.sqltext import quote_ident, quote_literal
from cora_pipeline.warehouse.tables import CHANGE_TABLES

log = logging.getLogger(__name__)

ANALYST_DIR = "analyst"
# sync_runs goes last because its per-extract file marks that extract as exported.
EXPORT_ORDER = ("record_changes", "field_changes", "schema_changes", "sync_runs")


class AnalystCatalog:
    """Export the warehouse to Parquet and rebuild the catalog of views analysts open."""

    def __init__(self, con: duckdb.DuckDBPyConnection, data_root: Path, catalog_path: Path):
        self.con = con
        self.root = data_root / ANALYST_DIR
        self.catalog_path = catalog_path

    # -- Parquet export ------------------------------------------------------------------------

    def publish_object(self, org: str, sobject: str) -> None:
        """Export one object's current table, history and every missing per-extract change file."""
        if table_exists(self.con, org, sobject):
            object_dir = self.root / "objects" / org / sobject
            object_dir.mkdir(parents=True, exist_ok=True)
            current = f"{quote_ident(org)}.{quote_ident(sobject)}"
            history = f"{quote_ident(org)}.{quote_ident(sobject + '_history')}"
            self._copy(f"SELECT * FROM {current} ORDER BY Id", [], object_dir / "current.parquet")
            self._copy(
                f"SELECT * FROM {history} ORDER BY Id, valid_from",
                [],
                object_dir / "history.parquet",
            )
        extract_ids = [
            row[0]
            for row in self.con.execute(
                "SELECT extract_id FROM main.sync_runs WHERE org = ? AND object = ? "
                "ORDER BY extract_id",
                [org, sobject],
            ).fetchall()
        ]
        for table in EXPORT_ORDER:
            table_dir = self.root / table / org / sobject
            table_dir.mkdir(parents=True, exist_ok=True)
            existing = {p.stem for p in table_dir.glob("*.parquet")}
            for extract_id in extract_ids:
                if extract_id in existing:
                    continue
                self._copy(
                    f"SELECT * FROM main.{table} WHERE org = ? AND object = ? AND extract_id = ?",
                    [org, sobject, extract_id],
                    table_dir / f"{extract_id}.parquet",
                )
            # Files of extracts the warehouse no longer has (after a rebuild from fewer extracts).
            for stale in existing - set(extract_ids):
                (table_dir / f"{stale}.parquet").unlink(missing_ok=True)

    def _copy(self, query: str, params: list[object], target: Path) -> None:
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        try:
            self.con.execute(
                f"COPY ({query}) TO {quote_literal(str(staging))} (FORMAT parquet, COMPRESSION zstd)",
                params,
            )
            staging.replace(target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    # -- catalog -------------------------------------------------------------------------------

    def publish_catalog(self) -> None:
        """Build ``analyst.duckdb`` under a temporary name and rename it over the old one."""
        staging = self.catalog_path.with_name(
            f".{self.catalog_path.name}.{secrets.token_hex(4)}.partial"
        )
        try:
            catalog = duckdb.connect(str(staging))
            try:
                self._create_views(catalog)
                catalog.execute("CHECKPOINT")
            finally:
                catalog.close()
            staging.replace(self.catalog_path)
        finally:
            staging.unlink(missing_ok=True)
            staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
        log.info("published analyst catalog %s", self.catalog_path)

    def _create_views(self, catalog: duckdb.DuckDBPyConnection) -> None:
        for table in CHANGE_TABLES:
            files = self.root / table
            if not any(files.glob("*/*/*.parquet")):
                continue
            glob = quote_literal(str(files / "*" / "*" / "*.parquet"))
            catalog.execute(
                f"CREATE VIEW main.{table} AS "
                f"SELECT * FROM read_parquet({glob}, union_by_name = true)"
            )
        objects_root = self.root / "objects"
        if not objects_root.is_dir():
            return
        for org_dir in sorted(p for p in objects_root.iterdir() if p.is_dir()):
            org = quote_ident(org_dir.name)
            catalog.execute(f"CREATE SCHEMA IF NOT EXISTS {org}")
            for object_dir in sorted(p for p in org_dir.iterdir() if p.is_dir()):
                current_file = object_dir / "current.parquet"
                history_file = object_dir / "history.parquet"
                if not (current_file.exists() and history_file.exists()):
                    continue
                name = object_dir.name
                current = f"{org}.{quote_ident(name)}"
                history = f"{org}.{quote_ident(name + '_history')}"
                catalog.execute(
                    f"CREATE VIEW {current} AS SELECT * FROM "
                    f"read_parquet({quote_literal(str(current_file))})"
                )
                catalog.execute(
                    f"CREATE VIEW {history} AS SELECT * FROM "
                    f"read_parquet({quote_literal(str(history_file))})"
                )
                catalog.execute(as_of_macro_sql(f"{org}.{quote_ident(name + '_as_of')}", history))
