"""The ``cora emulator`` command: run the Salesforce emulator until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from .catalog import DATA_OBJECTS, DEFAULT_SIZES
from .emulator import Emulator, EmulatorSettings

# `cora connect` listens on /callback; /OauthRedirect is what the Salesforce CLI registers.
DEFAULT_CALLBACK_URLS = ("http://127.0.0.1:1717/callback", "http://127.0.0.1:1717/OauthRedirect")
# The name of the variable the printed configuration reads the secret from, not a secret.
SECRET_ENV = "CORA_EMULATOR_CLIENT_SECRET"  # noqa: S105


def _sizes(text: str) -> dict[str, int]:
    sizes = dict(DEFAULT_SIZES)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        if name not in DATA_OBJECTS or not count.isdigit():
            raise argparse.ArgumentTypeError(
                f"invalid size {part!r}; write OBJECT=COUNT with OBJECT one of "
                f"{', '.join(DATA_OBJECTS)}"
            )
        sizes[name] = int(count)
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``cora emulator`` options to ``parser``."""
    parser.add_argument("--seed", type=int, default=7, help="seed for all generated data")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=dict(DEFAULT_SIZES),
        help="records per object, e.g. Account=1000,Contact=5000 (others keep their defaults)",
    )
    parser.add_argument(
        "--sandbox-sizes",
        type=_sizes,
        default=None,
        help="records per object in the sandbox org (default: the same as --sizes)",
    )
    for role, help_text in (
        ("login", "production login host"),
        ("sandbox-login", "sandbox login host"),
        ("production", "production org's REST host"),
        ("sandbox", "sandbox org's REST host"),
    ):
        parser.add_argument(
            f"--{role}-port", type=int, default=0, help=f"port of the {help_text} (0 = any free)"
        )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="skip the login and consent pages for the org's admin user",
    )
    parser.add_argument(
        "--callback-url",
        action="append",
        dest="callback_urls",
        help="OAuth callback URL registered on the connected app (repeatable; default: "
        f"{' and '.join(DEFAULT_CALLBACK_URLS)})",
    )
    parser.add_argument(
        "--daily-api-limit", type=int, default=15_000, help="API requests per org per 24 hours"
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=None,
        help="access token lifetime in seconds (default: tokens never expire)",
    )
    parser.add_argument(
        "--activity-rate",
        type=float,
        default=0.0,
        help="simulated changes per second in each org (default 0: none)",
    )
    parser.add_argument(
        "--state-file", type=Path, default=None, help="keep the orgs in this file across restarts"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="directory for the CA and key files"
    )


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    ports = {
        "login": args.login_port,
        "sandbox_login": args.sandbox_login_port,
        "production": args.production_port,
        "sandbox": args.sandbox_port,
    }
    settings = EmulatorSettings(
        seed=args.seed,
        sizes=args.sizes,
        sandbox_sizes=args.sandbox_sizes,
        daily_api_limit=args.daily_api_limit,
        access_token_lifetime=args.token_lifetime,
        auto_approve=args.auto_approve,
        data_dir=args.data_dir,
        ports={role: port for role, port in ports.items() if port},
        state_file=args.state_file,
        activity_rate=args.activity_rate,
    )
    settings.callback_urls = tuple(args.callback_urls or DEFAULT_CALLBACK_URLS)
    return settings


def config_snippet(emulator: Emulator) -> str:
    """Return the ``cora.yaml`` entry and commands that connect the emulator's Production org."""
    return "\n".join(
        [
            "To sync its Production org with cora, add this org to cora.yaml:",
            "",
            "  orgs:",
            "    emulated:",
            f"      login_url: {emulator.login_url}",
            f"      client_id: {emulator.client_id}",
            f"      client_secret_env: {SECRET_ENV}",
            f"      ca_file: {emulator.ca_file}",
            "      callback_port: 1717",
            "",
            f"then run: export {SECRET_ENV}=<the client secret above>; cora connect emulated",
            "Ports and the CA change on every start unless --login-port, --production-port and",
            "--data-dir keep them; the org's data survives restarts only with --state-file.",
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    """Start the emulator, print how to reach it, and serve until SIGINT or SIGTERM."""
    stop = threading.Event()
    with Emulator(settings_from_args(args)) as emulator:
        production, sandbox = emulator.production, emulator.sandbox
        # The consumer secret is printed on purpose: it belongs to the emulator's own
        # connected app and the command exists to hand it to the developer.
        print(f"Login URL:          {emulator.login_url}")
        print(f"Sandbox login URL:  {emulator.sandbox_login_url}")
        print(f"Client id:          {emulator.client_id}")
        print(f"Client secret:      {emulator.client_secret}")
        print(f"CA file to trust:   {emulator.ca_file}")
        print(f"JWT private key:    {emulator.jwt_private_key_file}")
        print(f"Callback URLs:      {', '.join(emulator.settings.callback_urls)}")
        for org in (production, sandbox):
            print(
                f"{org.name}: org id {org.org_id}, instance {org.instance_url}, "
                f"admin {org.admin_username} / {org.admin_password}"
            )
        print()
        print(config_snippet(emulator))
        print("Serving until interrupted (Ctrl+C).", flush=True)
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="cora emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
