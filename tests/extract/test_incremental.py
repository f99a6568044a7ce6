"""Incremental extraction by watermark: full first, then changes, overlap and shared stamps."""

from datetime import datetime, timedelta

import pyarrow.compute as pc

from cora_pipeline.extract.extractor import latest_manifest
from tests.extract.conftest import Harness, ids_of, manifest_of, records_of


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_first_run_is_full_and_sets_watermark(harness: Harness) -> None:
    result = harness.extract("Account")

    assert result.status == "succeeded"
    assert result.mode == "full"
    table = records_of(result)
    org_rows = harness.admin.records("Account", include_deleted=True)
    assert sorted(ids_of(table)) == sorted(r["Id"] for r in org_rows)
    newest = max(_stamp(r["SystemModstamp"].replace("+0000", "+00:00")) for r in org_rows)
    manifest = manifest_of(result)
    assert result.watermark_to is not None
    assert manifest.server_started_at is not None
    assert _stamp(result.watermark_to) == min(newest, _stamp(manifest.server_started_at))
    assert manifest.watermark_field == "SystemModstamp"
    assert manifest.records == len(org_rows)


def test_future_modstamp_does_not_move_watermark_ahead(harness: Harness) -> None:
    ahead = harness.admin.now() + timedelta(hours=6)
    harness.admin.create("Account", {"Name": "Stamped Ahead"}, modstamp=_wire(ahead))

    first = harness.extract("Account")
    changed = harness.admin.create("Account", {"Name": "Changed After"})
    second = harness.extract("Account")

    assert first.watermark_to is not None
    assert _stamp(first.watermark_to) < ahead
    assert changed in ids_of(records_of(second))


def test_incremental_reads_only_changed_records(harness: Harness) -> None:
    harness.extract("Account")
    account = sorted(harness.admin.records("Account"), key=lambda r: r["Id"])[3]
    harness.admin.update("Account", account["Id"], {"Name": "Changed Name"})

    second = harness.extract("Account")

    assert second.mode == "incremental"
    table = records_of(second)
    assert account["Id"] in ids_of(table)
    row = table.filter(pc.equal(table["Id"], account["Id"])).to_pylist()[0]
    assert row["Name"] == "Changed Name"
    # Only records inside the overlap window before the old watermark come back with it.
    assert table.num_rows < len(harness.admin.records("Account"))


def test_full_on_demand_reads_everything(harness: Harness) -> None:
    harness.extract("Account")
    again = harness.extract("Account", full=True)

    assert again.mode == "full"
    assert again.records == len(harness.admin.records("Account", include_deleted=True))


def test_soft_delete_arrives_through_query_all(harness: Harness) -> None:
    harness.extract("Contact")
    contact = sorted(harness.admin.records("Contact"), key=lambda r: r["Id"])[0]
    harness.admin.delete("Contact", contact["Id"])

    second = harness.extract("Contact")

    table = records_of(second)
    row = table.filter(pc.equal(table["Id"], contact["Id"])).to_pylist()
    assert len(row) == 1
    assert row[0]["IsDeleted"] is True


def test_late_commit_inside_overlap_is_caught(harness: Harness) -> None:
    first = harness.extract("Account")
    watermark = _stamp(first.watermark_to or "")
    late_id = harness.admin.commit_late(
        "Account", {"Name": "Committed Late"}, watermark - timedelta(seconds=120)
    )

    second = harness.extract("Account")

    assert late_id in ids_of(records_of(second))
    assert second.watermark_from == (watermark - timedelta(seconds=300)).isoformat()


def test_shared_stamp_across_pages_is_complete(harness: Harness) -> None:
    config = harness.org_config(batch_size=200)
    harness.extract("Account", org_config=config)
    stamp = harness.admin.now()
    created = {
        harness.admin.create("Account", {"Name": f"Same Stamp {n}"}, modstamp=_wire(stamp))
        for n in range(2500)
    }

    second = harness.extract("Account", org_config=config)

    assert second.pages >= 13
    ids = ids_of(records_of(second))
    assert created <= set(ids)
    assert len(ids) == len(set(ids))
    assert second.watermark_to == stamp.isoformat()

    # The stamp equals the watermark now, and the next run selects it again rather than skip it.
    third = harness.extract("Account", org_config=config)
    assert created <= set(ids_of(records_of(third)))


def test_budget_stop_mid_shared_stamp_keeps_watermark(harness: Harness) -> None:
    config = harness.org_config(batch_size=200, api_budget_share=0.5)
    first = harness.extract("Account", org_config=config)
    stamp = harness.admin.now()
    created = {
        harness.admin.create("Account", {"Name": f"Shared {n}"}, modstamp=_wire(stamp))
        for n in range(2500)
    }
    # 1,000 allowed calls: the run may use up to 500, which it reaches after a few pages.
    harness.admin.set_api_limit(1000)
    harness.admin.set_api_usage(495)

    stopped = harness.extract("Account", org_config=config)

    assert stopped.status == "stopped_budget"
    assert stopped.pages >= 1
    assert stopped.pages < 13
    assert stopped.records == 0
    assert stopped.watermark_to == first.watermark_to
    newest = latest_manifest(harness.data_root, "demo", "Account", mode="watermark")
    assert newest is not None
    assert newest.watermark_to == first.watermark_to

    harness.admin.set_api_usage(0)
    resumed = harness.extract("Account", org_config=config)
    assert resumed.status == "succeeded"
    assert created <= set(ids_of(records_of(resumed)))


def test_last_modified_date_when_modstamp_not_filterable(harness: Harness) -> None:
    definition = harness.org.schema["Account"]
    modstamp = definition.fields["SystemModstamp"]
    definition.fields["SystemModstamp"] = modstamp.with_changes(filterable=False)
    definition.reindex()
    harness.extract("Account")

    second = harness.extract("Account")

    assert second.mode == "incremental"
    assert manifest_of(second).watermark_field == "LastModifiedDate"


def test_full_every_run_without_filterable_watermark(harness: Harness) -> None:
    definition = harness.org.schema["Account"]
    for name in ("SystemModstamp", "LastModifiedDate"):
        definition.fields[name] = definition.fields[name].with_changes(filterable=False)
    definition.reindex()
    harness.extract("Account")

    second = harness.extract("Account")

    assert second.mode == "full"
    assert manifest_of(second).watermark_field is None


def _wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
