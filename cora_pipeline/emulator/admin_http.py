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
    - ``POST /__emulator/fields/{sobject}/{name}/hide|show``
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
        admin = org.admin
        method = request.method
        ok = json_response(200, {"ok": True})
        if parts == ["org"] and method == "GET":
            used, maximum = admin.api_usage()
            return json_response(
                200,
                {
                    "org_id": org.org_id,
                    "name": org.name,
                    "is_sandbox": org.is_sandbox,
                    "instance_url": org.instance_url,
                    "api_usage": {"used": used, "max": maximum},
                    "users": [{"id": u.user_id, "username": u.username} for u in org.users],
                    "now": admin.now().isoformat(),
                },
            )
        if parts and parts[0] == "records" and len(parts) >= 2:
            sobject = parts[1]
            if len(parts) == 2 and method == "POST":
                return json_response(201, {"id": admin.create(sobject, body)})
            if len(parts) == 2 and method == "GET":
                include = request.arg("include_deleted", "false") == "true"
                return json_response(200, admin.records(sobject, include_deleted=include))
            if parts[2:] == ["commit_late"] and method == "POST":
                return json_response(
                    201, {"id": admin.commit_late(sobject, body["fields"], body["modstamp"])}
                )
            if len(parts) == 3 and method == "PATCH":
                admin.update(sobject, parts[2], body, by=request.arg("by", "user") or "user")
                return ok
            if len(parts) == 3 and method == "GET":
                return json_response(200, admin.get(sobject, parts[2]))
            if len(parts) == 4 and method == "POST":
                action = {
                    "system_update": admin.system_update,
                    "delete": admin.delete,
                    "undelete": admin.undelete,
                    "hard_delete": admin.hard_delete,
                }.get(parts[3])
                if action is not None:
                    action(sobject, parts[2])
                    return ok
        if parts and parts[0] == "fields" and len(parts) >= 2:
            sobject = parts[1]
            if len(parts) == 2 and method == "POST":
                options = {k: v for k, v in body.items() if k not in ("name", "type")}
                admin.add_field(sobject, body["name"], body["type"], **options)
                return ok
            if len(parts) == 3 and method == "DELETE":
                admin.remove_field(sobject, parts[2])
                return ok
            if len(parts) == 4 and parts[3] in ("hide", "show") and method == "POST":
                (admin.hide_field if parts[3] == "hide" else admin.show_field)(sobject, parts[2])
                return ok
            if len(parts) == 4 and parts[3] == "formula" and method == "PUT":
                admin.set_formula(sobject, parts[2], body["formula"])
                return ok
        if parts == ["clock", "advance"] and method == "POST":
            admin.advance_clock(float(body["seconds"]))
            return ok
        if parts == ["api_usage"] and method == "PUT":
            admin.set_api_usage(int(body["used"]))
            return ok
        if len(parts) == 2 and parts[0] == "faults" and method == "POST":
            name = parts[1]
            if name in ("expire_locators", "revoke_refresh_tokens"):
                getattr(admin, name)()
                return ok
            if name in (
                "fail_next",
                "unavailable",
                "slow",
                "drop_connection",
                "query_timeout",
                "clear",
            ):
                getattr(admin.faults, name)(**body)
                return ok
        if parts == ["simulator", "run"] and method == "POST" and org.simulator is not None:
            events = org.simulator.run(int(body.get("events", 1)))
            return json_response(200, [e.__dict__ for e in events])
        if parts == ["save"] and method == "POST":
            self.emulator.save()
            return ok
        return json_response(
            404, {"error": "NotFound", "message": f"no admin route {method} {request.path}"}
        )
