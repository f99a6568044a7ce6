"""The cora_warehouse pool serializes warehouse writers of concurrent runs."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from cora_pipeline.config import load_settings
from cora_pipeline.orchestration.emulator_service import stop_emulator
from cora_pipeline.orchestration.keys import WAREHOUSE_POOL

from .conftest import REPO, write_config


def _step_windows(
    instance: dg.DagsterInstance, run_id: str
) -> tuple[list[tuple[float, float]], list[str]]:
    started: dict[str, float] = {}
    windows = []
    engine_messages = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key or ""] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            windows.append((started[event.step_key or ""], record.timestamp))
        elif event.event_type_value == "ENGINE_EVENT":
            engine_messages.append(record.user_message)
    return windows, engine_messages


@pytest.fixture
def two_orgs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    config = write_config(
        tmp_path / "cora.yaml",
        tmp_path / "data",
        {"acme": {"emulator": True}, "globex": {"emulator": True}},
    )
    yield config
    settings = load_settings(config)
    for org in settings.orgs:
        stop_emulator(settings, org)


def test_pool_serializes_two_warehouse_writers(
    two_orgs: Path, dagster_home: Path, tmp_path: Path
) -> None:
    start_file = tmp_path / "start"
    # Create the instance's SQLite storages here: two processes creating them at once would both
    # stamp the schema version.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
        instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        instance.get_instigator_state("none", "none")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.orchestration.pool_child",
                str(two_orgs),
                org,
                str(start_file),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for org in ("acme", "globex")
    ]
    try:
        start_file.touch()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr[-3000:]
    run_ids = [stdout.strip().splitlines()[-1] for stdout, _ in outputs]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        first, first_engine = _step_windows(instance, run_ids[0])
        second, second_engine = _step_windows(instance, run_ids[1])

    assert len(first) == 5
    assert len(second) == 5
    for start_a, end_a in first:
        for start_b, end_b in second:
            overlap = min(end_a, end_b) - max(start_a, start_b)
            assert overlap <= 0, (
                f"warehouse steps overlapped by {overlap:.3f} s: "
                f"{datetime.fromtimestamp(start_a)}..{datetime.fromtimestamp(end_a)} and "
                f"{datetime.fromtimestamp(start_b)}..{datetime.fromtimestamp(end_b)}"
            )
    blocked = [m for m in first_engine + second_engine if f"limit for pool {WAREHOUSE_POOL}" in m]
    assert blocked, "neither run waited for the pool, so the runs never competed for it"
