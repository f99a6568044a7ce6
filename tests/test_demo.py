"""`cora demo` as a user runs it: a subprocess, twice in a row, in a real Dagster instance."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

REPO = Path(__file__).resolve().parents[1]
# Salesforce access tokens start with the 15-character org id and "!"; the emulator's do too.
ACCESS_TOKEN = re.compile(rb"00D[0-9A-Za-z]{12}![0-9A-Za-z._-]{20,}")


def _run_demo(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cora_pipeline.cli", "demo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_demo_runs_twice(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CORA_HOME": str(tmp_path / "cora"),
        "COLUMNS": "160",
    }
    env.pop("CORA_CONFIG", None)
    env.pop("CORA_VAULT_KEY", None)

    outputs = []
    for _ in range(2):
        result = _run_demo(tmp_path, env)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)

    for output in outputs:
        assert "Records per object" in output
        assert "Changes found by the second sync" in output
        assert "API calls spent by both syncs" in output
        assert re.search(r"Account\s+│\s+updated\s+│\s+1", output)
        assert re.search(r"Case\s+│\s+deleted\s+│\s+1", output)
        assert re.search(r"Contact\s+│\s+created\s+│\s+1", output)
        assert re.search(r"Days_Outstanding__c.*formula", output)
        assert re.search(r"HasOptedOutOfEmail\s+│\s+false\s+│\s+true\s+│\s+system", output)
        assert "StageName" in output
        assert f"Warehouse: {tmp_path / 'cora' / 'demo' / 'warehouse.duckdb'}" in output
        assert f"Analyst catalog: {tmp_path / 'cora' / 'demo' / 'analyst.duckdb'}" in output

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    try:
        runs = instance.get_runs()
        assert len(runs) == 4
        assert {run.job_name for run in runs} == {"sync_demo"}
        assert all(run.is_success for run in runs)
    finally:
        instance.dispose()

    # No access token reached the terminal or any file the demo wrote, the Dagster event log
    # (SQLite under DAGSTER_HOME) included.
    for output in outputs:
        assert not ACCESS_TOKEN.search(output.encode())
    for root in (tmp_path / "cora", dagster_home):
        for path in root.rglob("*"):
            if path.is_file():
                assert not ACCESS_TOKEN.search(path.read_bytes()), path
