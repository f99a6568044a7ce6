"""The vault key and the authenticated encryption of each stored secret.

Each secret is encrypted with AES-256-GCM under a 256-bit key. The associated data names the
connection and the field, so a ciphertext copied into another connection's file, or into another
field of the same file, fails authentication instead of decrypting to the wrong value.

The key comes from ``$CORA_VAULT_KEY``, else from the key file ``<home>/vault.key``, which must have
mode 0600. Both hold one or more base64url keys (comma- or newline-separated). The first key encrypts.
Every listed key can decrypt, which lets ``cora keys rotate`` re-encrypt file by file without a
window in which some file is unreadable.
"""

import base64
import binascii
import hashlib
import json
import os
import secrets
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cora_pipeline.connect.redaction import register_secret
from cora_pipeline.errors import VaultError

KEY_ENV = "CORA_VAULT_KEY"
NEW_KEY_ENV = "CORA_VAULT_NEW_KEY"
KEY_FILE_NAME = "vault.key"
ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class VaultKey:
    """One AES-256 key and its id, the first 12 hex digits of a SHA-256 over the key.

    The id is shown by ``cora status`` and stored next to each ciphertext; it reveals nothing about
    the key.
    """

    key_id: str
    material: bytes

    def __repr__(self) -> str:
        return f"VaultKey(key_id={self.key_id!r})"

    @classmethod
    def from_material(cls, material: bytes) -> "VaultKey":
        if len(material) != KEY_BYTES:
            raise VaultError(f"a vault key must be {KEY_BYTES} bytes, got {len(material)}")
        key_id = hashlib.sha256(b"cora-vault-key-id:" + material).hexdigest()[:12]
        return cls(key_id=key_id, material=material)

    @classmethod
    def generate(cls) -> "VaultKey":
        return cls.from_material(secrets.token_bytes(KEY_BYTES))

    def encode(self) -> str:
        """Return the key as unpadded base64url text, the form key files and the environment use."""
        text = base64.urlsafe_b64encode(self.material).decode("ascii").rstrip("=")
        register_secret(text)
        return text


GENERATE_KEY_COMMAND = (
    'python -c "import base64, secrets; '
    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('='))\""
)


def parse_keys(text: str, source: str) -> tuple[VaultKey, ...]:
    """Parse comma- or newline-separated base64url keys; ``source`` names where they came from."""
    keys: list[VaultKey] = []
    items = [
        item.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for item in line.split(",")
    ]
    for item in items:
        if not item:
            continue
        register_secret(item)
        try:
            material = base64.urlsafe_b64decode(item + "=" * (-len(item) % 4))
        except (binascii.Error, ValueError):
            raise VaultError(
                f"{source} contains a vault key that is not valid base64url; "
                f"generate one with: {GENERATE_KEY_COMMAND}"
            ) from None
        if len(material) != KEY_BYTES:
            raise VaultError(
                f"{source} contains a vault key of {len(material)} bytes; an AES-256 key is "
                f"{KEY_BYTES} bytes. Generate one with: {GENERATE_KEY_COMMAND}"
            )
        keys.append(VaultKey.from_material(material))
    if not keys:
        raise VaultError(f"{source} contains no vault key")
    return tuple(keys)


@dataclass(frozen=True)
class Keyring:
    """The vault keys in use: ``keys[0]`` encrypts, any of them decrypts."""

    keys: tuple[VaultKey, ...]
    source: str
    """Description of the keys' origin for error messages: the environment variable or key file."""
    path: Path | None = None
    """The key file, or None when the keys came from the environment."""

    @property
    def primary(self) -> VaultKey:
        return self.keys[0]

    def find(self, key_id: str) -> VaultKey | None:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        return None

    def seal(
        self, plaintext: str, *, connection: str, field: str, context: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Encrypt one field of one connection and return its JSON envelope.

        ``context`` is authenticated with the field but not stored: :meth:`open` must get the same.
        """
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self.primary.material).encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(connection, field, context)
        )
        return {
            "alg": ALGORITHM,
            "key_id": self.primary.key_id,
            "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext),
        }

    def open(
        self,
        envelope: Any,
        *,
        connection: str,
        field: str,
        where: Path,
        context: tuple[str, ...] = (),
    ) -> str:
        """Decrypt an envelope written by :meth:`seal`; fail closed on any mismatch."""
        if not isinstance(envelope, Mapping) or envelope.get("alg") != ALGORITHM:
            raise VaultError(
                f"{where}: field {field!r} is not an {ALGORITHM} envelope; the file is damaged "
                f"or was not written by cora. {_RECOVERY}"
            )
        key_id = str(envelope.get("key_id"))
        key = self.find(key_id)
        if key is None:
            known = ", ".join(k.key_id for k in self.keys)
            raise VaultError(
                f"{where} was encrypted with vault key {key_id}, but {self.source} contains key "
                f"{known}. Set {KEY_ENV} (or restore {KEY_FILE_NAME}) to the key that wrote it."
            )
        try:
            nonce = _unb64(str(envelope["nonce"]))
            ciphertext = _unb64(str(envelope["ciphertext"]))
            plaintext = AESGCM(key.material).decrypt(
                nonce, ciphertext, _associated_data(connection, field, context)
            )
        except (KeyError, ValueError, binascii.Error, InvalidTag):
            raise VaultError(
                f"{where}: field {field!r} failed authentication under vault key {key_id}; the "
                f"file was modified, or copied from another connection. {_RECOVERY}"
            ) from None
        return plaintext.decode("utf-8")


_RECOVERY = (
    "Restore the file from a backup, or run `cora disconnect ORG --force` and connect again."
)


def _associated_data(connection: str, field: str, context: tuple[str, ...]) -> bytes:
    return json.dumps(["cora-vault", ENVELOPE_VERSION, connection, field, *context]).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def load_keyring(home: Path, *, create: bool, vault_in_use: bool) -> Keyring:
    """Load the vault keys from ``$CORA_VAULT_KEY`` or ``home/vault.key``.

    With ``create`` and neither present, a new key file is written. When ``vault_in_use`` is True
    (encrypted files exist), a missing key raises instead, because a new key could not read them.
    """
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return Keyring(parse_keys(from_env, f"environment variable {KEY_ENV}"), f"${KEY_ENV}")
    path = home / KEY_FILE_NAME
    if path.exists():
        check_private_file(path)
        text = path.read_text(encoding="ascii")
        return Keyring(parse_keys(text, f"key file {path}"), f"key file {path}", path)
    if vault_in_use:
        raise VaultError(
            f"the vault key is missing: {path} does not exist and {KEY_ENV} is not set, but "
            f"{home / 'vault'} holds encrypted connections. Restore the key file or set {KEY_ENV}."
        )
    if not create:
        raise VaultError(
            f"no vault key: set {KEY_ENV} or run `cora connect ORG`, which creates {path}"
        )
    key = VaultKey.generate()
    try:
        write_key_file(path, (key,), exclusive=True)
    except FileExistsError:
        # Another process created the key file first; use its key, so both encrypt with one key.
        check_private_file(path)
        text = path.read_text(encoding="ascii")
        return Keyring(parse_keys(text, f"key file {path}"), f"key file {path}", path)
    return Keyring((key,), f"key file {path}", path)


def write_key_file(path: Path, keys: tuple[VaultKey, ...], *, exclusive: bool = False) -> None:
    """Write the key file atomically; with ``exclusive``, raise FileExistsError if it exists."""
    ensure_private_dir(path.parent)
    lines = [
        "# cora vault keys: the first encrypts, all decrypt. Keep this file private (mode 0600).",
        *(key.encode() for key in keys),
    ]
    atomic_write(path, ("\n".join(lines) + "\n").encode("ascii"), exclusive=exclusive)


def check_private_file(path: Path) -> None:
    """Raise VaultError when group or others may read or write ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VaultError(
            f"{path} has mode {mode:04o}, which lets other users read the vault key; "
            f"run `chmod 600 {path}` and try again"
        )


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 when it is missing. An existing directory is left as is."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def atomic_write(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600 so that readers see the old or the new file.

    The temporary file is created with mode 0600 from the start (never wider), synced, renamed over
    ``path``, and the directory is synced so the rename survives a crash. With ``exclusive``, the
    temporary file is hard-linked to ``path`` instead, which raises FileExistsError when ``path``
    exists, so of two processes creating the same file only one succeeds.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temporary, path)
            temporary.unlink()
        else:
            temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
