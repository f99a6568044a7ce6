"""The `cora` command line: bad input gets one clear line naming the value and the fix."""

from pathlib import Path

import pytest

from cora_pipeline.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CORA_HOME", str(tmp_path / "cora"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("CORA_CONFIG", raising=False)


def test_missing_config_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = main(["--config", str(tmp_path / "absent.yaml"), "sync"])

    err = capsys.readouterr().err
    assert status == 2
    assert f"configuration file {tmp_path / 'absent.yaml'} does not exist" in err


def test_sync_unknown_org_lists_known(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sync", "globex"])

    err = capsys.readouterr().err
    assert status == 2
    assert "org 'globex' is not configured" in err
    assert "configured: demo" in err


def test_sync_unknown_object_lists_known(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sync", "demo", "--object", "Lead"])

    err = capsys.readouterr().err
    assert status == 2
    assert "org 'demo' has no configured object Lead" in err
    assert "Account, Contact, Opportunity, Case, Invoice__c" in err


def test_sync_requires_absolute_dagster_home(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "relative/home")

    status = main(["sync", "demo"])

    err = capsys.readouterr().err
    assert status == 2
    assert "DAGSTER_HOME=relative/home must be an absolute path" in err


def test_invalid_yaml_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "cora.yaml"
    config.write_text("orgs: [unclosed\n", encoding="utf-8")

    status = main(["--config", str(config), "sync"])

    err = capsys.readouterr().err
    assert status == 2
    assert "is not valid YAML" in err


def test_unknown_command_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["frobnicate"])

    assert excinfo.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def _write_org_config(tmp_path: Path) -> Path:
    config = tmp_path / "cora.yaml"
    config.write_text(
        "orgs:\n  acme:\n    client_id: key\n    client_secret_env: ACME_SECRET\n",
        encoding="utf-8",
    )
    return config


def test_sync_names_unset_secret_variable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_SECRET", raising=False)

    status = main(["--config", str(_write_org_config(tmp_path)), "sync", "acme"])

    err = capsys.readouterr().err
    assert status == 2
    assert "environment variable ACME_SECRET is not set" in err
    assert "Traceback" not in err


def test_sync_of_unconnected_org_says_connect(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cora_pipeline.config import load_settings
    from cora_pipeline.connect import ConnectionStore

    config = _write_org_config(tmp_path)
    monkeypatch.setenv("ACME_SECRET", "not-a-real-secret")
    ConnectionStore.open(load_settings(config), create_key=True)

    status = main(["--config", str(config), "sync", "acme"])

    err = capsys.readouterr().err
    assert status == 2
    assert "org 'acme' is not connected; run `cora connect acme` first" in err
    assert "Traceback" not in err


def test_config_accepted_after_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = main(["sync", "--config", str(tmp_path / "absent.yaml")])

    err = capsys.readouterr().err
    assert status == 2
    assert f"configuration file {tmp_path / 'absent.yaml'} does not exist" in err


def test_changes_rejects_unknown_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["changes", "acme"]) == 2
    assert "org 'acme' is not configured" in capsys.readouterr().err

    assert main(["changes", "demo", "--object", "Lead"]) == 2
    assert "org 'demo' has no configured object Lead" in capsys.readouterr().err


def test_changes_rejects_negative_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["changes", "--limit", "-3"])

    assert excinfo.value.code == 2
    assert "-3 must be 1 or more" in capsys.readouterr().err
