"""The authorize URL, callback checks, the loopback server and error explanations.

These cases fail before any request to Salesforce, so they need no emulator.
"""

import argparse
import base64
import hashlib
import socket
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cora_pipeline.config import OrgConfig
from cora_pipeline.connect import (
    ConnectionStore,
    begin_authorization,
    check_authorize_page,
    complete_authorization,
    connect_web_server,
)
from cora_pipeline.connect.cli import add_connect_arguments, connect_overrides
from cora_pipeline.connect.hints import explain
from cora_pipeline.connect.loopback import CallbackServer, has_graphical_browser
from cora_pipeline.connect.store import ConnectionRecord
from cora_pipeline.connect.tokens import reauthorization_command
from cora_pipeline.errors import AuthorizationError, ConfigError

ORG = OrgConfig(
    name="acme",
    login_url="https://login.salesforce.com",
    is_sandbox=False,
    client_id="3MVG9consumer-key",
)
REDIRECT = "http://127.0.0.1:1717/callback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectionStore:
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    return ConnectionStore.open_home(tmp_path, create_key=True)


def test_authorize_url_carries_pkce_and_state() -> None:
    pending = begin_authorization(ORG, REDIRECT)
    query = parse_qs(urlsplit(pending.url).query)

    assert pending.url.startswith("https://login.salesforce.com/services/oauth2/authorize?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["3MVG9consumer-key"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == ["api refresh_token offline_access"]
    assert query["state"] == [pending.state]
    assert query["code_challenge_method"] == ["S256"]
    digest = hashlib.sha256(pending.code_verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert query["code_challenge"] == [challenge]
    assert pending.code_verifier not in pending.url
    assert pending.code_verifier not in repr(pending)
    assert 43 <= len(pending.code_verifier) <= 128


def test_each_authorization_gets_fresh_state_and_verifier() -> None:
    first = begin_authorization(ORG, REDIRECT)
    second = begin_authorization(ORG, REDIRECT)

    assert first.state != second.state
    assert first.code_verifier != second.code_verifier


def test_callback_with_wrong_state_is_rejected(store: ConnectionStore) -> None:
    pending = begin_authorization(ORG, REDIRECT)

    with pytest.raises(AuthorizationError, match="does not match"):
        complete_authorization(ORG, pending, f"{REDIRECT}?code=aPrx123&state=forged", store)
    assert store.get("acme") is None


def test_callback_without_code_is_rejected(store: ConnectionStore) -> None:
    pending = begin_authorization(ORG, REDIRECT)

    with pytest.raises(AuthorizationError, match="no `code` parameter"):
        complete_authorization(ORG, pending, f"{REDIRECT}?state={pending.state}", store)


def test_callback_for_another_org_is_rejected(store: ConnectionStore) -> None:
    pending = begin_authorization(ORG, REDIRECT)
    other = OrgConfig(name="beta", login_url=ORG.login_url, is_sandbox=False, client_id="x")

    with pytest.raises(AuthorizationError, match="started for org 'acme'"):
        complete_authorization(other, pending, f"{REDIRECT}?code=c&state={pending.state}", store)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("access_denied", "denied access"),
        (
            "redirect_uri_mismatch",
            f"Callback URL to the connected app (Setup > App Manager > Edit > Callback URL), one per line, and save: {REDIRECT}",
        ),
        ("invalid_client_id", "Consumer Key"),
        ("OAUTH_APPROVAL_ERROR_GENERIC", "Approve Uninstalled Connected Apps"),
    ],
)
def test_callback_errors_are_explained(store: ConnectionStore, error: str, expected: str) -> None:
    pending = begin_authorization(ORG, REDIRECT)
    url = f"{REDIRECT}?error={error}&error_description=some+text&state={pending.state}"

    with pytest.raises(AuthorizationError) as caught:
        complete_authorization(ORG, pending, url, store)

    assert caught.value.error == error
    assert expected in str(caught.value)


def test_pasted_error_page_url_explains_permission(store: ConnectionStore) -> None:
    pending = begin_authorization(ORG, REDIRECT)
    url = (
        "https://acme.my.salesforce.com/setup/secur/RemoteAccessErrorPage.apexp"
        "?error=invalid_scope&error_description=the+requested+scope+is+not+allowed"
    )

    with pytest.raises(AuthorizationError) as caught:
        complete_authorization(ORG, pending, url, store)

    assert caught.value.error == "invalid_scope"
    assert "Selected OAuth Scopes" in str(caught.value)


def test_jwt_unapproved_user_hint_says_preauthorize() -> None:
    hint = explain("invalid_grant", "user hasn't approved this consumer")

    assert "pre-authorized" in hint


def test_callback_server_takes_one_callback_request() -> None:
    port = free_port()
    with CallbackServer(port) as server:
        favicon = requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=5)
        first = requests.get(f"http://127.0.0.1:{port}/callback?code=abc&state=s", timeout=5)
        second = requests.get(f"http://127.0.0.1:{port}/callback?code=other&state=s", timeout=5)
        received = server.wait(1)

    assert favicon.status_code == 404
    assert first.status_code == 200
    assert "Return to the terminal" in first.text
    assert second.status_code == 404
    assert received == f"http://127.0.0.1:{port}/callback?code=abc&state=s"


def test_callback_server_rejects_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(ConfigError, match=f"callback port {port} on 127.0.0.1 is in use"):
            CallbackServer(port)


def test_web_server_flow_times_out_with_hint(store: ConnectionStore) -> None:
    org = OrgConfig(
        name="acme",
        login_url="https://login.salesforce.com",
        is_sandbox=False,
        client_id="x",
        callback_port=free_port(),
    )
    opened: list[str] = []

    with pytest.raises(AuthorizationError) as caught:
        connect_web_server(org, store, browser=opened.append, timeout=0.2)

    assert len(opened) == 1
    assert "timed out after 0 s waiting for the OAuth callback" in str(caught.value)
    assert "OAUTH_APPROVAL_ERROR_GENERIC" in str(caught.value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", org.callback_port))  # the server released the port


def test_no_browser_flow_reads_pasted_url(store: ConnectionStore) -> None:
    printed: list[str] = []
    prompts: list[str] = []

    def paste(prompt: str) -> str:
        prompts.append(prompt)
        return f"{REDIRECT}?error=access_denied&error_description=end-user+denied+authorization"

    with pytest.raises(AuthorizationError, match="denied access"):
        connect_web_server(ORG, store, no_browser=True, input_func=paste, output=printed.append)

    assert prompts == ["Paste the URL here: "]
    assert "/services/oauth2/authorize?" in printed[0]


def parse_connect(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connect_arguments(parser)
    return parser.parse_args(["acme", *argv])


def test_sandbox_flag_switches_login_host() -> None:
    changed = connect_overrides(parse_connect("--sandbox"), ORG)

    assert changed.is_sandbox is True
    assert changed.login_url == "https://test.salesforce.com"


def test_login_url_flag_sets_my_domain() -> None:
    changed = connect_overrides(
        parse_connect("--login-url", "https://acme.my.salesforce.com/", "--port", "8123"), ORG
    )

    assert changed.login_url == "https://acme.my.salesforce.com"
    assert changed.is_sandbox is False
    assert changed.callback_port == 8123


def test_login_url_flag_requires_https() -> None:
    with pytest.raises(ConfigError, match="https://"):
        connect_overrides(parse_connect("--login-url", "http://acme.example"), ORG)


def test_flow_flag_maps_to_config_value() -> None:
    changed = connect_overrides(parse_connect("--flow", "client-credentials"), ORG)

    assert changed.flow == "client_credentials"


def test_reauthorization_command_repeats_how_org_was_connected() -> None:
    record = ConnectionRecord(
        org="acme",
        org_id="00DXX0000001abcEAA",
        org_name="Acme",
        user_id="005XX000001XyZaAAK",
        username="admin@acme.example",
        connected_at="2026-12-04T10:00:00+00:00",
        is_sandbox=False,
        login_url="https://acme.my.salesforce.com",
        instance_url="https://acme.my.salesforce.com",
        scopes=("api",),
        flow="jwt",
        private_key_file="/etc/cora/acme.pem",
    )

    assert reauthorization_command(ORG) == "cora connect acme"
    assert reauthorization_command(ORG, record) == (
        "cora connect acme --login-url https://acme.my.salesforce.com --flow jwt "
        "--username admin@acme.example --private-key-file /etc/cora/acme.pem"
    )


def test_error_page_without_reason_explains_permission(store: ConnectionStore) -> None:
    pending = begin_authorization(ORG, REDIRECT)
    url = "https://login.salesforce.com/setup/secur/RemoteAccessErrorPage.apexp"

    with pytest.raises(AuthorizationError) as caught:
        complete_authorization(ORG, pending, url, store)

    assert caught.value.error == "OAUTH_APPROVAL_ERROR_GENERIC"
    assert "Approve Uninstalled Connected Apps" in str(caught.value)
    assert "temporary permission set" in str(caught.value)


def test_authorize_error_page_html_is_explained() -> None:
    html = "<p>OAUTH_APPROVAL_ERROR_GENERIC : An unexpected error has occurred</p>"

    with pytest.raises(AuthorizationError, match="Approve Uninstalled Connected Apps"):
        check_authorize_page(html)
    check_authorize_page("<p>Allow Access?</p>")


def test_sandbox_flag_keeps_my_domain_host() -> None:
    my_domain = OrgConfig(
        name="acme", login_url="https://acme.my.salesforce.com", is_sandbox=False, client_id="x"
    )

    changed = connect_overrides(parse_connect("--sandbox"), my_domain)

    assert changed.login_url == "https://acme.my.salesforce.com"
    assert changed.is_sandbox is True


def test_sandbox_my_domain_implies_sandbox() -> None:
    url = "https://acme--uat.sandbox.my.salesforce.com"

    changed = connect_overrides(parse_connect("--login-url", url), ORG)

    assert changed.login_url == url
    assert changed.is_sandbox is True


def test_sandbox_flag_with_production_host_is_rejected() -> None:
    argv = ("--sandbox", "--login-url", "https://login.salesforce.com")

    with pytest.raises(ConfigError, match="contradicts"):
        connect_overrides(parse_connect(*argv), ORG)


def test_reauthorization_command_keeps_sandbox_my_domain() -> None:
    record = ConnectionRecord(
        org="acme",
        org_id="00DXX0000001abcEAA",
        org_name="Acme UAT",
        user_id="005XX000001XyZaAAK",
        username="admin@acme.example.uat",
        connected_at="2026-12-04T10:00:00+00:00",
        is_sandbox=True,
        login_url="https://acme-uat.my.salesforce.com",
        instance_url="https://acme-uat.my.salesforce.com",
        scopes=("api",),
        flow="web_server",
    )

    command = reauthorization_command(ORG, record)

    assert command == "cora connect acme --login-url https://acme-uat.my.salesforce.com --sandbox"
    args = parse_connect(*command.split()[3:])
    changed = connect_overrides(args, ORG)
    assert changed.login_url == record.login_url
    assert changed.is_sandbox is True


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("expired authorization code", "start the connection again"),
        ("invalid assertion", "certificate"),
        ("IP restricted or invalid login hours", "IP Relaxation"),
        ("inactive user", "inactive"),
        ("request not supported on this domain", "My Domain"),
        ("audience is invalid", "audience"),
    ],
)
def test_invalid_grant_descriptions_are_explained(description: str, expected: str) -> None:
    assert expected in explain("invalid_grant", description)


def test_headless_terminal_prints_url_without_browser(
    store: ConnectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)

    def fail_open(url: str) -> bool:
        raise AssertionError("webbrowser.open must not run without a display")

    monkeypatch.setattr("webbrowser.open", fail_open)
    org = OrgConfig(
        name="acme",
        login_url="https://login.salesforce.com",
        is_sandbox=False,
        client_id="x",
        callback_port=free_port(),
    )
    printed: list[str] = []

    with pytest.raises(AuthorizationError, match="timed out"):
        connect_web_server(org, store, timeout=0.2, output=printed.append)

    assert "No graphical browser found" in printed[0]
    assert f"ssh -L {org.callback_port}:127.0.0.1:{org.callback_port}" in printed[0]
    assert "/services/oauth2/authorize?" in printed[0]


def test_display_or_browser_variable_means_browser() -> None:
    assert has_graphical_browser({"DISPLAY": ":0"}) is True
    assert has_graphical_browser({"BROWSER": "firefox"}) is True
    assert has_graphical_browser({}) is (sys.platform in ("darwin", "win32"))


def test_no_browser_flow_rejects_pasted_garbage(store: ConnectionStore) -> None:
    with pytest.raises(AuthorizationError, match="the pasted text is not a callback URL") as caught:
        connect_web_server(
            ORG, store, no_browser=True, input_func=lambda _: "hello", output=lambda _: None
        )

    assert "hello" not in str(caught.value)
    assert REDIRECT in str(caught.value)


def test_no_browser_flow_with_closed_stdin(store: ConnectionStore) -> None:
    def closed(prompt: str) -> str:
        raise EOFError

    with pytest.raises(AuthorizationError, match="no URL was pasted"):
        connect_web_server(ORG, store, no_browser=True, input_func=closed, output=lambda _: None)


def test_unset_secret_fails_before_login(
    store: ConnectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = OrgConfig(**{**ORG.__dict__, "client_secret_env": "UNSET_SECRET_FOR_TEST"})
    monkeypatch.delenv("UNSET_SECRET_FOR_TEST", raising=False)
    printed: list[str] = []

    with pytest.raises(ConfigError, match="UNSET_SECRET_FOR_TEST is not set"):
        connect_web_server(
            org, store, no_browser=True, input_func=lambda _: "", output=printed.append
        )

    assert printed == []
