"""Assets per org and object: ``salesforce/<org>/<Object>`` extracts and ``warehouse/<org>/<Object>``.

The asset functions only read the run context and hand plain values to the extract and warehouse code,
which knows nothing of Dagster. Numbers that describe a materialization go into its metadata.
"""

import time
from typing import Any

import dagster as dg

from cora_pipeline.config import ObjectConfig, OrgConfig
from cora_pipeline.extract.extractor import extract_object
from cora_pipeline.extract.files import list_extracts, read_manifest
from cora_pipeline.orchestration.resources import CoraResource

# Every asset that writes the DuckDB warehouse runs in this pool, whose limit is 1 in
# dagster_home/dagster.yaml: DuckDB allows one writer process per file.
WAREHOUSE_POOL = "cora_warehouse"
OWNERS = ["team:data-engineering"]


def extract_key(org: str, sobject: str) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", org, sobject])


def warehouse_key(org: str, sobject: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", org, sobject])


def build_object_assets(org: OrgConfig, obj: ObjectConfig) -> list[dg.AssetsDefinition]:
    """Build the extract asset and the warehouse asset of one object of one org."""

    @dg.asset(
        key=extract_key(org.name, obj.name),
        group_name=org.name,
        kinds={"salesforce", "parquet"},
        owners=OWNERS,
        tags={"cora/org": org.name},
        description=(
            f"{obj.name} records of Salesforce org `{org.name}`, extracted through the REST API "
            f"(incrementally by SystemModstamp after the first run) into an immutable Parquet file."
        ),
    )
    def extract(context: dg.AssetExecutionContext, cora: CoraResource) -> dg.MaterializeResult:
        started = time.monotonic()
        client = cora.client(org.name)
        full = context.run.tags.get("cora/full_refresh") == "true"
        result = extract_object(client, org, obj, cora.data_root, run_id=context.run_id, full=full)
        if result.status != "succeeded":
            context.log.warning(
                f"org {org.name} object {obj.name}: extract stopped: {result.message}"
            )
        latest = result.extract_dirs[0] if result.extract_dirs else None
        metadata: dict[str, Any] = {
            "status": result.status,
            "mode": result.mode,
            "records_fetched": result.records,
            "hard_deletes": result.deleted,
            "formula_records": result.formula_records,
            "pages": result.pages,
            "api_calls": result.api_calls,
            "api_used": result.api_used,
            "api_max": result.api_max,
            "watermark": result.watermark_to,
            "duration_seconds": round(time.monotonic() - started, 3),
            "dagster/row_count": result.records,
        }
        if latest is not None:
            metadata["dagster/uri"] = dg.MetadataValue.path(str(latest / "records.parquet"))
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=warehouse_key(org.name, obj.name),
        deps=[extract],
        group_name=org.name,
        kinds={"duckdb"},
        owners=OWNERS,
        pool=WAREHOUSE_POOL,
        tags={"cora/org": org.name},
        description=(
            f"Current state, history and changes of {obj.name} in org `{org.name}`: the newest "
            f"extracts diffed against the previous snapshot in the DuckDB warehouse."
        ),
    )
    def warehouse(context: dg.AssetExecutionContext, cora: CoraResource) -> dg.MaterializeResult:
        from cora_pipeline.warehouse import Warehouse

        started = time.monotonic()
        totals = {"created": 0, "updated": 0, "deleted": 0, "undeleted": 0, "field_changes": 0}
        applied = 0
        current_rows = None
        wh = Warehouse(cora.data_root)
        try:
            # Apply every extract not applied yet, oldest first; applying one twice changes nothing,
            # so an extract left over by a failed run is caught up here.
            for extract_dir in list_extracts(cora.data_root, org.name, obj.name):
                outcome = wh.apply_extract(extract_dir)
                if outcome.already_applied:
                    continue
                applied += 1
                current_rows = outcome.current_rows
                for name in totals:
                    totals[name] += getattr(outcome, name)
                manifest = read_manifest(extract_dir)
                context.log.info(
                    f"org {org.name} object {obj.name}: applied {manifest.mode} extract "
                    f"{manifest.extract_id}: {outcome.created} created, {outcome.updated} updated, "
                    f"{outcome.deleted} deleted, {outcome.undeleted} undeleted, "
                    f"{outcome.field_changes} field changes"
                )
            preview = wh.recent_field_changes(org.name, obj.name, limit=10)
            warehouse_path = wh.warehouse_path
        finally:
            wh.close()
        metadata: dict[str, Any] = {
            "extracts_applied": applied,
            **{f"changes_{name}": count for name, count in totals.items()},
            "duration_seconds": round(time.monotonic() - started, 3),
            "dagster/uri": dg.MetadataValue.path(str(warehouse_path)),
            "dagster/table_name": f"{org.name}.{obj.name}",
            "latest_field_changes": dg.MetadataValue.md(_markdown_changes(preview)),
        }
        if current_rows is not None:
            metadata["dagster/row_count"] = current_rows
        return dg.MaterializeResult(metadata=metadata)

    return [extract, warehouse]


def _markdown_changes(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "No field changes yet."
    lines = ["| record | field | old | new | cause |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [
            _md_cell(row.get(key))
            for key in ("record_id", "field", "old_value", "new_value", "cause")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text.replace("|", "\\|").replace("\n", " ")
