"""Assets per org and object: ``salesforce/<org>/<Object>`` extracts and ``warehouse/<org>/<Object>``.

The asset functions only read the run context and hand plain values to the extract and warehouse code,
which does not import Dagster. Numbers that describe a materialization go into its metadata, and the
checks that guard the diff run inside the asset that produced what they check.
"""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from cora_pipeline.config import ObjectConfig, OrgConfig
from cora_pipeline.extract.extractor import ExtractResult, budget_calls, extract_object
from cora_pipeline.extract.files import FieldInfo, list_extracts, read_manifest
from cora_pipeline.orchestration.budget import MAX_MULTIPLIER, cron_interval
from cora_pipeline.orchestration.checks import (
    CheckOutcome,
    reconcile_row_count,
    unique_ids,
    validate_extract,
)
from cora_pipeline.orchestration.keys import (
    FULL_REFRESH_TAG,
    ORG_TAG,
    OWNERS,
    WAREHOUSE_POOL,
    extract_key,
    warehouse_key,
)
from cora_pipeline.orchestration.resources import CoraResource, OrgCredentials, credentials_key

__all__ = ["WAREHOUSE_POOL", "build_object_assets", "extract_key", "warehouse_key"]

VALID_EXTRACT_CHECK = "valid_extract"
UNIQUE_IDS_CHECK = "unique_ids"
ROW_COUNT_CHECK = "row_count_matches_salesforce"
PREVIEW_ROWS = 10
# Irregular crons have ticks of different lengths, so a fixed instant keeps the policy the same in
# every process that loads the definitions.
FRESHNESS_REFERENCE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def _check_result(name: str, outcome: CheckOutcome, severity: dg.AssetCheckSeverity) -> Any:
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.description,
        metadata=outcome.metadata,
    )


def column_schema(fields: list[FieldInfo]) -> dg.TableSchema:
    """Return the Dagster column schema of an extract: Salesforce field types, Arrow types."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=f.type,
                description=f"Arrow {f.arrow_type}" + (", formula" if f.calculated else ""),
                constraints=dg.TableColumnConstraints(nullable=f.nillable),
            )
            for f in fields
        ]
    )


def freshness_policy(org: OrgConfig) -> dg.FreshnessPolicy:
    """Return the freshness policy of the org's warehouse assets, sized from its schedule.

    An asset warns after two base intervals without a materialization (the schedule fell behind or
    is spreading calls) and fails after the longest interval the budget may choose plus one.
    """
    base = cron_interval(org.schedule, FRESHNESS_REFERENCE_TIME)
    return dg.FreshnessPolicy.time_window(
        fail_window=base * (MAX_MULTIPLIER + 1), warn_window=base * 2
    )


def build_object_assets(org: OrgConfig, obj: ObjectConfig) -> list[dg.AssetsDefinition]:
    """Build the extract asset and the warehouse asset of one object of one org."""
    resource_keys = {"cora", credentials_key(org.name)}
    extract_asset_key = extract_key(org.name, obj.name)

    @dg.asset(
        key=extract_asset_key,
        group_name=org.name,
        kinds={"salesforce", "parquet"},
        owners=OWNERS,
        tags={ORG_TAG: org.name},
        required_resource_keys=resource_keys,
        description=(
            f"{obj.name} records of Salesforce org `{org.name}`, extracted through the REST API "
            f"(incrementally by SystemModstamp after the first run) into an immutable Parquet file. "
            f"The run tag `{FULL_REFRESH_TAG}=true` extracts every record again."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                VALID_EXTRACT_CHECK,
                asset=extract_asset_key,
                blocking=True,
                description=(
                    "The extract has a readable manifest, a known status, and a records file whose "
                    "rows and columns match the manifest, with an Id on every row. A failure stops "
                    "the diff into the warehouse."
                ),
            ),
            dg.AssetCheckSpec(
                UNIQUE_IDS_CHECK,
                asset=extract_asset_key,
                blocking=True,
                description="No Id appears twice in the extract. A failure stops the diff.",
            ),
        ],
    )
    def extract(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        cora: CoraResource = context.resources.cora
        credentials: OrgCredentials = getattr(context.resources, credentials_key(org.name))
        started = time.monotonic()
        client = cora.client(org.name, credentials)
        full = context.run.tags.get(FULL_REFRESH_TAG) == "true"

        result = extract_object(client, org, obj, cora.data_root, run_id=context.run_id, full=full)
        if result.status != "succeeded":
            context.log.warning(
                f"org {org.name} object {obj.name}: extract {result.status}: {result.message}"
            )
        metadata = _extract_metadata(org, result, time.monotonic() - started)
        checks = _extract_checks(result.status, result.extract_dirs)

        if result.extract_dirs:
            records_dir = result.extract_dirs[0]
            metadata["extract_id"] = records_dir.name
            metadata["dagster/uri"] = dg.MetadataValue.path(str(records_dir / "records.parquet"))
            try:
                metadata["dagster/column_schema"] = column_schema(read_manifest(records_dir).fields)
            except (OSError, ValueError) as exc:
                context.log.warning(f"extract {records_dir}: the manifest cannot be read: {exc}")
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    @dg.asset(
        key=warehouse_key(org.name, obj.name),
        deps=[extract],
        group_name=org.name,
        kinds={"duckdb"},
        owners=OWNERS,
        pool=WAREHOUSE_POOL,
        freshness_policy=freshness_policy(org),
        tags={ORG_TAG: org.name},
        required_resource_keys=resource_keys,
        description=(
            f"Current state, history and changes of {obj.name} in org `{org.name}`: every extract "
            f"not applied yet, diffed against the previous snapshot in the DuckDB warehouse "
            f"(`{org.name}.{obj.name}`, `{org.name}.{obj.name}_history`, `record_changes`, "
            f"`field_changes`)."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                ROW_COUNT_CHECK,
                asset=warehouse_key(org.name, obj.name),
                description=(
                    "Live records in the warehouse equal Salesforce's SELECT COUNT() for the "
                    "object. Costs one API call per run; skipped when the budget is used up."
                ),
            )
        ],
    )
    def warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        cora: CoraResource = context.resources.cora
        credentials: OrgCredentials = getattr(context.resources, credentials_key(org.name))
        started = time.monotonic()
        salesforce_count = _salesforce_count(context, cora, credentials, org, obj)
        summary = _apply_pending(context, cora.data_root, org, obj)
        metadata: dict[str, Any] = {
            **summary.metadata,
            "duration_seconds": round(time.monotonic() - started, 3),
        }
        if salesforce_count is None:
            outcome = CheckOutcome(
                True,
                "not compared: the pipeline's API budget is used up, so no COUNT() was sent",
                {"skipped": True},
            )
        else:
            outcome = reconcile_row_count(summary.live_rows, salesforce_count)
        check = _check_result(ROW_COUNT_CHECK, outcome, dg.AssetCheckSeverity.WARN)
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return [extract, warehouse]


def _extract_metadata(org: OrgConfig, result: ExtractResult, seconds: float) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "status": result.status,
        "mode": result.mode,
        "records_fetched": result.records,
        "hard_deletes": result.deleted,
        "formula_records": result.formula_records,
        "pages": result.pages,
        "api_calls": result.api_calls,
        "watermark_from": result.watermark_from or "none",
        "watermark": result.watermark_to or "none",
        "duration_seconds": round(seconds, 3),
        "http_seconds": round(result.http_seconds, 3),
        "reconciliation_sweep": result.reconciled,
        "missed_records": result.missed_records,
        "dagster/row_count": result.records,
    }
    if result.api_used is not None and result.api_max is not None:
        budget = budget_calls(org, result.api_max)
        metadata["api_used"] = result.api_used
        metadata["api_max"] = result.api_max
        metadata["api_budget"] = budget
        if budget:
            metadata["api_budget_used_percent"] = round(100 * result.api_used / budget, 1)
    if result.message:
        metadata["message"] = result.message
    return metadata


def _extract_checks(status: str, extract_dirs: list[Path]) -> list[Any]:
    if not extract_dirs:
        skipped = CheckOutcome(True, f"no extract was written (extract status {status})")
        return [
            _check_result(VALID_EXTRACT_CHECK, skipped, dg.AssetCheckSeverity.ERROR),
            _check_result(UNIQUE_IDS_CHECK, skipped, dg.AssetCheckSeverity.ERROR),
        ]
    validity = [validate_extract(path) for path in extract_dirs]
    uniqueness = [
        unique_ids(path) for path, valid in zip(extract_dirs, validity, strict=True) if valid.passed
    ]
    return [
        _check_result(VALID_EXTRACT_CHECK, _combine(validity), dg.AssetCheckSeverity.ERROR),
        _check_result(UNIQUE_IDS_CHECK, _combine(uniqueness), dg.AssetCheckSeverity.ERROR),
    ]


def _combine(outcomes: list[CheckOutcome]) -> CheckOutcome:
    """Merge the outcomes for the extracts of one run (records and formula) into one."""
    failed = [o for o in outcomes if not o.passed]
    if failed:
        return CheckOutcome(False, " ".join(o.description for o in failed), failed[0].metadata)
    if not outcomes:
        return CheckOutcome(False, "not checked: the extract is invalid")
    return CheckOutcome(True, " ".join(o.description for o in outcomes), outcomes[0].metadata)


def _salesforce_count(
    context: dg.AssetExecutionContext,
    cora: CoraResource,
    credentials: OrgCredentials,
    org: OrgConfig,
    obj: ObjectConfig,
) -> int | None:
    """Return Salesforce's COUNT() of live records, or None when the budget is used up."""
    client = cora.client(org.name, credentials)
    usage = client.usage
    if usage is not None and usage.used + 1 > budget_calls(org, usage.max):
        context.log.info(f"org {org.name} object {obj.name}: COUNT() skipped, budget used up")
        return None
    # The object name matched the sObject API name pattern when the configuration was loaded.
    soql = f"SELECT COUNT() FROM {obj.name}"  # noqa: S608
    return client.count(soql, sobject=obj.name)


class _ApplySummary:
    def __init__(self, metadata: dict[str, Any], live_rows: int) -> None:
        self.metadata = metadata
        self.live_rows = live_rows


def _apply_pending(
    context: dg.AssetExecutionContext, data_root: Path, org: OrgConfig, obj: ObjectConfig
) -> _ApplySummary:
    """Apply every extract not applied yet, oldest first, and describe the result as metadata.

    Applying one twice changes nothing, so an extract left over by a failed run is caught up here.
    An invalid extract stops the step before anything from it is applied, because applying the
    extracts after it would move the object's snapshot past it for good.
    """
    from cora_pipeline.warehouse import Warehouse

    totals = {"created": 0, "updated": 0, "deleted": 0, "undeleted": 0}
    field_changes = 0
    schema_changes = 0
    applied: list[str] = []
    with Warehouse(data_root) as wh:
        done = _applied_extract_ids(wh.con, org.name, obj.name)
        for extract_dir in list_extracts(data_root, org.name, obj.name):
            if extract_dir.name in done:
                continue
            outcome = wh.apply_extract(extract_dir) if _valid(extract_dir) else None
            if outcome is None:
                raise dg.Failure(
                    description=(
                        f"org {org.name} object {obj.name}: extract {extract_dir} is invalid "
                        f"({validate_extract(extract_dir).description}); nothing after it was "
                        f"applied. Move the directory out of the extracts folder and run the job "
                        f"with the tag {FULL_REFRESH_TAG}=true to extract every record again."
                    )
                )
            if outcome.already_applied:
                continue
            applied.append(extract_dir.name)
            for name in totals:
                totals[name] += getattr(outcome, name)
            field_changes += outcome.field_changes
            schema_changes += outcome.schema_changes
            manifest = read_manifest(extract_dir)
            context.log.info(
                f"org {org.name} object {obj.name}: applied {manifest.mode} extract "
                f"{manifest.extract_id}: {outcome.created} created, {outcome.updated} updated, "
                f"{outcome.deleted} deleted, {outcome.undeleted} undeleted, "
                f"{outcome.field_changes} field changes"
            )
        preview = wh.recent_field_changes(org.name, obj.name, limit=PREVIEW_ROWS)
        table = f'"{org.name}"."{obj.name}"'
        columns = _describe(wh.con, org.name, obj.name)
        live_rows = 0
        if columns:
            live_filter = (
                ' WHERE NOT coalesce("IsDeleted", false)' if "IsDeleted" in columns else ""
            )
            row = wh.con.execute(f"SELECT count(*) FROM {table}{live_filter}").fetchone()  # noqa: S608
            live_rows = int(row[0]) if row else 0
        warehouse_path = wh.warehouse_path
    metadata: dict[str, Any] = {
        "extracts_applied": len(applied),
        **{f"changes_{name}": count for name, count in totals.items()},
        "field_changes": field_changes,
        "schema_changes": schema_changes,
        "latest_field_changes": dg.MetadataValue.md(markdown_changes(preview)),
        "dagster/row_count": live_rows,
        "dagster/table_name": f"{org.name}.{obj.name}",
        "dagster/uri": dg.MetadataValue.path(str(warehouse_path)),
    }
    if columns:
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=kind) for name, kind in columns.items()]
        )
    return _ApplySummary(metadata, live_rows)


def _valid(extract_dir: Path) -> bool:
    return validate_extract(extract_dir).passed and unique_ids(extract_dir).passed


def _applied_extract_ids(con: Any, org: str, sobject: str) -> set[str]:
    rows = con.execute(
        "SELECT extract_id FROM main.sync_runs WHERE org = ? AND object = ?", [org, sobject]
    ).fetchall()
    return {str(row[0]) for row in rows}


def _describe(con: Any, org: str, sobject: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [org, sobject],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def markdown_changes(rows: list[dict[str, object]]) -> str:
    """Return the newest field changes as a Markdown table for the Dagster UI."""
    if not rows:
        return "No field changes yet."
    lines = [
        "| record | field | old | new | cause | detected |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            _md_cell(row.get(key))
            for key in ("record_id", "field", "old_value", "new_value", "cause", "detected_at")
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_cell(value: object) -> str:
    text = "NULL" if value is None else str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text.replace("|", "\\|").replace("\n", " ")
