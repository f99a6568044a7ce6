"""Fixtures that start emulators on 127.0.0.1; each is stopped when its module finishes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, salesforce


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorSettings(seed=7)) as emu:
        yield emu


@pytest.fixture(scope="module")
def token(emulator: Emulator) -> dict[str, Any]:
    return connect(emulator)


@pytest.fixture(scope="module")
def sf(emulator: Emulator, token: dict[str, Any]) -> Salesforce:
    return salesforce(emulator, token)
