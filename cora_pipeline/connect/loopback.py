"""The web-server flow from a terminal: a one-request HTTP server on 127.0.0.1 receives the callback.

The callback URL registered in the connected app is ``http://127.0.0.1:<callback_port>/callback``.
With ``no_browser`` there is no server: the administrator opens the printed URL on any machine and
pastes back the URL the browser ends up on (the page itself fails to load there, which is expected).
"""

import errno
import html
import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from cora_pipeline.config import OrgConfig
from cora_pipeline.connect.authorize import (
    PendingAuthorization,
    begin_authorization,
    complete_authorization,
    parse_callback,
)
from cora_pipeline.connect.hints import APPROVE_UNINSTALLED_HINT, redirect_mismatch_hint
from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore
from cora_pipeline.errors import AuthorizationError, ConfigError

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
CALLBACK_PATH = "/callback"


def has_graphical_browser(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether :func:`webbrowser.open` would reach a graphical browser.

    Without a display on Linux, Python's webbrowser module may start a text browser (lynx, w3m)
    inside the terminal, which is worse than printing the URL. ``$BROWSER`` counts as a choice.
    """
    environ = os.environ if environ is None else environ
    if sys.platform in ("darwin", "win32"):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))


def loopback_redirect_uri(port: int) -> str:
    return f"http://{LOOPBACK_HOST}:{port}{CALLBACK_PATH}"


class CallbackServer:
    """An HTTP server on 127.0.0.1 that waits for one request to the callback path.

    Binding happens in the constructor, so a port already in use fails before any browser opens.
    Requests to other paths (a browser's favicon request) get 404 and do not count.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.callback_url: str | None = None
        self._received = threading.Event()
        try:
            self._server = HTTPServer((LOOPBACK_HOST, port), self._handler_class())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"callback port {port} on {LOOPBACK_HOST} is in use by another program; stop "
                    f"it, or choose another port with --port (or callback_port in the "
                    f"configuration) and add {loopback_redirect_uri(port)} with the new port to "
                    f"the connected app's Callback URLs"
                ) from None
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"cora-oauth-callback-{port}",
            daemon=True,
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != CALLBACK_PATH or server._received.is_set():
                    self.send_error(404)
                    return
                server.callback_url = f"http://{LOOPBACK_HOST}:{server.port}{self.path}"
                params = parse_callback(self.path)
                if "error" in params:
                    title = "Salesforce did not authorize cora"
                    body = f"{params.get('error')}: {params.get('error_description', '')}"
                else:
                    title = "Authorization received"
                    body = "Return to the terminal to see the result. You can close this tab."
                page = (
                    f"<!doctype html><title>{html.escape(title)}</title>"
                    f"<h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(page)
                server._received.set()

            def log_message(self, format: str, *args: Any) -> None:
                # The default handler writes each request line, code included, to stderr.
                return

        return Handler

    def __enter__(self) -> "CallbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def wait(self, timeout: float) -> str | None:
        """Return the callback URL, or None when none arrived within ``timeout`` seconds."""
        if self._received.wait(timeout):
            return self.callback_url
        return None


def connect_web_server(
    org_config: OrgConfig,
    store: ConnectionStore,
    browser: Callable[[str], Any] | None = None,
    no_browser: bool = False,
    timeout: float = 300.0,
    input_func: Callable[[str], str] = input,
    output: Callable[[str], Any] = print,
) -> ConnectionRecord:
    """Run the web-server flow with PKCE through a loopback callback, or by pasting the URL back.

    ``browser`` opens the authorize URL instead of :func:`webbrowser.open`; it may block until
    the redirect reaches the callback server, which runs in a background thread. When it returns
    a URL that is not the callback (the page the browser stopped on), an OAuth error in that URL
    is raised at once.
    """
    redirect_uri = loopback_redirect_uri(org_config.callback_port)
    if no_browser:
        pending = begin_authorization(org_config, redirect_uri)
        output(
            f"Open this URL in a browser, log in to Salesforce and click Allow:\n\n{pending.url}\n"
        )
        output(
            f"The browser then goes to {redirect_uri}?code=… and shows an error page because "
            f"nothing listens there; copy that whole URL from the address bar."
        )
        try:
            pasted = input_func("Paste the URL here: ").strip()
        except EOFError:
            pasted = ""
        if not pasted:
            raise AuthorizationError("no URL was pasted; run the command again")
        return complete_authorization(org_config, pending, pasted, store)

    with CallbackServer(org_config.callback_port) as server:
        pending = begin_authorization(org_config, redirect_uri)
        if browser is not None:
            landed = browser(pending.url)
            if isinstance(landed, str) and not landed.startswith(redirect_uri):
                # The browser stopped on a Salesforce page instead of coming back. An error page
                # URL contains the reason, so fail now instead of waiting for the timeout.
                _raise_for_error_page(org_config, pending, landed, store)
        elif has_graphical_browser():
            output(f"Opening the Salesforce login page in your browser:\n\n{pending.url}\n")
            if not webbrowser.open(pending.url):
                output("No browser could be opened; open the URL above on this machine.")
        else:
            output(
                f"No graphical browser found. Open this URL in a browser on this machine, or on "
                f"another machine after forwarding the callback port (ssh -L "
                f"{org_config.callback_port}:127.0.0.1:{org_config.callback_port} this-host), "
                f"or stop and run again with --no-browser:\n\n{pending.url}\n"
            )
        log.info(
            "org %s: waiting up to %.0f s for the OAuth callback on %s",
            org_config.name,
            timeout,
            redirect_uri,
        )
        callback_url = server.wait(timeout)
    if callback_url is None:
        raise AuthorizationError(
            f"timed out after {timeout:.0f} s waiting for the OAuth callback on {redirect_uri}",
            error="timeout",
            hint=(
                "If Salesforce showed an error page instead of redirecting: with "
                "OAUTH_APPROVAL_ERROR_GENERIC, " + APPROVE_UNINSTALLED_HINT + " With "
                "redirect_uri_mismatch, " + redirect_mismatch_hint(redirect_uri) + " On a "
                "machine without a browser, use --no-browser."
            ),
        )
    return complete_authorization(org_config, pending, callback_url, store)


def _raise_for_error_page(
    org_config: OrgConfig, pending: PendingAuthorization, landed: str, store: ConnectionStore
) -> None:
    params = parse_callback(landed)
    if "error" in params or "RemoteAccessErrorPage" in landed:
        complete_authorization(org_config, pending, landed, store)
