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
    server_started_at: str | None = None
    """The org's clock when the extract started, read from the HTTP ``Date`` header."""
    deleted_covered_to: str | None = None
    """The ``latestDateCovered`` of the last ``deleted`` resource call: the next call starts there."""
    reconciled_at: str | None = None
    """The org's clock when an Id-only reconciliation sweep ran as part of this extract."""

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

    The files are written and fsynced in a hidden staging directory that is then renamed into place.
    A crash leaves at most a staging directory, which readers ignore and :func:`list_extracts` skips.
    """
    with ExtractWriter(data_root, manifest.org, manifest.object, manifest.extract_id) as writer:
        writer.write_records(records)
        return writer.commit(manifest, deleted)


class ExtractWriter:
    """Build one extract in a hidden staging directory, record batches as they arrive.

    ``records.parquet`` is written with :class:`pyarrow.parquet.ParquetWriter`, one row group per
    :meth:`write_records` call, so an extract of any size needs memory for one batch only.
    :meth:`commit` publishes the extract with a rename. Leaving the ``with`` block without a
    commit, by an exception or otherwise, removes the staging directory, so no partial extract is
    ever visible.
    """

    def __init__(self, data_root: Path, org: str, sobject: str, extract_id: str) -> None:
        self.final = object_dir(data_root, org, sobject) / extract_id
        if self.final.exists():
            raise FileExistsError(
                f"extract {self.final} already exists; extract ids must be unique"
            )
        self.staging = self.final.parent / f".{extract_id}.partial"
        self.staging.mkdir(parents=True, exist_ok=False)
        self.records = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._committed = False

    def __enter__(self) -> "ExtractWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self.abort()

    @property
    def records_path(self) -> Path:
        return self.staging / "records.parquet"

    def write_records(self, table: pa.Table) -> None:
        """Append a batch of records; every batch must have the schema of the first."""
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.records_path, table.schema, compression="zstd")
        elif not table.schema.equals(self._schema):
            raise ValueError(
                f"record batch schema {table.schema} differs from the extract's schema "
                f"{self._schema}; every batch of one extract must have the same columns"
            )
        if table.num_rows:
            self._writer.write_table(table)
        self.records += table.num_rows

    def discard_records(self) -> None:
        """Drop every record written so far, to read the object again from the start."""
        self._close_writer()
        self.records_path.unlink(missing_ok=True)
        self.records = 0

    def commit(self, manifest: Manifest, deleted: pa.Table | None = None) -> Path:
        """Write ``deleted.parquet`` and the manifest, fsync them and rename the extract into place."""
        if self._writer is None:
            raise ValueError(
                f"extract {self.final.name} has no records file; call write_records at least once "
                f"(an empty table is fine)"
            )
        self._close_writer()
        _fsync(self.records_path)
        manifest.records = self.records
        manifest.deleted = deleted.num_rows if deleted is not None else 0
        if deleted is not None:
            _write_parquet(deleted, self.staging / "deleted.parquet")
        for leftover in self.staging.iterdir():
            if leftover.name not in ("records.parquet", "deleted.parquet"):
                _remove(leftover)
        manifest_path = self.staging / "manifest.json"
        manifest_path.write_text(manifest.to_json(), encoding="utf-8")
        _fsync(manifest_path)
        self.staging.rename(self.final)
        _fsync_dir(self.final.parent)
        self._committed = True
        return self.final

    def abort(self) -> None:
        """Remove the staging directory and everything written to it."""
        self._close_writer()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


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


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


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
