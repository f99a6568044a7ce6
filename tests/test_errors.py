"""Error messages carry the value, the cause and the command that fixes it."""

from cora_pipeline.errors import ReauthorizationRequired, Terminal


def test_reauthorization_names_command() -> None:
    error = ReauthorizationRequired("acme", "expired access/refresh token", "cora connect acme")

    assert isinstance(error, Terminal)
    assert "org 'acme' needs re-authorization" in str(error)
    assert "expired access/refresh token" in str(error)
    assert str(error).endswith("Run `cora connect acme` to connect it again.")


def test_reauthorization_keeps_specific_hint() -> None:
    error = ReauthorizationRequired(
        "acme",
        "user hasn't approved this consumer",
        "cora connect acme --flow jwt",
        hint="Pre-authorize the user through a permission set.",
    )

    lines = str(error).splitlines()
    assert lines[-2] == "Pre-authorize the user through a permission set."
    assert lines[-1] == "Run `cora connect acme --flow jwt` to connect it again."
    assert error.hint == "\n".join(lines[-2:])
