"""Save screenshots of the signed-in Integrations page, against the bundled emulator.

The script starts the Salesforce emulator and ``cora web`` on 127.0.0.1 and signs in with Chromium.
It connects the emulator's Production org and syncs it twice through Dagster, with edits in between
so that the cards show change counts. It denies consent once for the Sandbox org, then connects it.
It saves:

- ``signin.png``: the sign-in page
- ``waiting.png``: the Sandbox card while its connection waits for Salesforce
- ``denied.png``: the Sandbox card after the administrator clicked Deny
- ``integrations-desktop.png`` and ``integrations-mobile.png``: every card, at 1280 and 390 pixels
- ``disconnect.png``: the Disconnect confirmation
- ``budget-exhausted.png``: the Sandbox card after a sync stopped at the org's API budget
- ``needs-reauthorization.png``: the Production card after Salesforce revoked its refresh token

Usage: ``python scripts/screenshot_integrations.py [--output DIR]``. Needs Debian's chromium at
/usr/bin/chromium (Playwright's own browser download is not used). Every file it writes except the
screenshots lives in a temporary directory that is deleted at the end.
"""

import argparse
import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import uvicorn
import yaml

from cora_pipeline.config import Settings, load_settings
from cora_pipeline.connect import ConnectionStore, TokenManager
from cora_pipeline.demo import mutate_org
from cora_pipeline.emulator import Emulator, EmulatorSettings
from cora_pipeline.errors import ReauthorizationRequired
from cora_pipeline.orchestration.runner import run_sync
from cora_pipeline.web import create_app
from cora_pipeline.web.app import CALLBACK_PATH, INTEGRATIONS_PATH
from cora_pipeline.web.auth import OperatorStore, operators_path

CHROMIUM = "/usr/bin/chromium"
SECRET_ENV = "CORA_SCREENSHOT_CLIENT_SECRET"  # noqa: S105 - the variable's name, not a secret
OPERATOR = "dana.ops"
SIZES = {"Account": 40, "Contact": 80, "Opportunity": 40, "Case": 40, "Invoice__c": 30}

log = logging.getLogger("screenshot_integrations")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(data_root: Path, emu: Emulator) -> Settings:
    common = {
        "client_id": emu.client_id,
        "client_secret_env": SECRET_ENV,
        "ca_file": str(emu.ca_file),
        "objects": list(SIZES),
        # The second sync follows the first within seconds; read formula fields on every run.
        "formula_refresh_hours": 0,
    }
    config = {
        "data_root": str(data_root),
        "orgs": {
            "acme": {"environment": "production", "login_url": emu.login_url, **common},
            "acme_uat": {"environment": "sandbox", "login_url": emu.sandbox_login_url, **common},
            # Never connected: the card a new customer starts from.
            "globex": {"environment": "production", "client_id": emu.client_id},
        },
    }
    path = data_root / "cora.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_settings(path)


def start_web(settings: Settings, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, name="cora-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"cora web did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    return server, thread


def log_in_and_consent(page: Any, username: str, password: str, consent: str) -> None:
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#Login")
    page.get_by_role("button", name=consent).click()
    page.wait_for_url(f"**{INTEGRATIONS_PATH}*")


def connect(page: Any, org: str, environment: str, user: Any, consent: str = "Allow") -> None:
    card = page.locator(f"#org-{org}")
    card.get_by_label(environment).check()
    card.get_by_role("button", name="Connect").click()
    log_in_and_consent(page, user.admin_username, user.admin_password, consent)


def sync_twice(settings: Settings, emu: Emulator, dagster_home: Path) -> None:
    dagster_home.mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(dagster_home))
    for attempt in ("first", "second"):
        outcome = run_sync(settings, "acme", instance=instance)
        if not outcome.success:
            raise RuntimeError(f"the {attempt} sync of acme failed: {outcome.error}")
        if attempt == "first":
            mutate_org(emu.production)


def exhaust_budget(settings: Settings, emu: Emulator, dagster_home: Path) -> None:
    """Sync the Sandbox org once, then again after it used 97% of its daily API allocation.

    The extractor records a run stopped by the budget only for objects it extracted before,
    because it needs their fields, so the first sync runs with the allocation unused.
    """
    instance = dg.DagsterInstance.local_temp(str(dagster_home))
    first = run_sync(settings, "acme_uat", instance=instance)
    if not first.success:
        raise RuntimeError(f"the first sync of acme_uat failed: {first.error}")
    _, maximum = emu.sandbox.admin.api_usage()
    emu.sandbox.admin.set_api_usage(maximum * 97 // 100)
    second = run_sync(settings, "acme_uat", instance=instance)
    log.info("sync of acme_uat near its API limit: success=%s", second.success)


def revoke_production(settings: Settings, emu: Emulator) -> None:
    """Revoke the Production org's refresh tokens in Salesforce, then refresh as a sync would."""
    emu.production.admin.revoke_refresh_tokens()
    store = ConnectionStore.open(settings)
    try:
        TokenManager(settings.org("acme"), store).refresh()
    except ReauthorizationRequired:
        return
    raise RuntimeError("the refresh after revoking every refresh token of acme succeeded")


def take_screenshots(output: Path, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    web_port = free_port()
    emu = Emulator(
        EmulatorSettings(
            seed=7,
            sizes=SIZES,
            callback_urls=(f"http://127.0.0.1:{web_port}{CALLBACK_PATH}",),
            data_dir=work / "emulator",
        )
    )
    emu.start()
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        os.environ[SECRET_ENV] = emu.client_secret
        data_root = work / "data"
        data_root.mkdir()
        settings = write_config(data_root, emu)
        password = secrets.token_urlsafe(18)
        OperatorStore(operators_path(settings.home)).set_password(OPERATOR, password)
        server, thread = start_web(settings, web_port)
        base_url = f"http://127.0.0.1:{web_port}"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                context = browser.new_context(
                    ignore_https_errors=True,
                    base_url=base_url,
                    viewport={"width": 1280, "height": 900},
                )
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(INTEGRATIONS_PATH)
                page.screenshot(path=str(output / "signin.png"))
                page.get_by_label("Operator name").fill(OPERATOR)
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"**{INTEGRATIONS_PATH}")

                connect(page, "acme", "Production", emu.production)
                log.info("connected acme; syncing it twice through Dagster")
                sync_twice(settings, emu, work / "dagster_home")

                # An administrator who leaves the Salesforce login page and comes back.
                uat = page.locator("#org-acme_uat")
                uat.get_by_label("Sandbox").check()
                uat.get_by_role("button", name="Connect").click()
                page.wait_for_selector("#username")
                page.go_back()
                page.reload()
                page.locator("#org-acme_uat").screenshot(path=str(output / "waiting.png"))

                connect(page, "acme_uat", "Sandbox", emu.sandbox, consent="Deny")
                page.locator("#org-acme_uat").screenshot(path=str(output / "denied.png"))
                connect(page, "acme_uat", "Sandbox", emu.sandbox)

                page.goto(INTEGRATIONS_PATH)
                page.screenshot(path=str(output / "integrations-desktop.png"), full_page=True)
                page.set_viewport_size({"width": 390, "height": 844})
                page.screenshot(path=str(output / "integrations-mobile.png"), full_page=True)
                page.set_viewport_size({"width": 1280, "height": 900})

                page.locator("#org-acme").get_by_role("link", name="Disconnect").click()
                page.screenshot(path=str(output / "disconnect.png"))

                exhaust_budget(settings, emu, work / "dagster_home")
                revoke_production(settings, emu)
                page.goto(INTEGRATIONS_PATH)
                page.locator("#org-acme_uat").screenshot(path=str(output / "budget-exhausted.png"))
                page.locator("#org-acme").screenshot(path=str(output / "needs-reauthorization.png"))
                context.close()
            finally:
                browser.close()
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        emu.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("screenshots"),
        help="directory for the PNG files (default: ./screenshots)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("cora_pipeline").setLevel(logging.WARNING)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing; install Debian's chromium package", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cora-screenshots-") as work:
        take_screenshots(args.output.absolute(), Path(work))
    print(f"Saved screenshots in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
