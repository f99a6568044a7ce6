"""Run an org's job from the terminal, in a real Dagster instance, as the schedule would.

``cora sync`` and ``cora demo`` use this. The run is recorded in the instance under ``DAGSTER_HOME``,
so the Dagster UI shows it afterwards, next to scheduled runs.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.errors import ConfigError, NotConnectedError, ReauthorizationRequired
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import FULL_REFRESH_TAG, extract_key, job_name, warehouse_key

log = logging.getLogger(__name__)


@dataclass
class SyncOutcome:
    run_id: str
    success: bool
    error: str | None = None


def dagster_instance() -> dg.DagsterInstance:
    """Return the instance under ``DAGSTER_HOME``.

    Without ``DAGSTER_HOME`` Dagster would use a throw-away instance whose runs never show in the UI,
    so this refuses to run instead.
    """
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ConfigError(
            "DAGSTER_HOME is not set, so the run would vanish with a temporary Dagster instance; "
            "export DAGSTER_HOME=$PWD/dagster_home (an absolute path holding dagster.yaml)"
        )
    path = Path(home)
    if not path.is_absolute():
        raise ConfigError(f"DAGSTER_HOME={home} must be an absolute path; use {path.absolute()}")
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "dagster.yaml").exists():
        log.warning(
            "%s has no dagster.yaml, so runs of one org are not limited to one at a time and "
            "warehouse writers share no pool; copy the repository's dagster_home/dagster.yaml there",
            path,
        )
    return dg.DagsterInstance.get()


def run_sync(
    settings: Settings,
    org: str,
    *,
    objects: list[str] | None = None,
    full: bool = False,
    instance: dg.DagsterInstance | None = None,
    console_log_level: str = "CRITICAL",
) -> SyncOutcome:
    """Materialize an org's assets (or some objects' assets) in process and wait for the result.

    What a run cannot succeed without (the client secret's environment variable, a stored
    connection that does not need re-authorization) is checked first, so the error is one line
    with the fix instead of a failed run.
    """
    org_config = settings.org(org)
    check_ready(settings, org_config)
    known = [o.name for o in org_config.objects]
    selected = objects or known
    unknown = sorted(set(selected) - set(known))
    if unknown:
        raise ConfigError(
            f"org {org!r} has no configured object {', '.join(unknown)} (configured: "
            f"{', '.join(known)}); add it to the org's objects or pick one of those"
        )

    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name(org))
    keys = [key for name in selected for key in (extract_key(org, name), warehouse_key(org, name))]
    tags = {FULL_REFRESH_TAG: "true"} if full else {}
    result = job.execute_in_process(
        # Dagster's console logger prints every step event at DEBUG; the terminal shows the
        # pipeline's own progress lines instead, and the UI keeps the full event log.
        run_config={"loggers": {"console": {"config": {"log_level": console_log_level}}}},
        instance=instance or dagster_instance(),
        asset_selection=keys if objects else None,
        tags=tags,
        raise_on_error=False,
    )

    error = None
    if not result.success:
        failures = [
            f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error
        ]
        error = "\n".join(failures) or "the run failed; the Dagster UI shows its events"
    return SyncOutcome(run_id=result.run_id, success=result.success, error=error)


def check_ready(settings: Settings, org: OrgConfig) -> None:
    """Raise a CoraError naming the fix when a run of ``org`` would fail before its first call."""
    if org.emulator:
        # The resource starts the bundled emulator and connects the org by itself.
        return
    _ = org.client_secret  # raises ConfigError naming the unset environment variable
    from cora_pipeline.connect import ConnectionStore, reauthorization_command

    store = ConnectionStore.open(settings)
    record = store.get(org.name)
    if record is None:
        raise NotConnectedError(org.name)
    if record.needs_reauthorization:
        raise ReauthorizationRequired(
            org.name, record.reauthorization_reason, reauthorization_command(org, record)
        )


def root_cause(error: SerializableErrorInfo) -> str:
    """Return the innermost exception's message of a step failure, without the stack trace."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
