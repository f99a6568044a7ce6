"""Masking of secrets in reprs and log records.

Every token, client secret, PKCE code verifier and JWT assertion this package handles is registered
here the moment it enters the process. :func:`install_redaction` then replaces each registered value
in every log record, whichever logger or handler emits it.
"""

import logging
import re
import threading
from typing import Any

MASK = "[redacted]"
# OAuth values in URLs and form bodies, masked even before they are registered: an HTTP client's
# debug log prints the callback URL with its authorization code before the flow can register it.
SECRET_PARAMETER = re.compile(
    r"(\b(?:code|access_token|refresh_token|client_secret|code_verifier|assertion|token)=)"
    r"[^&\s\"']+"
)
# Values shorter than this are not registered: masking short strings would garble ordinary text,
# and no Salesforce token, secret or verifier is this short.
MIN_SECRET_LENGTH = 8


class _SecretRegistry:
    """The set of secret strings seen by this process. Safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._ordered: tuple[str, ...] = ()

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret that contains another is masked whole.
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        if "=" in text:
            text = SECRET_PARAMETER.sub(rf"\g<1>{MASK}", text)
        return text


_registry = _SecretRegistry()


def register_secret(value: str | None) -> None:
    """Add a secret to the values :func:`redact` and the logging filter mask."""
    _registry.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``[redacted]``."""
    return _registry.redact(text)


def mask(value: str | None) -> str:
    """Show a secret in a repr: its first 4 characters, which identify it without revealing it."""
    if not value:
        return repr(value)
    register_secret(value)
    return repr(value[:4] + "…" + MASK)


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the message, its arguments and traceback.

    The message is formatted here (``msg % args``) and stored back with ``args`` cleared, so the
    handlers that format the record later see only the redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_REDACTED_MARK = "_cora_redacted"


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, _REDACTED_MARK, False):
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        # A malformed format string: leave it for the handler to report, but mask the parts.
        message = f"{record.msg} {record.args}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    setattr(record, _REDACTED_MARK, True)


_install_lock = threading.Lock()
_installed_filter: RedactingFilter | None = None


def install_redaction() -> RedactingFilter:
    """Mask registered secrets in every log record of this process. Calling it again is harmless.

    The filter goes on the root logger and on its current handlers. Filters on a logger do not see
    records that propagate from child loggers, so the log record factory is wrapped too: every
    record any logger creates (Dagster's included) is redacted when it is made.
    """
    global _installed_filter
    with _install_lock:
        if _installed_filter is None:
            _installed_filter = RedactingFilter()
            previous_factory = logging.getLogRecordFactory()

            def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous_factory(*args, **kwargs)
                _redact_record(record)
                return record

            logging.setLogRecordFactory(redacting_factory)
        root = logging.getLogger()
        if _installed_filter not in root.filters:
            root.addFilter(_installed_filter)
        for handler in root.handlers:
            if _installed_filter not in handler.filters:
                handler.addFilter(_installed_filter)
        return _installed_filter
