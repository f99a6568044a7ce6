"""``cora demo``: the whole job on the bundled Salesforce emulator, end to end.

1. Start the emulator on 127.0.0.1 over HTTPS.
2. Connect its Production org through the OAuth web-server flow with PKCE. The emulator approves the
   demo administrator's consent by itself. A small stand-in for the browser follows its redirect to
   the loopback callback, so every request takes the same path as with a real org.
3. Materialize every asset of the org through Dagster, in the instance under ``DAGSTER_HOME``.
4. Change the org: user edits, a system-only update, creates, soft deletes, and a day passing, which
   moves a formula field without moving SystemModstamp.
5. Materialize again and print what changed, from the DuckDB warehouse.

The demo keeps its data under ``<CORA_HOME or ./.cora>/demo`` and starts from a clean slate each time,
because each emulator start creates the org afresh.
"""

import dataclasses
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml
from rich.console import Console
from rich.table import Table

from cora_pipeline.config import DEMO_ORG, Settings, default_data_root, load_settings
from cora_pipeline.emulator.browser import follow_redirect_browser, free_port
from cora_pipeline.orchestration.runner import dagster_instance, run_sync
from cora_pipeline.warehouse.store import ANALYST_FILE, WAREHOUSE_FILE

# The name of the variable that carries the secret, not a secret.
DEMO_SECRET_ENV = "CORA_DEMO_CLIENT_SECRET"  # noqa: S105
DEMO_SEED = 7
TRY_QUERY = (
    "SELECT object, record_id, field, old_value, new_value, cause FROM field_changes "
    "ORDER BY detected_at DESC, object, record_id, field LIMIT 20"
)


@dataclass
class DemoMutations:
    """The changes the demo makes between the two syncs, kept so tests can assert on them."""

    renamed_account: str
    old_account_name: str
    new_account_name: str
    closed_opportunity: str
    system_updated_contact: str
    created_contact: str
    created_invoice: str
    deleted_case: str


def demo_data_root() -> Path:
    return default_data_root() / "demo"


def write_demo_config(
    data_root: Path, emu: Any, callback_port: int, secret_env: str = DEMO_SECRET_ENV
) -> Path:
    """Write a configuration file for the emulator's Production org, as an administrator would."""
    config = {
        "data_root": str(data_root),
        "orgs": {
            DEMO_ORG: {
                "environment": "production",
                "login_url": emu.login_url,
                "client_id": emu.client_id,
                "client_secret_env": secret_env,
                "callback_port": callback_port,
                "ca_file": str(emu.ca_file),
                "schedule": "*/15 * * * *",
                # The demo's second sync follows the first within seconds; read formula fields on
                # every run so the formula that moved with the clock shows up.
                "formula_refresh_hours": 0,
            }
        },
    }
    path = data_root / "cora.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def connect_demo_org(settings: Settings, emu: Any) -> Any:
    """Connect the configured demo org to the emulator through the OAuth web-server flow.

    Returns the stored connection record. The emulator must run with ``auto_approve=True`` and
    the org's callback URL registered.
    """
    from cora_pipeline.connect import ConnectionStore, connect_web_server

    store = ConnectionStore.open(settings, create_key=True)
    return connect_web_server(
        settings.org(DEMO_ORG),
        store,
        browser=follow_redirect_browser(str(emu.ca_file)),
        output=lambda *_: None,
    )


def mutate_org(org: Any) -> DemoMutations:
    """Make the demo's changes through the emulator's admin API."""
    admin = org.admin
    accounts = sorted(admin.records("Account"), key=lambda r: r["Id"])
    opportunities = sorted(admin.records("Opportunity"), key=lambda r: r["Id"])
    contacts = sorted(admin.records("Contact"), key=lambda r: r["Id"])
    cases = sorted(admin.records("Case"), key=lambda r: r["Id"])

    account = accounts[0]
    new_name = f"{account['Name']} Holdings"
    admin.update("Account", account["Id"], {"Name": new_name, "Rating": "Hot"}, by="user")
    opportunity = next(o for o in opportunities if o.get("StageName") != "Closed Won")
    admin.update(
        "Opportunity", opportunity["Id"], {"StageName": "Closed Won", "Probability": 100}, by="user"
    )
    # A system process (for example an email bounce) sets a field; LastModifiedDate stays.
    contact = contacts[0]
    admin.update("Contact", contact["Id"], {"HasOptedOutOfEmail": True}, by="system")
    created_contact = admin.create(
        "Contact",
        {
            "FirstName": "Zoë",
            "LastName": "Okafor 🚀",
            "AccountId": account["Id"],
            "Email": "zoe.okafor@example.com",
        },
    )
    created_invoice = admin.create(
        "Invoice__c", {"Account__c": account["Id"], "Amount__c": 1250.5, "Status__c": "Sent"}
    )
    deleted_case = cases[-1]["Id"]
    admin.delete("Case", deleted_case)
    # A day passes: formula fields that depend on TODAY() move; SystemModstamp does not.
    admin.advance_clock(24 * 3600)
    return DemoMutations(
        renamed_account=account["Id"],
        old_account_name=account["Name"],
        new_account_name=new_name,
        closed_opportunity=opportunity["Id"],
        system_updated_contact=contact["Id"],
        created_contact=created_contact,
        created_invoice=created_invoice,
        deleted_case=deleted_case,
    )


class _ProgressHandler(logging.Handler):
    """Print the pipeline's INFO lines as progress while a sync runs."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    # Extraction and change detection tell the story; the emulator's and the analyst catalog's
    # bookkeeping lines stay in the Dagster event log.
    SHOWN = ("cora_pipeline.extract", "cora_pipeline.warehouse.store")

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(self.SHOWN) or "nothing to do" in record.getMessage():
            return
        self.console.print(f"    {record.getMessage()}", style="dim", highlight=False, markup=False)


def run_demo(
    console: Console | None = None, *, seed: int = DEMO_SEED, sizes: dict[str, int] | None = None
) -> int:
    from cora_pipeline.connect import install_redaction
    from cora_pipeline.emulator import Emulator, EmulatorSettings

    # Piped output gets a fixed width wide enough for the tables, instead of rich's 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 130)
    install_redaction()
    started = time.monotonic()
    instance = dagster_instance()
    data_root = demo_data_root()
    if data_root.exists():
        shutil.rmtree(data_root)
    data_root.mkdir(parents=True)

    callback_port = free_port()
    emulator_settings = EmulatorSettings(
        seed=seed,
        auto_approve=True,
        callback_urls=(f"http://127.0.0.1:{callback_port}/callback",),
        data_dir=data_root / "emulator",
    )
    if sizes:
        emulator_settings = dataclasses.replace(emulator_settings, sizes=sizes)
    handler = _ProgressHandler(console)
    pipeline_log = logging.getLogger("cora_pipeline")
    pipeline_log.addHandler(handler)
    previous_level = pipeline_log.level
    previous_propagate = pipeline_log.propagate
    pipeline_log.setLevel(logging.INFO)
    # Progress goes to the console through the handler above only, not also through the root logger.
    pipeline_log.propagate = False
    try:
        with Emulator(emulator_settings) as emu:
            console.print(
                f"[bold]1/5[/bold] Salesforce emulator serving at {emu.login_url} "
                f"(org {emu.production.name}, {emu.production.org_id})"
            )
            config_path = write_demo_config(data_root, emu, callback_port)
            os.environ[DEMO_SECRET_ENV] = emu.client_secret
            settings = load_settings(config_path)

            console.print(
                "[bold]2/5[/bold] Connecting the org through the OAuth web-server flow with PKCE"
            )
            record = connect_demo_org(settings, emu)
            console.print(
                f"    connected {record.org_name} ({record.org_id}) as "
                f"{record.username}, instance {record.instance_url}"
            )

            console.print("[bold]3/5[/bold] First sync: materializing every asset through Dagster")
            first = run_sync(settings, DEMO_ORG, instance=instance)
            if not first.success:
                console.print(f"[red]First sync failed:[/red] {first.error}")
                return 1

            console.print(
                "[bold]4/5[/bold] Changing the org: edits, a system update, creates, "
                "a delete, and a day passing"
            )
            mutate_org(emu.production)

            console.print("[bold]5/5[/bold] Second sync")
            second = run_sync(settings, DEMO_ORG, instance=instance)
            if not second.success:
                console.print(f"[red]Second sync failed:[/red] {second.error}")
                return 1
    finally:
        pipeline_log.removeHandler(handler)
        pipeline_log.setLevel(previous_level)
        pipeline_log.propagate = previous_propagate

    print_report(console, settings, first.run_id, second.run_id)
    console.print(
        f"\nDone in {time.monotonic() - started:.0f} s. Runs {first.run_id[:8]} and "
        f"{second.run_id[:8]} are in the Dagster instance at {os.environ['DAGSTER_HOME']}."
    )
    return 0


def print_report(console: Console, settings: Settings, first_run: str, second_run: str) -> None:
    path = settings.data_root / WAREHOUSE_FILE
    analyst = settings.data_root / ANALYST_FILE
    con = duckdb.connect(str(path), read_only=True)
    try:
        counts = Table(title="Records per object", title_justify="left")
        counts.add_column("object")
        counts.add_column("records", justify="right")
        counts.add_column("API calls, 1st sync", justify="right")
        counts.add_column("API calls, 2nd sync", justify="right")
        calls = {
            (run, obj): n
            for run, obj, n in con.execute(
                "SELECT run_id, object, sum(api_calls) FROM sync_runs WHERE org = ? GROUP BY ALL",
                [DEMO_ORG],
            ).fetchall()
        }
        total_calls = 0
        for obj in settings.org(DEMO_ORG).objects:
            rows = con.execute(
                f'SELECT count(*) FROM "{DEMO_ORG}"."{obj.name}"'  # noqa: S608
            ).fetchone()
            first_calls = int(calls.get((first_run, obj.name)) or 0)
            second_calls = int(calls.get((second_run, obj.name)) or 0)
            total_calls += first_calls + second_calls
            counts.add_row(
                obj.name, str(rows[0] if rows else 0), str(first_calls), str(second_calls)
            )
        console.print(counts)
        usage = con.execute(
            "SELECT max(api_used), max(api_max) FROM sync_runs WHERE org = ? AND run_id = ?",
            [DEMO_ORG, second_run],
        ).fetchone()
        console.print(f"API calls spent by both syncs: {total_calls}", highlight=False)
        if usage and usage[0] is not None:
            console.print(
                f"Org API usage after the second sync: {usage[0]} of {usage[1]} daily calls "
                f"(Salesforce counts over a rolling 24 hours, and the demo moved the org's clock "
                f"a day ahead, so calls before that no longer count)",
                highlight=False,
            )

        summary = Table(title="Changes found by the second sync", title_justify="left")
        for column in ("object", "change type", "records"):
            summary.add_column(column)
        for obj, change_type, n in con.execute(
            "SELECT object, change_type, count(*) FROM record_changes WHERE org = ? AND run_id = ? "
            "GROUP BY ALL ORDER BY object, change_type",
            [DEMO_ORG, second_run],
        ).fetchall():
            summary.add_row(obj, change_type, str(n))
        console.print(summary)

        fields = Table(title="Field-level changes (a sample)", title_justify="left")
        for column in ("object", "record", "field", "old value", "new value", "cause"):
            fields.add_column(column, overflow="fold")
        for row in con.execute(
            "SELECT object, record_id, field, old_value, new_value, cause FROM field_changes "
            "WHERE org = ? AND run_id = ? "
            "QUALIFY row_number() OVER (PARTITION BY object, cause ORDER BY record_id, field) <= 3 "
            "ORDER BY cause, object, record_id, field LIMIT 14",
            [DEMO_ORG, second_run],
        ).fetchall():
            fields.add_row(*[("NULL" if v is None else str(v)[:40]) for v in row])
        console.print(fields)
    finally:
        con.close()
    console.print(f"\nWarehouse: {path}", highlight=False)
    console.print(
        f"Analyst catalog: {analyst} (open this one: it never blocks a scheduled run)",
        highlight=False,
    )
    console.print("Query it from this project's Python:", highlight=False)
    python_line = (
        f"import duckdb; duckdb.connect({str(analyst)!r}, read_only=True).sql({TRY_QUERY!r}).show()"
    )
    console.print(f'  {sys.executable} -c "{python_line}"', highlight=False, soft_wrap=True)
    console.print(
        f"or, with the DuckDB CLI installed (pip install duckdb-cli), run "
        f"`duckdb -readonly {analyst}` and paste:",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"  {TRY_QUERY};", highlight=False, soft_wrap=True)
    if settings.source is not None:
        console.print(
            f"Other commands read the demo's data with --config {settings.source}, for example "
            f"`cora --config {settings.source} changes demo`. Its emulator has stopped, so "
            f"`cora sync` of this org works only during `cora demo`.",
            highlight=False,
            soft_wrap=True,
        )
