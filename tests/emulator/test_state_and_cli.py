"""Persistence across restarts, fixed ports, and the ``cora emulator`` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cora_pipeline.emulator import Emulator, EmulatorSettings

from .helpers import connect, salesforce, sobject, trusting_session


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_state_survives_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "org-state.json"
    ports = {
        "login": _free_port(),
        "sandbox_login": _free_port(),
        "production": _free_port(),
        "sandbox": _free_port(),
    }
    settings = EmulatorSettings(
        seed=6,
        sizes={"Account": 10, "Invoice__c": 5},
        state_file=state_file,
        data_dir=tmp_path / "keys",
        ports=ports,
    )
    with Emulator(settings) as first:
        admin = first.production.admin
        record_id = admin.create("Account", {"Name": "Persisted ✓"})
        admin.delete("Account", admin.records("Account")[0]["Id"])
        admin.add_field("Account", "Tier__c", "string", length=20)
        admin.update("Account", record_id, {"Tier__c": "Gold"})
        admin.hide_field("Account", "Phone")
        admin.hide_field("Account", "Website", user=first.production.integration_username)
        admin.advance_clock(3 * 86400)
        admin.set_api_usage(123)
        token = connect(first)
        clock_before = admin.now()
        ca_before = Path(first.ca_file).read_bytes()
        assert first.production.instance_url == f"https://127.0.0.1:{ports['production']}"
    assert state_file.exists()
    assert token["access_token"] not in state_file.read_text()
    assert token["refresh_token"] not in state_file.read_text()

    with Emulator(settings) as second:
        admin = second.production.admin
        assert Path(second.ca_file).read_bytes() == ca_before
        assert admin.get("Account", record_id)["Tier__c"] == "Gold"
        assert len(admin.records("Account", include_deleted=True)) == 11
        assert len(admin.records("Account")) == 10
        assert admin.now() >= clock_before
        assert admin.api_usage()[0] >= 123
        sf = salesforce(second, token)
        assert (
            sf.query(f"SELECT Tier__c FROM Account WHERE Id = '{record_id}'")["records"][0][
                "Tier__c"
            ]
            == "Gold"
        )
        described = {f["name"] for f in sobject(sf, "Account").describe()["fields"]}
        assert "Phone" not in described
        assert "Website" in described
        integration = second.production.integration_user_id
        assert second.production.schema["Account"].is_hidden("Website", integration)
        refreshed = trusting_session(second).post(
            f"{second.login_url}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token["refresh_token"],
                "client_id": second.client_id,
                "client_secret": second.client_secret,
            },
        )
        assert refreshed.status_code == 200


def test_save_writes_state_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    with Emulator(EmulatorSettings(seed=6, sizes={"Account": 3}, state_file=state_file)) as emu:
        emu.save()
        assert state_file.exists()
        assert oct(state_file.stat().st_mode & 0o777) == "0o600"


def test_cora_emulator_command_prints_and_serves(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cora_pipeline.emulator.cli",
            "--seed",
            "3",
            "--sizes",
            "Account=5,Contact=5",
            "--login-port",
            str(port),
            "--auto-approve",
            "--callback-url",
            "http://127.0.0.1:9999/cb",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or line.startswith("Serving"):
                break
            key, _, value = line.partition(":")
            lines[key.strip()] = value.strip()
        assert lines["Login URL"] == f"https://127.0.0.1:{port}"
        assert lines["CA file to trust"] == str(tmp_path / "emulator-ca.pem")
        assert lines["Client id"].startswith("3MVG9")
        assert lines["Callback URLs"] == "http://127.0.0.1:9999/cb"
        session = requests.Session()
        session.verify = lines["CA file to trust"]
        session.trust_env = False
        discovery = session.get(f"{lines['Login URL']}/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == lines["Login URL"]
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert exit_code == 0
