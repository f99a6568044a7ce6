"""Measure how many query-result records per second the emulator serves to simple-salesforce.

Runs ``cora emulator`` in a child process (so the server and this client do not share one
interpreter lock), connects through the OAuth web-server flow with PKCE (auto-approve), then
pages through ``SELECT <fields> FROM <object>`` with ``query_all_iter`` and prints records per
second. Example:

    .venv/bin/python benchmarks/emulator_query.py --records 1000000 --object Contact
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from simple_salesforce import Salesforce

CALLBACK = "http://127.0.0.1:1717/OauthRedirect"
FIELDS = {
    "Account": "Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, BillingAddress, "
    "Phone, Website, Description, CreatedDate, LastModifiedDate, SystemModstamp, Owner.Name",
    "Contact": "Id, FirstName, LastName, Name, Email, Phone, Title, AccountId, Account.Name, "
    "MailingCity, Birthdate, HasOptedOutOfEmail, CreatedDate, SystemModstamp",
    "Invoice__c": "Id, Name, Account__c, Status__c, Amount__c, Tax_Rate__c, Total__c, "
    "Invoice_Date__c, Days_Outstanding__c, Paid__c, Tags__c, SystemModstamp",
}


def _read_banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """Read the emulator's "Name: value" lines up to its "Serving" line."""
    assert process.stdout is not None
    banner: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("Serving"):
            return banner
        key, _, value = line.partition(":")
        banner[key.strip()] = value.strip()
    raise RuntimeError(f"cora emulator exited with status {process.wait()} before serving")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to seed and read")
    parser.add_argument("--object", choices=sorted(FIELDS), default="Contact")
    args = parser.parse_args()

    sizes = f"Account={min(args.records, 1000)},{args.object}={args.records}"
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as data_dir:
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - fixed arguments, this interpreter
            [
                sys.executable,
                "-m",
                "cora_pipeline.emulator.cli",
                "--seed",
                "1",
                "--sizes",
                sizes,
                "--sandbox-sizes",
                "Account=0,Contact=0,Opportunity=0,Case=0,Invoice__c=0",
                "--auto-approve",
                "--callback-url",
                CALLBACK,
                "--data-dir",
                data_dir,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            banner = _read_banner(process)
            print(
                f"seeded {args.records} {args.object} records in "
                f"{time.perf_counter() - started:.1f} s"
            )
            cpu_before = _cpu_seconds(process.pid)
            count, elapsed = _read_all(banner, args.object)
            server_cpu = _cpu_seconds(process.pid) - cpu_before
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            if process.stdout is not None:
                process.stdout.close()
    print(
        f"read {count} {args.object} records in {elapsed:.2f} s: "
        f"{count / elapsed:,.0f} records/s (server in a child process, {os.cpu_count()} CPUs)"
    )
    print(
        f"server CPU time {server_cpu:.2f} s: {count / server_cpu:,.0f} records per "
        f"server CPU second"
    )


def _cpu_seconds(pid: int) -> float:
    """Return user plus system CPU seconds of a process, from /proc (Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _read_all(banner: dict[str, str], object_name: str) -> tuple[int, float]:
    """Connect through OAuth, page through every record; return the count and the seconds."""
    login_url = banner["Login URL"]
    session = requests.Session()
    session.verify = banner["CA file to trust"]
    # REQUESTS_CA_BUNDLE in the environment would otherwise replace the emulator's CA.
    session.trust_env = False

    client = OAuth2Session(
        banner["Client id"],
        banner["Client secret"],
        scope="api",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    )
    client.verify = session.verify
    client.trust_env = False

    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        f"{login_url}/services/oauth2/authorize", code_verifier=verifier
    )
    location = session.get(url, allow_redirects=False).headers["Location"]
    token = client.fetch_token(
        f"{login_url}/services/oauth2/token",
        authorization_response=location,
        code_verifier=verifier,
    )

    sf = Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )
    soql = f"SELECT {FIELDS[object_name]} FROM {object_name}"  # noqa: S608
    started = time.perf_counter()
    count = sum(1 for _ in sf.query_all_iter(soql))
    return count, time.perf_counter() - started


if __name__ == "__main__":
    main()
