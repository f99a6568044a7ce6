"""The code location names what the contracts promise and keeps secrets out of config."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cora_pipeline.config import parse_settings
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import WAREHOUSE_POOL, connection_key, warehouse_key
from cora_pipeline.orchestration.resources import OrgCredentials

SETTINGS = {
    "orgs": {
        "acme": {
            "client_id": "3MVG9acme",
            "client_secret_env": "ACME_CLIENT_SECRET",
            "objects": ["Account", "Case"],
            "schedule": "*/30 * * * *",
        },
        "globex": {"emulator": True},
    }
}


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(parse_settings(SETTINGS))


def test_warehouse_assets_share_pool_and_freshness(defs: dg.Definitions) -> None:
    warehouse = defs.resolve_assets_def(warehouse_key("acme", "Case"))

    assert warehouse.op.pool == WAREHOUSE_POOL
    policy: Any = warehouse.specs_by_key[warehouse_key("acme", "Case")].freshness_policy
    assert type(policy).__name__ == "TimeWindowFreshnessPolicy"
    assert policy.warn_window.to_timedelta() == timedelta(hours=1)
    assert policy.fail_window.to_timedelta() == timedelta(hours=4, minutes=30)


def test_assets_have_owners_and_descriptions(defs: dg.Definitions) -> None:
    graph = defs.get_repository_def().asset_graph

    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:data-engineering"], key
        assert node.description, key


def test_connection_asset_per_org(defs: dg.Definitions) -> None:
    graph = defs.get_repository_def().asset_graph

    for org in ("acme", "globex"):
        node = graph.get(connection_key(org))
        assert node.group_name == org
        assert not node.is_materializable


def test_job_runs_in_process_with_org_tag(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("sync_acme")

    assert job.executor_def is dg.in_process_executor
    assert job.tags["cora/org"] == "acme"
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {
        "salesforce/acme/Account",
        "salesforce/acme/Case",
        "warehouse/acme/Account",
        "warehouse/acme/Case",
    }


def test_schedules_and_sensors_per_org(defs: dg.Definitions) -> None:
    repo = defs.get_repository_def()

    assert {s.name for s in repo.schedule_defs} == {"sync_acme_schedule", "sync_globex_schedule"}
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == {"connection_health_acme", "connection_health_globex"}
    assert sensors["connection_health_acme"].default_status == dg.DefaultSensorStatus.RUNNING


def test_client_secret_comes_from_env_var(defs: dg.Definitions) -> None:
    resources = defs.resources or {}
    credentials = resources["salesforce_acme"]

    assert isinstance(credentials, OrgCredentials)
    assert isinstance(credentials.client_secret, dg.EnvVar)
    assert credentials.client_secret.env_var_name == "ACME_CLIENT_SECRET"
    assert resources["salesforce_globex"].client_secret is None


def test_instance_limits_runs_and_pool(dagster_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        config = instance.get_concurrency_config()

    assert config.pool_config.default_pool_limit == 1
    assert config.run_queue_config is not None
    assert config.run_queue_config.tag_concurrency_limits == [
        {"key": "cora/org", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
