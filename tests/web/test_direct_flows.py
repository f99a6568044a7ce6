"""Orgs configured for the JWT bearer or client credentials flow connect from the page without a
Salesforce login page."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cora_pipeline.config import Settings, load_settings
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.emulator import Emulator
from cora_pipeline.web.app import INTEGRATIONS_PATH
from cora_pipeline.web.auth import OperatorStore, operators_path

from .conftest import (
    OPERATOR,
    PASSWORD,
    SECRET_ENV,
    WebServer,
    csrf_token,
    signed_in_session,
    start_web_server,
    write_config,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def direct_web(
    tmp_path: Path, emulator: Emulator, web_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WebServer, Settings]]:
    """The page for a JWT bearer org and a client credentials org of the emulator."""
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    path = write_config(tmp_path / "data", emulator)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    common = {"client_id": emulator.client_id, "ca_file": str(emulator.ca_file)}
    config["orgs"] = {
        "acme_jwt": {
            **common,
            "login_url": emulator.login_url,
            "flow": "jwt",
            "username": emulator.production.integration_username,
            "private_key_file": str(emulator.data_dir / "jwt-private-key.pem"),
        },
        "acme_cc": {
            **common,
            "login_url": emulator.production.instance_url,
            "flow": "client_credentials",
            "client_secret_env": SECRET_ENV,
        },
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = load_settings(path)
    OperatorStore(operators_path(settings.home)).set_password(OPERATOR, PASSWORD)
    server = start_web_server(settings, web_port)
    yield server, settings
    server.stop()


@pytest.mark.parametrize(
    ("org", "flow", "wording"),
    [
        ("acme_jwt", "jwt", "JWT bearer flow"),
        ("acme_cc", "client_credentials", "client credentials"),
    ],
)
def test_direct_flow_connects_without_login(
    direct_web: tuple[WebServer, Settings], emulator: Emulator, org: str, flow: str, wording: str
) -> None:
    web, settings = direct_web
    session = signed_in_session(web)
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert wording in page

    response = session.post(
        f"{web.base_url}{INTEGRATIONS_PATH}/salesforce/{org}/connect",
        data={"csrf_token": csrf_token(page)},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"{INTEGRATIONS_PATH}#org-{org}"
    record = ConnectionStore.open(settings).get(org)
    assert record is not None
    assert record.flow == flow
    assert record.org_id == emulator.production.org_id
    after = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert f"is connected as {record.username}" in after


def test_jwt_for_unapproved_user_explains_fix(
    direct_web: tuple[WebServer, Settings], emulator: Emulator
) -> None:
    web, settings = direct_web
    for user in emulator.production.users:
        user.preauthorized = False
    session = signed_in_session(web)
    token = csrf_token(session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text)

    session.post(
        f"{web.base_url}{INTEGRATIONS_PATH}/salesforce/acme_jwt/connect",
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )

    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text
    assert "user hasn&#39;t approved this consumer" in page
    assert "Admin approved users are pre-authorized" in page
    assert ConnectionStore.open(settings).get("acme_jwt") is None
