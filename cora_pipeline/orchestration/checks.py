"""Asset check logic as plain functions over extract files and warehouse row counts.

The Dagster side (``assets.py``) turns each :class:`CheckOutcome` into an ``AssetCheckResult``.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from cora_pipeline.extract.files import read_manifest

VALID_STATUSES = ("succeeded", "stopped_budget")


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def validate_extract(extract_dir: Path) -> CheckOutcome:
    """Check that an extract can be diffed: a readable manifest, a known status, a records file
    whose row count and columns match the manifest, and an ``Id`` on every row."""
    name = extract_dir.name
    try:
        manifest = read_manifest(extract_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return CheckOutcome(False, f"extract {name}: the manifest cannot be read: {exc}")
    if manifest.status not in VALID_STATUSES:
        return CheckOutcome(
            False, f"extract {name}: status {manifest.status!r} is not one of {VALID_STATUSES}"
        )

    records_path = extract_dir / "records.parquet"
    try:
        parquet = pq.ParquetFile(records_path)
    except (OSError, ValueError) as exc:
        return CheckOutcome(False, f"extract {name}: {records_path} cannot be read: {exc}")

    rows = parquet.metadata.num_rows
    columns = set(parquet.schema_arrow.names)
    expected = {f.name for f in manifest.fields}
    metadata: dict[str, Any] = {"extract_id": manifest.extract_id, "rows": rows}
    if rows != manifest.records:
        return CheckOutcome(
            False,
            f"extract {name}: records.parquet has {rows} rows but the manifest says "
            f"{manifest.records}",
            metadata,
        )
    if expected and columns != expected:
        metadata["missing_columns"] = ", ".join(sorted(expected - columns)) or "none"
        metadata["unexpected_columns"] = ", ".join(sorted(columns - expected)) or "none"
        return CheckOutcome(
            False, f"extract {name}: the records file's columns differ from the manifest", metadata
        )

    if rows and "Id" not in columns:
        return CheckOutcome(False, f"extract {name}: records.parquet has no Id column", metadata)
    if rows:
        nulls = parquet.read(columns=["Id"]).column("Id").null_count
        if nulls:
            metadata["null_ids"] = nulls
            return CheckOutcome(False, f"extract {name}: {nulls} rows have no Id", metadata)
    return CheckOutcome(True, f"extract {name} is complete and consistent", metadata)


def unique_ids(extract_dir: Path) -> CheckOutcome:
    """Check that no ``Id`` appears twice in an extract's records file."""
    records_path = extract_dir / "records.parquet"
    try:
        table = pq.read_table(records_path, columns=["Id"])
    except (OSError, ValueError, KeyError) as exc:
        return CheckOutcome(False, f"extract {extract_dir.name}: Ids cannot be read: {exc}")
    ids = table.column("Id")
    distinct = pc.count_distinct(ids, mode="only_valid").as_py()
    valid = len(ids) - ids.null_count
    duplicates = valid - distinct
    metadata: dict[str, Any] = {"rows": len(ids), "distinct_ids": distinct}
    if duplicates:
        counts = pc.value_counts(ids).to_pylist()
        repeated = sorted(c["values"] for c in counts if c["counts"] > 1 and c["values"])
        metadata["duplicate_ids"] = ", ".join(repeated[:10])
        return CheckOutcome(
            False,
            f"extract {extract_dir.name}: {duplicates} rows repeat an Id already in the extract",
            metadata,
        )
    return CheckOutcome(True, f"extract {extract_dir.name}: every Id is unique", metadata)


def reconcile_row_count(warehouse_rows: int, salesforce_count: int) -> CheckOutcome:
    """Compare the live rows of an object in the warehouse with ``SELECT COUNT()`` in Salesforce."""
    difference = warehouse_rows - salesforce_count
    metadata = {
        "warehouse_rows": warehouse_rows,
        "salesforce_count": salesforce_count,
        "difference": difference,
    }
    if difference:
        return CheckOutcome(
            False,
            f"the warehouse has {warehouse_rows} live records, Salesforce COUNT() returned "
            f"{salesforce_count}; records created or deleted since the extract also cause this, "
            f"so a difference that persists over several runs points at missed changes",
            metadata,
        )
    return CheckOutcome(
        True, f"the warehouse and Salesforce COUNT() agree on {warehouse_rows} records", metadata
    )
