"""Extract one sObject of one org into an immutable extract directory.

The watermark lives in the extracts themselves: the next incremental extract starts from the
``watermark_to`` of the newest succeeded extract of the object, minus an overlap window. Because an
extract becomes visible only once it is completely written (see ``cora_pipeline.extract.files``), the
watermark can never move past data that was not stored.

What one call does, in order:

1. describe the object and choose the fields (``cora_pipeline.extract.schema``);
2. stop cleanly, writing a ``stopped_budget`` manifest, when the org's API usage is at the pipeline's
   budget;
3. query with ``queryAll`` (soft deletes arrive with ``IsDeleted`` true): everything on the first run or
   on demand, else records whose SystemModstamp (or LastModifiedDate) is at or after the watermark minus
   the overlap;
4. on incremental runs, read hard deletes from the ``deleted`` resource;
5. when the object has formula fields and the last formula read is older than the configured cadence,
   read ``Id`` and the formula fields of every live record into a separate ``formula`` extract.

A SELECT whose URI would exceed Salesforce's 16,384-byte limit is split into pieces that each repeat
``Id``; the pieces are joined by ``Id``, and a record missing from a piece is read again by ``Id``.
"""

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa

from cora_pipeline.config import ObjectConfig, OrgConfig
from cora_pipeline.errors import APIBudgetExhausted, SalesforceAPIError
from cora_pipeline.extract.files import (
    FieldInfo,
    Manifest,
    list_extracts,
    new_extract_id,
    read_manifest,
    write_extract,
)
from cora_pipeline.extract.schema import field_arrow_type, plan_fields
from cora_pipeline.salesforce.client import SalesforceClient

log = logging.getLogger(__name__)

# Salesforce rejects a request whose URI is over 16,384 bytes (414). Leave room for the host, the
# version path and the encoding of the WHERE clause.
MAX_QUERY_URI_BYTES = 14_000
# The deleted resource reaches back at most 15 days; older watermarks need a full extract.
DELETED_WINDOW = timedelta(days=15)
ID_BATCH = 200
WATERMARK_FIELDS = ("SystemModstamp", "LastModifiedDate")


@dataclass
class ExtractResult:
    """What one extract call produced, for logs and Dagster metadata."""

    org: str
    object: str
    status: str
    mode: str = "full"
    extract_dirs: list[Path] = field(default_factory=list)
    records: int = 0
    deleted: int = 0
    formula_records: int = 0
    pages: int = 0
    api_calls: int = 0
    api_used: int | None = None
    api_max: int | None = None
    watermark_from: str | None = None
    watermark_to: str | None = None
    message: str | None = None


class ObjectNotExtractable(SalesforceAPIError):
    """The object cannot be queried by this user, so it is skipped."""


def latest_manifest(
    data_root: Path, org: str, sobject: str, mode: str | None = None
) -> Manifest | None:
    """Return the newest succeeded extract manifest of an object, optionally of one mode."""
    for path in reversed(list_extracts(data_root, org, sobject)):
        manifest = read_manifest(path)
        if manifest.status != "succeeded":
            continue
        if mode is None or manifest.mode == mode:
            return manifest
        if mode == "formula" and manifest.mode == "full":
            # A full extract read every formula field too.
            return manifest
    return None


def budget_calls(org: OrgConfig, api_max: int) -> int:
    """Return the usage level, in calls, at which the pipeline stops for this org."""
    return math.floor(api_max * org.api_budget_share)


def extract_object(
    client: SalesforceClient,
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    *,
    run_id: str | None = None,
    full: bool = False,
    now: datetime | None = None,
) -> ExtractResult:
    """Extract one object and return what was written. See the module docstring for the steps."""
    started = now or datetime.now(UTC)
    calls_before = client.api_calls
    result = ExtractResult(org=org.name, object=obj.name, status="succeeded")

    describe = client.describe(obj.name)
    if not describe.get("queryable", False):
        raise ObjectNotExtractable(
            f"org {org.name!r}: {obj.name} is not queryable for the integration user "
            f"(describe says queryable=false); remove it from the org's objects",
            org=org.name,
            sobject=obj.name,
        )
    fields, skipped = plan_fields(describe["fields"], list(obj.include), list(obj.exclude))
    for skip in skipped:
        log.debug("org %s object %s: skipping %s: %s", org.name, obj.name, skip.name, skip.reason)
    names = {f.name for f in fields}
    describe_by_name = {f["name"]: f for f in describe["fields"]}
    watermark_field = next(
        (
            name
            for name in WATERMARK_FIELDS
            if name in names and describe_by_name[name].get("filterable", True)
        ),
        None,
    )

    previous = latest_manifest(data_root, org.name, obj.name)
    mode = "full"
    watermark_from: datetime | None = None
    if previous and not full and watermark_field and previous.watermark_to:
        candidate = datetime.fromisoformat(previous.watermark_to) - timedelta(
            seconds=org.overlap_seconds
        )
        if started - candidate < DELETED_WINDOW:
            mode = "incremental"
            watermark_from = candidate
        else:
            log.info(
                "org %s object %s: watermark %s is older than the 15-day window of the deleted "
                "resource; extracting in full",
                org.name,
                obj.name,
                previous.watermark_to,
            )
    result.mode = mode

    try:
        _check_budget(client, org, obj.name)
        where = ""
        if mode == "incremental" and watermark_from is not None:
            where = f"{watermark_field} >= {soql_datetime(watermark_from)}"
        rows, pages = _query_records(
            client, org, obj.name, [f.name for f in fields], where, include_deleted=True
        )
        result.pages = pages
        deleted_rows: list[dict[str, Any]] = []
        if mode == "incremental" and watermark_from is not None:
            deleted_rows = _hard_deletes(client, obj.name, watermark_from, started)
        _check_budget(client, org, obj.name)
    except APIBudgetExhausted as exc:
        return _stopped(
            client,
            org,
            obj,
            data_root,
            fields,
            result,
            started,
            run_id,
            calls_before,
            previous,
            str(exc),
        )

    watermark_to = _max_watermark(rows, watermark_field, previous)
    records_table = to_arrow(rows, fields)
    deleted_table = (
        pa.table(
            {
                "Id": pa.array([r["id"] for r in deleted_rows], pa.string()),
                "deleted_at": pa.array(
                    [parse_datetime(r["deletedDate"]) for r in deleted_rows],
                    pa.timestamp("ms", tz="UTC"),
                ),
            }
        )
        if deleted_rows
        else None
    )
    manifest = Manifest(
        org=org.name,
        object=obj.name,
        extract_id=new_extract_id(),
        mode=mode,  # type: ignore[arg-type]
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        fields=fields,
        run_id=run_id,
        watermark_field=watermark_field,
        watermark_from=watermark_from.isoformat() if watermark_from else None,
        watermark_to=watermark_to,
        api_calls=client.api_calls - calls_before,
        api_used=client.usage.used if client.usage else None,
        api_max=client.usage.max if client.usage else None,
    )
    result.extract_dirs.append(write_extract(data_root, manifest, records_table, deleted_table))
    result.records = records_table.num_rows
    result.deleted = deleted_table.num_rows if deleted_table is not None else 0
    result.watermark_from = manifest.watermark_from
    result.watermark_to = watermark_to
    log.info(
        "org %s object %s: %s extract of %d records in %d pages, %d hard deletes, watermark %s",
        org.name,
        obj.name,
        mode,
        result.records,
        pages,
        result.deleted,
        watermark_to,
    )

    formula_fields = [f for f in fields if f.calculated]
    if mode == "incremental" and formula_fields and _formula_due(data_root, org, obj.name, started):
        try:
            result.formula_records = _formula_refresh(
                client, org, obj.name, formula_fields, fields, data_root, run_id, started, result
            )
        except APIBudgetExhausted as exc:
            log.warning("org %s object %s: formula refresh skipped: %s", org.name, obj.name, exc)

    result.api_calls = client.api_calls - calls_before
    result.api_used = client.usage.used if client.usage else None
    result.api_max = client.usage.max if client.usage else None
    return result


def _formula_due(data_root: Path, org: OrgConfig, sobject: str, now: datetime) -> bool:
    last = latest_manifest(data_root, org.name, sobject, mode="formula")
    if last is None:
        return True
    return now - datetime.fromisoformat(last.started_at) >= timedelta(
        hours=org.formula_refresh_hours
    )


def _formula_refresh(
    client: SalesforceClient,
    org: OrgConfig,
    sobject: str,
    formula_fields: list[FieldInfo],
    all_fields: list[FieldInfo],
    data_root: Path,
    run_id: str | None,
    started: datetime,
    result: ExtractResult,
) -> int:
    """Read ``Id`` and the formula fields of every live record into a ``formula`` extract."""
    by_name = {f.name: f for f in all_fields}
    fields = [by_name["Id"], *formula_fields]
    calls_before = client.api_calls
    rows, pages = _query_records(
        client, org, sobject, [f.name for f in fields], "", include_deleted=False
    )
    manifest = Manifest(
        org=org.name,
        object=sobject,
        extract_id=new_extract_id(),
        mode="formula",
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        fields=fields,
        run_id=run_id,
        api_calls=client.api_calls - calls_before,
        api_used=client.usage.used if client.usage else None,
        api_max=client.usage.max if client.usage else None,
    )
    result.extract_dirs.append(write_extract(data_root, manifest, to_arrow(rows, fields)))
    result.pages += pages
    log.info(
        "org %s object %s: formula refresh of %d fields read %d records in %d pages",
        org.name,
        sobject,
        len(formula_fields),
        len(rows),
        pages,
    )
    return len(rows)


def _stopped(
    client: SalesforceClient,
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    fields: list[FieldInfo],
    result: ExtractResult,
    started: datetime,
    run_id: str | None,
    calls_before: int,
    previous: Manifest | None,
    reason: str,
) -> ExtractResult:
    """Record a run stopped by the API budget: no records, the watermark where it was."""
    log.warning("org %s object %s: stopped: %s", org.name, obj.name, reason)
    manifest = Manifest(
        org=org.name,
        object=obj.name,
        extract_id=new_extract_id(),
        mode=result.mode,  # type: ignore[arg-type]
        started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        fields=fields,
        run_id=run_id,
        status="stopped_budget",
        error=reason,
        watermark_from=previous.watermark_to if previous else None,
        watermark_to=previous.watermark_to if previous else None,
        api_calls=client.api_calls - calls_before,
        api_used=client.usage.used if client.usage else None,
        api_max=client.usage.max if client.usage else None,
    )
    result.extract_dirs.append(write_extract(data_root, manifest, to_arrow([], fields)))
    result.status = "stopped_budget"
    result.message = reason
    result.api_calls = manifest.api_calls
    result.api_used = manifest.api_used
    result.api_max = manifest.api_max
    return result


def _check_budget(client: SalesforceClient, org: OrgConfig, sobject: str) -> None:
    usage = client.usage
    if usage is None:
        return
    budget = budget_calls(org, usage.max)
    if usage.used >= budget:
        raise APIBudgetExhausted(
            f"org {org.name!r} has used {usage.used} of {usage.max} daily API calls; this "
            f"pipeline may use up to {budget} ({org.api_budget_share:.0%}, api_budget_share). "
            f"Raise api_budget_share or wait for usage to fall",
            org=org.name,
            used=usage.used,
            limit=usage.max,
            budget=budget,
        )


def _query_records(
    client: SalesforceClient,
    org: OrgConfig,
    sobject: str,
    field_names: list[str],
    where: str,
    *,
    include_deleted: bool,
) -> tuple[list[dict[str, Any]], int]:
    """Run the SELECT, split into pieces when its URI would be too long; return rows and pages."""
    pieces = split_fields(field_names, sobject, where, org.api_version)
    pages = 0
    if len(pieces) == 1:
        rows: list[dict[str, Any]] = []
        for page in client.query_pages(
            build_soql(pieces[0], sobject, where),
            sobject=sobject,
            include_deleted=include_deleted,
            batch_size=org.batch_size,
        ):
            pages += 1
            rows.extend(page)
            _check_budget(client, org, sobject)
        return rows, pages

    log.info(
        "org %s object %s: SELECT split into %d pieces to keep each URI under %d bytes",
        org.name,
        sobject,
        len(pieces),
        MAX_QUERY_URI_BYTES,
    )
    merged: dict[str, dict[str, Any]] = {}
    seen_in: dict[str, int] = {}
    for piece in pieces:
        for page in client.query_pages(
            build_soql(piece, sobject, where),
            sobject=sobject,
            include_deleted=include_deleted,
            batch_size=org.batch_size,
        ):
            pages += 1
            for row in page:
                merged.setdefault(row["Id"], {}).update(row)
                seen_in[row["Id"]] = seen_in.get(row["Id"], 0) + 1
            _check_budget(client, org, sobject)
    incomplete = [record_id for record_id, count in seen_in.items() if count < len(pieces)]
    if incomplete:
        log.info(
            "org %s object %s: %d records were missing from some pieces; reading them by Id",
            org.name,
            sobject,
            len(incomplete),
        )
        for piece in pieces:
            for start in range(0, len(incomplete), ID_BATCH):
                ids = incomplete[start : start + ID_BATCH]
                id_list = ", ".join(f"'{record_id}'" for record_id in ids)
                for page in client.query_pages(
                    build_soql(piece, sobject, f"Id IN ({id_list})"),
                    sobject=sobject,
                    include_deleted=include_deleted,
                ):
                    pages += 1
                    for row in page:
                        merged[row["Id"]].update(row)
        missing = [rid for rid in incomplete if set(field_names) - set(merged[rid])]
        for record_id in missing:
            # Hard-deleted between two pieces: the deleted resource reports it on the next run.
            del merged[record_id]
        if missing:
            log.warning(
                "org %s object %s: %d records vanished while being read and were left out",
                org.name,
                sobject,
                len(missing),
            )
    return list(merged.values()), pages


def build_soql(field_names: Iterable[str], sobject: str, where: str) -> str:
    # Names come from describe and the config's validated sObject name, never from record data.
    soql = f"SELECT {', '.join(field_names)} FROM {sobject}"  # noqa: S608
    return f"{soql} WHERE {where}" if where else soql


def split_fields(
    field_names: list[str], sobject: str, where: str, api_version: str
) -> list[list[str]]:
    """Split a field list into SELECTs whose query URI stays under :data:`MAX_QUERY_URI_BYTES`.

    Each piece starts with ``Id`` so pieces can be joined.
    """
    base = len(f"/services/data/v{api_version}/queryAll/?q=") + len(
        quote_plus(build_soql(["Id"], sobject, where))
    )
    pieces: list[list[str]] = []
    current = ["Id"]
    size = base
    for name in field_names:
        if name == "Id":
            continue
        cost = len(quote_plus(f", {name}"))
        if size + cost > MAX_QUERY_URI_BYTES and len(current) > 1:
            pieces.append(current)
            current = ["Id"]
            size = base
        current.append(name)
        size += cost
    pieces.append(current)
    return pieces


def _hard_deletes(
    client: SalesforceClient, sobject: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Return ``{id, deletedDate}`` entries from the ``deleted`` resource between two instants."""
    # The resource drops seconds and needs end at least one minute after start.
    start = start.replace(second=0, microsecond=0)
    end = max(
        end.replace(second=0, microsecond=0) + timedelta(minutes=1), start + timedelta(minutes=1)
    )
    body = client.deleted(sobject, start.isoformat(), end.isoformat())
    return list(body.get("deletedRecords") or [])


def _max_watermark(
    rows: list[dict[str, Any]], watermark_field: str | None, previous: Manifest | None
) -> str | None:
    best = (
        datetime.fromisoformat(previous.watermark_to)
        if previous and previous.watermark_to
        else None
    )
    if watermark_field:
        for row in rows:
            value = row.get(watermark_field)
            if value:
                moment = parse_datetime(value)
                if best is None or moment > best:
                    best = moment
    return best.isoformat() if best else None


def soql_datetime(moment: datetime) -> str:
    """Format an instant as a SOQL datetime literal (UTC, no quotes)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_datetime(value: str) -> datetime:
    """Parse Salesforce's ``2020-10-22T21:03:23.000+0000`` (and the ``Z`` form) as an aware datetime."""
    return datetime.fromisoformat(value)


def to_arrow(rows: list[dict[str, Any]], fields: list[FieldInfo]) -> pa.Table:
    """Convert REST query records to an Arrow table with the planned types."""
    columns = {}
    for info in fields:
        arrow_type = field_arrow_type(info)
        values = [row.get(info.name) for row in rows]
        try:
            columns[info.name] = pa.array(_convert(values, info), arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise SalesforceAPIError(
                f"field {info.name} ({info.type}, precision {info.precision}, scale {info.scale}) "
                f"holds a value that does not fit {arrow_type}: {exc}"
            ) from exc
    return pa.table(
        columns, schema=pa.schema([pa.field(f.name, field_arrow_type(f)) for f in fields])
    )


def _convert(values: list[Any], info: FieldInfo) -> list[Any]:
    if info.type == "datetime":
        return [parse_datetime(v) if v is not None else None for v in values]
    if info.type == "date":
        return [date.fromisoformat(v) if v is not None else None for v in values]
    if info.type in ("int", "long"):
        return [int(v) if v is not None else None for v in values]
    if info.type in ("double", "currency", "percent"):
        if pa.types.is_decimal(field_arrow_type(info)):
            return [Decimal(str(v)) if v is not None else None for v in values]
        return [float(v) if v is not None else None for v in values]
    return values
