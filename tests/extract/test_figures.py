"""Figures for logs and Dagster metadata: every line names org and object, results carry counts."""

import logging

import pytest

from tests.extract.conftest import Harness, manifest_of


def test_every_log_line_names_org_and_object(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    config = harness.org_config(reconcile_hours=0, formula_refresh_hours=0)
    harness.extract("Invoice__c", org_config=config)
    harness.admin.faults.unavailable(1)
    caplog.clear()

    with caplog.at_level(logging.DEBUG, logger="cora_pipeline"):
        harness.extract("Invoice__c", org_config=config)

    ours = ("cora_pipeline.extract", "cora_pipeline.salesforce")
    lines = [r for r in caplog.records if r.name.startswith(ours)]
    assert len(lines) >= 4
    assert any("retry 1 of" in r.getMessage() for r in lines)
    for record in lines:
        assert "org demo object" in record.getMessage(), record.getMessage()
    extract_lines = [r for r in lines if r.name == "cora_pipeline.extract.extractor"]
    assert all(getattr(r, "sobject", None) == "Invoice__c" for r in extract_lines)
    summary = [r.getMessage() for r in extract_lines if "incremental extract:" in r.getMessage()]
    assert len(summary) == 1
    assert "page(s)" in summary[0]


def test_result_reports_records_calls_and_watermark(harness: Harness) -> None:
    client = harness.client()

    result = harness.extract("Account", client=client)

    assert result.records == len(harness.admin.records("Account", include_deleted=True))
    assert result.pages == 1
    # /limits, describe and one page.
    assert result.api_calls == 3
    assert client.api_calls == 3
    used, maximum = harness.admin.api_usage()
    assert result.api_used == used
    assert result.api_max == maximum
    assert result.watermark_to == manifest_of(result).watermark_to
    assert manifest_of(result).api_calls == 3
    assert result.http_seconds > 0
