"""Dagster resources: the bridge from Dagster runs to configuration, OAuth credentials and storage.

Secrets never pass through resource config. ``OrgCredentials.client_secret`` is a Dagster ``EnvVar``
(the UI shows the variable's name, never its value), tokens come from the encrypted vault, and the
bundled emulator's consumer secret travels sealed with the vault key (see ``emulator_service``).
"""

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import dagster as dg
from filelock import FileLock
from pydantic import PrivateAttr

from cora_pipeline.config import OrgConfig, Settings, load_settings
from cora_pipeline.salesforce.client import SalesforceClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedOrgConfig(OrgConfig):
    """An org's configuration with the consumer secret already resolved by a Dagster resource."""

    resolved_client_secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def client_secret(self) -> str | None:
        if self.resolved_client_secret is not None:
            return self.resolved_client_secret
        return super().client_secret


def resolve_org_config(org: OrgConfig, client_secret: str | None, **changes: Any) -> OrgConfig:
    """Return ``org`` with ``changes`` applied and ``client_secret`` as its consumer secret."""
    values = {f.name: getattr(org, f.name) for f in fields(OrgConfig)}
    values.update(changes)
    return ResolvedOrgConfig(**values, resolved_client_secret=client_secret)


def credentials_key(org: str) -> str:
    """Return the resource key of an org's :class:`OrgCredentials`."""
    return f"salesforce_{org}"


class OrgCredentials(dg.ConfigurableResource):
    """The OAuth client credentials of one org's connected app."""

    org: str
    client_id: str
    client_secret: str | None = None
    """The consumer secret, given as ``dg.EnvVar(NAME)`` so that only the name is stored."""


def org_credentials(org: OrgConfig) -> OrgCredentials:
    """Build the credentials resource of an org from its configuration."""
    secret = dg.EnvVar(org.client_secret_env) if org.client_secret_env else None
    return OrgCredentials(org=org.name, client_id=org.client_id, client_secret=secret)


class CoraResource(dg.ConfigurableResource):
    """Configuration, Salesforce clients and storage locations for every configured org.

    A run builds this resource once per process. The in-process executor runs every step of an org's
    job in one process, so one REST client (and at most one token refresh) serves the whole run.
    """

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

    def client(self, org: str, credentials: OrgCredentials | None = None) -> SalesforceClient:
        """Return this run's REST client for an org, built once so one token serves every step."""
        if org not in self._clients:
            from cora_pipeline.connect import ConnectionStore, TokenManager

            org_config = self.org_config(org, credentials)
            store = ConnectionStore.open(self.settings)
            self._clients[org] = SalesforceClient(org_config, TokenManager(org_config, store))
        return self._clients[org]

    def org_config(self, org: str, credentials: OrgCredentials | None = None) -> OrgConfig:
        """Return the org's configuration with its consumer secret resolved.

        For an org backed by the bundled emulator this starts the emulator when none responds and
        connects the org through the OAuth web-server flow when it is not connected to that
        emulator yet, so a run needs no credentials at all.
        """
        configured = self.settings.org(org)
        if configured.emulator:
            return connect_emulator_org(self.settings, configured)
        secret = credentials.client_secret if credentials is not None else None
        return resolve_org_config(configured, secret)

    def teardown_after_execution(self, context: Any) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def connect_emulator_org(settings: Settings, org: OrgConfig) -> OrgConfig:
    """Start (or find) the org's background emulator and connect the org to it when needed.

    The org is connected again when it has no connection, when the connection needs
    re-authorization, or when it points at other URLs (the emulator restarted on new ports). It is
    also connected again when this call started the emulator, because an emulator process that was
    killed loses the tokens it issued after its last state save.
    """
    from cora_pipeline.connect import ConnectionStore, connect_web_server
    from cora_pipeline.connect.vault import ensure_private_dir
    from cora_pipeline.emulator.browser import follow_redirect_browser
    from cora_pipeline.orchestration.emulator_service import ensure_emulator, service_dir

    # Runs of two emulator orgs may start together, and each would otherwise write its own new
    # vault key file, so only one process at a time may create it.
    ensure_private_dir(settings.home)
    with FileLock(settings.home / "vault-key.lock", timeout=60):
        store = ConnectionStore.open(settings, create_key=True)
    directory = service_dir(settings, org.name)
    directory.mkdir(parents=True, exist_ok=True)
    # One process at a time connects, so parallel step processes do not race for the callback port.
    with FileLock(directory / "connect.lock", timeout=180):
        service, started = ensure_emulator(settings, org.name)
        resolved = resolve_org_config(
            org,
            service.client_secret(settings),
            login_url=service.login_url,
            client_id=service.client_id,
            ca_file=service.ca_file,
            callback_port=service.callback_port,
        )
        record = store.get(org.name)
        stale = (
            record is None
            or record.needs_reauthorization
            or record.login_url != service.login_url
            or record.instance_url != service.instance_url
        )
        if started or stale:
            log.info("org %s: connecting to the emulator at %s", org.name, service.login_url)
            connect_web_server(
                resolved,
                store,
                browser=follow_redirect_browser(service.ca_file),
                timeout=60,
                output=lambda *_: None,
            )
    return resolved
