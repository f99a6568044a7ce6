"""Card contents for one org: the connection record, API usage and the last sync per object.

Connection details come from the vault (records only, never tokens). API usage and sync history come
from the warehouse, opened read-only for each page view: the analyst catalog ``analyst.duckdb``
when it exists, else ``warehouse.duckdb``. When neither can be read, the card shows why.
"""

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.connect import ConnectionRecord, ConnectionStore
from cora_pipeline.connect.vault import KEY_ENV, KEY_FILE_NAME
from cora_pipeline.errors import CoraError
from cora_pipeline.warehouse.summary import (
    SyncSummary,
    read_sync_summaries,
)

log = logging.getLogger(__name__)

CardStatus = Literal["not_connected", "connected", "needs_reauthorization", "budget_exhausted"]
STATUS_LABELS: dict[CardStatus, str] = {
    "not_connected": "Not connected",
    "connected": "Connected",
    "needs_reauthorization": "Needs re-authorization",
    "budget_exhausted": "API budget exhausted",
}


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
    # sync found the budget spent has no sync_runs row yet, so its card still shows Connected.
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
