"""Requests to Salesforce's OAuth endpoints, the identity URL and the Organization object.

authlib's ``OAuth2Session`` speaks the protocol. Salesforce sends no ``expires_in``, so authlib
never refreshes on its own; :class:`cora_pipeline.connect.tokens.TokenManager` refreshes after a
401 ``INVALID_SESSION_ID`` instead. Every request verifies TLS against ``OrgConfig.ca_file`` when one
is set, else against the system trust store.
"""

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from cora_pipeline.config import PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL, OrgConfig
from cora_pipeline.connect.hints import authorization_error
from cora_pipeline.connect.redaction import register_secret
from cora_pipeline.errors import (
    AuthorizationError,
    ConfigError,
    SalesforceAPIError,
    TransientAPIError,
)

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - an endpoint path, not a secret
REVOKE_PATH = "/services/oauth2/revoke"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce rejects a JWT bearer assertion whose exp is more than 3 minutes ahead.
JWT_LIFETIME_SECONDS = 180
HTTP_TIMEOUT_SECONDS = 30.0
SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
ORGANIZATION_SOQL = "SELECT Id, Name, IsSandbox, InstanceName FROM Organization"

TokenResponse = dict[str, Any]


def endpoint(login_url: str, path: str) -> str:
    if not login_url.startswith("https://"):
        raise ConfigError(
            f"login URL {login_url!r} must start with https://; set login_url to the org's "
            f"login host, such as https://login.salesforce.com"
        )
    return login_url.rstrip("/") + path


def sandbox_for_login_url(login_url: str) -> bool | None:
    """Return whether a login host implies a Sandbox org, or None when the host does not tell.

    test.salesforce.com and Sandbox My Domains (``*.sandbox.my.salesforce.com``) serve Sandboxes,
    login.salesforce.com serves Production orgs, and other My Domain hosts may serve either.
    """
    host = urlsplit(login_url).hostname or ""
    if login_url.rstrip("/") == SANDBOX_LOGIN_URL or host.endswith(".sandbox.my.salesforce.com"):
        return True
    if login_url.rstrip("/") == PRODUCTION_LOGIN_URL:
        return False
    return None


def verify_option(org_config: OrgConfig) -> str | bool:
    """Return the ``verify=`` value for requests: the configured CA bundle, else ``True``."""
    return org_config.ca_file or True


def oauth_session(
    org_config: OrgConfig,
    *,
    with_secret: bool = True,
    **kwargs: Any,
) -> OAuth2Session:
    """Build an authlib session for the org's connected app.

    When the configuration names a client secret, authlib sends it in an HTTP Basic header
    (``client_secret_basic``). Without one, the consumer key goes in the form body.
    """
    secret = org_config.client_secret if with_secret else None
    register_secret(secret)
    session = OAuth2Session(
        client_id=org_config.client_id,
        client_secret=secret,
        default_timeout=HTTP_TIMEOUT_SECONDS,
        **kwargs,
    )
    # NOTE: requests (2.34) lets $REQUESTS_CA_BUNDLE override Session.verify, so every call
    # below passes verify= explicitly as well.
    session.verify = verify_option(org_config)
    return session


def request_token(
    org_config: OrgConfig,
    action: str,
    call: Callable[[], Any],
    *,
    redirect_uri: str | None = None,
) -> TokenResponse:
    """Run one token endpoint request and turn each failure into a cora error.

    OAuth error bodies become :class:`AuthorizationError` with Salesforce's ``error`` and a hint.
    A 5xx status or an unreachable host becomes :class:`TransientAPIError`, which may pass.
    """
    try:
        token = dict(call())
    except AuthlibBaseError as exc:
        raise authorization_error(
            f"org {org_config.name!r}: {action} failed",
            exc.error,
            exc.description,
            redirect_uri=redirect_uri,
        ) from None
    except requests.HTTPError as exc:
        response = exc.response
        status = response.status_code if response is not None else None
        if status is not None and status < 500:
            error, description = _oauth_error_body(response)
            raise authorization_error(
                f"org {org_config.name!r}: {action} failed with HTTP {status}",
                error,
                description,
                redirect_uri=redirect_uri,
            ) from None
        raise TransientAPIError(
            f"org {org_config.name!r}: {action} failed with HTTP {status} at "
            f"{org_config.login_url}; try again later",
            org=org_config.name,
            status=status,
        ) from None
    except requests.exceptions.SSLError as exc:
        raise AuthorizationError(
            f"org {org_config.name!r}: {action} failed: {transport_failure(org_config, exc)}"
        ) from None
    except OSError as exc:
        # requests' errors are OSErrors; so is a CA bundle file that does not exist.
        raise TransientAPIError(
            f"org {org_config.name!r}: {action} failed: {transport_failure(org_config, exc)}",
            org=org_config.name,
        ) from None
    except ValueError as exc:
        raise AuthorizationError(
            f"org {org_config.name!r}: {action} failed: the token endpoint returned no JSON "
            f"object ({exc})"
        ) from None
    register_secret(token.get("access_token"))
    register_secret(token.get("refresh_token"))
    for required in ("access_token", "instance_url", "id"):
        if not token.get(required):
            raise AuthorizationError(
                f"org {org_config.name!r}: {action} returned a token response without "
                f"{required!r}; the login host {org_config.login_url} does not behave like "
                f"Salesforce"
            )
    return token


def _oauth_error_body(response: requests.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or None
    if isinstance(body, dict):
        return body.get("error"), body.get("error_description")
    return None, None


def exchange_code(
    org_config: OrgConfig,
    login_url: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> TokenResponse:
    session = oauth_session(org_config, redirect_uri=redirect_uri)
    with session:
        return request_token(
            org_config,
            "the authorization code exchange",
            lambda: session.fetch_token(
                endpoint(login_url, TOKEN_PATH),
                grant_type="authorization_code",
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                verify=verify_option(org_config),
            ),
            redirect_uri=redirect_uri,
        )


def refresh_grant(org_config: OrgConfig, login_url: str, refresh_token: str) -> TokenResponse:
    session = oauth_session(org_config)
    with session:
        return request_token(
            org_config,
            "the refresh token grant",
            lambda: session.refresh_token(
                endpoint(login_url, TOKEN_PATH),
                refresh_token=refresh_token,
                verify=verify_option(org_config),
            ),
        )


def build_jwt_assertion(
    org_config: OrgConfig, login_url: str, username: str, private_key_file: str
) -> str:
    """Sign the RS256 assertion of the JWT bearer flow: issuer the consumer key, subject the
    username, audience the login host, expiry 3 minutes ahead."""
    try:
        private_key = Path(private_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"org {org_config.name!r}: private_key_file {private_key_file} cannot be read "
            f"({exc.strerror}); point it at the PEM private key whose certificate is uploaded "
            f"to the connected app"
        ) from None
    # NOTE: Salesforce documents login.salesforce.com, test.salesforce.com or an Experience Cloud
    # site URL as the audience; whether it accepts a My Domain login URL here is unconfirmed.
    claims = {
        "iss": org_config.client_id,
        "sub": username,
        "aud": login_url.rstrip("/"),
        "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
    }
    try:
        assertion = jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigError(
            f"org {org_config.name!r}: private_key_file {private_key_file} is not a usable RSA "
            f"private key in PEM form ({type(exc).__name__})"
        ) from None
    register_secret(assertion)
    return assertion


def jwt_bearer_grant(
    org_config: OrgConfig, login_url: str, username: str, private_key_file: str
) -> TokenResponse:
    assertion = build_jwt_assertion(org_config, login_url, username, private_key_file)
    # The assertion authenticates the client, so no client secret is sent.
    session = oauth_session(org_config, with_secret=False)
    with session:
        return request_token(
            org_config,
            "the JWT bearer grant",
            lambda: session.fetch_token(
                endpoint(login_url, TOKEN_PATH),
                grant_type=JWT_BEARER_GRANT,
                assertion=assertion,
                verify=verify_option(org_config),
            ),
        )


def client_credentials_grant(org_config: OrgConfig, login_url: str) -> TokenResponse:
    if not org_config.client_secret_env:
        raise ConfigError(
            f"org {org_config.name!r}: flow client_credentials needs client_secret_env, the "
            f"environment variable holding the connected app's Consumer Secret"
        )
    session = oauth_session(org_config)
    with session:
        return request_token(
            org_config,
            "the client credentials grant",
            lambda: session.fetch_token(
                endpoint(login_url, TOKEN_PATH),
                grant_type="client_credentials",
                verify=verify_option(org_config),
            ),
        )


def revoke_token(org_config: OrgConfig, login_url: str, token: str) -> tuple[bool, str | None]:
    """Revoke a token at ``/services/oauth2/revoke``.

    Returns ``(True, None)`` on HTTP 200, else ``(False, reason)``. Revoking a refresh token also
    revokes the access tokens issued from it.
    """
    register_secret(token)
    session = oauth_session(org_config, with_secret=False)
    try:
        with session:
            response = session.revoke_token(
                endpoint(login_url, REVOKE_PATH), token=token, verify=verify_option(org_config)
            )
    except OSError as exc:
        return False, transport_failure(org_config, exc, login_url)
    if response.status_code == 200:
        return True, None
    error, description = _oauth_error_body(response)
    if error is None and "=" in response.text:
        # Salesforce has returned form-encoded error bodies from this endpoint.
        form = parse_qs(response.text)
        error = (form.get("error") or [None])[0]
        description = (form.get("error_description") or [None])[0]
    return False, f"HTTP {response.status_code} {error or ''}: {description or ''}".strip()


def transport_failure(org_config: OrgConfig, exc: OSError, url: str | None = None) -> str:
    """Describe a failure to reach a login host, naming ``ca_file`` when TLS trust was the cause."""
    url = url or org_config.login_url
    if isinstance(exc, requests.exceptions.SSLError) or "CA certificate bundle" in str(exc):
        trusted = org_config.ca_file or "the system's CA bundle"
        return (
            f"the TLS certificate of {url} could not be verified against {trusted} "
            f"({type(exc).__name__}: {exc}); set the org's ca_file to the CA that signed it"
        )
    return f"{url} is unreachable ({type(exc).__name__}: {exc})"


def parse_identity_url(identity_url: str) -> tuple[str, str]:
    """Return ``(org_id, user_id)`` from an identity URL ``https://host/id/<orgId>/<userId>``."""
    parts = [p for p in urlsplit(identity_url).path.split("/") if p]
    if len(parts) < 3 or parts[-3] != "id":
        raise AuthorizationError(
            f"the token response's identity URL {identity_url!r} does not have the form "
            f"https://<host>/id/<orgId>/<userId>"
        )
    return parts[-2], parts[-1]


def same_salesforce_id(a: str, b: str) -> bool:
    """Compare two Salesforce ids, either of which may be the 15- or the 18-character form."""
    return a[:15] == b[:15]


def _bearer_get(
    org_config: OrgConfig, url: str, access_token: str, params: dict[str, str] | None = None
) -> requests.Response:
    try:
        return requests.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            verify=verify_option(org_config),
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise TransientAPIError(
            f"org {org_config.name!r}: GET {url} failed ({type(exc).__name__}: {exc})",
            org=org_config.name,
            url=url,
        ) from None


def _api_error(org_config: OrgConfig, operation: str, response: requests.Response) -> Exception:
    code = message = None
    try:
        body = response.json()
        if isinstance(body, list) and body and isinstance(body[0], dict):
            code, message = body[0].get("errorCode"), body[0].get("message")
        elif isinstance(body, dict):
            code, message = body.get("error"), body.get("error_description")
    except ValueError:
        message = response.text[:200]
    error_class = TransientAPIError if response.status_code >= 500 else SalesforceAPIError
    return error_class(
        f"org {org_config.name!r}: {operation} failed with HTTP {response.status_code} "
        f"{code or ''}: {message or ''}".rstrip(),
        org=org_config.name,
        status=response.status_code,
        code=code,
        url=response.url,
    )


def read_identity(org_config: OrgConfig, token: TokenResponse, api_version: str) -> dict[str, Any]:
    """Read the identity URL of the token's user: ``user_id``, ``username``, ``organization_id``.

    Salesforce serves the identity URL only to tokens with the ``id``, ``profile``, ``email``,
    ``address``, ``phone`` or ``openid`` scope, so a 403 falls back to a SOQL query on User.
    """
    access_token = token["access_token"]
    org_id, user_id = parse_identity_url(token["id"])
    response = _bearer_get(org_config, token["id"], access_token)
    if response.status_code == 200:
        identity = response.json()
        return {
            "user_id": identity.get("user_id") or user_id,
            "username": identity.get("username") or identity.get("preferred_username") or "",
            "organization_id": identity.get("organization_id") or org_id,
        }
    if response.status_code != 403:
        raise _api_error(org_config, "reading the identity URL", response)
    # NOTE: the bundled emulator serves the identity URL to every token, so tests never run this
    # fallback.
    log.info("org %s: identity URL returned 403; reading the user with SOQL", org_config.name)
    if not SALESFORCE_ID.match(user_id):
        raise AuthorizationError(f"the identity URL's user id {user_id!r} is not a Salesforce id")
    records = query(
        org_config,
        token,
        api_version,
        f"SELECT Id, Username FROM User WHERE Id = '{user_id}'",  # noqa: S608 - checked above
        "querying the connected User",
    )
    username = records[0].get("Username", "") if records else ""
    return {"user_id": user_id, "username": username, "organization_id": org_id}


def query(
    org_config: OrgConfig, token: TokenResponse, api_version: str, soql: str, operation: str
) -> list[dict[str, Any]]:
    """Run one SOQL query that fits in a single page and return its records."""
    url = f"{token['instance_url'].rstrip('/')}/services/data/v{api_version}/query"
    response = _bearer_get(org_config, url, token["access_token"], {"q": soql})
    if response.status_code != 200:
        raise _api_error(org_config, operation, response)
    body = response.json()
    return list(body.get("records") or [])


def read_organization(
    org_config: OrgConfig, token: TokenResponse, api_version: str
) -> dict[str, Any]:
    """Query the org's Organization row: Id, Name, IsSandbox, InstanceName."""
    records = query(org_config, token, api_version, ORGANIZATION_SOQL, "querying Organization")
    if not records:
        raise SalesforceAPIError(
            f"org {org_config.name!r}: the Organization query returned no row; the connected "
            f"user needs the View Setup and Configuration permission",
            org=org_config.name,
            sobject="Organization",
        )
    return records[0]
