"""What the incremental query cannot see: hard deletes and records committed outside the overlap."""

from datetime import timedelta

import pytest

from cora_pipeline.extract.convert import parse_datetime
from cora_pipeline.extract.files import read_deleted
from tests.extract.conftest import Harness, deleted_ids, ids_of, manifest_of, records_of


def _victim(harness: Harness, sobject: str = "Account") -> str:
    return str(sorted(harness.admin.records(sobject), key=lambda r: r["Id"])[-1]["Id"])


def _purge_delete_log(harness: Harness, sobject: str, record_id: str) -> None:
    """Forget a delete the way Salesforce does when it purges the delete log."""
    harness.org.deleted_log[sobject].pop(record_id, None)
    harness.org.earliest_date_available.pop(sobject, None)


def test_hard_delete_found_by_deleted_resource(harness: Harness) -> None:
    harness.extract("Account")
    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    logged = parse_datetime(harness.org.deleted_log["Account"][victim])
    harness.admin.advance_clock(120)

    second = harness.extract("Account")

    assert second.mode == "incremental"
    assert deleted_ids(second) == {victim}
    deleted = read_deleted(second.extract_dirs[0])
    assert deleted is not None
    assert deleted.to_pylist()[0]["deleted_at"] == logged
    assert second.deleted == 1
    assert victim not in ids_of(records_of(second))


def test_deleted_coverage_continues_from_latest_date_covered(harness: Harness) -> None:
    harness.extract("Account")
    harness.admin.advance_clock(120)
    second = harness.extract("Account")
    covered = manifest_of(second).deleted_covered_to
    assert covered is not None
    org_minute = harness.admin.now().replace(second=0, microsecond=0)
    assert parse_datetime(covered) == org_minute

    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    harness.admin.advance_clock(120)
    third = harness.extract("Account")

    assert deleted_ids(third) == {victim}


def test_deleted_window_follows_org_clock(harness: Harness) -> None:
    harness.extract("Account")
    victim = _victim(harness)
    harness.admin.advance_clock(3600)
    harness.admin.hard_delete("Account", victim)
    harness.admin.advance_clock(120)

    second = harness.extract("Account")

    assert deleted_ids(second) == {victim}


def test_sweep_finds_purged_hard_delete(harness: Harness) -> None:
    config = harness.org_config(reconcile_hours=0)
    harness.extract("Account", org_config=config)
    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    _purge_delete_log(harness, "Account", victim)

    second = harness.extract("Account", org_config=config)

    assert second.reconciled is True
    assert deleted_ids(second) == {victim}
    assert manifest_of(second).reconciled_at is not None


def test_sweep_waits_for_its_cadence(harness: Harness) -> None:
    config = harness.org_config(reconcile_hours=24)
    harness.extract("Account", org_config=config)
    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    _purge_delete_log(harness, "Account", victim)

    soon = harness.extract("Account", org_config=config)
    assert soon.reconciled is False
    assert deleted_ids(soon) == set()

    later = harness.admin.now() + timedelta(hours=25)
    due = harness.extract("Account", org_config=config, now=later)
    assert due.reconciled is True
    assert deleted_ids(due) == {victim}


def test_purged_delete_log_schedules_sweep(harness: Harness) -> None:
    config = harness.org_config(reconcile_hours=24)
    harness.extract("Account", org_config=config)
    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    # The org drops the entry but reports the purge through earliestDateAvailable.
    harness.org.deleted_log["Account"].pop(victim)

    second = harness.extract("Account", org_config=config)
    assert second.reconciled is False
    assert manifest_of(second).extra.get("sweep_next_run") is True

    third = harness.extract("Account", org_config=config)
    assert third.reconciled is True
    assert deleted_ids(third) == {victim}


def test_sweep_reads_record_committed_before_overlap(harness: Harness) -> None:
    config = harness.org_config(reconcile_hours=0)
    first = harness.extract("Account", org_config=config)
    assert first.watermark_to is not None
    too_late = parse_datetime(first.watermark_to) - timedelta(days=1)
    late_id = harness.admin.commit_late("Account", {"Name": "Long Transaction"}, too_late)

    second = harness.extract("Account", org_config=config)

    assert second.reconciled is True
    assert second.missed_records == 1
    table = records_of(second)
    assert ids_of(table).count(late_id) == 1
    assert second.watermark_to == first.watermark_to


def test_incremental_alone_misses_record_before_overlap(harness: Harness) -> None:
    config = harness.org_config(reconcile_hours=24)
    first = harness.extract("Account", org_config=config)
    assert first.watermark_to is not None
    too_late = parse_datetime(first.watermark_to) - timedelta(days=1)
    late_id = harness.admin.commit_late("Account", {"Name": "Long Transaction"}, too_late)

    second = harness.extract("Account", org_config=config)

    assert second.reconciled is False
    assert late_id not in ids_of(records_of(second))


def test_deleted_window_past_15_days_sweeps_instead(harness: Harness) -> None:
    harness.extract("Account")
    victim = _victim(harness)
    harness.admin.advance_clock(16 * 24 * 3600)
    harness.admin.hard_delete("Account", victim)
    _purge_delete_log(harness, "Account", victim)

    second = harness.extract("Account")

    assert second.mode == "incremental"
    assert second.reconciled is True
    assert deleted_ids(second) == {victim}


def test_clock_passed_in_replaces_date_header(harness: Harness) -> None:
    harness.extract("Account")
    victim = _victim(harness)
    harness.admin.hard_delete("Account", victim)
    _purge_delete_log(harness, "Account", victim)

    # 16 days on by the clock passed in: the deleted window cannot reach back, so the sweep runs.
    later = harness.admin.now() + timedelta(days=16)
    second = harness.extract("Account", now=later)

    assert second.reconciled is True
    assert deleted_ids(second) == {victim}
    assert manifest_of(second).server_started_at is not None
    assert parse_datetime(manifest_of(second).server_started_at) >= later


def test_not_replicateable_object_sweeps_every_run(harness: Harness) -> None:
    harness.extract("Organization")
    client = harness.client()

    second = harness.extract("Organization", client=client)

    assert second.status == "succeeded"
    assert second.mode == "incremental"
    assert second.reconciled is True
    assert second.deleted == 0
    # /limits, describe, one sweep page and one query page: no deleted-resource call.
    assert second.api_calls == 4


def test_deleted_window_over_id_limit_read_in_halves(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cora_pipeline.emulator import rest

    harness.extract("Account")
    victims = sorted(r["Id"] for r in harness.admin.records("Account"))[:4]
    for number, victim in enumerate(victims):
        harness.admin.hard_delete("Account", victim)
        harness.admin.advance_clock(120 if number % 2 else 1)
    harness.admin.advance_clock(120)
    # The emulator then rejects any window with more than two deleted ids.
    monkeypatch.setattr(rest, "MAX_REPLICATION_IDS", 2)

    second = harness.extract("Account")

    assert deleted_ids(second) == set(victims)
