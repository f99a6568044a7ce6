"""Helpers for tests that talk to the bundled Salesforce emulator over HTTPS on 127.0.0.1."""

import contextlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import requests

from cora_pipeline.config import OrgConfig

SECRET_ENV = "CORA_TEST_CLIENT_SECRET"
SIZES = {"Account": 5, "Contact": 5, "Opportunity": 5, "Case": 5, "Invoice__c": 5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Salesforce:
    """A running emulator and the callback port registered in its connected app."""

    emu: Any
    callback_port: int

    def org_config(self, name: str = "acme", **changes: Any) -> OrgConfig:
        values: dict[str, Any] = {
            "name": name,
            "login_url": self.emu.login_url,
            "is_sandbox": False,
            "client_id": self.emu.client_id,
            "client_secret_env": SECRET_ENV,
            "callback_port": self.callback_port,
            "ca_file": str(self.emu.ca_file),
        }
        values.update(changes)
        return OrgConfig(**values)


StartEmulator = Callable[..., Salesforce]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def redirect_browser(
    ca_file: str,
    *,
    username: str | None = None,
    password: str | None = None,
    action: str = "approve",
) -> Callable[[str], str]:
    """A stand-in for the administrator's browser.

    It follows the authorize redirect to the loopback callback. With ``username`` it fills the
    login page, then clicks Allow (``action="approve"``) or Deny on the consent page. Returns the
    URL it ended on.
    """

    def visit(url: str) -> str:
        session = requests.Session()
        response = session.get(url, verify=ca_file, allow_redirects=False, timeout=30)
        for _ in range(4):
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303) and location:
                if location.startswith("http://127.0.0.1"):
                    # Without a callback server the caller only wants the URL.
                    with contextlib.suppress(requests.ConnectionError):
                        session.get(location, timeout=30)
                return str(location)
            form = _FormParser()
            form.feed(response.text)
            if form.fields.get("action") == "login" and username:
                form.fields.update({"username": username, "password": password or ""})
            elif "ticket" in form.fields:
                form.fields["action"] = action
            else:
                return str(response.url)
            base = re.match(r"^https://[^/]+", url)
            assert base is not None
            response = session.post(
                base.group(0) + form.action,
                data=form.fields,
                verify=ca_file,
                allow_redirects=False,
                timeout=30,
            )
        return str(response.url)

    return visit


def rest_get(
    salesforce: Salesforce, instance_url: str, access_token: str, path: str, **params: Any
) -> requests.Response:
    return requests.get(
        instance_url + path,
        params=params or None,
        headers={"Authorization": f"Bearer {access_token}"},
        verify=str(salesforce.emu.ca_file),
        timeout=30,
    )
