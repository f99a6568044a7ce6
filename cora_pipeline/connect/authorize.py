"""Connecting and disconnecting an org: the three OAuth flows and what happens after the token.

After any flow returns a token, :func:`establish_connection` reads the identity URL and the
Organization row. It rejects an org whose IsSandbox disagrees with the configuration, or whose Id
differs from the org already connected under that name. Then it stores the record and tokens.
These functions print nothing and read no input, so the command line and the web page share them.
"""

import hmac
import logging
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from cora_pipeline.config import OrgConfig
from cora_pipeline.connect import oauth
from cora_pipeline.connect.hints import APPROVE_UNINSTALLED_HINT, authorization_error
from cora_pipeline.connect.redaction import mask, register_secret
from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore, StoredTokens, utc_now
from cora_pipeline.errors import AuthorizationError, ConfigError, NotConnectedError

log = logging.getLogger(__name__)

# `api` for REST, `refresh_token` and its alias `offline_access` for a refresh token.
DEFAULT_SCOPES = ("api", "refresh_token", "offline_access")
# RFC 7636 allows 43 to 128 characters; 96 bytes of randomness give 128 base64url characters.
CODE_VERIFIER_BYTES = 96
# Salesforce authorization codes expire after 15 minutes; a pending authorization is no use later.
PENDING_LIFETIME_SECONDS = 15 * 60


@dataclass(frozen=True)
class PendingAuthorization:
    """A started web-server flow: the authorize URL to open and what the callback must match.

    ``code_verifier`` is the PKCE secret; it never leaves this process and is masked in the repr.
    """

    org: str
    url: str
    state: str
    redirect_uri: str
    login_url: str
    is_sandbox: bool
    code_verifier: str
    created_at: float

    def __repr__(self) -> str:
        return (
            f"PendingAuthorization(org={self.org!r}, state={self.state!r}, "
            f"redirect_uri={self.redirect_uri!r}, login_url={self.login_url!r}, "
            f"code_verifier={mask(self.code_verifier)})"
        )


def begin_authorization(
    org_config: OrgConfig,
    redirect_uri: str,
    *,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    prompt: str | None = None,
) -> PendingAuthorization:
    """Start the web-server flow with PKCE (S256) and a random ``state``.

    ``prompt`` is passed to Salesforce as is, for instance ``login`` to force a fresh login.
    """
    # The code exchange needs the client secret; fail now, not after the administrator approved.
    _ = org_config.client_secret
    authorize_url = oauth.endpoint(org_config.login_url, oauth.AUTHORIZE_PATH)
    code_verifier = secrets.token_urlsafe(CODE_VERIFIER_BYTES)
    register_secret(code_verifier)
    extra = {"prompt": prompt} if prompt else {}
    session = oauth.oauth_session(
        org_config,
        with_secret=False,
        scope=" ".join(scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    with session:
        url, state = session.create_authorization_url(
            authorize_url, state=secrets.token_urlsafe(32), code_verifier=code_verifier, **extra
        )
    return PendingAuthorization(
        org=org_config.name,
        url=url,
        state=state,
        redirect_uri=redirect_uri,
        login_url=org_config.login_url,
        is_sandbox=org_config.is_sandbox,
        code_verifier=code_verifier,
        created_at=time.time(),
    )


def complete_authorization(
    org_config: OrgConfig,
    pending: PendingAuthorization,
    callback_url: str,
    store: ConnectionStore,
) -> ConnectionRecord:
    """Finish the web-server flow from the full URL Salesforce redirected the browser to.

    Checks ``state``, explains an ``error`` parameter, exchanges the code (sending the PKCE
    verifier), then stores the connection.
    """
    if pending.org != org_config.name:
        raise AuthorizationError(
            f"this authorization was started for org {pending.org!r}, not {org_config.name!r}"
        )
    # The login host and the expected org kind are those the authorization started with.
    org_config = replace(org_config, login_url=pending.login_url, is_sandbox=pending.is_sandbox)
    params = parse_callback(callback_url)
    if (
        not ({"code", "error", "state"} & set(params))
        and "RemoteAccessErrorPage" not in callback_url
    ):
        raise AuthorizationError(
            f"the pasted text is not a callback URL for org {org_config.name!r}: it has "
            f"no code, state or error parameter; paste the whole URL the browser was redirected "
            f"to, starting with {pending.redirect_uri}"
        )
    if "error" in params or "RemoteAccessErrorPage" in callback_url:
        error = params.get("error") or "OAUTH_APPROVAL_ERROR_GENERIC"
        raise authorization_error(
            f"Salesforce did not authorize org {org_config.name!r}",
            error,
            params.get("error_description"),
            redirect_uri=pending.redirect_uri,
        )
    if not hmac.compare_digest(params.get("state", ""), pending.state):
        raise AuthorizationError(
            f"the callback for org {org_config.name!r} has state {params.get('state')!r}, "
            f"which does not match the authorization this process started",
            hint="Open the newest authorization URL, or start the connection again; the callback "
            "came from an older attempt or from another site.",
        )
    code = params.get("code")
    if not code:
        raise AuthorizationError(
            f"the callback URL for org {org_config.name!r} has no `code` parameter; paste the "
            f"whole URL the browser was redirected to, starting with {pending.redirect_uri}"
        )
    register_secret(code)
    if time.time() - pending.created_at > PENDING_LIFETIME_SECONDS:
        raise AuthorizationError(
            f"the authorization for org {org_config.name!r} was started more than 15 minutes "
            f"ago and its code has expired; start the connection again"
        )
    token = oauth.exchange_code(
        org_config,
        pending.login_url,
        code=code,
        redirect_uri=pending.redirect_uri,
        code_verifier=pending.code_verifier,
    )
    if not token.get("refresh_token"):
        _revoke_rejected(org_config, pending.login_url, token["access_token"])
        raise AuthorizationError(
            f"Salesforce returned no refresh token for org {org_config.name!r}, so the "
            f"connection would stop working when the access token expires",
            hint="Add 'Perform requests at any time (refresh_token, offline_access)' to the "
            "connected app's Selected OAuth Scopes, then connect again.",
        )
    return establish_connection(org_config, token, "web_server", store, login_url=pending.login_url)


def parse_callback(callback_url: str) -> dict[str, str]:
    """Return the query parameters of a callback URL, one value each."""
    query = urlsplit(callback_url.strip()).query
    return {name: values[0] for name, values in parse_qs(query).items()}


def connect_jwt(
    org_config: OrgConfig,
    store: ConnectionStore,
    *,
    username: str | None = None,
    private_key_file: str | None = None,
) -> ConnectionRecord:
    """Connect with the JWT bearer flow: no browser and no refresh token.

    The TokenManager signs a new assertion whenever the access token expires.
    """
    username = username or org_config.username
    private_key_file = private_key_file or org_config.private_key_file
    if not username or not private_key_file:
        raise ConfigError(
            f"org {org_config.name!r}: flow jwt needs a username and a private key file; set "
            f"username and private_key_file in the configuration or pass --username and "
            f"--private-key-file"
        )
    token = oauth.jwt_bearer_grant(org_config, org_config.login_url, username, private_key_file)
    return establish_connection(
        org_config,
        token,
        "jwt",
        store,
        login_url=org_config.login_url,
        private_key_file=private_key_file,
    )


def connect_client_credentials(org_config: OrgConfig, store: ConnectionStore) -> ConnectionRecord:
    """Connect with the client credentials flow, which Salesforce allows only on a My Domain host."""
    token = oauth.client_credentials_grant(org_config, org_config.login_url)
    return establish_connection(
        org_config, token, "client_credentials", store, login_url=org_config.login_url
    )


def establish_connection(
    org_config: OrgConfig,
    token: oauth.TokenResponse,
    flow: str,
    store: ConnectionStore,
    *,
    login_url: str,
    private_key_file: str | None = None,
) -> ConnectionRecord:
    """Check a fresh token's org and user, then store the connection.

    The new token is revoked before raising when the org is the wrong kind or a different org.
    """
    access_token = token["access_token"]
    try:
        identity = oauth.read_identity(org_config, token, org_config.api_version)
        organization = oauth.read_organization(org_config, token, org_config.api_version)
        _check_organization(org_config, token, identity, organization, store)
    except Exception:
        _revoke_rejected(org_config, login_url, token.get("refresh_token") or access_token)
        raise
    now = utc_now()
    record = ConnectionRecord(
        org=org_config.name,
        org_id=str(organization["Id"]),
        org_name=str(organization.get("Name") or ""),
        user_id=str(identity["user_id"]),
        username=str(identity["username"]),
        connected_at=now,
        is_sandbox=bool(organization.get("IsSandbox")),
        login_url=login_url,
        instance_url=str(token["instance_url"]).rstrip("/"),
        scopes=tuple(str(token.get("scope") or "").split()),
        flow=flow,
        instance_name=organization.get("InstanceName"),
        identity_url=str(token["id"]),
        last_refresh=now,
        private_key_file=private_key_file,
    )
    tokens = StoredTokens(access_token=access_token, refresh_token=token.get("refresh_token"))
    with store.lock(org_config.name):
        previous = store.load(org_config.name)
        record = store.save(record, tokens)
    if previous is not None:
        _revoke_replaced(org_config, previous[0], previous[1], tokens)
    log.info(
        "org %s connected: %s (%s, %s) as %s through the %s flow",
        record.org,
        record.org_name,
        record.org_id,
        record.environment,
        record.username,
        flow,
    )
    return record


def _check_organization(
    org_config: OrgConfig,
    token: oauth.TokenResponse,
    identity: dict[str, object],
    organization: dict[str, object],
    store: ConnectionStore,
) -> None:
    org_id = str(organization.get("Id") or "")
    url_org_id, _ = oauth.parse_identity_url(token["id"])
    if not org_id or not oauth.same_salesforce_id(org_id, url_org_id):
        raise AuthorizationError(
            f"org {org_config.name!r}: the Organization Id {org_id!r} differs from the org in "
            f"the token's identity URL {url_org_id!r}; the login host returned inconsistent data"
        )
    identity_org = str(identity.get("organization_id") or url_org_id)
    if not oauth.same_salesforce_id(identity_org, org_id):
        raise AuthorizationError(
            f"org {org_config.name!r}: the identity URL names org {identity_org}, but the "
            f"Organization query returned {org_id}"
        )
    is_sandbox = bool(organization.get("IsSandbox"))
    if is_sandbox != org_config.is_sandbox:
        requested = "a Sandbox" if org_config.is_sandbox else "a Production org"
        actual = "a Sandbox" if is_sandbox else "a Production org"
        fix = (
            "Log in to a Sandbox, or connect without --sandbox"
            if org_config.is_sandbox
            else "Log in to a Production org, or connect with --sandbox"
        )
        raise AuthorizationError(
            f"org {org_config.name!r} was requested as {requested}, but the login produced "
            f"{organization.get('Name')!r} ({org_id}), which is {actual}; nothing was stored",
            hint=f"{fix} (in the configuration file: environment: "
            f"{'sandbox' if is_sandbox else 'production'}).",
        )
    existing = store.get(org_config.name)
    if existing is not None and not oauth.same_salesforce_id(existing.org_id, org_id):
        raise AuthorizationError(
            f"org {org_config.name!r} is connected to Salesforce org {existing.org_id} "
            f"({existing.org_name}), but this login is for {org_id} "
            f"({organization.get('Name')}); an org name must keep its Salesforce org",
            hint=f"Run `cora disconnect {org_config.name}` first, or configure another org name.",
        )


def _revoke_rejected(org_config: OrgConfig, login_url: str, token: str) -> None:
    """Revoke a token that will not be stored, so it does not count against the user's grants."""
    revoked, reason = oauth.revoke_token(org_config, login_url, token)
    if not revoked:
        log.warning(
            "org %s: could not revoke the token of the rejected connection: %s",
            org_config.name,
            reason,
        )


def _revoke_replaced(
    org_config: OrgConfig,
    record: ConnectionRecord,
    old: StoredTokens,
    new: StoredTokens,
) -> None:
    """Revoke the refresh token a reconnection replaced: Salesforce keeps at most 5 grants per user
    and connected app and revokes the oldest beyond that, which might be a token still in use."""
    if not old.refresh_token or old.refresh_token == new.refresh_token:
        return
    revoked, reason = oauth.revoke_token(org_config, record.login_url, old.refresh_token)
    if not revoked:
        log.warning("org %s: could not revoke the replaced refresh token: %s", record.org, reason)


@dataclass(frozen=True)
class DisconnectResult:
    """The outcome of :func:`disconnect`. ``revoke_error`` is the reason Salesforce did not revoke."""

    record: ConnectionRecord
    revoked: bool
    revoke_error: str | None = None


def disconnect(
    org_config: OrgConfig, store: ConnectionStore, force: bool = False
) -> DisconnectResult:
    """Revoke the org's token at Salesforce, then delete its vault file.

    When revocation fails, raises :class:`AuthorizationError` with the reason and keeps the file,
    unless ``force`` is set, in which case the file is deleted anyway. A token that Salesforce
    reports as already invalid counts as revoked.
    """
    name = org_config.name
    with store.lock(name):
        loaded = store.load(name)
        if loaded is None:
            raise NotConnectedError(name)
        record, tokens = loaded
        token = tokens.refresh_token or tokens.access_token
        revoked = False
        reason: str | None = "no token is stored"
        if token:
            revoked, reason = oauth.revoke_token(org_config, record.login_url, token)
            if not revoked and reason and "invalid_token" in reason:
                log.info("org %s: Salesforce reports the token already invalid: %s", name, reason)
                revoked = True
        if not revoked and not force:
            raise AuthorizationError(
                f"org {name!r}: revoking the token at {record.login_url} failed: {reason}; the "
                f"local connection was kept",
                hint=f"Fix the cause and run `cora disconnect {name}` again, or run `cora "
                f"disconnect {name} --force` to delete it locally anyway (then revoke the token "
                f"in Salesforce: Setup > Connected Apps OAuth Usage).",
            )
        store.delete(name)
    if revoked:
        log.info("org %s disconnected; the token was revoked at %s", name, record.login_url)
    else:
        log.warning("org %s deleted locally without revocation: %s", name, reason)
    return DisconnectResult(
        record=record, revoked=revoked, revoke_error=None if revoked else reason
    )


AUTHORIZE_PAGE_ERROR = "OAUTH_APPROVAL_ERROR_GENERIC"


def check_authorize_page(html: str) -> None:
    """Raise the explained error when an authorize response is Salesforce's OAuth error page."""
    if AUTHORIZE_PAGE_ERROR in html:
        raise AuthorizationError(
            "Salesforce showed its OAuth error page (OAUTH_APPROVAL_ERROR_GENERIC) instead of "
            "redirecting back",
            error=AUTHORIZE_PAGE_ERROR,
            hint=APPROVE_UNINSTALLED_HINT,
        )
