"""Extract files: the immutable hand-over between extraction and the warehouse.

One extract is a directory ``<data_root>/extracts/<org>/<Object>/<extract_id>/`` holding:

- ``records.parquet``: one row per record fetched. Columns are the Salesforce field API names, typed as
  ``cora_pipeline.extract.schema`` maps describe types to Arrow types.
- ``deleted.parquet`` (optional): ``Id`` and ``deleted_at`` of records found hard-deleted (through the
  ``deleted`` resource or the reconciliation sweep), which no query returns any more.
- ``manifest.json``: what the extract is (see :class:`Manifest`).

An extract is built in a hidden sibling directory and renamed into place, so a reader sees either the
whole extract or none of it. ``extract_id`` sorts in extraction order.
"""

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_FORMAT = 1

ExtractMode = Literal["full", "incremental", "formula"]
"""``full``: every record of the object, so a record missing from it is gone from the org.
``incremental``: records whose watermark field moved since ``watermark_from``, soft-deleted ones included.
``formula``: ``Id`` and the calculated fields of every live record, read to catch formula drift."""


@dataclass(frozen=True)
class FieldInfo:
    """One extracted field as describe reported it."""

    name: str
    type: str
    arrow_type: str
    calculated: bool = False
    nillable: bool = True
    length: int = 0
    precision: int = 0
    scale: int = 0


@dataclass
class Manifest:
    """Everything the warehouse needs to know about one extract besides its rows."""

    org: str
    object: str
    extract_id: str
    mode: ExtractMode
    started_at: str
    finished_at: str
    fields: list[FieldInfo]
    records: int = 0
    deleted: int = 0
    run_id: str | None = None
    watermark_field: str | None = None
    watermark_from: str | None = None
    watermark_to: str | None = None
    api_calls: int = 0
    api_used: int | None = None
    api_max: int | None = None
    status: Literal["succeeded", "stopped_budget"] = "succeeded"
    error: str | None = None
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        raw = json.loads(text)
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(
                f"extract manifest format {raw.get('format')!r} is not supported "
                f"(expected {MANIFEST_FORMAT}); re-extract with this version of cora-pipeline"
            )
        raw["fields"] = [FieldInfo(**f) for f in raw["fields"]]
        return cls(**raw)


def new_extract_id(now: datetime | None = None) -> str:
    """Return a new extract id that sorts after every earlier one from the same clock."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


def object_dir(data_root: Path, org: str, sobject: str) -> Path:
    return data_root / "extracts" / org / sobject


def write_extract(
    data_root: Path,
    manifest: Manifest,
    records: pa.Table,
    deleted: pa.Table | None = None,
) -> Path:
    """Write an extract atomically and return its directory.

    The files are written and fsynced in a hidden staging directory that is then renamed into place;
    a crash leaves at most a staging directory, which readers ignore and :func:`list_extracts` skips.
    """
    final = object_dir(data_root, manifest.org, manifest.object) / manifest.extract_id
    if final.exists():
        raise FileExistsError(f"extract {final} already exists; extract ids must be unique")
    staging = final.parent / f".{manifest.extract_id}.partial"
    staging.mkdir(parents=True, exist_ok=False)
    try:
        manifest.records = records.num_rows
        manifest.deleted = deleted.num_rows if deleted is not None else 0
        _write_parquet(records, staging / "records.parquet")
        if deleted is not None:
            _write_parquet(deleted, staging / "deleted.parquet")
        manifest_path = staging / "manifest.json"
        manifest_path.write_text(manifest.to_json(), encoding="utf-8")
        _fsync(manifest_path)
        staging.rename(final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def read_manifest(extract_dir: Path) -> Manifest:
    return Manifest.from_json((extract_dir / "manifest.json").read_text(encoding="utf-8"))


def read_records(extract_dir: Path) -> pa.Table:
    return pq.read_table(extract_dir / "records.parquet")


def read_deleted(extract_dir: Path) -> pa.Table | None:
    path = extract_dir / "deleted.parquet"
    return pq.read_table(path) if path.exists() else None


def list_extracts(data_root: Path, org: str, sobject: str) -> list[Path]:
    """Return the complete extracts of one object, oldest first."""
    base = object_dir(data_root, org, sobject)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
