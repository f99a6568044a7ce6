"""convert_in_background: pages are converted in a worker thread, in order, errors propagated."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from cora_pipeline.errors import SalesforceAPIError
from cora_pipeline.extract import query
from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.extract.query import convert_in_background

FIELDS = [
    FieldInfo("Id", "id", "string"),
    FieldInfo("Amount__c", "currency", "decimal128(18, 2)", precision=18, scale=2),
]


def _page(start: int, size: int, amount: Any = "1.50") -> list[dict[str, Any]]:
    return [{"Id": f"a{number:05d}", "Amount__c": amount} for number in range(start, start + size)]


def test_batches_arrive_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "ROW_GROUP_ROWS", 300)
    pages = [_page(start, 200) for start in range(0, 1000, 200)]
    batches: list[pa.Table] = []

    convert_in_background(iter(pages), FIELDS, batches.append)

    assert [batch.num_rows for batch in batches] == [400, 400, 200]
    ids = [record_id for batch in batches for record_id in batch["Id"].to_pylist()]
    assert ids == [f"a{number:05d}" for number in range(1000)]


def test_full_batches_sink_in_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "ROW_GROUP_ROWS", 10)
    threads: list[str] = []

    convert_in_background(
        iter([_page(0, 10), _page(10, 10)]),
        FIELDS,
        lambda _: threads.append(threading.current_thread().name),
    )

    assert len(threads) == 2
    assert threading.current_thread().name not in threads


def test_conversion_error_names_field() -> None:
    pages = [_page(0, 10), _page(10, 10, amount="1.234"), _page(20, 10)]

    with pytest.raises(SalesforceAPIError) as caught:
        convert_in_background(iter(pages), FIELDS, lambda _: None)

    assert "Amount__c" in str(caught.value)


def test_reading_error_waits_for_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "ROW_GROUP_ROWS", 10)
    finished: list[int] = []

    def slow_sink(table: pa.Table) -> None:
        time.sleep(0.2)
        finished.append(table.num_rows)

    def pages() -> Iterator[list[dict[str, Any]]]:
        yield _page(0, 10)
        raise RuntimeError("page 2 failed")

    with pytest.raises(RuntimeError, match="page 2 failed"):
        convert_in_background(pages(), FIELDS, slow_sink)

    # The error reached the caller only after the worker finished writing the first page.
    assert finished == [10]
