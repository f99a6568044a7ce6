"""Map Salesforce describe field types to Arrow types.

| describe ``type`` | Arrow type | why |
| --- | --- | --- |
| id, reference, masterrecord, string, textarea, picklist, multipicklist, combobox, email, phone, url, encryptedstring, datacategorygroupreference, anyType, time | ``string`` | text; a multipicklist stays ``a;b`` as Salesforce sends it; ``time`` arrives as ``HH:mm:ss.SSSZ``; ``anyType`` values (History ``OldValue``) are kept as their JSON text form |
| boolean | ``bool`` | |
| int, long | ``int64`` | ``int`` is a 32-bit integer and ``long`` has at most 18 digits in Salesforce, so 64 bits always fit |
| double, currency, percent | ``decimal128(precision, scale)`` when precision is 1..38, else ``float64`` | keeps the value Salesforce stores exactly, so ``1`` and ``1.0`` compare equal and large values do not round |
| date | ``date32`` | |
| datetime | ``timestamp[ms, UTC]`` | Salesforce stores milliseconds |

Fields skipped on purpose:

- ``address`` and ``location`` compound fields: their component fields (``BillingStreet``,
  ``BillingCity`` ...) are extracted instead, so each part is a column that can be diffed and filtered.
- ``base64``: a query returns a URL to the blob, not its content, and one blob costs one API call.
- Types the REST query cannot return as a flat value (``complexvalue``, ``json``, ``byte`` and any
  type this table does not list).
"""

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cora_pipeline.extract.files import FieldInfo

TEXT_TYPES = frozenset(
    {
        "id",
        "reference",
        "masterrecord",
        "string",
        "textarea",
        "picklist",
        "multipicklist",
        "combobox",
        "email",
        "phone",
        "url",
        "encryptedstring",
        "datacategorygroupreference",
        "anyType",
        "time",
    }
)
INTEGER_TYPES = frozenset({"int", "long"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
COMPOUND_TYPES = frozenset({"address", "location"})


@dataclass(frozen=True)
class SkippedField:
    name: str
    type: str
    reason: str


def arrow_type_for(describe_field: dict[str, Any]) -> pa.DataType | None:
    """Return the Arrow type for one describe field entry, or None when the field is not extracted."""
    sf_type = describe_field["type"]
    if sf_type in TEXT_TYPES:
        return pa.string()
    if sf_type == "boolean":
        return pa.bool_()
    if sf_type in INTEGER_TYPES:
        return pa.int64()
    if sf_type in NUMBER_TYPES:
        precision = int(describe_field.get("precision") or 0)
        scale = int(describe_field.get("scale") or 0)
        if 0 < precision <= 38 and 0 <= scale <= precision:
            return pa.decimal128(precision, scale)
        return pa.float64()
    if sf_type == "date":
        return pa.date32()
    if sf_type == "datetime":
        return pa.timestamp("ms", tz="UTC")
    return None


def skip_reason(describe_field: dict[str, Any]) -> str:
    sf_type = describe_field["type"]
    if sf_type in COMPOUND_TYPES:
        return f"compound {sf_type} field; its component fields are extracted instead"
    if sf_type == "base64":
        return "base64 field; a query returns only a URL to the blob, one API call per record"
    return f"field type {sf_type!r} has no value representation in REST query results"


def plan_fields(
    describe_fields: list[dict[str, Any]],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
) -> tuple[list[FieldInfo], list[SkippedField]]:
    """Choose the fields to extract from an object's describe and give each its Arrow type.

    ``include`` keeps only the named fields (``Id`` and the watermark fields are always kept, because
    the extract cannot work without them); ``exclude`` drops the named fields.
    """
    requested = set(include) if include else None
    excluded = set(exclude or ())
    always = {"Id", "SystemModstamp", "LastModifiedDate", "IsDeleted"}
    fields: list[FieldInfo] = []
    skipped: list[SkippedField] = []
    for entry in describe_fields:
        name = entry["name"]
        if name not in always and (
            (requested is not None and name not in requested) or name in excluded
        ):
            continue
        arrow_type = arrow_type_for(entry)
        if arrow_type is None:
            skipped.append(SkippedField(name, entry["type"], skip_reason(entry)))
            continue
        fields.append(
            FieldInfo(
                name=name,
                type=entry["type"],
                arrow_type=str(arrow_type),
                calculated=bool(entry.get("calculated")),
                nillable=bool(entry.get("nillable", True)),
                length=int(entry.get("length") or 0),
                precision=int(entry.get("precision") or 0),
                scale=int(entry.get("scale") or 0),
            )
        )
    return fields, skipped


def field_arrow_type(info: FieldInfo) -> pa.DataType:
    """Return the Arrow type of an extracted field, the same one :func:`plan_fields` chose."""
    arrow_type = arrow_type_for(
        {"type": info.type, "precision": info.precision, "scale": info.scale}
    )
    if arrow_type is None:
        raise ValueError(f"field {info.name!r} of type {info.type!r} is not extractable")
    return arrow_type


def arrow_schema(fields: list[FieldInfo]) -> pa.Schema:
    return pa.schema([pa.field(f.name, field_arrow_type(f)) for f in fields])
