"""Extract builders for warehouse tests: real extract directories written with ``write_extract``."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from cora_pipeline.extract.files import FieldInfo, Manifest, new_extract_id, write_extract
from cora_pipeline.extract.schema import arrow_schema
from cora_pipeline.warehouse import Warehouse

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

ACCOUNT_FIELDS = [
    FieldInfo("Id", "id", "string"),
    FieldInfo("Name", "string", "string"),
    FieldInfo("AnnualRevenue", "currency", "decimal128(18, 2)", precision=18, scale=2),
    FieldInfo("NumberOfEmployees", "int", "int64"),
    FieldInfo("IsPartner__c", "boolean", "bool"),
    FieldInfo("SLAExpirationDate__c", "date", "date32"),
    FieldInfo("Health__c", "double", "decimal128(18, 4)", calculated=True, precision=18, scale=4),
    FieldInfo("IsDeleted", "boolean", "bool"),
    FieldInfo("LastModifiedDate", "datetime", "timestamp[ms, tz=UTC]"),
    FieldInfo("SystemModstamp", "datetime", "timestamp[ms, tz=UTC]"),
]


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def account(record_id: str, **values: Any) -> dict[str, Any]:
    """Return an Account row with defaults for every field, overridden by ``values``."""
    row: dict[str, Any] = {
        "Id": record_id,
        "Name": f"Account {record_id}",
        "AnnualRevenue": Decimal("1000.00"),
        "NumberOfEmployees": 10,
        "IsPartner__c": False,
        "SLAExpirationDate__c": None,
        "Health__c": Decimal("0.5000"),
        "IsDeleted": False,
        "LastModifiedDate": at(0),
        "SystemModstamp": at(0),
    }
    row.update(values)
    return row


@dataclass
class ExtractWriter:
    """Write extracts of one org's objects at increasing times."""

    data_root: Path
    org: str = "acme"
    hour: float = 1.0
    written: list[Path] = field(default_factory=list)

    def write(
        self,
        rows: list[dict[str, Any]],
        *,
        mode: str = "full",
        sobject: str = "Account",
        fields: list[FieldInfo] | None = None,
        deleted: list[tuple[str, datetime]] | None = None,
        status: str = "succeeded",
        extra: dict[str, Any] | None = None,
    ) -> Path:
        fields = list(fields or ACCOUNT_FIELDS)
        finished = at(self.hour)
        self.hour += 1
        schema = arrow_schema(fields)
        table = pa.Table.from_pylist(
            [{f.name: row.get(f.name) for f in fields} for row in rows], schema=schema
        )
        deleted_table = None
        if deleted is not None:
            deleted_table = pa.table(
                {
                    "Id": pa.array([d[0] for d in deleted], pa.string()),
                    "deleted_at": pa.array([d[1] for d in deleted], pa.timestamp("ms", tz="UTC")),
                }
            )
        manifest = Manifest(
            org=self.org,
            object=sobject,
            extract_id=new_extract_id(finished),
            mode=mode,  # type: ignore[arg-type]
            started_at=(finished - timedelta(minutes=1)).isoformat(),
            finished_at=finished.isoformat(),
            fields=fields,
            run_id=f"run-{len(self.written) + 1}",
            watermark_field="SystemModstamp",
            status=status,  # type: ignore[arg-type]
            extra=extra or {},
        )
        path = write_extract(self.data_root, manifest, table, deleted_table)
        self.written.append(path)
        return path


def without(fields: list[FieldInfo], *names: str) -> list[FieldInfo]:
    return [f for f in fields if f.name not in names]


def retyped(fields: list[FieldInfo], name: str, **changes: Any) -> list[FieldInfo]:
    return [replace(f, **changes) if f.name == name else f for f in fields]


def rows(wh: Warehouse, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return wh.con.execute(sql, params or []).fetchall()


def write_history(writer: ExtractWriter) -> None:
    """Write a sequence of extracts that exercises every kind of change."""
    writer.write([account("a1"), account("a2"), account("a3")])
    writer.write([account("c1")], sobject="Contact", fields=ACCOUNT_FIELDS[:2])
    writer.write(
        [
            account("a1", Name="Edited", LastModifiedDate=at(2.5), SystemModstamp=at(2.5)),
            account("a2", IsDeleted=True, SystemModstamp=at(2.5)),
            account("a4"),
        ],
        mode="incremental",
    )
    edited = account("a1", Name="Edited", LastModifiedDate=at(2.5), SystemModstamp=at(2.5))
    writer.write(
        [edited, account("a2", IsDeleted=True, SystemModstamp=at(2.5)), account("a4")],
        fields=without(ACCOUNT_FIELDS, "NumberOfEmployees"),
        extra={"hidden_fields": ["NumberOfEmployees"]},
    )
    writer.write(
        [
            edited,
            account("a2", LastModifiedDate=at(4.5), SystemModstamp=at(4.5)),
            account("a4", Rating="Warm"),
        ],
        fields=[*ACCOUNT_FIELDS, FieldInfo("Rating", "picklist", "string")],
    )
