"""The ``cora`` command line.

Each subcommand is implemented next to the stage it drives. This module only builds the argument tree,
loads the configuration and turns errors into one readable line and a non-zero exit status.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cora_pipeline.config import load_settings
from cora_pipeline.errors import CoraError

log = logging.getLogger(__name__)


def _demo(args: argparse.Namespace) -> int:
    from cora_pipeline.demo import run_demo

    return run_demo()


def _sync(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cora_pipeline.orchestration.runner import run_sync

    console = Console()
    settings = load_settings(args.config)
    orgs = [args.org] if args.org else list(settings.orgs)
    logging.getLogger("cora_pipeline").setLevel(logging.INFO)
    status = 0
    for org in orgs:
        console.print(f"[bold]Syncing org {org}[/bold]")
        outcome = run_sync(settings, org, objects=args.object or None, full=args.full)
        if outcome.success:
            console.print(f"org {org}: run {outcome.run_id} succeeded")
        else:
            console.print(f"[red]org {org}: run {outcome.run_id} failed[/red]\n{outcome.error}")
            status = 1
    return status


def _with_settings(
    run: Callable[[argparse.Namespace, Any], int],
) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        return run(args, load_settings(args.config))

    return wrapper


def add_command(
    group: Any, common: argparse.ArgumentParser, name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """Add a subcommand that also accepts the options every command takes."""
    parser: argparse.ArgumentParser = group.add_parser(name, parents=[common], **kwargs)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cora",
        description="Know what changed in a Salesforce org: extracts to Parquet, changes in DuckDB.",
    )
    config_help = "configuration file (default: $CORA_CONFIG, else ./cora.yaml, else the demo org)"
    parser.add_argument("--config", metavar="PATH", help=config_help)
    # Subcommands accept --config too, after their name; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = add_command(
        commands,
        common,
        "demo",
        help="run the whole job on the bundled Salesforce emulator and show the changes",
    )
    demo.set_defaults(func=_demo)

    from cora_pipeline.emulator import cli as emulator_cli

    emulator = add_command(
        commands,
        common,
        "emulator",
        help="run the Salesforce emulator alone (HTTPS on 127.0.0.1)",
    )
    emulator_cli.add_arguments(emulator)
    emulator.set_defaults(func=emulator_cli.run)

    from cora_pipeline.connect import cli as connect_cli

    connect = add_command(commands, common, "connect", help="connect an org through OAuth 2.0")
    connect_cli.add_connect_arguments(connect)
    connect.set_defaults(func=_with_settings(connect_cli.run_connect))

    status = add_command(
        commands,
        common,
        "status",
        help="show connections, API usage and the last sync; never a secret",
    )
    connect_cli.add_status_arguments(status)
    status.set_defaults(func=_with_settings(connect_cli.run_status))

    disconnect = add_command(
        commands,
        common,
        "disconnect",
        help="revoke an org's token at Salesforce, then delete it locally",
    )
    connect_cli.add_disconnect_arguments(disconnect)
    disconnect.set_defaults(func=_with_settings(connect_cli.run_disconnect))

    keys = add_command(commands, common, "keys", help="manage the vault key")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = add_command(
        key_commands, common, "rotate", help="re-encrypt every stored token under a new key"
    )
    connect_cli.add_keys_rotate_arguments(rotate)
    rotate.set_defaults(func=_with_settings(connect_cli.run_keys_rotate))

    sync = add_command(
        commands,
        common,
        "sync",
        help="materialize an org's assets now, as the schedule would, with progress",
    )
    sync.add_argument("org", nargs="?", help="org to sync (default: every configured org)")
    sync.add_argument(
        "--object", action="append", metavar="NAME", help="sync only this object (repeatable)"
    )
    sync.add_argument(
        "--full",
        action="store_true",
        help="extract every record instead of changes since the watermark",
    )
    sync.set_defaults(func=_sync)

    from cora_pipeline.web import cli as web_cli

    web = add_command(
        commands,
        common,
        "web",
        help="serve the Integrations page: connect and watch orgs from a browser",
    )
    web_cli.add_arguments(web)
    web.set_defaults(func=_with_settings(web_cli.run))

    from cora_pipeline.warehouse import cli as warehouse_cli

    changes = add_command(
        commands, common, "changes", help="print recent changes from the warehouse"
    )
    warehouse_cli.add_changes_arguments(changes)
    changes.set_defaults(func=warehouse_cli.run_changes)

    rebuild = add_command(
        commands,
        common,
        "rebuild",
        help="rebuild every change table from the Parquet extracts alone",
    )
    warehouse_cli.add_rebuild_arguments(rebuild)
    rebuild.set_defaults(func=warehouse_cli.run_rebuild)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        from cora_pipeline.connect import install_redaction

        install_redaction()
        return int(args.func(args) or 0)
    except CoraError as exc:
        print(f"cora {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cora {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
