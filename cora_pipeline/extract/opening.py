"""Open an incremental extract with one ``/composite`` call: describe, first page and deletes.

An incremental run needs describe, the first page of its query and the ``deleted`` resource: three
API calls. Salesforce counts a ``/composite`` request as one call however many subrequests it
has, so the run sends all three in one. The query is built from the previous extract's fields and
watermark before describe has returned. When describe shows that the fields or the watermark
changed, the pre-read page is discarded and the query runs again; that costs the call describe
would have cost anyway.

The query goes into the composite call only with Salesforce's default page size of 2,000 records:
a subrequest's first page would not follow the ``Sforce-Query-Options`` batch size the way a direct
query does.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from cora_pipeline.extract.files import FieldInfo
from cora_pipeline.extract.query import build_soql, query_uri_bytes
from cora_pipeline.salesforce.client import SalesforceClient

# Subrequest URLs travel in the JSON body, but a query that needs pieces is split anyway.
MAX_OPENING_URI_BYTES = 14_000


@dataclass
class Opening:
    """Responses of the opening ``/composite`` call; None where a subrequest was not sent or failed."""

    describe: dict[str, Any] | None = None
    describe_error: dict[str, Any] | None = None
    first_page: dict[str, Any] | None = None
    query_fields: list[FieldInfo] | None = None
    query_where: str | None = None
    deleted: dict[str, Any] | None = None
    deleted_error: dict[str, Any] | None = None
    deleted_window: tuple[datetime, datetime] | None = None


def deleted_window(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """Return the window the ``deleted`` resource accepts, or None when it is under one minute.

    The resource drops seconds and needs the end at least one minute after the start.
    """
    start = start.replace(second=0, microsecond=0)
    end = end.replace(second=0, microsecond=0)
    if end - start < timedelta(minutes=1):
        return None
    return start, end


def open_incremental(
    client: SalesforceClient,
    sobject: str,
    fields: list[FieldInfo],
    where: str | None,
    window: tuple[datetime, datetime] | None,
) -> Opening:
    """Send describe, the first query page (when ``where`` is set) and deletes in one call."""
    opening = Opening()
    subrequests: list[dict[str, Any]] = [
        {
            "method": "GET",
            "url": client.resource_path(f"sobjects/{sobject}/describe"),
            "referenceId": "describe",
        }
    ]
    names = [f.name for f in fields]
    version = client.org.api_version
    if (
        where is not None
        and query_uri_bytes(names, sobject, where, version) < MAX_OPENING_URI_BYTES
    ):
        query = urlencode({"q": build_soql(names, sobject, where)})
        subrequests.append(
            {
                "method": "GET",
                "url": client.resource_path(f"queryAll/?{query}"),
                "referenceId": "records",
            }
        )
        opening.query_fields = fields
        opening.query_where = where
    if window is not None:
        start, end = window
        params = urlencode({"start": start.isoformat(), "end": end.isoformat()})
        subrequests.append(
            {
                "method": "GET",
                "url": client.resource_path(f"sobjects/{sobject}/deleted/?{params}"),
                "referenceId": "deleted",
            }
        )
        opening.deleted_window = window

    for response in client.composite(subrequests, sobject=sobject):
        reference = response.get("referenceId")
        ok = 200 <= int(response.get("httpStatusCode") or 0) < 300
        body = response.get("body")
        error = None if ok else _error(body)
        if reference == "describe":
            opening.describe = body if ok else None
            opening.describe_error = error
        elif reference == "records":
            opening.first_page = body if ok else None
        elif reference == "deleted":
            opening.deleted = body if ok else None
            opening.deleted_error = error
    return opening


def _error(body: Any) -> dict[str, Any]:
    """Return the first ``{errorCode, message}`` of a failed subrequest's body."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return dict(body[0])
    return {"errorCode": None, "message": str(body)[:500]}
