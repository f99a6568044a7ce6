"""Connection records and their tokens, one encrypted vault file per org.

``<home>/vault/<org>.json`` contains three AES-256-GCM envelopes: the connection record, the access
token and the refresh token. The record contains no secret but is encrypted too, so that without the
key a stored token cannot be redirected to another instance URL. Saving rewrites the whole file atomically, so a
rotated refresh token and the access token issued with it are stored together or not at all.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cora_pipeline.config import ORG_NAME, Settings
from cora_pipeline.connect.redaction import install_redaction, mask, register_secret
from cora_pipeline.connect.vault import (
    Keyring,
    VaultKey,
    atomic_write,
    check_private_file,
    ensure_private_dir,
    load_keyring,
    write_key_file,
)
from cora_pipeline.errors import VaultError

FILE_FORMAT = "cora-connection"
FILE_VERSION = 1
RECORD_FIELD = "record"
# Field names inside a vault file, not secrets.
ACCESS_TOKEN_FIELD = "access_token"  # noqa: S105
REFRESH_TOKEN_FIELD = "refresh_token"  # noqa: S105


def utc_now() -> str:
    """Return the current time as an ISO 8601 UTC string with seconds, as records store it."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ConnectionRecord:
    """The stored facts about a connected org. It contains no secret, and ``cora status`` shows all of it."""

    org: str
    """The org's name in the configuration file."""
    org_id: str
    """Salesforce's 18-character Organization Id. It never changes for a connection."""
    org_name: str
    user_id: str
    """The Salesforce User Id of the administrator who connected (the run-as user for unattended
    flows)."""
    username: str
    connected_at: str
    is_sandbox: bool
    login_url: str
    instance_url: str
    """The REST host, from the latest token response."""
    scopes: tuple[str, ...]
    flow: str
    instance_name: str | None = None
    identity_url: str | None = None
    last_refresh: str | None = None
    key_id: str | None = None
    """Id of the vault key that encrypted this record's file."""
    needs_reauthorization: bool = False
    reauthorization_reason: str | None = None
    private_key_file: str | None = None
    """For the JWT bearer flow: the private key file that signs new assertions."""

    @property
    def environment(self) -> str:
        return "Sandbox" if self.is_sandbox else "Production"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scopes"] = list(self.scopes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ConnectionRecord":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["scopes"] = tuple(values.get("scopes") or ())
        return cls(**values)


@dataclass(frozen=True)
class StoredTokens:
    """The secrets of one connection. ``refresh_token`` is None for the JWT bearer and client
    credentials flows, which sign or fetch a new access token instead."""

    access_token: str | None
    refresh_token: str | None = None

    def __post_init__(self) -> None:
        register_secret(self.access_token)
        register_secret(self.refresh_token)

    def __repr__(self) -> str:
        return (
            f"StoredTokens(access_token={mask(self.access_token)}, "
            f"refresh_token={mask(self.refresh_token)})"
        )


@dataclass
class ConnectionStore:
    """The encrypted vault of connection records and tokens under ``settings.home``."""

    home: Path
    keyring: Keyring = field(repr=False)
    _key_file_stamp: bytes | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, create_key: bool = False) -> "ConnectionStore":
        """Open the vault, loading the key from ``$CORA_VAULT_KEY`` or ``home/vault.key``.

        ``create_key`` writes a new key file when neither exists and the vault contains no file yet.
        """
        return cls.open_home(settings.home, create_key=create_key)

    @classmethod
    def open_home(cls, home: Path, create_key: bool = False) -> "ConnectionStore":
        vault_dir = home / "vault"
        in_use = vault_dir.is_dir() and any(vault_dir.glob("*.json"))
        install_redaction()
        keyring = load_keyring(home, create=create_key, vault_in_use=in_use)
        return cls(home=home, keyring=keyring, _key_file_stamp=_stamp(keyring.path))

    def _reload_keys_if_changed(self) -> None:
        """Reload the key file when another process (``cora keys rotate``) replaced it.

        A long-running process would otherwise keep encrypting with a key that rotation has
        dropped, and fail to read files rotation re-encrypted. Keys from the environment cannot
        change while the process runs.
        """
        path = self.keyring.path
        if path is None:
            return
        stamp = _stamp(path)
        if stamp == self._key_file_stamp:
            return
        self.keyring = load_keyring(self.home, create=False, vault_in_use=True)
        self._key_file_stamp = _stamp(self.keyring.path)

    @property
    def vault_dir(self) -> Path:
        return self.home / "vault"

    @property
    def key_id(self) -> str:
        return self.keyring.primary.key_id

    def path_for(self, org: str) -> Path:
        if not ORG_NAME.match(org):
            raise VaultError(f"org name {org!r} is invalid; it must match {ORG_NAME.pattern}")
        return self.vault_dir / f"{org}.json"

    @contextmanager
    def lock(self, org: str, timeout: float = 120.0) -> Iterator[None]:
        """Hold the org's lock file, which serializes token refreshes and record updates across
        threads and processes that share this home directory."""
        locks = self.home / "locks"
        ensure_private_dir(locks)
        path = locks / f"{org}.lock"
        try:
            with FileLock(path, timeout=timeout):
                yield
        except Timeout:
            raise VaultError(
                f"timed out after {timeout:.0f} s waiting for the lock {path}, which another "
                f"cora process holds; if none is running, delete the file"
            ) from None

    # Reading

    def get(self, org: str) -> ConnectionRecord | None:
        loaded = self._read(org, with_tokens=False)
        return loaded[0] if loaded else None

    def load(self, org: str) -> tuple[ConnectionRecord, StoredTokens] | None:
        """Return the record and decrypted tokens of ``org``, or None when it is not connected."""
        loaded = self._read(org, with_tokens=True)
        if loaded is None:
            return None
        record, tokens = loaded
        assert tokens is not None
        return record, tokens

    def list(self) -> list[ConnectionRecord]:
        if not self.vault_dir.is_dir():
            return []
        records = []
        for path in sorted(self.vault_dir.glob("*.json")):
            record = self.get(path.stem)
            if record is not None:
                records.append(record)
        return records

    def _read(
        self, org: str, *, with_tokens: bool
    ) -> tuple[ConnectionRecord, StoredTokens | None] | None:
        path = self.path_for(org)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        self._reload_keys_if_changed()
        check_private_file(path)
        envelopes = _parse_document(path, org, raw)

        # The record's associated data lists the fields present, so deleting a token's envelope
        # from the file fails authentication like any other change.
        record_json = self.keyring.open(
            envelopes.get(RECORD_FIELD),
            connection=org,
            field=RECORD_FIELD,
            where=path,
            context=tuple(sorted(envelopes)),
        )
        record = ConnectionRecord.from_dict(json.loads(record_json))
        if record.org != org:
            raise VaultError(f"{path} contains the record of org {record.org!r}, not {org!r}")
        if not with_tokens:
            return record, None

        secrets: dict[str, str | None] = {}
        for name in (ACCESS_TOKEN_FIELD, REFRESH_TOKEN_FIELD):
            envelope = envelopes.get(name)
            if envelope is None:
                secrets[name] = None
            else:
                secrets[name] = self.keyring.open(envelope, connection=org, field=name, where=path)
        return record, StoredTokens(secrets[ACCESS_TOKEN_FIELD], secrets[REFRESH_TOKEN_FIELD])

    # Writing

    def save(self, record: ConnectionRecord, tokens: StoredTokens) -> ConnectionRecord:
        """Encrypt and write the record and tokens in one atomic file replacement.

        Returns the record as stored, with ``key_id`` set to the key that encrypted it.
        """
        self._reload_keys_if_changed()
        record = replace(record, key_id=self.key_id)
        path = self.path_for(record.org)
        ensure_private_dir(self.vault_dir)
        envelopes: dict[str, Any] = {}
        if tokens.access_token is not None:
            envelopes[ACCESS_TOKEN_FIELD] = self.keyring.seal(
                tokens.access_token, connection=record.org, field=ACCESS_TOKEN_FIELD
            )
        if tokens.refresh_token is not None:
            envelopes[REFRESH_TOKEN_FIELD] = self.keyring.seal(
                tokens.refresh_token, connection=record.org, field=REFRESH_TOKEN_FIELD
            )
        envelopes[RECORD_FIELD] = self.keyring.seal(
            json.dumps(record.to_dict(), sort_keys=True),
            connection=record.org,
            field=RECORD_FIELD,
            context=tuple(sorted([*envelopes, RECORD_FIELD])),
        )
        document = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "org": record.org,
            "fields": envelopes,
        }
        atomic_write(path, json.dumps(document, indent=2).encode("utf-8"))
        return record

    def update_record(self, org: str, **changes: Any) -> ConnectionRecord:
        """Change fields of the stored record, keeping its tokens. Hold :meth:`lock` around it."""
        loaded = self.load(org)
        if loaded is None:
            raise VaultError(f"org {org!r} has no connection to update")
        record, tokens = loaded
        return self.save(replace(record, **changes), tokens)

    def delete(self, org: str) -> bool:
        """Delete the org's vault file. Returns False when there was none."""
        path = self.path_for(org)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def rotate_key(self, new_key: VaultKey | None = None) -> VaultKey:
        """Re-encrypt every connection under a new key and make it the only key.

        With keys from a key file, the new key is first added in front of the old one, then each
        vault file is re-encrypted, then the old key is dropped, so a crash at any step leaves every
        file readable. With keys from ``$CORA_VAULT_KEY`` the caller passes ``new_key`` and must
        replace the variable's value afterwards; that is printed by ``cora keys rotate``.
        """
        new_key = new_key or VaultKey.generate()
        old = self.keyring
        if new_key.key_id == old.primary.key_id:
            raise VaultError(f"the new vault key {new_key.key_id} is already the current key")
        widened = Keyring(
            (new_key, *(k for k in old.keys if k.key_id != new_key.key_id)), old.source, old.path
        )
        if old.path is not None:
            write_key_file(old.path, widened.keys)
        self.keyring = widened
        self._key_file_stamp = _stamp(old.path)
        orgs = sorted(p.stem for p in self.vault_dir.glob("*.json"))
        for org in orgs:
            with self.lock(org):
                loaded = self.load(org)
                if loaded is not None:
                    self.save(*loaded)
        final = Keyring((new_key,), old.source, old.path)
        if old.path is not None:
            write_key_file(old.path, final.keys)
        self.keyring = final
        self._key_file_stamp = _stamp(old.path)
        return new_key


def _parse_document(path: Path, org: str, raw: bytes) -> dict[str, Any]:
    """Check a vault file's outer JSON and return its envelopes by field name."""
    recovery = (
        f"Restore it from a backup, or run `cora disconnect {org} --force` and connect again."
    )
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VaultError(f"{path} is not valid JSON, so the file is damaged. {recovery}") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != FILE_FORMAT
        or document.get("version") != FILE_VERSION
        or document.get("org") != org
        or not isinstance(document.get("fields"), dict)
    ):
        raise VaultError(
            f"{path} is not a version {FILE_VERSION} connection file for org {org!r}. {recovery}"
        )
    return dict(document["fields"])


def _stamp(path: Path | None) -> bytes | None:
    """Return the key file's content, to notice when another process replaced it."""
    if path is None:
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
