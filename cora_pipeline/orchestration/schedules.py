"""One schedule per org: its configured cron, thinned out as API usage approaches the budget."""

from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # no public export in dagster 1.13
)

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.orchestration.budget import cron_interval, decide_tick, read_usage


def schedule_name(org: str) -> str:
    return f"sync_{org}_schedule"


def build_org_schedule(
    settings: Settings, org: OrgConfig, job: dg.JobDefinition | UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """Build the org's schedule, which skips ticks with a reason when the API budget requires it."""

    @dg.schedule(
        name=schedule_name(org.name),
        cron_schedule=org.schedule,
        execution_timezone="UTC",
        job=job,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if org.schedule_running
            else dg.DefaultScheduleStatus.STOPPED
        ),
        description=(
            f"Polls org `{org.name}` on the cron `{org.schedule}` (UTC). As the org's API usage "
            f"approaches the pipeline's budget ({org.api_budget_share:.0%} of the daily allocation) "
            f"it runs on every 2nd, 4th or 8th tick, and it skips a tick when the next run would "
            f"pass the budget. Usage comes from the latest extract manifests, so a tick costs no "
            f"API call."
        ),
        tags={"cora/org": org.name},
    )
    def org_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        base = cron_interval(org.schedule, now)
        decision = decide_tick(org, read_usage(settings.data_root, org), now, base)
        context.log.info(decision.reason)
        if not decision.run:
            return dg.SkipReason(decision.reason)
        return dg.RunRequest(tags={"cora/org": org.name, **decision.run_tags()})

    return org_schedule
