"""Connection health per org, visible in the Dagster UI before a run fails.

A sensor per org reads the connection record from the vault (no token is decrypted and no API call is
made) and the API usage from the newest extract manifests. Its tick shows the status as text, and
whenever the status changes it records an observation on the external asset
``salesforce/<org>/connection``, whose page then shows the status as metadata.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.errors import CoraError
from cora_pipeline.orchestration.budget import read_usage, share_of_budget
from cora_pipeline.orchestration.keys import OWNERS, connection_key

HEALTH_INTERVAL_SECONDS = 300


def health_sensor_name(org: str) -> str:
    return f"connection_health_{org}"


def connection_spec(org: OrgConfig) -> dg.AssetSpec:
    """Return the external asset that represents the org's OAuth connection."""
    return dg.AssetSpec(
        key=connection_key(org.name),
        group_name=org.name,
        kinds={"salesforce"},
        owners=OWNERS,
        tags={"cora/org": org.name},
        description=(
            f"The OAuth connection to Salesforce org `{org.name}`. The sensor "
            f"`{health_sensor_name(org.name)}` records an observation whenever its status changes: "
            f"whether the org needs re-authorization, who connected it, and how much of the API "
            f"budget is used."
        ),
    )


@dataclass(frozen=True)
class ConnectionHealth:
    """The connection status of one org, as the health sensor read it."""

    org: str
    status: str
    """``connected``, ``needs_reauthorization``, ``not_connected`` or ``vault_error``."""
    message: str
    api_used: int | None = None
    api_max: int | None = None
    share_of_budget: float | None = None
    details: tuple[tuple[str, str], ...] = ()

    needs_attention: bool = True
    """True when a person must act: re-authorize, connect, fix the vault, or raise the budget."""

    def metadata(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": self.status,
            "needs_reauthorization": self.status == "needs_reauthorization",
            "needs_attention": self.needs_attention,
            "message": self.message,
        }
        if self.api_used is not None:
            values["api_used"] = self.api_used
        if self.api_max is not None:
            values["api_max"] = self.api_max
        if self.share_of_budget is not None:
            values["api_budget_used_percent"] = round(100 * self.share_of_budget, 1)
        values.update(dict(self.details))
        return values

    def fingerprint(self) -> str:
        """Return a digest of the status, so an unchanged status records no new observation."""
        text = json.dumps(self.metadata(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_connection_health(settings: Settings, org: OrgConfig) -> ConnectionHealth:
    """Return the org's connection status and API usage without any call to Salesforce."""
    from cora_pipeline.connect import ConnectionStore, reauthorization_command

    usage = read_usage(settings.data_root, org)
    share = share_of_budget(org, usage)
    usage_text = (
        f"API usage {usage.api_used:,} of {usage.api_max:,} daily calls ({share:.0%} of the "
        f"pipeline's budget)"
        if usage.known and share is not None
        else "API usage unknown until the first extract"
    )

    over_budget = share is not None and share >= 1.0

    def health(
        status: str,
        message: str,
        details: tuple[tuple[str, str], ...] = (),
        needs_attention: bool = True,
    ) -> ConnectionHealth:
        return ConnectionHealth(
            org.name,
            status,
            message,
            usage.api_used,
            usage.api_max,
            share,
            details,
            needs_attention,
        )

    # The vault keeps one file per org, <home>/vault/<org>.json. Without that file the org was
    # never connected, and opening the vault could fail because no key was created yet.
    connected = (settings.home / "vault" / f"{org.name}.json").exists()
    try:
        record = ConnectionStore.open(settings).get(org.name) if connected else None
    except CoraError as exc:
        return health(
            "vault_error",
            f"org {org.name}: the vault cannot be read: {exc}",
        )
    if record is None:
        if org.emulator:
            message = (
                f"org {org.name}: not connected yet; the first run starts the bundled emulator "
                f"and connects it. {usage_text}."
            )
        else:
            message = f"org {org.name}: not connected; run `cora connect {org.name}`. {usage_text}."
        # The first run connects an emulator org by itself; a real org needs an administrator.
        return health("not_connected", message, needs_attention=not org.emulator)
    details = (
        ("connected_by", record.username),
        ("connected_at", record.connected_at),
        ("instance_url", record.instance_url),
        ("salesforce_org_id", record.org_id),
        ("flow", record.flow),
        ("last_token_refresh", record.last_refresh or "never"),
    )
    if record.needs_reauthorization:
        command = reauthorization_command(org, record)
        reason = record.reauthorization_reason or "Salesforce rejected the refresh token"
        message = (
            f"org {org.name}: NEEDS RE-AUTHORIZATION ({reason}); runs will fail until an "
            f"administrator runs `{command}`. {usage_text}."
        )
        return health("needs_reauthorization", message, details)
    budget_warning = (
        " The budget is used up, so scheduled ticks are skipped." if over_budget else ""
    )
    message = (
        f"org {org.name}: connected as {record.username} to {record.instance_url} since "
        f"{record.connected_at}. {usage_text}.{budget_warning}"
    )
    return health("connected", message, details, needs_attention=over_budget)


def build_health_sensor(settings: Settings, org: OrgConfig) -> dg.SensorDefinition:
    """Build the org's connection health sensor; it launches no runs."""

    @dg.sensor(
        name=health_sensor_name(org.name),
        minimum_interval_seconds=HEALTH_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Checks every {HEALTH_INTERVAL_SECONDS // 60} minutes whether org `{org.name}` is "
            f"connected, needs re-authorization, or has used its API budget. It reads the vault "
            f"and the extract manifests only, so it costs no API call."
        ),
    )
    def health(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        status = read_connection_health(settings, org)
        if status.needs_attention:
            context.log.warning(status.message)
        else:
            context.log.info(status.message)
        fingerprint = status.fingerprint()
        events: list[dg.AssetObservation] = []
        if context.cursor != fingerprint:
            events.append(
                dg.AssetObservation(asset_key=connection_key(org.name), metadata=status.metadata())
            )
        return dg.SensorResult(skip_reason=status.message, asset_events=events, cursor=fingerprint)

    return health
