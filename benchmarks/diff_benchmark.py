"""Benchmark the warehouse diff: seconds, records per second and peak memory of one apply_extract.

The data set has N records of 40 fields (strings, decimals, integers, booleans, dates, timestamps). A
baseline full extract is followed by a second full extract in which 1% of the records changed three
fields (with LastModifiedDate and SystemModstamp moved), 0.1% are new and 0.1% are gone. Both are
written through ``ExtractWriter`` in pages of 2,000 records, as extraction writes them.

Each measured step runs in a fresh child process, so its peak resident memory (``ru_maxrss``) counts only
that step. The steps are the baseline load, then the diff of the second extract (the figure of
interest), then the same diff on a copy with the analyst Parquet export that the pipeline also runs.
When a ``dbt`` executable with the duckdb adapter is found (``--dbt PATH``, else ``dbt`` beside this
Python or on PATH), the same two extracts go through ``dbt snapshot`` with the check strategy on all
columns, measured the same way.

Usage::

    python benchmarks/diff_benchmark.py                       # 1,000,000 records
    python benchmarks/diff_benchmark.py --records 10000000 --memory-limit 3GB
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cora_pipeline.extract.files import ExtractWriter, FieldInfo, Manifest, new_extract_id
from cora_pipeline.extract.schema import arrow_schema

ORG = "bench"
OBJECT = "Account"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def benchmark_fields() -> list[FieldInfo]:
    """Return 40 fields: Id, IsDeleted, the two audit timestamps and 36 data fields."""
    fields = [
        FieldInfo("Id", "id", "string"),
        FieldInfo("IsDeleted", "boolean", "bool"),
        FieldInfo("LastModifiedDate", "datetime", "timestamp[ms, tz=UTC]"),
        FieldInfo("SystemModstamp", "datetime", "timestamp[ms, tz=UTC]"),
    ]
    fields += [FieldInfo(f"Text{i}__c", "string", "string") for i in range(14)]
    fields += [
        FieldInfo(f"Amount{i}__c", "currency", "decimal128(18, 2)", precision=18, scale=2)
        for i in range(8)
    ]
    fields += [FieldInfo(f"Count{i}__c", "int", "int64") for i in range(5)]
    fields += [FieldInfo(f"Flag{i}__c", "boolean", "bool") for i in range(3)]
    fields += [FieldInfo(f"Day{i}__c", "date", "date32") for i in range(3)]
    fields += [FieldInfo(f"Seen{i}__c", "datetime", "timestamp[ms, tz=UTC]") for i in range(3)]
    assert len(fields) == 40
    return fields


def make_table(ids: np.ndarray, fields: list[FieldInfo], seed: int) -> pa.Table:
    """Build the records for record numbers ``ids``; values depend only on the number and ``seed``."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    id_text = pc.cast(pa.array(ids), pa.string())
    columns: dict[str, pa.Array] = {}
    base_ms = int(T0.timestamp() * 1000)
    for f in fields:
        name = f.name
        if name == "Id":
            columns[name] = pc.binary_join_element_wise("001", pc.utf8_lpad(id_text, 15, "0"), "")
        elif name == "IsDeleted":
            columns[name] = pa.array(np.zeros(n, dtype=bool))
        elif name in ("LastModifiedDate", "SystemModstamp"):
            columns[name] = pa.array(np.full(n, base_ms), pa.timestamp("ms", tz="UTC"))
        elif f.type == "string":
            columns[name] = pc.binary_join_element_wise(f"{name} value ", id_text, "")
        elif f.type == "currency":
            cents = (ids * 37 + len(name)) % 10_000_000
            columns[name] = pc.cast(pa.array(cents / 100.0), pa.decimal128(18, 2))
        elif f.type == "int":
            columns[name] = pa.array((ids * 7 + len(name)) % 100_000, pa.int64())
        elif f.type == "boolean":
            columns[name] = pa.array((ids + len(name)) % 2 == 0)
        elif f.type == "date":
            columns[name] = pa.array((19_000 + ids % 2_000).astype(np.int32), pa.date32())
        elif f.type == "datetime":
            offsets = rng.integers(0, 86_400_000, n)
            columns[name] = pa.array(base_ms - offsets, pa.timestamp("ms", tz="UTC"))
    return pa.table(columns, schema=arrow_schema(fields))


# Extraction writes one row group per page of query results; 2,000 records is the REST query page
# size Salesforce uses by default.
PAGE_RECORDS = 2_000


def write(data_root: Path, table: pa.Table, fields: list[FieldInfo], hour: int) -> Path:
    finished = T0 + timedelta(hours=hour)
    manifest = Manifest(
        org=ORG,
        object=OBJECT,
        extract_id=new_extract_id(finished),
        mode="full",
        started_at=(finished - timedelta(minutes=5)).isoformat(),
        finished_at=finished.isoformat(),
        fields=fields,
        run_id=f"bench-{hour}",
    )
    with ExtractWriter(data_root, ORG, OBJECT, manifest.extract_id) as writer:
        for batch in table.to_batches(max_chunksize=PAGE_RECORDS):
            writer.write_records(pa.Table.from_batches([batch], schema=table.schema))
        return writer.commit(manifest)


def generate(data_root: Path, records: int) -> tuple[Path, Path, dict[str, int]]:
    """Write the baseline and the changed extract; return their directories and the change counts."""
    fields = benchmark_fields()
    ids = np.arange(records, dtype=np.int64)
    baseline = make_table(ids, fields, seed=1)
    first = write(data_root, baseline, fields, hour=1)

    updated_n = records // 100
    created_n = records // 1000
    deleted_n = records // 1000
    rng = np.random.default_rng(2)
    order = rng.permutation(records)
    deleted_ids = np.sort(order[:deleted_n])
    updated_ids = np.sort(order[deleted_n : deleted_n + updated_n])

    keep = np.ones(records, dtype=bool)
    keep[deleted_ids] = False
    table = baseline.filter(pa.array(keep))
    mask = np.zeros(records, dtype=bool)
    mask[updated_ids] = True
    updated_mask = pa.array(mask[keep])

    moved_ms = int((T0 + timedelta(minutes=30)).timestamp() * 1000)
    moved = pa.scalar(moved_ms, pa.timestamp("ms", tz="UTC"))
    changes = {
        "Text0__c": pa.scalar("changed", pa.string()),
        "Amount0__c": pa.scalar(1, pa.decimal128(18, 2)),
        "Day0__c": pa.scalar(20_500, pa.date32()),
        "LastModifiedDate": moved,
        "SystemModstamp": moved,
    }
    for name, value in changes.items():
        index = table.schema.get_field_index(name)
        column = pc.if_else(updated_mask, value, table.column(name))
        table = table.set_column(index, name, column)
    new_ids = np.arange(records, records + created_n, dtype=np.int64)
    table = pa.concat_tables([table, make_table(new_ids, fields, seed=3)])
    second = write(data_root, table, fields, hour=2)
    return first, second, {"updated": updated_n, "created": created_n, "deleted": deleted_n}


# -- measured steps, each in its own process ---------------------------------------------------


def child_apply(args: argparse.Namespace) -> None:
    from cora_pipeline.warehouse import Warehouse

    wh = Warehouse(args.data_root, memory_limit=args.memory_limit, threads=args.threads)
    # Opening the file is not part of the diff; the pipeline opens it once per run.
    wh.con  # noqa: B018
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = wh.apply_extract(args.extract, publish=args.publish)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    # Closing checkpoints what the write-ahead log holds: part of the cost, paid once per run.
    started = time.perf_counter()
    wh.close()
    close_seconds = time.perf_counter() - started
    report = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "close_seconds": close_seconds,
        "created": result.created,
        "updated": result.updated,
        "deleted": result.deleted,
        "field_changes": result.field_changes,
    }
    print(json.dumps(report))


# Runs the command given as arguments and prints its peak resident memory in KiB as the last line of
# stderr. A fresh process per step makes RUSAGE_CHILDREN cover exactly that step.
PEAK_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(code)"
)


def run_child(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[str, float, int]:
    """Run a child process; return its output, wall seconds and peak resident memory in bytes."""
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 -- argv is built by this script
        [sys.executable, "-c", PEAK_WRAPPER, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{completed.stdout}\n{completed.stderr}")
    peak_kib = int(completed.stderr.strip().splitlines()[-1])
    return completed.stdout, seconds, peak_kib * 1024


def measure_warehouse(args: argparse.Namespace, first: Path, second: Path, root: Path) -> dict:
    base = [sys.executable, __file__, "--child-apply", "--data-root", str(root)]
    extra = ["--threads", str(args.threads)]
    if args.memory_limit:
        extra += ["--memory-limit", args.memory_limit]
    out, baseline_seconds, baseline_peak = run_child(
        [*base, "--extract", str(first), "--publish", *extra]
    )
    # The same diff again on a copy, this time with the analyst export the pipeline runs too.
    published_root = root.with_name(root.name + "-published")
    shutil.copytree(root, published_root, ignore=shutil.ignore_patterns("extracts"))
    out, _, peak = run_child([*base, "--extract", str(second), *extra])
    report = json.loads(out.strip().splitlines()[-1])
    published = [*base[:-1], str(published_root), "--extract", str(second), "--publish", *extra]
    out, _, publish_peak = run_child(published)
    report.update(
        baseline_seconds=baseline_seconds,
        baseline_peak=baseline_peak,
        peak=peak,
        published_seconds=json.loads(out.strip().splitlines()[-1])["seconds"],
        published_peak=publish_peak,
    )
    return report


# -- dbt snapshot ------------------------------------------------------------------------------


def find_dbt(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    return shutil.which("dbt")


def measure_dbt(dbt: str, args: argparse.Namespace, first: Path, second: Path, work: Path) -> dict:
    """Run ``dbt snapshot`` (check strategy, all columns) on the baseline, then on the second extract."""
    project = work / "dbt_project"
    (project / "snapshots").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        textwrap.dedent(
            """
            name: cora_benchmark
            version: "1.0"
            profile: cora_benchmark
            snapshot-paths: ["snapshots"]
            flags:
              send_anonymous_usage_stats: false
              version_check: false
            """
        )
    )
    settings = f"threads: {args.threads}"
    if args.memory_limit:
        settings += f"\n          settings:\n            memory_limit: {args.memory_limit}"
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            f"""
            cora_benchmark:
              target: bench
              outputs:
                bench:
                  type: duckdb
                  path: {work / "dbt.duckdb"}
                  {settings}
            """
        )
    )
    (project / "snapshots" / "accounts.sql").write_text(
        textwrap.dedent(
            """
            {% snapshot accounts_snapshot %}
            {{ config(target_schema='snapshots', unique_key='Id', strategy='check',
                      check_cols='all', hard_deletes='invalidate') }}
            select * from read_parquet('{{ var("records") }}')
            {% endsnapshot %}
            """
        )
    )
    figures = {}
    for label, extract in (("baseline", first), ("diff", second)):
        records = extract / "records.parquet"
        argv = [
            dbt,
            "snapshot",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--vars",
            json.dumps({"records": str(records)}),
        ]
        # No usage statistics and no version check: the benchmark makes no network calls.
        env = {
            **os.environ,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_VERSION_CHECK": "false",
            "DO_NOT_TRACK": "1",
        }
        _, seconds, peak = run_child(argv, cwd=project, env=env)
        figures[label] = (seconds, peak)
    return {
        "seconds": figures["diff"][0],
        "peak": figures["diff"][1],
        "baseline": figures["baseline"],
    }


# -- report ------------------------------------------------------------------------------------


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the baseline")
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit, for example 3GB (default: DuckDB's own)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="DuckDB threads (default: 2, the target machine)"
    )
    parser.add_argument("--dbt", help="dbt executable to compare with (default: found on PATH)")
    parser.add_argument("--no-dbt", action="store_true", help="skip the dbt snapshot comparison")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--child-apply", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extract", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_apply:
        child_apply(args)
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="cora-diff-benchmark-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        first, second, expected = generate(work / "data", args.records)
        # The generated tables are gone; hand their memory back before the measured children run.
        pa.default_memory_pool().release_unused()
        print(
            f"generated {args.records:,} records x 40 fields in {time.perf_counter() - started:.1f} s "
            f"({expected['updated']:,} updated on 3 fields, {expected['created']:,} created, "
            f"{expected['deleted']:,} deleted); {os.cpu_count()} CPUs, threads={args.threads}, "
            f"memory_limit={args.memory_limit or 'DuckDB default'}"
        )
        load = os.getloadavg()[0]
        wh = measure_warehouse(args, first, second, work / "data")
        rate = args.records / wh["seconds"]
        print(
            f"cora apply_extract: {wh['seconds']:.2f} s ({wh['cpu_seconds']:.2f} s CPU, all threads), "
            f"{rate:,.0f} records/s, "
            f"peak memory {gib(wh['peak'])} (process); "
            f"{wh['updated']:,} updated, {wh['created']:,} created, {wh['deleted']:,} deleted, "
            f"{wh['field_changes']:,} field changes; load average before {load:.1f}"
        )
        print(f"  then close with its checkpoint: {wh['close_seconds']:.2f} s")
        print(
            f"  with the analyst export: {wh['published_seconds']:.2f} s, "
            f"peak {gib(wh['published_peak'])}; baseline load with its export "
            f"{wh['baseline_seconds']:.2f} s (process, with start-up), "
            f"peak {gib(wh['baseline_peak'])}"
        )
        dbt = None if args.no_dbt else find_dbt(args.dbt)
        if dbt is None:
            print("dbt snapshot: skipped (no dbt executable found; pass --dbt PATH)")
        else:
            figures = measure_dbt(dbt, args, first, second, work)
            print(
                f"dbt snapshot:       {figures['seconds']:.2f} s, "
                f"{args.records / figures['seconds']:,.0f} records/s, "
                f"peak memory {gib(figures['peak'])} (process, with dbt start-up); "
                f"baseline {figures['baseline'][0]:.2f} s"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
