"""An org's job runs in process against the bundled emulator, with no credentials configured."""

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import dagster as dg

from cora_pipeline.config import DEFAULT_OBJECTS, Settings
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.orchestration.assets import (
    ROW_COUNT_CHECK,
    UNIQUE_IDS_CHECK,
    VALID_EXTRACT_CHECK,
)
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.emulator_service import (
    read_descriptor,
    service_dir,
    stop_emulator,
)
from cora_pipeline.orchestration.keys import extract_key, warehouse_key
from cora_pipeline.orchestration.resources import CoraResource

EXTRACT_METADATA = {
    "records_fetched",
    "api_calls",
    "api_used",
    "api_max",
    "api_budget",
    "watermark",
    "duration_seconds",
    "dagster/row_count",
    "dagster/column_schema",
    "dagster/uri",
}
WAREHOUSE_METADATA = {
    "changes_created",
    "changes_updated",
    "changes_deleted",
    "changes_undeleted",
    "field_changes",
    "latest_field_changes",
    "duration_seconds",
    "dagster/row_count",
    "dagster/column_schema",
    "dagster/uri",
    "dagster/table_name",
}


def _run(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    return defs.resolve_job_def("sync_demo").execute_in_process(
        instance=instance, raise_on_error=False
    )


def _materialization(
    result: dg.ExecuteInProcessResult, key: dg.AssetKey
) -> dg.AssetMaterialization:
    events = [
        event.step_materialization_data.materialization
        for event in result.all_events
        if event.is_step_materialization and event.asset_key == key
    ]
    assert len(events) == 1, f"{key.to_user_string()}: {len(events)} materializations"
    return events[0]


def _value(metadata: Mapping[str, Any], key: str) -> Any:
    return metadata[key].value


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    outcomes = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            outcomes[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = (  # type: ignore[union-attr]
                evaluation.passed  # type: ignore[union-attr]
            )
    return outcomes


def test_job_syncs_demo_org_without_credentials(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    first = _run(emulator_settings, instance)

    assert first.success
    account = _materialization(first, extract_key("demo", "Account")).metadata
    assert set(account) >= EXTRACT_METADATA
    assert _value(account, "records_fetched") > 0
    assert _value(account, "api_calls") > 0
    assert _value(account, "dagster/row_count") == _value(account, "records_fetched")
    assert _value(account, "dagster/uri").endswith("records.parquet")
    columns = {c.name for c in _value(account, "dagster/column_schema").columns}
    assert {"Id", "Name", "SystemModstamp"} <= columns
    warehouse = _materialization(first, warehouse_key("demo", "Account")).metadata
    assert set(warehouse) >= WAREHOUSE_METADATA
    assert _value(warehouse, "dagster/row_count") == _value(account, "records_fetched")
    assert _value(warehouse, "dagster/table_name") == "demo.Account"

    checks = _checks(first)
    for sobject in DEFAULT_OBJECTS:
        assert checks[(f"salesforce/demo/{sobject}", VALID_EXTRACT_CHECK)] is True
        assert checks[(f"salesforce/demo/{sobject}", UNIQUE_IDS_CHECK)] is True
        assert checks[(f"warehouse/demo/{sobject}", ROW_COUNT_CHECK)] is True

    # The vault contains the connection, and the emulator keeps serving for the next run.
    record = ConnectionStore.open(emulator_settings).get("demo")
    assert record is not None
    assert record.flow == "web_server"
    assert read_descriptor(service_dir(emulator_settings, "demo")) is not None

    second = _run(emulator_settings, instance)

    assert second.success
    again = _materialization(second, extract_key("demo", "Account")).metadata
    assert _value(again, "mode") == "incremental"
    assert _value(again, "api_used") > _value(account, "api_used")
    unchanged = _materialization(second, warehouse_key("demo", "Account")).metadata
    assert _value(unchanged, "changes_updated") == 0
    assert _value(unchanged, "dagster/row_count") == _value(warehouse, "dagster/row_count")


def test_killed_emulator_restarts_and_reconnects(emulator_settings: Settings) -> None:
    resource = CoraResource(config_path=str(emulator_settings.source))
    first = resource.org_config("demo")
    service = read_descriptor(service_dir(emulator_settings, "demo"))
    assert service is not None

    os.kill(service.pid, signal.SIGKILL)
    os.waitpid(service.pid, 0)
    second = CoraResource(config_path=str(emulator_settings.source)).org_config("demo")

    restarted = read_descriptor(service_dir(emulator_settings, "demo"))
    assert restarted is not None
    assert restarted.pid != service.pid
    # The restarted emulator takes the same ports, so stored URLs stay valid.
    assert second.login_url == first.login_url
    record = ConnectionStore.open(emulator_settings).get("demo")
    assert record is not None
    assert record.login_url == restarted.login_url
    assert not record.needs_reauthorization


def test_emulator_secret_is_sealed_in_descriptor(emulator_settings: Settings) -> None:
    org = CoraResource(config_path=str(emulator_settings.source)).org_config("demo")
    descriptor = service_dir(emulator_settings, "demo") / "service.json"
    secret = org.client_secret
    assert secret
    assert secret not in descriptor.read_text(encoding="utf-8")

    # Stopping saves the emulator's state file, which must not contain the secret either.
    assert stop_emulator(emulator_settings, "demo")

    assert (service_dir(emulator_settings, "demo") / "state.json").exists()
    for path in service_dir(emulator_settings, "demo").iterdir():
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path.name


def test_stop_command_stops_emulator(emulator_settings: Settings) -> None:
    CoraResource(config_path=str(emulator_settings.source)).org_config("demo")
    service = read_descriptor(service_dir(emulator_settings, "demo"))
    assert service is not None
    command = [
        sys.executable,
        "-m",
        "cora_pipeline.orchestration.emulator_service",
        "stop",
        "demo",
        "--config",
        str(emulator_settings.source),
    ]

    stopped = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)

    assert stopped.stdout.strip() == "stopped the emulator of org demo"
    assert again.stdout.strip() == "no emulator of org demo is running"
    assert read_descriptor(service_dir(emulator_settings, "demo")) is None
