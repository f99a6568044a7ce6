"""Formula fields change without SystemModstamp moving; the formula refresh reads them."""

from datetime import timedelta
from decimal import Decimal

import pyarrow.compute as pc

from tests.extract.conftest import Harness, manifest_of, records_of


def test_formula_only_change_is_read_by_refresh(harness: Harness) -> None:
    config = harness.org_config(formula_refresh_hours=24)
    first = harness.extract("Invoice__c", org_config=config)
    assert len(first.extract_dirs) == 1
    harness.admin.set_formula("Invoice__c", "Total__c", "Amount__c * 2")

    later = harness.admin.now() + timedelta(hours=25)
    second = harness.extract("Invoice__c", org_config=config, now=later)

    assert second.mode == "incremental"
    assert len(second.extract_dirs) == 2
    assert manifest_of(second, 0).mode == "incremental"
    refresh = manifest_of(second, 1)
    assert refresh.mode == "formula"
    assert [f.name for f in refresh.fields] == ["Id", "Total__c", "Days_Outstanding__c"]
    table = records_of(second, 1)
    live = harness.admin.records("Invoice__c")
    assert second.formula_records == len(live) == table.num_rows
    for invoice in live:
        row = table.filter(pc.equal(table["Id"], invoice["Id"])).to_pylist()[0]
        expected = invoice["Amount__c"] * 2 if invoice["Amount__c"] is not None else None
        actual = row["Total__c"]
        assert (actual is None) == (expected is None)
        if expected is not None:
            assert actual == Decimal(str(expected)).quantize(Decimal("0.01"))
    # No record changed, so the incremental part contains at most the overlap window's records.
    assert records_of(second, 0).num_rows < len(live)


def test_formula_refresh_waits_for_its_cadence(harness: Harness) -> None:
    config = harness.org_config(formula_refresh_hours=24)
    harness.extract("Invoice__c", org_config=config)

    soon = harness.extract("Invoice__c", org_config=config)

    assert soon.mode == "incremental"
    assert len(soon.extract_dirs) == 1
    assert soon.formula_records == 0


def test_object_without_formulas_has_no_refresh(harness: Harness) -> None:
    config = harness.org_config(formula_refresh_hours=0)
    harness.extract("Account", org_config=config)

    second = harness.extract("Account", org_config=config)

    assert len(second.extract_dirs) == 1
