"""OAuth 2.0 against the emulator, driven by unmodified authlib and requests."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import requests
from authlib.common.security import generate_token

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import (
    CALLBACK,
    browser_authorize,
    connect,
    oauth_client,
    query_params,
    salesforce,
    trusting_session,
)


def test_token_response_has_salesforce_shape(emulator: Emulator, token: dict) -> None:
    org = emulator.production
    assert "expires_in" not in token
    assert token["access_token"].startswith(org.org_id[:15] + "!")
    assert token["refresh_token"]
    assert isinstance(token["issued_at"], str)
    assert token["issued_at"].isdigit()
    assert len(token["issued_at"]) == 13
    assert token["instance_url"] == org.instance_url
    assert token["id"] == f"{emulator.login_url}/id/{org.org_id}/{org.admin_user_id}"
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "api refresh_token"
    expected = base64.b64encode(
        hmac.new(
            emulator.client_secret.encode(),
            (token["id"] + token["issued_at"]).encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    assert token["signature"] == expected


def test_state_is_echoed_on_success(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        f"{emulator.login_url}/services/oauth2/authorize", code_verifier=verifier
    )
    final = browser_authorize(
        emulator, url, emulator.production.admin_username, emulator.production.admin_password
    )
    params = query_params(final.headers["Location"])
    assert final.headers["Location"].startswith(CALLBACK + "?")
    assert params["state"] == state
    assert params["code"].startswith("aPrx")


def test_deny_redirects_with_access_denied(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    url, state = client.create_authorization_url(
        f"{emulator.login_url}/services/oauth2/authorize", code_verifier=generate_token(48)
    )
    final = browser_authorize(
        emulator,
        url,
        emulator.production.admin_username,
        emulator.production.admin_password,
        decision="deny",
    )
    params = query_params(final.headers["Location"])
    assert params == {
        "error": "access_denied",
        "error_description": "end-user denied authorization",
        "state": state,
    }


def test_wrong_password_shows_login_again(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    url, _ = client.create_authorization_url(f"{emulator.login_url}/services/oauth2/authorize")
    browser = trusting_session(emulator)
    page = browser.get(url)
    from .helpers import hidden_fields

    form = hidden_fields(page.text)
    form.update({"username": emulator.production.admin_username, "password": "wrong"})
    again = browser.post(f"{emulator.login_url}/services/oauth2/authorize", data=form)
    assert again.status_code == 200
    assert "check your username and password" in again.text


def test_pkce_verifier_mismatch_is_rejected(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    url, _ = client.create_authorization_url(
        f"{emulator.login_url}/services/oauth2/authorize", code_verifier=generate_token(48)
    )
    final = browser_authorize(
        emulator, url, emulator.production.admin_username, emulator.production.admin_password
    )
    with pytest.raises(Exception) as raised:
        client.fetch_token(
            f"{emulator.login_url}/services/oauth2/token",
            authorization_response=final.headers["Location"],
            code_verifier=generate_token(48),
        )
    assert "invalid" in str(raised.value)


def test_pkce_missing_verifier_gives_invalid_grant(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    url, _ = client.create_authorization_url(
        f"{emulator.login_url}/services/oauth2/authorize", code_verifier=generate_token(48)
    )
    final = browser_authorize(
        emulator, url, emulator.production.admin_username, emulator.production.admin_password
    )
    code = query_params(final.headers["Location"])["code"]
    response = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_can_be_used_once(emulator: Emulator) -> None:
    client = oauth_client(emulator)
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        f"{emulator.login_url}/services/oauth2/authorize", code_verifier=verifier
    )
    final = browser_authorize(
        emulator, url, emulator.production.admin_username, emulator.production.admin_password
    )
    code = query_params(final.headers["Location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "code_verifier": verifier,
    }
    session = trusting_session(emulator)
    first = session.post(f"{emulator.login_url}/services/oauth2/token", data=form)
    second = session.post(f"{emulator.login_url}/services/oauth2/token", data=form)
    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": "invalid authorization code",
    }
    assert second.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert "no-store" in second.headers["Cache-Control"]


def test_redirect_uri_mismatch_shows_error_page(emulator: Emulator) -> None:
    session = trusting_session(emulator)
    response = session.get(
        f"{emulator.login_url}/services/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": emulator.client_id,
            "redirect_uri": "https://evil.example/cb",
        },
        allow_redirects=False,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(emulator.login_url + "/setup/secur/RemoteAccessErrorPage.apexp")
    assert query_params(location)["error"] == "redirect_uri_mismatch"
    page = session.get(location)
    assert "OAUTH_APPROVAL_ERROR_GENERIC" in page.text
    assert page.headers["Content-Type"].startswith("text/html")


def test_unknown_client_shows_error_page(emulator: Emulator) -> None:
    response = trusting_session(emulator).get(
        f"{emulator.login_url}/services/oauth2/authorize",
        params={"response_type": "code", "client_id": "nope", "redirect_uri": CALLBACK},
        allow_redirects=False,
    )
    assert query_params(response.headers["Location"])["error"] == "invalid_client_id"


def test_invalid_scope_redirects_with_error(emulator: Emulator) -> None:
    response = trusting_session(emulator).get(
        f"{emulator.login_url}/services/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": emulator.client_id,
            "redirect_uri": CALLBACK,
            "scope": "api everything",
            "state": "s1",
        },
        allow_redirects=False,
    )
    params = query_params(response.headers["Location"])
    assert params["error"] == "invalid_scope"
    assert params["state"] == "s1"


def test_unsupported_response_type_redirects(emulator: Emulator) -> None:
    response = trusting_session(emulator).get(
        f"{emulator.login_url}/services/oauth2/authorize",
        params={"response_type": "foo", "client_id": emulator.client_id, "redirect_uri": CALLBACK},
        allow_redirects=False,
    )
    assert query_params(response.headers["Location"])["error"] == "unsupported_response_type"


def test_refresh_returns_new_access_token_without_refresh_token(
    emulator: Emulator, token: dict
) -> None:
    client = oauth_client(emulator)
    client.token = token
    refreshed = client.refresh_token(
        f"{emulator.login_url}/services/oauth2/token", refresh_token=token["refresh_token"]
    )
    assert refreshed["access_token"] != token["access_token"]
    # authlib keeps the old refresh token when the response has none.
    assert refreshed["refresh_token"] == token["refresh_token"]
    raw = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert "refresh_token" not in raw.json()
    assert "expires_in" not in raw.json()


def test_wrong_client_secret_gives_invalid_client(emulator: Emulator, token: dict) -> None:
    response = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emulator.client_id,
            "client_secret": "wrong",
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_unknown_grant_type_is_rejected(emulator: Emulator) -> None:
    response = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/token",
        data={"grant_type": "magic", "client_id": emulator.client_id},
    )
    assert response.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


def test_revoked_refresh_token_gives_invalid_grant(emulator: Emulator) -> None:
    token = connect(emulator)
    session = trusting_session(emulator)
    revoke = session.post(
        f"{emulator.login_url}/services/oauth2/revoke", data={"token": token["refresh_token"]}
    )
    assert revoke.status_code == 200
    assert revoke.content == b""
    refresh = session.post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert refresh.status_code == 400
    assert refresh.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    # Revoking the refresh token also revokes its access tokens.
    rest = session.get(
        f"{token['instance_url']}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert rest.status_code == 401


def test_revoke_unknown_token_is_400(emulator: Emulator) -> None:
    response = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/revoke", data={"token": "nope"}
    )
    assert response.status_code == 400


def test_identity_url_needs_an_identity_scope(emulator: Emulator, token: dict) -> None:
    session = trusting_session(emulator)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert token["scope"] == "api refresh_token"
    assert session.get(token["id"], headers=headers).status_code == 403
    userinfo = session.get(f"{emulator.login_url}/services/oauth2/userinfo", headers=headers)
    assert userinfo.status_code == 403


def test_userinfo_and_identity_url(emulator: Emulator) -> None:
    token = connect(emulator, scope="api id refresh_token")
    session = trusting_session(emulator)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    info = session.get(f"{emulator.login_url}/services/oauth2/userinfo", headers=headers).json()
    org = emulator.production
    assert info["user_id"] == org.admin_user_id
    assert info["organization_id"] == org.org_id
    assert info["preferred_username"] == org.admin_username
    assert info["urls"]["rest"] == f"{org.instance_url}/services/data/v{{version}}/"
    identity = session.get(token["id"], headers=headers).json()
    assert identity["username"] == org.admin_username
    assert identity["id"] == token["id"]
    assert session.get(token["id"]).status_code == 403


def test_openid_discovery_document(emulator: Emulator) -> None:
    document = (
        trusting_session(emulator)
        .get(f"{emulator.login_url}/.well-known/openid-configuration")
        .json()
    )
    assert document["issuer"] == emulator.login_url
    assert document["token_endpoint"] == f"{emulator.login_url}/services/oauth2/token"
    assert document["revocation_endpoint"] == f"{emulator.login_url}/services/oauth2/revoke"


def test_openid_scope_adds_id_token(emulator: Emulator) -> None:
    import jwt

    token = connect(emulator, scope="api openid refresh_token")
    keys = trusting_session(emulator).get(f"{emulator.login_url}/id/keys").json()["keys"]
    key = jwt.PyJWK(keys[0])
    claims = jwt.decode(token["id_token"], key, algorithms=["RS256"], audience=emulator.client_id)
    assert claims["preferred_username"] == emulator.production.admin_username


def test_bad_token_gives_invalid_session_id(emulator: Emulator) -> None:
    org = emulator.production
    response = trusting_session(emulator).get(
        f"{org.instance_url}/services/data/v59.0/sobjects",
        headers={"Authorization": f"Bearer {org.org_id[:15]}!nonsense"},
    )
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_expired_access_token_then_refresh_works() -> None:
    from simple_salesforce.exceptions import SalesforceExpiredSession

    settings = EmulatorSettings(seed=3, sizes={"Account": 5}, access_token_lifetime=60)
    with Emulator(settings) as emulator:
        token = connect(emulator)
        sf = salesforce(emulator, token)
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 5
        emulator.production.admin.advance_clock(61)
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM Account")
        client = oauth_client(emulator)
        client.token = token
        refreshed = client.refresh_token(f"{emulator.login_url}/services/oauth2/token")
        sf = salesforce(emulator, dict(refreshed))
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 5


def test_rotation_issues_new_refresh_token_and_retires_old() -> None:
    with Emulator(EmulatorSettings(seed=3, sizes={}, rotate_refresh_tokens=True)) as emulator:
        token = connect(emulator)
        session = trusting_session(emulator)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        }
        first = session.post(f"{emulator.login_url}/services/oauth2/token", data=form)
        assert first.json()["refresh_token"] != token["refresh_token"]
        again = session.post(f"{emulator.login_url}/services/oauth2/token", data=form)
        assert again.json()["error"] == "invalid_grant"


def test_sixth_approval_revokes_the_oldest() -> None:
    with Emulator(EmulatorSettings(seed=3, sizes={})) as emulator:
        tokens = [connect(emulator) for _ in range(6)]
        session = trusting_session(emulator)

        def refresh(refresh_token: str) -> requests.Response:
            return session.post(
                f"{emulator.login_url}/services/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": emulator.client_id,
                    "client_secret": emulator.client_secret,
                },
            )

        assert refresh(tokens[0]["refresh_token"]).status_code == 400
        for token in tokens[1:]:
            assert refresh(token["refresh_token"]).status_code == 200


def test_auto_approve_redirects_immediately() -> None:
    with Emulator(EmulatorSettings(seed=3, sizes={}, auto_approve=True)) as emulator:
        client = oauth_client(emulator)
        verifier = generate_token(48)
        url, state = client.create_authorization_url(
            f"{emulator.login_url}/services/oauth2/authorize", code_verifier=verifier
        )
        response = trusting_session(emulator).get(url, allow_redirects=False)
        assert response.status_code == 302
        params = query_params(response.headers["Location"])
        assert params["state"] == state
        token = client.fetch_token(
            f"{emulator.login_url}/services/oauth2/token",
            authorization_response=response.headers["Location"],
            code_verifier=verifier,
        )
        assert token["instance_url"] == emulator.production.instance_url


def test_code_expires_after_fifteen_minutes(emulator: Emulator) -> None:
    with Emulator(EmulatorSettings(seed=3, sizes={})) as fresh:
        client = oauth_client(fresh)
        verifier = generate_token(48)
        url, _ = client.create_authorization_url(
            f"{fresh.login_url}/services/oauth2/authorize", code_verifier=verifier
        )
        final = browser_authorize(
            fresh, url, fresh.production.admin_username, fresh.production.admin_password
        )
        fresh.production.admin.advance_clock(15 * 60 + 1)
        code = query_params(final.headers["Location"])["code"]
        response = trusting_session(fresh).post(
            f"{fresh.login_url}/services/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            auth=(fresh.client_id, fresh.client_secret),
        )
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "expired authorization code",
        }


def test_immediate_without_session_is_unsuccessful(emulator: Emulator) -> None:
    response = trusting_session(emulator).get(
        f"{emulator.login_url}/services/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": emulator.client_id,
            "redirect_uri": CALLBACK,
            "immediate": "true",
            "state": "x",
        },
        allow_redirects=False,
    )
    assert query_params(response.headers["Location"]) == {
        "error": "immediate_unsuccessful",
        "error_description": "immediate unsuccessful",
        "state": "x",
    }


def test_urlencoded_format_for_token_errors(emulator: Emulator) -> None:
    response = trusting_session(emulator).post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "format": "urlencoded",
            "client_id": emulator.client_id,
        },
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert query_params("?" + response.text) == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def test_prompt_login_overrides_auto_approve() -> None:
    with Emulator(EmulatorSettings(seed=3, sizes={}, auto_approve=True)) as fresh:
        client = oauth_client(fresh)
        url, _ = client.create_authorization_url(
            f"{fresh.login_url}/services/oauth2/authorize", prompt="login"
        )
        response = trusting_session(fresh).get(url, allow_redirects=False)
        assert response.status_code == 200
        assert 'id="login_form"' in response.text


def test_request_logs_leave_out_tokens(
    emulator: Emulator, token: dict, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="cora_pipeline.emulator")
    session = trusting_session(emulator)
    session.get(
        f"{emulator.login_url}/services/oauth2/userinfo",
        params={"oauth_token": token["access_token"]},
    )
    session.post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emulator.client_id,
        },
    )
    assert "/services/oauth2/userinfo" in caplog.text
    assert token["access_token"] not in caplog.text
    assert token["refresh_token"] not in caplog.text
