"""``cora rebuild`` and ``cora changes``.

``cora changes`` reads the analyst catalog, never the warehouse file, so it can run while a scheduled
run writes. ``cora rebuild`` takes the warehouse file's writer lock for as long as it runs.
"""

import argparse
import csv
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from cora_pipeline.errors import ConfigError
from cora_pipeline.warehouse.store import Warehouse

FORMATS = ("table", "csv", "json")
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

CHANGES_QUERY = """
SELECT r.detected_at, r.org, r.object, r.record_id, r.change_type, f.field, f.old_value,
    f.new_value, f.cause, r.run_id
FROM record_changes r
LEFT JOIN field_changes f
    ON f.org = r.org AND f.object = r.object AND f.extract_id = r.extract_id
    AND f.record_id = r.record_id
"""
COLUMNS = (
    "detected_at",
    "org",
    "object",
    "record_id",
    "change_type",
    "field",
    "old_value",
    "new_value",
    "cause",
    "run_id",
)


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        metavar="PATH",
        type=Path,
        help="directory holding extracts/ and the warehouse (default: data_root of the configuration)",
    )


def _data_root(args: argparse.Namespace) -> Path:
    if getattr(args, "data_root", None) is not None:
        return Path(args.data_root)
    from cora_pipeline.config import load_settings

    return load_settings(getattr(args, "config", None)).data_root


# -- cora rebuild -------------------------------------------------------------------------------


def add_rebuild_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_root(parser)


def run_rebuild(args: argparse.Namespace) -> int:
    data_root = _data_root(args)
    wh = Warehouse(data_root)
    try:
        results = wh.rebuild()
        path = wh.warehouse_path
    finally:
        wh.close()
    changes = sum(r.created + r.updated + r.deleted + r.undeleted for r in results)
    print(f"rebuilt {path} from {len(results)} extracts: {changes} record changes")
    return 0


# -- cora changes -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def add_changes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("org", nargs="?", help="only changes of this org")
    parser.add_argument("--object", metavar="NAME", help="only changes of this object (API name)")
    parser.add_argument(
        "--field", metavar="NAME", help="only changes of this field (API name); implies updates"
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only changes detected at or after WHEN: an ISO 8601 date or time (UTC unless it "
        "has an offset) or a span back from now such as 30m, 12h, 7d, 2w",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=100,
        help="print at most this many rows (default: 100)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    _add_data_root(parser)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """Parse ``--since``: an ISO 8601 date or time, or a span such as ``12h`` back from ``now``."""
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is not a valid time; use an ISO 8601 date or time "
            "(2026-03-01, 2026-03-01T09:30Z) or a span such as 30m, 12h, 7d or 2w"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def query_changes(
    catalog: Path,
    *,
    org: str | None = None,
    sobject: str | None = None,
    field: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Return record and field changes from the analyst catalog, newest first."""
    if not catalog.exists():
        raise ConfigError(
            f"analyst catalog {catalog} does not exist yet; run `cora sync` (or `cora rebuild` "
            "when extracts exist) first"
        )
    conditions = []
    params: list[Any] = []
    for column, value in (("r.org", org), ("r.object", sobject), ("f.field", field)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        conditions.append("r.detected_at >= ?")
        params.append(since)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        tables = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        if not {"record_changes", "field_changes"} <= tables:
            return []
        rows = con.execute(
            f"{CHANGES_QUERY} {where} "
            "ORDER BY r.detected_at DESC, r.org, r.object, r.record_id, f.field LIMIT ?",
            [*params, limit],
        ).fetchall()
    finally:
        con.close()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return str(value)


def run_changes(args: argparse.Namespace) -> int:
    data_root = _data_root(args)
    if getattr(args, "data_root", None) is None:
        # Filters name configured orgs and objects; a typo gets an error, not an empty result.
        from cora_pipeline.config import load_settings

        settings = load_settings(getattr(args, "config", None))
        if args.org:
            org = settings.org(args.org)
            known = [o.name for o in org.objects]
            if args.object and args.object not in known:
                raise ConfigError(
                    f"org {args.org!r} has no configured object {args.object} (configured: "
                    f"{', '.join(known)})"
                )
    since = parse_since(args.since) if args.since else None
    changes = query_changes(
        data_root / "analyst.duckdb",
        org=args.org,
        sobject=args.object,
        field=args.field,
        since=since,
        limit=args.limit,
    )
    if args.format == "json":
        rows = [{k: None if v is None else _text(v) for k, v in c.items()} for c in changes]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "csv":
        out = csv.writer(sys.stdout)
        out.writerow(COLUMNS)
        for change in changes:
            out.writerow([_text(change[c]) for c in COLUMNS])
    else:
        _print_table(changes)
    return 0


def _print_table(changes: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Piped output gets a fixed width wide enough for ids and timestamps, not rich's 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 200)
    if not changes:
        console.print("no changes match")
        return
    # run_id is left out of the table to keep it readable; csv and json carry it.
    columns = [c for c in COLUMNS if c != "run_id"]
    table = Table(title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(*(_text(change[c]) for c in columns))
    console.print(table)
