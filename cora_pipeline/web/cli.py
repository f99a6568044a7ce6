"""``cora web``: serve the Integrations page, or set an operator's password."""

import argparse
import getpass
import ipaddress
import logging
import sys
import time
from typing import Any

from cora_pipeline.config import Settings
from cora_pipeline.errors import ConfigError
from cora_pipeline.web.auth import OperatorStore, operators_path

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_OPERATOR = "admin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, reachable from this machine only)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="base URL browsers use when a proxy is in front, such as https://cora.example.com; "
        "the OAuth callback URL is built from it (default: the address each request came to)",
    )
    parser.add_argument(
        "--ssl-certfile", metavar="PATH", help="serve HTTPS with this PEM certificate chain"
    )
    parser.add_argument("--ssl-keyfile", metavar="PATH", help="private key of --ssl-certfile (PEM)")
    parser.add_argument(
        "--set-password",
        action="store_true",
        help="store a new password for --operator and exit; it is read from the terminal, or "
        "as one line from standard input when that is not a terminal",
    )
    parser.add_argument(
        "--operator",
        default=DEFAULT_OPERATOR,
        metavar="NAME",
        help=f"operator whose password --set-password sets (default: {DEFAULT_OPERATOR})",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    operators = OperatorStore(operators_path(settings.home))
    if args.set_password:
        return set_password(operators, args.operator)
    if not operators.load():
        raise ConfigError(
            f"no operator can sign in: {operators.path} has no password; run "
            f"`cora web --set-password` first"
        )
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise ConfigError("--ssl-certfile and --ssl-keyfile must be given together")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port number (1-65535)")
    return serve(args, settings, operators)


def set_password(operators: OperatorStore, operator: str) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass(f"New password for operator {operator}: ")
        again = getpass.getpass("Repeat the password: ")
        if password != again:
            raise ConfigError("the two passwords differ; nothing was stored")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    operators.set_password(operator, password)
    print(f"Stored a password hash for operator {operator!r} in {operators.path}.")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace, settings: Settings, operators: OperatorStore) -> int:
    import uvicorn

    from cora_pipeline.web.app import create_app

    logging.getLogger("cora_pipeline").setLevel(logging.INFO)
    https = bool(args.ssl_certfile)
    if not https and not _is_loopback(args.host) and not args.public_url:
        log.warning(
            "serving plain HTTP on %s: passwords and session cookies cross the network "
            "unencrypted; pass --ssl-certfile and --ssl-keyfile, or put an HTTPS proxy in front "
            "and pass --public-url",
            args.host,
        )
    app = create_app(settings, operators=operators, public_url=args.public_url)
    app.add_middleware(AccessLog)
    scheme = "https" if https else "http"
    print(
        f"Serving the Integrations page at {scheme}://{args.host}:{args.port}/settings/integrations "
        f"(Ctrl-C stops it)",
        flush=True,
    )
    options: dict[str, Any] = {}
    if https:
        options = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
    # uvicorn's access log prints query strings, which on the OAuth callback hold the
    # authorization code; AccessLog logs the path only.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        **options,
    )
    return 0


class AccessLog:
    """ASGI middleware that logs method, path (never the query string), status and duration."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = []

        async def record_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                "%s %s %s %s %.0f ms",
                client[0],
                scope["method"],
                scope["path"],
                status[0] if status else "-",
                (time.monotonic() - started) * 1000,
            )
