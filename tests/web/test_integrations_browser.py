"""The Integrations page in Chromium against the emulator's real login and approval pages."""

from typing import Any

import pytest

from cora_pipeline.config import Settings
from cora_pipeline.connect import ConnectionStore, TokenManager
from cora_pipeline.connect import oauth as connect_oauth
from cora_pipeline.emulator import Emulator
from cora_pipeline.errors import AuthorizationError, ReauthorizationRequired

from .browser import card, connect, log_in_and_consent, sign_in
from .conftest import OPERATOR, PASSWORD, PRODUCTION_ORG, SANDBOX_ORG, WebServer

pytestmark = pytest.mark.timeout(120)


def connect_production(page: Any, emulator: Emulator, consent: str = "Allow") -> None:
    connect(
        page,
        PRODUCTION_ORG,
        environment="Production",
        username=emulator.production.admin_username,
        password=emulator.production.admin_password,
        consent=consent,
    )


def test_production_and_sandbox_cards_show_connections(
    browser_page: Any, emulator: Emulator, settings: Settings, web: WebServer
) -> None:
    page = browser_page
    # Content-Security-Policy violations and failed loads show up as console errors. The
    # emulator's pages (another origin) have no favicon, which is not this page's error.
    console_errors: list[str] = []

    def record_error(message: Any) -> None:
        if message.type == "error" and message.location["url"].startswith(web.base_url):
            console_errors.append(f"{message.location['url']}: {message.text}")

    page.on("console", record_error)
    sign_in(page, OPERATOR, PASSWORD)
    assert card(page, PRODUCTION_ORG).get_by_test_id("status").inner_text() == "Not connected"
    assert card(page, SANDBOX_ORG).get_by_test_id("status").inner_text() == "Not connected"

    connect_production(page, emulator)
    connect(
        page,
        SANDBOX_ORG,
        environment="Sandbox",
        username=emulator.sandbox.admin_username,
        password=emulator.sandbox.admin_password,
    )

    production = card(page, PRODUCTION_ORG)
    assert production.get_by_test_id("status").inner_text() == "Connected"
    assert production.get_by_test_id("org-id").inner_text() == emulator.production.org_id
    assert production.get_by_test_id("environment").inner_text() == "Production"
    assert (
        production.get_by_test_id("connected-by").inner_text() == emulator.production.admin_username
    )
    assert emulator.production.name in production.inner_text()
    sandbox = card(page, SANDBOX_ORG)
    assert sandbox.get_by_test_id("status").inner_text() == "Connected"
    assert sandbox.get_by_test_id("org-id").inner_text() == emulator.sandbox.org_id
    assert sandbox.get_by_test_id("environment").inner_text() == "Sandbox"
    assert sandbox.get_by_test_id("connected-by").inner_text() == emulator.sandbox.admin_username
    assert "Connected" in sandbox.get_by_role("status").inner_text()

    store = ConnectionStore.open(settings)
    production_record = store.get(PRODUCTION_ORG)
    sandbox_record = store.get(SANDBOX_ORG)
    assert production_record is not None
    assert production_record.is_sandbox is False
    assert production_record.login_url == emulator.login_url
    assert sandbox_record is not None
    assert sandbox_record.is_sandbox is True
    assert sandbox_record.login_url == emulator.sandbox_login_url
    assert console_errors == []


def test_page_never_contains_a_secret(
    browser_page: Any, emulator: Emulator, settings: Settings
) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)
    connect_production(page, emulator)

    loaded = ConnectionStore.open(settings).load(PRODUCTION_ORG)
    assert loaded is not None
    _, tokens = loaded
    html = page.content()
    assert tokens.access_token and tokens.access_token not in html
    assert tokens.refresh_token and tokens.refresh_token not in html
    assert emulator.client_secret not in html
    assert PASSWORD not in html
    assert "code=" not in page.url


def test_denied_consent_explains_the_fix(browser_page: Any, emulator: Emulator) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)

    connect_production(page, emulator, consent="Deny")

    production = card(page, PRODUCTION_ORG)
    assert production.get_by_test_id("status").inner_text() == "Not connected"
    alert = production.get_by_role("alert")
    assert "Salesforce did not connect this org" in alert.inner_text()
    assert "access_denied" in alert.inner_text()
    assert "choose Allow" in alert.inner_text()
    # The message is shown once; a reload shows the plain card again.
    page.reload()
    assert card(page, PRODUCTION_ORG).get_by_role("alert").count() == 0


def test_disconnect_revokes_and_deletes(
    browser_page: Any, emulator: Emulator, settings: Settings
) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)
    connect_production(page, emulator)
    loaded = ConnectionStore.open(settings).load(PRODUCTION_ORG)
    assert loaded is not None
    record, tokens = loaded
    assert tokens.refresh_token

    card(page, PRODUCTION_ORG).get_by_role("link", name="Disconnect").click()
    assert "Disconnect Salesforce org acme?" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_role("button", name="Disconnect").click()
    page.wait_for_url("**/settings/integrations*")

    production = card(page, PRODUCTION_ORG)
    assert production.get_by_test_id("status").inner_text() == "Not connected"
    assert "revoked at Salesforce" in production.get_by_role("status").inner_text()
    assert ConnectionStore.open(settings).get(PRODUCTION_ORG) is None
    with pytest.raises(AuthorizationError) as refused:
        connect_oauth.refresh_grant(
            settings.org(PRODUCTION_ORG), record.login_url, tokens.refresh_token
        )
    assert refused.value.error == "invalid_grant"


def test_disconnect_cancel_keeps_connection(
    browser_page: Any, emulator: Emulator, settings: Settings
) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)
    connect_production(page, emulator)

    card(page, PRODUCTION_ORG).get_by_role("link", name="Disconnect").click()
    page.get_by_role("link", name="Cancel").click()

    assert card(page, PRODUCTION_ORG).get_by_test_id("status").inner_text() == "Connected"
    assert ConnectionStore.open(settings).get(PRODUCTION_ORG) is not None


def test_reconnect_after_revoked_refresh_token(
    browser_page: Any, emulator: Emulator, settings: Settings
) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)
    connect_production(page, emulator)
    store = ConnectionStore.open(settings)
    first = store.get(PRODUCTION_ORG)
    assert first is not None
    # An administrator revokes the app's tokens in Salesforce; the next refresh fails.
    emulator.oauth.revoke_org(emulator.production)
    with pytest.raises(ReauthorizationRequired):
        TokenManager(settings.org(PRODUCTION_ORG), store).refresh()

    page.reload()
    production = card(page, PRODUCTION_ORG)
    assert production.get_by_test_id("status").inner_text() == "Needs re-authorization"
    production.get_by_role("link", name="Reconnect").click()
    assert "Reconnect Salesforce org acme?" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_role("button", name="Reconnect").click()
    log_in_and_consent(
        page,
        username=emulator.production.admin_username,
        password=emulator.production.admin_password,
        consent="Allow",
    )

    assert card(page, PRODUCTION_ORG).get_by_test_id("status").inner_text() == "Connected"
    second = store.get(PRODUCTION_ORG)
    assert second is not None
    assert second.needs_reauthorization is False
    assert second.org_id == first.org_id
    TokenManager(settings.org(PRODUCTION_ORG), store).refresh()


def test_sign_out_ends_the_session(browser_page: Any, web: WebServer) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    page.goto("/settings/integrations")

    assert "/signin" in page.url
    assert page.get_by_role("heading", name="Sign in to Cora").is_visible()


FOCUSED_ELEMENT = """() => {
    const e = document.activeElement;
    if (e.tagName === "INPUT") return e.name + "=" + e.value;
    return (e.innerText || "").trim().split("\\n")[0];
}"""


def test_keyboard_reaches_connect_in_order(browser_page: Any) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)

    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate(FOCUSED_ELEMENT))

    assert focused[0] == "Skip to content"
    assert "Integrations" in focused
    # The first card is acme, a Production org: its checked radio button takes the focus.
    assert focused.index("Integrations") < focused.index("environment=production")
    assert focused.index("environment=production") < focused.index("my_domain=")
    assert focused.index("my_domain=") < focused.index("Connect")


@pytest.mark.callback_urls("http://127.0.0.1:9/another/app/callback")
def test_unregistered_callback_shows_the_url(
    browser_page: Any, emulator: Emulator, web: WebServer
) -> None:
    page = browser_page
    sign_in(page, OPERATOR, PASSWORD)

    card(page, PRODUCTION_ORG).get_by_role("button", name="Connect").click()
    page.wait_for_load_state()
    assert "redirect_uri_mismatch" in page.content()
    page.go_back()
    page.reload()

    waiting = card(page, PRODUCTION_ORG).get_by_role("status")
    assert "A connection is waiting for Salesforce" in waiting.inner_text()
    assert f"{web.base_url}/settings/integrations/salesforce/callback" in waiting.inner_text()
    assert "Callback URL" in waiting.inner_text()
