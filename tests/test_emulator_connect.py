"""`cora emulator` prints enough to connect its org with `cora connect --no-browser`."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests


def test_printed_config_connects(tmp_path: Path) -> None:
    env = {**os.environ, "CORA_HOME": str(tmp_path / "cora")}
    env.pop("CORA_VAULT_KEY", None)
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cora_pipeline.cli",
            "emulator",
            "--auto-approve",
            "--data-dir",
            str(tmp_path / "emulator"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert emulator.stdout is not None
        printed = []
        for line in emulator.stdout:
            printed.append(line)
            if line.startswith("Serving until interrupted"):
                break
        output = "".join(printed)
        secret = re.search(r"^Client secret:\s+(\S+)", output, re.MULTILINE)
        assert secret is not None
        snippet = output[output.index("  orgs:") : output.index("then run:")]
        (tmp_path / "cora.yaml").write_text(snippet, encoding="utf-8")
        env["CORA_EMULATOR_CLIENT_SECRET"] = secret.group(1)
        ca_file = re.search(r"ca_file: (\S+)", snippet)
        assert ca_file is not None

        connect = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cora_pipeline.cli",
                "--config",
                str(tmp_path / "cora.yaml"),
                "connect",
                "emulated",
                "--no-browser",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert connect.stdout is not None and connect.stdin is not None
        authorize_url = None
        for line in connect.stdout:
            if line.strip().startswith("https://") and "/services/oauth2/authorize" in line:
                authorize_url = line.strip()
                break
        assert authorize_url is not None
        # What the administrator's browser does: the emulator approves and redirects.
        response = requests.get(
            authorize_url, verify=ca_file.group(1), allow_redirects=False, timeout=30
        )
        assert response.status_code == 302
        remaining, _ = connect.communicate(response.headers["Location"] + "\n", timeout=120)

        assert connect.returncode == 0, remaining
        assert "emulated" in remaining
        assert secret.group(1) not in remaining
    finally:
        os.killpg(emulator.pid, signal.SIGINT)
        emulator.wait(timeout=30)
