"""The Dagster code location loads and names what the contracts promise."""

from pathlib import Path

import dagster as dg
import pytest

from cora_pipeline.config import DEFAULT_OBJECTS, parse_settings
from cora_pipeline.orchestration.definitions import build_definitions


def test_module_definitions_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORA_CONFIG", raising=False)
    import importlib

    import cora_pipeline.orchestration.definitions as module

    module = importlib.reload(module)
    repo = module.defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}

    for sobject in DEFAULT_OBJECTS:
        assert f"salesforce/demo/{sobject}" in keys
        assert f"warehouse/demo/{sobject}" in keys
    assert module.defs.resolve_job_def("sync_demo") is not None


def test_orgs_get_own_groups_and_schedules() -> None:
    settings = parse_settings(
        {
            "orgs": {
                "acme": {"client_id": "a", "objects": ["Account"], "schedule_running": True},
                "globex": {
                    "client_id": "g",
                    "objects": ["Case", "Contact"],
                    "schedule": "0 * * * *",
                },
            }
        }
    )

    defs = build_definitions(settings)
    repo = defs.get_repository_def()
    graph = repo.asset_graph

    assert graph.get(dg.AssetKey(["salesforce", "acme", "Account"])).group_name == "acme"
    assert graph.get(dg.AssetKey(["warehouse", "globex", "Case"])).group_name == "globex"
    warehouse = graph.get(dg.AssetKey(["warehouse", "globex", "Case"]))
    assert dg.AssetKey(["salesforce", "globex", "Case"]) in warehouse.parent_keys
    assert set(warehouse.kinds) == {"duckdb"}
    assert set(graph.get(dg.AssetKey(["salesforce", "globex", "Case"])).kinds) == {
        "salesforce",
        "parquet",
    }
    schedules = {s.name: s for s in repo.schedule_defs}
    assert schedules["sync_acme_schedule"].default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["sync_globex_schedule"].cron_schedule == "0 * * * *"
    assert schedules["sync_globex_schedule"].default_status == dg.DefaultScheduleStatus.STOPPED
