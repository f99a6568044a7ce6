"""Steps an administrator takes in the browser on the Integrations page and at Salesforce."""

from typing import Any

from cora_pipeline.web.app import INTEGRATIONS_PATH


def sign_in(page: Any, operator: str, password: str) -> None:
    page.goto(INTEGRATIONS_PATH)
    page.get_by_label("Operator name").fill(operator)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{INTEGRATIONS_PATH}")


def card(page: Any, org: str) -> Any:
    return page.locator(f"#org-{org}")


def connect(
    page: Any,
    org: str,
    *,
    environment: str,
    username: str,
    password: str,
    consent: str = "Allow",
) -> None:
    """Connect ``org`` from its card: choose the environment, log in, then Allow or Deny."""
    section = card(page, org)
    section.get_by_label(environment).check()
    section.get_by_role("button", name="Connect").click()
    log_in_and_consent(page, username=username, password=password, consent=consent)


def log_in_and_consent(page: Any, *, username: str, password: str, consent: str) -> None:
    """Fill the Salesforce login page, then click ``consent`` on the approval page."""
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#Login")
    page.get_by_role("button", name=consent).click()
    page.wait_for_url(f"**{INTEGRATIONS_PATH}*")
