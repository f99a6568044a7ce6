"""Schema changes and API budget pressure in the emulator show up in checks, metadata and ticks."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import requests

from cora_pipeline.config import Settings
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.emulator_service import read_descriptor, service_dir
from cora_pipeline.orchestration.keys import extract_key, warehouse_key

ACCOUNT = [extract_key("demo", "Account"), warehouse_key("demo", "Account")]
SCHEMA_CHECK = "column_schema_change"


def _admin(settings: Settings, method: str, path: str, body: dict[str, Any]) -> None:
    """Call the emulator's admin API on the demo org's host."""
    service = read_descriptor(service_dir(settings, "demo"))
    assert service is not None
    response = requests.request(
        method,
        f"{service.instance_url}/__emulator/{path}",
        json=body,
        verify=service.ca_file,
        timeout=30,
    )
    assert response.ok, response.text


def _sync_account(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def("sync_demo")
    return job.execute_in_process(instance=instance, asset_selection=ACCOUNT, raise_on_error=False)


def _check(result: dg.ExecuteInProcessResult, name: str) -> Any:
    evaluations = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.event_specific_data.check_name == name  # type: ignore[union-attr]
    ]
    assert len(evaluations) == 1, f"{name}: {len(evaluations)} evaluations"
    return evaluations[0]


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    events = [
        event.step_materialization_data.materialization
        for event in result.all_events
        if event.is_step_materialization and event.asset_key == key
    ]
    assert len(events) == 1
    return {name: value.value for name, value in events[0].metadata.items()}


def test_added_field_warns_schema_change(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    assert _sync_account(emulator_settings, instance).success
    _admin(emulator_settings, "POST", "fields/Account", {"name": "Tier__c", "type": "string"})

    second = _sync_account(emulator_settings, instance)

    assert second.success
    evaluation = _check(second, SCHEMA_CHECK)
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "Added columns: Tier__c" in evaluation.description
    metadata = _metadata(second, warehouse_key("demo", "Account"))
    assert metadata["schema_changes"] == 1


def test_exhausted_budget_stops_extract_and_skips_tick(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    assert _sync_account(emulator_settings, instance).success
    # The demo org may spend half of its 15,000 daily calls, so 7,499 leaves one call.
    _admin(emulator_settings, "PUT", "api_usage", {"used": 7_499})

    result = _sync_account(emulator_settings, instance)

    assert result.success
    extract = _metadata(result, extract_key("demo", "Account"))
    assert extract["status"] == "stopped_budget"
    assert extract["api_budget"] == 7_500
    assert extract["api_used"] >= 7_500
    assert extract["records_fetched"] == 0
    count_check = _check(result, "row_count_matches_salesforce")
    assert count_check.passed is True
    assert count_check.metadata["skipped"].value is True

    schedule = (
        build_definitions(emulator_settings)
        .get_repository_def()
        .get_schedule_def("sync_demo_schedule")
    )
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.now(UTC).replace(second=0, microsecond=0)
    )
    tick = schedule.evaluate_tick(context)

    assert not tick.run_requests
    assert "would pass the API budget" in (tick.skip_message or "")
    assert "of 15,000 daily calls" in (tick.skip_message or "")
