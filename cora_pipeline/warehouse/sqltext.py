"""SQL text helpers: identifier quoting and the canonical text of a value.

``field_changes.old_value`` and ``new_value`` hold each value as text in one canonical format per type,
so two spellings of the same value (``1`` and ``1.0``) read the same and compare equal:

| DuckDB type | canonical text | example |
| --- | --- | --- |
| VARCHAR | the string itself | ``Acme; Corp`` |
| BOOLEAN | ``true`` or ``false`` | ``true`` |
| BIGINT | decimal digits | ``-42`` |
| DECIMAL(p, s) | digits without trailing fraction zeros, no exponent | ``1``, ``1.5``, ``0.25`` |
| DOUBLE | integral values below 1e15 as integers, others as DuckDB's shortest round-trip text | ``1``, ``0.1``, ``1e+20`` |
| DATE | ISO 8601 | ``2024-03-01`` |
| TIMESTAMP WITH TIME ZONE | ISO 8601 in UTC with milliseconds, the form Salesforce sends | ``2024-03-01T09:30:00.000Z`` |

A NULL value stays SQL NULL, never the text ``null``.
"""

import re

from cora_pipeline.errors import ConfigError

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS = frozenset({"main", "cora_meta", "information_schema", "pg_catalog", "temp"})


def quote_ident(name: str) -> str:
    """Quote a DuckDB identifier, so org, object and field names are never read as SQL."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_org_slug(org: str) -> None:
    """Raise ConfigError (a ValueError) unless ``org`` can name a warehouse schema."""
    if not _SLUG.match(org):
        raise ConfigError(
            f"org name {org!r} is not a valid slug; use lowercase letters, digits and underscores, "
            "starting with a letter (for example 'acme_prod')"
        )
    if org in RESERVED_SCHEMAS:
        raise ConfigError(
            f"org name {org!r} is reserved by the warehouse; rename the org in the configuration"
        )


def canonical_text(expr: str, duckdb_type: str) -> str:
    """Return SQL that renders ``expr`` of ``duckdb_type`` as its canonical text (see the module docstring).

    Timestamps render in UTC only when the connection's ``TimeZone`` setting is ``UTC``, which
    :class:`cora_pipeline.warehouse.Warehouse` sets on every connection it opens.
    """
    kind = duckdb_type.upper()
    if kind == "VARCHAR":
        return expr
    if kind.startswith("DECIMAL"):
        scale = _decimal_scale(kind)
        text = f"CAST({expr} AS VARCHAR)"
        if scale == 0:
            return text
        return f"rtrim(rtrim({text}, '0'), '.')"
    if kind == "DOUBLE" or kind == "FLOAT":
        return (
            f"CASE WHEN isfinite({expr}) AND {expr} = trunc({expr}) AND abs({expr}) < 1e15 "
            f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
        )
    if kind == "DATE":
        return f"strftime({expr}, '%Y-%m-%d')"
    if kind == "TIMESTAMP WITH TIME ZONE":
        return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S.%gZ')"
    if kind == "TIMESTAMP":
        return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S.%gZ')"
    return f"CAST({expr} AS VARCHAR)"


def _decimal_scale(kind: str) -> int:
    match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", kind)
    return int(match.group(2)) if match else 0
