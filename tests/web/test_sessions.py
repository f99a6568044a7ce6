"""Server-side sessions: expiry, the memory cap, and the authorizations each session started."""

import time

import pytest

from cora_pipeline.connect import PendingAuthorization
from cora_pipeline.connect.authorize import PENDING_LIFETIME_SECONDS
from cora_pipeline.web.sessions import MAX_PENDING_PER_SESSION, SessionStore


def pending(org: str, state: str, age: float = 0.0) -> PendingAuthorization:
    return PendingAuthorization(
        org=org,
        url=f"https://login.salesforce.com/services/oauth2/authorize?state={state}",
        state=state,
        redirect_uri="http://127.0.0.1:8765/settings/integrations/salesforce/callback",
        login_url="https://login.salesforce.com",
        is_sandbox=False,
        code_verifier="v" * 64,
        created_at=time.time() - age,
    )


def test_idle_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("cora_pipeline.web.sessions.time.monotonic", lambda: clock[0])
    store = SessionStore(idle_timeout=60, absolute_timeout=600)
    session = store.create()

    clock[0] += 59
    assert store.get(session.session_id) is session
    clock[0] += 61

    assert store.get(session.session_id) is None


def test_busy_session_ends_at_absolute_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("cora_pipeline.web.sessions.time.monotonic", lambda: clock[0])
    store = SessionStore(idle_timeout=60, absolute_timeout=150)
    session = store.create()

    for _ in range(3):
        clock[0] += 50
        assert store.get(session.session_id) is session
    clock[0] += 1

    assert store.get(session.session_id) is None


def test_cap_evicts_anonymous_sessions_first() -> None:
    store = SessionStore(max_sessions=3)
    operator = store.sign_in(store.create(), "ops")
    anonymous = [store.create() for _ in range(4)]

    assert len(store) == 3
    assert store.get(operator.session_id) is operator
    assert store.get(anonymous[0].session_id) is None
    assert store.get(anonymous[-1].session_id) is anonymous[-1]


def test_sign_in_replaces_id_and_csrf_token() -> None:
    store = SessionStore()
    anonymous = store.create()

    signed_in = store.sign_in(anonymous, "ops")

    assert signed_in.operator == "ops"
    assert signed_in.session_id != anonymous.session_id
    assert signed_in.csrf_token != anonymous.csrf_token
    assert store.get(anonymous.session_id) is None


def test_new_authorization_replaces_same_org() -> None:
    session = SessionStore().create()
    session.add_pending(pending("acme", "first"))
    session.add_pending(pending("globex", "other"))

    session.add_pending(pending("acme", "second"))

    assert set(session.pending) == {"other", "second"}
    found = session.pending_for("acme")
    assert found is not None
    assert found.state == "second"


def test_expired_authorization_is_forgotten() -> None:
    session = SessionStore().create()
    session.add_pending(pending("acme", "old", age=PENDING_LIFETIME_SECONDS + 1))

    assert session.pending_for("acme") is None
    assert session.pending == {}


def test_pending_authorizations_are_capped() -> None:
    session = SessionStore().create()
    for index in range(MAX_PENDING_PER_SESSION + 3):
        session.add_pending(pending(f"org{index}", f"state{index}", age=100 - index))

    assert len(session.pending) == MAX_PENDING_PER_SESSION
    assert "state0" not in session.pending
    assert f"state{MAX_PENDING_PER_SESSION + 2}" in session.pending
