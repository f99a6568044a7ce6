"""``cora connect``, ``cora status``, ``cora disconnect`` and ``cora keys rotate``.

Each command has an ``add_<name>_arguments(parser)`` and a ``run_<name>(args, settings)``. Errors
are raised as :class:`cora_pipeline.errors.CoraError`; the ``cora`` entry point prints them. No
output of these commands contains a token, secret or key.
"""

import argparse
import dataclasses
import json
import os
from datetime import UTC, datetime
from typing import Any

from cora_pipeline.config import (
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    OrgConfig,
    Settings,
)
from cora_pipeline.connect.authorize import connect_client_credentials, connect_jwt, disconnect
from cora_pipeline.connect.loopback import connect_web_server
from cora_pipeline.connect.oauth import sandbox_for_login_url
from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore
from cora_pipeline.connect.vault import GENERATE_KEY_COMMAND, KEY_ENV, NEW_KEY_ENV, parse_keys
from cora_pipeline.errors import ConfigError, NotConnectedError, VaultError
from cora_pipeline.warehouse.summary import SyncSummary, read_sync_summaries

FLOW_CHOICES = {
    "web-server": "web_server",
    "jwt": "jwt",
    "client-credentials": "client_credentials",
}


def _print(text: str = "") -> None:
    print(text, flush=True)


# cora connect


def add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org", help="org name from the configuration file")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help=f"expect a Sandbox org; log in at {SANDBOX_LOGIN_URL} unless --login-url or the "
        f"configuration names a My Domain host",
    )
    parser.add_argument(
        "--login-url",
        metavar="URL",
        help="log in at this host instead, such as the org's My Domain "
        "https://<MyDomain>.my.salesforce.com",
    )
    parser.add_argument(
        "--flow",
        choices=sorted(FLOW_CHOICES),
        help="OAuth flow (default: the org's `flow` setting, else web-server)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="print the login URL and read the redirected URL from the terminal instead of "
        "opening a browser and listening on 127.0.0.1",
    )
    parser.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help="port of the loopback callback http://127.0.0.1:PORT/callback "
        "(default: the org's callback_port, 1717)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="seconds to wait for the OAuth callback from the browser (default: 300)",
    )
    parser.add_argument("--username", help="Salesforce username to connect as (JWT bearer flow)")
    parser.add_argument(
        "--private-key-file",
        metavar="PATH",
        help="PEM private key whose certificate is uploaded to the connected app (JWT bearer flow)",
    )


def connect_overrides(args: argparse.Namespace, org_config: OrgConfig) -> OrgConfig:
    """Apply ``--sandbox``, ``--login-url``, ``--flow``, ``--port`` and the JWT options."""
    changes: dict[str, Any] = {}
    sandbox_flag = bool(getattr(args, "sandbox", False))
    if getattr(args, "login_url", None):
        login_url = args.login_url.rstrip("/")
        if not login_url.startswith("https://"):
            raise ConfigError(f"--login-url {args.login_url!r} must start with https://")
        implied = sandbox_for_login_url(login_url)
        if sandbox_flag and implied is False:
            raise ConfigError(
                f"--sandbox contradicts --login-url {login_url}, the Production login host; "
                f"use {SANDBOX_LOGIN_URL} or the Sandbox's My Domain"
            )
        changes["login_url"] = login_url
        if implied is not None:
            changes["is_sandbox"] = implied
    elif sandbox_flag and org_config.login_url in (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL):
        changes["login_url"] = SANDBOX_LOGIN_URL
    if sandbox_flag:
        changes["is_sandbox"] = True
    if getattr(args, "flow", None):
        changes["flow"] = FLOW_CHOICES[args.flow]
    if getattr(args, "port", None) is not None:
        if not 1 <= args.port <= 65535:
            raise ConfigError(f"--port {args.port} is not a TCP port number (1-65535)")
        changes["callback_port"] = args.port
    if getattr(args, "username", None):
        changes["username"] = args.username
    if getattr(args, "private_key_file", None):
        changes["private_key_file"] = args.private_key_file
    return dataclasses.replace(org_config, **changes) if changes else org_config


def run_connect(args: argparse.Namespace, settings: Settings) -> int:
    org_config = connect_overrides(args, settings.org(args.org))
    standard_hosts = (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL)
    if org_config.flow == "client_credentials" and org_config.login_url in standard_hosts:
        raise ConfigError(
            f"org {org_config.name!r}: the client credentials flow works only on the org's "
            f"My Domain host; pass --login-url https://<MyDomain>.my.salesforce.com"
        )
    store = ConnectionStore.open(settings, create_key=True)
    if org_config.flow == "jwt":
        record = connect_jwt(org_config, store)
    elif org_config.flow == "client_credentials":
        record = connect_client_credentials(org_config, store)
    else:
        record = connect_web_server(
            org_config, store, no_browser=args.no_browser, timeout=args.timeout
        )
    _print(f"Connected org {record.org!r}.")
    _print(format_record(record))
    return 0


# cora status


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org", nargs="?", help="show only this org (default: every org)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print each org's connection record. Returns 1 when some org's vault file is unreadable."""
    names = [args.org] if args.org else sorted(settings.orgs)
    if args.org:
        settings.org(args.org)
    store = _open_store_for_status(settings)
    records: dict[str, ConnectionRecord | None] = {}
    failures: dict[str, str] = {}
    for name in names:
        try:
            records[name] = store.get(name) if store else None
        except VaultError as exc:
            failures[name] = str(exc)
    summaries = read_sync_summaries(
        settings.data_root, [settings.orgs[name] for name in names], datetime.now(UTC)
    )
    if args.json:
        payload: list[dict[str, Any]] = []
        for name in names:
            record = records.get(name)
            if name in failures:
                payload.append({"org": name, "connected": None, "error": failures[name]})
            elif record is None:
                payload.append({"org": name, "connected": False})
            else:
                payload.append({**record.to_dict(), "connected": True})
            payload[-1]["sync"] = _summary_dict(summaries.get(name))
        _print(json.dumps(payload, indent=2, default=str))
        return 1 if failures else 0
    for index, name in enumerate(names):
        if index:
            _print()
        record = records.get(name)
        if name in failures:
            _print(f"org {name!r}: the vault file cannot be read: {failures[name]}")
        elif record is None:
            _print(f"org {name!r}: not connected; run `cora connect {name}`")
        else:
            _print(format_record(record))
        _print(format_summary(summaries.get(name)))
    return 1 if failures else 0


def _open_store_for_status(settings: Settings) -> ConnectionStore | None:
    vault_dir = settings.home / "vault"
    if not any(vault_dir.glob("*.json")) and not os.environ.get(KEY_ENV):
        return None
    return ConnectionStore.open(settings)


def format_record(record: ConnectionRecord) -> str:
    state = "needs re-authorization" if record.needs_reauthorization else "connected"
    rows = [
        ("org", record.org),
        ("state", state),
        ("Salesforce org", f"{record.org_name} ({record.org_id})"),
        ("environment", record.environment),
        ("connected by", f"{record.username} ({record.user_id})"),
        ("connected at", record.connected_at),
        ("login host", record.login_url),
        (
            "instance",
            record.instance_url + (f" ({record.instance_name})" if record.instance_name else ""),
        ),
        ("scopes", " ".join(record.scopes) or "-"),
        ("flow", record.flow.replace("_", "-")),
        ("last refresh", record.last_refresh or "-"),
        ("vault key id", record.key_id or "-"),
    ]
    if record.needs_reauthorization:
        rows.append(("reason", record.reauthorization_reason or "-"))
        rows.append(("fix", f"cora connect {record.org}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def format_summary(summary: SyncSummary | None) -> str:
    """Format an org's API usage and the newest sync of each object, read from the warehouse."""
    if summary is None or (not summary.objects and summary.unavailable is None):
        return f"  {'sync history':<14}  none yet; run `cora sync` or wait for the schedule"
    if summary.unavailable:
        return f"  {'sync history':<14}  {summary.unavailable}"
    lines = []
    usage = summary.usage
    if usage is not None:
        lines.append(
            f"  {'API usage':<14}  {usage.used} of {usage.maximum} daily calls ({usage.percent:.1f}%), "
            f"budget {usage.budget}, as of {usage.as_of:%Y-%m-%d %H:%M} UTC"
        )
    lines.append("  last sync per object:")
    for item in summary.objects:
        finished = f"{item.finished_at:%Y-%m-%d %H:%M} UTC" if item.finished_at else "-"
        changes = (
            "baseline"
            if item.baseline
            else f"{item.created} created, {item.updated} updated, {item.deleted} deleted, "
            f"{item.undeleted} undeleted"
        )
        lines.append(
            f"    {item.sobject:<24} {item.status:<15} {finished}  "
            f"{item.records_fetched} fetched, {changes}"
        )
    return "\n".join(lines)


def _summary_dict(summary: SyncSummary | None) -> dict[str, Any] | None:
    return dataclasses.asdict(summary) if summary is not None else None


# cora disconnect


def add_disconnect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org", help="org name from the configuration file")
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete the local connection even when Salesforce does not revoke the token",
    )


def run_disconnect(args: argparse.Namespace, settings: Settings) -> int:
    org_config = settings.org(args.org)
    if not (settings.home / "vault" / f"{args.org}.json").exists():
        raise NotConnectedError(args.org)
    try:
        store = ConnectionStore.open(settings)
    except VaultError:
        if not args.force:
            raise
        return _force_delete_unreadable(settings, args.org)
    try:
        result = disconnect(org_config, store, force=args.force)
    except VaultError:
        if not args.force:
            raise
        return _force_delete_unreadable(settings, args.org)
    if result.revoked:
        _print(
            f"Disconnected org {args.org!r}: the token was revoked at {result.record.login_url} "
            f"and the local connection deleted."
        )
        return 0
    _print(
        f"Deleted the local connection of org {args.org!r}, but Salesforce did not revoke the "
        f"token: {result.revoke_error}. Revoke it in Salesforce: Setup > Connected Apps OAuth "
        f"Usage."
    )
    return 0


def _force_delete_unreadable(settings: Settings, org: str) -> int:
    """Delete a vault file that cannot be decrypted: nothing in it can be revoked."""
    path = settings.home / "vault" / f"{org}.json"
    if not path.exists():
        raise NotConnectedError(org)
    path.unlink()
    _print(
        f"Deleted {path}, which could not be decrypted, so its token was not revoked. Revoke it "
        f"in Salesforce: Setup > Connected Apps OAuth Usage."
    )
    return 0


# cora keys rotate


def add_keys_rotate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"Re-encrypt every stored connection under a new vault key. With the key in the key "
        f"file <data_root>/state/vault.key, a new key is generated and written there. With the key in "
        f"${KEY_ENV}, set ${NEW_KEY_ENV} to the new key first, then replace ${KEY_ENV} with it."
    )


def run_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    store = ConnectionStore.open(settings)
    old_key_id = store.key_id
    new_key = None
    if store.keyring.path is None:
        new_value = os.environ.get(NEW_KEY_ENV)
        if not new_value:
            raise VaultError(
                f"the vault key comes from ${KEY_ENV}, which this command cannot change; "
                f"generate a new key with {GENERATE_KEY_COMMAND}, set ${NEW_KEY_ENV} to it, run "
                f"`cora keys rotate` again, then set ${KEY_ENV} to the new key"
            )
        keys = parse_keys(new_value, f"environment variable {NEW_KEY_ENV}")
        new_key = keys[0]
    # Counting files instead of decrypting them lets a rotation that stopped halfway (with some
    # files already under the new key) run again with the same keys.
    count = len(list(store.vault_dir.glob("*.json")))
    rotated = store.rotate_key(new_key)
    _print(
        f"Re-encrypted {count} connection(s): vault key {old_key_id} replaced by {rotated.key_id}."
    )
    if store.keyring.path is None:
        _print(
            f"Now set {KEY_ENV} to the value of {NEW_KEY_ENV} wherever cora runs (Dagster "
            f"included) and unset {NEW_KEY_ENV}; the old key no longer decrypts the vault."
        )
    else:
        _print(f"The new key is in {store.keyring.path}.")
    return 0
