"""The org schedule skips ticks near the API budget and polls less often as usage grows."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from cora_pipeline.config import Settings, parse_settings
from cora_pipeline.orchestration.budget import decide_tick, interval_multiplier, read_usage
from cora_pipeline.orchestration.definitions import build_definitions

from .manifests import write_usage_extract

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BASE = timedelta(minutes=15)
API_MAX = 10_000  # budget 5,000 calls at api_budget_share 0.5


def _settings(data_root: Path) -> Settings:
    settings = parse_settings(
        {
            "data_root": str(data_root),
            "orgs": {
                "acme": {
                    "client_id": "a",
                    "objects": ["Account", "Contact"],
                    "schedule": "*/15 * * * *",
                    "api_budget_share": 0.5,
                }
            },
        }
    )
    return settings


def _evaluate(data_root: Path) -> dg.RunRequest | dg.SkipReason:
    settings = _settings(data_root)
    schedule = (
        build_definitions(settings).get_repository_def().get_schedule_def("sync_acme_schedule")
    )
    context = dg.build_schedule_context(scheduled_execution_time=NOW)
    data = schedule.evaluate_tick(context)
    if data.run_requests:
        assert len(data.run_requests) == 1
        return data.run_requests[0]
    return dg.SkipReason(data.skip_message)


def _usage(data_root: Path, used: int, calls: int, started: datetime) -> None:
    for sobject, share in (("Account", 0.6), ("Contact", 0.4)):
        write_usage_extract(
            data_root,
            "acme",
            sobject,
            started=started,
            api_used=used,
            api_max=API_MAX,
            api_calls=round(calls * share),
        )


def test_schedule_runs_when_no_usage_known(tmp_path: Path) -> None:
    outcome = _evaluate(tmp_path)

    assert isinstance(outcome, dg.RunRequest)
    assert outcome.tags["cora/org"] == "acme"
    assert outcome.tags["cora/interval_minutes"] == "15"


def test_schedule_runs_with_usage_tags_far_from_budget(tmp_path: Path) -> None:
    _usage(tmp_path, used=1_000, calls=40, started=NOW - BASE)

    outcome = _evaluate(tmp_path)

    assert isinstance(outcome, dg.RunRequest)
    assert outcome.tags["cora/api_used"] == "1000"
    assert outcome.tags["cora/api_max"] == "10000"
    assert outcome.tags["cora/api_budget"] == "5000"
    assert outcome.tags["cora/expected_calls"] == "40"
    assert outcome.tags["cora/interval_minutes"] == "15"


def test_schedule_skips_nearly_exhausted_budget(tmp_path: Path) -> None:
    _usage(tmp_path, used=4_980, calls=40, started=NOW - timedelta(hours=3))

    outcome = _evaluate(tmp_path)

    assert isinstance(outcome, dg.SkipReason)
    reason = outcome.skip_message or ""
    assert "would pass the API budget" in reason
    assert "4,980 of 10,000" in reason
    assert "budget of 5,000" in reason
    assert "spent 40 calls" in reason
    assert "every 2 h instead of every 15 min" in reason


def test_schedule_skips_tick_inside_longer_interval(tmp_path: Path) -> None:
    # 80% of the budget: every 4th tick, so a run 30 minutes ago is too recent.
    _usage(tmp_path, used=4_000, calls=40, started=NOW - timedelta(minutes=30))

    outcome = _evaluate(tmp_path)

    assert isinstance(outcome, dg.SkipReason)
    reason = outcome.skip_message or ""
    assert "polling every 60 min instead of every 15 min" in reason
    assert "next run is due after 2026-03-02 12:22 UTC" in reason


def test_schedule_runs_once_longer_interval_passed(tmp_path: Path) -> None:
    _usage(tmp_path, used=4_000, calls=40, started=NOW - timedelta(minutes=60))

    outcome = _evaluate(tmp_path)

    assert isinstance(outcome, dg.RunRequest)
    assert outcome.tags["cora/interval_minutes"] == "60"


@pytest.mark.parametrize(
    ("used", "multiplier"),
    [(0, 1), (2_499, 1), (2_500, 2), (3_749, 2), (3_750, 4), (4_499, 4), (4_500, 8), (5_000, 8)],
)
def test_interval_grows_with_usage(tmp_path: Path, used: int, multiplier: int) -> None:
    _usage(tmp_path, used=used, calls=0, started=NOW - timedelta(days=1))
    settings = _settings(tmp_path)
    org = settings.org("acme")

    decision = decide_tick(org, read_usage(tmp_path, org), NOW, BASE)

    assert interval_multiplier(used / 5_000) == multiplier
    assert decision.interval == BASE * multiplier


def test_usage_comes_from_newest_run(tmp_path: Path) -> None:
    _usage(tmp_path, used=100, calls=10, started=NOW - timedelta(hours=2))
    for sobject, calls in (("Account", 7), ("Contact", 5)):
        write_usage_extract(
            tmp_path,
            "acme",
            sobject,
            started=NOW - timedelta(hours=1),
            api_used=300 + calls,
            api_max=API_MAX,
            api_calls=calls,
            run_id="run-2",
        )
    org = _settings(tmp_path).org("acme")

    usage = read_usage(tmp_path, org)

    assert usage.last_run_id == "run-2"
    assert usage.api_used == 307
    assert usage.last_run_calls == 12
    assert usage.expected_run_calls == 12


def test_expected_calls_from_largest_recent_run(tmp_path: Path) -> None:
    _usage(tmp_path, used=4_000, calls=40, started=NOW - timedelta(hours=2))
    # A run the budget stopped: one /limits call per object.
    for sobject in ("Account", "Contact"):
        write_usage_extract(
            tmp_path,
            "acme",
            sobject,
            started=NOW - timedelta(hours=1),
            api_used=4_990,
            api_max=API_MAX,
            api_calls=1,
            run_id="run-2",
        )
    org = _settings(tmp_path).org("acme")

    usage = read_usage(tmp_path, org)

    assert usage.last_run_calls == 2
    assert usage.expected_run_calls == 40
    assert usage.last_run_started_at == NOW - timedelta(hours=1)
