"""The access token every Salesforce call uses, and its single-flight refresh.

Salesforce sends no expiry with its tokens, so a caller uses :meth:`TokenManager.current` until a
call returns 401 ``INVALID_SESSION_ID``, then calls :meth:`TokenManager.refresh` with the token that
failed and retries once. Refreshes of one org are serialized by a lock file under the vault's home,
across threads and processes. The caller that gets the lock second finds a newer token already stored
and returns it without calling Salesforce. So two Dagster step processes never spend the same refresh
token, which Salesforce rejects the second time when refresh-token rotation is on.
"""

import logging
import shlex
from dataclasses import dataclass, replace

from cora_pipeline.config import OrgConfig
from cora_pipeline.connect import oauth
from cora_pipeline.connect.hints import GENERIC_HINT, explain
from cora_pipeline.connect.redaction import install_redaction, mask, register_secret
from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore, StoredTokens, utc_now
from cora_pipeline.errors import AuthorizationError, NotConnectedError, ReauthorizationRequired

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessToken:
    """An access token and the REST host it is valid for."""

    access_token: str
    instance_url: str
    org: str
    org_id: str
    api_version: str

    def __post_init__(self) -> None:
        register_secret(self.access_token)

    def __repr__(self) -> str:
        return (
            f"AccessToken(org={self.org!r}, instance_url={self.instance_url!r}, "
            f"access_token={mask(self.access_token)})"
        )

    @property
    def authorization_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def reauthorization_command(org_config: OrgConfig, record: ConnectionRecord | None = None) -> str:
    """Return the command that connects the org again the way it was connected."""
    parts = ["cora", "connect", org_config.name]
    if record is not None:
        is_sandbox = org_config.is_sandbox
        if record.login_url != org_config.login_url:
            parts += ["--login-url", record.login_url]
            implied = oauth.sandbox_for_login_url(record.login_url)
            is_sandbox = is_sandbox if implied is None else implied
        if record.is_sandbox and not is_sandbox:
            parts.append("--sandbox")
        flow = record.flow
        if flow != org_config.flow:
            parts += ["--flow", flow.replace("_", "-")]
        if flow == "jwt" and record.username != org_config.username:
            parts += ["--username", record.username]
        if flow == "jwt" and record.private_key_file not in (None, org_config.private_key_file):
            parts += ["--private-key-file", str(record.private_key_file)]
    return shlex.join(parts)


class TokenManager:
    """Hands out the org's stored access token and refreshes it when Salesforce rejects it.

    Holds no token in memory between calls: each call reads the vault, so a token refreshed by
    another process is picked up at once.
    """

    def __init__(
        self, org_config: OrgConfig, store: ConnectionStore, *, lock_timeout: float = 120.0
    ) -> None:
        self.org_config = org_config
        self.store = store
        self.lock_timeout = lock_timeout
        # Dagster runs steps in fresh processes; each one that handles tokens masks them in logs.
        install_redaction()

    def __repr__(self) -> str:
        return f"TokenManager(org={self.org_config.name!r})"

    def current(self) -> AccessToken:
        """Return the stored access token, fetching one first if none is stored."""
        record, tokens = self._load()
        if tokens.access_token:
            return self._access_token(record, tokens.access_token)
        return self._refresh(stale=None, only_if_missing=True)

    def refresh(self, stale: AccessToken | None = None) -> AccessToken:
        """Replace the access token after Salesforce rejected ``stale``.

        If another thread or process has stored a different token since ``stale`` was read, that
        token is returned without calling Salesforce. ``stale=None`` refreshes unconditionally.
        ``invalid_grant`` marks the connection as needing re-authorization and raises
        :class:`ReauthorizationRequired`; it is not retried.
        """
        return self._refresh(stale=stale, only_if_missing=False)

    def _load(self) -> tuple[ConnectionRecord, StoredTokens]:
        name = self.org_config.name
        loaded = self.store.load(name)
        if loaded is None:
            raise NotConnectedError(name)
        record, tokens = loaded
        if record.needs_reauthorization:
            raise ReauthorizationRequired(
                name,
                record.reauthorization_reason,
                reauthorization_command(self.org_config, record),
            )
        return record, tokens

    def _access_token(self, record: ConnectionRecord, access_token: str) -> AccessToken:
        return AccessToken(
            access_token=access_token,
            instance_url=record.instance_url,
            org=record.org,
            org_id=record.org_id,
            api_version=self.org_config.api_version,
        )

    def _refresh(self, stale: AccessToken | None, only_if_missing: bool) -> AccessToken:
        name = self.org_config.name
        with self.store.lock(name, timeout=self.lock_timeout):
            record, tokens = self._load()
            if tokens.access_token and (
                only_if_missing or (stale is not None and tokens.access_token != stale.access_token)
            ):
                log.debug("org %s: another caller already stored a new access token", name)
                return self._access_token(record, tokens.access_token)
            try:
                response = self._grant(record, tokens)
            except AuthorizationError as exc:
                if exc.error != "invalid_grant":
                    raise
                self.store.update_record(
                    name,
                    needs_reauthorization=True,
                    reauthorization_reason=exc.description or exc.error,
                )
                command = reauthorization_command(self.org_config, record)
                log.error(
                    "org %s: Salesforce rejected the %s grant with invalid_grant (%s); "
                    "marked as needing re-authorization: run `%s`",
                    name,
                    record.flow,
                    exc.description,
                    command,
                )
                hint = explain(exc.error, exc.description)
                raise ReauthorizationRequired(
                    name, exc.description, command, hint=None if hint == GENERIC_HINT else hint
                ) from None
            record, tokens = self._store_response(record, tokens, response)
        log.info("org %s: access token refreshed through the %s flow", name, record.flow)
        assert tokens.access_token is not None
        return self._access_token(record, tokens.access_token)

    def _grant(self, record: ConnectionRecord, tokens: StoredTokens) -> oauth.TokenResponse:
        if record.flow == "web_server":
            if not tokens.refresh_token:
                raise AuthorizationError(
                    f"org {record.org!r} has no stored refresh token",
                    error="invalid_grant",
                    description="no refresh token stored",
                )
            return oauth.refresh_grant(self.org_config, record.login_url, tokens.refresh_token)
        if record.flow == "jwt":
            private_key_file = record.private_key_file or self.org_config.private_key_file
            if not private_key_file:
                raise AuthorizationError(
                    f"org {record.org!r} was connected with the JWT bearer flow but no private "
                    f"key file is known; set private_key_file in the configuration"
                )
            return oauth.jwt_bearer_grant(
                self.org_config, record.login_url, record.username, private_key_file
            )
        if record.flow == "client_credentials":
            return oauth.client_credentials_grant(self.org_config, record.login_url)
        raise AuthorizationError(f"org {record.org!r} has an unknown flow {record.flow!r}")

    def _store_response(
        self, record: ConnectionRecord, tokens: StoredTokens, response: oauth.TokenResponse
    ) -> tuple[ConnectionRecord, StoredTokens]:
        """Store a token response: the rotated refresh token (if any) with the new access token, in
        one atomic write, before the caller can use the new access token."""
        org_id, _ = oauth.parse_identity_url(response["id"])
        if not oauth.same_salesforce_id(org_id, record.org_id):
            raise AuthorizationError(
                f"org {record.org!r}: the token endpoint returned a token for Salesforce org "
                f"{org_id}, but this connection belongs to {record.org_id}; the token was not "
                f"stored",
                hint=f"Run `cora disconnect {record.org} --force` and connect again if the org "
                f"really changed.",
            )
        new_tokens = StoredTokens(
            access_token=response["access_token"],
            refresh_token=response.get("refresh_token") or tokens.refresh_token,
        )
        if new_tokens.refresh_token != tokens.refresh_token:
            log.info("org %s: Salesforce rotated the refresh token", record.org)
        new_record = replace(
            record,
            instance_url=str(response["instance_url"]).rstrip("/"),
            last_refresh=utc_now(),
        )
        return self.store.save(new_record, new_tokens), new_tokens
