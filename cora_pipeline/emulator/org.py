"""An emulated org: schema, records, users, the API counter, faults and the admin API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .catalog import build_catalog
from .clock import OrgClock, format_datetime, parse_datetime
from .faults import FaultPlan
from .formula import CompiledFormula, FormulaContext, compile_formula
from .ids import IdFactory, is_valid_id, to_id18
from .schema import NUMBER_TYPES, FieldDef, ObjectDef
from .usage import ApiUsage

if TYPE_CHECKING:
    from .simulator import ActivitySimulator

Record = dict[str, Any]


class AdminError(ValueError):
    """An admin API request that names an unknown object, field or record, or a bad value.

    ``error_code`` is the Salesforce errorCode the REST API reports for the same failure.
    """

    def __init__(
        self,
        message: str,
        error_code: str = "INVALID_FIELD_FOR_INSERT_UPDATE",
        fields: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.fields = fields


@dataclass
class OrgUser:
    user_id: str
    username: str
    password: str
    first_name: str
    last_name: str
    email: str
    # Users an admin pre-authorized for the connected app may use the JWT bearer flow
    # without approving the app in a browser first.
    preauthorized: bool = True

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class EmulatedOrg:
    """One Salesforce org (production or sandbox) with its data and its REST host."""

    def __init__(
        self,
        name: str,
        org_id: str,
        is_sandbox: bool,
        pod: str,
        daily_api_limit: int,
        clock: OrgClock,
    ) -> None:
        self.name = name
        self.org_id = org_id
        self.is_sandbox = is_sandbox
        self.clock = clock
        self.ids = IdFactory(pod)
        self.lock = threading.RLock()
        self.schema: dict[str, ObjectDef] = build_catalog()
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in self.schema}
        self.formulas: dict[tuple[str, str], CompiledFormula] = {}
        self.deleted_log: dict[str, dict[str, str]] = {name: {} for name in self.schema}
        self.earliest_date_available: dict[str, str] = {}
        self.auto_numbers: dict[str, int] = {}
        # Account id -> [object, record id, "IsDeleted" | "Account__c"] that its delete
        # cascaded to, so undelete can restore them.
        self.cascades: dict[str, list[list[str]]] = {}
        self.users: list[OrgUser] = []
        self.api = ApiUsage(daily_api_limit, clock.now)
        self.faults = FaultPlan()
        self.instance_url = ""
        # Set by the server: invalidates every open query locator of this org.
        self.expire_locators: Callable[[], None] = lambda: None
        # Set by the OAuth server: revokes every refresh token issued for this org.
        self.revoke_refresh_tokens: Callable[[], None] = lambda: None
        self.simulator: ActivitySimulator | None = None
        self.admin = OrgAdmin(self)
        for (object_name, _), definition in self._formula_fields():
            self._compile(object_name, definition)

    @property
    def my_domain_url(self) -> str:
        return self.instance_url

    @property
    def org_id15(self) -> str:
        return self.org_id[:15]

    @property
    def admin_user(self) -> OrgUser:
        return self.users[0]

    @property
    def integration_user(self) -> OrgUser:
        return self.users[1]

    @property
    def admin_username(self) -> str:
        return self.admin_user.username

    @property
    def admin_password(self) -> str:
        return self.admin_user.password

    @property
    def admin_user_id(self) -> str:
        return self.admin_user.user_id

    @property
    def integration_username(self) -> str:
        return self.integration_user.username

    @property
    def integration_password(self) -> str:
        return self.integration_user.password

    @property
    def integration_user_id(self) -> str:
        return self.integration_user.user_id

    def user_by_username(self, username: str) -> OrgUser | None:
        for user in self.users:
            if user.username.lower() == username.lower():
                return user
        return None

    def user_by_id(self, user_id: str) -> OrgUser | None:
        for user in self.users:
            if user.user_id == user_id:
                return user
        return None

    def formula_context(self) -> FormulaContext:
        now = self.clock.now()
        return FormulaContext(today=now.date(), now=now)

    def _formula_fields(self) -> list[tuple[tuple[str, str], FieldDef]]:
        return [
            ((object_name, f.name), f)
            for object_name, definition in self.schema.items()
            for f in definition.fields.values()
            if f.formula is not None
        ]

    def _compile(self, object_name: str, definition: FieldDef) -> CompiledFormula:
        types = {f.name: f.type for f in self.schema[object_name].fields.values()}
        assert definition.formula is not None
        compiled = compile_formula(definition.formula, definition.type, definition.scale, types)
        self.formulas[(object_name, definition.name)] = compiled
        return compiled

    def object_def(self, object_name: str) -> ObjectDef:
        definition = self.schema.get(object_name)
        if definition is None:
            for name, candidate in self.schema.items():
                if name.lower() == object_name.lower():
                    return candidate
            raise AdminError(f"sObject type {object_name!r} does not exist in org {self.name}")
        return definition

    def register_user(self, user: OrgUser) -> None:
        self.users.append(user)
        now = self.clock.now_wire()
        self.tables["User"][user.user_id] = {
            "Id": user.user_id,
            "IsDeleted": False,
            "CreatedDate": now,
            "CreatedById": self.users[0].user_id,
            "LastModifiedDate": now,
            "LastModifiedById": self.users[0].user_id,
            "SystemModstamp": now,
            "Username": user.username,
            "FirstName": user.first_name,
            "LastName": user.last_name,
            "Name": user.name,
            "Email": user.email,
            "Alias": (user.first_name[:1] + user.last_name[:4]).lower(),
            "IsActive": True,
            "UserType": "Standard",
        }

    def register_organization(self) -> None:
        now = self.clock.now_wire()
        self.tables["Organization"][self.org_id] = {
            "Id": self.org_id,
            "Name": self.name,
            "IsSandbox": self.is_sandbox,
            "OrganizationType": "Developer Edition"
            if not self.is_sandbox
            else "Enterprise Edition",
            "InstanceName": "CS42" if self.is_sandbox else "NA99",
            "CreatedDate": now,
            "SystemModstamp": now,
        }


def _coerce(definition: FieldDef, value: Any) -> Any:
    """Convert an admin-supplied value to the stored (REST JSON) form, or raise AdminError."""
    if value is None or value == "":
        # Salesforce stores an empty text value as null; a checkbox is never null.
        if definition.type == "boolean":
            return False
        if not definition.nillable and definition.type != "boolean":
            raise AdminError(f"field {definition.name} is required and cannot be null")
        return None
    kind = definition.type
    try:
        if kind == "boolean":
            return bool(value)
        if kind == "int":
            return int(value)
        if kind in NUMBER_TYPES:
            return float(value)
        if kind == "date":
            return (
                value.isoformat()
                if isinstance(value, date)
                else date.fromisoformat(str(value)[:10]).isoformat()
            )
        if kind == "datetime":
            moment = value if isinstance(value, datetime) else parse_datetime(str(value))
            return format_datetime(moment)
        if kind in ("reference", "id"):
            if not is_valid_id(str(value)):
                raise AdminError(f"{definition.name}: id value of incorrect type: {value}")
            return to_id18(str(value))
    except (TypeError, ValueError) as error:
        if isinstance(error, AdminError):
            raise
        raise AdminError(f"{definition.name}: invalid {kind} value {value!r}") from error
    text = str(value)
    if definition.length and len(text) > definition.length:
        raise AdminError(
            f"{definition.name}: data value too large: {len(text)} characters, "
            f"max length={definition.length}"
        )
    return text


def derive_fields(object_name: str, record: Record, now: str) -> None:
    """Fill the fields Salesforce computes on save (names, closed flags)."""
    if object_name == "Contact":
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    elif object_name == "Opportunity":
        stage = record.get("StageName") or ""
        record["IsClosed"] = stage.startswith("Closed")
        record["IsWon"] = stage == "Closed Won"
    elif object_name == "Case":
        closed = record.get("Status") == "Closed"
        if closed and not record.get("IsClosed"):
            record["ClosedDate"] = now
        if not closed:
            record["ClosedDate"] = None
        record["IsClosed"] = closed


class OrgAdmin:
    """The test-facing admin API of one org: precise changes to data, schema, clock and limits."""

    def __init__(self, org: EmulatedOrg) -> None:
        self._org = org

    @property
    def faults(self) -> FaultPlan:
        return self._org.faults

    def _writable(
        self, object_name: str, fields: dict[str, Any], creating: bool
    ) -> tuple[ObjectDef, Record]:
        definition = self._org.object_def(object_name)
        values: Record = {}
        for name, value in fields.items():
            field = definition.fields.get(name) or definition.visible_field(name)
            if field is None:
                raise AdminError(f"field {name!r} does not exist on {definition.name}")
            if field.calculated or field.is_compound or field.auto_number or field.type == "id":
                raise AdminError(f"field {field.name} on {definition.name} is not writable")
            values[field.name] = _coerce(field, value)
        return definition, values

    def _get(self, object_name: str, record_id: str) -> tuple[ObjectDef, Record]:
        definition = self._org.object_def(object_name)
        record = self._org.tables[definition.name].get(to_id18(record_id))
        if record is None:
            raise AdminError(f"{definition.name} record {record_id} does not exist")
        return definition, record

    def _next_auto_number(self, object_name: str) -> int:
        number = self._org.auto_numbers.get(object_name, 0) + 1
        self._org.auto_numbers[object_name] = number
        return number

    def create(
        self,
        sobject: str,
        fields: dict[str, Any],
        *,
        modstamp: str | None = None,
        by: str | None = None,
    ) -> str:
        """Insert a record as a user edit and return its 18-character id."""
        org = self._org
        with org.lock:
            definition, values = self._writable(sobject, fields, creating=True)
            now = modstamp or org.clock.now_wire()
            actor = by or org.admin_user_id
            record: Record = {
                f.name: None
                for f in definition.fields.values()
                if not f.calculated and not f.is_compound
            }
            for f in definition.fields.values():
                if f.type == "boolean" and not f.calculated:
                    record[f.name] = False
            record.update(values)
            record_id = org.ids.new_id(definition.key_prefix)
            record.update(
                {
                    "Id": record_id,
                    "IsDeleted": False,
                    "CreatedDate": now,
                    "CreatedById": actor,
                    "LastModifiedDate": now,
                    "LastModifiedById": actor,
                    "SystemModstamp": now,
                }
            )
            if "OwnerId" in definition.fields and record.get("OwnerId") is None:
                record["OwnerId"] = actor
            if definition.name == "Case":
                record["CaseNumber"] = f"{self._next_auto_number('Case'):08d}"
            if definition.name == "Invoice__c":
                record["Name"] = f"INV-{self._next_auto_number('Invoice__c'):06d}"
            for f in definition.fields.values():
                if (
                    not f.nillable
                    and f.type != "boolean"
                    and record.get(f.name) is None
                    and not f.calculated
                    and not f.is_compound
                    and not f.auto_number
                    and f.createable
                ):
                    raise AdminError(
                        f"Required fields are missing: [{f.name}]",
                        "REQUIRED_FIELD_MISSING",
                        (f.name,),
                    )
            derive_fields(definition.name, record, now)
            org.tables[definition.name][record_id] = record
            return record_id

    def update(
        self, sobject: str, record_id: str, fields: dict[str, Any], by: str = "user"
    ) -> None:
        """Change fields; ``by="user"`` moves LastModifiedDate and SystemModstamp, ``"system"`` only SystemModstamp."""
        if by not in ("user", "system"):
            raise AdminError(f"by must be 'user' or 'system', got {by!r}")
        org = self._org
        with org.lock:
            definition, values = self._writable(sobject, fields, creating=False)
            _, current = self._get(sobject, record_id)
            # Copy on write: open query locators keep the version they selected.
            record = dict(current)
            record.update(values)
            now = org.clock.now_wire()
            record["SystemModstamp"] = now
            if by == "user":
                record["LastModifiedDate"] = now
                record["LastModifiedById"] = org.admin_user_id
            derive_fields(definition.name, record, now)
            org.tables[definition.name][record["Id"]] = record

    def system_update(self, sobject: str, record_id: str) -> None:
        """Move SystemModstamp only, as a background process that changes no visible field does."""
        self.update(sobject, record_id, {}, by="system")

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft-delete a record into the Recycle Bin (queryAll still returns it).

        Deleting an Account also deletes its contacts, opportunities and cases and clears
        Invoice__c lookups to it, as Salesforce does; undelete() restores both.
        """
        org = self._org
        with org.lock:
            definition, current = self._get(sobject, record_id)
            if not definition.deletable:
                raise AdminError(f"{definition.name} records cannot be deleted")
            if current["IsDeleted"]:
                raise AdminError(f"{definition.name} record {record_id} is already deleted")
            now = org.clock.now_wire()
            self._set_deleted(definition.name, current, True, now)
            if definition.name == "Account":
                org.cascades[current["Id"]] = self._cascade_account_delete(current["Id"], now)

    def _set_deleted(self, object_name: str, current: Record, deleted: bool, now: str) -> None:
        org = self._org
        record = dict(
            current,
            IsDeleted=deleted,
            SystemModstamp=now,
            LastModifiedDate=now,
            LastModifiedById=org.admin_user_id,
        )
        org.tables[object_name][record["Id"]] = record
        if deleted:
            org.deleted_log[object_name][record["Id"]] = now
        else:
            org.deleted_log[object_name].pop(record["Id"], None)

    def _cascade_account_delete(self, account_id: str, now: str) -> list[list[str]]:
        """Delete an account's children and clear lookups to it; return what to restore."""
        org = self._org
        changes: list[list[str]] = []
        for child in ("Contact", "Opportunity", "Case"):
            for record in list(org.tables[child].values()):
                if record.get("AccountId") == account_id and not record["IsDeleted"]:
                    self._set_deleted(child, record, True, now)
                    changes.append([child, record["Id"], "IsDeleted"])
        table = org.tables["Invoice__c"]
        for record in list(table.values()):
            if record.get("Account__c") == account_id:
                # Clearing a lookup on parent delete is a system change: only SystemModstamp moves.
                table[record["Id"]] = dict(record, Account__c=None, SystemModstamp=now)
                changes.append(["Invoice__c", record["Id"], "Account__c"])
        return changes

    def undelete(self, sobject: str, record_id: str) -> None:
        """Restore a record from the Recycle Bin, with what deleting it cascaded to."""
        org = self._org
        with org.lock:
            definition, current = self._get(sobject, record_id)
            if not current["IsDeleted"]:
                raise AdminError(f"{definition.name} record {record_id} is not deleted")
            now = org.clock.now_wire()
            self._set_deleted(definition.name, current, False, now)
            for object_name, child_id, change in org.cascades.pop(current["Id"], []):
                child = org.tables[object_name].get(child_id)
                if child is None:
                    continue
                if change == "IsDeleted" and child["IsDeleted"]:
                    self._set_deleted(object_name, child, False, now)
                elif change == "Account__c" and child.get("Account__c") is None:
                    org.tables[object_name][child_id] = dict(
                        child, Account__c=current["Id"], SystemModstamp=now
                    )

    def hard_delete(self, sobject: str, record_id: str) -> None:
        """Remove a record for good, as emptying the Recycle Bin does; neither query returns it.

        Children that deleting an Account cascaded to are removed with it.
        """
        org = self._org
        with org.lock:
            definition, current = self._get(sobject, record_id)
            if definition.name == "Account" and not current["IsDeleted"]:
                now = org.clock.now_wire()
                org.cascades[current["Id"]] = self._cascade_account_delete(current["Id"], now)
            self._purge(definition.name, current["Id"])
            for object_name, child_id, change in org.cascades.pop(current["Id"], []):
                child = org.tables[object_name].get(child_id)
                if change == "IsDeleted" and child is not None and child["IsDeleted"]:
                    self._purge(object_name, child_id)

    def _purge(self, object_name: str, record_id: str) -> None:
        org = self._org
        del org.tables[object_name][record_id]
        now = org.clock.now_wire()
        org.deleted_log[object_name].setdefault(record_id, now)
        org.earliest_date_available[object_name] = now

    def commit_late(self, sobject: str, fields: dict[str, Any], modstamp: str | datetime) -> str:
        """Insert a record whose SystemModstamp lies in the past, like a long transaction committing late."""
        stamp = (
            format_datetime(modstamp)
            if isinstance(modstamp, datetime)
            else format_datetime(parse_datetime(modstamp))
        )
        return self.create(sobject, fields, modstamp=stamp)

    def records(self, sobject: str, include_deleted: bool = False) -> list[Record]:
        """Return copies of the stored records with formula fields evaluated now."""
        org = self._org
        with org.lock:
            definition = org.object_def(sobject)
            rows = list(org.tables[definition.name].values())
            formulas = [
                (name, f) for (obj, name), f in org.formulas.items() if obj == definition.name
            ]
            context = org.formula_context()
        result = []
        for row in rows:
            if row.get("IsDeleted") and not include_deleted:
                continue
            copy = dict(row)
            for name, formula in formulas:
                copy[name] = formula.evaluate(row, context)
            result.append(copy)
        return result

    def get(self, sobject: str, record_id: str) -> Record:
        _, record = self._get(sobject, record_id)
        copy = dict(record)
        context = self._org.formula_context()
        for (obj, name), formula in self._org.formulas.items():
            if obj == self._org.object_def(sobject).name:
                copy[name] = formula.evaluate(record, context)
        return copy

    def set_formula(self, sobject: str, field: str, formula: str) -> None:
        """Replace a formula field's expression; values change while SystemModstamp does not."""
        org = self._org
        with org.lock:
            definition = org.object_def(sobject)
            current = definition.fields.get(field)
            if current is None or not current.calculated:
                raise AdminError(f"{field!r} is not a formula field of {definition.name}")
            changed = current.with_changes(formula=formula)
            types = {f.name: f.type for f in definition.fields.values()}
            compiled = compile_formula(formula, changed.type, changed.scale, types)
            definition.fields[field] = changed
            definition.reindex()
            org.formulas[(definition.name, field)] = compiled

    def add_field(self, sobject: str, name: str, type: str, **describe_keys: Any) -> None:
        """Add a field; existing records get null (false for checkboxes).

        ``describe_keys`` sets FieldDef attributes (``length``, ``precision``, ``scale``,
        ``picklist``, ``formula``, ``label``...). Custom field names must end in ``__c``.
        """
        org = self._org
        with org.lock:
            definition = org.object_def(sobject)
            if name.lower() in (n.lower() for n in definition.fields):
                raise AdminError(f"field {name} already exists on {definition.name}")
            describe_keys.setdefault("custom", name.endswith("__c"))
            if type in ("string", "textarea", "email", "phone", "url", "picklist"):
                describe_keys.setdefault("length", 255)
            if "picklist" in describe_keys:
                describe_keys["picklist"] = tuple(describe_keys["picklist"])
            new_field = FieldDef(name, type, **describe_keys)
            definition.add(new_field)
            if new_field.calculated:
                try:
                    self._org._compile(definition.name, new_field)
                except ValueError:
                    definition.remove(name)
                    raise
                return
            default = False if type == "boolean" else None
            table = org.tables[definition.name]
            for record_id, record in table.items():
                table[record_id] = dict(record, **{name: default})

    def remove_field(self, sobject: str, name: str) -> None:
        """Delete a field and its data."""
        org = self._org
        with org.lock:
            definition = org.object_def(sobject)
            if name not in definition.fields:
                raise AdminError(f"field {name!r} does not exist on {definition.name}")
            if not definition.fields[name].custom:
                raise AdminError(f"standard field {name} cannot be removed")
            definition.remove(name)
            org.formulas.pop((definition.name, name), None)
            table = org.tables[definition.name]
            for record_id, record in table.items():
                if name in record:
                    table[record_id] = {k: v for k, v in record.items() if k != name}

    def hide_field(self, sobject: str, name: str, user: str | None = None) -> None:
        """Remove a field from field-level security: describe and SOQL lose it.

        ``user`` (a username or user id) limits the change to that user, for example the
        integration user; None hides the field from every API user.
        """
        with self._org.lock:
            definition = self._org.object_def(sobject)
            if name not in definition.fields:
                raise AdminError(f"field {name!r} does not exist on {definition.name}")
            if user is None:
                definition.hidden_fields.add(name)
            else:
                user_id = self._user_id(user)
                definition.hidden_for_users.setdefault(user_id, set()).add(name)

    def show_field(self, sobject: str, name: str, user: str | None = None) -> None:
        """Undo hide_field() for every user, or only for ``user``."""
        with self._org.lock:
            definition = self._org.object_def(sobject)
            if user is None:
                definition.hidden_fields.discard(name)
                for hidden in definition.hidden_for_users.values():
                    hidden.discard(name)
            else:
                definition.hidden_for_users.get(self._user_id(user), set()).discard(name)

    def _user_id(self, user: str) -> str:
        found = self._org.user_by_username(user) or self._org.user_by_id(user)
        if found is None:
            known = ", ".join(u.username for u in self._org.users)
            raise AdminError(f"user {user!r} does not exist in org {self._org.name}; use {known}")
        return found.user_id

    def set_object_flags(self, sobject: str, **flags: bool) -> None:
        """Change describe flags of an object: ``queryable``, ``replicateable``, ``createable``,
        ``deletable`` or ``undeletable`` (a non-queryable object rejects SOQL with INVALID_TYPE).
        """
        allowed = {"queryable", "replicateable", "createable", "deletable", "undeletable"}
        unknown = set(flags) - allowed
        if unknown:
            raise AdminError(f"unknown object flags {sorted(unknown)}; use {sorted(allowed)}")
        with self._org.lock:
            definition = self._org.object_def(sobject)
            for name, value in flags.items():
                setattr(definition, name, bool(value))

    def advance_clock(self, seconds: float) -> None:
        """Move the org's clock forward (TODAY() formulas, token and locator ages move with it)."""
        self._org.clock.advance(seconds)

    def now(self) -> datetime:
        return self._org.clock.now()

    def api_usage(self) -> tuple[int, int]:
        return self._org.api.used(), self._org.api.maximum

    def set_api_usage(self, used: int) -> None:
        self._org.api.set_used(used)

    def set_api_limit(self, maximum: int) -> None:
        self._org.api.maximum = maximum

    def expire_locators(self) -> None:
        """Invalidate every open query locator (the next page gives INVALID_QUERY_LOCATOR)."""
        self._org.expire_locators()

    def revoke_refresh_tokens(self) -> None:
        """Revoke every refresh token of this org, as an admin revoking app access does."""
        self._org.revoke_refresh_tokens()
