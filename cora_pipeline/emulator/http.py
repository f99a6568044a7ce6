"""HTTPS plumbing: a threaded TLS server, request and response values, and JSON helpers."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

# Salesforce's token and REST responses carry these headers.
JSON_TYPE = "application/json;charset=UTF-8"
NO_CACHE = "no-cache,must-revalidate,max-age=0,no-store,private"
# Headers a real Salesforce response carries whatever the resource.
STANDARD_HEADERS = (
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Robots-Tag", "none"),
    ("Vary", "Accept-Encoding"),
)
# A URI over 16,384 bytes gets 414; URI plus headers over 16,384 bytes gets 431.
MAX_URI_BYTES = 16_384


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_target: str
    # The session's user, set by the REST API once the bearer token is accepted.
    user_id: str | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8") or "null")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection after sending only part of the body (a fault tests inject).
    drop_mid_body: bool = False
    delay: float = 0.0


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    merged = {"Content-Type": JSON_TYPE, "Cache-Control": NO_CACHE}
    merged.update(headers or {})
    return Response(status, body, merged)


def html_response(status: int, page: str, headers: dict[str, str] | None = None) -> Response:
    merged = {"Content-Type": "text/html;charset=UTF-8", "Cache-Control": NO_CACHE}
    merged.update(headers or {})
    return Response(status, page.encode("utf-8"), merged)


def redirect(location: str) -> Response:
    return Response(302, b"", {"Location": location, "Cache-Control": NO_CACHE})


def rest_error(
    status: int, error_code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Build a REST error: a JSON array of {message, errorCode}."""
    return json_response(status, [{"message": message, "errorCode": error_code}], headers)


Dispatch = Callable[[Request], Response]
_QUERY_STRING = re.compile(r"\?\S*")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TlsHttpServer

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header is the org's time, which advance_clock() moves, as Salesforce's
        # Date header is its own server time.
        if timestamp is None and self.server.clock is not None:
            return email.utils.format_datetime(self.server.clock(), usegmt=True)
        return super().date_time_string(timestamp)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: query strings can carry tokens (oauth_token=) and codes.
        logger.debug("%s %s %s %s", self.server.label, self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own messages can quote the request line; drop its query string.
        logger.debug("%s %s", self.server.label, _QUERY_STRING.sub("?...", format % args))

    def _handle(self) -> None:
        target = self.path
        request_line_bytes = len(self.requestline.encode("latin-1", "replace"))
        header_bytes = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
        # NOTE: the bodies and content types of Salesforce's 414 and 431 are undocumented;
        # plain text is the likely form because the front end rejects these requests before
        # they reach the API.
        if request_line_bytes > MAX_URI_BYTES:
            self._send(Response(414, b"URI Too Long", {"Content-Type": "text/plain"}))
            return
        if request_line_bytes + header_bytes > MAX_URI_BYTES:
            self._send(
                Response(431, b"Request Header Fields Too Large", {"Content-Type": "text/plain"})
            )
            return

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(target)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_target=target,
        )

        try:
            response = self.server.dispatch(request)
        except Exception:
            logger.exception("%s %s %s failed", self.server.label, self.command, split.path)
            response = rest_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
        self._send(response)

    def _send(self, response: Response) -> None:
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        for name, value in STANDARD_HEADERS:
            self.send_header(name, value)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if response.drop_mid_body:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.drop_mid_body:
            self.wfile.write(response.body[: max(1, len(response.body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle


class TlsHttpServer(ThreadingHTTPServer):
    """A threaded HTTPS server on one port; TLS handshakes run in the worker threads."""

    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        dispatch: Dispatch,
        label: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.clock = clock
        self.context = context
        self.dispatch = dispatch
        self.label = label
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            logger.debug("%s TLS handshake failed from %s: %s", self.label, client_address, error)
            return
        with self._connections_lock:
            self._connections.add(tls)
        try:
            tls.settimeout(30)
            _Handler(tls, client_address, self)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as error:
            logger.debug("%s connection from %s ended: %s", self.label, client_address, error)
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.serve_forever,
            name=f"emulator-{self.label}",
            kwargs={"poll_interval": 0.1},
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop accepting, close open keep-alive connections and join every thread."""
        self.shutdown()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self.thread is not None:
            self.thread.join()
