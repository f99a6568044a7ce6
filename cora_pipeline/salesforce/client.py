"""The Salesforce REST client every extract goes through.

It wraps simple-salesforce in "direct" mode (an access token and instance URL from the vault), so
simple-salesforce never logs in by itself. This module adds what direct mode leaves out:

- Salesforce sends no token expiry, so a 401 ``INVALID_SESSION_ID`` is the only sign a token expired:
  the client asks the token manager for a fresh token once and repeats the call.
- Transient failures (5xx, dropped connections, ``QUERY_TIMEOUT``) are retried with exponential backoff
  and jitter; ``REQUEST_LIMIT_EXCEEDED`` is never retried.
- Every response's ``Sforce-Limit-Info`` header is read (errors included), and every call is counted, so
  the pipeline can report what it spent and how much of the org's daily allocation is left.
- Every response's ``Date`` header sets the org's clock as the latest response reported it
  (:meth:`SalesforceClient.server_now`), so time windows sent to Salesforce use Salesforce's time.
- JSON numbers with a fraction or exponent are kept as their text (``parse_float=str``), so a
  currency value never passes through a float; ``cora_pipeline.extract.convert`` casts whole
  columns of that text to ``decimal128``. JSON objects become plain dicts, not simple-salesforce's
  default ``OrderedDict``: on 2,000-record Contact pages from the emulator, ``OrderedDict`` was
  about 60% of the ``json.loads`` time.
"""

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from cora_pipeline.config import OrgConfig
from cora_pipeline.errors import APIBudgetExhausted, SalesforceAPIError, TransientAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

LIMIT_INFO = re.compile(r"api-usage=(?P<used>\d+)/(?P<max>\d+)")
# Salesforce's REST query returns at most 2,000 and at least 200 records per page.
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000


class _CaPinnedSession(requests.Session):
    """A session whose ``verify`` CA bundle wins over ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE``.

    requests 2.34 prefers those environment variables to ``Session.verify`` when a request passes
    no ``verify`` of its own, and simple-salesforce passes none.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


class QueryLocatorExpired(SalesforceAPIError):
    """A ``nextRecordsUrl`` whose query locator expired or is unknown (400 ``INVALID_QUERY_LOCATOR``).

    Retrying the same locator cannot succeed, so the query has to start again.
    """


class TokenSource(Protocol):
    """The part of the token manager (``cora_pipeline.connect.TokenManager``) the client uses."""

    def current(self) -> Any: ...

    def refresh(self, stale: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before repeating a transient failure."""

    attempts: int = 5
    base_delay: float = 0.5
    """Seconds before the first retry; each further retry doubles it."""
    max_delay: float = 30.0
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504, 420})
    retry_codes: frozenset[str] = frozenset({"QUERY_TIMEOUT", "SERVER_UNAVAILABLE"})

    def delay(self, attempt: int) -> float:
        """Return the wait before retry number ``attempt`` (1-based).

        The wait is drawn uniformly between half the exponential ceiling and the ceiling ("equal
        jitter"), so clients that failed together do not retry together.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class ApiUsage:
    """The org's API usage as the latest ``Sforce-Limit-Info`` header reported it."""

    used: int
    max: int

    @property
    def share(self) -> float:
        return self.used / self.max if self.max else 1.0


class SalesforceClient:
    """REST calls for one org, with token refresh, retries and API accounting."""

    def __init__(
        self,
        org: OrgConfig,
        tokens: TokenSource,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.org = org
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.api_calls = 0
        """REST calls this client made, failed ones included: each counts against the allocation."""
        self.usage: ApiUsage | None = None
        self.http_seconds = 0.0
        """Seconds spent inside REST calls: network, Salesforce, JSON decoding, retry waits."""
        self._server_date: datetime | None = None
        self._server_date_monotonic = 0.0
        self._session = _CaPinnedSession()
        if org.ca_file:
            self._session.verify = org.ca_file
        self._session.hooks["response"].append(self._observe_response)
        self._token = tokens.current()
        self._sf = self._build(self._token)

    # -- plumbing ---------------------------------------------------------------------------

    def _build(self, token: Any) -> Salesforce:
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self._session,
            version=self.org.api_version,
            parse_float=str,
            object_pairs_hook=None,
        )

    def _observe_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = urlparse(response.url).path
        # The versions list is free and reports no usage; every other REST call counts.
        if path.rstrip("/") != "/services/data":
            self.api_calls += 1
        header = response.headers.get("Sforce-Limit-Info")
        if header:
            match = LIMIT_INFO.search(header)
            if match:
                self.usage = ApiUsage(int(match["used"]), int(match["max"]))
        date_header = response.headers.get("Date")
        if date_header:
            try:
                server_date = parsedate_to_datetime(date_header)
            except (TypeError, ValueError):
                return
            if server_date.tzinfo is None:
                server_date = server_date.replace(tzinfo=UTC)
            self._server_date = server_date.astimezone(UTC)
            self._server_date_monotonic = time.monotonic()

    def server_now(self) -> datetime:
        """Return the org's current time: the latest ``Date`` header plus the time elapsed since.

        The header has whole seconds, so the result can be up to one second behind. Before the
        first response, or when Salesforce sends no ``Date``, this is the local clock.
        """
        if self._server_date is None:
            return datetime.now(UTC)
        elapsed = time.monotonic() - self._server_date_monotonic
        return self._server_date + timedelta(seconds=elapsed)

    def close(self) -> None:
        self._session.close()

    def call(
        self, what: str, operation: Callable[[Salesforce], T], sobject: str | None = None
    ) -> T:
        """Run one REST operation with token refresh and retries.

        ``what`` names the call in logs and errors (``query Account page 3``).
        """
        refreshed = False
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                return operation(self._sf)
            except SalesforceExpiredSession:
                if refreshed:
                    raise SalesforceAPIError(
                        f"{what}: Salesforce rejected a freshly refreshed access token for org "
                        f"{self.org.name!r} (401 INVALID_SESSION_ID); check that the connected app "
                        f"grants the `api` scope",
                        org=self.org.name,
                        sobject=sobject,
                        status=401,
                        code="INVALID_SESSION_ID",
                    ) from None
                log.info(
                    "org %s object %s: access token expired during %s; refreshing",
                    self.org.name,
                    sobject or "-",
                    what,
                )
                self._token = self.tokens.refresh(stale=self._token)
                self._sf = self._build(self._token)
                refreshed = True
            except requests.exceptions.SSLError as exc:
                # A certificate that fails verification fails the same way on every retry.
                raise SalesforceAPIError(
                    f"{what} failed for org {self.org.name!r}: TLS verification of "
                    f"{self._token.instance_url} failed ({exc}); set ca_file in the org's "
                    f"configuration to the CA bundle that signed its certificate",
                    org=self.org.name,
                    sobject=sobject,
                ) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.JSONDecodeError,
            ) as exc:
                attempt += 1
                self._retry_or_raise(
                    what, attempt, f"connection failed: {type(exc).__name__}", sobject
                )
            except SalesforceError as exc:
                code, message = _error_code(exc)
                if code == "INVALID_QUERY_LOCATOR":
                    raise QueryLocatorExpired(
                        f"{what} failed for org {self.org.name!r}: the query locator expired "
                        f"(INVALID_QUERY_LOCATOR: {message}); run the query again",
                        org=self.org.name,
                        sobject=sobject,
                        status=exc.status,
                        code=code,
                        url=exc.url,
                    ) from None
                if isinstance(exc, SalesforceRefusedRequest) and code == "REQUEST_LIMIT_EXCEEDED":
                    used = self.usage.used if self.usage else None
                    limit = self.usage.max if self.usage else None
                    raise APIBudgetExhausted(
                        f"{what}: org {self.org.name!r} has used its daily API allocation "
                        f"(REQUEST_LIMIT_EXCEEDED: {message}); the pipeline stops until usage drops",
                        org=self.org.name,
                        used=used,
                        limit=limit,
                    ) from None
                transient = (
                    exc.status in self.retry.retry_statuses or code in self.retry.retry_codes
                )
                if not transient:
                    raise SalesforceAPIError(
                        f"{what} failed for org {self.org.name!r}: HTTP {exc.status} "
                        f"{code or ''} {message}".strip(),
                        org=self.org.name,
                        sobject=sobject,
                        status=exc.status,
                        code=code,
                        url=exc.url,
                    ) from None
                attempt += 1
                self._retry_or_raise(
                    what,
                    attempt,
                    f"HTTP {exc.status} {code or ''}".strip(),
                    sobject,
                    status=exc.status,
                    code=code,
                )
            finally:
                self.http_seconds += time.monotonic() - started

    def _retry_or_raise(
        self,
        what: str,
        attempt: int,
        cause: str,
        sobject: str | None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        if attempt >= self.retry.attempts:
            raise TransientAPIError(
                f"{what} failed for org {self.org.name!r} after {attempt} attempts: {cause}",
                org=self.org.name,
                sobject=sobject,
                status=status,
                code=code,
            )
        delay = self.retry.delay(attempt)
        log.warning(
            "org %s object %s: %s failed (%s); retry %d of %d in %.1f s",
            self.org.name,
            sobject or "-",
            what,
            cause,
            attempt,
            self.retry.attempts - 1,
            delay,
        )
        self._sleep(delay)

    # -- REST resources ---------------------------------------------------------------------

    def limits(self, sobject: str | None = None) -> dict[str, Any]:
        """Call ``/limits``; ``sobject`` names the object whose extract needs it, for logs."""
        return self.call("limits", lambda sf: sf.limits(), sobject=sobject)

    def read_api_usage(self, sobject: str | None = None) -> ApiUsage:
        """Call ``/limits`` and set :attr:`usage` from its ``DailyApiRequests`` entry.

        ``/limits`` is accurate within about five minutes; the ``Sforce-Limit-Info`` header of
        every later response replaces what it reported.
        """
        body = self.limits(sobject)
        daily = body.get("DailyApiRequests")
        if not isinstance(daily, dict) or "Max" not in daily or "Remaining" not in daily:
            raise SalesforceAPIError(
                f"limits for org {self.org.name!r} has no DailyApiRequests entry with Max and "
                f"Remaining (keys: {sorted(body)[:10]}); the integration user needs the "
                f"'View Setup and Configuration' permission",
                org=self.org.name,
            )
        maximum = int(daily["Max"])
        used = maximum - int(daily["Remaining"])
        # The header of the /limits response itself is newer than its body when it shows more use.
        if self.usage is None or self.usage.max != maximum or self.usage.used < used:
            self.usage = ApiUsage(used, maximum)
        return self.usage

    def describe_global(self) -> dict[str, Any]:
        return self.call("describeGlobal", lambda sf: sf.describe() or {})

    def describe(self, sobject: str) -> dict[str, Any]:
        return self.call(
            f"describe {sobject}", lambda sf: getattr(sf, sobject).describe(), sobject=sobject
        )

    def count(self, soql: str, sobject: str | None = None, include_deleted: bool = False) -> int:
        result = self.call(
            "count", lambda sf: sf.query(soql, include_deleted=include_deleted), sobject=sobject
        )
        return int(result["totalSize"])

    def deleted(self, sobject: str, start: str, end: str) -> dict[str, Any]:
        """Call the ``deleted`` resource: records deleted between two UTC ISO 8601 instants."""
        return self.call(
            f"deleted {sobject}",
            lambda sf: (
                sf.restful(f"sobjects/{sobject}/deleted/", params={"start": start, "end": end})
                or {}
            ),
            sobject=sobject,
        )

    def query_pages(
        self,
        soql: str,
        *,
        sobject: str,
        include_deleted: bool = True,
        batch_size: int = MAX_BATCH_SIZE,
        first_page: dict[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the records of a SOQL query page by page, following ``nextRecordsUrl``.

        ``include_deleted`` uses ``queryAll``, so soft-deleted records arrive with ``IsDeleted`` true.
        A token refresh in the middle resumes at the page that failed, because the query locator
        belongs to the org, not to the token. ``first_page`` is a query result already read (by a
        ``/composite`` subrequest); paging then starts at its ``nextRecordsUrl``.
        """
        batch_size = max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, batch_size))
        headers = query_options(batch_size)
        page_number = 1
        if first_page is not None:
            result = first_page
        else:
            result = self.call(
                f"query {sobject} page 1",
                lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers),
                sobject=sobject,
            )
        while True:
            yield result["records"]
            next_url: str | None = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            page_number += 1
            result = self.call(
                f"query {sobject} page {page_number}",
                partial(_query_more, url=next_url, headers=headers),
                sobject=sobject,
            )

    def composite(
        self, subrequests: list[dict[str, Any]], sobject: str | None = None
    ) -> list[dict[str, Any]]:
        """Send up to 25 subrequests in one ``/composite`` request; return their responses in order.

        Salesforce counts the whole request as one API call ("Send Multiple Requests Using
        Composite", REST API Developer Guide). ``allOrNone`` is false, so a failed subrequest
        leaves the others' results intact; each response carries ``httpStatusCode`` and ``body``.
        """
        body = {"allOrNone": False, "compositeRequest": subrequests}
        result = self.call(
            f"composite {sobject or ''}".strip(),
            lambda sf: sf.restful("composite", method="POST", json=body) or {},
            sobject=sobject,
        )
        return list(result.get("compositeResponse") or [])

    def resource_path(self, rest: str) -> str:
        """Return the path of a REST resource of this client's API version, for subrequests."""
        return f"/services/data/v{self.org.api_version}/{rest}"


def query_options(batch_size: int) -> dict[str, str]:
    """Return the ``Sforce-Query-Options`` header that requests pages of ``batch_size`` records."""
    return {"Sforce-Query-Options": f"batchSize={batch_size}"}


def _query_more(sf: Salesforce, *, url: str, headers: dict[str, str]) -> Any:
    return sf.query_more(url, identifier_is_url=True, headers=headers)


def _error_code(exc: SalesforceError) -> tuple[str | None, str]:
    """Return Salesforce's errorCode and message from an error response body."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message", ""))
    if isinstance(content, dict):
        return content.get("errorCode") or content.get("error"), str(
            content.get("message") or content.get("error_description") or ""
        )
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    return None, text[:500]


__all__ = [
    "ApiUsage",
    "QueryLocatorExpired",
    "RetryPolicy",
    "SalesforceClient",
    "SalesforceGeneralError",
    "SalesforceMalformedRequest",
]
