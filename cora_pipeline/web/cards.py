"""Card contents for one org: the connection record, API usage and the last sync per object.

Connection details come from the vault (records only, never tokens). API usage and sync history come
from the warehouse, opened read-only for each page view: the analyst catalog ``analyst.duckdb``
when it exists, else ``warehouse.duckdb``. When neither can be read, the card shows why.
"""

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.connect import ConnectionRecord, ConnectionStore
from cora_pipeline.connect.vault import KEY_ENV, KEY_FILE_NAME
from cora_pipeline.errors import CoraError
from cora_pipeline.extract.extractor import budget_calls
from cora_pipeline.warehouse.store import ANALYST_FILE, WAREHOUSE_FILE

log = logging.getLogger(__name__)

CardStatus = Literal["not_connected", "connected", "needs_reauthorization", "budget_exhausted"]
STATUS_LABELS: dict[CardStatus, str] = {
    "not_connected": "Not connected",
    "connected": "Connected",
    "needs_reauthorization": "Needs re-authorization",
    "budget_exhausted": "API budget exhausted",
}
# Salesforce counts API requests over a rolling 24 hours, so an older reading is not today's usage.
USAGE_WINDOW = timedelta(hours=24)
# The extractor writes this status when it stopped because the org reached its API budget.
STOPPED_BUDGET = "stopped_budget"


@dataclass(frozen=True)
class ObjectSync:
    """The newest sync of one object, with the record changes it found."""

    sobject: str
    status: str
    mode: str
    baseline: bool
    finished_at: datetime | None
    records_fetched: int
    created: int = 0
    updated: int = 0
    deleted: int = 0
    undeleted: int = 0
    error: str | None = None

    @property
    def total_changes(self) -> int:
        return self.created + self.updated + self.deleted + self.undeleted


@dataclass(frozen=True)
class ApiUsage:
    """The org's API usage as the last sync read it from Salesforce's ``Sforce-Limit-Info``."""

    used: int
    maximum: int
    budget: int
    """Calls at which the pipeline stops: the org's ``api_budget_share`` of ``maximum``."""
    as_of: datetime

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.maximum if self.maximum else 0.0

    @property
    def budget_percent(self) -> float:
        return 100.0 * self.budget / self.maximum if self.maximum else 0.0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget


@dataclass(frozen=True)
class SyncSummary:
    """One org's sync history. ``unavailable`` explains why it could not be read."""

    objects: tuple[ObjectSync, ...] = ()
    usage: ApiUsage | None = None
    stopped_for_budget_at: datetime | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class OrgCard:
    """Everything one Salesforce card renders, for one configured org."""

    org: OrgConfig
    status: CardStatus
    record: ConnectionRecord | None
    sync: SyncSummary = field(default_factory=SyncSummary)
    vault_error: str | None = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def connectable(self) -> bool:
        return is_connectable(self.org)


def is_connectable(org: OrgConfig) -> bool:
    """Return False for the built-in demo org, which only ``cora demo`` can connect."""
    return org.login_url.startswith("https://")


def build_cards(settings: Settings, now: datetime | None = None) -> list[OrgCard]:
    """Build a card per configured org, in name order."""
    now = now or datetime.now(UTC)
    records, vault_error = _read_records(settings)
    summaries = read_sync_summaries(settings.data_root, settings.orgs.values(), now)
    cards = []
    for name in sorted(settings.orgs):
        org = settings.orgs[name]
        record = records.get(name)
        summary = summaries.get(name, SyncSummary())
        cards.append(
            OrgCard(
                org=org,
                status=card_status(record, summary),
                record=record,
                sync=summary,
                vault_error=vault_error.get(name),
            )
        )
    return cards


def card_status(record: ConnectionRecord | None, summary: SyncSummary) -> CardStatus:
    if record is None:
        return "not_connected"
    if record.needs_reauthorization:
        return "needs_reauthorization"
    # NOTE: usage is read from the last sync, not from Salesforce live. An org whose very first
    # sync found the budget spent has no sync_runs row yet, so its card still says Connected.
    if summary.stopped_for_budget_at is not None or (summary.usage and summary.usage.exhausted):
        return "budget_exhausted"
    return "connected"


def open_store(settings: Settings) -> ConnectionStore | None:
    """Open the vault for reading, or return None when nothing was ever connected.

    Opening never creates a key here; the Connect action creates one with the first connection.
    """
    vault_dir = settings.home / "vault"
    if not any(vault_dir.glob("*.json")) and not _key_available(settings):
        return None
    return ConnectionStore.open(settings)


def _key_available(settings: Settings) -> bool:
    return bool(os.environ.get(KEY_ENV)) or (settings.home / KEY_FILE_NAME).exists()


def _read_records(
    settings: Settings,
) -> tuple[dict[str, ConnectionRecord], dict[str, str]]:
    """Return the connection records by org, and the vault errors by org."""
    try:
        store = open_store(settings)
    except CoraError as exc:
        log.error("cannot open the vault under %s: %s", settings.home, exc)
        return {}, dict.fromkeys(settings.orgs, str(exc))
    if store is None:
        return {}, {}
    records: dict[str, ConnectionRecord] = {}
    errors: dict[str, str] = {}
    for name in settings.orgs:
        try:
            record = store.get(name)
        except CoraError as exc:
            log.error("cannot read the connection of org %s: %s", name, exc)
            errors[name] = str(exc)
            continue
        if record is not None:
            records[name] = record
    return records, errors


def read_sync_summaries(
    data_root: Path, orgs: Iterable[OrgConfig], now: datetime
) -> dict[str, SyncSummary]:
    """Read each org's newest sync per object and its API usage from the warehouse.

    The analyst catalog is read first: any open connection to ``warehouse.duckdb``, even a
    read-only one, keeps the pipeline's writer from opening it until the connection closes.
    """
    orgs = list(orgs)
    candidates = [data_root / ANALYST_FILE, data_root / WAREHOUSE_FILE]
    existing = [path for path in candidates if path.exists()]
    if not existing:
        return {}
    failures = []
    for path in existing:
        try:
            return _read_summaries(path, orgs, now)
        except duckdb.Error as exc:
            log.warning("cannot read sync history from %s: %s", path, exc)
            failures.append(f"{path.name}: {exc}")
    message = (
        "The sync history is not available right now, usually because the pipeline is writing "
        "to the warehouse. Reload the page in a minute. (" + "; ".join(failures) + ")"
    )
    return {org.name: SyncSummary(unavailable=message) for org in orgs}


def _read_summaries(path: Path, orgs: list[OrgConfig], now: datetime) -> dict[str, SyncSummary]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return {org.name: _summary(con, org, now) for org in orgs}
    finally:
        con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _summary(con: duckdb.DuckDBPyConnection, org: OrgConfig, now: datetime) -> SyncSummary:
    latest = _rows(
        con,
        """
        SELECT object, status, mode, baseline, finished_at, records_fetched, error, extract_id
        FROM sync_runs
        WHERE org = ?
        QUALIFY row_number() OVER (
            PARTITION BY object ORDER BY finished_at DESC NULLS LAST, extract_id DESC
        ) = 1
        ORDER BY object
        """,
        [org.name],
    )
    counts = _change_counts(con, org, [row["extract_id"] for row in latest])
    objects = tuple(
        ObjectSync(
            sobject=row["object"],
            status=row["status"],
            mode=row["mode"],
            baseline=bool(row["baseline"]),
            finished_at=row["finished_at"],
            records_fetched=int(row["records_fetched"] or 0),
            created=counts.get((row["extract_id"], "created"), 0),
            updated=counts.get((row["extract_id"], "updated"), 0),
            deleted=counts.get((row["extract_id"], "deleted"), 0),
            undeleted=counts.get((row["extract_id"], "undeleted"), 0),
            error=row["error"],
        )
        for row in latest
    )
    since = now - USAGE_WINDOW
    stopped = [
        o.finished_at
        for o in objects
        if o.status == STOPPED_BUDGET and o.finished_at is not None and o.finished_at >= since
    ]
    return SyncSummary(
        objects=objects,
        usage=_usage(con, org, since),
        stopped_for_budget_at=max(stopped) if stopped else None,
    )


def _change_counts(
    con: duckdb.DuckDBPyConnection, org: OrgConfig, extract_ids: list[str]
) -> dict[tuple[str, str], int]:
    """Return the number of record changes per (extract_id, change_type) of these extracts."""
    if not extract_ids:
        return {}
    rows = _rows(
        con,
        """
        SELECT extract_id, change_type, count(*) AS changes
        FROM record_changes
        WHERE org = ? AND list_contains(?, extract_id)
        GROUP BY extract_id, change_type
        """,
        [org.name, extract_ids],
    )
    return {(row["extract_id"], row["change_type"]): int(row["changes"]) for row in rows}


def _usage(con: duckdb.DuckDBPyConnection, org: OrgConfig, since: datetime) -> ApiUsage | None:
    rows = _rows(
        con,
        """
        SELECT api_used, api_max, finished_at
        FROM sync_runs
        WHERE org = ? AND api_used IS NOT NULL AND api_max IS NOT NULL AND finished_at >= ?
        ORDER BY finished_at DESC
        LIMIT 1
        """,
        [org.name, since],
    )
    if not rows:
        return None
    row = rows[0]
    maximum = int(row["api_max"])
    return ApiUsage(
        used=int(row["api_used"]),
        maximum=maximum,
        budget=budget_calls(org, maximum),
        as_of=row["finished_at"],
    )
