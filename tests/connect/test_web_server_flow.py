"""The web-server flow with PKCE against the emulator, through the loopback callback."""

import dataclasses

import pytest

from cora_pipeline.connect import (
    ConnectionStore,
    TokenManager,
    begin_authorization,
    complete_authorization,
    connect_web_server,
)
from cora_pipeline.errors import AuthorizationError

from .emulated import Salesforce, StartEmulator, free_port, redirect_browser, rest_get


def connect(salesforce: Salesforce, store: ConnectionStore, **changes: object):
    org = salesforce.org_config(**changes)
    return connect_web_server(
        org,
        store,
        browser=redirect_browser(str(salesforce.emu.ca_file)),
        timeout=10,
        output=lambda *_: None,
    )


def test_connect_stores_record_and_tokens(salesforce: Salesforce, store: ConnectionStore) -> None:
    emu = salesforce.emu

    record = connect(salesforce, store)

    assert record.org == "acme"
    assert record.org_id == emu.production.org_id
    assert record.org_name == emu.production.name
    assert record.username == emu.production.admin_username
    assert record.user_id == emu.production.admin_user_id
    assert record.is_sandbox is False
    assert record.environment == "Production"
    assert record.login_url == emu.login_url
    assert record.instance_url == emu.production.instance_url
    assert set(record.scopes) >= {"api", "refresh_token"}
    assert record.flow == "web_server"
    assert record.key_id == store.key_id
    assert record.connected_at
    assert store.get("acme") == record
    loaded = store.load("acme")
    assert loaded is not None
    assert loaded[1].refresh_token


def test_stored_token_reads_the_org(salesforce: Salesforce, store: ConnectionStore) -> None:
    connect(salesforce, store)

    token = TokenManager(salesforce.org_config(), store).current()
    response = rest_get(
        salesforce,
        token.instance_url,
        token.access_token,
        "/services/data/v59.0/query",
        q="SELECT Id FROM Account",
    )

    assert response.status_code == 200
    assert response.json()["totalSize"] == 5


def test_sandbox_connects_through_sandbox_login(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    emu = salesforce.emu

    record = connect(salesforce, store, login_url=emu.sandbox_login_url, is_sandbox=True)

    assert record.is_sandbox is True
    assert record.environment == "Sandbox"
    assert record.org_id == emu.sandbox.org_id
    assert record.instance_url == emu.sandbox.instance_url


def test_sandbox_mismatch_is_rejected_and_token_revoked(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    emu = salesforce.emu

    with pytest.raises(AuthorizationError) as caught:
        connect(salesforce, store, is_sandbox=True)

    message = str(caught.value)
    assert "requested as a Sandbox" in message
    assert emu.production.org_id in message
    assert "is a Production org" in message
    assert store.get("acme") is None
    assert emu.oauth.tokens.refresh == {}


def test_reconnect_to_another_org_is_rejected(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    emu = salesforce.emu
    connect(salesforce, store)

    with pytest.raises(AuthorizationError, match="must keep its Salesforce org"):
        connect(salesforce, store, login_url=emu.sandbox_login_url, is_sandbox=True)

    record = store.get("acme")
    assert record is not None
    assert record.org_id == emu.production.org_id


def test_reconnect_revokes_replaced_refresh_token(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    connect(salesforce, store)
    first = store.load("acme")
    assert first is not None

    connect(salesforce, store)
    second = store.load("acme")
    assert second is not None

    assert second[1].refresh_token != first[1].refresh_token
    assert len(salesforce.emu.oauth.tokens.refresh) == 1


def test_login_and_consent_pages_connect(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    salesforce = start_emulator(auto_approve=False)
    production = salesforce.emu.production
    browser = redirect_browser(
        str(salesforce.emu.ca_file),
        username=production.admin_username,
        password=production.admin_password,
    )

    record = connect_web_server(
        salesforce.org_config(), store, browser=browser, timeout=10, output=lambda *_: None
    )

    assert record.username == production.admin_username


def test_denied_consent_explains_access_denied(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    salesforce = start_emulator(auto_approve=False)
    production = salesforce.emu.production
    browser = redirect_browser(
        str(salesforce.emu.ca_file),
        username=production.admin_username,
        password=production.admin_password,
        action="deny",
    )

    with pytest.raises(AuthorizationError) as caught:
        connect_web_server(
            salesforce.org_config(), store, browser=browser, timeout=10, output=lambda *_: None
        )

    assert caught.value.error == "access_denied"
    assert "denied access" in str(caught.value)
    assert store.get("acme") is None


def test_unregistered_callback_names_url_to_register(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    port = free_port()

    with pytest.raises(AuthorizationError) as caught:
        connect(salesforce, store, callback_port=port)

    assert caught.value.error == "redirect_uri_mismatch"
    assert f"http://127.0.0.1:{port}/callback" in str(caught.value)


def test_wrong_consumer_key_explains_propagation(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    with pytest.raises(AuthorizationError) as caught:
        connect(salesforce, store, client_id="3MVG9wrong")

    assert caught.value.error == "invalid_client_id"
    assert "Consumer Key" in str(caught.value)
    assert "10 minutes" in str(caught.value)


def test_code_exchange_requires_matching_verifier(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    org = salesforce.org_config()
    redirect_uri = f"http://127.0.0.1:{salesforce.callback_port}/callback"
    pending = begin_authorization(org, redirect_uri)
    browser = redirect_browser(str(salesforce.emu.ca_file))
    landed = browser(pending.url)  # nothing listens on the callback port: only read the URL
    forged = dataclasses.replace(pending, code_verifier="x" * 64)

    with pytest.raises(AuthorizationError) as caught:
        complete_authorization(org, forged, landed, store)

    assert caught.value.error == "invalid_request"
    assert store.get("acme") is None


def test_pasted_callback_url_completes_flow(salesforce: Salesforce, store: ConnectionStore) -> None:
    org = salesforce.org_config()
    printed: list[str] = []
    browser = redirect_browser(str(salesforce.emu.ca_file))

    def paste(prompt: str) -> str:
        url = printed[0].split("\n\n")[1].strip()
        return browser(url)

    record = connect_web_server(
        org, store, no_browser=True, input_func=paste, output=printed.append
    )

    assert record.org_id == salesforce.emu.production.org_id
