"""The encrypted vault: key loading, authenticated encryption, atomic files, key rotation."""

import base64
import json
import stat
from pathlib import Path

import pytest

from cora_pipeline.connect.store import ConnectionRecord, ConnectionStore, StoredTokens
from cora_pipeline.connect.vault import KEY_ENV, VaultKey
from cora_pipeline.errors import VaultError

ACCESS = "00DXX0000001abc!AQ0AQaccess-token-value-1234567890"
REFRESH = "5Aep861refresh-token-value-0987654321"


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def make_record(org: str = "acme", **changes: object) -> ConnectionRecord:
    values: dict[str, object] = {
        "org": org,
        "org_id": "00DXX0000001abcEAA",
        "org_name": "Acme",
        "user_id": "005XX000001XyZaAAK",
        "username": "admin@acme.example",
        "connected_at": "2026-12-04T10:00:00+00:00",
        "is_sandbox": False,
        "login_url": "https://login.salesforce.com",
        "instance_url": "https://acme.my.salesforce.com",
        "scopes": ("api", "refresh_token"),
        "flow": "web_server",
    }
    values.update(changes)
    return ConnectionRecord(**values)  # type: ignore[arg-type]


def new_store(home: Path) -> ConnectionStore:
    return ConnectionStore.open_home(home, create_key=True)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_round_trips_record_and_tokens(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    saved = store.save(make_record(), StoredTokens(ACCESS, REFRESH))

    reopened = ConnectionStore.open_home(tmp_path)
    loaded = reopened.load("acme")

    assert loaded is not None
    record, tokens = loaded
    assert record == saved
    assert record.key_id == store.key_id
    assert tokens.access_token == ACCESS
    assert tokens.refresh_token == REFRESH
    assert reopened.get("missing") is None
    assert [r.org for r in reopened.list()] == ["acme"]


def test_vault_files_hold_no_plaintext_secret(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))

    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert ACCESS.encode() not in content, path
            assert REFRESH.encode() not in content, path
            assert b"admin@acme.example" not in content, path


def test_key_and_vault_files_have_mode_0600(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))

    assert mode_of(tmp_path / "vault.key") == 0o600
    assert mode_of(store.path_for("acme")) == 0o600
    assert mode_of(store.vault_dir) == 0o700
    assert not list(store.vault_dir.glob(".*.tmp"))


def test_key_file_with_mode_0644_is_rejected(tmp_path: Path) -> None:
    new_store(tmp_path)
    (tmp_path / "vault.key").chmod(0o644)

    with pytest.raises(VaultError) as caught:
        ConnectionStore.open_home(tmp_path)

    assert "0644" in str(caught.value)
    assert f"chmod 600 {tmp_path / 'vault.key'}" in str(caught.value)


def test_missing_key_is_not_recreated_over_existing_vault(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    (tmp_path / "vault.key").unlink()

    with pytest.raises(VaultError, match="vault key is missing"):
        ConnectionStore.open_home(tmp_path, create_key=True)
    assert not (tmp_path / "vault.key").exists()


def test_open_without_key_and_without_create_fails(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match=KEY_ENV):
        ConnectionStore.open_home(tmp_path)


def test_wrong_key_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    other = VaultKey.generate()
    monkeypatch.setenv(KEY_ENV, other.encode())

    wrong = ConnectionStore.open_home(tmp_path)
    with pytest.raises(VaultError) as caught:
        wrong.load("acme")

    assert store.key_id in str(caught.value)
    assert other.key_id in str(caught.value)


def test_key_from_environment_encrypts_and_decrypts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = VaultKey.generate()
    monkeypatch.setenv(KEY_ENV, key.encode())
    store = ConnectionStore.open_home(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, None))

    assert not (tmp_path / "vault.key").exists()
    assert store.key_id == key.key_id
    loaded = ConnectionStore.open_home(tmp_path).load("acme")
    assert loaded is not None
    assert loaded[1] == StoredTokens(ACCESS, None)


def test_invalid_key_in_environment_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "c2hvcnQ")

    with pytest.raises(VaultError, match="5 bytes"):
        ConnectionStore.open_home(tmp_path)


@pytest.mark.parametrize("field", ["record", "access_token", "refresh_token"])
def test_tampered_ciphertext_fails_closed(tmp_path: Path, field: str) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    path = store.path_for("acme")
    document = json.loads(path.read_text())
    envelope = document["fields"][field]
    ciphertext = bytearray(base64.b64decode(envelope["ciphertext"]))
    ciphertext[0] ^= 0x01
    envelope["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    path.write_text(json.dumps(document))

    with pytest.raises(VaultError, match="failed authentication"):
        store.load("acme")


def test_ciphertext_moved_between_fields_fails(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    path = store.path_for("acme")
    document = json.loads(path.read_text())
    fields = document["fields"]
    fields["access_token"], fields["refresh_token"] = (
        fields["refresh_token"],
        fields["access_token"],
    )
    path.write_text(json.dumps(document))

    with pytest.raises(VaultError, match="failed authentication"):
        store.load("acme")


def test_file_copied_to_another_connection_fails(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record("acme"), StoredTokens(ACCESS, REFRESH))
    store.save(make_record("beta"), StoredTokens("beta-access-token-1234", None))
    document = json.loads(store.path_for("acme").read_text())
    document["org"] = "beta"
    store.path_for("beta").write_text(json.dumps(document))

    with pytest.raises(VaultError, match="failed authentication"):
        store.load("beta")


def test_damaged_json_fails_with_recovery_hint(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    store.path_for("acme").write_text("{not json")

    with pytest.raises(VaultError, match="cora disconnect acme --force"):
        store.get("acme")


def test_rotation_reencrypts_under_new_key(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record("acme"), StoredTokens(ACCESS, REFRESH))
    store.save(make_record("beta"), StoredTokens("beta-access-token-1234", None))
    old_key_file = (tmp_path / "vault.key").read_text()
    old_key_id = store.key_id

    new_key = store.rotate_key()

    assert new_key.key_id != old_key_id
    assert (tmp_path / "vault.key").read_text() != old_key_file
    assert mode_of(tmp_path / "vault.key") == 0o600
    reopened = ConnectionStore.open_home(tmp_path)
    assert [k.key_id for k in reopened.keyring.keys] == [new_key.key_id]
    for org in ("acme", "beta"):
        document = json.loads(reopened.path_for(org).read_text())
        key_ids = {envelope["key_id"] for envelope in document["fields"].values()}
        assert key_ids == {new_key.key_id}
        record = reopened.get(org)
        assert record is not None
        assert record.key_id == new_key.key_id
    loaded = reopened.load("acme")
    assert loaded is not None
    assert loaded[1] == StoredTokens(ACCESS, REFRESH)


def test_old_key_cannot_read_rotated_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    old_key_text = (tmp_path / "vault.key").read_text().splitlines()[-1]
    store.rotate_key()
    monkeypatch.setenv(KEY_ENV, old_key_text)

    with pytest.raises(VaultError, match="was encrypted with vault key"):
        ConnectionStore.open_home(tmp_path).load("acme")


def test_tokens_are_masked_in_repr() -> None:
    tokens = StoredTokens(ACCESS, REFRESH)

    assert ACCESS not in repr(tokens)
    assert REFRESH not in repr(tokens)
    assert "VaultKey(key_id=" in repr(VaultKey.generate())


def test_org_name_that_escapes_the_vault_is_rejected(tmp_path: Path) -> None:
    store = new_store(tmp_path)

    with pytest.raises(VaultError, match="invalid"):
        store.get("../etc")


def test_open_store_follows_rotation_by_another(tmp_path: Path) -> None:
    long_running = new_store(tmp_path)
    long_running.save(make_record(), StoredTokens(ACCESS, REFRESH))

    new_key = ConnectionStore.open_home(tmp_path).rotate_key()
    saved = long_running.save(make_record(), StoredTokens("after-rotation-token", REFRESH))

    assert saved.key_id == new_key.key_id
    loaded = ConnectionStore.open_home(tmp_path).load("acme")
    assert loaded is not None
    assert loaded[1].access_token == "after-rotation-token"


def test_removed_token_envelope_fails_closed(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))
    path = store.path_for("acme")
    document = json.loads(path.read_text())
    del document["fields"]["refresh_token"]
    path.write_text(json.dumps(document))

    with pytest.raises(VaultError, match="failed authentication"):
        store.load("acme")


def test_failed_write_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = new_store(tmp_path)
    store.save(make_record(), StoredTokens(ACCESS, REFRESH))

    def fail_replace(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", fail_replace)
    with pytest.raises(OSError, match="No space left"):
        store.save(make_record(), StoredTokens("new-access-token-value", "new-refresh-token"))
    monkeypatch.undo()

    loaded = ConnectionStore.open_home(tmp_path).load("acme")
    assert loaded is not None
    assert loaded[1] == StoredTokens(ACCESS, REFRESH)
    assert not list(store.vault_dir.glob(".*.tmp"))


def test_interrupted_environment_rotation_can_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = VaultKey.generate()
    new_key = VaultKey.generate()
    monkeypatch.setenv(KEY_ENV, old_key.encode())
    store = ConnectionStore.open_home(tmp_path)
    store.save(make_record("acme"), StoredTokens(ACCESS, REFRESH))
    store.save(make_record("beta"), StoredTokens("beta-access-token-1234", None))
    # Only acme was re-encrypted before the interruption.
    halfway = ConnectionStore.open_home(tmp_path)
    halfway.keyring = type(halfway.keyring)((new_key, old_key), halfway.keyring.source)
    loaded = halfway.load("acme")
    assert loaded is not None
    halfway.save(*loaded)

    ConnectionStore.open_home(tmp_path).rotate_key(new_key)

    monkeypatch.setenv(KEY_ENV, new_key.encode())
    reopened = ConnectionStore.open_home(tmp_path)
    assert [r.org for r in reopened.list()] == ["acme", "beta"]
    assert {r.key_id for r in reopened.list()} == {new_key.key_id}


def _create_key_and_report(home: str, start: object, output: object) -> None:
    from cora_pipeline.connect.vault import load_keyring

    start.wait()  # type: ignore[attr-defined]
    keyring = load_keyring(Path(home), create=True, vault_in_use=False)
    output.put(keyring.keys[0].encode())  # type: ignore[attr-defined]


def test_processes_creating_key_agree(tmp_path: Path) -> None:
    """Processes that create the missing key file at once all end up with the same key."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start = context.Event()
    output = context.Queue()
    workers = [
        context.Process(target=_create_key_and_report, args=(str(tmp_path), start, output))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    keys = {output.get(timeout=5) for _ in workers}
    on_disk = (tmp_path / "vault.key").read_text(encoding="ascii")
    assert len(keys) == 1
    assert next(iter(keys)) in on_disk
    assert mode_of(tmp_path / "vault.key") == 0o600
    assert not list(tmp_path.glob(".vault.key.*"))
