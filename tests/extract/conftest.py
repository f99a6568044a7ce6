"""Fixtures for extraction tests: an emulator org connected through the real OAuth web-server flow.

Each test gets its own emulator (its own clock, API counter and fault queue) with small seeded
tables, and a client factory that builds :class:`SalesforceClient` on the stored tokens, with
retry waits recorded instead of slept.
"""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cora_pipeline.config import DEMO_ORG, ObjectConfig, OrgConfig, Settings, load_settings
from cora_pipeline.demo import connect_demo_org, write_demo_config
from cora_pipeline.emulator.browser import free_port
from cora_pipeline.extract.extractor import ExtractResult, extract_object
from cora_pipeline.extract.files import read_deleted, read_manifest, read_records
from cora_pipeline.salesforce.client import RetryPolicy, SalesforceClient

SIZES = {"Account": 12, "Contact": 12, "Opportunity": 6, "Case": 6, "Invoice__c": 10}
SECRET_ENV = "CORA_EXTRACT_TEST_CLIENT_SECRET"


@dataclass
class Harness:
    """A connected emulator org and what a test needs to extract from it."""

    emu: Any
    settings: Settings
    data_root: Path
    store: Any
    sleeps: list[float] = field(default_factory=list)
    clients: list[SalesforceClient] = field(default_factory=list)

    @property
    def org(self) -> Any:
        return self.emu.production

    @property
    def admin(self) -> Any:
        return self.emu.production.admin

    def org_config(self, **overrides: Any) -> OrgConfig:
        return dataclasses.replace(self.settings.org(DEMO_ORG), **overrides)

    def client(self, org_config: OrgConfig | None = None) -> SalesforceClient:
        from cora_pipeline.connect import TokenManager

        config = org_config or self.org_config()
        client = SalesforceClient(
            config,
            TokenManager(config, self.store),
            retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05),
            sleep=self.sleeps.append,
        )
        self.clients.append(client)
        return client

    def extract(
        self,
        sobject: str,
        *,
        client: SalesforceClient | None = None,
        org_config: OrgConfig | None = None,
        obj: ObjectConfig | None = None,
        **kwargs: Any,
    ) -> ExtractResult:
        config = org_config or self.org_config()
        return extract_object(
            client or self.client(config),
            config,
            obj or ObjectConfig(sobject),
            self.data_root,
            **kwargs,
        )


@contextmanager
def _connected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> Iterator[Harness]:
    """Start an emulator and connect its Production org through the OAuth web-server flow."""
    from cora_pipeline.connect import ConnectionStore
    from cora_pipeline.emulator import Emulator, EmulatorSettings

    callback_port = free_port()
    settings = EmulatorSettings(
        seed=5,
        sizes=dict(SIZES),
        auto_approve=True,
        callback_urls=(f"http://127.0.0.1:{callback_port}/callback",),
        data_dir=tmp_path / "emulator",
        **options,
    )
    data_root = tmp_path / "data"
    data_root.mkdir()
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    with Emulator(settings) as emu:
        monkeypatch.setenv(SECRET_ENV, emu.client_secret)
        cora_settings = load_settings(write_demo_config(data_root, emu, callback_port, SECRET_ENV))
        store = ConnectionStore.open(cora_settings, create_key=True)
        connect_demo_org(cora_settings, emu)
        harness = Harness(emu, cora_settings, data_root, store)
        try:
            yield harness
        finally:
            for client in harness.clients:
                client.close()


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """An emulator whose Production org is connected through the OAuth web-server flow."""
    with _connected(tmp_path, monkeypatch) as connected:
        yield connected


def records_of(result: ExtractResult, index: int = 0) -> pa.Table:
    return read_records(result.extract_dirs[index])


def deleted_ids(result: ExtractResult, index: int = 0) -> set[str]:
    table = read_deleted(result.extract_dirs[index])
    return set(table["Id"].to_pylist()) if table is not None else set()


def manifest_of(result: ExtractResult, index: int = 0) -> Any:
    return read_manifest(result.extract_dirs[index])


def ids_of(table: pa.Table) -> list[str]:
    return table["Id"].to_pylist()
