"""Diff one extract against the object's snapshot and write every table it changes.

Everything here runs inside the caller's open transaction, so a failure or a killed process leaves no
trace. The steps, in order: load ``records.parquet`` into a temporary table, compare the field sets
(schema changes), diff the records against ``<org>.<Object>``, alter the tables for the new field set,
then write ``record_changes``, ``field_changes``, the current table, the history and ``sync_runs``.

Rules the diff follows:

- Audit fields (SystemModstamp, LastModifiedDate, LastModifiedById, LastViewedDate,
  LastReferencedDate) are never compared as fields. They decide the ``cause`` of each field change:
  ``edit`` when LastModifiedDate moved, and ``system`` when only SystemModstamp moved. When neither
  moved, the cause is ``formula`` for a calculated field and ``unknown`` for any other field: on objects
  without those audit fields, or for a value that changed while its field was hidden or removed.
- IsDeleted is not compared as a field either: its moves are the ``deleted`` and ``undeleted`` record
  changes. Any other field that changed with it is listed in that record change's ``changed_fields``.
- Two values of the same type compare as typed values, so ``1`` and ``1.0`` of a decimal field are equal.
  When a field was retyped, the old and new values compare by their canonical text.
- A full extract with status ``succeeded`` proves absence: a snapshot record missing from it was
  hard-deleted. Incremental and formula extracts prove nothing by absence; ``deleted.parquet`` lists the
  hard deletes they found.
- A formula extract only updates the calculated fields of records already in the snapshot.
"""

# ruff: noqa: S608 -- SQL is assembled from identifiers passed through quote_ident and from
# literals passed through quote_literal; values travel as bound parameters.

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from cora_pipeline.errors import CoraError, Terminal
from cora_pipeline.extract.files import Manifest
from cora_pipeline.warehouse import rowhash
from cora_pipeline.warehouse.fieldplan import (
    AUDIT_FIELDS,
    FieldPlan,
    FieldPlanner,
    SchemaChange,
)
from cora_pipeline.warehouse.sqltext import canonical_text, quote_ident, quote_literal

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("valid_from", "valid_to", "is_deleted", "extract_id")
CHANGE_STRUCT = "STRUCT(field VARCHAR, old VARCHAR, new VARCHAR, calculated BOOLEAN)[]"
TEMP_TABLES = (
    "x_deleted",
    "x_absent",
    "x_candidates",
    "x_expected",
    "x_unique",
    "x_old",
    "x_diff",
    "x_gone",
    "x_new_rows",
    "x_versions",
    "x_kept",
)
# A single-row-group extract up to this uncompressed size is decoded by pyarrow in memory (see
# ExtractApplier._load_records).
IN_MEMORY_PARQUET_BYTES = 1 << 30


class InvalidExtractError(CoraError, Terminal, ValueError):
    """An extract directory lacks something every extract must have."""


@dataclass
class ApplyResult:
    """Counts of the changes one extract made, or made before when ``already_applied`` is true."""

    org: str
    object: str
    extract_id: str
    run_id: str | None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    undeleted: int = 0
    field_changes: int = 0
    schema_changes: int = 0
    already_applied: bool = False
    current_rows: int = 0
    baseline: bool = False


def parse_timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fetch_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: Any = None
) -> tuple[Any, ...] | None:
    """Return the first row of a query after reading its whole result.

    DuckDB 2.0 rejects some calls (``register`` among them) while a result is partly fetched, which
    ``fetchone`` leaves behind.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = fetch_row(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table],
    )
    return bool(row and row[0])


def column_types(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {relation}").fetchall()}


def as_of_macro_sql(macro: str, history: str) -> str:
    """Return the DDL of a table macro listing the records live at ``at_time``, as they were then.

    A version is live at ``at_time`` when ``valid_from <= at_time < valid_to`` (an open ``valid_to`` is
    NULL) and it is not a deleted version.
    """
    return (
        f"CREATE OR REPLACE MACRO {macro}(at_time) AS TABLE "
        f"SELECT * EXCLUDE ({', '.join(HISTORY_COLUMNS)}) FROM {history} "
        "WHERE valid_from <= at_time AND (valid_to IS NULL OR valid_to > at_time) "
        "AND NOT is_deleted"
    )


class ExtractApplier:
    """Apply one extract inside an open transaction; :meth:`run` returns what it changed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, extract_dir: Path, manifest: Manifest):
        self.con = con
        self.extract_dir = extract_dir
        self.m = manifest
        self.org = manifest.org
        self.sobject = manifest.object
        self.current = f"{quote_ident(self.org)}.{quote_ident(self.sobject)}"
        self.history = f"{quote_ident(self.org)}.{quote_ident(self.sobject + '_history')}"
        self.rebuild_row_hashes = False
        self.registered = False
        # What run() wrote to the current table: "nothing", "rows" (those in x_new_rows and x_gone)
        # or "everything" (a baseline, or every row after a schema change).
        self.written = "nothing"
        self.detected_at = parse_timestamp(manifest.finished_at)
        self.result = ApplyResult(
            org=self.org,
            object=self.sobject,
            extract_id=manifest.extract_id,
            run_id=manifest.run_id,
        )

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        """Apply the extract; the caller drops the temporary tables with :meth:`drop_temp_tables`.

        The temporary tables stay until then because ``x_new_rows`` and ``x_gone`` tell the
        analyst export which rows this extract wrote (see :attr:`written`).
        """
        self._load_records()
        has_snapshot = table_exists(self.con, self.org, self.sobject)
        if not has_snapshot and self.m.mode == "formula":
            # A formula extract of an object never loaded has nothing to compare with, so it is only
            # recorded. The next full or incremental extract brings the formula values too.
            self.written = "nothing"
        elif not has_snapshot:
            self._load_baseline()
            self.written = "everything"
        else:
            plan = self._apply_diff()
            self.written = "everything" if plan.write_all else "rows"
        self._insert_sync_run()
        return self.result

    # -- loading -----------------------------------------------------------------------------

    def _load_records(self) -> None:
        """Expose ``records.parquet`` as the relation ``x_records``.

        DuckDB reads Parquet one row group per thread. Extraction writes one row group per page of
        records, so DuckDB normally streams the file on every core. A file of a single large row
        group (as ``pyarrow.parquet.write_table`` writes up to 1Mi rows) would read on one core, so
        pyarrow, which decodes columns in parallel, reads it into memory instead, when it is at most
        ``IN_MEMORY_PARQUET_BYTES`` uncompressed.
        """
        path = self.extract_dir / "records.parquet"
        metadata = pq.ParquetFile(path).metadata
        uncompressed = sum(
            metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
        )
        if metadata.num_row_groups == 1 and uncompressed <= IN_MEMORY_PARQUET_BYTES:
            self.con.register("x_records", pq.read_table(path))
            self.registered = True
        else:
            self.con.execute(
                "CREATE OR REPLACE TEMP VIEW x_records AS "
                f"SELECT * FROM read_parquet({quote_literal(str(path))})"
            )
        self.new_types = column_types(self.con, "x_records")
        if "Id" not in self.new_types:
            raise InvalidExtractError(
                f"extract {self.extract_dir} has no Id column; re-extract the object with Id selected"
            )
        deleted_path = self.extract_dir / "deleted.parquet"
        if deleted_path.exists():
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE x_deleted AS SELECT Id, "
                f"CAST(deleted_at AS TIMESTAMPTZ) AS deleted_at "
                f"FROM read_parquet({quote_literal(str(deleted_path))})"
            )
        else:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE x_deleted (Id VARCHAR, deleted_at TIMESTAMPTZ)"
            )

    def _deduplicated(self, relation: str, unique_table: str) -> str:
        """Return ``relation``, or a table of its rows with one row per Id when Ids repeat.

        Pages of a query whose records move while it runs can return a record twice. The copy with
        the latest SystemModstamp wins, and a row hash breaks ties so a rebuild picks the same one.
        """
        row = fetch_row(self.con, f"SELECT count(*) - count(DISTINCT Id) FROM {relation}")
        repeated = row[0] if row else 0
        if not repeated:
            return relation
        log.warning(
            "extract %s of %s.%s returns %d records more than once; keeping the latest copy",
            self.m.extract_id,
            self.org,
            self.sobject,
            repeated,
        )
        columns = [c for c in self.new_types if c != "Id"]
        latest = "SystemModstamp DESC NULLS LAST, " if "SystemModstamp" in self.new_types else ""
        tie_break = rowhash.row_hash_sql("r", columns)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {unique_table} AS
            SELECT * FROM {relation} r
            QUALIFY row_number() OVER (PARTITION BY Id ORDER BY {latest}{tie_break}) = 1
            """
        )
        return unique_table

    def drop_temp_tables(self) -> None:
        if self.registered:
            self.con.unregister("x_records")
        else:
            self.con.execute("DROP VIEW IF EXISTS temp.x_records")
        for name in TEMP_TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def _write_registry(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.con.executemany(
                "INSERT OR REPLACE INTO cora_meta.fields VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    # -- baseline ----------------------------------------------------------------------------

    def _load_baseline(self) -> None:
        """Load the first extract of an object as its snapshot without emitting record changes.

        Every record of a first extract would otherwise be reported as created, drowning the real
        changes; ``sync_runs.baseline`` marks the run instead.
        """
        columns = list(self.new_types)
        select = ", ".join(quote_ident(c) for c in columns)
        modstamp = (
            "SystemModstamp" if "SystemModstamp" in self.new_types else "CAST(NULL AS TIMESTAMPTZ)"
        )
        is_deleted = "coalesce(IsDeleted, false)" if "IsDeleted" in self.new_types else "false"
        records = self._deduplicated("x_records", "x_unique")
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.org)}")
        self.con.execute(f"CREATE TABLE {self.current} AS SELECT {select} FROM {records}")
        self.con.execute(
            f"CREATE TABLE {self.history} AS SELECT {select}, "
            f"coalesce({modstamp}, $detected) AS valid_from, "
            "CAST(NULL AS TIMESTAMPTZ) AS valid_to, "
            f"{is_deleted} AS is_deleted, "
            "CAST($extract_id AS VARCHAR) AS extract_id "
            f"FROM {records}",
            {"detected": self.detected_at, "extract_id": self.m.extract_id},
        )
        planner = FieldPlanner(self.con, self.m, self.new_types, {})
        self._write_registry([planner.registry_row(c, "active", None) for c in columns])
        self._create_as_of_macro()
        self._write_row_hashes(rebuild=True)
        self.result.baseline = True

    def _create_as_of_macro(self) -> None:
        macro = f"{quote_ident(self.org)}.{quote_ident(self.sobject + '_as_of')}"
        self.con.execute(as_of_macro_sql(macro, self.history))

    # -- diff --------------------------------------------------------------------------------

    def _apply_diff(self) -> FieldPlan:
        self.old_types = column_types(self.con, self.current)
        plan = FieldPlanner(self.con, self.m, self.new_types, self.old_types).plan()
        if self._can_prefilter(plan):
            new_rel, old_rel = self._prefilter_by_row_hash()
        else:
            # Every record is compared field by field: schema changes, a field missing from the
            # extract and formula extracts change the set of columns a row hash would cover.
            self._find_absent()
            new_rel, old_rel = self._deduplicated("x_records", "x_unique"), self.current
        self._compute_diff(plan, new_rel, old_rel)
        self._compute_gone(old_rel)
        self._alter_tables(plan)
        self._write_changes(plan)
        self._collect_new_rows(new_rel, old_rel)
        self._write_history(old_rel)
        self._write_current()
        self._write_row_hashes()
        self._write_registry(plan.registry_rows)
        self._count_deleted_rows()
        return plan

    def _both(self, name: str) -> bool:
        return name in self.new_types and name in self.old_types

    def _compute_diff(self, plan: FieldPlan, new_rel: str, old_rel: str) -> None:
        """Create ``x_diff``: one row per extract record that must be written, with its changes.

        ``new_rel`` contains extract rows and ``old_rel`` the snapshot rows to compare them with.
        """
        change_items = []
        conditions = []
        needs_first_seen = False
        for f in plan.compared:
            column = quote_ident(f.name)
            old, new = f"o.{column}", f"n.{column}"
            if f.old_type == f.new_type:
                distinct = f"{old} IS DISTINCT FROM {new}"
            else:
                distinct = (
                    f"{canonical_text(old, f.old_type)} IS DISTINCT FROM "
                    f"{canonical_text(new, f.new_type)}"
                )
            if f.gone_since is not None:
                # Records first seen while the field was gone have no known old value for it.
                needs_first_seen = True
                distinct = (
                    f"({distinct} AND coalesce(fs.first_extract < {quote_literal(f.gone_since)}, "
                    "false))"
                )
            conditions.append(distinct)
            calculated = "true" if f.calculated else "false"
            change_items.append(
                f"CASE WHEN {distinct} THEN {{'field': {quote_literal(f.name)}, "
                f"'old': {canonical_text(old, f.old_type)}, "
                f"'new': {canonical_text(new, f.new_type)}, 'calculated': {calculated}}} END"
            )
        for name in (*AUDIT_FIELDS, "IsDeleted"):
            if self._both(name):
                conditions.append(f"o.{quote_ident(name)} IS DISTINCT FROM n.{quote_ident(name)}")

        if change_items:
            changes = (
                f"CAST(list_filter([{', '.join(change_items)}], lambda c: c IS NOT NULL) "
                f"AS {CHANGE_STRUCT})"
            )
        else:
            changes = f"CAST([] AS {CHANGE_STRUCT})"
        old_deleted = "coalesce(o.IsDeleted, false)" if "IsDeleted" in self.old_types else "false"
        new_deleted = (
            "coalesce(n.IsDeleted, false)" if "IsDeleted" in self.new_types else old_deleted
        )
        lmd_moved = (
            "o.LastModifiedDate IS DISTINCT FROM n.LastModifiedDate"
            if self._both("LastModifiedDate")
            else "false"
        )
        sms_moved = (
            "o.SystemModstamp IS DISTINCT FROM n.SystemModstamp"
            if self._both("SystemModstamp")
            else "false"
        )
        if "SystemModstamp" in self.new_types and "SystemModstamp" in self.old_types:
            modstamp = "coalesce(n.SystemModstamp, o.SystemModstamp)"
        elif "SystemModstamp" in self.new_types:
            modstamp = "n.SystemModstamp"
        elif "SystemModstamp" in self.old_types:
            modstamp = "o.SystemModstamp"
        else:
            modstamp = "CAST(NULL AS TIMESTAMPTZ)"

        if self.m.mode == "formula":
            join = "JOIN"
            where = " OR ".join(conditions) if conditions else "false"
        else:
            join = "LEFT JOIN"
            where = " OR ".join(["o.Id IS NULL", *conditions])
        if plan.write_all and self.m.mode != "formula":
            where = "true"
        first_seen = ""
        if needs_first_seen:
            first_seen = (
                f"LEFT JOIN (SELECT Id, min(extract_id) AS first_extract FROM {self.history} "
                "GROUP BY Id) fs ON fs.Id = n.Id"
            )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE x_diff AS
            SELECT *,
                CASE
                    WHEN is_new THEN 'created'
                    WHEN new_deleted AND NOT old_deleted THEN 'deleted'
                    WHEN old_deleted AND NOT new_deleted THEN 'undeleted'
                    WHEN len(changes) > 0 THEN 'updated'
                END AS change_type
            FROM (
                SELECT
                    n.Id AS record_id,
                    o.Id IS NULL AS is_new,
                    {old_deleted} AS old_deleted,
                    {new_deleted} AS new_deleted,
                    {lmd_moved} AS lmd_moved,
                    {sms_moved} AS sms_moved,
                    {modstamp} AS modstamp,
                    CASE WHEN o.Id IS NULL THEN CAST([] AS {CHANGE_STRUCT}) ELSE {changes} END
                        AS changes
                FROM {new_rel} n
                {join} {old_rel} o ON o.Id = n.Id
                {first_seen}
                WHERE {where}
            )
            """
        )
        # A record that comes back after a hard delete left a tombstone in the history.
        self.con.execute(
            f"UPDATE x_diff SET change_type = 'undeleted' WHERE is_new AND record_id IN "
            f"(SELECT Id FROM {self.history})"
        )

    def _proves_absence(self) -> bool:
        return self.m.mode == "full" and self.m.status == "succeeded"

    def _find_absent(self) -> None:
        """Create ``x_absent``: snapshot records that a successful full extract no longer returns."""
        if self._proves_absence():
            self.con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE x_absent AS
                SELECT o.Id FROM {self.current} o
                WHERE NOT EXISTS (SELECT 1 FROM x_records n WHERE n.Id = o.Id)
                """
            )
        else:
            self.con.execute("CREATE OR REPLACE TEMP TABLE x_absent (Id VARCHAR)")

    def _compute_gone(self, old_rel: str) -> None:
        """Create ``x_gone``: snapshot records hard-deleted according to this extract."""
        was_deleted = "coalesce(o.IsDeleted, false)" if "IsDeleted" in self.old_types else "false"
        # NOTE: a record listed in deleted.parquet but also returned in records.parquet is kept:
        # a hard-deleted record is no longer returned by queryAll, so the record list is newer.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE x_gone AS
            SELECT g.Id AS record_id, max(g.deleted_at) AS deleted_at, any_value({was_deleted})
                AS was_deleted
            FROM (
                SELECT d.Id, d.deleted_at FROM x_deleted d
                WHERE NOT EXISTS (SELECT 1 FROM x_records n WHERE n.Id = d.Id)
                UNION ALL SELECT Id, CAST(NULL AS TIMESTAMPTZ) FROM x_absent
            ) g
            JOIN {old_rel} o ON o.Id = g.Id
            GROUP BY g.Id
            """
        )

    def _alter_tables(self, plan: FieldPlan) -> None:
        for table in (self.current, self.history):
            for name, duckdb_type in plan.add_columns:
                self.con.execute(
                    f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {duckdb_type}"
                )
            for name, duckdb_type in plan.retype_columns:
                # NOTE: a value that does not convert to the new type (text to number, say) becomes
                # NULL in the current table and in history. field_changes keeps its old text.
                column = quote_ident(name)
                self.con.execute(
                    f"ALTER TABLE {table} ALTER COLUMN {column} SET DATA TYPE {duckdb_type} "
                    f"USING TRY_CAST({column} AS {duckdb_type})"
                )
        if plan.add_columns:
            self._create_as_of_macro()

    def _write_changes(self, plan: FieldPlan) -> None:
        params = {
            "org": self.org,
            "object": self.sobject,
            "run_id": self.m.run_id,
            "extract_id": self.m.extract_id,
            "detected": self.detected_at,
        }
        self._insert_record_changes(params)
        self._insert_field_changes(params)
        self._insert_schema_changes(plan.schema_changes)
        self._count_changes()
        self.result.schema_changes = len(plan.schema_changes)

    def _insert_record_changes(self, params: dict[str, Any]) -> None:
        self.con.execute(
            """
            INSERT INTO main.record_changes
            SELECT $org, $object, record_id, change_type,
                list_transform(changes, lambda c: c.field), $run_id, $extract_id, $detected, modstamp
            FROM x_diff WHERE change_type IS NOT NULL
            UNION ALL
            SELECT $org, $object, record_id, 'deleted', CAST([] AS VARCHAR[]), $run_id, $extract_id,
                $detected, deleted_at
            FROM x_gone WHERE NOT was_deleted
            """,
            params,
        )

    def _insert_field_changes(self, params: dict[str, Any]) -> None:
        self.con.execute(
            """
            INSERT INTO main.field_changes
            SELECT $org, $object, record_id, c.field, c.old, c.new,
                CASE
                    WHEN lmd_moved THEN 'edit'
                    WHEN sms_moved THEN 'system'
                    WHEN c.calculated THEN 'formula'
                    ELSE 'unknown'
                END,
                $run_id, $extract_id, $detected, modstamp
            FROM (SELECT *, unnest(changes) AS c FROM x_diff WHERE NOT is_new)
            """,
            params,
        )

    def _insert_schema_changes(self, changes: list[SchemaChange]) -> None:
        if not changes:
            return
        self.con.executemany(
            "INSERT INTO main.schema_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    self.org,
                    self.sobject,
                    change.field,
                    change.change,
                    change.old_type,
                    change.new_type,
                    self.m.run_id,
                    self.m.extract_id,
                    self.detected_at,
                )
                for change in changes
            ],
        )

    def _count_changes(self) -> None:
        counts = fetch_row(
            self.con,
            """
            SELECT
                count(*) FILTER (change_type = 'created'),
                count(*) FILTER (change_type = 'updated'),
                count(*) FILTER (change_type = 'deleted')
                    + (SELECT count(*) FROM x_gone WHERE NOT was_deleted),
                count(*) FILTER (change_type = 'undeleted'),
                coalesce(sum(len(changes)) FILTER (NOT is_new), 0)
            FROM x_diff
            """,
        )
        assert counts is not None
        (
            self.result.created,
            self.result.updated,
            self.result.deleted,
            self.result.undeleted,
            self.result.field_changes,
        ) = (int(value) for value in counts)

    def _collect_new_rows(self, new_rel: str, old_rel: str) -> None:
        """Create ``x_new_rows``: the full current-table row of every record in ``x_diff``.

        Columns the extract lacks (a hidden field, or every non-calculated field of a formula
        extract) keep their snapshot value.
        """
        columns = list(column_types(self.con, self.current))
        select = ", ".join(
            f"{'n' if c in self.new_types else 'o'}.{quote_ident(c)}" for c in columns
        )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE x_new_rows AS
            SELECT {select}
            FROM x_diff d
            JOIN {new_rel} n ON n.Id = d.record_id
            LEFT JOIN {old_rel} o ON o.Id = d.record_id
            """
        )

    def _write_current(self) -> None:
        # DELETE and INSERT of whole rows: DuckDB's UPDATE of many columns is several times slower.
        self.con.execute(
            f"DELETE FROM {self.current} WHERE Id IN "
            "(SELECT Id FROM x_new_rows UNION ALL SELECT record_id FROM x_gone)"
        )
        self.con.execute(f"INSERT INTO {self.current} BY NAME SELECT * FROM x_new_rows")

    def _write_history(self, old_rel: str) -> None:
        columns = list(column_types(self.con, self.current))
        names = ", ".join(quote_ident(c) for c in columns)
        is_deleted = "coalesce(r.IsDeleted, false)" if "IsDeleted" in columns else "false"

        # A version starts at the new SystemModstamp when SystemModstamp moved. A change that did
        # not move it (a formula recomputation) starts when it was detected. A version never starts
        # before the one it replaces.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE x_versions AS
            SELECT d.record_id,
                greatest(
                    CASE WHEN d.is_new OR d.sms_moved THEN coalesce(d.modstamp, $detected)
                        ELSE $detected END,
                    h.valid_from
                ) AS valid_from,
                false AS gone
            FROM x_diff d
            LEFT JOIN {self.history} h ON h.Id = d.record_id AND h.valid_to IS NULL
            WHERE d.change_type IS NOT NULL
            UNION ALL
            SELECT g.record_id, greatest(coalesce(g.deleted_at, $detected), h.valid_from), true
            FROM x_gone g
            JOIN {self.history} h ON h.Id = g.record_id AND h.valid_to IS NULL
            WHERE NOT g.was_deleted
            """,
            {"detected": self.detected_at},
        )
        params = {"extract_id": self.m.extract_id}
        # A tombstone copies the last values of a hard-deleted record, which the open version and
        # the snapshot row both hold.
        self.con.execute(
            f"""
            INSERT INTO {self.history} ({names}, valid_from, valid_to, is_deleted, extract_id)
            SELECT {", ".join(f"o.{quote_ident(c)}" for c in columns)}, v.valid_from, NULL, true,
                $extract_id
            FROM {old_rel} o JOIN x_versions v ON v.record_id = o.Id AND v.gone
            """,
            params,
        )
        self.con.execute(
            f"""
            UPDATE {self.history} AS h SET valid_to = v.valid_from
            FROM x_versions v
            WHERE h.Id = v.record_id AND h.valid_to IS NULL AND h.extract_id <> $extract_id
            """,
            params,
        )
        self.con.execute(
            f"""
            INSERT INTO {self.history} ({names}, valid_from, valid_to, is_deleted, extract_id)
            SELECT r.*, v.valid_from, NULL, {is_deleted}, $extract_id
            FROM x_new_rows r JOIN x_versions v ON v.record_id = r.Id AND NOT v.gone
            """,
            params,
        )
        # Rows written without a record change (audit fields moved, a field was added or came back)
        # replace the open version and keep its start, so it always matches the current table.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE x_kept AS
            SELECT h.Id, h.valid_from, h.is_deleted, h.extract_id
            FROM {self.history} h
            JOIN x_diff d ON d.record_id = h.Id AND d.change_type IS NULL
            WHERE h.valid_to IS NULL
            """
        )
        self.con.execute(
            f"DELETE FROM {self.history} WHERE valid_to IS NULL AND Id IN (SELECT Id FROM x_kept)"
        )
        self.con.execute(
            f"""
            INSERT INTO {self.history} ({names}, valid_from, valid_to, is_deleted, extract_id)
            SELECT r.*, k.valid_from, NULL, k.is_deleted, k.extract_id
            FROM x_new_rows r JOIN x_kept k ON k.Id = r.Id
            """
        )

    def _count_deleted_rows(self) -> None:
        """Add the rows this extract deleted from the current, history and row hash tables."""
        self.con.execute(
            """
            UPDATE cora_meta.vacuum_state SET deleted_rows = deleted_rows
                + 2 * (SELECT count(*) FROM x_diff WHERE NOT is_new)
                + 2 * (SELECT count(*) FROM x_gone)
                + (SELECT count(*) FROM x_kept)
            """
        )

    # -- row hashes --------------------------------------------------------------------------

    def _can_prefilter(self, plan: FieldPlan) -> bool:
        if self.m.mode == "formula" or plan.write_all or plan.add_columns or plan.retype_columns:
            return False
        if set(self.new_types) != set(self.old_types):
            return False
        stored = rowhash.stored_signature(self.con, self.org, self.sobject)
        return stored == rowhash.signature(self.old_types)

    def _prefilter_by_row_hash(self) -> tuple[str, str]:
        """Keep only extract rows whose row hash differs from the stored one, and their old rows.

        See :mod:`cora_pipeline.warehouse.rowhash`; every candidate is then compared field by field.
        """
        hashes = rowhash.hash_table(self.org, self.sobject)
        columns = [c for c in self.old_types if c != "Id"]
        rowhash.resolve_row_ids(self.con, self.org, self.sobject)
        rowhash.find_candidates(self.con, hashes, columns, find_absent=self._proves_absence())
        if not rowhash.fetch_old_rows(self.con, self.current, hashes):
            self.rebuild_row_hashes = True
        self.con.execute("ALTER TABLE x_candidates DROP COLUMN snapshot_id")
        self.con.execute("ALTER TABLE x_candidates DROP COLUMN snapshot_row_id")
        return self._deduplicated("x_candidates", "x_unique"), "x_old"

    def _write_row_hashes(self, rebuild: bool = False) -> None:
        columns = [c for c in column_types(self.con, self.current) if c != "Id"]
        rowhash.update_hashes(
            self.con,
            self.org,
            self.sobject,
            self.current,
            columns,
            rebuild=rebuild or self.rebuild_row_hashes,
        )

    # -- sync_runs ---------------------------------------------------------------------------

    def _insert_sync_run(self) -> None:
        if table_exists(self.con, self.org, self.sobject):
            row = fetch_row(self.con, f"SELECT count(*) FROM {self.current}")
            self.result.current_rows = row[0] if row else 0
        m = self.m
        self.con.execute(
            "INSERT INTO main.sync_runs VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                m.run_id,
                m.org,
                m.object,
                m.extract_id,
                m.mode,
                self.result.baseline,
                parse_timestamp(m.started_at),
                self.detected_at,
                m.status,
                m.records,
                m.deleted,
                m.api_calls,
                m.api_used,
                m.api_max,
                m.watermark_field,
                parse_timestamp(m.watermark_from),
                parse_timestamp(m.watermark_to),
                m.error,
                self.result.created,
                self.result.updated,
                self.result.deleted,
                self.result.undeleted,
                self.result.field_changes,
                self.result.schema_changes,
                self.result.current_rows,
            ],
        )


def result_from_sync_run(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> ApplyResult | None:
    """Return the result recorded for an extract that was applied before, or None."""
    row = fetch_row(
        con,
        "SELECT run_id, created, updated, deleted, undeleted, field_changes, schema_changes, "
        "current_rows, baseline FROM main.sync_runs WHERE org = ? AND object = ? AND extract_id = ?",
        [manifest.org, manifest.object, manifest.extract_id],
    )
    if row is None:
        return None
    return ApplyResult(
        org=manifest.org,
        object=manifest.object,
        extract_id=manifest.extract_id,
        run_id=row[0],
        created=row[1],
        updated=row[2],
        deleted=row[3],
        undeleted=row[4],
        field_changes=row[5],
        schema_changes=row[6],
        already_applied=True,
        current_rows=row[7],
        baseline=row[8],
    )
