"""The warehouse writer: one DuckDB file under the data root, changed one extract per transaction."""

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import duckdb

from cora_pipeline.errors import CoraError, Terminal, Transient
from cora_pipeline.extract.files import list_extracts, read_manifest
from cora_pipeline.warehouse import rowhash
from cora_pipeline.warehouse.analyst import ANALYST_DIR, AnalystCatalog
from cora_pipeline.warehouse.apply import (
    ApplyResult,
    ExtractApplier,
    fetch_row,
    result_from_sync_run,
)
from cora_pipeline.warehouse.sqltext import check_org_slug
from cora_pipeline.warehouse.tables import create_tables

log = logging.getLogger(__name__)

WAREHOUSE_FILE = "warehouse.duckdb"
# Vacuum when the rows deleted since the last vacuum exceed this share of all stored rows.
VACUUM_SHARE = 0.2
VACUUM_TASKS = 100  # DuckDB's default max_vacuum_tasks
ANALYST_FILE = "analyst.duckdb"


class ExtractOrderError(CoraError, Terminal, ValueError):
    """An extract is older than one already applied to the same object."""


class WarehouseLockedError(CoraError, Transient):
    """Another process kept the warehouse file locked for longer than the lock timeout."""


def connect(
    path: Path,
    lock_timeout: float,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-write, retrying while another process holds DuckDB's file lock."""
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"warehouse file {path} is still locked by another process after "
                    f"{lock_timeout:.0f} s ({error}); only the scheduled pipeline may open it, and "
                    f"analysts open {path.parent / ANALYST_FILE} instead"
                ) from error
            log.info("warehouse file %s is locked, retrying in %.2f s", path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # Timestamps are stored as UTC instants; a UTC session also renders them in UTC.
    con.execute("SET TimeZone = 'UTC'")
    # A checkpoint that vacuums rewrites every row group holding a deleted row. Applying an extract
    # deletes and re-inserts its changed rows, scattered over the whole table, so vacuuming at every
    # commit rewrote the whole table each time: 4.7 to 6.5 s measured for 1,000,000 rows of 40
    # fields (duckdb 2.0.1, 2 shared cores). Warehouse.compact vacuums once deleted rows pile up.
    con.execute("SET max_vacuum_tasks = 0")
    if memory_limit is not None:
        # Past the limit DuckDB spills to <file>.tmp beside the database.
        con.execute("SET memory_limit = ?", [memory_limit])
    if threads is not None:
        con.execute("SET threads = ?", [threads])
    return con


class Warehouse:
    """The writer of ``<data_root>/warehouse.duckdb``.

    Only one process may open the file at a time (DuckDB holds an exclusive file lock), so the
    pipeline serialises writers and analysts read ``analyst_path`` instead.
    """

    def __init__(
        self,
        data_root: Path | str,
        *,
        lock_timeout: float = 120.0,
        memory_limit: str | None = None,
        threads: int | None = None,
    ):
        """Prepare the writer; the file is opened on first use.

        ``lock_timeout`` is how many seconds to wait for another writer to release the file;
        ``memory_limit`` (DuckDB syntax, "2GB") and ``threads`` default to DuckDB's own settings.
        """
        self.data_root = Path(data_root)
        self.warehouse_path = self.data_root / WAREHOUSE_FILE
        self.analyst_path = self.data_root / ANALYST_FILE
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit
        self.threads = threads
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.data_root.mkdir(parents=True, exist_ok=True)
            con = connect(self.warehouse_path, self.lock_timeout, self.memory_limit, self.threads)
            create_tables(con)
            self._con = con
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- applying extracts ---------------------------------------------------------------------

    def apply_extract(self, extract_dir: Path | str, *, publish: bool = True) -> ApplyResult:
        """Diff one extract against the object's snapshot and write every table, in one transaction.

        Applying an extract that was applied before changes nothing and returns the recorded result
        with ``already_applied`` set. Raises :class:`ExtractOrderError` for an extract older than the
        newest one applied to the same object. With ``publish`` (the default) the object's tables are
        then exported for analysts (see :mod:`cora_pipeline.warehouse.analyst`).
        """
        extract_dir = Path(extract_dir)
        manifest = read_manifest(extract_dir)
        check_org_slug(manifest.org)
        con = self.con
        staged: list[tuple[Path, Path]] = []
        consolidated = False
        con.execute("BEGIN TRANSACTION")
        try:
            previous = result_from_sync_run(con, manifest)
            if previous is not None:
                con.execute("ROLLBACK")
                log.info(
                    "extract %s of %s.%s was applied before; nothing to do",
                    manifest.extract_id,
                    manifest.org,
                    manifest.object,
                )
                if publish and not self._is_published(manifest.org, manifest.object, previous):
                    self.publish(manifest.org, manifest.object)
                return previous
            self._check_order(con, manifest.org, manifest.object, manifest.extract_id)
            applier = ExtractApplier(con, extract_dir, manifest)
            result = applier.run()
            if publish:
                staged, consolidated = self.analyst_catalog.stage_extract(applier)
            applier.drop_temp_tables()
            self._commit(con)
        except BaseException:
            AnalystCatalog.discard(staged)
            # The connection may already be gone when the error came from DuckDB itself.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        AnalystCatalog.install(staged, consolidated=consolidated)
        self._resolve_row_ids(manifest.org, manifest.object)
        log.info(
            "applied extract %s of %s.%s (%s): %d created, %d updated, %d deleted, "
            "%d undeleted, %d field changes, %d schema changes%s",
            manifest.extract_id,
            manifest.org,
            manifest.object,
            manifest.mode,
            result.created,
            result.updated,
            result.deleted,
            result.undeleted,
            result.field_changes,
            result.schema_changes,
            ", baseline" if result.baseline else "",
        )
        self.compact(only_if_needed=True)
        if publish:
            self.publish(manifest.org, manifest.object)
        return result

    def compact(self, *, only_if_needed: bool = False) -> bool:
        """Let DuckDB vacuum deleted rows in a checkpoint; return whether it ran.

        With ``only_if_needed``, vacuums only when the rows deleted since the last vacuum exceed
        ``VACUUM_SHARE`` of all rows stored.
        """
        con = self.con
        row = fetch_row(con, "SELECT deleted_rows FROM cora_meta.vacuum_state")
        deleted = row[0] if row else 0
        if only_if_needed:
            total = fetch_row(
                con,
                "SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() WHERE NOT temporary",
            )
            if deleted <= VACUUM_SHARE * (total[0] if total else 0):
                return False
        started = time.monotonic()
        con.execute("SET max_vacuum_tasks = ?", [VACUUM_TASKS])
        try:
            # The checkpoint only runs when something changed, so resetting the count triggers it.
            con.execute("BEGIN TRANSACTION")
            con.execute("UPDATE cora_meta.vacuum_state SET deleted_rows = 0")
            # Vacuuming moves rows, so the row ids stored beside the row hashes would point
            # elsewhere. A stale one is still caught when the next extract fetches old rows.
            rowhash.forget_row_ids(con)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.execute("SET max_vacuum_tasks = 0")
        log.info(
            "vacuumed %s after %d deleted rows in %.1f s",
            self.warehouse_path,
            deleted,
            time.monotonic() - started,
        )
        return True

    def _resolve_row_ids(self, org: str, sobject: str) -> None:
        """Store the final rowids of the rows just committed, for the next extract's prefilter.

        A process that dies before this leaves them NULL; the next extract resolves them then.
        """
        con = self.con
        if not rowhash.stored_signature(con, org, sobject):
            return
        con.execute("BEGIN TRANSACTION")
        try:
            rowhash.resolve_row_ids(con, org, sobject)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise

    def _commit(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("COMMIT")

    @staticmethod
    def _check_order(
        con: duckdb.DuckDBPyConnection, org: str, sobject: str, extract_id: str
    ) -> None:
        row = fetch_row(
            con,
            "SELECT max(extract_id) FROM main.sync_runs WHERE org = ? AND object = ?",
            [org, sobject],
        )
        newest = row[0] if row else None
        if newest is not None and extract_id < newest:
            raise ExtractOrderError(
                f"extract {extract_id} of {org}.{sobject} is older than extract {newest}, which is "
                "already applied; extracts must be applied in extract_id order, so run "
                "`cora rebuild` to apply every extract again from the start"
            )

    # -- analyst catalog ------------------------------------------------------------------------

    @property
    def analyst_catalog(self) -> AnalystCatalog:
        return AnalystCatalog(self.con, self.data_root, self.analyst_path)

    def publish(
        self, org: str | None = None, sobject: str | None = None, *, consolidate: bool = False
    ) -> None:
        """Export tables to Parquet for analysts and rebuild the analyst catalog.

        With ``org`` and ``sobject``, exports that object, otherwise every object in ``sync_runs``.
        ``consolidate`` rewrites each object's current table and history as one file.
        """
        catalog = self.analyst_catalog
        if org is not None and sobject is not None:
            catalog.publish_object(org, sobject, consolidate=consolidate)
        else:
            for known_org, known_object in self.con.execute(
                "SELECT DISTINCT org, object FROM main.sync_runs ORDER BY ALL"
            ).fetchall():
                catalog.publish_object(known_org, known_object, consolidate=consolidate)
        catalog.publish_catalog()

    def _is_published(self, org: str, sobject: str, result: ApplyResult) -> bool:
        # publish_object writes the per-extract sync_runs file after the current and history
        # files, and publish_catalog runs after both.
        # NOTE: a process killed between the last Parquet file and the catalog rename leaves a
        # catalog that lacks a newly added object until the next extract is applied.
        marker = self.data_root / ANALYST_DIR / "sync_runs" / org / sobject
        return (marker / f"{result.extract_id}.parquet").exists() and self.analyst_path.exists()

    # -- rebuilding ----------------------------------------------------------------------------

    def rebuild(self, data_root: Path | str | None = None) -> list[ApplyResult]:
        """Build the warehouse again from the Parquet extracts alone and swap it into place.

        The new file is built beside the old one while this writer keeps holding the old one, so no
        other writer can apply an extract that the swap would lose. A crash leaves the old file.
        """
        source_root = Path(data_root) if data_root is not None else self.data_root
        self.con  # noqa: B018 -- take the writer lock on the current file for the whole rebuild
        staging = self.warehouse_path.with_name(WAREHOUSE_FILE + ".rebuild")
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            leftover.unlink(missing_ok=True)
        builder = Warehouse(
            self.data_root,
            lock_timeout=self.lock_timeout,
            memory_limit=self.memory_limit,
            threads=self.threads,
        )
        builder.warehouse_path = staging
        results = []
        try:
            for extract_dir in iter_extracts(source_root):
                results.append(builder.apply_extract(extract_dir, publish=False))
            builder.con.execute("CHECKPOINT")
        finally:
            builder.close()
        self.close()
        staging.replace(self.warehouse_path)
        self.warehouse_path.with_name(WAREHOUSE_FILE + ".wal").unlink(missing_ok=True)
        # The old deltas came from the old file; the rebuilt one may differ if extracts were removed.
        self.publish(consolidate=True)
        log.info("rebuilt %s from %d extracts", self.warehouse_path, len(results))
        return results

    # -- reading -------------------------------------------------------------------------------

    def recent_field_changes(self, org: str, sobject: str, limit: int = 10) -> list[dict[str, Any]]:
        """Return the newest field changes of one object, newest first, as plain dicts."""
        cursor = self.con.execute(
            "SELECT record_id, field, old_value, new_value, cause, detected_at, run_id, extract_id "
            "FROM main.field_changes WHERE org = ? AND object = ? "
            "ORDER BY extract_id DESC, record_id, field LIMIT ?",
            [org, sobject, limit],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def iter_extracts(data_root: Path) -> list[Path]:
    """Return every complete extract under ``data_root``, grouped by object, oldest first."""
    base = data_root / "extracts"
    if not base.is_dir():
        return []
    extracts: list[Path] = []
    for org_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for object_dir in sorted(p for p in org_dir.iterdir() if p.is_dir()):
            extracts.extend(list_extracts(data_root, org_dir.name, object_dir.name))
    return extracts
