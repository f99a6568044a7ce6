"""Names of the Dagster objects per org: asset keys, jobs, owners and the warehouse pool."""

import dagster as dg

OWNERS = ["team:data-engineering"]
# Every asset that writes the DuckDB warehouse runs in this pool, whose limit is 1 in
# dagster_home/dagster.yaml, because DuckDB allows one writer process per file.
WAREHOUSE_POOL = "cora_warehouse"
ORG_TAG = "cora/org"
FULL_REFRESH_TAG = "cora/full_refresh"


def extract_key(org: str, sobject: str) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", org, sobject])


def warehouse_key(org: str, sobject: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", org, sobject])


def connection_key(org: str) -> dg.AssetKey:
    """Return the key of the external asset that stands for the org's OAuth connection."""
    return dg.AssetKey(["salesforce", org, "connection"])


def job_name(org: str) -> str:
    return f"sync_{org}"
