"""Helpers that drive the emulator with unmodified requests, authlib and simple-salesforce."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from simple_salesforce import Salesforce
from simple_salesforce.api import SFType
from simple_salesforce.exceptions import SalesforceError

from cora_pipeline.emulator import Emulator

CALLBACK = "http://127.0.0.1:1717/OauthRedirect"


def trusting_session(emulator: Emulator) -> requests.Session:
    """A requests session that trusts only the emulator's CA.

    trust_env is off because REQUESTS_CA_BUNDLE in the environment would override ``verify``.
    """
    session = requests.Session()
    session.verify = emulator.ca_file
    session.trust_env = False
    return session


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[values["name"] or ""] = values.get("value") or ""


def hidden_fields(page: str) -> dict[str, str]:
    parser = _FormParser()
    parser.feed(page)
    return parser.fields


def browser_authorize(
    emulator: Emulator, authorize_url: str, username: str, password: str, decision: str = "approve"
) -> requests.Response:
    """Log in and submit the consent page like a browser; return the final redirect response."""
    browser = trusting_session(emulator)
    login_page = browser.get(authorize_url, allow_redirects=False)
    assert login_page.status_code == 200, login_page.text
    base = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    form = hidden_fields(login_page.text)
    form.update({"username": username, "password": password})
    consent = browser.post(f"{base}/services/oauth2/authorize", data=form, allow_redirects=False)
    assert consent.status_code == 200, consent.text
    answer = hidden_fields(consent.text)
    answer["action"] = decision
    return browser.post(f"{base}/services/oauth2/authorize", data=answer, allow_redirects=False)


def oauth_client(emulator: Emulator, scope: str = "api refresh_token") -> OAuth2Session:
    client = OAuth2Session(
        emulator.client_id,
        emulator.client_secret,
        scope=scope,
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    )
    client.verify = emulator.ca_file
    client.trust_env = False
    return client


def connect(
    emulator: Emulator,
    sandbox: bool = False,
    scope: str = "api refresh_token",
    client: OAuth2Session | None = None,
) -> dict[str, Any]:
    """Run the web-server flow with PKCE through the login and consent pages; return the token."""
    login_url = emulator.sandbox_login_url if sandbox else emulator.login_url
    org = emulator.sandbox if sandbox else emulator.production
    client = client or oauth_client(emulator, scope)
    verifier = generate_token(48)
    url, _state = client.create_authorization_url(
        f"{login_url}/services/oauth2/authorize", code_verifier=verifier
    )
    final = browser_authorize(emulator, url, org.admin_username, org.admin_password)
    assert final.status_code == 302, final.text
    token = client.fetch_token(
        f"{login_url}/services/oauth2/token",
        authorization_response=final.headers["Location"],
        code_verifier=verifier,
    )
    return dict(token)


def salesforce(emulator: Emulator, token: dict[str, Any], version: str = "59.0") -> Salesforce:
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=trusting_session(emulator),
        version=version,
    )


def query_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def error_body(error: SalesforceError) -> list[dict[str, Any]]:
    """Return the parsed REST error array a simple-salesforce exception carries."""
    return cast(list[dict[str, Any]], error.content)


def sobject(sf: Salesforce, name: str) -> SFType:
    """Return simple-salesforce's handle for one sObject type (typed for mypy)."""
    return cast(SFType, getattr(sf, name))
