"""A stand-in for the administrator's browser, for the emulator's auto-approving login host.

With ``EmulatorSettings(auto_approve=True)`` the authorize endpoint redirects at once with a code, so
"logging in" is one GET of the authorize URL and one GET of the URL it redirects to. The OAuth
client code under test is the same as with a real browser and a real org.
"""

import socket
import threading
from collections.abc import Callable

import requests


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def follow_redirect_browser(ca_file: str) -> Callable[[str], None]:
    """Return a browser callable that opens the authorize URL and follows its redirect.

    It runs in a thread because the loopback callback server waits for the redirect in the
    caller's thread.
    """

    def visit(url: str) -> None:
        def go() -> None:
            response = requests.get(url, verify=ca_file, allow_redirects=False, timeout=30)
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303) and location:
                requests.get(location, timeout=30)

        threading.Thread(target=go, name="emulator-browser", daemon=True).start()

    return visit
