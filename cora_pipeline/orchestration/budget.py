"""How much of an org's daily API allocation the pipeline has used, and when it may poll again.

Usage comes from the extract manifests, not from a live ``/limits`` call. Every extract records the
``Sforce-Limit-Info`` usage Salesforce reported with its last response, so reading the manifests costs
no API call and needs no token. A live call would spend one call per schedule tick and need a token
refresh in the scheduler process. The manifest figure is as old as the latest run. Salesforce counts
usage over a rolling 24 hours, so an older figure is higher than or equal to the current one, unless
another integration spent calls since.
"""

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cora_pipeline.config import OrgConfig
from cora_pipeline.extract.extractor import budget_calls
from cora_pipeline.extract.files import Manifest, list_extracts, read_manifest

# Polling interval multipliers by the share of the pipeline's budget already used: below half the
# budget the schedule polls on every cron tick, then every 2nd, 4th and 8th tick.
INTERVAL_STEPS: tuple[tuple[float, int], ...] = ((0.5, 1), (0.75, 2), (0.9, 4))
MAX_MULTIPLIER = 8
MANIFESTS_PER_OBJECT = 4
"""Newest manifests read per object: enough for one run's incremental and formula extracts."""


@dataclass(frozen=True)
class UsageSnapshot:
    """The org's API usage after its latest run, read from extract manifests."""

    api_used: int | None = None
    api_max: int | None = None
    observed_at: datetime | None = None
    """When the latest extract finished, which is when Salesforce reported ``api_used``."""
    last_run_id: str | None = None
    last_run_started_at: datetime | None = None
    last_run_calls: int = 0
    """API calls the latest run spent over every object."""
    expected_run_calls: int = 0
    """The most calls any recent run spent, the estimate for the next run. A run the budget
    stopped spends only a few calls, so the latest run alone would underestimate the next one."""

    @property
    def known(self) -> bool:
        return self.api_used is not None and self.api_max is not None


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_usage(data_root: Path, org: OrgConfig) -> UsageSnapshot:
    """Return the usage the newest extract of any of the org's objects reported."""
    manifests: list[Manifest] = []
    for obj in org.objects:
        paths = list_extracts(data_root, org.name, obj.name)[-MANIFESTS_PER_OBJECT:]
        manifests.extend(read_manifest(path) for path in paths)
    reported = [m for m in manifests if m.api_used is not None and m.api_max is not None]
    if not reported:
        return UsageSnapshot()
    newest = max(reported, key=lambda m: m.finished_at)
    run = [m for m in manifests if newest.run_id is not None and m.run_id == newest.run_id] or [
        newest
    ]
    calls_by_run: dict[str, int] = {}
    for manifest in manifests:
        key = manifest.run_id or manifest.extract_id
        calls_by_run[key] = calls_by_run.get(key, 0) + manifest.api_calls
    last_run_calls = sum(m.api_calls for m in run)
    return UsageSnapshot(
        api_used=newest.api_used,
        api_max=newest.api_max,
        observed_at=_parse(newest.finished_at),
        last_run_id=newest.run_id,
        last_run_started_at=min(filter(None, (_parse(m.started_at) for m in run)), default=None),
        last_run_calls=last_run_calls,
        expected_run_calls=max(last_run_calls, *calls_by_run.values()),
    )


def cron_interval(cron_schedule: str, now: datetime, timezone: str = "UTC") -> timedelta:
    """Return the time between the two cron ticks that follow ``now``."""
    # NOTE: a private Dagster helper (dagster 1.13.27); it uses the same cron parser as schedules.
    from dagster._utils.schedules import cron_string_iterator

    ticks = cron_string_iterator(now.timestamp(), cron_schedule, timezone)
    first = next(ticks)
    second = next(ticks)
    return second - first


def interval_multiplier(share_of_budget: float) -> int:
    """Return how many cron ticks apart runs should be at this share of the budget used."""
    for limit, multiplier in INTERVAL_STEPS:
        if share_of_budget < limit:
            return multiplier
    return MAX_MULTIPLIER


@dataclass(frozen=True)
class TickDecision:
    """Whether a schedule tick starts a run, and why, in words and in numbers."""

    run: bool
    reason: str
    base_interval: timedelta
    interval: timedelta
    api_used: int | None = None
    api_max: int | None = None
    budget: int | None = None
    expected_calls: int = 0
    next_run_after: datetime | None = None

    @property
    def interval_minutes(self) -> int:
        return round(self.interval.total_seconds() / 60)

    def run_tags(self) -> dict[str, str]:
        """Return the run tags that record the decision; tag values are digits only."""
        tags = {"cora/interval_minutes": str(self.interval_minutes)}
        if self.api_used is not None:
            tags["cora/api_used"] = str(self.api_used)
        if self.api_max is not None:
            tags["cora/api_max"] = str(self.api_max)
        if self.budget is not None:
            tags["cora/api_budget"] = str(self.budget)
        tags["cora/expected_calls"] = str(self.expected_calls)
        return tags


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes / 60:.0f} h"
    return f"{minutes:.0f} min"


def decide_tick(
    org: OrgConfig, usage: UsageSnapshot, now: datetime, base_interval: timedelta
) -> TickDecision:
    """Decide whether the schedule tick at ``now`` runs the org's job.

    A tick is skipped when the usage plus the most any recent run spent would pass the budget, or when
    the latest run started less than the current interval ago. The interval grows with the share of
    the budget used (see ``INTERVAL_STEPS``). Half a base interval of slack lets a run that started
    a little after its tick count as on time.
    """
    if not usage.known:
        return TickDecision(
            run=True,
            reason=(
                f"org {org.name}: no extract has reported API usage yet, so this run polls on "
                f"the base interval of {_minutes(base_interval)} and measures it"
            ),
            base_interval=base_interval,
            interval=base_interval,
        )
    assert usage.api_used is not None and usage.api_max is not None
    used, api_max = usage.api_used, usage.api_max
    budget = budget_calls(org, api_max)
    share = used / budget if budget else 1.0
    multiplier = interval_multiplier(share)
    interval = base_interval * multiplier
    expected = usage.expected_run_calls
    as_of = usage.observed_at.strftime("%Y-%m-%d %H:%M UTC") if usage.observed_at else "unknown"
    usage_text = (
        f"API usage {used:,} of {api_max:,} daily calls as of {as_of}, {share:.0%} of the "
        f"pipeline's budget of {budget:,} calls (api_budget_share {org.api_budget_share:.0%})"
    )
    interval_text = f"polling every {_minutes(interval)}" + (
        f" instead of every {_minutes(base_interval)}" if multiplier > 1 else ""
    )
    decision = TickDecision(
        run=True,
        reason=f"org {org.name}: {usage_text}; {interval_text}.",
        base_interval=base_interval,
        interval=interval,
        api_used=used,
        api_max=api_max,
        budget=budget,
        expected_calls=expected,
    )
    if used + expected > budget:
        return replace(
            decision,
            run=False,
            reason=(
                f"org {org.name}: skipped because the next run would pass the API budget: "
                f"{usage_text}, and a recent run spent {expected:,} calls. Usage falls as "
                f"Salesforce's rolling 24-hour window moves on; raise api_budget_share to poll "
                f"sooner. Current interval: {interval_text}."
            ),
        )
    if usage.last_run_started_at is not None:
        due = usage.last_run_started_at + interval - base_interval / 2
        if now < due:
            return replace(
                decision,
                run=False,
                reason=(
                    f"org {org.name}: skipped to spread API calls: {usage_text}, so the schedule "
                    f"is {interval_text}; the next run is due after "
                    f"{due.strftime('%Y-%m-%d %H:%M UTC')}."
                ),
                next_run_after=due,
            )
    return decision


def share_of_budget(org: OrgConfig, usage: UsageSnapshot) -> float | None:
    """Return the share of the pipeline's budget used, or None when no usage is known."""
    if not usage.known:
        return None
    assert usage.api_used is not None and usage.api_max is not None
    budget = budget_calls(org, usage.api_max)
    return usage.api_used / budget if budget else math.inf
