"""Dagster resources: the bridge from Dagster runs to configuration, tokens and storage.

Secrets never pass through resource config: the client secret is read from the environment variable the
org's configuration names, and tokens come from the encrypted vault, so neither appears in run config,
the Dagster UI or the event log.
"""

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from cora_pipeline.config import Settings, load_settings
from cora_pipeline.salesforce.client import SalesforceClient


class CoraResource(dg.ConfigurableResource):
    """Configuration, Salesforce clients and the warehouse for every configured org."""

    config_path: str | None = None
    """The cora configuration file; None loads ``$CORA_CONFIG``, ``cora.yaml`` or the demo org."""

    _settings: Settings | None = PrivateAttr(default=None)
    _clients: dict[str, SalesforceClient] = PrivateAttr(default_factory=dict)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def data_root(self) -> Path:
        return self.settings.data_root

    def client(self, org: str) -> SalesforceClient:
        """Return this run's REST client for an org, built once so one token serves every step."""
        if org not in self._clients:
            from cora_pipeline.connect import ConnectionStore, TokenManager

            org_config = self.settings.org(org)
            store = ConnectionStore.open(self.settings)
            self._clients[org] = SalesforceClient(org_config, TokenManager(org_config, store))
        return self._clients[org]

    def teardown_after_execution(self, context: Any) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
