"""Field and object definitions, and the describe payloads built from them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# describe `type` -> `soapType`, from real REST describe bodies.
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "picklist": "xsd:string",
    "multipicklist": "xsd:string",
    "combobox": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "encryptedstring": "xsd:string",
    "int": "xsd:int",
    "long": "xsd:long",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "time": "xsd:time",
    "base64": "xsd:base64Binary",
    "address": "urn:address",
    "location": "urn:location",
    "anyType": "xsd:anyType",
}

TEXT_TYPES = frozenset(
    {
        "string",
        "textarea",
        "picklist",
        "multipicklist",
        "combobox",
        "email",
        "phone",
        "url",
        "encryptedstring",
        "id",
        "reference",
    }
)
NUMBER_TYPES = frozenset({"int", "long", "double", "currency", "percent"})

# Salesforce stores text as UTF-8 and reports byteLength as three bytes per character.
_BYTES_PER_CHAR = 3


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject, with the describe attributes that vary between fields."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    custom: bool = False
    formula: str | None = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    polymorphic: bool = False
    picklist: tuple[str, ...] = ()
    compound_field_name: str | None = None
    createable: bool = True
    updateable: bool = True
    filterable: bool = True
    name_field: bool = False
    unique: bool = False
    external_id: bool = False
    auto_number: bool = False
    defaulted_on_create: bool = False
    html_formatted: bool = False
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def calculated(self) -> bool:
        return self.formula is not None

    @property
    def is_compound(self) -> bool:
        return self.type in ("address", "location")

    @property
    def long_text(self) -> bool:
        return self.type == "textarea" and self.length > 255

    @property
    def sortable(self) -> bool:
        return not (self.long_text or self.type in ("multipicklist", "address", "location"))

    @property
    def groupable(self) -> bool:
        return (
            self.type
            not in (
                "textarea",
                "multipicklist",
                "double",
                "currency",
                "percent",
                "datetime",
                "address",
                "location",
            )
            and not self.calculated
        )

    def with_changes(self, **changes: Any) -> FieldDef:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """Build the field entry of a describe result; every key is present, null when empty."""
        byte_length = 0
        if self.type in TEXT_TYPES:
            byte_length = self.length * _BYTES_PER_CHAR
        if self.type in ("id", "reference"):
            byte_length = 18
        if self.type == "multipicklist":
            byte_length = self.length
        entry: dict[str, Any] = {
            "aggregatable": self.type not in ("textarea", "multipicklist", "address", "location"),
            "aiPredictionField": False,
            "autoNumber": self.auto_number,
            "byteLength": byte_length,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable and not self.calculated and not self.auto_number,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create or self.type == "boolean",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": None,
            "filterable": self.filterable and not self.long_text and self.type != "location",
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.groupable,
            "highScaleNumber": False,
            "htmlFormatted": self.html_formatted,
            "idLookup": self.type == "id" or self.unique or self.external_id,
            "inlineHelpText": None,
            "label": self.label or self.name,
            "length": self.length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.polymorphic,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.custom and not self.calculated,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": False,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "polymorphicForeignKey": self.polymorphic,
            "precision": self.precision,
            "queryByDistance": self.type == "address",
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": False,
            "scale": self.scale,
            "searchPrefilterable": self.type == "reference",
            "soapType": SOAP_TYPES[self.type],
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable and not self.calculated and not self.auto_number,
            "writeRequiresMasterRead": False,
        }
        if self.type in ("address", "location"):
            entry["createable"] = False
            entry["updateable"] = False
        if self.type == "textarea" and self.long_text:
            entry["extraTypeInfo"] = "plaintextarea"
        entry.update(dict(self.extra))
        return entry


@dataclass(frozen=True)
class ChildRelationship:
    child_sobject: str
    field: str
    relationship_name: str | None
    cascade_delete: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "cascadeDelete": self.cascade_delete,
            "childSObject": self.child_sobject,
            "deprecatedAndHidden": False,
            "field": self.field,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": self.relationship_name,
            "restrictedDelete": False,
        }


@dataclass
class ObjectDef:
    """One sObject type: its fields in describe order and the flags describeGlobal reports."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    custom: bool = False
    createable: bool = True
    deletable: bool = True
    replicateable: bool = True
    undeletable: bool = True
    queryable: bool = True
    child_relationships: list[ChildRelationship] = field(default_factory=list)
    # Fields removed from every API user's field-level security, and per user id.
    hidden_fields: set[str] = field(default_factory=set)
    hidden_for_users: dict[str, set[str]] = field(default_factory=dict)
    # Lower-cased field and relationship names, rebuilt whenever the field set changes.
    _by_lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)
    _relationships: dict[str, FieldDef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self._relationships = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    def add(self, definition: FieldDef) -> None:
        self.fields[definition.name] = definition
        self.reindex()

    def remove(self, name: str) -> FieldDef:
        definition = self.fields.pop(name)
        self.hidden_fields.discard(name)
        for hidden in self.hidden_for_users.values():
            hidden.discard(name)
        self.reindex()
        return definition

    def is_hidden(self, name: str, user_id: str | None = None) -> bool:
        if name in self.hidden_fields:
            return True
        return user_id is not None and name in self.hidden_for_users.get(user_id, ())

    def visible_field(self, name: str, user_id: str | None = None) -> FieldDef | None:
        """Return the field ``user_id`` may see under a case-insensitive name, or None."""
        definition = self._by_lower.get(name.lower())
        if definition is None or self.is_hidden(definition.name, user_id):
            return None
        return definition

    def visible_relationship(self, name: str, user_id: str | None = None) -> FieldDef | None:
        definition = self._relationships.get(name.lower())
        if definition is None or self.is_hidden(definition.name, user_id):
            return None
        return definition

    def visible_fields(self, user_id: str | None = None) -> list[FieldDef]:
        return [f for f in self.fields.values() if not self.is_hidden(f.name, user_id)]

    def urls(self, version: str) -> dict[str, str | None]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "compactLayouts": f"{base}/describe/compactLayouts",
            "rowTemplate": f"{base}/{{ID}}",
            "approvalLayouts": f"{base}/describe/approvalLayouts",
            "uiDetailTemplate": None,
            "uiEditTemplate": None,
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "listviews": f"{base}/listviews",
            "describe": f"{base}/describe",
            "uiNewRecord": None,
            "quickActions": f"{base}/quickActions",
            "layouts": f"{base}/describe/layouts",
            "sobject": base,
        }

    def global_entry(self, version: str) -> dict[str, Any]:
        """Build this object's entry in describeGlobal."""
        return {
            "activateable": False,
            "associateEntityType": None,
            "associateParentEntity": None,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": False,
            "deepCloneable": False,
            "deletable": self.deletable,
            "deprecatedAndHidden": False,
            "feedEnabled": not self.custom,
            "hasSubtypes": False,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": self.name in ("Account", "Contact"),
            "mruEnabled": True,
            "name": self.name,
            "queryable": self.queryable,
            "replicateable": self.replicateable,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": self.undeletable,
            "updateable": self.createable,
            "urls": {
                key: value
                for key, value in self.urls(version).items()
                if key
                in (
                    "sobject",
                    "describe",
                    "rowTemplate",
                    "compactLayouts",
                    "approvalLayouts",
                    "listviews",
                    "quickActions",
                    "layouts",
                )
            },
        }

    def describe(self, version: str, user_id: str | None = None) -> dict[str, Any]:
        """Build the full describe result for ``user_id`` (hidden fields are left out)."""
        entry = self.global_entry(version)
        entry.update(
            {
                "actionOverrides": [],
                "childRelationships": [c.describe() for c in self.child_relationships],
                "compactLayoutable": True,
                "defaultImplementation": None,
                "extendedBy": None,
                "extendsInterfaces": None,
                "fields": [f.describe() for f in self.visible_fields(user_id)],
                "implementedBy": None,
                "implementsInterfaces": None,
                "listviewable": None,
                "lookupLayoutable": None,
                "namedLayoutInfos": [],
                "networkScopeFieldName": None,
                "recordTypeInfos": [
                    {
                        "active": True,
                        "available": True,
                        "defaultRecordTypeMapping": True,
                        "developerName": "Master",
                        "master": True,
                        "name": "Master",
                        "recordTypeId": "012000000000000AAA",
                        "urls": {
                            "layout": f"/services/data/v{version}/sobjects/{self.name}/describe/layouts/012000000000000AAA"
                        },
                    }
                ],
                "searchLayoutable": True,
                "supportedScopes": [
                    {"label": "All " + self.label_plural.lower(), "name": "everything"}
                ],
                "urls": self.urls(version),
            }
        )
        return dict(sorted(entry.items()))
