"""The configuration file: defaults, validation and messages that name the value and the fix."""

from pathlib import Path

import pytest

from cora_pipeline.config import (
    DEFAULT_OBJECTS,
    DEMO_ORG,
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    load_settings,
    parse_settings,
)
from cora_pipeline.errors import ConfigError


def test_no_file_gives_the_demo_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORA_CONFIG", raising=False)
    monkeypatch.setenv("CORA_HOME", str(tmp_path / "home"))

    settings = load_settings()

    assert list(settings.orgs) == [DEMO_ORG]
    assert settings.orgs[DEMO_ORG].emulator is True
    assert [o.name for o in settings.orgs[DEMO_ORG].objects] == list(DEFAULT_OBJECTS)
    assert settings.data_root == tmp_path / "home"
    assert settings.source is None


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_full_org_parses(tmp_path: Path) -> None:
    path = tmp_path / "cora.yaml"
    path.write_text(
        """
data_root: data
orgs:
  acme:
    environment: sandbox
    client_id: key123
    client_secret_env: ACME_SECRET
    objects: [Account, {name: Invoice__c, exclude: [Notes__c]}]
    api_budget_share: 0.25
    batch_size: 500
""",
        encoding="utf-8",
    )

    settings = load_settings(path)
    org = settings.org("acme")

    assert settings.data_root == tmp_path / "data"
    assert org.is_sandbox is True
    assert org.login_url == SANDBOX_LOGIN_URL
    assert [o.name for o in org.objects] == ["Account", "Invoice__c"]
    assert org.objects[1].exclude == ("Notes__c",)
    assert org.api_budget_share == 0.25
    assert org.batch_size == 500


def test_client_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse_settings(
        {"orgs": {"acme": {"client_id": "k", "client_secret_env": "ACME_SECRET"}}}
    )
    monkeypatch.delenv("ACME_SECRET", raising=False)
    with pytest.raises(ConfigError, match="ACME_SECRET is not set"):
        _ = settings.org("acme").client_secret

    monkeypatch.setenv("ACME_SECRET", "s3cr3t")
    assert settings.org("acme").client_secret == "s3cr3t"


@pytest.mark.parametrize(
    ("org_body", "message"),
    [
        ({"client_id": "k", "environment": "staging"}, "environment 'staging' is invalid"),
        ({"client_id": "k", "flow": "password"}, "flow 'password' is invalid"),
        ({}, "client_id is missing"),
        ({"client_id": "k", "login_url": "http://acme.my.salesforce.com"}, "must start with https"),
        ({"client_id": "k", "flow": "client_credentials"}, "only on the org's My Domain host"),
        ({"client_id": "k", "flow": "jwt"}, "needs username and private_key_file"),
        ({"client_id": "k", "api_budget_share": 1.5}, "api_budget_share 1.5"),
        ({"client_id": "k", "batch_size": 5000}, "batch_size 5000 is outside 200..2000"),
        ({"client_id": "k", "objects": ["Account", "Account"]}, "objects listed twice"),
        ({"client_id": "k", "objects": ["Bad Name"]}, "'Bad Name' is not a valid sObject"),
        ({"client_id": "k", "colour": "blue"}, "unknown keys \\['colour'\\]"),
        ({"client_id": "k", "batch_size": "lots"}, "batch_size 'lots' is not a whole number"),
        ({"client_id": "k", "callback_port": 70000}, "callback_port 70000 is not a TCP port"),
        ({"client_id": "k", "overlap_seconds": -5}, "overlap_seconds -5 must not be negative"),
        ({"client_id": "k", "reconcile_hours": "daily"}, "reconcile_hours 'daily' is not a number"),
        ({"client_id": "k", "schedule": "every hour"}, "schedule 'every hour' is not a cron"),
    ],
)
def test_invalid_org_settings_are_named(org_body: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"orgs": {"acme": org_body}})


def test_org_names_must_be_slugs() -> None:
    with pytest.raises(ConfigError, match="org name 'Acme-Prod' is invalid"):
        parse_settings({"orgs": {"Acme-Prod": {"client_id": "k"}}})


def test_unknown_org_lists_the_configured_ones() -> None:
    settings = parse_settings({"orgs": {"acme": {"client_id": "k"}}})
    with pytest.raises(ConfigError, match=r"org 'globex' is not configured .*configured: acme"):
        settings.org("globex")


def test_production_is_the_default_login_host() -> None:
    settings = parse_settings({"orgs": {"acme": {"client_id": "k"}}})
    assert settings.org("acme").login_url == PRODUCTION_LOGIN_URL
    assert settings.org("acme").is_sandbox is False


def test_emulator_org_keeps_its_settings() -> None:
    settings = parse_settings(
        {
            "orgs": {
                "sandbox_demo": {
                    "emulator": True,
                    "objects": ["Account", "Case"],
                    "schedule": "0 * * * *",
                    "schedule_running": True,
                    "api_budget_share": 0.1,
                }
            }
        }
    )
    org = settings.org("sandbox_demo")

    assert org.emulator is True
    assert [o.name for o in org.objects] == ["Account", "Case"]
    assert org.schedule == "0 * * * *"
    assert org.schedule_running is True
    assert org.api_budget_share == 0.1


def test_budget_share_must_be_a_number() -> None:
    with pytest.raises(ConfigError, match="api_budget_share 'half' is not a number"):
        parse_settings({"orgs": {"acme": {"client_id": "k", "api_budget_share": "half"}}})


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cora.yaml"
    path.write_text(
        "orgs:\n  acme:\n    client_id: k\n    ca_file: missing-ca.pem\n", encoding="utf-8"
    )

    with pytest.raises(ConfigError, match=r"ca_file missing-ca\.pem does not exist"):
        load_settings(path)


def test_relative_ca_file_is_found_beside_config(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here", encoding="utf-8")
    path = tmp_path / "cora.yaml"
    path.write_text("orgs:\n  acme:\n    client_id: k\n    ca_file: ca.pem\n", encoding="utf-8")

    assert load_settings(path).org("acme").ca_file == str(tmp_path / "ca.pem")


def test_file_without_orgs_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cora.yaml"
    path.write_text("", encoding="utf-8")

    with pytest.raises(ConfigError, match="configures no orgs"):
        load_settings(path)
