"""DDL of the cross-org tables in ``main`` and the warehouse's own bookkeeping in ``cora_meta``.

Every timestamp column is ``TIMESTAMP WITH TIME ZONE`` (DuckDB's ``TIMESTAMPTZ``) holding UTC instants;
the warehouse sets the connection time zone to UTC, so they also print in UTC.
"""

import duckdb

CHANGE_TABLES = ("sync_runs", "record_changes", "field_changes", "schema_changes")

DDL = [
    """
    CREATE TABLE IF NOT EXISTS main.sync_runs (
        run_id VARCHAR,
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        extract_id VARCHAR NOT NULL,
        mode VARCHAR NOT NULL,
        baseline BOOLEAN NOT NULL,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,
        records_fetched BIGINT NOT NULL,
        deleted_fetched BIGINT NOT NULL,
        api_calls BIGINT,
        api_used BIGINT,
        api_max BIGINT,
        watermark_field VARCHAR,
        watermark_from TIMESTAMPTZ,
        watermark TIMESTAMPTZ,
        error VARCHAR,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        deleted BIGINT NOT NULL,
        undeleted BIGINT NOT NULL,
        field_changes BIGINT NOT NULL,
        schema_changes BIGINT NOT NULL,
        current_rows BIGINT NOT NULL,
        PRIMARY KEY (org, object, extract_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS main.record_changes (
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        change_type VARCHAR NOT NULL,
        changed_fields VARCHAR[] NOT NULL,
        run_id VARCHAR,
        extract_id VARCHAR NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL,
        modstamp TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS main.field_changes (
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        field VARCHAR NOT NULL,
        old_value VARCHAR,
        new_value VARCHAR,
        cause VARCHAR NOT NULL,
        run_id VARCHAR,
        extract_id VARCHAR NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL,
        modstamp TIMESTAMPTZ
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS main.schema_changes (
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        field VARCHAR NOT NULL,
        change VARCHAR NOT NULL,
        old_type VARCHAR,
        new_type VARCHAR,
        run_id VARCHAR,
        extract_id VARCHAR NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL
    )
    """,
    "CREATE SCHEMA IF NOT EXISTS cora_meta",
    # One row per field the warehouse has seen on an object. ``state`` is active, hidden or removed;
    # ``gone_since`` is the extract that first lacked a hidden or removed field, so a field that comes
    # back is not compared on records first seen while it was gone.
    """
    CREATE TABLE IF NOT EXISTS cora_meta.fields (
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        field VARCHAR NOT NULL,
        sf_type VARCHAR NOT NULL,
        arrow_type VARCHAR NOT NULL,
        duckdb_type VARCHAR NOT NULL,
        calculated BOOLEAN NOT NULL,
        state VARCHAR NOT NULL,
        gone_since VARCHAR,
        PRIMARY KEY (org, object, field)
    )
    """,
    # Each object's table cora_meta."<org>.<Object>" stores (Id, row_hash): a hash of every column
    # but Id of each current row, in the column order and types recorded here.
    """
    CREATE TABLE IF NOT EXISTS cora_meta.row_hash_signatures (
        org VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        signature VARCHAR NOT NULL,
        PRIMARY KEY (org, object)
    )
    """,
    # Rows deleted (and replaced) since DuckDB last vacuumed the tables; see Warehouse.compact.
    "CREATE TABLE IF NOT EXISTS cora_meta.vacuum_state (deleted_rows BIGINT NOT NULL)",
    """
    INSERT INTO cora_meta.vacuum_state
    SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM cora_meta.vacuum_state)
    """,
]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)
