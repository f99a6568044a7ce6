"""Connecting Salesforce orgs: OAuth 2.0 flows, the encrypted token vault and the token manager.

Typical use::

    store = ConnectionStore.open(settings, create_key=True)
    record = connect_web_server(org_config, store)          # or connect_jwt, ...
    tokens = TokenManager(org_config, store)
    token = tokens.current()                                # after a 401 INVALID_SESSION_ID:
    token = tokens.refresh(stale=token)                     # then retry the call once

A web page uses :func:`begin_authorization` and :func:`complete_authorization` with its own
callback URL instead of :func:`connect_web_server`.
"""

from cora_pipeline.connect.authorize import (
    DEFAULT_SCOPES,
    DisconnectResult,
    PendingAuthorization,
    begin_authorization,
    check_authorize_page,
    complete_authorization,
    connect_client_credentials,
    connect_jwt,
    disconnect,
)
from cora_pipeline.connect.loopback import connect_web_server, loopback_redirect_uri
from cora_pipeline.connect.redaction import install_redaction, redact, register_secret
from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore, StoredTokens
from cora_pipeline.connect.tokens import AccessToken, TokenManager, reauthorization_command

__all__ = [
    "DEFAULT_SCOPES",
    "AccessToken",
    "ConnectionRecord",
    "ConnectionStore",
    "DisconnectResult",
    "PendingAuthorization",
    "StoredTokens",
    "TokenManager",
    "begin_authorization",
    "check_authorize_page",
    "complete_authorization",
    "connect_client_credentials",
    "connect_jwt",
    "connect_web_server",
    "disconnect",
    "install_redaction",
    "loopback_redirect_uri",
    "reauthorization_command",
    "redact",
    "register_secret",
]
