"""The extract directory: streamed row groups, atomic publication, nothing left by a failure."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cora_pipeline.extract import query
from cora_pipeline.extract.files import (
    ExtractWriter,
    FieldInfo,
    Manifest,
    list_extracts,
    new_extract_id,
    object_dir,
    read_manifest,
    read_records,
    write_extract,
)
from tests.extract.conftest import Harness, records_of

FIELDS = [FieldInfo("Id", "id", "string"), FieldInfo("Name", "string", "string")]


def _batch(start: int, rows: int) -> pa.Table:
    ids = [f"001{n:015d}" for n in range(start, start + rows)]
    return pa.table({"Id": ids, "Name": [f"name {n}" for n in range(start, start + rows)]})


def _manifest(extract_id: str) -> Manifest:
    return Manifest(
        org="acme",
        object="Account",
        extract_id=extract_id,
        mode="full",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        fields=FIELDS,
    )


def test_writer_streams_batches_as_row_groups(tmp_path: Path) -> None:
    extract_id = new_extract_id()
    with ExtractWriter(tmp_path, "acme", "Account", extract_id) as writer:
        for number in range(3):
            writer.write_records(_batch(number * 10, 10))
            assert list_extracts(tmp_path, "acme", "Account") == []
        final = writer.commit(_manifest(extract_id))

    assert pq.ParquetFile(final / "records.parquet").metadata.num_row_groups == 3
    assert read_records(final).num_rows == 30
    assert read_manifest(final).records == 30
    assert list_extracts(tmp_path, "acme", "Account") == [final]
    assert [p.name for p in object_dir(tmp_path, "acme", "Account").iterdir()] == [extract_id]


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    extract_id = new_extract_id()
    with (
        pytest.raises(RuntimeError, match="connection lost"),
        ExtractWriter(tmp_path, "acme", "Account", extract_id) as writer,
    ):
        writer.write_records(_batch(0, 5))
        raise RuntimeError("connection lost")

    assert list(object_dir(tmp_path, "acme", "Account").iterdir()) == []


def test_writer_discard_starts_records_again(tmp_path: Path) -> None:
    extract_id = new_extract_id()
    with ExtractWriter(tmp_path, "acme", "Account", extract_id) as writer:
        writer.write_records(_batch(0, 5))
        writer.discard_records()
        writer.write_records(_batch(100, 2))
        final = writer.commit(_manifest(extract_id))

    assert read_records(final)["Id"].to_pylist() == [f"001{n:015d}" for n in (100, 101)]
    assert read_manifest(final).records == 2


def test_writer_rejects_batch_with_other_columns(tmp_path: Path) -> None:
    with ExtractWriter(tmp_path, "acme", "Account", new_extract_id()) as writer:
        writer.write_records(_batch(0, 1))
        with pytest.raises(ValueError, match="differs from the extract's schema"):
            writer.write_records(pa.table({"Id": ["x"]}))


def test_write_extract_writes_deleted_file(tmp_path: Path) -> None:
    deleted = pa.table(
        {
            "Id": ["001000000000000001"],
            "deleted_at": pa.array([0], pa.timestamp("ms", tz="UTC")),
        }
    )
    final = write_extract(tmp_path, _manifest(new_extract_id()), _batch(0, 2), deleted)

    manifest = read_manifest(final)
    assert manifest.records == 2
    assert manifest.deleted == 1
    assert sorted(p.name for p in final.iterdir()) == [
        "deleted.parquet",
        "manifest.json",
        "records.parquet",
    ]


def test_extract_writes_pages_while_paging(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query, "ROW_GROUP_ROWS", 200)
    for number in range(700):
        harness.admin.create("Account", {"Name": f"Stream {number}"})
    config = harness.org_config(batch_size=200)
    client = harness.client(config)
    staged: list[int] = []
    original = client.query_pages

    def query_pages(*args: Any, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        for number, page in enumerate(original(*args, **kwargs), start=1):
            yield page
            if number == 3:
                base = object_dir(harness.data_root, "demo", "Account")
                staged.extend(
                    path.stat().st_size for path in base.glob(".*.partial/records.parquet")
                )

    client.query_pages = query_pages  # type: ignore[method-assign]

    result = harness.extract("Account", client=client, org_config=config)

    assert len(staged) == 1
    assert staged[0] > 0
    metadata = pq.ParquetFile(result.extract_dirs[0] / "records.parquet").metadata
    assert metadata.num_row_groups == result.pages
    assert records_of(result).num_rows == len(
        harness.admin.records("Account", include_deleted=True)
    )
