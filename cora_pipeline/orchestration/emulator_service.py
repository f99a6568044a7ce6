"""The bundled emulator as a long-lived background process, shared by every Dagster process.

An org configured with ``emulator: true`` (the demo org when there is no configuration file) has no
Salesforce to reach, so the first run that needs it starts the emulator here. Step processes, the
webserver's run workers and ``cora sync`` all find the same process again through a descriptor file,
``<data_root>/emulator/<org>/service.json``, and check that it is alive (the process exists and its
login host responds over HTTPS) before using it.

- Start: one process at a time holds ``service.lock`` while it checks the descriptor and, when no
  emulator responds, starts ``python -m cora_pipeline.orchestration.emulator_service`` in its own
  session, so it outlives the run that started it.
- State: the emulator keeps the org in ``state.json`` (records, clock, API usage, issued tokens),
  saved every ``SAVE_INTERVAL_SECONDS`` and on SIGTERM or SIGINT. A restart reuses the previous ports
  when they are free, so stored tokens and instance URLs stay valid.
- Secret: the emulator generates its connected app's consumer secret. The emulator process seals it
  with the vault key (AES-256-GCM, the vault's own envelope) into the descriptor, so the secret never
  appears in plain text in a file, in run config or in an environment variable.
- Stop: ``python -m cora_pipeline.orchestration.emulator_service stop ORG``, :func:`stop_emulator`,
  or SIGTERM to the ``pid`` in the descriptor.
"""

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock, Timeout

from cora_pipeline.config import Settings
from cora_pipeline.connect.vault import atomic_write, ensure_private_dir
from cora_pipeline.errors import CoraError, Terminal

log = logging.getLogger(__name__)

DESCRIPTOR_FILE = "service.json"
LOCK_FILE = "service.lock"
LOG_FILE = "emulator.log"
STATE_FILE = "state.json"
SECRET_FIELD = "emulator_client_secret"  # noqa: S105 -- the envelope's field name, not a secret
SAVE_INTERVAL_SECONDS = 30.0
START_TIMEOUT_SECONDS = 60.0
PROBE_TIMEOUT_SECONDS = 3.0
EMULATOR_SEED = 7


class EmulatorStartError(CoraError, Terminal):
    """The background emulator did not start or does not respond."""


@dataclass(frozen=True)
class EmulatorService:
    """How to reach a running background emulator; the contents of its descriptor file."""

    pid: int
    org: str
    login_url: str
    instance_url: str
    ca_file: str
    client_id: str
    callback_port: int
    ports: dict[str, int]
    sealed_client_secret: dict[str, Any] = field(repr=False)
    """The consumer secret as a vault envelope; open it with the vault's keyring."""
    started_at: float = 0.0

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.callback_port}/callback"

    def client_secret(self, settings: Settings) -> str:
        """Decrypt the consumer secret with the vault key of ``settings``."""
        from cora_pipeline.connect import ConnectionStore

        store = ConnectionStore.open(settings)
        return store.keyring.open(
            self.sealed_client_secret,
            connection=self.org,
            field=SECRET_FIELD,
            where=service_dir(settings, self.org) / DESCRIPTOR_FILE,
        )


def service_dir(settings: Settings, org: str) -> Path:
    return settings.data_root / "emulator" / org


def read_descriptor(directory: Path) -> EmulatorService | None:
    path = directory / DESCRIPTOR_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return EmulatorService(**raw)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.warning("ignoring the damaged emulator descriptor %s: %s", path, exc)
        return None


def is_alive(service: EmulatorService) -> bool:
    """Return True when the descriptor's process exists and its login host responds over HTTPS."""
    if not _pid_running(service.pid):
        return False
    try:
        response = requests.get(
            f"{service.login_url}/.well-known/openid-configuration",
            verify=service.ca_file,
            timeout=PROBE_TIMEOUT_SECONDS,
        )
    except (requests.RequestException, OSError):
        return False
    return response.status_code == 200


def ensure_emulator(
    settings: Settings, org: str, *, timeout: float = START_TIMEOUT_SECONDS
) -> tuple[EmulatorService, bool]:
    """Return the org's running background emulator, starting it first when none responds.

    The second value is True when this call started the process. The vault key must exist before
    the call (``ConnectionStore.open(settings, create_key=True)``), because the new process seals
    the consumer secret with it.
    """
    directory = service_dir(settings, org)
    ensure_private_dir(directory)
    try:
        with FileLock(directory / LOCK_FILE, timeout=timeout + 30):
            service = read_descriptor(directory)
            if service is not None and is_alive(service):
                return service, False
            if service is not None and _pid_running(service.pid):
                log.warning(
                    "emulator process %d of org %s does not respond at %s; stopping it",
                    service.pid,
                    org,
                    service.login_url,
                )
                _terminate(service.pid, timeout=10)
            return _start(settings, org, directory, timeout), True
    except Timeout:
        raise EmulatorStartError(
            f"timed out waiting for {directory / LOCK_FILE}: another process is starting the "
            f"emulator of org {org!r}. If none is, delete the file and retry."
        ) from None


def stop_emulator(settings: Settings, org: str, *, timeout: float = 15.0) -> bool:
    """Stop the org's background emulator (it saves its state first); False when none runs."""
    directory = service_dir(settings, org)
    service = read_descriptor(directory)
    if service is None or not _pid_running(service.pid):
        return False
    _terminate(service.pid, timeout=timeout)
    return True


def _start(settings: Settings, org: str, directory: Path, timeout: float) -> EmulatorService:
    (directory / DESCRIPTOR_FILE).unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "cora_pipeline.orchestration.emulator_service",
        "serve",
        "--dir",
        str(directory),
        "--org",
        org,
        "--vault-home",
        str(settings.home),
    ]
    log_path = directory / LOG_FILE
    with log_path.open("ab") as log_file:
        # A new session: the emulator outlives the run and ignores signals sent to the run's
        # process group.
        process = subprocess.Popen(  # noqa: S603 -- fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    log.info("started the emulator of org %s as process %d (log: %s)", org, process.pid, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorStartError(
                f"the emulator of org {org!r} exited with status {process.returncode} while "
                f"starting; see {log_path}"
            )
        service = read_descriptor(directory)
        if service is not None and service.pid == process.pid and is_alive(service):
            return service
        time.sleep(0.1)
    _terminate(process.pid, timeout=10)
    raise EmulatorStartError(
        f"the emulator of org {org!r} did not respond within {timeout:.0f} s; see {log_path}"
    )


def _pid_running(pid: int) -> bool:
    try:
        # Reap the process if it is this process's exited child, so a zombie does not look alive.
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process that another process started stays a zombie until its parent reaps it.
    # Linux shows that as state Z in /proc; elsewhere the process counts as running.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    state = stat.rsplit(")", 1)[-1].split()[:1]
    return state != ["Z"]


def _terminate(pid: int, *, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_for_exit(pid, timeout):
        return
    log.warning(
        "emulator process %d did not stop within %.0f s of SIGTERM; killing it", pid, timeout
    )
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not _wait_for_exit(pid, 10.0):
        raise EmulatorStartError(f"emulator process {pid} did not exit after SIGKILL")


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_running(pid):
            return True
        time.sleep(0.1)
    return False


# -- the emulator process ------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _previous_ports(directory: Path) -> tuple[dict[str, int], int | None]:
    path = directory / "ports.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): int(v) for k, v in raw["ports"].items()}, int(raw["callback_port"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}, None


def serve(directory: Path, org: str, vault_home: Path) -> int:
    """Run the emulator until SIGTERM or SIGINT, publishing its descriptor while it serves."""
    from cora_pipeline.connect import ConnectionStore
    from cora_pipeline.emulator import Emulator, EmulatorSettings

    keyring = ConnectionStore.open_home(vault_home).keyring
    ports, callback_port = _previous_ports(directory)
    emulator = None
    for attempt_ports, attempt_callback in ((ports, callback_port), ({}, None)):
        callback = attempt_callback or _free_port()
        candidate = Emulator(
            EmulatorSettings(
                seed=EMULATOR_SEED,
                auto_approve=True,
                callback_urls=(f"http://127.0.0.1:{callback}/callback",),
                data_dir=directory,
                state_file=directory / STATE_FILE,
                ports=attempt_ports,
            )
        )
        try:
            emulator = candidate.start()
        except OSError as exc:
            if not attempt_ports:
                raise
            log.warning("previous emulator ports %s are taken (%s); using new ones", ports, exc)
            continue
        callback_port = callback
        break
    assert emulator is not None and callback_port is not None
    bound = {
        role: int(url.rsplit(":", 1)[1])
        for role, url in (
            ("login", emulator.login_url),
            ("sandbox_login", emulator.sandbox_login_url),
            ("production", emulator.production.instance_url),
            ("sandbox", emulator.sandbox.instance_url),
        )
    }
    atomic_write(
        directory / "ports.json",
        json.dumps({"ports": bound, "callback_port": callback_port}).encode("utf-8"),
    )
    service = EmulatorService(
        pid=os.getpid(),
        org=org,
        login_url=emulator.login_url,
        instance_url=emulator.production.instance_url,
        ca_file=str(emulator.ca_file),
        client_id=emulator.client_id,
        callback_port=callback_port,
        ports=bound,
        sealed_client_secret=keyring.seal(
            emulator.client_secret, connection=org, field=SECRET_FIELD
        ),
        started_at=time.time(),
    )
    atomic_write(directory / DESCRIPTOR_FILE, json.dumps(asdict(service)).encode("utf-8"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("emulator of org %s serving at %s", org, emulator.login_url)
    try:
        while not stop.wait(SAVE_INTERVAL_SECONDS):
            emulator.save()
    finally:
        current = read_descriptor(directory)
        if current is not None and current.pid == os.getpid():
            (directory / DESCRIPTOR_FILE).unlink(missing_ok=True)
        emulator.stop()
    log.info("emulator of org %s stopped; state saved to %s", org, directory / STATE_FILE)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve an org's emulator (``serve``, started by :func:`ensure_emulator`), or stop it."""
    parser = argparse.ArgumentParser(description="The bundled emulator of one cora org.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve until SIGTERM or SIGINT")
    serve_parser.add_argument(
        "--dir", type=Path, required=True, help="the org's emulator directory"
    )
    serve_parser.add_argument("--org", required=True, help="the org's name in the configuration")
    serve_parser.add_argument(
        "--vault-home", type=Path, required=True, help="the vault's home directory"
    )
    stop_parser = commands.add_parser("stop", help="stop the org's background emulator")
    stop_parser.add_argument("org", help="the org's name in the configuration")
    stop_parser.add_argument(
        "--config", help="configuration file (default: $CORA_CONFIG, ./cora.yaml or the demo org)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "serve":
        return serve(args.dir, args.org, args.vault_home)
    from cora_pipeline.config import load_settings
    from cora_pipeline.errors import CoraError

    try:
        settings = load_settings(args.config)
        settings.org(args.org)
    except CoraError as exc:
        print(f"cannot stop the emulator: {exc}", file=sys.stderr)
        return 2
    if stop_emulator(settings, args.org):
        print(f"stopped the emulator of org {args.org}")
    else:
        print(f"no emulator of org {args.org} is running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
