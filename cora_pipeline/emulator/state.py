"""Saving and loading an emulator's org state, so a demo org survives restarts."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .schema import FieldDef

if TYPE_CHECKING:
    from .emulator import Emulator
    from .org import EmulatedOrg

STATE_VERSION = 1
_OBJECT_FLAGS = ("queryable", "replicateable", "createable", "deletable", "undeletable")


def _org_state(org: EmulatedOrg) -> dict[str, Any]:
    with org.lock:
        return {
            "org_id": org.org_id,
            "tables": {name: list(table.values()) for name, table in org.tables.items()},
            "fields": {
                name: [asdict(f) for f in d.fields.values()] for name, d in org.schema.items()
            },
            "hidden": {name: sorted(d.hidden_fields) for name, d in org.schema.items()},
            "hidden_for_users": {
                name: {user: sorted(fields) for user, fields in d.hidden_for_users.items()}
                for name, d in org.schema.items()
            },
            "flags": {
                name: {flag: getattr(d, flag) for flag in _OBJECT_FLAGS}
                for name, d in org.schema.items()
            },
            # Copies, because the JSON is written after the lock is released.
            "deleted_log": {name: dict(log) for name, log in org.deleted_log.items()},
            "earliest_date_available": dict(org.earliest_date_available),
            "auto_numbers": dict(org.auto_numbers),
            "cascades": {key: list(changes) for key, changes in org.cascades.items()},
            "ids": org.ids.state(),
            "clock_offset": org.clock.offset_seconds,
            "api_usage": org.api.state(),
            "api_limit": org.api.maximum,
        }


def save_state(emulator: Emulator, path: Path) -> None:
    """Write the state as JSON next to ``path`` and rename it into place (atomic on POSIX)."""
    state = {
        "version": STATE_VERSION,
        "seed": emulator.settings.seed,
        "orgs": {
            ("sandbox" if o.is_sandbox else "production"): _org_state(o) for o in emulator.orgs
        },
        "tokens": emulator.oauth.state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(state, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).chmod(0o600)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _restore_org(org: EmulatedOrg, data: dict[str, Any]) -> None:
    with org.lock:
        for name, fields in data["fields"].items():
            definition = org.schema.get(name)
            if definition is None:
                continue
            restored = {}
            for entry in fields:
                for key in ("reference_to", "picklist", "extra"):
                    entry[key] = tuple(
                        tuple(x) if isinstance(x, list) else x for x in entry.get(key, ())
                    )
                restored[entry["name"]] = FieldDef(**entry)
            definition.fields = restored
            definition.hidden_fields = set(data["hidden"].get(name, []))
            definition.hidden_for_users = {
                user: set(fields)
                for user, fields in data.get("hidden_for_users", {}).get(name, {}).items()
            }
            for flag, value in data.get("flags", {}).get(name, {}).items():
                setattr(definition, flag, value)
            definition.reindex()
        org.formulas.clear()
        for definition in org.schema.values():
            for f in definition.fields.values():
                if f.calculated:
                    org._compile(definition.name, f)
        org.tables = {name: {r["Id"]: r for r in rows} for name, rows in data["tables"].items()}
        org.deleted_log = data["deleted_log"]
        org.earliest_date_available = data["earliest_date_available"]
        org.auto_numbers = data["auto_numbers"]
        org.cascades = data.get("cascades", {})
        org.ids.restore(data["ids"])
        org.clock.set_offset(data["clock_offset"])
        org.api.restore([tuple(b) for b in data["api_usage"]])
        org.api.maximum = data["api_limit"]


def load_state(emulator: Emulator, path: Path) -> None:
    """Load a state file written by save_state() with the same seed."""
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"state file {path} has version {state.get('version')}, expected "
            f"{STATE_VERSION}; delete it to start from a fresh seeded org"
        )
    if state.get("seed") != emulator.settings.seed:
        raise ValueError(
            f"state file {path} was written with seed {state.get('seed')}, not "
            f"{emulator.settings.seed}; use the same seed or delete the file"
        )
    for org in emulator.orgs:
        _restore_org(org, state["orgs"]["sandbox" if org.is_sandbox else "production"])
    emulator.oauth.restore(state.get("tokens", {}))
