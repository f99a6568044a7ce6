"""Fixtures for the Dagster code location: configuration files, instances and emulators."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cora_pipeline.config import Settings, load_settings
from cora_pipeline.orchestration.emulator_service import stop_emulator

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, data_root: Path, orgs: dict[str, dict[str, object]]) -> Path:
    path.write_text(
        yaml.safe_dump({"data_root": str(data_root), "orgs": orgs}, sort_keys=False),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def emulator_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings of one org ``demo`` backed by the bundled emulator; the emulator stops afterwards."""
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    monkeypatch.delenv("CORA_CONFIG", raising=False)
    config = write_config(tmp_path / "cora.yaml", tmp_path / "data", {"demo": {"emulator": True}})
    settings = load_settings(config)
    yield settings
    for org in settings.orgs:
        stop_emulator(settings, org)


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A Dagster home with the repository's dagster.yaml (pool and run-tag limits)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
        yield instance
