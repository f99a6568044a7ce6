"""The extract checks catch invalid extracts, and an invalid extract stops the diff."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from cora_pipeline.config import Settings
from cora_pipeline.orchestration.assets import UNIQUE_IDS_CHECK, VALID_EXTRACT_CHECK
from cora_pipeline.orchestration.checks import reconcile_row_count, unique_ids, validate_extract
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import extract_key, warehouse_key

from .manifests import write_usage_extract

STARTED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _extract(data_root: Path, ids: tuple[str, ...]) -> Path:
    return write_usage_extract(
        data_root,
        "demo",
        "Account",
        started=STARTED,
        api_used=10,
        api_max=15_000,
        api_calls=2,
        ids=ids,
    )


def test_valid_extract_passes(tmp_path: Path) -> None:
    path = _extract(tmp_path, ("001A", "001B"))

    assert validate_extract(path).passed
    assert unique_ids(path).passed


def test_duplicate_ids_fail(tmp_path: Path) -> None:
    path = _extract(tmp_path, ("001A", "001B", "001A"))

    outcome = unique_ids(path)

    assert not outcome.passed
    assert outcome.metadata["duplicate_ids"] == "001A"
    assert "1 rows repeat an Id" in outcome.description


def test_row_count_mismatch_with_manifest_fails(tmp_path: Path) -> None:
    path = _extract(tmp_path, ("001A", "001B"))
    pq.write_table(pa.table({"Id": pa.array(["001A"], pa.string())}), path / "records.parquet")

    outcome = validate_extract(path)

    assert not outcome.passed
    assert "has 1 rows but the manifest says 2" in outcome.description


def test_missing_id_fails(tmp_path: Path) -> None:
    path = _extract(tmp_path, ("001A",))
    pq.write_table(pa.table({"Id": pa.array([None], pa.string())}), path / "records.parquet")

    outcome = validate_extract(path)

    assert not outcome.passed
    assert outcome.metadata["null_ids"] == 1


def test_unreadable_manifest_fails(tmp_path: Path) -> None:
    path = _extract(tmp_path, ("001A",))
    (path / "manifest.json").write_text("{", encoding="utf-8")

    assert not validate_extract(path).passed


def test_reconcile_reports_difference() -> None:
    outcome = reconcile_row_count(198, 200)

    assert not outcome.passed
    assert outcome.metadata["difference"] == -2
    assert reconcile_row_count(200, 200).passed


def test_extract_checks_are_blocking(emulator_settings: Settings) -> None:
    defs = build_definitions(emulator_settings)
    extract = defs.resolve_assets_def(extract_key("demo", "Account"))

    specs = {spec.name: spec for spec in extract.check_specs}

    assert specs[VALID_EXTRACT_CHECK].blocking
    assert specs[UNIQUE_IDS_CHECK].blocking


def test_invalid_pending_extract_stops_diff(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    job = build_definitions(emulator_settings).resolve_job_def("sync_demo")
    first = job.execute_in_process(
        instance=instance,
        asset_selection=[extract_key("demo", "Account"), warehouse_key("demo", "Account")],
    )
    assert first.success
    bad = _extract(emulator_settings.data_root, ("001A", "001A"))

    second = job.execute_in_process(
        instance=instance,
        asset_selection=[warehouse_key("demo", "Account")],
        raise_on_error=False,
    )

    assert not second.success
    failures = [e for e in second.all_events if e.is_step_failure]
    assert len(failures) == 1
    failure = failures[0].step_failure_data.user_failure_data
    assert failure is not None
    message = failure.description or ""
    assert f"extract {bad} is invalid" in message
    assert "cora/full_refresh=true" in message
