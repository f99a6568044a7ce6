"""The Id-only reconciliation sweep: what the org has against what the extracts recorded.

Incremental extracts see changes by watermark and hard deletes through the ``deleted`` resource,
which reaches back at most 15 days and loses entries when the org purges its delete log. The sweep
reads only ``Id``, the watermark field and ``IsDeleted`` of every record (with ``queryAll``, so one
page of 2,000 records costs one API call) and compares them with the state the extracts describe:

- a record the extracts hold but the org no longer returns was hard-deleted;
- a record the org returns that the extracts do not hold, or hold with an older watermark, was missed
  and is read again in full.
"""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cora_pipeline.extract.convert import to_arrow
from cora_pipeline.extract.files import (
    FieldInfo,
    list_extracts,
    read_deleted,
    read_manifest,
)
from cora_pipeline.extract.query import QueryScope, build_soql

STAMP_TYPE = pa.timestamp("ms", tz="UTC")


@dataclass
class SweepFindings:
    """Findings of one sweep: ids to list as deleted, ids to read again, and its cost."""

    hard_deleted: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    org_records: int = 0
    pages: int = 0


def known_records(data_root: Path, org: str, sobject: str, stamp_field: str) -> pa.Table | None:
    """Return ``Id``, ``stamp`` and ``is_deleted`` of every record the extracts hold now.

    The state starts at the newest succeeded full extract and applies every later succeeded
    incremental extract in order. Records listed in a ``deleted.parquet`` are left out. Returns
    None when there is no full extract to start from.

    NOTE: this reads the Id columns of every extract since the newest full one, so a sweep gets
    slower the longer an object goes without a full extract.
    """
    manifests = [(path, read_manifest(path)) for path in list_extracts(data_root, org, sobject)]
    usable = [
        (path, manifest)
        for path, manifest in manifests
        if manifest.status == "succeeded" and manifest.mode in ("full", "incremental")
    ]
    starts = [index for index, (_, manifest) in enumerate(usable) if manifest.mode == "full"]
    if not starts:
        return None
    parts: list[pa.Table] = []
    for path, manifest in usable[starts[-1] :]:
        # Within one extract the record list is newer than its deleted list, so it goes second.
        deleted = read_deleted(path)
        if deleted is not None and deleted.num_rows:
            parts.append(_state(deleted["Id"], None, None, gone=True))
        columns = {f.name for f in manifest.fields}
        wanted = [name for name in ("Id", stamp_field, "IsDeleted") if name in columns]
        records = pq.read_table(path / "records.parquet", columns=wanted)
        parts.append(
            _state(
                records["Id"],
                records[stamp_field] if stamp_field in columns else None,
                records["IsDeleted"] if "IsDeleted" in columns else None,
                gone=False,
            )
        )
    history = pa.concat_tables(parts).combine_chunks()
    history = history.append_column("row", pa.array(range(history.num_rows), pa.int64()))
    newest = history.group_by("Id").aggregate([("row", "max")])
    state = history.take(newest["row_max"])
    state = state.filter(pc.invert(state["gone"]))
    return state.select(["Id", "stamp", "is_deleted"])


def _state(
    ids: pa.ChunkedArray,
    stamps: pa.ChunkedArray | None,
    deleted: pa.ChunkedArray | None,
    *,
    gone: bool,
) -> pa.Table:
    rows = len(ids)
    return pa.table(
        {
            "Id": ids.cast(pa.string()),
            "stamp": stamps.cast(STAMP_TYPE) if stamps is not None else pa.nulls(rows, STAMP_TYPE),
            "is_deleted": deleted if deleted is not None else pa.nulls(rows, pa.bool_()),
            "gone": pa.array([gone] * rows, pa.bool_()),
        }
    )


def sweep(
    scope: QueryScope,
    fields: list[FieldInfo],
    stamp_field: str,
    known: pa.Table,
    before: datetime | None,
) -> SweepFindings:
    """Read ``Id``, ``stamp_field`` and ``IsDeleted`` of every record and compare them with ``known``.

    Records whose watermark is at or after ``before`` are left to the incremental query that
    follows, which selects them anyway.
    """
    by_name = {f.name: f for f in fields}
    sweep_fields = [by_name[name] for name in ("Id", stamp_field, "IsDeleted") if name in by_name]
    findings = SweepFindings()
    pages: list[pa.Table] = []
    for page in scope.client.query_pages(
        build_soql([f.name for f in sweep_fields], scope.sobject, ""),
        sobject=scope.sobject,
        include_deleted=True,
        batch_size=scope.org.batch_size,
    ):
        findings.pages += 1
        scope.on_page()
        pages.append(to_arrow(page, sweep_fields))
        scope.check_budget()
    org_state = pa.concat_tables(pages) if pages else to_arrow([], sweep_fields)
    findings.org_records = org_state.num_rows

    org_ids = org_state["Id"].combine_chunks()
    gone = known.filter(pc.invert(pc.is_in(known["Id"], value_set=org_ids)))
    findings.hard_deleted = gone["Id"].to_pylist()

    org_side = pa.table(
        {
            "Id": org_state["Id"],
            "org_stamp": org_state[stamp_field].cast(STAMP_TYPE),
            "org_deleted": org_state["IsDeleted"]
            if "IsDeleted" in org_state.column_names
            else pa.nulls(org_state.num_rows, pa.bool_()),
        }
    )
    marked = known.append_column("held", pa.array([True] * known.num_rows, pa.bool_()))
    compared = org_side.join(marked, keys="Id", join_type="left outer")
    unseen = pc.is_null(compared["held"])
    newer = pc.fill_null(pc.greater(compared["org_stamp"], compared["stamp"]), False)
    moved = pc.fill_null(pc.not_equal(compared["org_deleted"], compared["is_deleted"]), False)
    missed = pc.or_(pc.or_(unseen, newer), moved)
    if before is not None:
        earlier = pc.fill_null(pc.less(compared["org_stamp"], pa.scalar(before, STAMP_TYPE)), True)
        missed = pc.and_(missed, earlier)
    findings.missed = compared.filter(missed)["Id"].to_pylist()
    return findings
