"""Run one org's warehouse assets in this process once a start file appears.

Used by test_pool.py: two of these run at once against the same ``DAGSTER_HOME``, as two run workers
of the webserver or the daemon would.
"""

import sys
import time
from pathlib import Path

import dagster as dg

from cora_pipeline.config import load_settings
from cora_pipeline.orchestration.definitions import build_definitions
from cora_pipeline.orchestration.keys import job_name, warehouse_key


def main(config: str, org: str, start_file: str) -> int:
    settings = load_settings(config)
    job = build_definitions(settings).resolve_job_def(job_name(org))
    keys = [warehouse_key(org, obj.name) for obj in settings.org(org).objects]
    deadline = time.monotonic() + 60
    while not Path(start_file).exists():
        if time.monotonic() > deadline:
            print(f"start file {start_file} did not appear within 60 s", file=sys.stderr)
            return 2
        time.sleep(0.02)
    result = job.execute_in_process(instance=dg.DagsterInstance.get(), asset_selection=keys)
    print(result.run_id)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
