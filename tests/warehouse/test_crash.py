"""A process killed while applying an extract leaves the warehouse as before or as after the run."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cora_pipeline.warehouse import Warehouse

from .builders import ExtractWriter, account, at

CHILD = Path(__file__).with_name("apply_child.py")
TABLES = (
    "main.sync_runs",
    "main.record_changes",
    "main.field_changes",
    "main.schema_changes",
    "cora_meta.fields",
    'acme."Account"',
    'acme."Account_history"',
)


def fingerprint(data_root: Path) -> dict[str, tuple]:
    """Return row count and an order-independent digest of every table."""
    wh = Warehouse(data_root, lock_timeout=10)
    try:
        result = {}
        for table in TABLES:
            row = wh.con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), '|' "
                f"ORDER BY CAST(t AS VARCHAR)), '')) FROM {table} t"
            ).fetchone()
            assert row is not None
            result[table] = tuple(row)
        return result
    finally:
        wh.close()


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    """Return a data root holding a baseline, the next extract, and the states before and after it."""
    writer = ExtractWriter(tmp_path / "data")
    n = 20_000
    with Warehouse(writer.data_root) as wh:
        wh.apply_extract(writer.write([account(f"a{i:06d}") for i in range(n)]))
    changed = [
        account(f"a{i:06d}", Name=f"Renamed {i}", LastModifiedDate=at(1.5), SystemModstamp=at(1.5))
        for i in range(100, n)
    ]
    created = [account(f"b{i:06d}", SystemModstamp=at(1.5)) for i in range(500)]
    extract = writer.write(changed + created)
    before = fingerprint(writer.data_root)

    reference = tmp_path / "reference"
    shutil.copytree(writer.data_root, reference)
    with Warehouse(reference) as wh:
        wh.apply_extract(extract)
    after = fingerprint(reference)
    assert before != after
    return writer.data_root, extract, before, after


def run_child_and_kill(data_root: Path, extract: Path, delay: float | None) -> str:
    """Start the child, SIGKILL it ``delay`` seconds after it starts committing; return its output."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_root), str(extract)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if delay is not None:
            line = child.stdout.readline()
            assert line.strip() == "committing", child.stderr.read() if child.stderr else line
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        return out
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.01, 0.03, 0.1])
def test_kill_during_commit_leaves_before_or_after(
    prepared: tuple[Path, Path, dict, dict], delay: float
) -> None:
    data_root, extract, before, after = prepared

    run_child_and_kill(data_root, extract, delay)
    state = fingerprint(data_root)

    assert state in (before, after)
    with Warehouse(data_root) as wh:
        again = wh.apply_extract(extract)
    assert again.already_applied == (state == after)
    assert fingerprint(data_root) == after


def test_kill_before_commit_leaves_before(prepared: tuple[Path, Path, dict, dict]) -> None:
    data_root, extract, before, _ = prepared
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_root), str(extract), "--pause-before-commit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert fingerprint(data_root) == before


def test_child_without_kill_reaches_after(prepared: tuple[Path, Path, dict, dict]) -> None:
    data_root, extract, _, after = prepared

    out = run_child_and_kill(data_root, extract, None)

    assert out.split() == ["committing", "committed", "closed"]
    assert fingerprint(data_root) == after
