"""Run an org's job from the terminal, in a real Dagster instance, as the schedule would.

``cora sync`` and ``cora demo`` use this. The run is recorded in the instance under ``DAGSTER_HOME``,
so the Dagster UI shows it afterwards, next to scheduled runs.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from cora_pipeline.config import Settings
from cora_pipeline.errors import ConfigError
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import FULL_REFRESH_TAG, extract_key, job_name, warehouse_key


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
    return dg.DagsterInstance.get()


def run_sync(
    settings: Settings,
    org: str,
    *,
    objects: list[str] | None = None,
    full: bool = False,
    instance: dg.DagsterInstance | None = None,
    console_log_level: str = "ERROR",
) -> SyncOutcome:
    """Materialize an org's assets (or some objects' assets) in process and wait for the result."""
    org_config = settings.org(org)
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
            event.step_failure_data.error.message.strip()
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error
        ]
        error = "\n".join(failures) or "the run failed; see the Dagster UI for its events"
    return SyncOutcome(run_id=result.run_id, success=result.success, error=error)
