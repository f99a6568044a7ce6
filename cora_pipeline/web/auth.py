"""Operator accounts of the Integrations page: scrypt password hashes and sign-in throttling.

``<home>/web/operators.json`` maps each operator name to a scrypt hash of the password or token the
operator chose with ``cora web --set-password``. The file has mode 0600 and contains no password.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cora_pipeline.connect.vault import atomic_write, check_private_file, ensure_private_dir
from cora_pipeline.errors import ConfigError, CoraError, Terminal

log = logging.getLogger(__name__)

OPERATORS_FILE = "operators.json"
OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
# The OWASP Password Storage Cheat Sheet (May 2023) recommends scrypt with at least N=2**17, r=8,
# p=1. That takes 128 MiB (128 * N * r bytes) and about a second on a loaded 2-core machine.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 256 * 1024 * 1024
# At most this many hashes run at once, so a burst of sign-ins cannot take gigabytes of memory.
MAX_CONCURRENT_HASHES = 2
SALT_BYTES = 16
HASH_BYTES = 32


class OperatorFileError(CoraError, Terminal):
    """The operators file is missing, unreadable or malformed."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


def hash_password(password: str) -> str:
    """Return ``scrypt$n$r$p$salt$hash`` for ``password``, with a random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    with _hash_slots:
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=SCRYPT_N,
            r=SCRYPT_R,
            p=SCRYPT_P,
            maxmem=SCRYPT_MAXMEM,
            dklen=HASH_BYTES,
        )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Check ``password`` against a hash from :func:`hash_password` in constant time."""
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        with _hash_slots:
            digest = hashlib.scrypt(
                password.encode("utf-8"),
                salt=_unb64(salt),
                n=int(n),
                r=int(r),
                p=int(p),
                maxmem=SCRYPT_MAXMEM,
                dklen=len(_unb64(expected)),
            )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def check_new_password(password: str) -> None:
    """Raise ConfigError when ``password`` is too weak to protect the Integrations page."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )
    if password.strip() != password:
        raise ConfigError("the password starts or ends with whitespace; remove it")


def operators_path(home: Path) -> Path:
    return home / "web" / OPERATORS_FILE


@dataclass
class OperatorStore:
    """The operators file: operator name to password hash."""

    path: Path

    def load(self) -> dict[str, str]:
        """Return the stored hashes, or an empty mapping when the file does not exist."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            check_private_file(self.path)
        except CoraError as exc:
            raise OperatorFileError(str(exc)) from None
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise OperatorFileError(
                f"{self.path} is not valid JSON ({exc}); delete it and run "
                f"`cora web --set-password` again"
            ) from None
        operators = document.get("operators") if isinstance(document, dict) else None
        if not isinstance(operators, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in operators.items()
        ):
            raise OperatorFileError(
                f"{self.path} has no `operators` mapping of name to hash; delete it and run "
                f"`cora web --set-password` again"
            )
        return dict(operators)

    def set_password(self, operator: str, password: str) -> None:
        """Store the hash of ``password`` for ``operator``, replacing any earlier one."""
        if not OPERATOR_NAME.match(operator):
            raise ConfigError(
                f"operator name {operator!r} is invalid; use up to 64 letters, digits, "
                f"'.', '_', '@' or '-', starting with a letter or digit"
            )
        check_new_password(password)
        operators = self.load()
        operators[operator] = hash_password(password)
        ensure_private_dir(self.path.parent)
        document = {"format": "cora-web-operators", "version": 1, "operators": operators}
        atomic_write(self.path, json.dumps(document, indent=2, sort_keys=True).encode("utf-8"))

    def authenticate(self, operator: str, password: str) -> bool:
        """Check a sign-in. An unknown operator costs the same scrypt work as a wrong password."""
        operators = self.load()
        encoded = operators.get(operator)
        if encoded is None:
            verify_password(password, _dummy_hash())
            return False
        return verify_password(password, encoded)


@cache
def _dummy_hash() -> str:
    """A hash to check unknown operators against, so that they take as long as known ones."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass
class SignInThrottle:
    """Rejects sign-in attempts after ``max_failures`` failures from one client address within
    ``window_seconds``, until the oldest of them leaves the window."""

    max_failures: int = 5
    window_seconds: float = 15 * 60
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> float:
        """Return the seconds until ``client`` may try again, 0 when it may try now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.max_failures:
                return 0.0
            return failures[0] + self.window_seconds - now

    def record_failure(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            # Forget idle clients so that a scan from many addresses cannot grow this without end.
            cutoff = now - self.window_seconds
            for other in [c for c, f in self._failures.items() if not f or f[-1] <= cutoff]:
                del self._failures[other]

    def reset(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
