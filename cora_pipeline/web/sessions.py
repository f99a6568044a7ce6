"""Server-side sessions of the Integrations page.

The browser holds only a random session id in an ``HttpOnly`` cookie. Everything else stays in this
process: the signed-in operator, the CSRF token, and each started OAuth authorization with its PKCE
code verifier, so no secret ever travels to the browser. Sessions live in memory, so restarting
``cora web`` signs every operator out and abandons authorizations in progress.
"""

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from cora_pipeline.connect import PendingAuthorization
from cora_pipeline.connect.authorize import PENDING_LIFETIME_SECONDS

SESSION_COOKIE = "cora_session"
# An operator may spend a while on the Salesforce login and approval pages; 30 idle minutes covers
# that and the 15 minutes an authorization code stays valid.
IDLE_TIMEOUT_SECONDS = 30 * 60
ABSOLUTE_TIMEOUT_SECONDS = 12 * 60 * 60
# Anonymous sessions are created for every visitor of the sign-in page; the cap bounds memory.
MAX_SESSIONS = 10_000
# Authorizations kept per session. Starting more drops the oldest.
MAX_PENDING_PER_SESSION = 8

NoticeLevel = Literal["success", "error", "info"]


@dataclass(frozen=True)
class Notice:
    """A message shown once on a card (or, with an empty org, above the cards)."""

    level: NoticeLevel
    title: str
    text: str = ""
    hint: str | None = None


@dataclass
class Session:
    """One browser's session. ``operator`` is None until the operator signs in."""

    session_id: str
    csrf_token: str
    created_at: float
    last_seen: float
    operator: str | None = None
    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    """Started web-server flows keyed by their OAuth ``state``."""
    notices: dict[str, Notice] = field(default_factory=dict)
    """Messages keyed by org name; the empty name is for the whole page."""

    @property
    def signed_in(self) -> bool:
        return self.operator is not None

    def add_pending(self, pending: PendingAuthorization) -> None:
        """Keep a started authorization, replacing an earlier one for the same org."""
        self.drop_expired_pending()
        for state, other in list(self.pending.items()):
            if other.org == pending.org:
                del self.pending[state]
        self.pending[pending.state] = pending
        while len(self.pending) > MAX_PENDING_PER_SESSION:
            oldest = min(self.pending.values(), key=lambda p: p.created_at)
            del self.pending[oldest.state]

    def pending_for(self, org: str) -> PendingAuthorization | None:
        self.drop_expired_pending()
        return next((p for p in self.pending.values() if p.org == org), None)

    def drop_expired_pending(self) -> None:
        """Forget authorizations older than an authorization code lives, which cannot finish."""
        cutoff = time.time() - PENDING_LIFETIME_SECONDS
        for state in [s for s, p in self.pending.items() if p.created_at < cutoff]:
            del self.pending[state]

    def take_notice(self, org: str) -> Notice | None:
        return self.notices.pop(org, None)


class SessionStore:
    """Sessions in memory, keyed by the random id in the session cookie."""

    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        absolute_timeout: float = ABSOLUTE_TIMEOUT_SECONDS,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> Session:
        now = time.monotonic()
        session = Session(
            session_id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
        )
        with self._lock:
            self._prune(now)
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """Return the live session with this id and mark it used, or None."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def sign_in(self, session: Session, operator: str) -> Session:
        """Return a new session for ``operator`` that replaces ``session``.

        The id and the CSRF token change at sign-in, so an id planted in the browser before sign-in
        (session fixation) is worthless afterwards.
        """
        with self._lock:
            self._sessions.pop(session.session_id, None)
        signed_in = self.create()
        signed_in.operator = operator
        return signed_in

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_timeout
            or now - session.created_at > self.absolute_timeout
        )

    def _prune(self, now: float) -> None:
        for session_id in [s for s, v in self._sessions.items() if self._expired(v, now)]:
            del self._sessions[session_id]
        if len(self._sessions) < self.max_sessions:
            return
        # Drop the least recently used anonymous sessions first, then signed-in ones.
        ordered = sorted(self._sessions.values(), key=lambda s: (s.signed_in, s.last_seen))
        for session in ordered[: len(self._sessions) - self.max_sessions + 1]:
            del self._sessions[session.session_id]
