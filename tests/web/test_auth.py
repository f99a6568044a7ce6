"""Operator passwords: scrypt hashes in a private file, `cora web --set-password`, throttling."""

import argparse
import io
import stat
from pathlib import Path

import pytest

from cora_pipeline.config import Settings
from cora_pipeline.errors import ConfigError
from cora_pipeline.web import cli
from cora_pipeline.web.auth import (
    OperatorFileError,
    OperatorStore,
    SignInThrottle,
    hash_password,
    operators_path,
    verify_password,
)

PASSWORD = "correct horse battery staple"


def test_hash_verifies_only_its_password() -> None:
    encoded = hash_password(PASSWORD)

    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + "x", encoded)
    assert not verify_password(PASSWORD, "scrypt$broken")
    assert PASSWORD not in encoded
    assert hash_password(PASSWORD) != encoded


def test_operator_file_is_private_and_hashed(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "web" / "operators.json")

    store.set_password("ops", PASSWORD)

    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    assert PASSWORD not in store.path.read_text(encoding="utf-8")
    assert store.authenticate("ops", PASSWORD)
    assert not store.authenticate("ops", "wrong password!")
    assert not store.authenticate("nobody", PASSWORD)


def test_readable_operator_file_is_rejected(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "web" / "operators.json")
    store.set_password("ops", PASSWORD)
    store.path.chmod(0o644)

    with pytest.raises(OperatorFileError, match="chmod 600"):
        store.authenticate("ops", PASSWORD)


@pytest.mark.parametrize(
    ("operator", "password", "message"),
    [
        ("ops", "short", "at least 12"),
        ("ops", " padded password ", "whitespace"),
        ("../ops", PASSWORD, "operator name"),
    ],
)
def test_weak_or_invalid_credentials_are_rejected(
    tmp_path: Path, operator: str, password: str, message: str
) -> None:
    store = OperatorStore(tmp_path / "operators.json")

    with pytest.raises(ConfigError, match=message):
        store.set_password(operator, password)
    assert not store.path.exists()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_set_password_reads_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_root=tmp_path, orgs={})
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))

    status = cli.run(parse("--set-password", "--operator", "dana"), settings)

    assert status == 0
    assert OperatorStore(operators_path(settings.home)).authenticate("dana", PASSWORD)
    output = capsys.readouterr().out
    assert "dana" in output
    assert PASSWORD not in output


def test_serving_without_a_password_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_root=tmp_path, orgs={})

    with pytest.raises(ConfigError, match="cora web --set-password"):
        cli.run(parse(), settings)


def test_throttle_releases_after_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("cora_pipeline.web.auth.time.monotonic", lambda: clock[0])
    throttle = SignInThrottle(max_failures=2, window_seconds=60)

    throttle.record_failure("10.0.0.1")
    throttle.record_failure("10.0.0.1")

    assert throttle.retry_after("10.0.0.1") == pytest.approx(60)
    assert throttle.retry_after("10.0.0.2") == 0
    clock[0] += 61
    assert throttle.retry_after("10.0.0.1") == 0
