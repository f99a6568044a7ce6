"""Extract one sObject of one org into an immutable extract directory.

The watermark lives in the extracts themselves: the next incremental extract starts from the
``watermark_to`` of the newest succeeded full or incremental extract of the object, minus an overlap
window. Because an extract becomes visible only once it is completely written (see
``cora_pipeline.extract.files``), the watermark can never move past data that was not stored.

What one call does, in order:

1. read the org's API usage from ``/limits`` when this client has not seen it yet, and stop cleanly
   (a ``stopped_budget`` manifest, the watermark unchanged) when it is at the pipeline's budget;
2. describe the object and choose the fields (``cora_pipeline.extract.schema``); an object the
   integration user cannot query is skipped with a message. When the previous extract allows an
   incremental run, describe, the first query page and the ``deleted`` resource go into one
   ``/composite`` call (``cora_pipeline.extract.opening``);
3. on incremental runs, when the reconciliation cadence is due (or the ``deleted`` resource cannot
   cover the gap), run the Id-only sweep (``cora_pipeline.extract.reconcile``);
4. query with ``queryAll`` (soft deletes arrive with ``IsDeleted`` true): everything on the first run
   or on demand, else records whose SystemModstamp (or LastModifiedDate) is at or after the
   watermark minus the overlap, streaming pages into ``records.parquet``;
5. on incremental runs, read hard deletes from the ``deleted`` resource, from where the previous
   call's ``latestDateCovered`` left off to the org's current time;
6. when the object has formula fields and the last formula read is older than the configured
   cadence, read ``Id`` and the formula fields of every live record into a separate ``formula``
   extract.

The API usage is checked after describe and after every page; the org's time comes from the HTTP
``Date`` header of its latest response.
"""

import logging
import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cora_pipeline.config import ObjectConfig, OrgConfig
from cora_pipeline.errors import APIBudgetExhausted, SalesforceAPIError
from cora_pipeline.extract.convert import parse_datetime, soql_datetime, to_arrow
from cora_pipeline.extract.files import (
    ExtractWriter,
    FieldInfo,
    Manifest,
    list_extracts,
    new_extract_id,
    read_manifest,
    write_extract,
)
from cora_pipeline.extract.opening import Opening, deleted_window, open_incremental
from cora_pipeline.extract.query import (
    MAX_QUERY_URI_BYTES,
    QueryScope,
    QueryStats,
    build_soql,
    read_by_ids,
    run_query,
    split_fields,
)
from cora_pipeline.extract.reconcile import known_records, sweep
from cora_pipeline.extract.schema import plan_fields
from cora_pipeline.salesforce.client import MAX_BATCH_SIZE, QueryLocatorExpired, SalesforceClient

log = logging.getLogger(__name__)

# The deleted resource reaches back at most 15 days; a gap older than that needs the sweep.
DELETED_WINDOW = timedelta(days=15)
WATERMARK_FIELDS = ("SystemModstamp", "LastModifiedDate")
MAX_QUERY_RESTARTS = 2
"""How often an expired query locator may restart the object's query in one run."""
CLOCK_TOLERANCE = timedelta(seconds=2)
"""How far a SystemModstamp may lead the org's clock, which the ``Date`` header gives in seconds."""
DELETED_SCHEMA = pa.schema([("Id", pa.string()), ("deleted_at", pa.timestamp("ms", tz="UTC"))])

__all__ = [
    "DELETED_WINDOW",
    "MAX_QUERY_URI_BYTES",
    "ExtractResult",
    "ObjectNotExtractable",
    "budget_calls",
    "build_soql",
    "extract_object",
    "latest_manifest",
    "parse_datetime",
    "soql_datetime",
    "split_fields",
    "to_arrow",
]


@dataclass
class ExtractResult:
    """The outcome of one extract call, for logs and Dagster metadata."""

    org: str
    object: str
    status: str
    """``succeeded``, ``stopped_budget`` (watermark unchanged) or ``skipped`` (not queryable)."""
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
    reconciled: bool = False
    """True when this run included the Id-only reconciliation sweep."""
    missed_records: int = 0
    """Records the sweep found changed or created without the incremental query seeing them."""
    http_seconds: float = 0.0
    """Seconds spent inside REST calls (network, Salesforce, JSON decoding, retry waits)."""

    def count_page(self) -> None:
        self.pages += 1


class ObjectNotExtractable(SalesforceAPIError):
    """The object cannot be queried by this user, so it is skipped."""


class ObjectLog(logging.LoggerAdapter[logging.Logger]):
    """Prefix every message with the org and the object, and attach both as record attributes."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        return f"org {extra.get('org')} object {extra.get('sobject')}: {msg}", kwargs


def latest_manifest(
    data_root: Path, org: str, sobject: str, mode: str | None = None
) -> Manifest | None:
    """Return the newest succeeded extract manifest of an object, optionally of one mode.

    ``mode="formula"`` also accepts a full extract, because a full extract reads every formula
    field too; ``mode="watermark"`` returns the newest full or incremental extract.
    """
    for path in reversed(list_extracts(data_root, org, sobject)):
        manifest = read_manifest(path)
        if manifest.status != "succeeded":
            continue
        if mode is None or manifest.mode == mode:
            return manifest
        if mode in ("formula", "watermark") and manifest.mode == "full":
            return manifest
        if mode == "watermark" and manifest.mode == "incremental":
            return manifest
    return None


def budget_calls(org: OrgConfig, api_max: int) -> int:
    """Return the usage level, in calls, at which the pipeline stops for this org."""
    return math.floor(api_max * org.api_budget_share)


@dataclass
class _Plan:
    """The decisions taken before any record is read."""

    fields: list[FieldInfo]
    mode: str
    watermark_field: str | None
    previous: Manifest | None
    watermark_from: datetime | None = None
    deleted_from: datetime | None = None
    """Start of the ``deleted`` resource window (coverage minus overlap); None skips the call."""
    deleted_covered: str | None = None
    sweep_reason: str | None = None
    replicateable: bool = True
    skipped_fields: dict[str, str] = field(default_factory=dict)
    """Fields describe returned that are not extracted, with the reason for each."""


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
    """Extract one object and return what was written. See the module docstring for the steps.

    ``now`` is the org's current time, used in place of the HTTP ``Date`` header of its responses.
    It decides the mode, the ``deleted`` resource window and the formula and sweep cadences. Tests
    pass it.

    Raises :class:`~cora_pipeline.errors.SalesforceAPIError` subclasses for failures that retries
    could not fix; nothing is written then and the watermark stays where it was. A failed formula
    refresh does not raise, because the records extract before it is already durable: it is
    logged and named in ``message``.
    """
    olog = ObjectLog(log, {"org": org.name, "sobject": obj.name})
    calls_before = client.api_calls
    seconds_before = client.http_seconds
    started = datetime.now(UTC)
    result = ExtractResult(org=org.name, object=obj.name, status="succeeded")
    previous = latest_manifest(data_root, org.name, obj.name, mode="watermark")
    plan: _Plan | None = None
    try:
        if client.usage is None:
            client.read_api_usage(obj.name)
        _check_budget(client, org)
        opening = _open(client, org, obj, data_root, previous, full, now)
        describe: dict[str, Any] | None
        if opening is not None and opening.describe is not None:
            describe = opening.describe
            reason = _unqueryable_reason(describe, org, obj)
        else:
            describe, reason = _describe(client, org, obj)
        if describe is None or reason:
            olog.warning("%s", reason)
            result.status = "skipped"
            result.message = reason
            return _finish(result, client, calls_before, seconds_before)
        _check_budget(client, org)
        org_now = _org_clock(client, now)
        server_started = org_now()
        plan = _plan(describe, org, obj, data_root, previous, full, server_started, olog)
        result.mode = plan.mode
        _extract(
            client,
            org,
            obj,
            data_root,
            plan,
            run_id,
            started,
            org_now,
            result,
            olog,
            calls_before,
            opening,
        )
    except APIBudgetExhausted as exc:
        fields: list[FieldInfo] = []
        if plan is not None:
            fields = plan.fields
        elif previous is not None:
            fields = previous.fields
        return _stopped(
            client,
            org,
            obj,
            data_root,
            fields,
            result,
            started,
            run_id,
            previous,
            str(exc),
            olog,
            calls_before,
            seconds_before,
        )
    result.api_calls = client.api_calls - calls_before
    if result.mode == "incremental" and plan is not None and plan.fields:
        formula_fields = [f for f in plan.fields if f.calculated]
        if formula_fields and _formula_due(data_root, org, obj.name, server_started):
            try:
                _formula_refresh(
                    client, org, obj.name, plan.fields, data_root, run_id, server_started, result
                )
            except SalesforceAPIError as exc:
                olog.warning("formula refresh failed, the next run tries again: %s", exc)
                result.message = f"formula refresh failed: {exc}"
    return _finish(result, client, calls_before, seconds_before)


def _org_clock(client: SalesforceClient, now: datetime | None) -> Callable[[], datetime]:
    """Return the org's clock: the client's ``Date`` header clock, or ``now`` moving on from here."""
    if now is None:
        return client.server_now
    base = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - base)


def _finish(
    result: ExtractResult, client: SalesforceClient, calls_before: int, seconds_before: float
) -> ExtractResult:
    result.api_calls = client.api_calls - calls_before
    result.http_seconds = client.http_seconds - seconds_before
    result.api_used = client.usage.used if client.usage else None
    result.api_max = client.usage.max if client.usage else None
    return result


def _describe(
    client: SalesforceClient, org: OrgConfig, obj: ObjectConfig
) -> tuple[dict[str, Any] | None, str]:
    """Describe the object; return None and the reason when the integration user cannot query it."""
    try:
        describe = client.describe(obj.name)
    except SalesforceAPIError as exc:
        if exc.status == 404 or exc.code in ("NOT_FOUND", "INVALID_TYPE"):
            return None, (
                f"{obj.name} was skipped: describe returned {exc.status} {exc.code or ''} for org "
                f"{org.name!r}, so the object does not exist or the integration user cannot see "
                f"it. Remove it from the org's objects or grant the user access"
            )
        raise
    return describe, _unqueryable_reason(describe, org, obj)


def _unqueryable_reason(describe: dict[str, Any], org: OrgConfig, obj: ObjectConfig) -> str:
    """Return why the object is skipped when describe reports it not queryable, else ""."""
    if describe.get("queryable", False):
        return ""
    return (
        f"{obj.name} was skipped: describe reports queryable=false for the integration user "
        f"of org {org.name!r}. Remove it from the org's objects"
    )


def _open(
    client: SalesforceClient,
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    previous: Manifest | None,
    full: bool,
    now: datetime | None,
) -> Opening | None:
    """Send describe, the first incremental page and deletes in one ``/composite`` call.

    Returns None when the run cannot be incremental from the previous extract, so describe goes
    alone. The query is left out when a sweep is expected, because it must run after the sweep.
    """
    if full or previous is None or not previous.watermark_field or not previous.watermark_to:
        return None
    org_now = now or client.server_now()
    replicateable = previous.extra.get("replicateable", True)
    where: str | None = None
    default_pages = org.batch_size >= MAX_BATCH_SIZE
    if default_pages and replicateable and not _sweep_due(data_root, org, obj.name, org_now):
        watermark_from = _watermark_from(previous, org)
        where = f"{previous.watermark_field} >= {soql_datetime(watermark_from)}"
    window = None
    start = _deleted_start(previous, org)
    if replicateable and org_now - start < DELETED_WINDOW - timedelta(minutes=5):
        window = deleted_window(start, org_now)
    return open_incremental(client, obj.name, previous.fields, where, window)


def _watermark_from(previous: Manifest, org: OrgConfig) -> datetime:
    assert previous.watermark_to is not None
    return datetime.fromisoformat(previous.watermark_to) - timedelta(seconds=org.overlap_seconds)


def _deleted_covered(previous: Manifest) -> str:
    return previous.deleted_covered_to or previous.server_started_at or previous.started_at


def _deleted_start(previous: Manifest, org: OrgConfig) -> datetime:
    covered = datetime.fromisoformat(_deleted_covered(previous))
    return covered - timedelta(seconds=org.overlap_seconds)


def _plan(
    describe: dict[str, Any],
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    previous: Manifest | None,
    full: bool,
    server_now: datetime,
    olog: ObjectLog,
) -> _Plan:
    """Choose the fields, the mode, the watermark and whether the sweep runs."""
    fields, skipped = plan_fields(describe["fields"], list(obj.include), list(obj.exclude))
    if skipped:
        olog.info(
            "fields not extracted: %s",
            "; ".join(f"{skip.name} ({skip.reason})" for skip in skipped),
        )
    described = {f["name"]: f for f in describe["fields"]}
    unknown = sorted(set(obj.include) - set(described))
    if unknown:
        olog.warning(
            "include lists fields that describe does not return (missing or hidden from the "
            "integration user): %s",
            ", ".join(unknown),
        )
    names = {f.name for f in fields}
    watermark_field = next(
        (
            name
            for name in WATERMARK_FIELDS
            if name in names and described[name].get("filterable", True)
        ),
        None,
    )
    plan = _Plan(
        fields=fields,
        mode="full",
        watermark_field=watermark_field,
        previous=previous,
        replicateable=bool(describe.get("replicateable", True)),
        skipped_fields={skip.name: skip.reason for skip in skipped},
    )
    if full:
        olog.info("full extract requested")
        return plan
    if previous is None:
        olog.info("no earlier extract; extracting in full")
        return plan
    if watermark_field is None:
        olog.info("neither SystemModstamp nor LastModifiedDate can be filtered; extracting in full")
        return plan
    if previous.watermark_field not in (None, watermark_field) or not previous.watermark_to:
        olog.info(
            "the previous extract has no %s watermark; extracting in full",
            watermark_field,
        )
        return plan

    plan.mode = "incremental"
    plan.watermark_from = _watermark_from(previous, org)
    covered = _deleted_covered(previous)
    plan.deleted_covered = covered
    plan.deleted_from = _deleted_start(previous, org)
    if not describe.get("replicateable", True):
        plan.deleted_from = None
        plan.sweep_reason = (
            "the object is not replicateable, so the deleted resource is unavailable"
        )
    elif server_now - plan.deleted_from >= DELETED_WINDOW - timedelta(minutes=5):
        plan.deleted_from = None
        plan.sweep_reason = (
            f"the last deleted-resource coverage ({covered}) is older than its 15-day window"
        )
    elif _sweep_due(data_root, org, obj.name, server_now):
        plan.sweep_reason = f"the {org.reconcile_hours} h reconciliation cadence is due"
    return plan


def _extract(
    client: SalesforceClient,
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    plan: _Plan,
    run_id: str | None,
    started: datetime,
    org_now: Callable[[], datetime],
    result: ExtractResult,
    olog: ObjectLog,
    calls_before: int,
    opening: Opening | None,
) -> None:
    """Read the records (and deletes) of one run into one extract and commit it."""
    server_started = org_now()
    scope = QueryScope(
        client, org, obj.name, olog, lambda: _check_budget(client, org), result.count_page
    )
    extract_id = new_extract_id()
    deleted_at: dict[str, datetime] = {}
    reread: pa.Table | None = None
    with ExtractWriter(data_root, org.name, obj.name, extract_id) as writer:
        if plan.sweep_reason and plan.watermark_field:
            olog.info("reconciliation sweep: %s", plan.sweep_reason)
            reread = _reconcile(scope, plan, data_root, deleted_at, result, org_now)

        where = ""
        if plan.mode == "incremental" and plan.watermark_from is not None:
            where = f"{plan.watermark_field} >= {soql_datetime(plan.watermark_from)}"
        output = _RecordOutput(writer, plan.watermark_field, reread)
        first_page = None
        if (
            opening is not None
            and opening.first_page is not None
            and opening.query_where == where
            and opening.query_fields == plan.fields
            and not plan.sweep_reason
        ):
            first_page = opening.first_page
        elif opening is not None and opening.first_page is not None:
            olog.info("fields or watermark changed since the last extract; querying again")
        stats = _query_with_restarts(scope, plan, where, output, writer, first_page)
        output.close(plan.fields)
        for record_id in stats.vanished:
            deleted_at.setdefault(record_id, org_now())

        deleted_to, sweep_next = _read_deletes(
            client, obj.name, plan, output, deleted_at, server_started, org_now(), olog, opening
        )
        _check_budget(client, org)

        watermark_to = output.max_stamp
        if watermark_to is not None and watermark_to > server_started + CLOCK_TOLERANCE:
            # A SystemModstamp later than the org's clock at the start of the query would move the
            # watermark past changes that have not happened yet. Records stamped after the start
            # are selected again by the next run instead.
            olog.warning(
                "newest %s %s is later than the org's clock %s; the watermark stays at the clock",
                plan.watermark_field,
                watermark_to.isoformat(),
                server_started.isoformat(),
            )
            watermark_to = server_started
        if plan.mode == "incremental" and plan.previous and plan.previous.watermark_to:
            before = datetime.fromisoformat(plan.previous.watermark_to)
            watermark_to = max(watermark_to, before) if watermark_to else before
        # NOTE: a field missing from describe is either deleted or hidden from the integration
        # user; REST describe cannot tell which, so extra["hidden_fields"], which the warehouse
        # reads, is never set here.
        extra: dict[str, Any] = {
            "pages": stats.pages,
            "pieces": stats.pieces,
            "reread": stats.reread,
            "replicateable": plan.replicateable,
            "composite_first_page": first_page is not None,
        }
        if plan.skipped_fields:
            extra["skipped_fields"] = plan.skipped_fields
        if sweep_next:
            extra["sweep_next_run"] = True
        manifest = Manifest(
            org=org.name,
            object=obj.name,
            extract_id=extract_id,
            mode=plan.mode,  # type: ignore[arg-type]
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            fields=plan.fields,
            run_id=run_id,
            watermark_field=plan.watermark_field,
            watermark_from=plan.watermark_from.isoformat() if plan.watermark_from else None,
            watermark_to=watermark_to.isoformat() if watermark_to else None,
            api_calls=client.api_calls - calls_before,
            api_used=client.usage.used if client.usage else None,
            api_max=client.usage.max if client.usage else None,
            server_started_at=server_started.isoformat(),
            deleted_covered_to=deleted_to,
            reconciled_at=server_started.isoformat() if result.reconciled else None,
            extra=extra,
        )
        deleted_table = _deleted_table(deleted_at) if deleted_at else None
        result.extract_dirs.append(writer.commit(manifest, deleted_table))
    result.records = manifest.records
    result.deleted = manifest.deleted
    result.watermark_from = manifest.watermark_from
    result.watermark_to = manifest.watermark_to
    olog.info(
        "%s extract: %d records in %d page(s), %d hard delete(s), watermark %s",
        plan.mode,
        result.records,
        result.pages,
        result.deleted,
        result.watermark_to,
    )


class _RecordOutput:
    """Write record batches to the extract and track the newest watermark value.

    Records the sweep re-read (``reread``) are held back until the end and written only if the
    incremental query did not return them too, because a record in both reads changed in between
    and the query's copy is the newer one. Their watermark values never move the watermark: they are
    older than the query's lower bound.
    """

    def __init__(
        self, writer: ExtractWriter, watermark_field: str | None, reread: pa.Table | None
    ) -> None:
        self.writer = writer
        self.watermark_field = watermark_field
        self.reread = reread
        self.max_stamp: datetime | None = None
        self.written = 0

    def __call__(self, table: pa.Table) -> None:
        if self.watermark_field and table.num_rows:
            newest = pc.max(table[self.watermark_field]).as_py()
            if newest is not None and (self.max_stamp is None or newest > self.max_stamp):
                self.max_stamp = newest
        if self.reread is not None and self.reread.num_rows and table.num_rows:
            seen = pc.is_in(self.reread["Id"], value_set=table["Id"].combine_chunks())
            self.reread = self.reread.filter(pc.invert(seen))
        self.writer.write_records(table)
        self.written += table.num_rows

    def reset(self) -> None:
        self.writer.discard_records()
        self.max_stamp = None
        self.written = 0

    def close(self, fields: list[FieldInfo]) -> None:
        """Write the held-back re-read records, or an empty batch so the file has its columns."""
        if self.reread is not None and self.reread.num_rows:
            self.writer.write_records(self.reread)
        elif self.written == 0:
            self.writer.write_records(to_arrow([], fields))


def _query_with_restarts(
    scope: QueryScope,
    plan: _Plan,
    where: str,
    output: _RecordOutput,
    writer: ExtractWriter,
    first_page: dict[str, Any] | None,
) -> QueryStats:
    """Run the main SELECT; an expired query locator starts it again from the same watermark.

    ``first_page`` is the query's first page when the opening ``/composite`` call read it; a
    restart reads everything again.
    """
    for attempt in range(MAX_QUERY_RESTARTS + 1):
        work_dir = writer.staging / "pieces"
        work_dir.mkdir(exist_ok=True)
        try:
            stats = run_query(
                scope,
                plan.fields,
                where,
                include_deleted=True,
                stamp_field=plan.watermark_field,
                sink=output,
                work_dir=work_dir,
                first_page=first_page if attempt == 0 else None,
            )
        except QueryLocatorExpired as exc:
            if attempt == MAX_QUERY_RESTARTS:
                raise
            scope.log.warning(
                "query locator expired (%s); starting the query again from the watermark", exc
            )
            output.reset()
            continue
        finally:
            for path in work_dir.iterdir():
                path.unlink()
            work_dir.rmdir()
        return stats
    raise AssertionError("unreachable")


def _reconcile(
    scope: QueryScope,
    plan: _Plan,
    data_root: Path,
    deleted_at: dict[str, datetime],
    result: ExtractResult,
    org_now: Callable[[], datetime],
) -> pa.Table | None:
    """Run the sweep; record hard deletes in ``deleted_at`` and return the missed records."""
    assert plan.watermark_field is not None
    known = known_records(data_root, scope.org.name, scope.sobject, plan.watermark_field)
    if known is None:
        scope.log.info("no full extract to reconcile against; the sweep is skipped")
        return None
    findings = sweep(scope, plan.fields, plan.watermark_field, known, plan.watermark_from)
    result.reconciled = True
    found_at = org_now()
    for record_id in findings.hard_deleted:
        # NOTE: the sweep cannot tell when a record was deleted; it records when it noticed.
        deleted_at.setdefault(record_id, found_at)
    reread = None
    if findings.missed:
        stats = QueryStats()
        reread = read_by_ids(scope, plan.fields, findings.missed, include_deleted=True, stats=stats)
        for record_id in stats.vanished:
            deleted_at.setdefault(record_id, found_at)
        result.missed_records = reread.num_rows
    scope.log.info(
        "reconciliation sweep read %d record ids in %d page(s): %d hard delete(s), %d missed record(s)",
        findings.org_records,
        findings.pages,
        len(findings.hard_deleted),
        len(findings.missed),
    )
    return reread


def _read_deletes(
    client: SalesforceClient,
    sobject: str,
    plan: _Plan,
    output: _RecordOutput,
    deleted_at: dict[str, datetime],
    server_started: datetime,
    end: datetime,
    olog: ObjectLog,
    opening: Opening | None,
) -> tuple[str | None, bool]:
    """Call the ``deleted`` resource for an incremental run and add its entries to ``deleted_at``.

    Returns the coverage to store (the next call starts there) and whether the next run must sweep
    because the org purged deleted records that the window needed.
    """
    if plan.mode == "full" or plan.deleted_from is None:
        # A full extract proves absence, and a sweep stood in for the resource: coverage restarts.
        return server_started.isoformat(), False
    # A SystemModstamp newer than the org's clock as the Date header shows it proves the org is
    # further on.
    if output.max_stamp is not None and output.max_stamp > end:
        end = output.max_stamp
    window = deleted_window(plan.deleted_from, end)
    if window is None:
        # The resource needs a window of at least one minute; the next run covers this one.
        return plan.deleted_covered, False
    start, end = window
    early = opening.deleted_window if opening is not None else None
    if opening is not None and early is not None and early[0] == start:
        # The opening /composite call already read this window.
        start, end = early
        body = opening.deleted
        if body is None:
            error = opening.deleted_error or {}
            if error.get("errorCode") == "INVALID_REPLICATION_DATE":
                olog.warning("deleted resource rejected the window %s to %s: %s", start, end, error)
                return None, True
            body = _call_deleted(client, sobject, start, end, olog)
    else:
        body = _call_deleted(client, sobject, start, end, olog)
    if body is None:
        return None, True
    for entry in body.get("deletedRecords") or []:
        deleted_at.setdefault(entry["id"], parse_datetime(entry["deletedDate"]))
    covered = body.get("latestDateCovered")
    covered_to = parse_datetime(covered).isoformat() if covered else end.isoformat()
    earliest_text = body.get("earliestDateAvailable")
    earliest = parse_datetime(earliest_text) if earliest_text else None
    purged = earliest is not None and earliest > start
    if purged:
        olog.warning(
            "the org purged deleted records after the window start %s (earliestDateAvailable %s); "
            "the next run runs the reconciliation sweep",
            start.isoformat(),
            earliest_text,
        )
    return covered_to, purged


def _call_deleted(
    client: SalesforceClient, sobject: str, start: datetime, end: datetime, olog: ObjectLog
) -> dict[str, Any] | None:
    """Call the ``deleted`` resource; None when it rejects the window as invalid.

    A window with more than 600,000 deleted ids (``EXCEEDED_ID_LIMIT``) is read in two halves.
    """
    try:
        return client.deleted(sobject, start.isoformat(), end.isoformat())
    except SalesforceAPIError as exc:
        if exc.code == "EXCEEDED_ID_LIMIT" and end - start >= timedelta(minutes=2):
            middle = (start + (end - start) / 2).replace(second=0, microsecond=0)
            olog.info("deleted window %s to %s has too many ids; reading it in halves", start, end)
            first = _call_deleted(client, sobject, start, middle, olog)
            second = _call_deleted(client, sobject, middle, end, olog)
            if first is None or second is None:
                return None
            return {
                "deletedRecords": [
                    *(first.get("deletedRecords") or []),
                    *(second.get("deletedRecords") or []),
                ],
                "earliestDateAvailable": first.get("earliestDateAvailable"),
                "latestDateCovered": second.get("latestDateCovered"),
            }
        if exc.code != "INVALID_REPLICATION_DATE":
            raise
        # The window does not fit the org's delete log (too old, or the org clock disagrees with
        # the Date header): the sweep of the next run finds what the window would have found.
        olog.warning("deleted resource rejected the window %s to %s: %s", start, end, exc)
        return None


def _deleted_table(deleted_at: dict[str, datetime]) -> pa.Table:
    ids = sorted(deleted_at)
    return pa.table(
        {
            "Id": pa.array(ids, pa.string()),
            "deleted_at": pa.array([deleted_at[i] for i in ids], pa.timestamp("ms", tz="UTC")),
        },
        schema=DELETED_SCHEMA,
    )


def _cadence_start(manifest: Manifest) -> datetime:
    return datetime.fromisoformat(manifest.server_started_at or manifest.started_at)


def _formula_due(data_root: Path, org: OrgConfig, sobject: str, now: datetime) -> bool:
    last = latest_manifest(data_root, org.name, sobject, mode="formula")
    if last is None or org.formula_refresh_hours <= 0:
        return True
    return now - _cadence_start(last) >= timedelta(hours=org.formula_refresh_hours)


def _sweep_due(data_root: Path, org: OrgConfig, sobject: str, now: datetime) -> bool:
    """Return whether the reconciliation cadence has passed since the last sweep or full extract."""
    if org.reconcile_hours <= 0:
        return True
    for path in reversed(list_extracts(data_root, org.name, sobject)):
        manifest = read_manifest(path)
        if manifest.status != "succeeded" or manifest.mode == "formula":
            continue
        if manifest.extra.get("sweep_next_run"):
            return True
        if manifest.mode == "full":
            return now - _cadence_start(manifest) >= timedelta(hours=org.reconcile_hours)
        if manifest.reconciled_at:
            last = datetime.fromisoformat(manifest.reconciled_at)
            return now - last >= timedelta(hours=org.reconcile_hours)
    return True


def _formula_refresh(
    client: SalesforceClient,
    org: OrgConfig,
    sobject: str,
    fields: list[FieldInfo],
    data_root: Path,
    run_id: str | None,
    server_started: datetime,
    result: ExtractResult,
) -> None:
    """Read ``Id`` and the formula fields of every live record into a ``formula`` extract."""
    olog = ObjectLog(log, {"org": org.name, "sobject": sobject})
    formula_fields = [f for f in fields if f.calculated]
    read_fields = [f for f in fields if f.name == "Id"] + formula_fields
    calls_before = client.api_calls
    started = datetime.now(UTC)
    scope = QueryScope(
        client, org, sobject, olog, lambda: _check_budget(client, org), result.count_page
    )
    extract_id = new_extract_id()
    with ExtractWriter(data_root, org.name, sobject, extract_id) as writer:
        work_dir = writer.staging / "pieces"
        work_dir.mkdir()
        stats = run_query(
            scope,
            read_fields,
            "",
            include_deleted=False,
            stamp_field=None,
            sink=writer.write_records,
            work_dir=work_dir,
        )
        if writer.records == 0:
            writer.write_records(to_arrow([], read_fields))
        manifest = Manifest(
            org=org.name,
            object=sobject,
            extract_id=extract_id,
            mode="formula",
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            fields=read_fields,
            run_id=run_id,
            api_calls=client.api_calls - calls_before,
            api_used=client.usage.used if client.usage else None,
            api_max=client.usage.max if client.usage else None,
            server_started_at=server_started.isoformat(),
            extra={"pages": stats.pages, "pieces": stats.pieces},
        )
        result.extract_dirs.append(writer.commit(manifest))
    result.formula_records = manifest.records
    olog.info(
        "formula refresh of %d field(s) read %d records in %d page(s)",
        len(formula_fields),
        manifest.records,
        stats.pages,
    )


def _stopped(
    client: SalesforceClient,
    org: OrgConfig,
    obj: ObjectConfig,
    data_root: Path,
    fields: list[FieldInfo],
    result: ExtractResult,
    started: datetime,
    run_id: str | None,
    previous: Manifest | None,
    reason: str,
    olog: ObjectLog,
    calls_before: int,
    seconds_before: float,
) -> ExtractResult:
    """Record a run stopped by the API budget: no records, the watermark where it was.

    The ``stopped_budget`` extract is written only when the fields are known (from describe or an
    earlier extract), because an extract without columns would read as every field removed.
    """
    olog.warning("stopped: %s", reason)
    result.status = "stopped_budget"
    result.message = reason
    result.records = 0
    result.deleted = 0
    result.extract_dirs.clear()
    if fields:
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
            watermark_field=previous.watermark_field if previous else None,
            watermark_from=previous.watermark_to if previous else None,
            watermark_to=previous.watermark_to if previous else None,
            api_calls=client.api_calls - calls_before,
            api_used=client.usage.used if client.usage else None,
            api_max=client.usage.max if client.usage else None,
            deleted_covered_to=previous.deleted_covered_to if previous else None,
        )
        result.extract_dirs.append(write_extract(data_root, manifest, to_arrow([], fields)))
    result.watermark_to = previous.watermark_to if previous else None
    return _finish(result, client, calls_before, seconds_before)


def _check_budget(client: SalesforceClient, org: OrgConfig) -> None:
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
