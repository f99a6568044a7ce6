"""Fixtures that run the bundled Salesforce emulator over HTTPS on 127.0.0.1."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cora_pipeline.connect import ConnectionStore
from cora_pipeline.emulator import Emulator, EmulatorSettings

from .emulated import SECRET_ENV, SIZES, Salesforce, StartEmulator, free_port


@pytest.fixture
def start_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartEmulator]:
    """Start an emulator with the given ``EmulatorSettings`` overrides; stopped at teardown."""
    started: list[Any] = []

    def start(**overrides: Any) -> Salesforce:
        port = free_port()
        values: dict[str, Any] = {
            "seed": 5,
            "sizes": SIZES,
            "auto_approve": True,
            "callback_urls": (f"http://127.0.0.1:{port}/callback",),
            "data_dir": tmp_path / f"emulator-{len(started)}",
        }
        values.update(overrides)
        emu = Emulator(EmulatorSettings(**values))
        emu.start()
        started.append(emu)
        monkeypatch.setenv(SECRET_ENV, emu.client_secret)
        return Salesforce(emu=emu, callback_port=port)

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def salesforce(start_emulator: StartEmulator) -> Salesforce:
    return start_emulator()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectionStore:
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    return ConnectionStore.open_home(tmp_path / "state", create_key=True)
