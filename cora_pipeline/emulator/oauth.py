"""The OAuth 2.0 authorization server of the emulated login hosts and My Domain hosts.

Tokens are kept under their SHA-256 digests, so neither memory dumps of the state nor the
state file contain a usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

import jwt

from . import pages
from .http import JSON_TYPE, NO_CACHE, Request, Response, html_response, json_response, redirect

if TYPE_CHECKING:
    from .emulator import Emulator, Host
    from .org import EmulatedOrg, OrgUser

logger = logging.getLogger(__name__)

# Scopes a connected app can request (Salesforce's names).
KNOWN_SCOPES = frozenset(
    {
        "api",
        "refresh_token",
        "offline_access",
        "id",
        "openid",
        "full",
        "web",
        "profile",
        "email",
        "address",
        "phone",
        "chatter_api",
        "visualforce",
        "custom_permissions",
        "wave_api",
        "eclair_api",
        "pardot_api",
        "lightning",
        "content",
        "cdp_api",
    }
)
DEFAULT_SCOPES = ("api", "id", "refresh_token")
# Any of these scopes grants the identity URL and userinfo; api alone does not.
IDENTITY_SCOPES = frozenset({"id", "openid", "profile", "email", "address", "phone", "full"})
CODE_LIFETIME = timedelta(minutes=15)
# The JWT bearer flow rejects assertions whose exp lies more than 3 minutes ahead.
MAX_ASSERTION_LIFETIME = 180
_CLOCK_SKEW = 5


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class AccessGrant:
    """An access token, stored under its digest."""

    org_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    issued_at_ms: int
    expires_at: str | None  # org-clock ISO timestamp, None when tokens never expire
    refresh_digest: str | None = None


@dataclass
class RefreshGrant:
    """A refresh token: one approval of the app by a user (at most five per user per app)."""

    org_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    created_ms: int


@dataclass
class AuthorizationCode:
    org_id: str
    user_id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires_at: float  # epoch seconds on the org clock, so advance_clock() ages codes


@dataclass
class LoginTicket:
    """Proof that a browser logged in on the authorize page, carried into the consent form."""

    org_id: str
    user_id: str
    params: dict[str, str]
    expires_at: float


@dataclass
class TokenStore:
    access: dict[str, AccessGrant] = field(default_factory=dict)
    refresh: dict[str, RefreshGrant] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "access": {k: asdict(v) for k, v in self.access.items()},
            "refresh": {k: asdict(v) for k, v in self.refresh.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenStore:
        return cls(
            {k: AccessGrant(**v) for k, v in data.get("access", {}).items()},
            {k: RefreshGrant(**v) for k, v in data.get("refresh", {}).items()},
        )


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class OAuthServer:
    """Authorize, token, revoke, userinfo and identity endpoints for every emulated host."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.settings = emulator.settings
        self.tokens = TokenStore()
        self._codes: dict[str, AuthorizationCode] = {}
        self._tickets: dict[str, LoginTicket] = {}
        self._lock = threading.RLock()
        for org in (emulator.production, emulator.sandbox):
            org.revoke_refresh_tokens = (lambda o: lambda: self.revoke_org(o))(org)

    # ---- lookups

    def authenticate(self, org: EmulatedOrg, authorization: str | None) -> AccessGrant | None:
        """Return the grant of a valid bearer token for ``org``, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        with self._lock:
            grant = self.tokens.access.get(digest(token.strip()))
        if grant is None or grant.org_id != org.org_id:
            return None
        if grant.expires_at is not None and org.clock.now() >= datetime.fromisoformat(
            grant.expires_at
        ):
            return None
        return grant

    def _grant_for_token(self, token: str) -> tuple[AccessGrant | None, EmulatedOrg | None]:
        with self._lock:
            grant = self.tokens.access.get(digest(token))
        if grant is None:
            return None, None
        org = self.emulator.org_by_id(grant.org_id)
        if grant.expires_at is not None and org.clock.now() >= datetime.fromisoformat(
            grant.expires_at
        ):
            return None, None
        return grant, org

    def _check_client(self, client_id: str | None) -> None:
        if client_id != self.emulator.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")

    # ---- issuing

    def _issue(
        self,
        org: EmulatedOrg,
        user: OrgUser,
        host: Host,
        scopes: list[str],
        grant_type: str,
        nonce: str | None = None,
        refresh_digest: str | None = None,
        new_refresh: bool = False,
    ) -> dict[str, Any]:
        """Store a new access token (and a refresh token when asked) and build the response.

        Keys follow the order of a real authorization-code response. JWT bearer responses
        leave out ``signature`` and ``issued_at``, as the sample in Salesforce's docs does.
        """
        issued_ms = int(time.time() * 1000)
        access_token = f"{org.org_id15}!{_b64url(secrets.token_bytes(72))}"
        lifetime = self.settings.access_token_lifetime
        expires_at = None
        if lifetime is not None:
            expires_at = (org.clock.now() + timedelta(seconds=lifetime)).isoformat()

        refresh_token = None
        if new_refresh:
            refresh_token = "5Aep861" + _b64url(secrets.token_bytes(60))
            refresh_digest = digest(refresh_token)
            self._add_refresh(
                refresh_digest,
                RefreshGrant(org.org_id, user.user_id, self.emulator.client_id, scopes, issued_ms),
            )
        with self._lock:
            self.tokens.access[digest(access_token)] = AccessGrant(
                org.org_id,
                user.user_id,
                self.emulator.client_id,
                scopes,
                issued_ms,
                expires_at,
                refresh_digest,
            )

        identity = f"{self.emulator.login_url_for(org)}/id/{org.org_id}/{user.user_id}"
        # NOTE: Salesforce documents the signature as an HMAC-SHA256 of the identity URL and
        # issued_at keyed by the client secret; the exact concatenation is unconfirmed.
        signature = base64.b64encode(
            hmac.new(
                self.emulator.client_secret.encode(),
                (identity + str(issued_ms)).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()

        payload: dict[str, Any] = {"access_token": access_token}
        if refresh_token:
            payload["refresh_token"] = refresh_token
        if grant_type != "jwt":
            payload["signature"] = signature
        payload["scope"] = " ".join(scopes)
        if "openid" in scopes:
            payload["id_token"] = self._id_token(org, user, host, nonce)
        payload["instance_url"] = org.instance_url
        payload["id"] = identity
        payload["token_type"] = "Bearer"  # noqa: S105 - the token type name, not a secret
        if grant_type != "jwt":
            payload["issued_at"] = str(issued_ms)
        return payload

    def _add_refresh(self, refresh_digest: str, grant: RefreshGrant) -> None:
        with self._lock:
            self.tokens.refresh[refresh_digest] = grant
            same = sorted(
                (
                    (d, g)
                    for d, g in self.tokens.refresh.items()
                    if g.user_id == grant.user_id
                    and g.client_id == grant.client_id
                    and g.org_id == grant.org_id
                ),
                key=lambda item: item[1].created_ms,
            )
            excess = len(same) - self.settings.max_approvals_per_user
            for old_digest, _ in same[: max(0, excess)]:
                # Salesforce revokes the oldest approval once a user exceeds the per-app cap.
                self._revoke_refresh(old_digest)

    def _revoke_refresh(self, refresh_digest: str) -> None:
        with self._lock:
            self.tokens.refresh.pop(refresh_digest, None)
            for access_digest in [
                d for d, g in self.tokens.access.items() if g.refresh_digest == refresh_digest
            ]:
                del self.tokens.access[access_digest]

    def revoke_org(self, org: EmulatedOrg) -> None:
        with self._lock:
            for refresh_digest in [
                d for d, g in self.tokens.refresh.items() if g.org_id == org.org_id
            ]:
                self._revoke_refresh(refresh_digest)

    def _id_token(self, org: EmulatedOrg, user: OrgUser, host: Host, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": host.base_url,
            "sub": f"{host.base_url}/id/{org.org_id}/{user.user_id}",
            "aud": self.emulator.client_id,
            "iat": now,
            "exp": now + 300,
            "email": user.email,
            "preferred_username": user.username,
            "name": user.name,
            "given_name": user.first_name,
            "family_name": user.last_name,
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(
            claims,
            self.emulator.signing_key_pem,
            algorithm="RS256",
            headers={"kid": self.emulator.signing_key_id},
        )

    # ---- authorize

    def authorize(self, request: Request, host: Host) -> Response:
        params = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST":
            params.update(request.form())
        org = host.org_for_login
        client_id = params.get("client_id")
        redirect_uri = params.get("redirect_uri")
        if client_id != self.emulator.client_id:
            return self._error_page(host, "invalid_client_id", "client identifier invalid")
        if not redirect_uri:
            return self._error_page(host, "redirect_uri_missing", "redirect_uri must be provided")
        if redirect_uri not in self.settings.callback_urls:
            return self._error_page(
                host, "redirect_uri_mismatch", "redirect_uri must match configuration"
            )
        state = params.get("state")

        def fail(error: str, description: str) -> Response:
            query = {"error": error, "error_description": description}
            if state is not None:
                query["state"] = state
            return redirect(_add_query(redirect_uri, query))

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "response type not supported")
        scopes = params.get("scope", "").split() or list(DEFAULT_SCOPES)
        if any(scope not in KNOWN_SCOPES for scope in scopes):
            return fail("invalid_scope", "the requested scope is not allowed")
        method = params.get("code_challenge_method")
        if params.get("code_challenge") and method not in (None, "", "S256", "plain"):
            return fail("invalid_request", "invalid code_challenge_method")
        action = params.get("action")
        prompt = set(params.get("prompt", "").split())

        if action is None:
            if self.settings.auto_approve and "login" not in prompt:
                return self._approve(org, org.admin_user, params, redirect_uri, state, scopes)
            if params.get("immediate") == "true":
                return fail("immediate_unsuccessful", "immediate unsuccessful")
            return html_response(200, pages.login_page(params, error=None))
        if action == "login":
            user = org.user_by_username(params.get("username", ""))
            if user is None or not hmac.compare_digest(user.password, params.get("password", "")):
                return html_response(
                    200,
                    pages.login_page(
                        params,
                        error="Please check your username and password. If you still "
                        "can't log in, contact your Salesforce administrator.",
                    ),
                )
            ticket = secrets.token_urlsafe(24)
            hidden = {
                k: v
                for k, v in params.items()
                if k not in ("username", "password", "action", "ticket")
            }
            with self._lock:
                self._tickets[ticket] = LoginTicket(
                    org.org_id, user.user_id, hidden, time.time() + 600
                )
            # NOTE: Salesforce skips this page for a user who already approved the app (unless
            # prompt=consent); the emulator always shows it, so deny paths stay testable.
            return html_response(200, pages.consent_page(hidden, ticket, user.username))
        with self._lock:
            login = self._tickets.pop(params.get("ticket", ""), None)
        if login is None or login.expires_at < time.time() or login.org_id != org.org_id:
            return html_response(
                200,
                pages.login_page(params, error="Your session has expired. Please log in again."),
            )
        if action == "deny":
            return fail("access_denied", "end-user denied authorization")
        if action != "approve":
            return fail("invalid_request", f"unknown action {action}")
        user = org.user_by_id(login.user_id)
        assert user is not None
        return self._approve(org, user, login.params, redirect_uri, state, scopes)

    def _approve(
        self,
        org: EmulatedOrg,
        user: OrgUser,
        params: dict[str, str],
        redirect_uri: str,
        state: str | None,
        scopes: list[str],
    ) -> Response:
        code = "aPrx" + _b64url(secrets.token_bytes(48))
        with self._lock:
            self._codes[digest(code)] = AuthorizationCode(
                org.org_id,
                user.user_id,
                self.emulator.client_id,
                redirect_uri,
                scopes,
                params.get("code_challenge") or None,
                params.get("code_challenge_method"),
                params.get("nonce"),
                (org.clock.now() + CODE_LIFETIME).timestamp(),
            )
        query = {"code": code}
        if state is not None:
            query["state"] = state
        return redirect(_add_query(redirect_uri, query))

    def _error_page(self, host: Host, error: str, description: str) -> Response:
        # Salesforce cannot redirect back, so the browser lands on its own error page, with
        # the reason in that page's query string.
        query = urlencode({"error": error, "error_description": description})
        return redirect(f"{host.base_url}/setup/secur/RemoteAccessErrorPage.apexp?{query}")

    def error_page(self, request: Request) -> Response:
        # NOTE: the real page's status code is not documented; 400 is the likely one.
        return html_response(
            400,
            pages.error_page(request.arg("error") or "", request.arg("error_description") or ""),
        )

    # ---- token

    def token(self, request: Request, host: Host) -> Response:
        form = request.form()
        wants_urlencoded = form.get("format") == "urlencoded" or (
            "application/x-www-form-urlencoded" in (request.header("accept") or "")
        )
        try:
            client_id, client_secret = self._client_credentials(request, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant type is missing")
            if grant_type == "authorization_code":
                payload = self._grant_code(form, host, client_id, client_secret)
            elif grant_type == "refresh_token":
                payload = self._grant_refresh(form, host, client_id, client_secret)
            elif grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                payload = self._grant_jwt(form, host)
            elif grant_type == "client_credentials":
                payload = self._grant_client_credentials(host, client_id, client_secret)
            elif grant_type == "password":
                payload = self._grant_password(form, host, client_id, client_secret)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as error:
            logger.info("token request on %s rejected: %s", host.label, error.error)
            return _oauth_body(
                error.status,
                {"error": error.error, "error_description": error.description},
                wants_urlencoded,
            )
        return _oauth_body(200, payload, wants_urlencoded)

    def _client_credentials(
        self, request: Request, form: dict[str, str]
    ) -> tuple[str | None, str | None]:
        authorization = request.header("authorization") or ""
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, client_secret = decoded.partition(":")
            return unquote(client_id), unquote(client_secret)
        return form.get("client_id"), form.get("client_secret")

    def _check_secret(self, client_secret: str | None, required: bool) -> None:
        if client_secret is None:
            if required:
                raise OAuthError("invalid_client", "invalid client credentials")
            return
        if not hmac.compare_digest(client_secret, self.emulator.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _grant_code(
        self, form: dict[str, str], host: Host, client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        self._check_client(client_id)
        with self._lock:
            code = self._codes.pop(digest(form.get("code", "")), None)
        if code is None:
            raise OAuthError("invalid_grant", "invalid authorization code")
        if code.expires_at < self.emulator.org_by_id(code.org_id).clock.now().timestamp():
            raise OAuthError("invalid_grant", "expired authorization code")
        org = self.emulator.org_by_id(code.org_id)
        if host.org_for_login is not org:
            raise OAuthError("invalid_grant", "invalid authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")

        verifier = form.get("code_verifier")
        if code.code_challenge:
            if not verifier:
                raise OAuthError("invalid_grant", "invalid code verifier")
            if code.code_challenge_method in (None, "", "S256"):
                computed = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
            else:
                computed = verifier
            if not hmac.compare_digest(computed, code.code_challenge):
                raise OAuthError("invalid_request", "invalid code verifier")
        else:
            # A web-server flow without PKCE must prove the client with its secret.
            self._check_secret(client_secret, required=True)
        self._check_secret(client_secret, required=False)

        user = org.user_by_id(code.user_id)
        assert user is not None
        offline = "refresh_token" in code.scopes or "offline_access" in code.scopes
        return self._issue(
            org, user, host, code.scopes, "authorization_code", code.nonce, new_refresh=offline
        )

    def _grant_refresh(
        self, form: dict[str, str], host: Host, client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        self._check_client(client_id)
        self._check_secret(client_secret, required=False)
        refresh_digest = digest(form.get("refresh_token", ""))
        with self._lock:
            grant = self.tokens.refresh.get(refresh_digest)
        if grant is None:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        org = self.emulator.org_by_id(grant.org_id)
        if host.org_for_login is not org:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        user = org.user_by_id(grant.user_id)
        assert user is not None
        if self.settings.rotate_refresh_tokens:
            self._revoke_refresh(refresh_digest)
            return self._issue(org, user, host, grant.scopes, "refresh_token", new_refresh=True)
        return self._issue(
            org, user, host, grant.scopes, "refresh_token", refresh_digest=refresh_digest
        )

    def _grant_jwt(self, form: dict[str, str], host: Host) -> dict[str, Any]:
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "invalid assertion")
        if unverified.get("iss") != self.emulator.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")

        org = host.org_for_login
        allowed_audiences = {self.emulator.login_url_for(org), org.instance_url}
        if unverified.get("aud") not in allowed_audiences:
            raise OAuthError("invalid_grant", "audience is invalid")

        try:
            claims = jwt.decode(
                assertion,
                self.emulator.jwt_public_key_pem,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None

        exp = claims.get("exp")
        # Assertions are checked against wall time, the clock the client signs with, so tests
        # that advance an org's clock can still use the JWT bearer flow.
        now = time.time()
        if not isinstance(exp, int | float):
            raise OAuthError("invalid_grant", "invalid assertion")
        if exp < now - _CLOCK_SKEW:
            raise OAuthError("invalid_grant", "expired authorization code")
        if exp > now + MAX_ASSERTION_LIFETIME + _CLOCK_SKEW:
            # NOTE: Salesforce's error text for an exp too far ahead is undocumented.
            raise OAuthError("invalid_grant", "invalid assertion")

        user = org.user_by_username(str(claims.get("sub", "")))
        if user is None or not (user.preauthorized or self._has_approval(org, user)):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self._issue(org, user, host, ["api", "id"], "jwt")

    def _has_approval(self, org: EmulatedOrg, user: OrgUser) -> bool:
        with self._lock:
            return any(
                g.org_id == org.org_id and g.user_id == user.user_id
                for g in self.tokens.refresh.values()
            )

    def _grant_client_credentials(
        self, host: Host, client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        if host.org is None:
            raise OAuthError("invalid_grant", "request not supported on this domain")
        self._check_client(client_id)
        self._check_secret(client_secret, required=True)
        org = host.org
        return self._issue(org, org.integration_user, host, ["api", "id"], "client_credentials")

    def _grant_password(
        self, form: dict[str, str], host: Host, client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        self._check_client(client_id)
        self._check_secret(client_secret, required=True)
        org = host.org_for_login
        user = org.user_by_username(form.get("username", ""))
        if user is None or not hmac.compare_digest(form.get("password", ""), user.password):
            raise OAuthError("invalid_grant", "authentication failure")
        return self._issue(org, user, host, ["api", "id"], "password")

    # ---- revoke, userinfo, identity

    def revoke(self, request: Request) -> Response:
        token = request.form().get("token") or request.arg("token") or ""
        refresh_digest = digest(token)
        with self._lock:
            if refresh_digest in self.tokens.refresh:
                self._revoke_refresh(refresh_digest)
                return Response(200, b"", {"Cache-Control": NO_CACHE})
            if self.tokens.access.pop(refresh_digest, None) is not None:
                return Response(200, b"", {"Cache-Control": NO_CACHE})
        wants_urlencoded = "json" not in (request.header("accept") or "")
        return _oauth_body(
            400,
            {"error": "invalid_token", "error_description": "Token was invalid"},
            wants_urlencoded,
        )

    def _bearer(self, request: Request) -> tuple[AccessGrant, EmulatedOrg] | None:
        authorization = request.header("authorization") or ""
        token = ""
        if authorization.lower().startswith(("bearer ", "oauth ")):
            token = authorization.split(" ", 1)[1].strip()
        token = token or request.arg("oauth_token") or ""
        grant, org = self._grant_for_token(token)
        if grant is None or org is None:
            return None
        return grant, org

    def userinfo(self, request: Request, host: Host) -> Response:
        found = self._bearer(request)
        if found is None:
            return _bad_token()
        grant, org = found
        if not IDENTITY_SCOPES & set(grant.scopes):
            return _insufficient_scope()
        user = org.user_by_id(grant.user_id)
        assert user is not None
        base = self.emulator.login_url_for(org)
        info = {
            "sub": f"{base}/id/{org.org_id}/{user.user_id}",
            "user_id": user.user_id,
            "organization_id": org.org_id,
            "preferred_username": user.username,
            "nickname": user.username.split("@")[0],
            "name": user.name,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "zoneinfo": "Etc/UTC",
            "photos": {
                "picture": f"{org.instance_url}/img/userprofile/default_profile_200.png",
                "thumbnail": f"{org.instance_url}/img/userprofile/default_profile_45.png",
            },
            "profile": f"{org.instance_url}/{user.user_id}",
            "picture": f"{org.instance_url}/img/userprofile/default_profile_200.png",
            "address": {"country": "US"},
            "is_salesforce_integration_user": user is org.integration_user,
            "urls": _urls(org, request.arg("version")),
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "updated_at": "2024-01-01T00:00:00Z",
            "is_app_installed": True,
        }
        return json_response(200, info)

    def identity(self, request: Request, org_id: str, user_id: str) -> Response:
        found = self._bearer(request)
        if found is None:
            return _bad_token()
        grant, org = found
        if not IDENTITY_SCOPES & set(grant.scopes):
            return _insufficient_scope()
        if org.org_id != org_id or grant.user_id != user_id:
            return json_response(403, "Bad_Id")
        user = org.user_by_id(user_id)
        assert user is not None
        identity = {
            "id": f"{self.emulator.login_url_for(org)}/id/{org.org_id}/{user.user_id}",
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": org.org_id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.name,
            "email": user.email,
            "email_verified": True,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "timezone": "Etc/UTC",
            "photos": {
                "picture": f"{org.instance_url}/img/userprofile/default_profile_200.png",
                "thumbnail": f"{org.instance_url}/img/userprofile/default_profile_45.png",
            },
            "addr_street": None,
            "addr_city": None,
            "addr_state": None,
            "addr_country": "US",
            "addr_zip": None,
            "mobile_phone": None,
            "mobile_phone_verified": False,
            "is_lightning_login_user": False,
            "status": {"created_date": None, "body": None},
            "urls": _urls(org, request.arg("version")),
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "last_modified_date": "2024-01-01T00:00:00.000+0000",
            "is_app_installed": True,
        }
        return json_response(200, identity)

    def discovery(self, host: Host) -> Response:
        base = host.base_url
        return json_response(
            200,
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/services/oauth2/authorize",
                "token_endpoint": f"{base}/services/oauth2/token",
                "revocation_endpoint": f"{base}/services/oauth2/revoke",
                "userinfo_endpoint": f"{base}/services/oauth2/userinfo",
                "jwks_uri": f"{base}/id/keys",
                "registration_endpoint": f"{base}/services/oauth2/register",
                "introspection_endpoint": f"{base}/services/oauth2/introspect",
                "scopes_supported": sorted(KNOWN_SCOPES),
                "response_types_supported": ["code", "token", "token id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "display_values_supported": ["page", "popup", "touch"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "claims_supported": [
                    "active",
                    "address",
                    "email",
                    "email_verified",
                    "family_name",
                    "given_name",
                    "is_app_installed",
                    "language",
                    "locale",
                    "name",
                    "nickname",
                    "organization_id",
                    "phone_number",
                    "phone_number_verified",
                    "photos",
                    "picture",
                    "preferred_username",
                    "profile",
                    "sub",
                    "updated_at",
                    "urls",
                    "user_id",
                    "user_type",
                    "zoneinfo",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
            },
        )

    def jwks(self) -> Response:
        return json_response(200, {"keys": [self.emulator.signing_jwk]})

    # ---- persistence

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self.tokens.to_json()

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.tokens = TokenStore.from_json(data)


def _urls(org: EmulatedOrg, version: str | None) -> dict[str, str]:
    v = version or "{version}"
    base = org.instance_url
    return {
        "enterprise": f"{base}/services/Soap/c/{v}/{org.org_id}",
        "metadata": f"{base}/services/Soap/m/{v}/{org.org_id}",
        "partner": f"{base}/services/Soap/u/{v}/{org.org_id}",
        "rest": f"{base}/services/data/v{v}/",
        "sobjects": f"{base}/services/data/v{v}/sobjects/",
        "search": f"{base}/services/data/v{v}/search/",
        "query": f"{base}/services/data/v{v}/query/",
        "recent": f"{base}/services/data/v{v}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{v}/{org.org_id}",
        "tooling_rest": f"{base}/services/data/v{v}/tooling/",
        "profile": f"{base}/{org.admin_user_id}",
        "feeds": f"{base}/services/data/v{v}/chatter/feeds",
        "groups": f"{base}/services/data/v{v}/chatter/groups",
        "users": f"{base}/services/data/v{v}/chatter/users",
        "feed_items": f"{base}/services/data/v{v}/chatter/feed-items",
        "feed_elements": f"{base}/services/data/v{v}/chatter/feed-elements",
        "custom_domain": base,
    }


def _bad_token() -> Response:
    # The identity URL and userinfo reject a bad token with 403 and a bare JSON string.
    # NOTE: the exact body "Bad_OAuth_Token" is unconfirmed.
    return json_response(403, "Bad_OAuth_Token")


def _insufficient_scope() -> Response:
    # NOTE: the body Salesforce sends for a token without an identity scope is unconfirmed.
    return json_response(403, "Insufficient_Scope")


def _oauth_body(status: int, payload: dict[str, Any], urlencoded: bool) -> Response:
    if urlencoded:
        return Response(
            status,
            urlencode(payload).encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                "Cache-Control": NO_CACHE,
            },
        )
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": JSON_TYPE, "Cache-Control": NO_CACHE})


def _add_query(url: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return url + separator + urlencode(params)
