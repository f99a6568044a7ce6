"""Exceptions of cora-pipeline, under one root.

Each class is named after what failed and carries the values a person needs to act on it. Two marker
mixins tell retry code what to do without reading message text. :class:`Transient` failures may succeed
when tried again (a 503, a dropped connection, a query timeout). :class:`Terminal` failures will not
(a revoked refresh token, an exhausted API allocation, invalid configuration).
"""


class CoraError(Exception):
    """Root of every error cora-pipeline raises on purpose."""


class Transient:
    """Marker: trying the same operation again later may succeed."""


class Terminal:
    """Marker: retrying cannot help; a person has to act first."""


class ConfigError(CoraError, Terminal, ValueError):
    """The configuration file or a command-line argument is invalid."""


class VaultError(CoraError, Terminal):
    """The token vault cannot be opened, read or written."""


class AuthorizationError(CoraError, Terminal):
    """Salesforce refused to authorize, or an OAuth exchange failed.

    ``error`` and ``description`` are Salesforce's OAuth ``error`` and ``error_description``;
    ``hint`` is what the administrator should do.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        description: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.error = error
        self.description = description
        self.hint = hint
        super().__init__(message + (f"\n{hint}" if hint else ""))


class ReauthorizationRequired(AuthorizationError):
    """The stored refresh token no longer works; the administrator must connect the org again."""

    def __init__(
        self, org: str, description: str | None, command: str, hint: str | None = None
    ) -> None:
        self.org = org
        self.command = command
        action = f"Run `{command}` to connect it again."
        super().__init__(
            f"org {org!r} needs re-authorization: Salesforce answered invalid_grant "
            f"({description or 'no description'})",
            error="invalid_grant",
            description=description,
            hint=f"{hint}\n{action}" if hint else action,
        )


class NotConnectedError(CoraError, Terminal):
    """The org has no stored connection."""

    def __init__(self, org: str) -> None:
        self.org = org
        super().__init__(f"org {org!r} is not connected; run `cora connect {org}` first")


class SalesforceAPIError(CoraError):
    """A Salesforce REST call failed. ``code`` is Salesforce's errorCode when the body had one."""

    def __init__(
        self,
        message: str,
        *,
        org: str | None = None,
        sobject: str | None = None,
        status: int | None = None,
        code: str | None = None,
        url: str | None = None,
    ) -> None:
        self.org = org
        self.sobject = sobject
        self.status = status
        self.code = code
        self.url = url
        super().__init__(message)


class TransientAPIError(SalesforceAPIError, Transient):
    """A call that failed for a reason that may pass: 5xx, a dropped connection, QUERY_TIMEOUT."""


class APIBudgetExhausted(SalesforceAPIError, Terminal):
    """The org's API usage reached the share of its daily allocation this pipeline may spend,
    or Salesforce returned REQUEST_LIMIT_EXCEEDED."""

    def __init__(
        self,
        message: str,
        *,
        org: str | None = None,
        used: int | None = None,
        limit: int | None = None,
        budget: int | None = None,
    ) -> None:
        self.used = used
        self.limit = limit
        self.budget = budget
        super().__init__(message, org=org, code="REQUEST_LIMIT_EXCEEDED")
