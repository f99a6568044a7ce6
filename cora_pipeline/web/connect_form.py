"""The Connect form's choices, and Salesforce errors reworded for a person using the page.

The OAuth flow itself is :mod:`cora_pipeline.connect`; this module only turns the form's
Production/Sandbox/My Domain choice into the :class:`OrgConfig` the flow runs with.
"""

import dataclasses
from typing import Literal
from urllib.parse import urlsplit

from cora_pipeline.config import PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL, OrgConfig
from cora_pipeline.errors import AuthorizationError, ReauthorizationRequired

Environment = Literal["production", "sandbox"]
STANDARD_LOGIN_URLS = (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL)
# Hosts Salesforce serves logins from: My Domain (production and sandbox), Experience Cloud sites,
# and the older force.com and cloudforce.com domains.
SALESFORCE_HOST_SUFFIXES = (
    ".my.salesforce.com",
    ".my.site.com",
    ".force.com",
    ".cloudforce.com",
)
SANDBOX_MY_DOMAIN_SUFFIX = ".sandbox.my.salesforce.com"


class ConnectFormError(ValueError):
    """The Connect form was filled in wrongly. The message names the field and the fix."""


def default_environment(org: OrgConfig) -> Environment:
    return "sandbox" if org.is_sandbox else "production"


def login_url_for(org: OrgConfig, environment: Environment) -> str:
    """Return the login host the flow uses for ``environment`` when no My Domain is entered.

    A configured non-standard host (a My Domain, or the bundled emulator) serves the environment
    the configuration gives it. The other environment uses Salesforce's standard login host.
    """
    is_sandbox = environment == "sandbox"
    if org.login_url not in STANDARD_LOGIN_URLS and org.is_sandbox == is_sandbox:
        return org.login_url
    return SANDBOX_LOGIN_URL if is_sandbox else PRODUCTION_LOGIN_URL


def resolve_login(org: OrgConfig, environment: str, my_domain: str = "") -> OrgConfig:
    """Return ``org`` with the login host and environment the operator chose on the form.

    Raises ConnectFormError for an unknown environment, or for a My Domain that is not an
    ``https://`` Salesforce login host. The client secret is sent to that host, so the form accepts
    only Salesforce's domains and the host the configuration itself names.
    """
    if environment not in ("production", "sandbox"):
        raise ConnectFormError(
            f"environment {environment!r} is invalid; choose Production or Sandbox"
        )
    chosen: Environment = "sandbox" if environment == "sandbox" else "production"
    is_sandbox = chosen == "sandbox"
    my_domain = my_domain.strip()
    if not my_domain:
        return dataclasses.replace(org, login_url=login_url_for(org, chosen), is_sandbox=is_sandbox)
    login_url = normalize_my_domain(org, my_domain)
    host = urlsplit(login_url).hostname or ""
    if host.endswith(SANDBOX_MY_DOMAIN_SUFFIX) and not is_sandbox:
        raise ConnectFormError(
            f"My Domain {my_domain!r} is a Sandbox login host; choose Sandbox, or enter the "
            f"Production My Domain"
        )
    return dataclasses.replace(org, login_url=login_url, is_sandbox=is_sandbox)


def normalize_my_domain(org: OrgConfig, value: str) -> str:
    """Return ``https://host[:port]`` for a My Domain typed with or without ``https://``."""
    text = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConnectFormError(f"My Domain {value!r} is not a valid host name") from None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        raise ConnectFormError(f"My Domain {value!r} must use https://")
    if not host or parts.username or parts.password or parts.query or parts.fragment:
        raise ConnectFormError(
            f"My Domain {value!r} is not a host name; enter it like acme.my.salesforce.com"
        )
    if parts.path not in ("", "/"):
        raise ConnectFormError(
            f"My Domain {value!r} has a path ({parts.path}); enter only the host, like "
            f"acme.my.salesforce.com"
        )
    netloc = host if port is None else f"{host}:{port}"
    configured = urlsplit(org.login_url)
    if netloc == configured.netloc.lower():
        return org.login_url
    if not host.endswith(SALESFORCE_HOST_SUFFIXES):
        raise ConnectFormError(
            f"My Domain {value!r} is not a Salesforce login host; enter the My Domain URL shown "
            f"in Setup > My Domain, like acme.my.salesforce.com, or set login_url in the "
            f"configuration file"
        )
    return f"https://{netloc}"


def error_summary(exc: Exception) -> str:
    """Return the first line of an error's message, without the hint AuthorizationError appends."""
    return str(exc).split("\n", 1)[0]


def web_hint(exc: AuthorizationError, org: str) -> str | None:
    """Return the fix for ``exc`` in the page's terms.

    The hints in :mod:`cora_pipeline.connect.hints` are shared with ``cora connect``. Where a hint
    names a command or a command-line flag, this returns the button or form field that does the
    same on the page.
    """
    if isinstance(exc, ReauthorizationRequired):
        return (
            "Salesforce no longer accepts the stored refresh token (it was revoked, expired, or "
            "replaced by newer grants). Click Reconnect and log in to the same org again."
        )
    if exc.error in ("access_denied", "access-denied"):
        return (
            "Access was denied on the Salesforce approval page, so nothing was connected. Click "
            "Connect again and choose Allow."
        )
    hint = exc.hint
    if hint and "--sandbox" in hint:
        return (
            "The environment chosen on the Connect form does not match the org you logged in to. "
            "Choose the other environment (Production or Sandbox) and connect again, or log in "
            "to the matching org."
        )
    if hint and f"cora disconnect {org}" in hint:
        return (
            "An org name keeps the Salesforce org it was first connected to. Disconnect this "
            "card first to connect another org under this name, or add a new org to the "
            "configuration file."
        )
    return hint
