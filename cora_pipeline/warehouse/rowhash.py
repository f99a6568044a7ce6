"""Row hashes: skip the records an extract did not change without comparing them field by field.

For each object the warehouse stores, beside the current table, ``cora_meta."<org>.<Object>"`` with one
row per current record: ``Id``, ``row_hash`` (DuckDB's 64-bit ``hash`` of every column but Id, in table
order) and ``row_id`` (the record's ``rowid`` in the current table). ``cora_meta.row_hash_signatures``
records the columns and types the hashes cover, so hashes computed over another column set are never
compared.

An extract's rows whose hash equals the stored one are unchanged, unless two different rows collide in
64 bits (a chance near 2^-64 per changed record). The others are candidates, compared field by field
with their old rows, which are fetched by ``row_id`` because that reads a few row groups instead of the
whole table. A row inserted by an open transaction has a temporary rowid until the commit, so hashes
are stored with a NULL ``row_id`` that the next extract fills in (:func:`resolve_row_ids`) before using
it. Row ids also move when DuckDB vacuums deleted rows, so every fetch is checked against the expected
Ids, and a mismatch falls back to fetching by Id and refreshes the stored row ids.
"""

# ruff: noqa: S608 -- SQL is assembled from identifiers passed through quote_ident; values travel as
# bound parameters.

import logging

import duckdb

from cora_pipeline.warehouse.sqltext import quote_ident

log = logging.getLogger(__name__)

# Part of every signature, so hash tables written in another layout are rebuilt, not misread.
LAYOUT = "v2"
SIGNATURES = "cora_meta.row_hash_signatures"


def hash_table(org: str, sobject: str) -> str:
    return f"cora_meta.{quote_ident(org + '.' + sobject)}"


def row_hash_sql(alias: str, columns: list[str]) -> str:
    if not columns:
        return "hash(NULL)"
    return "hash(" + ", ".join(f"{alias}.{quote_ident(c)}" for c in columns) + ")"


def signature(types: dict[str, str]) -> str:
    """Return the layout, hashed columns and their types, in table order; Id is never hashed."""
    return LAYOUT + "|" + ",".join(f"{name}:{kind}" for name, kind in types.items() if name != "Id")


def stored_signature(con: duckdb.DuckDBPyConnection, org: str, sobject: str) -> str | None:
    rows = con.execute(
        f"SELECT signature FROM {SIGNATURES} WHERE org = ? AND object = ?", [org, sobject]
    ).fetchall()
    return str(rows[0][0]) if rows else None


def find_candidates(
    con: duckdb.DuckDBPyConnection,
    hashes: str,
    columns: list[str],
    *,
    find_absent: bool,
) -> None:
    """Create ``x_candidates`` (new or changed extract rows) and ``x_absent`` from ``x_records``.

    One join finds changed and new records and, with ``find_absent`` (a full extract), the snapshot
    records the extract no longer returns. Both tables carry ``snapshot_row_id``, the stored row id.
    """
    join = "FULL JOIN" if find_absent else "LEFT JOIN"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE x_candidates AS
        SELECT n.*, h.Id AS snapshot_id, h.row_id AS snapshot_row_id FROM x_records n
        {join} {hashes} h ON h.Id = n.Id
        WHERE h.Id IS NULL OR n.Id IS NULL OR h.row_hash <> {row_hash_sql("n", columns)}
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE x_absent AS "
        "SELECT snapshot_id AS Id, snapshot_row_id FROM x_candidates WHERE Id IS NULL"
    )
    con.execute("DELETE FROM x_candidates WHERE Id IS NULL")


def fetch_old_rows(con: duckdb.DuckDBPyConnection, current: str, hashes: str) -> bool:
    """Create ``x_old``: the current rows of candidates, absent and deleted records.

    Returns False when the stored row ids no longer point at those records (after a vacuum), in
    which case ``x_old`` was fetched by Id instead and the row ids need refreshing.
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE x_expected AS
        SELECT snapshot_id AS Id, snapshot_row_id AS row_id FROM x_candidates
        WHERE snapshot_id IS NOT NULL
        UNION SELECT Id, snapshot_row_id FROM x_absent
        UNION SELECT d.Id, h.row_id FROM x_deleted d JOIN {hashes} h ON h.Id = d.Id
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE x_old AS
        SELECT o.* FROM {current} o WHERE o.rowid IN (SELECT row_id FROM x_expected)
        """
    )
    mismatches = con.execute(
        """
        SELECT count(*) FROM x_expected e FULL JOIN x_old o ON o.Id = e.Id
        WHERE e.Id IS NULL OR o.Id IS NULL
        """
    ).fetchall()
    if mismatches[0][0] == 0:
        return True
    log.warning(
        "stored row ids of %s no longer match %d records; reading them by Id and refreshing",
        current,
        mismatches[0][0],
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE x_old AS
        SELECT o.* FROM {current} o WHERE o.Id IN (SELECT Id FROM x_expected)
        """
    )
    return False


def update_hashes(
    con: duckdb.DuckDBPyConnection,
    org: str,
    sobject: str,
    current: str,
    columns: list[str],
    *,
    rebuild: bool,
) -> None:
    """Store the hash and row id of every current row written by this extract.

    ``x_new_rows`` and ``x_gone`` name the rows written and removed. With ``rebuild``, or when the
    current table's columns changed, every row is hashed again.
    """
    hashes = hash_table(org, sobject)
    types = {
        row[0]: row[1] for row in con.execute(f"DESCRIBE {current}").fetchall() if row[0] != "Id"
    }
    expected = signature(types)
    if not rebuild and stored_signature(con, org, sobject) == expected:
        con.execute(
            f"DELETE FROM {hashes} WHERE Id IN "
            "(SELECT Id FROM x_new_rows UNION ALL SELECT record_id FROM x_gone)"
        )
        con.execute(
            f"INSERT INTO {hashes} "
            f"SELECT r.Id, {row_hash_sql('r', columns)}, NULL FROM x_new_rows r"
        )
        return
    con.execute(
        f"CREATE OR REPLACE TABLE {hashes} AS "
        f"SELECT o.Id, {row_hash_sql('o', columns)} AS row_hash, CAST(NULL AS BIGINT) AS row_id "
        f"FROM {current} o"
    )
    con.execute(f"INSERT OR REPLACE INTO {SIGNATURES} VALUES (?, ?, ?)", [org, sobject, expected])


def resolve_row_ids(con: duckdb.DuckDBPyConnection, org: str, sobject: str) -> None:
    """Fill in the row ids left NULL by earlier transactions, whose rows have final rowids now."""
    hashes = hash_table(org, sobject)
    current = f"{quote_ident(org)}.{quote_ident(sobject)}"
    missing = con.execute(f"SELECT count(*) FROM {hashes} WHERE row_id IS NULL").fetchall()
    if not missing[0][0]:
        return
    con.execute(
        f"""
        UPDATE {hashes} AS h SET row_id = o.rowid
        FROM {current} o WHERE h.row_id IS NULL AND o.Id = h.Id
        """
    )


def forget_row_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Clear every stored row id after a vacuum moved the rows; the next extract resolves them."""
    for org, sobject in con.execute(f"SELECT org, object FROM {SIGNATURES}").fetchall():
        con.execute(f"UPDATE {hash_table(org, sobject)} SET row_id = NULL")
