"""A real dagster-webserver serves the asset graph of the demo org over GraphQL."""

import time
from pathlib import Path

from cora_pipeline.config import DEFAULT_OBJECTS, DEMO_ORG, Settings, demo_org
from cora_pipeline.orchestration.emulator_service import stop_emulator

from .webserver import LOCATION, run_webserver

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

ASSETS_QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    kinds
    isMaterializable
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""
JOBS_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        jobs { name }
        schedules { name cronSchedule }
        sensors { name }
      }
    }
  }
}
"""


def test_webserver_serves_every_asset_key(tmp_path: Path) -> None:
    with run_webserver(tmp_path) as server:
        nodes = server.graphql(ASSETS_QUERY)["assetNodes"]
        repositories = server.graphql(JOBS_QUERY)["repositoriesOrError"]["nodes"]

    by_key = {"/".join(node["assetKey"]["path"]): node for node in nodes}
    expected = {f"salesforce/demo/{o}" for o in DEFAULT_OBJECTS}
    expected |= {f"warehouse/demo/{o}" for o in DEFAULT_OBJECTS}
    expected.add("salesforce/demo/connection")
    assert set(by_key) == expected
    assert {node["groupName"] for node in nodes} == {"demo"}
    assert set(by_key["salesforce/demo/Account"]["kinds"]) == {"salesforce", "parquet"}
    assert by_key["warehouse/demo/Account"]["kinds"] == ["duckdb"]
    assert not by_key["salesforce/demo/connection"]["isMaterializable"]
    checks = {
        check["name"]: check["blocking"]
        for check in by_key["salesforce/demo/Account"]["assetChecksOrError"]["checks"]
    }
    assert checks["valid_extract"] is True
    assert checks["unique_ids"] is True

    assert len(repositories) == 1
    repository = repositories[0]
    assert "sync_demo" in {job["name"] for job in repository["jobs"]}
    assert repository["schedules"] == [
        {"name": "sync_demo_schedule", "cronSchedule": "*/15 * * * *"}
    ]
    assert [sensor["name"] for sensor in repository["sensors"]] == ["connection_health_demo"]


LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { status stepStats { stepKey status } }
  }
}
"""


def test_dagster_dev_materializes_all_without_credentials(tmp_path: Path) -> None:
    keys = [["salesforce", "demo", o] for o in DEFAULT_OBJECTS]
    keys += [["warehouse", "demo", o] for o in DEFAULT_OBJECTS]
    params = {
        # What the UI's "Materialize all" sends for the demo group.
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": key} for key in keys],
        },
        "runConfigData": {},
    }
    try:
        with run_webserver(tmp_path, dev=True) as server:
            launched = server.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            deadline = time.monotonic() + 120
            status = "QUEUED"
            while time.monotonic() < deadline and status not in FINISHED:
                time.sleep(1)
                run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
                status = run["status"]
    finally:
        settings = Settings(data_root=tmp_path / "data", orgs={DEMO_ORG: demo_org()})
        stop_emulator(settings, DEMO_ORG)

    assert status == "SUCCESS", (tmp_path / "webserver.log").read_text(errors="replace")[-3000:]
    steps = {step["stepKey"]: step["status"] for step in run["stepStats"]}
    asset_steps = {key for key in steps if not key.startswith("asset_check_")}
    assert asset_steps == {"__".join(key) for key in keys}
    # The column schema change checks of the extracts run as one more step.
    assert len(steps) == len(keys) + 1
    assert set(steps.values()) == {"SUCCESS"}
