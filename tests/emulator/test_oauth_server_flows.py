"""JWT bearer, client credentials and sandbox logins, driven by authlib and requests."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from authlib.integrations.requests_client import AssertionSession
from simple_salesforce import Salesforce

from cora_pipeline.emulator import Emulator

from .helpers import connect, trusting_session

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _assertion(
    emulator: Emulator,
    username: str,
    audience: str,
    lifetime: int = 170,
    issuer: str | None = None,
    key_file: str | None = None,
) -> str:
    key = Path(key_file or emulator.jwt_private_key_file).read_bytes()
    claims = {
        "iss": issuer or emulator.client_id,
        "sub": username,
        "aud": audience,
        "exp": int(time.time()) + lifetime,
    }
    return jwt.encode(claims, key, algorithm="RS256")


def _jwt_token(emulator: Emulator, assertion: str, login_url: str | None = None) -> dict:
    response = trusting_session(emulator).post(
        f"{login_url or emulator.login_url}/services/oauth2/token",
        data={"grant_type": JWT_GRANT, "assertion": assertion},
    )
    return {"status": response.status_code, **response.json()}


def _assertion_session(emulator: Emulator, **options: object) -> AssertionSession:
    session = AssertionSession(
        token_endpoint=f"{emulator.login_url}/services/oauth2/token",
        issuer=emulator.client_id,
        subject=emulator.production.integration_username,
        audience=emulator.login_url,
        grant_type=JWT_GRANT,
        key=Path(emulator.jwt_private_key_file).read_text(),
        alg="RS256",
        **options,
    )
    session.verify = emulator.ca_file
    session.trust_env = False
    return session


def test_jwt_bearer_with_authlib_assertion_session(emulator: Emulator) -> None:
    org = emulator.production
    token = _assertion_session(emulator, expires_in=170).refresh_token()
    assert token["access_token"].startswith(org.org_id[:15] + "!")
    assert "refresh_token" not in token
    assert token["instance_url"] == org.instance_url
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=trusting_session(emulator),
    )
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0


def test_authlib_default_hour_long_assertion_is_rejected(emulator: Emulator) -> None:
    from authlib.oauth2.base import OAuth2Error

    with pytest.raises(OAuth2Error, match="invalid_grant"):
        _assertion_session(emulator).refresh_token()


def test_jwt_with_wrong_audience_is_rejected(emulator: Emulator) -> None:
    assertion = _assertion(
        emulator, emulator.production.integration_username, "https://login.salesforce.com"
    )
    result = _jwt_token(emulator, assertion)
    assert result == {
        "status": 400,
        "error": "invalid_grant",
        "error_description": "audience is invalid",
    }


def test_jwt_exp_over_three_minutes_rejected(emulator: Emulator) -> None:
    assertion = _assertion(
        emulator, emulator.production.integration_username, emulator.login_url, lifetime=600
    )
    assert _jwt_token(emulator, assertion)["error"] == "invalid_grant"


def test_jwt_expired_assertion_is_rejected(emulator: Emulator) -> None:
    assertion = _assertion(
        emulator, emulator.production.integration_username, emulator.login_url, lifetime=-60
    )
    result = _jwt_token(emulator, assertion)
    assert result["error_description"] == "expired authorization code"


def test_jwt_signed_by_another_key_is_rejected(emulator: Emulator, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "other.pem"
    key_file.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assertion = _assertion(
        emulator,
        emulator.production.integration_username,
        emulator.login_url,
        key_file=str(key_file),
    )
    assert _jwt_token(emulator, assertion)["error_description"] == "invalid assertion"


def test_jwt_for_unapproved_user_is_rejected(emulator: Emulator) -> None:
    analyst = emulator.production.users[2]
    assertion = _assertion(emulator, analyst.username, emulator.login_url)
    result = _jwt_token(emulator, assertion)
    assert result["error_description"] == "user hasn't approved this consumer"


def test_jwt_on_sandbox_login_host_uses_sandbox_audience(emulator: Emulator) -> None:
    sandbox = emulator.sandbox
    assertion = _assertion(emulator, sandbox.integration_username, emulator.sandbox_login_url)
    result = _jwt_token(emulator, assertion, emulator.sandbox_login_url)
    assert result["status"] == 200
    assert result["instance_url"] == sandbox.instance_url


def test_client_credentials_only_on_my_domain(emulator: Emulator) -> None:
    session = trusting_session(emulator)
    form = {"grant_type": "client_credentials"}
    auth = (emulator.client_id, emulator.client_secret)
    on_login = session.post(f"{emulator.login_url}/services/oauth2/token", data=form, auth=auth)
    assert on_login.status_code == 400
    assert on_login.json() == {
        "error": "invalid_grant",
        "error_description": "request not supported on this domain",
    }
    org = emulator.production
    on_domain = session.post(f"{org.my_domain_url}/services/oauth2/token", data=form, auth=auth)
    assert on_domain.status_code == 200
    token = on_domain.json()
    assert "refresh_token" not in token
    assert token["issued_at"].isdigit()
    assert token["signature"]
    assert token["id"].endswith(org.integration_user_id)


def test_sandbox_login_connects_the_sandbox_org(emulator: Emulator) -> None:
    token = connect(emulator, sandbox=True)
    assert token["instance_url"] == emulator.sandbox.instance_url
    assert token["access_token"].startswith(emulator.sandbox.org_id[:15] + "!")
    assert token["id"].startswith(emulator.sandbox_login_url + "/id/")


def test_production_token_is_invalid_on_sandbox_host(emulator: Emulator, token: dict) -> None:
    response = trusting_session(emulator).get(
        f"{emulator.sandbox.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 401


def test_sandbox_user_cannot_log_in_on_production_host(emulator: Emulator) -> None:
    session = trusting_session(emulator)
    response = session.post(
        f"{emulator.login_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "username": emulator.sandbox.admin_username,
            "password": emulator.sandbox.admin_password,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }


@pytest.mark.parametrize("header", ["Bearer", "OAuth"])
def test_rest_accepts_bearer_and_oauth_schemes(
    emulator: Emulator, token: dict, header: str
) -> None:
    response = trusting_session(emulator).get(
        f"{token['instance_url']}/services/data/v59.0/limits",
        headers={"Authorization": f"{header} {token['access_token']}"},
    )
    assert response.status_code == 200


def test_token_without_api_scope_cannot_use_rest(emulator: Emulator) -> None:
    token = connect(emulator, scope="id refresh_token")
    response = trusting_session(emulator).get(
        f"{token['instance_url']}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 401
    assert response.json()[0]["message"] == "This session is not valid for use with the REST API"
