"""Field-level decisions for one extract: which fields to compare, and which schema changes it makes.

``cora_meta.fields`` records every field the warehouse has seen on an object, with its Salesforce, Arrow
and DuckDB types, whether it is calculated, and its state: ``active``, ``hidden`` or ``removed``.
Comparing an extract's fields with that record yields the ``schema_changes`` rows, the columns to add or
convert, and the fields whose values are compared record by record.
"""

from dataclasses import dataclass, field
from typing import Any

import duckdb

from cora_pipeline.extract.files import FieldInfo, Manifest

AUDIT_FIELDS = (
    "SystemModstamp",
    "LastModifiedDate",
    "LastModifiedById",
    "LastViewedDate",
    "LastReferencedDate",
)


@dataclass
class SchemaChange:
    field: str
    change: str
    old_type: str | None
    new_type: str | None


@dataclass
class ComparedField:
    name: str
    old_type: str
    new_type: str
    calculated: bool
    gone_since: str | None = None


@dataclass
class FieldPlan:
    """The field-level decisions for one extract, made before any row is read."""

    compared: list[ComparedField] = field(default_factory=list)
    schema_changes: list[SchemaChange] = field(default_factory=list)
    add_columns: list[tuple[str, str]] = field(default_factory=list)
    retype_columns: list[tuple[str, str]] = field(default_factory=list)
    registry_rows: list[tuple[Any, ...]] = field(default_factory=list)
    write_all: bool = False


def type_label(sf_type: str, duckdb_type: str) -> str:
    return f"{sf_type} ({duckdb_type})"


class FieldPlanner:
    """Plan one extract's field changes against ``cora_meta.fields`` and the current table."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        manifest: Manifest,
        new_types: dict[str, str],
        old_types: dict[str, str],
    ):
        self.con = con
        self.m = manifest
        self.org = manifest.org
        self.sobject = manifest.object
        self.new_types = new_types
        self.old_types = old_types
        self.fields_by_name = {f.name: f for f in manifest.fields}

    def field_info(self, name: str) -> FieldInfo:
        info = self.fields_by_name.get(name)
        if info is not None:
            return info
        # A column the manifest does not describe still gets a type from the Parquet schema.
        return FieldInfo(name=name, type="unknown", arrow_type="unknown")

    def registry_row(self, name: str, state: str, gone_since: str | None) -> tuple[Any, ...]:
        info = self.field_info(name)
        return (
            self.org,
            self.sobject,
            name,
            info.type,
            info.arrow_type,
            self.new_types[name],
            info.calculated,
            state,
            gone_since,
        )

    def plan(self) -> FieldPlan:
        """Compare the extract's fields with the known ones and decide what to compare and alter."""
        plan = FieldPlan()
        skip = {"Id", "IsDeleted", *AUDIT_FIELDS}
        if self.m.mode == "formula":
            for name, new_type in self.new_types.items():
                if name in skip or name not in self.old_types:
                    continue
                old_type = self.old_types[name]
                calculated = self.field_info(name).calculated
                plan.compared.append(ComparedField(name, old_type, new_type, calculated))
            return plan

        registry = {
            row[0]: row
            for row in self.con.execute(
                "SELECT field, sf_type, duckdb_type, state, gone_since, arrow_type, calculated "
                "FROM cora_meta.fields "
                "WHERE org = ? AND object = ?",
                [self.org, self.sobject],
            ).fetchall()
        }
        hidden = set(self.m.extra.get("hidden_fields") or ())
        for name, new_type in self.new_types.items():
            info = self.field_info(name)
            known = registry.get(name)
            if known is None or name not in self.old_types:
                plan.schema_changes.append(
                    SchemaChange(name, "added", None, type_label(info.type, new_type))
                )
                plan.add_columns.append((name, new_type))
                plan.registry_rows.append(self.registry_row(name, "active", None))
                plan.write_all = True
                continue
            _, old_sf_type, old_duckdb_type, state, gone_since, _, _ = known
            old_type = self.old_types[name]
            if state != "active":
                change = "visible" if state == "hidden" else "added"
                plan.schema_changes.append(
                    SchemaChange(
                        name,
                        change,
                        type_label(old_sf_type, old_duckdb_type),
                        type_label(info.type, new_type),
                    )
                )
                plan.write_all = True
            if (old_sf_type, old_type) != (info.type, new_type):
                plan.schema_changes.append(
                    SchemaChange(
                        name,
                        "retyped",
                        type_label(old_sf_type, old_duckdb_type),
                        type_label(info.type, new_type),
                    )
                )
                if old_type != new_type:
                    plan.retype_columns.append((name, new_type))
                plan.write_all = True
            if state != "active" or (old_sf_type, old_type) != (info.type, new_type):
                plan.registry_rows.append(self.registry_row(name, "active", None))
            if name not in skip:
                plan.compared.append(
                    ComparedField(
                        name,
                        old_type,
                        new_type,
                        info.calculated,
                        gone_since if state != "active" else None,
                    )
                )
        for name, (_, sf_type, duckdb_type, state, _, arrow_type, calculated) in registry.items():
            if state != "active" or name in self.new_types:
                continue
            change = "hidden" if name in hidden else "removed"
            plan.schema_changes.append(
                SchemaChange(name, change, type_label(sf_type, duckdb_type), None)
            )
            plan.registry_rows.append(
                (
                    self.org,
                    self.sobject,
                    name,
                    sf_type,
                    arrow_type,
                    duckdb_type,
                    calculated,
                    change,
                    self.m.extract_id,
                )
            )
        return plan
