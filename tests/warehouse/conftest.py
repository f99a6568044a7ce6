"""Fixtures for warehouse tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from cora_pipeline.warehouse import Warehouse

from .builders import ExtractWriter


@pytest.fixture
def writer(tmp_path: Path) -> ExtractWriter:
    return ExtractWriter(tmp_path / "data")


@pytest.fixture
def warehouse(writer: ExtractWriter) -> Iterator[Warehouse]:
    wh = Warehouse(writer.data_root)
    yield wh
    wh.close()
