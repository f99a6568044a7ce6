"""JWT bearer and client credentials flows against the emulator, and disconnect."""

import time
from pathlib import Path

import jwt
import pytest

from cora_pipeline.connect import (
    ConnectionStore,
    TokenManager,
    connect_client_credentials,
    connect_jwt,
    connect_web_server,
    disconnect,
)
from cora_pipeline.connect.oauth import build_jwt_assertion
from cora_pipeline.errors import AuthorizationError, ConfigError, NotConnectedError

from .emulated import Salesforce, StartEmulator, redirect_browser, rest_get

LIFETIME = 600.0


def query_status(salesforce: Salesforce, access_token: str, instance_url: str) -> int:
    return rest_get(
        salesforce,
        instance_url,
        access_token,
        "/services/data/v59.0/query",
        q="SELECT Id FROM Account",
    ).status_code


def test_jwt_assertion_claims(salesforce: Salesforce) -> None:
    emu = salesforce.emu
    org = salesforce.org_config()

    assertion = build_jwt_assertion(
        org, emu.login_url, emu.production.admin_username, emu.jwt_private_key_file
    )
    claims = jwt.decode(assertion, options={"verify_signature": False})
    header = jwt.get_unverified_header(assertion)

    assert header["alg"] == "RS256"
    assert claims["iss"] == emu.client_id
    assert claims["sub"] == emu.production.admin_username
    assert claims["aud"] == emu.login_url
    assert 0 < claims["exp"] - time.time() <= 180


def test_jwt_flow_connects_without_refresh_token(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    salesforce = start_emulator(access_token_lifetime=LIFETIME)
    emu = salesforce.emu
    org = salesforce.org_config(
        flow="jwt",
        username=emu.production.admin_username,
        private_key_file=emu.jwt_private_key_file,
    )

    record = connect_jwt(org, store)

    assert record.flow == "jwt"
    assert record.username == emu.production.admin_username
    assert record.org_id == emu.production.org_id
    loaded = store.load("acme")
    assert loaded is not None
    assert loaded[1].refresh_token is None
    manager = TokenManager(org, store)
    stale = manager.current()
    emu.production.admin.advance_clock(LIFETIME + 1)
    assert query_status(salesforce, stale.access_token, stale.instance_url) == 401

    fresh = manager.refresh(stale=stale)

    assert fresh.access_token != stale.access_token
    assert query_status(salesforce, fresh.access_token, fresh.instance_url) == 200


def test_jwt_unapproved_user_explains_preauthorization(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    emu = salesforce.emu
    analyst = next(u for u in emu.production.users if u.username.startswith("analyst@"))
    org = salesforce.org_config(
        flow="jwt", username=analyst.username, private_key_file=emu.jwt_private_key_file
    )

    with pytest.raises(AuthorizationError) as caught:
        connect_jwt(org, store)

    assert caught.value.error == "invalid_grant"
    assert caught.value.description == "user hasn't approved this consumer"
    assert "pre-authorized" in str(caught.value)
    assert store.get("acme") is None


def test_jwt_missing_private_key_is_config_error(
    salesforce: Salesforce, store: ConnectionStore, tmp_path: Path
) -> None:
    org = salesforce.org_config(
        flow="jwt", username="admin@example.com", private_key_file=str(tmp_path / "none.pem")
    )

    with pytest.raises(ConfigError, match="cannot be read"):
        connect_jwt(org, store)


def test_client_credentials_on_my_domain_connects(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    salesforce = start_emulator(access_token_lifetime=LIFETIME)
    emu = salesforce.emu
    org = salesforce.org_config(flow="client_credentials", login_url=emu.production.instance_url)

    record = connect_client_credentials(org, store)

    assert record.flow == "client_credentials"
    assert record.username == emu.production.integration_username
    assert record.login_url == emu.production.instance_url
    manager = TokenManager(org, store)
    stale = manager.current()
    emu.production.admin.advance_clock(LIFETIME + 1)
    fresh = manager.refresh(stale=stale)
    assert query_status(salesforce, fresh.access_token, fresh.instance_url) == 200


def test_client_credentials_on_login_host_is_explained(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    org = salesforce.org_config(flow="client_credentials")

    with pytest.raises(AuthorizationError) as caught:
        connect_client_credentials(org, store)

    assert caught.value.description == "request not supported on this domain"
    assert "My Domain" in str(caught.value)


def connect(salesforce: Salesforce, store: ConnectionStore) -> None:
    connect_web_server(
        salesforce.org_config(),
        store,
        browser=redirect_browser(str(salesforce.emu.ca_file)),
        timeout=10,
        output=lambda *_: None,
    )


def test_disconnect_revokes_then_deletes(salesforce: Salesforce, store: ConnectionStore) -> None:
    connect(salesforce, store)
    token = TokenManager(salesforce.org_config(), store).current()

    result = disconnect(salesforce.org_config(), store)

    assert result.revoked is True
    assert store.get("acme") is None
    assert not store.path_for("acme").exists()
    assert salesforce.emu.oauth.tokens.refresh == {}
    assert query_status(salesforce, token.access_token, token.instance_url) == 401


def test_disconnect_failure_keeps_connection(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    connect(salesforce, store)
    salesforce.emu.stop()

    with pytest.raises(AuthorizationError) as caught:
        disconnect(salesforce.org_config(), store)

    assert "unreachable" in str(caught.value)
    assert "cora disconnect acme --force" in str(caught.value)
    assert store.get("acme") is not None


def test_forced_disconnect_deletes_despite_failure(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    connect(salesforce, store)
    salesforce.emu.stop()

    result = disconnect(salesforce.org_config(), store, force=True)

    assert result.revoked is False
    assert result.revoke_error is not None
    assert "unreachable" in result.revoke_error
    assert store.get("acme") is None


def test_disconnect_of_already_revoked_token_succeeds(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    connect(salesforce, store)
    salesforce.emu.production.admin.revoke_refresh_tokens()

    result = disconnect(salesforce.org_config(), store)

    assert result.revoked is True
    assert store.get("acme") is None


def test_disconnect_without_connection_raises(
    salesforce: Salesforce, store: ConnectionStore
) -> None:
    with pytest.raises(NotConnectedError):
        disconnect(salesforce.org_config(), store)
