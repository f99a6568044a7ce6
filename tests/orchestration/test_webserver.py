"""A real dagster-webserver serves the asset graph of the demo org over GraphQL."""

from pathlib import Path

from cora_pipeline.config import DEFAULT_OBJECTS

from .webserver import run_webserver

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
