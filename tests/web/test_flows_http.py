"""Connect, Disconnect and serving paths that need no browser: requests plays the browser."""

import html
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cora_pipeline.config import Settings
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.emulator import Emulator
from cora_pipeline.web.app import CALLBACK_PATH, INTEGRATIONS_PATH

from .conftest import (
    PRODUCTION_ORG,
    WebServer,
    authorize_without_browser,
    csrf_token,
    free_port,
    holding_lock,
    signed_in_session,
)
from .test_access_control import start_connect

pytestmark = pytest.mark.timeout(60)

DISCONNECT_PATH = f"{INTEGRATIONS_PATH}/salesforce/{PRODUCTION_ORG}/disconnect"


def connect_production(web: WebServer, session: requests.Session, emulator: Emulator) -> None:
    callback = authorize_without_browser(
        start_connect(web, session),
        emulator,
        username=emulator.production.admin_username,
        password=emulator.production.admin_password,
    )
    response = session.get(callback, allow_redirects=False, timeout=10)
    assert response.status_code == 303


def test_unfinished_connect_shows_waiting_note(web: WebServer, emulator: Emulator) -> None:
    session = signed_in_session(web)
    authorize_url = start_connect(web, session)

    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text

    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(emulator.login_url + "/services/oauth2/authorize?")
    assert query["redirect_uri"] == [f"{web.base_url}{CALLBACK_PATH}"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32
    assert "code_verifier" not in query
    assert "A connection is waiting for Salesforce" in page
    assert "Approve Uninstalled Connected Apps" in page
    assert f"{web.base_url}{CALLBACK_PATH}" in page


def test_failed_revocation_offers_local_delete(
    web: WebServer, emulator: Emulator, settings: Settings
) -> None:
    session = signed_in_session(web)
    connect_production(web, session, emulator)
    emulator.stop()
    token = csrf_token(session.get(web.base_url + DISCONNECT_PATH, timeout=10).text)

    failed = session.post(
        web.base_url + DISCONNECT_PATH,
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )

    assert failed.status_code == 502
    assert "Salesforce did not revoke the token, so the connection was kept" in failed.text
    assert "is unreachable" in failed.text
    assert "Delete here anyway" in failed.text
    assert ConnectionStore.open(settings).get(PRODUCTION_ORG) is not None

    forced = session.post(
        web.base_url + DISCONNECT_PATH,
        data={"csrf_token": token, "force": "1"},
        allow_redirects=False,
        timeout=30,
    )

    assert forced.status_code == 303
    assert ConnectionStore.open(settings).get(PRODUCTION_ORG) is None
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert "Deleted here, not revoked at Salesforce" in page
    assert "Connected Apps OAuth Usage" in page


def test_disconnect_of_unconnected_org_changes_nothing(web: WebServer) -> None:
    session = signed_in_session(web)

    confirm = session.get(web.base_url + DISCONNECT_PATH, allow_redirects=False, timeout=10)

    assert confirm.status_code == 303
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert "There is nothing to disconnect." in page


def test_unknown_org_is_not_found(web: WebServer) -> None:
    session = signed_in_session(web)

    response = session.get(
        f"{web.base_url}{INTEGRATIONS_PATH}/salesforce/globex/disconnect", timeout=10
    )

    assert response.status_code == 404
    assert "No org named 'globex' is configured." in html.unescape(response.text)


SERVE = """
import argparse, logging, sys
from cora_pipeline.config import load_settings
from cora_pipeline.web import cli
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
parser = argparse.ArgumentParser()
cli.add_arguments(parser)
sys.exit(cli.run(parser.parse_args(sys.argv[2:]), load_settings(sys.argv[1])))
"""


def test_served_page_logs_paths_without_queries(settings: Settings, tmp_path: Path) -> None:
    assert settings.source is not None
    port = free_port()
    code = "aPrxSecretAuthorizationCode0123456789"
    stderr_path = tmp_path / "web.log"
    with stderr_path.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(settings.source), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/settings/integrations" in banner
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(base_url + "/signin", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        callback = requests.get(
            f"{base_url}{CALLBACK_PATH}?code={code}&state=anything",
            allow_redirects=False,
            timeout=10,
        )
    finally:
        server.terminate()
        server.wait(timeout=15)

    assert callback.status_code == 303
    log = stderr_path.read_text(encoding="utf-8")
    assert f"GET {CALLBACK_PATH} 303" in log
    assert code not in log


def test_card_reads_what_a_sync_wrote(
    web: WebServer, emulator: Emulator, settings: Settings, tmp_path: Path
) -> None:
    import dagster as dg

    from cora_pipeline.orchestration.runner import run_sync

    session = signed_in_session(web)
    connect_production(web, session, emulator)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()

    outcome = run_sync(
        settings, PRODUCTION_ORG, instance=dg.DagsterInstance.local_temp(str(dagster_home))
    )

    assert outcome.success, outcome.error
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    for sobject in ("Account", "Contact", "Opportunity", "Case", "Invoice__c"):
        assert f'<tr data-object="{sobject}">' in page
    assert "baseline" in page
    assert " of 15,000 calls" in page

    # While the pipeline's writer holds warehouse.duckdb, the card reads the analyst catalog.
    assert (settings.data_root / "analyst.duckdb").exists()
    with holding_lock(settings.data_root / "warehouse.duckdb"):
        during_write = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert '<tr data-object="Account">' in during_write
    assert "not available right now" not in during_write


def test_demo_org_card_offers_no_connect(tmp_path: Path) -> None:
    from cora_pipeline.config import DEMO_ORG, demo_org
    from cora_pipeline.web.auth import OperatorStore, operators_path

    from .conftest import OPERATOR, PASSWORD, start_web_server

    settings = Settings(data_root=tmp_path, orgs={DEMO_ORG: demo_org()})
    OperatorStore(operators_path(settings.home)).set_password(OPERATOR, PASSWORD)
    server = start_web_server(settings, free_port())
    try:
        session = signed_in_session(server)
        page = session.get(server.base_url + INTEGRATIONS_PATH, timeout=10).text
        refused = session.post(
            f"{server.base_url}{INTEGRATIONS_PATH}/salesforce/{DEMO_ORG}/connect",
            data={"environment": "production", "csrf_token": csrf_token(page)},
            allow_redirects=False,
            timeout=10,
        )
        after = session.get(server.base_url + INTEGRATIONS_PATH, timeout=10).text
    finally:
        server.stop()

    assert "This is the built-in demo org" in page
    assert f"salesforce/{DEMO_ORG}/connect" not in page
    assert refused.status_code == 303
    assert refused.headers["Location"] == f"{INTEGRATIONS_PATH}#org-{DEMO_ORG}"
    assert "cannot be connected from the page" in after
