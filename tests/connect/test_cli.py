"""The connect, status, disconnect and keys rotate commands through the `cora` entry point."""

import json
import webbrowser
from pathlib import Path

import pytest
import yaml

from cora_pipeline.cli import main
from cora_pipeline.connect import ConnectionStore
from cora_pipeline.connect.vault import KEY_ENV, NEW_KEY_ENV, VaultKey

from .emulated import SECRET_ENV, Salesforce, redirect_browser


def write_config(salesforce: Salesforce, tmp_path: Path) -> Path:
    emu = salesforce.emu
    config = {
        "data_root": str(tmp_path / "data"),
        "orgs": {
            "acme": {
                "environment": "production",
                "login_url": emu.login_url,
                "client_id": emu.client_id,
                "client_secret_env": SECRET_ENV,
                "callback_port": salesforce.callback_port,
                "ca_file": str(emu.ca_file),
            },
            "beta": {
                "environment": "production",
                "login_url": emu.login_url,
                "client_id": emu.client_id,
            },
        },
    }
    path = tmp_path / "cora.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def config(salesforce: Salesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    browser = redirect_browser(str(salesforce.emu.ca_file))
    monkeypatch.setattr(webbrowser, "open", lambda url: bool(browser(url)))
    monkeypatch.setenv("BROWSER", "stand-in")  # a browser exists, so cora opens it
    return write_config(salesforce, tmp_path)


def cora(config: Path, *argv: str) -> int:
    return main(["--config", str(config), *argv])


def stored_secrets(tmp_path: Path, org: str = "acme") -> list[str]:
    store = ConnectionStore.open_home(tmp_path / "data" / "state")
    loaded = store.load(org)
    assert loaded is not None
    return [s for s in (loaded[1].access_token, loaded[1].refresh_token) if s]


def test_connect_prints_record_without_secrets(
    config: Path, salesforce: Salesforce, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cora(config, "connect", "acme", "--timeout", "10") == 0
    out, err = capsys.readouterr()

    assert "Connected org 'acme'." in out
    assert salesforce.emu.production.org_id in out
    assert salesforce.emu.production.admin_username in out
    assert "Production" in out
    for secret in [*stored_secrets(tmp_path), salesforce.emu.client_secret]:
        assert secret not in out
        assert secret not in err
    assert (tmp_path / "data" / "state" / "vault.key").exists()


def test_status_lists_connected_and_unconnected_orgs(
    config: Path, salesforce: Salesforce, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    capsys.readouterr()

    assert cora(config, "status") == 0
    out, _ = capsys.readouterr()

    assert "Cora Demo" in out
    assert "connected by" in out
    assert "vault key id" in out
    assert "org 'beta': not connected; run `cora connect beta`" in out
    for secret in stored_secrets(tmp_path):
        assert secret not in out


def test_status_json_has_record_fields(
    config: Path, salesforce: Salesforce, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    capsys.readouterr()

    assert cora(config, "status", "acme", "--json") == 0
    payload = json.loads(capsys.readouterr().out)

    assert payload[0]["org_id"] == salesforce.emu.production.org_id
    assert payload[0]["flow"] == "web_server"
    assert payload[0]["is_sandbox"] is False
    assert "access_token" not in payload[0]
    assert "refresh_token" not in payload[0]


def test_status_before_any_connection_needs_no_key(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cora(config, "status") == 0

    assert "not connected" in capsys.readouterr().out
    assert not (tmp_path / "data" / "state" / "vault.key").exists()


def test_connect_with_sandbox_mismatch_exits_nonzero(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cora(config, "connect", "acme", "--sandbox", "--timeout", "10") != 0
    _, err = capsys.readouterr()

    # --sandbox keeps the configured (emulator) login host, which is a Production org.
    assert "requested as a Sandbox" in err


def test_disconnect_then_status(
    config: Path, salesforce: Salesforce, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    capsys.readouterr()

    assert cora(config, "disconnect", "acme") == 0
    out, _ = capsys.readouterr()
    assert "token was revoked" in out
    assert salesforce.emu.oauth.tokens.refresh == {}

    cora(config, "status", "acme")
    assert "not connected" in capsys.readouterr().out


def test_forced_disconnect_deletes_undecryptable_file(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    monkeypatch.setenv(KEY_ENV, VaultKey.generate().encode())
    capsys.readouterr()

    assert cora(config, "disconnect", "acme") != 0
    assert "was encrypted with vault key" in capsys.readouterr().err
    assert cora(config, "disconnect", "acme", "--force") == 0

    assert "could not be decrypted" in capsys.readouterr().out
    assert not (tmp_path / "data" / "state" / "vault" / "acme.json").exists()


def test_keys_rotate_with_key_file(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    secrets_before = stored_secrets(tmp_path)
    key_file = tmp_path / "data" / "state" / "vault.key"
    old_key = key_file.read_text()
    capsys.readouterr()

    assert cora(config, "keys", "rotate") == 0
    out, _ = capsys.readouterr()

    assert "Re-encrypted 1 connection(s)" in out
    assert key_file.read_text() != old_key
    assert stored_secrets(tmp_path) == secrets_before
    for line in (old_key + key_file.read_text()).splitlines():
        if not line.startswith("#"):
            assert line not in out


def test_keys_rotate_with_environment_key(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old_key = VaultKey.generate()
    new_key = VaultKey.generate()
    monkeypatch.setenv(KEY_ENV, old_key.encode())
    cora(config, "connect", "acme", "--timeout", "10")
    secrets_before = stored_secrets(tmp_path)
    capsys.readouterr()

    assert cora(config, "keys", "rotate") != 0
    assert NEW_KEY_ENV in capsys.readouterr().err

    monkeypatch.setenv(NEW_KEY_ENV, new_key.encode())
    assert cora(config, "keys", "rotate") == 0
    out, _ = capsys.readouterr()
    assert f"Now set {KEY_ENV}" in out
    assert new_key.encode() not in out

    monkeypatch.setenv(KEY_ENV, new_key.encode())
    monkeypatch.delenv(NEW_KEY_ENV)
    assert stored_secrets(tmp_path) == secrets_before
    assert not (tmp_path / "data" / "state" / "vault.key").exists()


def test_key_file_mode_0644_fails_with_fix(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    key_file = tmp_path / "data" / "state" / "vault.key"
    key_file.chmod(0o644)
    capsys.readouterr()

    assert cora(config, "status") != 0

    assert f"chmod 600 {key_file}" in capsys.readouterr().err


def test_status_reports_unreadable_file_per_org(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cora(config, "connect", "acme", "--timeout", "10")
    (tmp_path / "data" / "state" / "vault" / "acme.json").write_text("{}")
    capsys.readouterr()

    assert cora(config, "status") == 1
    out, _ = capsys.readouterr()

    assert "org 'acme': the vault file cannot be read" in out
    assert "org 'beta': not connected" in out


def test_connect_with_jwt_flow_options(
    config: Path, salesforce: Salesforce, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = salesforce.emu
    capsys.readouterr()

    status = cora(
        config,
        "connect",
        "acme",
        "--flow",
        "jwt",
        "--username",
        emu.production.admin_username,
        "--private-key-file",
        emu.jwt_private_key_file,
    )

    assert status == 0
    out = capsys.readouterr().out
    assert "jwt" in out
    assert emu.production.admin_username in out


def test_client_credentials_on_login_host_is_rejected(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cora(
        config,
        "connect",
        "acme",
        "--flow",
        "client-credentials",
        "--login-url",
        "https://login.salesforce.com",
    )

    assert status != 0
    assert "My Domain" in capsys.readouterr().err


def test_client_credentials_on_my_domain_connects_from_cli(
    config: Path, salesforce: Salesforce, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = salesforce.emu

    status = cora(
        config,
        "connect",
        "acme",
        "--flow",
        "client-credentials",
        "--login-url",
        emu.production.instance_url,
    )

    assert status == 0
    assert emu.production.integration_username in capsys.readouterr().out


def test_disconnect_of_unconnected_org_says_so(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cora(config, "disconnect", "beta") != 0

    assert "org 'beta' is not connected; run `cora connect beta` first" in capsys.readouterr().err
