"""Fixtures for the Integrations page: the emulator, a configuration with a Production and a
Sandbox org, the page served by uvicorn on 127.0.0.1, and Chromium driven through Playwright."""

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
import yaml

from cora_pipeline.config import Settings, load_settings
from cora_pipeline.emulator import Emulator, EmulatorSettings
from cora_pipeline.web import create_app
from cora_pipeline.web.app import CALLBACK_PATH, INTEGRATIONS_PATH
from cora_pipeline.web.auth import OperatorStore, operators_path

CHROMIUM = Path("/usr/bin/chromium")
SECRET_ENV = "CORA_WEB_TEST_CLIENT_SECRET"
OPERATOR = "ops"
PASSWORD = "correct horse battery staple"
SIZES = {"Account": 5, "Contact": 5, "Opportunity": 5, "Case": 5, "Invoice__c": 5}
PRODUCTION_ORG = "acme"
SANDBOX_ORG = "acme_uat"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebServer:
    """The Integrations page served by uvicorn in a thread of the test process."""

    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    settings: Settings

    def stop(self) -> None:
        """Stop uvicorn; force it when an idle keep-alive connection holds the shutdown."""
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=10)
        if self.thread.is_alive():
            raise RuntimeError(f"uvicorn at {self.base_url} did not stop")


def start_web_server(settings: Settings, port: int, **uvicorn_options: Any) -> WebServer:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cora-web-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    scheme = "https" if uvicorn_options.get("ssl_certfile") else "http"
    return WebServer(f"{scheme}://127.0.0.1:{port}", server, thread, settings)


def write_config(data_root: Path, emu: Emulator) -> Path:
    """Write a configuration with the emulator's Production org and its Sandbox org."""
    common = {
        "client_id": emu.client_id,
        "client_secret_env": SECRET_ENV,
        "ca_file": str(emu.ca_file),
        "objects": list(SIZES),
    }
    config = {
        "data_root": str(data_root),
        "orgs": {
            PRODUCTION_ORG: {"environment": "production", "login_url": emu.login_url, **common},
            SANDBOX_ORG: {"environment": "sandbox", "login_url": emu.sandbox_login_url, **common},
        },
    }
    path = data_root / "cora.yaml"
    data_root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def web_port() -> int:
    return free_port()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "callback_urls(*urls): register these callback URLs on the emulator's connected app "
        "instead of the page's own",
    )


@pytest.fixture
def emulator(
    request: pytest.FixtureRequest, tmp_path: Path, web_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Emulator]:
    """The emulator with real login and consent pages; the page's callback URL is registered."""
    marker = request.node.get_closest_marker("callback_urls")
    callback_urls = (
        tuple(marker.args) if marker else (f"http://127.0.0.1:{web_port}{CALLBACK_PATH}",)
    )
    emu = Emulator(
        EmulatorSettings(
            seed=3,
            sizes=SIZES,
            auto_approve=False,
            callback_urls=callback_urls,
            data_dir=tmp_path / "emulator",
        )
    )
    emu.start()
    monkeypatch.setenv(SECRET_ENV, emu.client_secret)
    yield emu
    emu.stop()


@pytest.fixture
def settings(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("CORA_VAULT_KEY", raising=False)
    settings = load_settings(write_config(tmp_path / "data", emulator))
    OperatorStore(operators_path(settings.home)).set_password(OPERATOR, PASSWORD)
    return settings


@pytest.fixture
def web(settings: Settings, web_port: int) -> Iterator[WebServer]:
    server = start_web_server(settings, web_port)
    yield server
    server.stop()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token field"
    return match.group(1)


def signed_in_session(web: WebServer) -> requests.Session:
    """Sign in with requests, the way a browser would, and return the session with its cookie."""
    session = requests.Session()
    page = session.get(f"{web.base_url}/signin", timeout=10)
    response = session.post(
        f"{web.base_url}/signin",
        data={
            "operator": OPERATOR,
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": INTEGRATIONS_PATH,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303, response.text
    return session


@pytest.fixture
def browser_page(web: WebServer) -> Iterator[Any]:
    """A Chromium page; HTTPS errors are ignored because only the emulator (127.0.0.1) uses TLS."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing; install Debian's chromium package to run browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(ignore_https_errors=True, base_url=web.base_url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


class _FormFields(HTMLParser):
    """Collects the action and the input fields of the forms on an emulator page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def authorize_without_browser(
    authorize_url: str, emu: Emulator, *, username: str, password: str, action: str = "approve"
) -> str:
    """Log in and click Allow or Deny at the emulator, then return the callback URL it redirects
    to, without visiting it."""
    base = re.match(r"^https://[^/]+", authorize_url)
    assert base is not None
    session = requests.Session()
    response = session.get(
        authorize_url, verify=str(emu.ca_file), allow_redirects=False, timeout=10
    )
    for _ in range(3):
        if response.status_code in (301, 302, 303):
            return str(response.headers["Location"])
        form = _FormFields()
        form.feed(response.text)
        if form.fields.get("action") == "login":
            form.fields.update({"username": username, "password": password})
        else:
            form.fields["action"] = action
        response = session.post(
            base.group(0) + form.action,
            data=form.fields,
            verify=str(emu.ca_file),
            allow_redirects=False,
            timeout=10,
        )
    raise AssertionError(f"the emulator did not redirect; last page: {response.text[:300]}")


@contextlib.contextmanager
def holding_lock(path: Path) -> Iterator[None]:
    """Keep ``path`` open read-write in another process, as the pipeline's writer does."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
