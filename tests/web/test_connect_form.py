"""The Connect form's Production/Sandbox/My Domain choice and the page's wording of errors."""

import pytest

from cora_pipeline.config import PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL, OrgConfig
from cora_pipeline.connect.hints import authorization_error
from cora_pipeline.errors import AuthorizationError, ReauthorizationRequired
from cora_pipeline.web.connect_form import ConnectFormError, resolve_login, web_hint

STANDARD = OrgConfig(name="acme", login_url=PRODUCTION_LOGIN_URL, is_sandbox=False)
MY_DOMAIN = OrgConfig(name="acme", login_url="https://acme.my.salesforce.com", is_sandbox=False)
EMULATED_SANDBOX = OrgConfig(name="uat", login_url="https://127.0.0.1:8443", is_sandbox=True)


@pytest.mark.parametrize(
    ("org", "environment", "my_domain", "login_url", "is_sandbox"),
    [
        (STANDARD, "production", "", PRODUCTION_LOGIN_URL, False),
        (STANDARD, "sandbox", "", SANDBOX_LOGIN_URL, True),
        (MY_DOMAIN, "production", "", "https://acme.my.salesforce.com", False),
        (MY_DOMAIN, "sandbox", "", SANDBOX_LOGIN_URL, True),
        (EMULATED_SANDBOX, "sandbox", "", "https://127.0.0.1:8443", True),
        (EMULATED_SANDBOX, "production", "", PRODUCTION_LOGIN_URL, False),
        (
            STANDARD,
            "production",
            "globex.my.salesforce.com",
            "https://globex.my.salesforce.com",
            False,
        ),
        (
            STANDARD,
            "production",
            " https://Globex.my.salesforce.com/ ",
            "https://globex.my.salesforce.com",
            False,
        ),
        (
            STANDARD,
            "sandbox",
            "globex--uat.sandbox.my.salesforce.com",
            "https://globex--uat.sandbox.my.salesforce.com",
            True,
        ),
        (EMULATED_SANDBOX, "sandbox", "127.0.0.1:8443", "https://127.0.0.1:8443", True),
    ],
)
def test_form_choice_sets_login_host(
    org: OrgConfig, environment: str, my_domain: str, login_url: str, is_sandbox: bool
) -> None:
    chosen = resolve_login(org, environment, my_domain)

    assert chosen.login_url == login_url
    assert chosen.is_sandbox is is_sandbox
    assert chosen.name == org.name


@pytest.mark.parametrize(
    ("environment", "my_domain", "message"),
    [
        ("staging", "", "choose Production or Sandbox"),
        ("production", "http://acme.my.salesforce.com", "must use https://"),
        ("production", "attacker.example", "is not a Salesforce login host"),
        ("production", "acme.my.salesforce.com.attacker.example", "is not a Salesforce login host"),
        ("production", "acme.my.salesforce.com/services/oauth2", "has a path"),
        ("production", "user@acme.my.salesforce.com", "is not a host name"),
        ("production", "acme.my.salesforce.com:notaport", "is not a valid host name"),
        ("production", "acme--uat.sandbox.my.salesforce.com", "choose Sandbox"),
    ],
)
def test_invalid_form_choice_is_rejected(environment: str, my_domain: str, message: str) -> None:
    with pytest.raises(ConnectFormError, match=message):
        resolve_login(STANDARD, environment, my_domain)


def test_denied_consent_hint_names_the_button() -> None:
    error = authorization_error("denied", "access_denied", "end-user denied authorization")

    hint = web_hint(error, "acme")

    assert hint is not None
    assert "Click Connect again and choose Allow" in hint
    assert "command" not in hint


def test_reauthorization_hint_names_reconnect() -> None:
    error = ReauthorizationRequired("acme", "expired access/refresh token", "cora connect acme")

    hint = web_hint(error, "acme")

    assert hint is not None
    assert "Click Reconnect" in hint
    assert "cora connect" not in hint


def test_approval_error_hint_is_kept() -> None:
    error = authorization_error("failed", "OAUTH_APPROVAL_ERROR_GENERIC", None)

    hint = web_hint(error, "acme")

    assert hint is not None
    assert "Approve Uninstalled Connected Apps" in hint


def test_callback_mismatch_hint_names_the_url() -> None:
    callback = "http://127.0.0.1:8765/settings/integrations/salesforce/callback"
    error = authorization_error("failed", "redirect_uri_mismatch", None, redirect_uri=callback)

    hint = web_hint(error, "acme")

    assert hint is not None
    assert callback in hint


def test_command_line_flags_never_reach_the_page() -> None:
    error = AuthorizationError(
        "wrong kind of org", hint="Log in to a Sandbox, or connect without --sandbox."
    )

    hint = web_hint(error, "acme")

    assert hint is not None
    assert "--sandbox" not in hint
    assert "Choose the other environment" in hint
