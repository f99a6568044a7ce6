"""Run one SELECT of an extract page by page, split into pieces when its URI would be too long.

Salesforce rejects a request whose URI and headers exceed 16,384 bytes (414 or 431), so a long field
list is split into several SELECTs ("pieces"). Every piece repeats ``Id`` and the watermark field,
and the pieces are joined by ``Id``. A record missing from a piece, or whose watermark differs
between pieces because it changed while they were read, is read again by ``Id``. A record that
the ``Id`` read no longer finds was hard-deleted while it was being read. It is reported as
vanished, so the extract can list it as deleted.

NOTE: SystemModstamp has whole seconds, so a record changed twice within one second, once before and
once during the read of its pieces, can be joined from two versions. Its SystemModstamp is then
inside the next incremental run's overlap window, so that run reads it again whole.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cora_pipeline.config import OrgConfig
from cora_pipeline.extract.convert import to_arrow
from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.extract.schema import arrow_schema
from cora_pipeline.salesforce.client import SalesforceClient

# Salesforce rejects a request whose URI plus headers is over 16,384 bytes. The headers this client
# sends (bearer token, Sforce-Query-Options, user agent) stay well under 2,000 bytes.
MAX_QUERY_URI_BYTES = 14_000
ID_BATCH = 200
"""Record ids per ``Id IN (...)`` read; 200 ids take about 5,600 bytes of the URI."""
ROW_GROUP_ROWS = 20_000
"""Rows collected before a batch is handed on, which bounds the memory one extract needs."""
MAX_REREAD_ATTEMPTS = 3


@dataclass
class QueryScope:
    """The context of every SELECT of one object: client, org, object and budget check."""

    client: SalesforceClient
    org: OrgConfig
    sobject: str
    log: logging.LoggerAdapter[logging.Logger]
    check_budget: Callable[[], None]
    on_page: Callable[[], None] = lambda: None
    """Called after every page, so a run that stops halfway still reports the pages it read."""


@dataclass
class QueryStats:
    """Pages and records one SELECT (with its pieces and re-reads) returned."""

    pages: int = 0
    records: int = 0
    pieces: int = 1
    reread: int = 0
    vanished: list[str] = field(default_factory=list)
    """Ids missing from a piece and from their re-read: hard-deleted while being read."""


def build_soql(field_names: Iterable[str], sobject: str, where: str) -> str:
    # Names come from describe and the config's validated sObject name, never from record data.
    soql = f"SELECT {', '.join(field_names)} FROM {sobject}"  # noqa: S608
    return f"{soql} WHERE {where}" if where else soql


def id_in(ids: Iterable[str]) -> str:
    """Return ``Id IN ('a', 'b')``; ids come from Salesforce responses and are alphanumeric."""
    return "Id IN (" + ", ".join(f"'{record_id}'" for record_id in ids) + ")"


def query_uri_bytes(field_names: list[str], sobject: str, where: str, api_version: str) -> int:
    """Return the length of the request target of a ``queryAll`` for this SELECT."""
    prefix = f"/services/data/v{api_version}/queryAll/?q="
    return len(prefix) + len(quote_plus(build_soql(field_names, sobject, where)))


def split_fields(
    field_names: list[str],
    sobject: str,
    where: str,
    api_version: str,
    keep: Iterable[str] = ("Id",),
) -> list[list[str]]:
    """Split a field list into SELECTs whose URI stays under :data:`MAX_QUERY_URI_BYTES`.

    Each piece starts with the ``keep`` fields (``Id`` and the watermark field), in the order given.
    """
    leading = [name for name in dict.fromkeys(keep) if name in field_names or name == "Id"]
    base = query_uri_bytes(leading, sobject, where, api_version)
    if base >= MAX_QUERY_URI_BYTES:
        raise ValueError(
            f"the WHERE clause of a {sobject} query takes {base} bytes of the URI, over the "
            f"{MAX_QUERY_URI_BYTES}-byte limit; shorten it"
        )
    pieces: list[list[str]] = []
    current = list(leading)
    size = base
    for name in field_names:
        if name in leading:
            continue
        cost = len(quote_plus(f", {name}"))
        if size + cost > MAX_QUERY_URI_BYTES and len(current) > len(leading):
            pieces.append(current)
            current = list(leading)
            size = base
        current.append(name)
        size += cost
    pieces.append(current)
    return pieces


def run_query(
    scope: QueryScope,
    fields: list[FieldInfo],
    where: str,
    *,
    include_deleted: bool,
    stamp_field: str | None,
    sink: Callable[[pa.Table], None],
    work_dir: Path,
    first_page: dict[str, Any] | None = None,
) -> QueryStats:
    """Run a SELECT of ``fields`` and hand its records to ``sink`` as Arrow tables.

    ``stamp_field`` (SystemModstamp or LastModifiedDate) is repeated in every piece of a split
    SELECT to tell whether a record changed between pieces. ``work_dir`` receives one Parquet file
    per piece while a split SELECT runs; the caller removes it. ``first_page`` is the first page of
    a single-piece SELECT already read by the caller.
    """
    names = [f.name for f in fields]
    keep = ["Id", stamp_field] if stamp_field else ["Id"]
    pieces = split_fields(names, scope.sobject, where, scope.org.api_version, keep)
    stats = QueryStats(pieces=len(pieces))
    if len(pieces) == 1:

        def count_and_sink(table: pa.Table) -> None:
            stats.records += table.num_rows
            sink(table)

        pages = _pages(scope, fields, where, include_deleted, stats, first_page)
        convert_in_background(pages, fields, count_and_sink)
        return stats

    scope.log.info(
        "SELECT of %d fields split into %d pieces to keep each URI under %d bytes",
        len(names),
        len(pieces),
        MAX_QUERY_URI_BYTES,
    )
    by_name = {f.name: f for f in fields}
    paths = []
    for number, piece in enumerate(pieces):
        piece_fields = [by_name[name] for name in piece]
        path = work_dir / f"piece-{number}.parquet"
        with pq.ParquetWriter(path, arrow_schema(piece_fields), compression="zstd") as writer:
            pages = _pages(scope, piece_fields, where, include_deleted, stats)
            convert_in_background(pages, piece_fields, writer.write_table)
        paths.append(path)

    joined, redo = _join_pieces(paths, names, stamp_field)
    for start in range(0, joined.num_rows, ROW_GROUP_ROWS):
        batch = joined.slice(start, ROW_GROUP_ROWS)
        stats.records += batch.num_rows
        sink(batch)
    del joined
    if redo:
        scope.log.info(
            "%d records were missing from a piece or changed between pieces; reading them by Id",
            len(redo),
        )
        table = read_by_ids(scope, fields, redo, include_deleted=include_deleted, stats=stats)
        stats.records += table.num_rows
        sink(table)
    return stats


def _pages(
    scope: QueryScope,
    fields: list[FieldInfo],
    where: str,
    include_deleted: bool,
    stats: QueryStats,
    first_page: dict[str, Any] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    soql = build_soql([f.name for f in fields], scope.sobject, where)
    for page in scope.client.query_pages(
        soql,
        sobject=scope.sobject,
        include_deleted=include_deleted,
        batch_size=scope.org.batch_size,
        first_page=first_page,
    ):
        stats.pages += 1
        scope.on_page()
        scope.check_budget()
        yield page


def convert_in_background(
    pages: Iterator[list[dict[str, Any]]],
    fields: list[FieldInfo],
    sink: Callable[[pa.Table], None],
) -> None:
    """Convert query pages to Arrow and hand them to ``sink`` in a worker thread, in order.

    The calling thread requests page n + 1 while the worker converts page n, so conversion and
    Parquet writing overlap the wait for Salesforce. REST calls stay in the calling thread, one at
    a time and in the same order as without the worker, so the budget check and query locators
    behave as before. At most one page is converting at a time, which bounds memory. ``sink``
    receives batches of about :data:`ROW_GROUP_ROWS` rows, from the worker except for the last,
    smaller batch, which the calling thread hands on once the worker is idle.

    A conversion or ``sink`` error is raised when the next page arrives, so at most one more page
    is read after it. If reading fails, the worker finishes its page before the error propagates,
    so the caller may reset ``sink``'s output safely.
    """
    batcher = _Batcher(fields, sink)
    pending: Future[None] | None = None
    # Leaving the with block waits for the worker, also when reading a page raised.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cora-convert") as worker:
        for page in pages:
            if pending is not None:
                pending.result()
            pending = worker.submit(batcher.add, page)
        if pending is not None:
            pending.result()
    batcher.flush()


class _Batcher:
    """Convert pages and concatenate them into batches of about :data:`ROW_GROUP_ROWS` rows."""

    def __init__(self, fields: list[FieldInfo], sink: Callable[[pa.Table], None]) -> None:
        self.fields = fields
        self.sink = sink
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, page: list[dict[str, Any]]) -> None:
        table = to_arrow(page, self.fields)
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch = pa.concat_tables(self.pending)
            self.pending, self.rows = [], 0
            self.sink(batch)


def _join_pieces(
    paths: list[Path], names: list[str], stamp_field: str | None
) -> tuple[pa.Table, list[str]]:
    """Join piece files by Id; return the complete, consistent records and the ids to read again.

    NOTE: the join keeps every piece of the object in memory as Arrow columns, so a split SELECT
    does not stream the way a single one does.
    """
    joined = pq.read_table(paths[0])
    every_id = [joined["Id"]]
    for number, path in enumerate(paths[1:], start=1):
        right = pq.read_table(path)
        every_id.append(right["Id"])
        if stamp_field:
            stamp_copy = f"__stamp_{number}"
            right = right.rename_columns(
                [stamp_copy if name == stamp_field else name for name in right.column_names]
            )
        joined = joined.join(right, keys="Id", join_type="inner")
        if stamp_field:
            same = pc.fill_null(
                pc.equal(joined[stamp_field], joined[stamp_copy]),
                pc.and_(pc.is_null(joined[stamp_field]), pc.is_null(joined[stamp_copy])),
            )
            joined = joined.filter(same)
    joined = joined.select(names)
    all_ids = pc.unique(pa.chunked_array([chunk for ids in every_id for chunk in ids.chunks]))
    redo = pc.filter(all_ids, pc.invert(pc.is_in(all_ids, value_set=joined["Id"].combine_chunks())))
    return joined, redo.to_pylist()


def read_by_ids(
    scope: QueryScope,
    fields: list[FieldInfo],
    ids: list[str],
    *,
    include_deleted: bool,
    stats: QueryStats,
) -> pa.Table:
    """Read the records with these ids, every field, in batches of :data:`ID_BATCH` ids.

    Ids that a piece no longer returns are added to ``stats.vanished``. A record whose watermark
    differs between pieces is read again, at most :data:`MAX_REREAD_ATTEMPTS` times.
    """
    names = [f.name for f in fields]
    by_name = {f.name: f for f in fields}
    stamp_field = next(
        (name for name in ("SystemModstamp", "LastModifiedDate") if name in by_name), None
    )
    keep = ["Id", stamp_field] if stamp_field else ["Id"]
    sample_where = id_in(["0" * 18] * ID_BATCH)
    pieces = split_fields(names, scope.sobject, sample_where, scope.org.api_version, keep)
    complete: list[dict[str, Any]] = []
    pending = list(dict.fromkeys(ids))
    for attempt in range(1, MAX_REREAD_ATTEMPTS + 1):
        if not pending:
            break
        changed: list[str] = []
        for start in range(0, len(pending), ID_BATCH):
            batch = pending[start : start + ID_BATCH]
            per_piece = [
                _read_piece(scope, piece, batch, include_deleted, stats) for piece in pieces
            ]
            for record_id in batch:
                found = [rows.get(record_id) for rows in per_piece]
                parts = [part for part in found if part is not None]
                if len(parts) < len(found):
                    stats.vanished.append(record_id)
                    continue
                stamps = [part.get(stamp_field) for part in parts] if stamp_field else []
                if len(set(stamps)) > 1 and attempt < MAX_REREAD_ATTEMPTS:
                    changed.append(record_id)
                    continue
                merged: dict[str, Any] = {}
                for part in parts:
                    merged.update(part)
                if len(set(stamps)) > 1 and stamp_field:
                    # Still changing on the last attempt: keep the mixed read but give it the
                    # oldest watermark, so the next incremental run selects the record again.
                    merged[stamp_field] = min(str(stamp) for stamp in stamps)
                    scope.log.warning(
                        "record %s kept changing while its pieces were read; the next run "
                        "reads it again",
                        record_id,
                    )
                complete.append(merged)
        pending = changed
    stats.reread += len(complete)
    if stats.vanished:
        scope.log.warning(
            "%d records disappeared while being read (hard-deleted); listing them as deleted",
            len(stats.vanished),
        )
    return to_arrow(complete, fields)


def _read_piece(
    scope: QueryScope,
    piece: list[str],
    ids: list[str],
    include_deleted: bool,
    stats: QueryStats,
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for page in scope.client.query_pages(
        build_soql(piece, scope.sobject, id_in(ids)),
        sobject=scope.sobject,
        include_deleted=include_deleted,
    ):
        stats.pages += 1
        scope.on_page()
        for row in page:
            rows[row["Id"]] = row
        scope.check_budget()
    return rows
