"""Sign-in, CSRF, the OAuth state binding and cookie flags, over HTTP with requests."""

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import trustme

from cora_pipeline.config import Settings
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.emulator import Emulator
from cora_pipeline.web.app import CALLBACK_PATH, INTEGRATIONS_PATH
from cora_pipeline.web.sessions import SESSION_COOKIE

from .conftest import (
    OPERATOR,
    PASSWORD,
    PRODUCTION_ORG,
    WebServer,
    authorize_without_browser,
    csrf_token,
    free_port,
    signed_in_session,
    start_web_server,
)

pytestmark = pytest.mark.timeout(60)

CONNECT_PATH = f"{INTEGRATIONS_PATH}/salesforce/{PRODUCTION_ORG}/connect"


def start_connect(web: WebServer, session: requests.Session) -> str:
    """Press Connect for the Production org; return the authorize URL the page redirects to."""
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10)
    response = session.post(
        web.base_url + CONNECT_PATH,
        data={"environment": "production", "my_domain": "", "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303
    return str(response.headers["Location"])


def test_unauthenticated_page_redirects_to_signin(web: WebServer) -> None:
    response = requests.get(web.base_url + INTEGRATIONS_PATH, allow_redirects=False, timeout=10)

    assert response.status_code == 303
    assert response.headers["Location"] == "/signin?next=%2Fsettings%2Fintegrations"
    assert PRODUCTION_ORG not in response.text


def test_unauthenticated_post_is_rejected(web: WebServer, settings: Settings) -> None:
    anonymous = requests.Session()
    page = anonymous.get(web.base_url + "/signin", timeout=10)

    response = anonymous.post(
        web.base_url + CONNECT_PATH,
        data={"environment": "production", "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 403
    assert "Location" not in response.headers
    assert not (settings.home / "vault").exists()


def test_unauthenticated_callback_stores_nothing(
    web: WebServer, emulator: Emulator, settings: Settings
) -> None:
    authorize_url = start_connect(web, signed_in_session(web))
    callback = authorize_without_browser(
        authorize_url,
        emulator,
        username=emulator.production.admin_username,
        password=emulator.production.admin_password,
    )

    response = requests.get(callback, allow_redirects=False, timeout=10)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/signin?")
    assert not (settings.home / "vault").exists()


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_post_without_valid_csrf_token_is_rejected(web: WebServer, token: str | None) -> None:
    session = signed_in_session(web)
    data = {"environment": "production", "my_domain": ""}
    if token is not None:
        data["csrf_token"] = token

    response = session.post(
        web.base_url + CONNECT_PATH, data=data, allow_redirects=False, timeout=10
    )

    assert response.status_code == 403
    assert "Location" not in response.headers
    assert "did not come from this page" in response.text


def test_post_from_another_origin_is_rejected(web: WebServer) -> None:
    session = signed_in_session(web)
    token = csrf_token(session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text)

    response = session.post(
        web.base_url + CONNECT_PATH,
        data={"environment": "production", "csrf_token": token},
        headers={"Origin": "https://attacker.example"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 403


def test_signout_needs_csrf_token(web: WebServer) -> None:
    session = signed_in_session(web)

    response = session.post(web.base_url + "/signout", allow_redirects=False, timeout=10)

    assert response.status_code == 403
    assert session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).status_code == 200


def test_callback_with_foreign_state_is_rejected(
    web: WebServer, emulator: Emulator, settings: Settings
) -> None:
    starter = signed_in_session(web)
    other = signed_in_session(web)
    authorize_url = start_connect(web, starter)
    callback = authorize_without_browser(
        authorize_url,
        emulator,
        username=emulator.production.admin_username,
        password=emulator.production.admin_password,
    )
    assert parse_qs(urlsplit(callback).query)["code"]

    foreign = other.get(callback, allow_redirects=False, timeout=10)
    assert foreign.status_code == 400
    assert "does not belong to a connection started in this browser session" in foreign.text
    invented = starter.get(
        f"{web.base_url}{CALLBACK_PATH}?code=aPrxInvented&state=invented",
        allow_redirects=False,
        timeout=10,
    )
    assert invented.status_code == 400
    assert not (settings.home / "vault").exists()

    own = starter.get(callback, allow_redirects=False, timeout=10)
    assert own.status_code == 303
    record = ConnectionStore.open(settings).get(PRODUCTION_ORG)
    assert record is not None
    assert record.org_id == emulator.production.org_id
    # The state is spent: replaying the same callback is rejected.
    replay = starter.get(callback, allow_redirects=False, timeout=10)
    assert replay.status_code == 400


def test_session_cookie_flags_over_http(web: WebServer) -> None:
    response = requests.get(web.base_url + "/signin", timeout=10)

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(settings: Settings, tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file = tmp_path / "web.pem"
    key_file = tmp_path / "web.key"
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    server = start_web_server(
        settings, free_port(), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)
    )
    try:
        # A TLS connection left open would hold uvicorn's shutdown for 30 s (the SSL shutdown
        # timeout of asyncio), so this one closes after the response.
        response = requests.get(
            server.base_url + "/signin",
            verify=str(ca_file),
            headers={"Connection": "close"},
            timeout=10,
        )
    finally:
        server.stop()

    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


def test_signin_replaces_session_id(web: WebServer) -> None:
    session = requests.Session()
    page = session.get(web.base_url + "/signin", timeout=10)
    anonymous_id = session.cookies[SESSION_COOKIE]

    session.post(
        web.base_url + "/signin",
        data={"operator": OPERATOR, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )

    assert session.cookies[SESSION_COOKIE] != anonymous_id
    planted = requests.get(
        web.base_url + INTEGRATIONS_PATH,
        cookies={SESSION_COOKIE: anonymous_id},
        allow_redirects=False,
        timeout=10,
    )
    assert planted.status_code == 303


def test_wrong_password_is_rejected_and_not_logged(
    web: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not the password at all"
    session = requests.Session()
    page = session.get(web.base_url + "/signin", timeout=10)

    with caplog.at_level(logging.DEBUG):
        response = session.post(
            web.base_url + "/signin",
            data={"operator": OPERATOR, "password": wrong, "csrf_token": csrf_token(page.text)},
            allow_redirects=False,
            timeout=10,
        )

    assert response.status_code == 401
    assert "incorrect" in response.text
    assert wrong not in response.text
    assert any("sign-in failed" in record.getMessage() for record in caplog.records)
    assert all(wrong not in record.getMessage() for record in caplog.records)


def test_repeated_failures_lock_out_signin(web: WebServer) -> None:
    session = requests.Session()
    token = csrf_token(session.get(web.base_url + "/signin", timeout=10).text)
    for _ in range(5):
        failed = session.post(
            web.base_url + "/signin",
            data={"operator": OPERATOR, "password": "wrong password", "csrf_token": token},
            allow_redirects=False,
            timeout=10,
        )
        assert failed.status_code == 401

    locked = session.post(
        web.base_url + "/signin",
        data={"operator": OPERATOR, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )

    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.text


@pytest.mark.parametrize(
    "target", ["//attacker.example/x", "https://attacker.example/", "/\\attacker.example"]
)
def test_signin_never_redirects_off_site(web: WebServer, target: str) -> None:
    session = requests.Session()
    page = session.get(web.base_url + "/signin", timeout=10)

    response = session.post(
        web.base_url + "/signin",
        data={
            "operator": OPERATOR,
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": target,
        },
        allow_redirects=False,
        timeout=10,
    )

    assert response.headers["Location"] == INTEGRATIONS_PATH


def test_pages_send_security_headers(web: WebServer) -> None:
    response = signed_in_session(web).get(web.base_url + INTEGRATIONS_PATH, timeout=10)

    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_my_domain_outside_salesforce_is_rejected(web: WebServer, settings: Settings) -> None:
    session = signed_in_session(web)
    token = csrf_token(session.get(web.base_url + INTEGRATIONS_PATH, timeout=10).text)

    response = session.post(
        web.base_url + CONNECT_PATH,
        data={"environment": "production", "my_domain": "attacker.example", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"{INTEGRATIONS_PATH}#org-{PRODUCTION_ORG}"
    page = session.get(web.base_url + INTEGRATIONS_PATH, timeout=10)
    assert "is not a Salesforce login host" in page.text
