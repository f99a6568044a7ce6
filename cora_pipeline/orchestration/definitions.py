"""The Dagster code location: per configured org an asset group, a job, a schedule and a sensor.

``workspace.yaml`` points ``dagster dev`` here. The module builds exactly one ``Definitions`` at module
scope, from the configuration file (or the demo org backed by the bundled emulator when there is none).
Loading it starts nothing and calls no API: the emulator starts with the first run that needs it.
"""

import warnings

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # no public export in dagster 1.13
)

from cora_pipeline.config import OrgConfig, Settings, load_settings
from cora_pipeline.orchestration.assets import build_object_assets
from cora_pipeline.orchestration.health import build_health_sensor, connection_spec
from cora_pipeline.orchestration.keys import ORG_TAG, extract_key, job_name, warehouse_key
from cora_pipeline.orchestration.resources import CoraResource, credentials_key, org_credentials
from cora_pipeline.orchestration.schedules import build_org_schedule


def build_org_job(org: OrgConfig) -> UnresolvedAssetJobDefinition:
    keys = [
        key
        for obj in org.objects
        for key in (extract_key(org.name, obj.name), warehouse_key(org.name, obj.name))
    ]
    # The in-process executor on purpose. With the multiprocess executor every step process builds
    # its resources again: a vault read, a REST client and a /limits call (one API call). When the
    # token expired, each process also spends one OAuth refresh, and each step costs about 1.5 s of
    # process start-up. The steps of one org wait on that org's API anyway, so one process is
    # faster and spends fewer calls.
    # Several orgs still run in parallel as separate runs, one per org (a run-tag limit on cora/org).
    return dg.define_asset_job(
        name=job_name(org.name),
        selection=dg.AssetSelection.assets(*keys),
        executor_def=dg.in_process_executor,
        tags={ORG_TAG: org.name},
        description=(
            f"Extract every configured object of org `{org.name}` and diff it into the warehouse."
        ),
    )


def build_definitions(settings: Settings, config_path: str | None = None) -> dg.Definitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    asset_checks: list[dg.AssetChecksDefinition] = []
    jobs = []
    schedules = []
    sensors = []
    resources: dict[str, object] = {}
    for org in settings.orgs.values():
        org_assets: list[dg.AssetsDefinition] = []
        for obj in org.objects:
            org_assets.extend(build_object_assets(org, obj))
        assets.extend(org_assets)
        assets.append(connection_spec(org))
        extracts = [a for a in org_assets if a.key.path[0] == "salesforce"]
        with warnings.catch_warnings():
            # The factory is marked beta in dagster 1.13; the warning would print on every load.
            warnings.simplefilter("ignore", dg.BetaWarning)
            asset_checks.extend(
                dg.build_column_schema_change_checks(
                    assets=extracts, severity=dg.AssetCheckSeverity.WARN
                )
            )
        job = build_org_job(org)
        jobs.append(job)
        schedules.append(build_org_schedule(settings, org, job))
        sensors.append(build_health_sensor(settings, org))
        resources[credentials_key(org.name)] = org_credentials(org)
    source = config_path or (str(settings.source) if settings.source else None)
    resources["cora"] = CoraResource(config_path=source)
    return dg.Definitions(
        # The default for every job, so the UI's "Materialize" runs in one process as well.
        executor=dg.in_process_executor,
        assets=assets,
        asset_checks=asset_checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=resources,
    )


defs = build_definitions(load_settings())
