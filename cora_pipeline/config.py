"""The configuration file: which orgs to poll, how to authenticate, and where data lives.

The file is YAML, found at ``--config PATH``, else ``$CORA_CONFIG``, else ``cora.yaml`` in the working
directory. With no file at all, the product runs one org named ``demo`` backed by the bundled Salesforce
emulator, so a newcomer can run everything without credentials. Example::

    data_root: /var/lib/cora          # default: $CORA_HOME, else ./.cora
    orgs:
      acme:
        environment: production       # production | sandbox; or login_url: https://acme.my.salesforce.com
        flow: web_server              # web_server | jwt | client_credentials
        client_id: 3MVG9...
        client_secret_env: ACME_CLIENT_SECRET   # the secret itself never goes in this file
        objects: [Account, Contact, Opportunity, Case, {name: Invoice__c, exclude: [Notes__c]}]
        schedule: "*/30 * * * *"
        api_budget_share: 0.25        # share of the org's daily API allocation this pipeline may spend

Secrets never appear here: client secrets come from the environment variable the org names, tokens from
the encrypted vault.
"""

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from dagster._utils.schedules import is_valid_cron_string

from cora_pipeline.errors import ConfigError

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
DEFAULT_OBJECTS = ("Account", "Contact", "Opportunity", "Case", "Invoice__c")
DEFAULT_API_VERSION = "59.0"
DEMO_ORG = "demo"
N = TypeVar("N", int, float)

Flow = Literal["web_server", "jwt", "client_credentials"]
FLOWS: tuple[Flow, ...] = ("web_server", "jwt", "client_credentials")
# Org names become DuckDB schema names, Dagster asset key parts and tag values, so they are slugs.
ORG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


@dataclass(frozen=True)
class ObjectConfig:
    """One sObject to extract, with optional field selection."""

    name: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrgConfig:
    """One Salesforce org and how to reach it."""

    name: str
    login_url: str
    is_sandbox: bool
    flow: Flow = "web_server"
    client_id: str = ""
    client_secret_env: str | None = None
    username: str | None = None
    private_key_file: str | None = None
    callback_port: int = 1717
    ca_file: str | None = None
    api_version: str = DEFAULT_API_VERSION
    objects: tuple[ObjectConfig, ...] = tuple(ObjectConfig(o) for o in DEFAULT_OBJECTS)
    schedule: str = "*/30 * * * *"
    schedule_running: bool = False
    api_budget_share: float = 0.5
    overlap_seconds: int = 300
    batch_size: int = 2000
    formula_refresh_hours: float = 24.0
    reconcile_hours: float = 24.0
    emulator: bool = False
    """True for the demo org, whose Salesforce is the bundled emulator."""

    @property
    def client_secret(self) -> str | None:
        """Read the client secret from the environment variable the config names."""
        if not self.client_secret_env:
            return None
        value = os.environ.get(self.client_secret_env)
        if not value:
            raise ConfigError(
                f"org {self.name!r}: environment variable {self.client_secret_env} is not set; "
                f"export it with the consumer secret of the connected app"
            )
        return value


@dataclass(frozen=True)
class Settings:
    """The whole configuration."""

    data_root: Path
    orgs: dict[str, OrgConfig]
    source: Path | None = None
    """The file the settings came from; None for the built-in demo configuration."""

    @property
    def home(self) -> Path:
        """Directory for the vault, connection records and locks."""
        return self.data_root / "state"

    def org(self, name: str) -> OrgConfig:
        try:
            return self.orgs[name]
        except KeyError:
            known = ", ".join(sorted(self.orgs)) or "none"
            where = self.source or "the built-in demo configuration"
            raise ConfigError(
                f"org {name!r} is not configured in {where} (configured: {known}); "
                f"add it under `orgs:`"
            ) from None


def default_data_root() -> Path:
    return Path(os.environ.get("CORA_HOME") or ".cora").absolute()


def demo_org(**overrides: Any) -> OrgConfig:
    """Return the demo org: the bundled emulator's Production org, every default object."""
    values: dict[str, Any] = {
        "name": DEMO_ORG,
        "login_url": "emulator",
        "is_sandbox": False,
        "client_id": "emulator",
        "emulator": True,
        "schedule": "*/15 * * * *",
    }
    values.update(overrides)
    return OrgConfig(**values)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load the configuration file, or the built-in demo configuration when there is none."""
    explicit = path is not None or bool(os.environ.get("CORA_CONFIG"))
    candidate = Path(path or os.environ.get("CORA_CONFIG") or "cora.yaml")
    if not candidate.exists():
        if explicit:
            raise ConfigError(
                f"configuration file {candidate} does not exist; create it or unset CORA_CONFIG "
                f"to use the built-in demo org"
            )
        return Settings(data_root=default_data_root(), orgs={DEMO_ORG: demo_org()})
    try:
        raw = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{candidate} is not valid YAML: {exc}") from None
    return parse_settings(raw, source=candidate)


def parse_settings(raw: Any, source: Path | None = None) -> Settings:
    where = str(source or "configuration")
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: the top level must be a mapping with `orgs:` (and `data_root:`)"
        )
    unknown = set(raw) - {"data_root", "orgs"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; expected data_root and orgs")
    data_root_raw = raw.get("data_root")
    if data_root_raw is None:
        data_root = default_data_root()
    else:
        data_root = Path(str(data_root_raw)).expanduser()
        if not data_root.is_absolute() and source is not None:
            data_root = (source.parent / data_root).absolute()
    if source is not None and not raw.get("orgs"):
        raise ConfigError(
            f"{where} configures no orgs; add them under `orgs:`, or remove the file to use the "
            f"built-in demo org"
        )
    orgs_raw = raw.get("orgs") or {}
    if not isinstance(orgs_raw, Mapping):
        raise ConfigError(f"{where}: `orgs` must be a mapping of org name to settings")
    source_dir = source.parent if source is not None else None
    orgs = {
        str(name): _parse_org(str(name), body, where, source_dir) for name, body in orgs_raw.items()
    }
    if not orgs:
        orgs = {DEMO_ORG: demo_org()}
    return Settings(data_root=data_root, orgs=orgs, source=source)


_ORG_KEYS = {
    "environment",
    "login_url",
    "flow",
    "client_id",
    "client_secret_env",
    "username",
    "private_key_file",
    "callback_port",
    "ca_file",
    "api_version",
    "objects",
    "schedule",
    "schedule_running",
    "api_budget_share",
    "overlap_seconds",
    "batch_size",
    "formula_refresh_hours",
    "reconcile_hours",
    "emulator",
}


def _parse_org(name: str, body: Any, where: str, source_dir: Path | None = None) -> OrgConfig:
    prefix = f"{where}: org {name!r}"
    if not ORG_NAME.match(name):
        raise ConfigError(
            f"{where}: org name {name!r} is invalid; use lowercase letters, digits and underscores, "
            f"starting with a letter (it becomes a DuckDB schema and a Dagster asset key part)"
        )
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of settings")
    unknown = set(body) - _ORG_KEYS
    if unknown:
        raise ConfigError(
            f"{prefix}: unknown keys {sorted(unknown)}; known keys: {sorted(_ORG_KEYS)}"
        )
    if body.get("emulator"):
        overrides: dict[str, Any] = {
            key: body[key] for key in ("schedule", "schedule_running") if key in body
        }
        if "objects" in body:
            overrides["objects"] = _parse_objects(body["objects"], prefix)
        if "api_budget_share" in body:
            overrides["api_budget_share"] = _parse_share(body["api_budget_share"], prefix)
        return demo_org(name=name, **overrides)

    environment = body.get("environment", "production")
    if environment not in ("production", "sandbox"):
        raise ConfigError(
            f"{prefix}: environment {environment!r} is invalid; use production or sandbox"
        )
    is_sandbox = environment == "sandbox"
    login_url = str(
        body.get("login_url") or (SANDBOX_LOGIN_URL if is_sandbox else PRODUCTION_LOGIN_URL)
    )
    if not login_url.startswith("https://"):
        raise ConfigError(f"{prefix}: login_url {login_url!r} must start with https://")
    flow = body.get("flow", "web_server")
    if flow not in FLOWS:
        raise ConfigError(f"{prefix}: flow {flow!r} is invalid; use one of {', '.join(FLOWS)}")
    client_id = body.get("client_id")
    if not client_id:
        raise ConfigError(
            f"{prefix}: client_id is missing; set it to the connected app's consumer key"
        )
    if flow == "jwt" and not (body.get("username") and body.get("private_key_file")):
        raise ConfigError(f"{prefix}: flow jwt needs username and private_key_file")
    if flow == "client_credentials" and login_url in (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL):
        raise ConfigError(
            f"{prefix}: flow client_credentials works only on the org's My Domain host; "
            f"set login_url to https://<MyDomain>.my.salesforce.com"
        )
    share = _parse_share(body.get("api_budget_share", 0.5), prefix)
    batch_size = _number(body, "batch_size", 2000, int, prefix)
    if not 200 <= batch_size <= 2000:
        raise ConfigError(
            f"{prefix}: batch_size {batch_size} is outside 200..2000, the range Salesforce accepts"
        )
    schedule = str(body.get("schedule", "*/30 * * * *"))
    if not is_valid_cron_string(schedule):
        raise ConfigError(
            f"{prefix}: schedule {schedule!r} is not a cron expression; write five fields, "
            f"for example '*/30 * * * *' for every 30 minutes"
        )
    return OrgConfig(
        name=name,
        login_url=login_url.rstrip("/"),
        is_sandbox=is_sandbox,
        flow=flow,
        client_id=str(client_id),
        client_secret_env=body.get("client_secret_env"),
        username=body.get("username"),
        private_key_file=body.get("private_key_file"),
        callback_port=_port(_number(body, "callback_port", 1717, int, prefix), prefix),
        ca_file=_ca_file(body.get("ca_file"), prefix, source_dir),
        api_version=str(body.get("api_version", DEFAULT_API_VERSION)),
        objects=_parse_objects(body.get("objects"), prefix),
        schedule=schedule,
        schedule_running=bool(body.get("schedule_running", False)),
        api_budget_share=share,
        overlap_seconds=_number(body, "overlap_seconds", 300, int, prefix),
        batch_size=batch_size,
        formula_refresh_hours=_number(body, "formula_refresh_hours", 24.0, float, prefix),
        reconcile_hours=_number(body, "reconcile_hours", 24.0, float, prefix),
    )


def _number(
    body: Mapping[str, Any], key: str, default: N, kind: Callable[[Any], N], prefix: str
) -> N:
    raw = body.get(key, default)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{prefix}: {key} {raw!r} is not {what}") from None
    if value < 0:
        raise ConfigError(f"{prefix}: {key} {value} must not be negative")
    return value


def _port(port: int, prefix: str) -> int:
    if not 1 <= port <= 65535:
        raise ConfigError(f"{prefix}: callback_port {port} is not a TCP port (1..65535)")
    return port


def _ca_file(raw: Any, prefix: str, source_dir: Path | None) -> str | None:
    if raw is None:
        return None
    path = Path(str(raw)).expanduser()
    if not path.is_absolute() and source_dir is not None:
        path = source_dir / path
    if not path.is_file():
        raise ConfigError(
            f"{prefix}: ca_file {raw} does not exist; point it at the PEM file of the CA that "
            f"signed the login host's certificate, or remove it to use the system's CA bundle"
        )
    return str(path)


def _parse_share(raw: Any, prefix: str) -> float:
    try:
        share = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{prefix}: api_budget_share {raw!r} is not a number") from None
    if not 0 < share <= 1:
        raise ConfigError(f"{prefix}: api_budget_share {share} must be above 0 and at most 1")
    return share


def _parse_objects(raw: Any, prefix: str) -> tuple[ObjectConfig, ...]:
    if raw is None:
        return tuple(ObjectConfig(o) for o in DEFAULT_OBJECTS)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{prefix}: objects must be a non-empty list of sObject names")
    objects: list[ObjectConfig] = []
    for item in raw:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{prefix}: object entry {item!r} needs a name")
        name = item["name"]
        if not OBJECT_NAME.match(name):
            raise ConfigError(f"{prefix}: object name {name!r} is not a valid sObject API name")
        objects.append(
            ObjectConfig(
                name=name,
                include=tuple(item.get("include") or ()),
                exclude=tuple(item.get("exclude") or ()),
            )
        )
    names = [o.name for o in objects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{prefix}: objects listed twice: {duplicates}")
    return tuple(objects)
