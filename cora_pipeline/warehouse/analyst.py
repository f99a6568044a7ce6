"""The analyst catalog: Parquet copies of the warehouse tables and a DuckDB file of views over them.

DuckDB allows one process to open a database file read-write, and any open connection, even a read-only
one, blocks every other process from opening it read-write. An analyst who keeps ``warehouse.duckdb`` open
would therefore make every scheduled run fail. Analysts open ``analyst.duckdb`` instead:

- Each applied extract adds Parquet files under ``<data_root>/analyst/``, named by its extract_id and never
  changed afterwards. ``sync_runs``, ``record_changes``, ``field_changes`` and ``schema_changes`` get the
  extract's rows. Each object gets a ``current`` delta (the rows the extract wrote, and the Ids it removed)
  and a ``history`` delta (every version of those records). A baseline or a schema change writes the whole
  table instead, which replaces the older deltas. Files are written under a temporary name and renamed,
  so a reader never sees a partial file.
- ``analyst.duckdb`` contains only views over those files and the ``<Object>_as_of`` table macros. A view
  takes each row from the newest file that has it. The catalog is built under a temporary name and
  renamed over the old one, so the writer never opens a file an analyst holds. An open analyst connection
  reads new Parquet files at its next query; objects and columns added since it connected appear when the
  analyst reconnects.

The warehouse file stays the source of truth. An object's deltas are staged inside the applying
transaction and renamed into place after the commit. When a process dies in between, or when deltas pile
up past ``MAX_DELTA_FILES``, :meth:`AnalystCatalog.publish_object` exports the whole object again.
"""

# ruff: noqa: S608 -- SQL is assembled from identifiers passed through quote_ident and from
# literals passed through quote_literal; values travel as bound parameters.

import logging
import secrets
from pathlib import Path

import duckdb

from cora_pipeline.warehouse.apply import ExtractApplier, as_of_macro_sql, table_exists
from cora_pipeline.warehouse.sqltext import quote_ident, quote_literal
from cora_pipeline.warehouse.tables import CHANGE_TABLES

log = logging.getLogger(__name__)

ANALYST_DIR = "analyst"
# sync_runs goes last because its per-extract file marks that extract as exported.
# TODO: merge old per-extract change files; after thousands of extracts every query over the change
# tables opens thousands of small files.
EXPORT_ORDER = ("record_changes", "field_changes", "schema_changes", "sync_runs")
# Past this many delta files per object, the next publish writes one consolidated file instead.
MAX_DELTA_FILES = 64
FILE_COLUMN = "_cora_file"
REMOVED_COLUMN = "_cora_removed"


class AnalystCatalog:
    """Export the warehouse to Parquet and rebuild the catalog of views analysts open."""

    def __init__(self, con: duckdb.DuckDBPyConnection, data_root: Path, catalog_path: Path):
        self.con = con
        self.root = data_root / ANALYST_DIR
        self.catalog_path = catalog_path

    def object_dir(self, org: str, sobject: str) -> Path:
        return self.root / "objects" / org / sobject

    # -- current and history deltas ------------------------------------------------------------

    def stage_extract(self, applier: ExtractApplier) -> tuple[list[tuple[Path, Path]], bool]:
        """Stage the rows one extract wrote, before its commit (see :meth:`stage_deltas`).

        Returns the staged files and whether they replace all earlier ones.
        """
        if applier.written == "nothing":
            return [], False
        if applier.written == "everything":
            current = f"SELECT *, false AS {REMOVED_COLUMN} FROM {applier.current}"
            history = f"SELECT * FROM {applier.history}"
        else:
            current = (
                f"SELECT *, false AS {REMOVED_COLUMN} FROM x_new_rows "
                f"UNION ALL BY NAME SELECT record_id AS Id, true AS {REMOVED_COLUMN} FROM x_gone"
            )
            history = (
                f"SELECT * FROM {applier.history} WHERE Id IN "
                "(SELECT Id FROM x_new_rows UNION ALL SELECT record_id FROM x_gone)"
            )
        staged = self.stage_deltas(
            applier.org, applier.sobject, applier.m.extract_id, current, history
        )
        return staged, applier.written == "everything"

    def stage_deltas(
        self, org: str, sobject: str, extract_id: str, current_query: str, history_query: str
    ) -> list[tuple[Path, Path]]:
        """Write one extract's current and history rows under temporary names.

        Runs inside the applying transaction, so the files contain exactly what it commits. The
        caller renames them into place with :meth:`install` after the commit, or deletes them with
        :meth:`discard` on rollback.
        """
        staged = []
        for part, query in (("current", current_query), ("history", history_query)):
            part_dir = self.object_dir(org, sobject) / part
            part_dir.mkdir(parents=True, exist_ok=True)
            target = part_dir / f"{extract_id}.parquet"
            staging = part_dir / f".{extract_id}.{secrets.token_hex(4)}.partial"
            self._write(query, [], staging)
            staged.append((staging, target))
        return staged

    @staticmethod
    def install(staged: list[tuple[Path, Path]], *, consolidated: bool) -> None:
        """Rename staged files into place. A consolidated file replaces every older one."""
        for staging, target in staged:
            staging.replace(target)
            if consolidated:
                # NOTE: an analyst query reading the older files at this moment fails once with
                # "file not found" and succeeds when run again.
                for older in target.parent.glob("*.parquet"):
                    if older.name < target.name:
                        older.unlink(missing_ok=True)

    @staticmethod
    def discard(staged: list[tuple[Path, Path]]) -> None:
        for staging, _ in staged:
            staging.unlink(missing_ok=True)

    def _deltas_complete(self, org: str, sobject: str, extract_ids: list[str]) -> bool:
        """Return whether every extract since the last consolidation has both delta files.

        A process that died between commit and rename leaves a gap, and too many small files slow
        every analyst query down. Either calls for a consolidation.
        """
        names = {}
        for part in ("current", "history"):
            part_dir = self.object_dir(org, sobject) / part
            names[part] = (
                {p.stem for p in part_dir.glob("*.parquet")} if part_dir.is_dir() else set()
            )
        if not names["current"] or names["current"] != names["history"]:
            return False
        if len(names["current"]) > MAX_DELTA_FILES:
            return False
        base = min(names["current"])
        return all(e in names["current"] for e in extract_ids if e >= base)

    def consolidate(self, org: str, sobject: str, extract_id: str) -> None:
        """Export an object's whole current table and history as one delta named ``extract_id``."""
        current = f"{quote_ident(org)}.{quote_ident(sobject)}"
        history = f"{quote_ident(org)}.{quote_ident(sobject + '_history')}"
        staged = self.stage_deltas(
            org,
            sobject,
            extract_id,
            f"SELECT *, false AS {REMOVED_COLUMN} FROM {current}",
            f"SELECT * FROM {history}",
        )
        try:
            self.install(staged, consolidated=True)
        except BaseException:
            self.discard(staged)
            raise
        log.info("consolidated analyst files of %s.%s at extract %s", org, sobject, extract_id)

    # -- per-extract change tables -------------------------------------------------------------

    def publish_object(self, org: str, sobject: str, *, consolidate: bool = False) -> None:
        """Export what analysts lack of one object: missing deltas and per-extract change files.

        ``consolidate`` exports the whole current table and history even when no delta is missing.
        """
        extract_ids = [
            row[0]
            for row in self.con.execute(
                "SELECT extract_id FROM main.sync_runs WHERE org = ? AND object = ? "
                "ORDER BY extract_id",
                [org, sobject],
            ).fetchall()
        ]
        if table_exists(self.con, org, sobject) and (
            consolidate
            or not self._deltas_complete(
                org, sobject, [e for e in extract_ids if e >= self._first_snapshot(org, sobject)]
            )
        ):
            self.consolidate(org, sobject, extract_ids[-1])
        for table in EXPORT_ORDER:
            table_dir = self.root / table / org / sobject
            table_dir.mkdir(parents=True, exist_ok=True)
            existing = {p.stem for p in table_dir.glob("*.parquet")}
            for extract_id in extract_ids:
                if extract_id in existing:
                    continue
                target = table_dir / f"{extract_id}.parquet"
                staging = table_dir / f".{extract_id}.{secrets.token_hex(4)}.partial"
                self._write(
                    f"SELECT * FROM main.{table} WHERE org = ? AND object = ? AND extract_id = ?",
                    [org, sobject, extract_id],
                    staging,
                )
                staging.replace(target)
            # Files of extracts the warehouse no longer has (after a rebuild from fewer extracts).
            for stale in existing - set(extract_ids):
                (table_dir / f"{stale}.parquet").unlink(missing_ok=True)

    def _first_snapshot(self, org: str, sobject: str) -> str:
        """Return the baseline extract's id; formula extracts before it changed no table."""
        rows = self.con.execute(
            "SELECT min(extract_id) FROM main.sync_runs WHERE org = ? AND object = ? AND baseline",
            [org, sobject],
        ).fetchall()
        return str(rows[0][0]) if rows and rows[0][0] is not None else ""

    def _write(self, query: str, params: list[object], path: Path) -> None:
        try:
            self.con.execute(
                f"COPY ({query}) TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)",
                params,
            )
        except BaseException:
            path.unlink(missing_ok=True)
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
                if not any(object_dir.glob("current/*.parquet")):
                    continue
                if not any(object_dir.glob("history/*.parquet")):
                    continue
                current_glob = quote_literal(str(object_dir / "current" / "*.parquet"))
                history_glob = quote_literal(str(object_dir / "history" / "*.parquet"))
                name = object_dir.name
                current = f"{org}.{quote_ident(name)}"
                history = f"{org}.{quote_ident(name + '_history')}"
                # Delta files are named by extract_id, so the last file with a row has its newest
                # state. A row marked removed was deleted from the current table.
                catalog.execute(
                    f"""
                    CREATE VIEW {current} AS
                    SELECT * EXCLUDE ({FILE_COLUMN}, {REMOVED_COLUMN})
                    FROM read_parquet({current_glob}, union_by_name = true,
                        filename = {quote_literal(FILE_COLUMN)})
                    QUALIFY row_number() OVER (PARTITION BY Id ORDER BY {FILE_COLUMN} DESC) = 1
                        AND NOT {REMOVED_COLUMN}
                    """
                )
                # A history version is identified by its record and the extract that created it.
                catalog.execute(
                    f"""
                    CREATE VIEW {history} AS
                    SELECT * EXCLUDE ({FILE_COLUMN})
                    FROM read_parquet({history_glob}, union_by_name = true,
                        filename = {quote_literal(FILE_COLUMN)})
                    QUALIFY row_number() OVER (
                        PARTITION BY Id, extract_id ORDER BY {FILE_COLUMN} DESC
                    ) = 1
                    """
                )
                catalog.execute(as_of_macro_sql(f"{org}.{quote_ident(name + '_as_of')}", history))
