"""Secrets are masked in log records and reprs."""

import logging

import pytest

from cora_pipeline.connect import AccessToken, install_redaction, redact, register_secret

SECRET = "00DXX0000001abc!AQ0AQsecret-for-redaction-tests"


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    install_redaction()
    register_secret(SECRET)
    caplog.set_level(logging.DEBUG)
    return caplog


def test_secret_in_message_arguments_is_masked(captured: pytest.LogCaptureFixture) -> None:
    logging.getLogger("cora_pipeline.some.module").info("token is %s", SECRET)

    assert SECRET not in captured.text
    assert "token is [redacted]" in captured.text


def test_secret_in_fstring_message_is_masked(captured: pytest.LogCaptureFixture) -> None:
    logging.getLogger("third.party").warning(f"Authorization: Bearer {SECRET}")

    assert SECRET not in captured.text
    assert "Bearer [redacted]" in captured.text


def test_secret_in_traceback_is_masked(captured: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError(f"request failed with token {SECRET}")
    except RuntimeError:
        logging.getLogger("cora_pipeline").exception("call failed")

    assert SECRET not in captured.text
    assert all(SECRET not in (r.exc_text or "") for r in captured.records)


def test_install_twice_keeps_one_filter() -> None:
    first = install_redaction()
    second = install_redaction()

    assert first is second
    assert logging.getLogger().filters.count(first) == 1


def test_short_values_are_not_registered() -> None:
    register_secret("abc")

    assert redact("abc def") == "abc def"


def test_access_token_repr_hides_token() -> None:
    token = AccessToken(
        access_token=SECRET,
        instance_url="https://acme.my.salesforce.com",
        org="acme",
        org_id="00DXX0000001abcEAA",
        api_version="59.0",
    )

    assert SECRET not in repr(token)
    assert SECRET not in str(token)
    assert "acme.my.salesforce.com" in repr(token)


def test_unregistered_oauth_parameters_are_masked() -> None:
    line = "GET /callback?code=aPrxUnregistered123&state=s1 HTTP/1.1; client_secret=abc123456"

    masked = redact(line)

    assert "aPrxUnregistered123" not in masked
    assert "abc123456" not in masked
    assert "state=s1" in masked
    assert redact("error_code=INVALID_FIELD") == "error_code=INVALID_FIELD"
