"""Sync history per org from the warehouse: the newest sync of each object and the API usage.

Read by ``cora status`` and the Integrations page. The analyst catalog ``analyst.duckdb`` is read
first, ``warehouse.duckdb`` only when it is missing, because any open connection to the warehouse file,
even a read-only one, keeps the pipeline's writer out until it closes.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from cora_pipeline.config import OrgConfig
from cora_pipeline.extract.extractor import budget_calls
from cora_pipeline.warehouse.store import ANALYST_FILE, WAREHOUSE_FILE

log = logging.getLogger(__name__)

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
