"""Start and stop a real dagster-webserver on 127.0.0.1 for tests and the screenshot script."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
LOCATION = "cora_pipeline"
LOCATIONS_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


@dataclass
class Webserver:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = {"query": query, "variables": variables or {}}
        response = requests.post(f"{self.url}/graphql", json=payload, timeout=30)
        if not response.ok:
            raise RuntimeError(
                f"GraphQL returned HTTP {response.status_code}: {response.text[:2000]}"
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


@contextmanager
def run_webserver(
    work_dir: Path, timeout: float = 90.0, *, dev: bool = False
) -> Iterator[Webserver]:
    """Run ``dagster-webserver`` on the repository's workspace, yielding once the location loaded.

    ``work_dir`` gets a fresh ``DAGSTER_HOME`` with the repository's dagster.yaml and is the working
    directory, so without a ``cora.yaml`` there the code location shows the demo org. ``dev`` runs
    ``dagster dev`` instead, which adds the daemon that dequeues launched runs.
    """
    home = work_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CORA_HOME": str(work_dir / "data")}
    env.pop("CORA_CONFIG", None)
    log_path = work_dir / "webserver.log"
    program = [_bin("dagster"), "dev"] if dev else [_bin("dagster-webserver")]
    command = [
        *program,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(REPO / "workspace.yaml"),
    ]
    with log_path.open("wb") as log_file:
        # Its own session, so that SIGINT reaches the webserver, the daemon and the code server
        # together. SIGINT goes back to its default action in case this process ignores it, because
        # dagster dev would then ignore it too.
        process = subprocess.Popen(
            command,
            cwd=work_dir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    server = Webserver(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_loaded(server, timeout)
        yield server
    finally:
        _stop(process)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_until_loaded(server: Webserver, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"dagster-webserver exited with status {server.process.returncode}: "
                f"{server.log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            if requests.get(f"{server.url}/server_info", timeout=2).ok:
                data = server.graphql(LOCATIONS_QUERY)
                entries = data["workspaceOrError"].get("locationEntries") or []
                entry = next((e for e in entries if e["name"] == LOCATION), None)
                if entry is not None and entry["loadStatus"] == "LOADED":
                    error = entry["locationOrLoadError"]
                    if error["__typename"] == "PythonError":
                        raise RuntimeError(f"code location failed to load: {error['message']}")
                    return
                last = f"location entries {entries}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(
        f"dagster-webserver did not load {LOCATION} within {timeout:.0f} s (last: {last}); log: "
        f"{server.log_path.read_text(errors='replace')[-3000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
