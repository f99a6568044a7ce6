"""No token, secret, code verifier or vault key reaches logs, output, Dagster or any written file.

One scenario runs every stage that handles secrets: connect through the command line, a refresh
after expiry inside a Dagster run, key rotation and disconnect. Every secret seen along the way is
collected, then the captured logs, the command output, the Dagster event log and run config, and
every file under the test's directory are searched for each of them.
"""

import logging
import webbrowser
from pathlib import Path

import dagster as dg
import pytest
import yaml

import cora_pipeline.connect.loopback as loopback
from cora_pipeline.cli import main
from cora_pipeline.config import load_settings
from cora_pipeline.connect import ConnectionStore, PendingAuthorization, install_redaction
from cora_pipeline.connect.vault import KEY_ENV, NEW_KEY_ENV

from .emulated import SECRET_ENV, StartEmulator, redirect_browser

LIFETIME = 600.0
SIZES = {"Account": 3, "Contact": 3, "Opportunity": 3, "Case": 3, "Invoice__c": 3}


def test_secrets_absent_everywhere(
    start_emulator: StartEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    salesforce = start_emulator(
        access_token_lifetime=LIFETIME, rotate_refresh_tokens=True, sizes=SIZES
    )
    emu = salesforce.emu
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    install_redaction()
    caplog.set_level(logging.DEBUG)
    browser = redirect_browser(str(emu.ca_file))
    monkeypatch.setattr(webbrowser, "open", lambda url: bool(browser(url)))
    monkeypatch.setenv("BROWSER", "stand-in")  # a browser exists, so cora opens it
    pending: list[PendingAuthorization] = []
    original_begin = loopback.begin_authorization

    def recording_begin(*args: object, **kwargs: object) -> PendingAuthorization:
        result = original_begin(*args, **kwargs)  # type: ignore[arg-type]
        pending.append(result)
        return result

    monkeypatch.setattr(loopback, "begin_authorization", recording_begin)
    data_root = tmp_path / "data"
    config = tmp_path / "cora.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_root": str(data_root),
                "orgs": {
                    "acme": {
                        "login_url": emu.login_url,
                        "client_id": emu.client_id,
                        "client_secret_env": SECRET_ENV,
                        "callback_port": salesforce.callback_port,
                        "ca_file": str(emu.ca_file),
                    }
                },
            }
        )
    )
    secrets: set[str] = {emu.client_secret}
    vault_keys: set[str] = set()

    def collect_stored() -> None:
        store = ConnectionStore.open_home(data_root / "state")
        loaded = store.load("acme")
        assert loaded is not None
        secrets.update(s for s in (loaded[1].access_token, loaded[1].refresh_token) if s)
        vault_keys.update(key.encode() for key in store.keyring.keys)

    assert main(["--config", str(config), "connect", "acme", "--timeout", "10"]) == 0
    collect_stored()
    secrets.update(p.code_verifier for p in pending)

    # A Dagster run whose first call finds the access token expired and refreshes it.
    emu.production.admin.advance_clock(LIFETIME + 1)
    from cora_pipeline.orchestration.runner import run_sync

    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    outcome = run_sync(load_settings(config), "acme", instance=instance)
    assert outcome.success, outcome.error
    collect_stored()
    assert len(secrets) >= 6  # client secret, verifier, two access and two refresh tokens

    assert main(["--config", str(config), "keys", "rotate"]) == 0
    collect_stored()
    assert main(["--config", str(config), "status"]) == 0
    assert main(["--config", str(config), "disconnect", "acme"]) == 0

    out, err = capsys.readouterr()
    dagster_text = "\n".join(repr(entry) for entry in instance.all_logs(outcome.run_id))
    run = instance.get_run_by_id(outcome.run_id)
    assert run is not None
    run_config_text = repr(run.run_config) + repr(run.tags)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written
    key_file = data_root / "state" / "vault.key"
    assert len(vault_keys) == 2
    for secret in secrets | vault_keys:
        assert secret not in caplog.text
        assert secret not in out
        assert secret not in err
        assert secret not in dagster_text
        assert secret not in run_config_text
        for path in written:
            if path == key_file and secret in vault_keys:
                continue  # the key file contains the current vault key by design
            assert secret.encode() not in path.read_bytes(), path
    assert "access token refreshed" in caplog.text
