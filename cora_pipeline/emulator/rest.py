"""The REST data API of one emulated org host: discovery, describe, query, limits, replication
and composite resources, with Salesforce's status codes, error bodies and limit headers.

NOTE: Bulk API 2.0 (``jobs/query``), search, tooling and sObject collections are not emulated;
they return 404 NOT_FOUND.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .clock import format_datetime, parse_datetime
from .http import Request, Response, json_response, rest_error
from .ids import base62, is_valid_id, to_id18
from .org import AdminError
from .soql import CompiledQuery, SoqlError

if TYPE_CHECKING:
    from .oauth import OAuthServer
    from .org import EmulatedOrg, Record
    from .schema import ObjectDef

OLDEST_VERSION = 31
LATEST_VERSION = 66
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
# Query cursors stay open for 2 days since API v56.0.
LOCATOR_LIFETIME = timedelta(days=2)
DELETED_WINDOW = timedelta(days=15)
UPDATED_WINDOW = timedelta(days=30)
MAX_REPLICATION_IDS = 600_000
MAX_COMPOSITE_SUBREQUESTS = 25
# Characters of long text area values after which a query page ends early.
LONG_TEXT_PAGE_BUDGET = 100_000
# Open locators kept per org; the oldest are dropped first.
# NOTE: Salesforce has no cap on open cursors since API v56.0; this one bounds memory.
MAX_OPEN_LOCATORS = 1000
_NOT_FOUND = "The requested resource does not exist"
_SEASONS = ("Winter", "Spring", "Summer")


def release_label(version: int) -> str:
    """Name the release of an API version: 53.0 is Winter '22, then Spring, Summer, Winter."""
    offset = version - 53
    return f"{_SEASONS[offset % 3]} '{22 + offset // 3:02d}"


def versions() -> list[dict[str, str]]:
    return [
        {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(OLDEST_VERSION, LATEST_VERSION + 1)
    ]


_VERSION_PATH = re.compile(r"^/services/data/v(\d+)\.(\d)(/.*)?$")


@dataclass
class Cursor:
    """An open query locator: the rows selected when the query ran and how to project them."""

    query: CompiledQuery
    rows: list[Record]
    batch_size: int
    created: datetime


class LocatorStore:
    """Open query locators of one org, which expire after two days of org time."""

    def __init__(self, org: EmulatedOrg) -> None:
        self._org = org
        self._cursors: dict[str, Cursor] = {}
        self._lock = threading.Lock()
        self._sequence = 0

    def open(self, cursor: Cursor) -> str:
        with self._lock:
            self._sequence += 1
            # Real locators are 18-character ids with the key prefix 0r8.
            locator = to_id18(
                "0r8"
                + self._org.ids.new_id("0r8")[3:5]
                + base62(self._sequence * 7919 + secrets.randbelow(7919), 10)
            )
            self._cursors[locator] = cursor
            self._expire_old()
        return locator

    def get(self, locator: str) -> Cursor | None:
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or self._org.clock.now() - cursor.created > LOCATOR_LIFETIME:
            return None
        return cursor

    def expire_all(self) -> None:
        with self._lock:
            self._cursors.clear()

    def _expire_old(self) -> None:
        now = self._org.clock.now()
        for locator in [k for k, c in self._cursors.items() if now - c.created > LOCATOR_LIFETIME]:
            del self._cursors[locator]
        while len(self._cursors) > MAX_OPEN_LOCATORS:
            del self._cursors[next(iter(self._cursors))]


class RestApi:
    """Serves ``/services/data`` for one org."""

    def __init__(self, org: EmulatedOrg, oauth: OAuthServer) -> None:
        self.org = org
        self.oauth = oauth
        self.locators = LocatorStore(org)
        org.expire_locators = self.locators.expire_all

    # ---- entry point

    def handle(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/") == "/services/data":
            # The versions list needs no session and is not counted against the limit.
            return json_response(200, versions())

        match = _VERSION_PATH.match(path)
        if (
            match is None
            or not OLDEST_VERSION <= int(match.group(1)) <= LATEST_VERSION
            or match.group(2) != "0"
        ):
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)

        grant = self.oauth.authenticate(self.org, request.header("authorization"))
        if grant is None:
            return rest_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if not {"api", "full"} & set(grant.scopes):
            return rest_error(
                401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API"
            )
        request.user_id = grant.user_id

        fault = self.org.faults.take(path)
        delay = 0.0
        if fault is not None:
            if fault.kind == "status":
                limit_header = {"Sforce-Limit-Info": self.org.api.header()}
                if fault.json_body:
                    return rest_error(fault.status, fault.error_code, fault.message, limit_header)
                return Response(fault.status, b"", limit_header)
            if fault.kind == "slow":
                delay = fault.delay

        version = f"{match.group(1)}.0"
        rest = match.group(3) or "/"
        calls = 1
        if rest.rstrip("/") == "/composite/batch" and request.method == "POST":
            calls = self._batch_size(request)
        allowed, _ = self.org.api.try_count(calls)
        if not allowed:
            return rest_error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                {"Sforce-Limit-Info": self.org.api.header()},
            )

        if fault is not None and fault.kind == "query_timeout":
            response = rest_error(
                400, "QUERY_TIMEOUT", "Your query request was running for too long."
            )
        else:
            response = self.route(request, version, rest)

        response.headers["Sforce-Limit-Info"] = self.org.api.header()
        response.delay = delay
        if fault is not None and fault.kind == "drop":
            response.drop_mid_body = True
        return response

    def _batch_size(self, request: Request) -> int:
        try:
            body = request.json()
            return max(1, len(body.get("batchRequests") or []))
        except (ValueError, AttributeError):
            return 1

    # ---- routing

    def route(self, request: Request, version: str, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = request.method
        try:
            if not parts:
                return self.resources(version)
            head = parts[0]
            if head in ("query", "queryAll") and method == "GET":
                if len(parts) == 1:
                    return self.query(request, version, include_deleted=head == "queryAll")
                if len(parts) == 2:
                    return self.query_more(request, parts[1])
            if head == "sobjects":
                return self.sobjects(request, version, parts[1:])
            if head == "limits" and method == "GET":
                if len(parts) == 1:
                    return self.limits()
                if parts[1:] == ["recordCount"]:
                    return self.record_count(request)
            if head == "composite" and method == "POST":
                if len(parts) == 1:
                    return self.composite(request, version)
                if parts[1:] == ["batch"]:
                    return self.composite_batch(request, version)
            if head == "composite" and method == "GET" and len(parts) == 1:
                base = f"/services/data/v{version}/composite"
                return json_response(
                    200,
                    {
                        "tree": f"{base}/tree",
                        "batch": f"{base}/batch",
                        "sobjects": f"{base}/sobjects",
                        "graph": f"{base}/graph",
                    },
                )
        except SoqlError as error:
            return rest_error(400, error.error_code, error.message)
        if parts and parts[0] in ("query", "queryAll", "limits") and method != "GET":
            return rest_error(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD",
            )
        return rest_error(404, "NOT_FOUND", _NOT_FOUND)

    def resources(self, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = (
            "tooling",
            "metadata",
            "eclair",
            "folders",
            "prechatForms",
            "contact-tracing",
            "chatter",
            "tabs",
            "appMenu",
            "quickActions",
            "queryAll",
            "commerce",
            "wave",
            "iot",
            "analytics",
            "search",
            "smartdatadiscovery",
            "identity",
            "composite",
            "parameterizedSearch",
            "fingerprint",
            "theme",
            "nouns",
            "domino",
            "event",
            "serviceTemplates",
            "recent",
            "connect",
            "licensing",
            "limits",
            "process",
            "dedupe",
            "async-queries",
            "query",
            "match",
            "emailConnect",
            "compactLayouts",
            "knowledgeManagement",
            "sobjects",
            "actions",
            "support",
            "jobs",
        )
        body = {name: f"{base}/{name}" for name in names}
        body["identity"] = (
            f"{self.oauth.emulator.login_url_for(self.org)}/id/"
            f"{self.org.org_id}/{self.org.admin_user_id}"
        )
        return json_response(200, body)

    # ---- query

    def query(self, request: Request, version: str, include_deleted: bool) -> Response:
        text = request.arg("q")
        if text is None:
            return rest_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = CompiledQuery(self.org, text, include_deleted, user_id=request.user_id)
        rows = compiled.select()
        if compiled.count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        if compiled.aggregation is not None:
            # NOTE: aggregate results are returned in one page; Salesforce does not page them
            # with query locators either, but it rejects more than 2,000 groups.
            return json_response(200, {"totalSize": len(rows), "done": True, "records": rows})
        batch_size = _batch_size_option(request.header("sforce-query-options"))
        cursor = Cursor(compiled, rows, batch_size, self.org.clock.now())
        return self._page(cursor, None, 0, version)

    def query_more(self, request: Request, locator_and_offset: str) -> Response:
        locator, _, offset_text = locator_and_offset.rpartition("-")
        cursor = self.locators.get(locator) if locator else None
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.rows):
            return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        version = _version_of(request.path)
        return self._page(cursor, locator, int(offset_text), version)

    def _page(self, cursor: Cursor, locator: str | None, offset: int, version: str) -> Response:
        end = min(offset + cursor.batch_size, len(cursor.rows))
        if cursor.query.children:
            # Child subquery rows count toward the batch size.
            weight = 0
            for index in range(offset, end):
                weight += cursor.query.row_weight(cursor.rows[index])
                if weight > cursor.batch_size and index > offset:
                    end = index
                    break

        long_text = cursor.query.long_text_fields
        if long_text:
            # Salesforce may return fewer rows than the batch size when rows carry large
            # text, so clients must follow nextRecordsUrl rather than count rows.
            # NOTE: the real size threshold is undocumented; LONG_TEXT_PAGE_BUDGET is a guess.
            budget = LONG_TEXT_PAGE_BUDGET
            for index in range(offset, end):
                row = cursor.rows[index]
                budget -= sum(len(row.get(name) or "") for name in long_text)
                if budget < 0:
                    end = index + 1
                    break
        records = cursor.query.project(cursor.rows[offset:end], version)
        payload: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if end < len(cursor.rows):
            if locator is None:
                locator = self.locators.open(cursor)
            # queryAll continues under /query/ too, as Salesforce's nextRecordsUrl does.
            payload["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        payload["records"] = records
        return json_response(200, payload)

    # ---- sobjects

    def sobjects(self, request: Request, version: str, parts: list[str]) -> Response:
        method = request.method
        if not parts:
            if method != "GET":
                return rest_error(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are GET",
                )
            return self.describe_global(version)
        definition = self._object(parts[0])
        if definition is None:
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)
        name = definition.name
        if len(parts) == 1:
            if method == "POST":
                return self._create(name, request)
            return json_response(
                200, {"objectDescribe": definition.global_entry(version), "recentItems": []}
            )
        action = parts[1]
        if action == "describe" and len(parts) == 2:
            return json_response(200, definition.describe(version, request.user_id))
        if action in ("deleted", "updated") and len(parts) == 2:
            return self.replication(request, name, action)
        if len(parts) == 2:
            if not is_valid_id(action):
                return rest_error(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {action}",
                )
            record_id = to_id18(action)
            if method == "GET":
                return self._retrieve(name, record_id, request, version)
            if method == "PATCH":
                return self._update(name, record_id, request)
            if method == "DELETE":
                return self._delete(name, record_id)
        return rest_error(404, "NOT_FOUND", _NOT_FOUND)

    def _object(self, name: str) -> ObjectDef | None:
        for object_name, definition in self.org.schema.items():
            if object_name.lower() == name.lower():
                return definition
        return None

    def describe_global(self, version: str) -> Response:
        return json_response(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [d.global_entry(version) for _, d in sorted(self.org.schema.items())],
            },
        )

    def _retrieve(self, name: str, record_id: str, request: Request, version: str) -> Response:
        record = self.org.tables[name].get(record_id)
        if record is None:
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)
        if record.get("IsDeleted"):
            return rest_error(404, "ENTITY_IS_DELETED", "entity is deleted")
        definition = self.org.schema[name]
        fields_arg = request.arg("fields")
        names = (
            [f.strip() for f in fields_arg.split(",")]
            if fields_arg
            else [f.name for f in definition.visible_fields(request.user_id)]
        )
        # The field names are checked against the describe by the SOQL compiler.
        soql = f"SELECT {', '.join(names)} FROM {name}"  # noqa: S608
        query = CompiledQuery(self.org, soql, True, user_id=request.user_id)
        return json_response(200, query.project([record], version)[0])

    def _create(self, name: str, request: Request) -> Response:
        try:
            fields = request.json()
            self._check_writable(name, fields, "createable", request.user_id)
            record_id = self.org.admin.create(name, fields, by=request.user_id)
        except AdminError as error:
            return _dml_error(error)
        except ValueError as error:
            return rest_error(400, "JSON_PARSER_ERROR", str(error))
        return json_response(
            201,
            {"id": record_id, "success": True, "errors": []},
            {
                "Location": f"/services/data/v{_version_of(request.path)}/"
                f"sobjects/{name}/{record_id}"
            },
        )

    def _update(self, name: str, record_id: str, request: Request) -> Response:
        if record_id not in self.org.tables[name]:
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)
        try:
            fields = request.json()
            self._check_writable(name, fields, "updateable", request.user_id)
            self.org.admin.update(name, record_id, fields)
        except AdminError as error:
            return _dml_error(error)
        except ValueError as error:
            return rest_error(400, "JSON_PARSER_ERROR", str(error))
        return Response(204)

    def _check_writable(
        self, name: str, fields: dict[str, Any], flag: str, user_id: str | None
    ) -> None:
        """Reject fields the API user may not set, as Salesforce's DML does."""
        definition = self.org.schema[name]
        blocked = []
        for field_name in fields:
            field = definition.visible_field(field_name, user_id)
            if field is None:
                raise AdminError(
                    f"No such column '{field_name}' on sobject of type {name}", "INVALID_FIELD"
                )
            if not field.describe()[flag]:
                blocked.append(field.name)
        if blocked:
            raise AdminError(
                f"Unable to create/update fields: {', '.join(blocked)}. Please check the "
                f"security settings of this field and verify that it is read/write for your "
                f"profile or permission set.",
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                tuple(blocked),
            )

    def _delete(self, name: str, record_id: str) -> Response:
        record = self.org.tables[name].get(record_id)
        if record is None:
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)
        if record.get("IsDeleted"):
            return rest_error(404, "ENTITY_IS_DELETED", "entity is deleted")
        try:
            self.org.admin.delete(name, record_id)
        except AdminError as error:
            return rest_error(400, "INVALID_OPERATION", str(error))
        return Response(204)

    # ---- replication

    def replication(self, request: Request, name: str, kind: str) -> Response:
        definition = self.org.schema[name]
        if not definition.replicateable:
            # NOTE: real responses show no errorCode for this message; INVALID_TYPE is a guess.
            return rest_error(400, "INVALID_TYPE", f"sObject type {name} is not replicable")

        start_text, end_text = request.arg("start"), request.arg("end")
        if not start_text or not end_text:
            missing = "start" if not start_text else "end"
            return rest_error(400, "MISSING_ARGUMENT", f"{missing} is required")
        try:
            start = parse_datetime(start_text).replace(second=0, microsecond=0)
            end = parse_datetime(end_text).replace(second=0, microsecond=0)
        except ValueError:
            return rest_error(
                400, "INVALID_REPLICATION_DATE", f"invalid date: {start_text} / {end_text}"
            )

        now = self.org.clock.now().replace(second=0, microsecond=0)
        if end - start < timedelta(minutes=1):
            return rest_error(
                400,
                "INVALID_REPLICATION_DATE",
                "startDate must be at least one minute greater than endDate",
            )

        window = DELETED_WINDOW if kind == "deleted" else UPDATED_WINDOW
        if start < now - window:
            # NOTE: the message for a start outside the 15- or 30-day window is a best guess.
            return rest_error(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than {window.days} days ago",
            )

        end = min(end, now)
        start_wire, end_wire = format_datetime(start), format_datetime(end)
        with self.org.lock:
            if kind == "deleted":
                entries = [
                    {"id": record_id, "deletedDate": stamp}
                    for record_id, stamp in self.org.deleted_log[name].items()
                    if start_wire <= stamp < end_wire
                ]
            else:
                ids = [
                    r["Id"]
                    for r in self.org.tables[name].values()
                    if not r.get("IsDeleted") and start_wire <= r["SystemModstamp"] < end_wire
                ]

        count = len(entries) if kind == "deleted" else len(ids)
        if count > MAX_REPLICATION_IDS:
            return rest_error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"more than {MAX_REPLICATION_IDS} ids in the result; use a shorter window",
            )
        if kind == "deleted":
            earliest = self.org.earliest_date_available.get(name) or format_datetime(
                now - DELETED_WINDOW
            )
            return json_response(
                200,
                {
                    "deletedRecords": entries,
                    "earliestDateAvailable": earliest,
                    "latestDateCovered": end_wire,
                },
            )
        return json_response(200, {"ids": ids, "latestDateCovered": end_wire})

    # ---- limits

    def limits(self) -> Response:
        used, maximum = self.org.api.used(), self.org.api.maximum
        body = {
            "DailyApiRequests": {"Max": maximum, "Remaining": max(0, maximum - used)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyDurableStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
            "DailyStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "HourlySyncReportRuns": {"Max": 500, "Remaining": 500},
            "MassEmail": {"Max": 10, "Remaining": 10},
            "SingleEmail": {"Max": 15, "Remaining": 15},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        }
        return json_response(200, body)

    def record_count(self, request: Request) -> Response:
        requested = request.arg("sObjects")
        names = [n.strip() for n in requested.split(",")] if requested else list(self.org.schema)
        result = []
        for name in names:
            definition = self._object(name)
            if definition is None:
                continue
            with self.org.lock:
                count = sum(
                    1 for r in self.org.tables[definition.name].values() if not r.get("IsDeleted")
                )
            result.append({"count": count, "name": definition.name})
        return json_response(200, {"sObjects": result})

    # ---- composite

    def _subrequest(
        self, parent: Request, method: str, url: str, body: Any, version: str
    ) -> Response:
        if not url.startswith("/"):
            url = "/services/data/" + url
        split = urlsplit(url)
        match = _VERSION_PATH.match(split.path)
        if match is None:
            return rest_error(404, "NOT_FOUND", _NOT_FOUND)
        request = Request(
            method=method.upper(),
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={},
            body=json.dumps(body).encode() if body is not None else b"",
            raw_target=url,
            user_id=parent.user_id,
        )
        return self.route(request, f"{match.group(1)}.0", match.group(3) or "/")

    def composite(self, request: Request, version: str) -> Response:
        try:
            payload = request.json()
            subrequests = payload["compositeRequest"]
        except (ValueError, KeyError, TypeError):
            return rest_error(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            return rest_error(
                400,
                "LIMIT_EXCEEDED",
                f"Composite requests cannot have more than {MAX_COMPOSITE_SUBREQUESTS} subrequests",
            )
        all_or_none = bool(payload.get("allOrNone"))
        results: list[dict[str, Any]] = []
        references: dict[str, Any] = {}
        failed = False
        for sub in subrequests:
            reference_id = sub.get("referenceId")
            if failed and all_or_none:
                results.append(
                    {
                        "body": [
                            {
                                "errorCode": "PROCESSING_HALTED",
                                "message": "The transaction was rolled back since another "
                                "operation in the same transaction failed.",
                            }
                        ],
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": reference_id,
                    }
                )
                continue
            url = _substitute(sub.get("url", ""), references)
            response = self._subrequest(
                request, sub.get("method", "GET"), url, sub.get("body"), version
            )
            body = json.loads(response.body) if response.body else None
            if reference_id:
                references[reference_id] = body
            headers = {k: v for k, v in response.headers.items() if k == "Location"}
            results.append(
                {
                    "body": body,
                    "httpHeaders": headers,
                    "httpStatusCode": response.status,
                    "referenceId": reference_id,
                }
            )
            failed = failed or response.status >= 400
        return json_response(200, {"compositeResponse": results})

    def composite_batch(self, request: Request, version: str) -> Response:
        try:
            payload = request.json()
            subrequests = payload["batchRequests"]
        except (ValueError, KeyError, TypeError):
            return rest_error(400, "JSON_PARSER_ERROR", "batchRequests is required")
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            return rest_error(
                400,
                "LIMIT_EXCEEDED",
                f"Batch requests cannot have more than {MAX_COMPOSITE_SUBREQUESTS} subrequests",
            )
        halt = bool(payload.get("haltOnError"))
        results: list[dict[str, Any]] = []
        has_errors = False
        for sub in subrequests:
            if halt and has_errors:
                results.append(
                    {
                        "statusCode": 412,
                        "result": [
                            {
                                "errorCode": "BATCH_PROCESSING_HALTED",
                                "message": "Batch processing halted per request",
                            }
                        ],
                    }
                )
                continue
            response = self._subrequest(
                request, sub.get("method", "GET"), sub.get("url", ""), sub.get("richInput"), version
            )
            body = json.loads(response.body) if response.body else None
            results.append({"statusCode": response.status, "result": body})
            has_errors = has_errors or response.status >= 400
        return json_response(200, {"hasErrors": has_errors, "results": results})


def _dml_error(error: AdminError) -> Response:
    return json_response(
        400,
        [{"message": str(error), "errorCode": error.error_code, "fields": list(error.fields)}],
    )


def _substitute(url: str, references: dict[str, Any]) -> str:
    """Replace ``@{ref.field}`` in a composite subrequest URL with earlier results."""

    def value(match: re.Match[str]) -> str:
        reference, _, path = match.group(1).partition(".")
        current: Any = references.get(reference)
        for part in path.split(".") if path else []:
            if isinstance(current, list):
                current = current[int(part)] if part.isdigit() else None
            elif isinstance(current, dict):
                current = current.get(part)
        return "" if current is None else str(current)

    return re.sub(r"@\{([^}]+)\}", value, url)


def _version_of(path: str) -> str:
    match = _VERSION_PATH.match(path)
    return f"{match.group(1)}.0" if match else f"{LATEST_VERSION}.0"


def _batch_size_option(header: str | None) -> int:
    """Read ``batchSize`` from Sforce-Query-Options, clamped to Salesforce's 200-2000 range."""
    if not header:
        return DEFAULT_BATCH_SIZE
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "batchSize" and value.strip().isdigit():
            # NOTE: Salesforce's handling of values outside 200-2000 is undocumented; clamping
            # is the likely behaviour.
            return min(DEFAULT_BATCH_SIZE, max(MIN_BATCH_SIZE, int(value)))
    return DEFAULT_BATCH_SIZE
