"""The Dagster code location: one asset group, job and schedule per configured org.

``workspace.yaml`` points ``dagster dev`` here. The module builds exactly one ``Definitions`` at module
scope, from the configuration file (or the demo org when there is none).
"""

import dagster as dg

from cora_pipeline.config import OrgConfig, Settings, load_settings
from cora_pipeline.orchestration.assets import build_object_assets
from cora_pipeline.orchestration.resources import CoraResource


def job_name(org: str) -> str:
    return f"sync_{org}"


def build_org_job(org: OrgConfig) -> dg.JobDefinition:
    # In-process on purpose: with the multiprocess executor every step process builds its resources
    # again (a vault read and a REST client per step, plus an OAuth refresh per process whenever the
    # token expired) and costs about 1.5 s of start-up; the org's steps are I/O-bound on one org's API
    # anyway, so running them in one process is faster and spends fewer API calls.
    return dg.define_asset_job(  # type: ignore[return-value]
        name=job_name(org.name),
        selection=dg.AssetSelection.groups(org.name),
        executor_def=dg.in_process_executor,
        tags={"cora/org": org.name},
        description=f"Extract every configured object of org `{org.name}` and update the warehouse.",
    )


def build_definitions(settings: Settings, config_path: str | None = None) -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    jobs = []
    schedules = []
    for org in settings.orgs.values():
        for obj in org.objects:
            assets.extend(build_object_assets(org, obj))
        job = build_org_job(org)
        jobs.append(job)
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{job_name(org.name)}_schedule",
                job=job,
                cron_schedule=org.schedule,
                default_status=(
                    dg.DefaultScheduleStatus.RUNNING
                    if org.schedule_running
                    else dg.DefaultScheduleStatus.STOPPED
                ),
                description=f"Polls org `{org.name}` on its configured cron `{org.schedule}`.",
            )
        )
    source = config_path or (str(settings.source) if settings.source else None)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        resources={"cora": CoraResource(config_path=source)},
    )


defs = build_definitions(load_settings())
