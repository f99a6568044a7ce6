"""Measure the whole extract path against the emulator: records/s, HTTP share, API calls.

Runs ``cora_pipeline.emulator.cli`` in a child process, so the server and the extractor do not
share one interpreter lock. It seeds one object with ``--records`` records and connects through the
OAuth web-server flow with PKCE (auto-approve). Then it runs :func:`extract_object` twice: a full
extract, and an incremental one after ``--changes`` records were updated. For each it prints

- records per second through the whole path (REST paging, JSON decoding, Arrow conversion,
  Parquet writing, the manifest and the rename);
- the share of wall time spent waiting on REST calls (network, Salesforce and simple-salesforce's
  JSON decoding) and the rest, the share spent only in this project's own code (target: under
  15%). A worker thread converts pages to Arrow and writes Parquet while the next REST call runs.
  The two phases listed (JSON records to Arrow, and Parquet writing) are wall seconds in that
  thread, so they overlap the REST calls and can add up to more than our own share. The CPU
  seconds of the benchmark process are printed too (the emulator runs in its own process);
- API calls per 100,000 records, counted two ways: the query path (describe, query pages and the
  ``deleted`` resource, or the one ``/composite`` call that carries all three) and with the
  ``/limits`` call the client makes once; the query-path target is at most 51.

Example::

    .venv/bin/python benchmarks/extract_benchmark.py --records 100000 --object Contact
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import requests
import yaml

from cora_pipeline.config import ObjectConfig, load_settings
from cora_pipeline.connect import ConnectionStore, TokenManager, connect_web_server
from cora_pipeline.extract import files, query
from cora_pipeline.extract.extractor import ExtractResult, extract_object
from cora_pipeline.extract.files import ExtractWriter
from cora_pipeline.salesforce.client import SalesforceClient

ORG = "bench"
SECRET_ENV = "CORA_BENCH_CLIENT_SECRET"  # noqa: S105 - the variable name, not a secret
OBJECTS = ("Account", "Contact", "Opportunity", "Case", "Invoice__c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to seed and extract")
    parser.add_argument("--object", choices=OBJECTS, default="Contact", help="sObject to extract")
    parser.add_argument(
        "--changes", type=int, default=1000, help="records updated before the incremental run"
    )
    parser.add_argument("--batch-size", type=int, default=2000, help="REST query page size")
    args = parser.parse_args()

    # Child records need parents: contacts and opportunities need accounts, cases need contacts
    # and invoices need opportunities.
    sizes = {name: 0 for name in OBJECTS}
    sizes["Account"] = 1000
    sizes["Contact"] = 100 if args.object == "Case" else 0
    sizes["Opportunity"] = 100 if args.object == "Invoice__c" else 0
    sizes[args.object] = args.records

    with tempfile.TemporaryDirectory(prefix="extract-bench-") as temp:
        root = Path(temp)
        callback_port = _free_port()
        started = time.perf_counter()
        process = _start_emulator(root, sizes, callback_port)
        try:
            banner = _read_banner(process)
            print(f"seeded {args.records} {args.object} records in {_since(started):.1f} s")
            _run(root, banner, callback_port, args)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            if process.stdout is not None:
                process.stdout.close()


def _run(root: Path, banner: dict[str, str], callback_port: int, args: Any) -> None:
    os.environ[SECRET_ENV] = banner["Client secret"]
    config_path = root / "cora.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "data_root": str(root / "data"),
                "orgs": {
                    ORG: {
                        "environment": "production",
                        "login_url": banner["Login URL"],
                        "client_id": banner["Client id"],
                        "client_secret_env": SECRET_ENV,
                        "callback_port": callback_port,
                        "ca_file": banner["CA file to trust"],
                        "batch_size": args.batch_size,
                        "formula_refresh_hours": 24,
                        "reconcile_hours": 24,
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    settings = load_settings(config_path)
    org = settings.org(ORG)
    store = ConnectionStore.open(settings, create_key=True)
    connect_web_server(
        org, store, browser=_browser(banner["CA file to trust"]), output=lambda *_: None
    )
    obj = ObjectConfig(args.object)
    # The query module calls to_arrow by the name it imported, so the wrapper goes there.
    _measure(query, "to_arrow", "JSON to Arrow")
    _measure(ExtractWriter, "write_records", "Parquet writing")
    _measure(files, "_fsync", "fsync")
    _measure(files, "_fsync_dir", "fsync")

    client = SalesforceClient(org, TokenManager(org, store))
    try:
        full = _timed(lambda: extract_object(client, org, obj, settings.data_root))
        _report("full", *full, limits_calls=1)
        _touch(banner, client, args.object, args.changes)
        incremental = _timed(lambda: extract_object(client, org, obj, settings.data_root))
        _report("incremental", *incremental, limits_calls=0)
    finally:
        client.close()


PHASES: dict[str, float] = {}


def _measure(owner: Any, name: str, phase: str) -> None:
    """Wrap ``owner.name`` so the seconds spent in it add up under ``phase``."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[phase] = PHASES.get(phase, 0.0) + time.perf_counter() - started

    setattr(owner, name, timed)


def _timed(run: Any) -> tuple[ExtractResult, float, float]:
    PHASES.clear()
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = run()
    return result, time.perf_counter() - started, time.process_time() - cpu_started


def _report(label: str, result: ExtractResult, wall: float, cpu: float, limits_calls: int) -> None:
    records = result.records
    waiting = result.http_seconds
    ours = wall - waiting
    # The client reads /limits once, in its first extract; everything else is the query path.
    query_path = result.api_calls - limits_calls
    print(f"\n{label} extract: {result.status}, {records} records in {result.pages} pages")
    print(f"  watermark           {result.watermark_from} to {result.watermark_to}")
    print(f"  wall time           {wall:8.2f} s")
    print("  load average        {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg()))
    print(f"  records per second  {records / wall:8,.0f}")
    print(f"  waiting on HTTP     {waiting:8.2f} s  ({waiting / wall:.1%})")
    print(f"  our own processing  {ours:8.2f} s  ({ours / wall:.1%}, target under 15%)")
    print(f"  CPU of this process {cpu:8.2f} s  (all threads)")
    for phase, seconds in sorted(PHASES.items()):
        print(f"    {phase:<17} {seconds:8.2f} s  ({seconds / wall:.1%})")
    if records:
        print(
            f"  API calls / 100k    {query_path * 100_000 / records:8.1f} on the query path "
            f"(describe, pages, deletes; target at most 51), "
            f"{result.api_calls * 100_000 / records:.1f} with /limits ({result.api_calls} calls)"
        )
    else:
        print(f"  API calls           {result.api_calls}")


def _touch(banner: dict[str, str], client: SalesforceClient, sobject: str, changes: int) -> None:
    """Update ``changes`` records through the REST API so the incremental run has work."""
    if changes <= 0:
        return
    ids: list[str] = []
    for page in client.query_pages(f"SELECT Id FROM {sobject}", sobject=sobject):  # noqa: S608
        ids.extend(row["Id"] for row in page)
        if len(ids) >= changes:
            break
    field = {"Account": "Description", "Contact": "Title", "Invoice__c": "Notes__c"}.get(
        sobject, "Description"
    )
    for number, record_id in enumerate(ids[:changes]):
        client.call(
            f"update {sobject}",
            partial(
                _update, sobject=sobject, record_id=record_id, values={field: f"change {number}"}
            ),
            sobject=sobject,
        )


def _update(sf: Any, *, sobject: str, record_id: str, values: dict[str, str]) -> Any:
    return getattr(sf, sobject).update(record_id, values)


def _start_emulator(root: Path, sizes: dict[str, int], callback_port: int) -> subprocess.Popen[str]:
    spec = ",".join(f"{name}={count}" for name, count in sizes.items())
    empty = ",".join(f"{name}=0" for name in OBJECTS)
    return subprocess.Popen(  # noqa: S603 - fixed arguments, this interpreter
        [
            sys.executable,
            "-m",
            "cora_pipeline.emulator.cli",
            "--seed",
            "1",
            "--sizes",
            spec,
            "--sandbox-sizes",
            empty,
            "--auto-approve",
            "--callback-url",
            f"http://127.0.0.1:{callback_port}/callback",
            "--data-dir",
            str(root / "emulator"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """Read the emulator's "Name: value" lines up to its "Serving" line."""
    assert process.stdout is not None
    banner: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("Serving"):
            return banner
        key, _, value = line.partition(":")
        banner[key.strip()] = value.strip()
    raise RuntimeError(f"the emulator exited with status {process.wait()} before serving")


def _browser(ca_file: str) -> Any:
    """Stand in for the administrator's browser: open the authorize URL, follow its redirect."""

    def visit(url: str) -> None:
        def go() -> None:
            response = requests.get(url, verify=ca_file, allow_redirects=False, timeout=30)
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303) and location:
                requests.get(location, timeout=30)

        threading.Thread(target=go, name="bench-browser", daemon=True).start()

    return visit


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _since(started: float) -> float:
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
