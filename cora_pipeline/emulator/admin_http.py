"""HTTP admin endpoints under ``/__emulator/`` on each org host, for tests outside the process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .http import Request, Response, json_response
from .org import AdminError

if TYPE_CHECKING:
    from .emulator import Emulator
    from .org import EmulatedOrg


class AdminHttp:
    """Maps ``/__emulator/...`` requests onto the org's OrgAdmin.

    Routes (JSON bodies):
    - ``GET  /__emulator/org``: org id, name, users (no passwords), API usage
    - ``POST /__emulator/records/{sobject}``: create, body = fields, returns ``{"id"}``
    - ``PATCH /__emulator/records/{sobject}/{id}?by=user|system``: update, body = fields
    - ``POST /__emulator/records/{sobject}/{id}/system_update|delete|undelete|hard_delete``
    - ``GET  /__emulator/records/{sobject}?include_deleted=true``
    - ``POST /__emulator/records/{sobject}/commit_late``: body ``{"fields", "modstamp"}``
    - ``POST /__emulator/fields/{sobject}``: add, body ``{"name", "type", ...describe keys}``
    - ``DELETE /__emulator/fields/{sobject}/{name}``: remove
    - ``POST /__emulator/fields/{sobject}/{name}/hide|show``: optional body ``{"user"}``
    - ``PUT  /__emulator/fields/{sobject}/{name}/formula``: body ``{"formula"}``
    - ``POST /__emulator/clock/advance``: body ``{"seconds"}``
    - ``PUT  /__emulator/api_usage``: body ``{"used"}``
    - ``POST /__emulator/faults/{fail_next|unavailable|slow|drop_connection|query_timeout|
      expire_locators|revoke_refresh_tokens|clear}``: body = keyword arguments
    - ``POST /__emulator/simulator/run``: body ``{"events"}``
    - ``POST /__emulator/save``: write the state file
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle(self, org: EmulatedOrg, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p][1:]
        try:
            body: Any = request.json() if request.body else {}
            return self._route(org, request, parts, body)
        except (AdminError, ValueError, KeyError, TypeError) as error:
            return json_response(400, {"error": type(error).__name__, "message": str(error)})

    def _route(self, org: EmulatedOrg, request: Request, parts: list[str], body: Any) -> Response:
        method = request.method
        area = parts[0] if parts else ""
        response: Response | None = None
        if area == "org" and method == "GET":
            response = self._org_summary(org)
        elif area == "records" and len(parts) >= 2:
            response = self._records(org, request, parts[1], parts[2:], body)
        elif area == "fields" and len(parts) >= 2:
            response = self._fields(org, method, parts[1], parts[2:], body)
        elif area == "faults" and len(parts) == 2 and method == "POST":
            response = self._faults(org, parts[1], body)
        elif parts == ["clock", "advance"] and method == "POST":
            org.admin.advance_clock(float(body["seconds"]))
            response = _ok()
        elif parts == ["api_usage"] and method == "PUT":
            org.admin.set_api_usage(int(body["used"]))
            response = _ok()
        elif parts == ["simulator", "run"] and method == "POST" and org.simulator is not None:
            events = org.simulator.run(int(body.get("events", 1)))
            response = json_response(200, [e.__dict__ for e in events])
        elif parts == ["save"] and method == "POST":
            self.emulator.save()
            response = _ok()

        if response is None:
            return json_response(
                404, {"error": "NotFound", "message": f"no admin route {method} {request.path}"}
            )
        return response

    @staticmethod
    def _org_summary(org: EmulatedOrg) -> Response:
        used, maximum = org.admin.api_usage()
        return json_response(
            200,
            {
                "org_id": org.org_id,
                "name": org.name,
                "is_sandbox": org.is_sandbox,
                "instance_url": org.instance_url,
                "api_usage": {"used": used, "max": maximum},
                "users": [{"id": u.user_id, "username": u.username} for u in org.users],
                "now": org.admin.now().isoformat(),
            },
        )

    @staticmethod
    def _records(
        org: EmulatedOrg, request: Request, sobject: str, rest: list[str], body: Any
    ) -> Response | None:
        admin = org.admin
        method = request.method
        if not rest and method == "POST":
            return json_response(201, {"id": admin.create(sobject, body)})
        if not rest and method == "GET":
            include = request.arg("include_deleted", "false") == "true"
            return json_response(200, admin.records(sobject, include_deleted=include))
        if rest == ["commit_late"] and method == "POST":
            record_id = admin.commit_late(sobject, body["fields"], body["modstamp"])
            return json_response(201, {"id": record_id})
        if len(rest) == 1 and method == "PATCH":
            admin.update(sobject, rest[0], body, by=request.arg("by", "user") or "user")
            return _ok()
        if len(rest) == 1 and method == "GET":
            return json_response(200, admin.get(sobject, rest[0]))
        actions = {
            "system_update": admin.system_update,
            "delete": admin.delete,
            "undelete": admin.undelete,
            "hard_delete": admin.hard_delete,
        }
        if len(rest) == 2 and method == "POST" and rest[1] in actions:
            actions[rest[1]](sobject, rest[0])
            return _ok()
        return None

    @staticmethod
    def _fields(
        org: EmulatedOrg, method: str, sobject: str, rest: list[str], body: Any
    ) -> Response | None:
        admin = org.admin
        if not rest and method == "POST":
            options = {k: v for k, v in body.items() if k not in ("name", "type")}
            admin.add_field(sobject, body["name"], body["type"], **options)
            return _ok()
        if len(rest) == 1 and method == "DELETE":
            admin.remove_field(sobject, rest[0])
            return _ok()
        if len(rest) == 2 and rest[1] == "hide" and method == "POST":
            admin.hide_field(sobject, rest[0], user=body.get("user"))
            return _ok()
        if len(rest) == 2 and rest[1] == "show" and method == "POST":
            admin.show_field(sobject, rest[0], user=body.get("user"))
            return _ok()
        if len(rest) == 2 and rest[1] == "formula" and method == "PUT":
            admin.set_formula(sobject, rest[0], body["formula"])
            return _ok()
        return None

    @staticmethod
    def _faults(org: EmulatedOrg, name: str, body: Any) -> Response | None:
        if name in ("expire_locators", "revoke_refresh_tokens"):
            getattr(org.admin, name)()
            return _ok()
        if name in (
            "fail_next",
            "unavailable",
            "slow",
            "drop_connection",
            "query_timeout",
            "clear",
        ):
            getattr(org.faults, name)(**body)
            return _ok()
        return None


def _ok() -> Response:
    return json_response(200, {"ok": True})
