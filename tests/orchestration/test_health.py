"""The connection health sensor shows each org's connection status and API usage."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from cora_pipeline.config import Settings
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import connection_key
from cora_pipeline.orchestration.resources import CoraResource

from .manifests import write_usage_extract


def _tick(settings: Settings, instance: dg.DagsterInstance, cursor: str | None) -> Any:
    sensor = (
        build_definitions(settings).get_repository_def().get_sensor_def("connection_health_demo")
    )
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def _observed(data: Any) -> dict[str, Any]:
    assert len(data.asset_events) == 1
    event = data.asset_events[0]
    assert event.asset_key == connection_key("demo")
    return {key: value.value for key, value in event.metadata.items()}


def test_health_reports_org_not_connected(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    data = _tick(emulator_settings, instance, None)

    assert not data.run_requests
    assert "not connected yet" in data.skip_message
    metadata = _observed(data)
    assert metadata["status"] == "not_connected"
    # The first run connects the emulator org by itself, so no action is needed.
    assert metadata["needs_attention"] is False


def test_health_follows_connection_and_usage(
    emulator_settings: Settings, instance: dg.DagsterInstance
) -> None:
    CoraResource(config_path=str(emulator_settings.source)).org_config("demo")
    write_usage_extract(
        emulator_settings.data_root,
        "demo",
        "Account",
        started=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        api_used=6_000,
        api_max=15_000,
        api_calls=12,
    )

    connected = _tick(emulator_settings, instance, None)

    metadata = _observed(connected)
    assert metadata["status"] == "connected"
    assert metadata["needs_reauthorization"] is False
    assert metadata["needs_attention"] is False
    assert metadata["connected_by"] == "admin@cora-demo.example.com"
    assert metadata["api_used"] == 6_000
    assert metadata["api_budget_used_percent"] == 80.0
    assert "connected as admin@cora-demo.example.com" in connected.skip_message
    assert "6,000 of 15,000 daily calls (80% of the pipeline's budget)" in connected.skip_message

    unchanged = _tick(emulator_settings, instance, connected.cursor)

    assert unchanged.asset_events == []
    assert unchanged.skip_message == connected.skip_message

    store = ConnectionStore.open(emulator_settings)
    with store.lock("demo"):
        store.update_record(
            "demo", needs_reauthorization=True, reauthorization_reason="token expired"
        )

    broken = _tick(emulator_settings, instance, connected.cursor)

    metadata = _observed(broken)
    assert metadata["status"] == "needs_reauthorization"
    assert metadata["needs_reauthorization"] is True
    assert metadata["needs_attention"] is True
    assert "NEEDS RE-AUTHORIZATION (token expired)" in broken.skip_message
    assert "cora connect demo" in broken.skip_message
