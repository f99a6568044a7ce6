"""A custom object with 700 fields: SELECTs split to fit the URI limit and joined by Id."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pyarrow.compute as pc
import pytest

from cora_pipeline.extract.query import MAX_QUERY_URI_BYTES, build_soql, split_fields
from cora_pipeline.salesforce.client import SalesforceClient
from tests.extract.conftest import Harness, deleted_ids, ids_of, manifest_of, records_of

WIDE = "Invoice__c"
EXTRA_FIELDS = 680


def _field(number: int) -> str:
    return f"Extended_Attribute_Number_{number:04d}__c"


@pytest.fixture
def wide(harness: Harness) -> Harness:
    """Invoice__c grown to 700 fields, each invoice with a distinct value in a few of them."""
    for number in range(EXTRA_FIELDS):
        harness.admin.add_field(WIDE, _field(number), "string", length=40)
    for index, invoice in enumerate(sorted(harness.admin.records(WIDE), key=lambda r: r["Id"])):
        harness.admin.update(
            WIDE,
            invoice["Id"],
            {_field(0): f"first {index}", _field(EXTRA_FIELDS - 1): f"last {index}"},
        )
    assert len(harness.org.schema[WIDE].fields) >= 700
    return harness


def test_split_fields_keeps_each_uri_under_limit() -> None:
    names = ["Id", "SystemModstamp", *(_field(n) for n in range(EXTRA_FIELDS))]
    where = "SystemModstamp >= 2026-01-01T00:00:00.000Z"

    pieces = split_fields(names, WIDE, where, "59.0", keep=("Id", "SystemModstamp"))

    assert len(pieces) >= 2
    for piece in pieces:
        assert piece[:2] == ["Id", "SystemModstamp"]
        uri = f"/services/data/v59.0/queryAll/?q={quote_plus(build_soql(piece, WIDE, where))}"
        assert len(uri) <= MAX_QUERY_URI_BYTES
    spread = [name for piece in pieces for name in piece[2:]]
    assert sorted(spread) == sorted(names[2:])


def test_wide_object_extracts_every_field(wide: Harness) -> None:
    result = wide.extract(WIDE)

    assert result.status == "succeeded"
    manifest = manifest_of(result)
    assert manifest.extra["pieces"] >= 2
    table = records_of(result)
    assert table.num_rows == len(wide.admin.records(WIDE, include_deleted=True))
    assert len(table.column_names) == len(manifest.fields)
    for invoice in wide.admin.records(WIDE):
        row = table.filter(pc.equal(table["Id"], invoice["Id"])).to_pylist()[0]
        assert row[_field(0)] == invoice[_field(0)]
        assert row[_field(EXTRA_FIELDS - 1)] == invoice[_field(EXTRA_FIELDS - 1)]
        assert row["Notes__c"] == invoice["Notes__c"]


def test_record_changed_between_pieces_is_read_again(wide: Harness) -> None:
    target = sorted(wide.admin.records(WIDE), key=lambda r: r["Id"])[2]["Id"]
    client = wide.client()

    def change() -> None:
        # SystemModstamp has whole seconds: a change in the same second as the last one is
        # invisible to the comparison, so the clock moves on first.
        wide.admin.advance_clock(1)
        wide.admin.update(
            WIDE, target, {_field(0): "moved first", _field(EXTRA_FIELDS - 1): "moved last"}
        )

    _between_pieces(client, change)

    result = wide.extract(WIDE, client=client)

    table = records_of(result)
    rows = table.filter(pc.equal(table["Id"], target)).to_pylist()
    assert len(rows) == 1
    assert rows[0][_field(0)] == "moved first"
    assert rows[0][_field(EXTRA_FIELDS - 1)] == "moved last"
    assert manifest_of(result).extra["reread"] >= 1


def test_record_created_between_pieces_is_read_whole(wide: Harness) -> None:
    client = wide.client()
    created: list[str] = []
    _between_pieces(
        client,
        lambda: created.append(
            wide.admin.create(WIDE, {_field(0): "new first", _field(EXTRA_FIELDS - 1): "new last"})
        ),
    )

    result = wide.extract(WIDE, client=client)

    table = records_of(result)
    rows = table.filter(pc.equal(table["Id"], created[0])).to_pylist()
    assert len(rows) == 1
    assert rows[0][_field(0)] == "new first"
    assert rows[0][_field(EXTRA_FIELDS - 1)] == "new last"


def test_record_deleted_between_pieces_is_listed_deleted(wide: Harness) -> None:
    target = sorted(wide.admin.records(WIDE), key=lambda r: r["Id"])[1]["Id"]
    client = wide.client()
    _between_pieces(client, lambda: wide.admin.hard_delete(WIDE, target))

    result = wide.extract(WIDE, client=client)

    assert target not in ids_of(records_of(result))
    assert deleted_ids(result) == {target}


def test_wide_object_incremental_reads_change(wide: Harness) -> None:
    wide.extract(WIDE)
    target = sorted(wide.admin.records(WIDE), key=lambda r: r["Id"])[0]["Id"]
    wide.admin.update(WIDE, target, {_field(EXTRA_FIELDS - 1): "incremental"})

    second = wide.extract(WIDE)

    assert second.mode == "incremental"
    table = records_of(second)
    row = table.filter(pc.equal(table["Id"], target)).to_pylist()[0]
    assert row[_field(EXTRA_FIELDS - 1)] == "incremental"


def _between_pieces(client: SalesforceClient, action: Any) -> None:
    """Run ``action`` once, after the first SELECT piece has returned its last page."""
    original = client.query_pages
    state = {"queries": 0}

    def query_pages(*args: Any, **kwargs: Any) -> Iterator[list[dict[str, Any]]]:
        state["queries"] += 1
        yield from original(*args, **kwargs)
        if state["queries"] == 1:
            action()

    client.query_pages = query_pages  # type: ignore[method-assign]
