"""The Integrations page: a Starlette application behind operator sign-in.

Routes (every page except sign-in needs a signed-in operator; every POST needs the session's CSRF
token):

- ``GET /signin``, ``POST /signin``, ``POST /signout``
- ``GET /settings/integrations``: one Salesforce card per configured org
- ``POST /settings/integrations/salesforce/{org}/connect``: starts the OAuth web-server flow
- ``GET /settings/integrations/salesforce/callback``: Salesforce redirects the browser here
- ``GET|POST /settings/integrations/salesforce/{org}/reconnect`` and ``.../disconnect``: a
  confirmation page, then the action

The connection machinery is :mod:`cora_pipeline.connect`, shared with ``cora connect``.
"""

import dataclasses
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cora_pipeline.config import OrgConfig, Settings
from cora_pipeline.connect import (
    ConnectionRecord,
    ConnectionStore,
    DisconnectResult,
    begin_authorization,
    complete_authorization,
    connect_client_credentials,
    connect_jwt,
    disconnect,
)
from cora_pipeline.connect.hints import APPROVE_UNINSTALLED_HINT, redirect_mismatch_hint
from cora_pipeline.errors import AuthorizationError, CoraError, NotConnectedError
from cora_pipeline.web.auth import OperatorStore, SignInThrottle, operators_path
from cora_pipeline.web.cards import build_cards, is_connectable, open_store
from cora_pipeline.web.connect_form import (
    ConnectFormError,
    default_environment,
    error_summary,
    login_url_for,
    resolve_login,
    web_hint,
)
from cora_pipeline.web.sessions import SESSION_COOKIE, Notice, Session, SessionStore

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
INTEGRATIONS_PATH = "/settings/integrations"
CALLBACK_PATH = f"{INTEGRATIONS_PATH}/salesforce/callback"
CSRF_FIELD = "csrf_token"
# Sign-in forms and passwords are small; a larger body is rejected before it is parsed.
MAX_FORM_BYTES = 16 * 1024

SECURITY_HEADERS = {
    # form-action must allow https: because Connect responds to its POST with a redirect to the
    # Salesforce login host, and Chromium applies form-action to redirects after a form submission.
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' https:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # The callback URL carries the authorization code, so no page sends a Referer to another
    # site. "no-referrer" would also make Chromium send "Origin: null" on this site's own forms.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass
class WebContext:
    """Configuration, operator accounts and sessions, shared by every request handler."""

    settings: Settings
    operators: OperatorStore
    sessions: SessionStore = field(default_factory=SessionStore)
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    public_url: str | None = None
    """Base URL the browser uses (``https://cora.example.com``) when a proxy sits in front; the
    OAuth callback URL is built from it. Without it, the callback URL follows each request's URL."""


class SecurityHeaders:
    """ASGI middleware that adds :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    key = name.encode("latin-1")
                    if key not in present:
                        headers.append((key, value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def format_time(value: datetime | str | None) -> str:
    """Render a UTC instant as ``4 Dec 2026, 15:02 UTC``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def iso_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def format_epoch(seconds: float) -> str:
    return format_time(datetime.fromtimestamp(seconds, UTC))


def format_thousands(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["time"] = format_time
templates.env.filters["isotime"] = iso_time
templates.env.filters["epoch_time"] = format_epoch
templates.env.filters["thousands"] = format_thousands
templates.env.globals["integrations_path"] = INTEGRATIONS_PATH
templates.env.globals["approve_uninstalled_hint"] = APPROVE_UNINSTALLED_HINT
templates.env.globals["redirect_mismatch_hint"] = redirect_mismatch_hint


def create_app(
    settings: Settings,
    *,
    operators: OperatorStore | None = None,
    public_url: str | None = None,
    sessions: SessionStore | None = None,
) -> Starlette:
    """Build the Integrations application for ``settings``."""
    context = WebContext(
        settings=settings,
        operators=operators or OperatorStore(operators_path(settings.home)),
        sessions=sessions or SessionStore(),
        public_url=public_url.rstrip("/") if public_url else None,
    )
    routes = [
        Route("/", home),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin_submit, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route(INTEGRATIONS_PATH, integrations_page, methods=["GET"]),
        Route(CALLBACK_PATH, oauth_callback, methods=["GET"]),
        Route(f"{INTEGRATIONS_PATH}/salesforce/{{org}}/connect", connect, methods=["POST"]),
        Route(
            f"{INTEGRATIONS_PATH}/salesforce/{{org}}/reconnect",
            reconnect_page,
            methods=["GET"],
        ),
        Route(
            f"{INTEGRATIONS_PATH}/salesforce/{{org}}/disconnect",
            disconnect_page,
            methods=["GET"],
        ),
        Route(
            f"{INTEGRATIONS_PATH}/salesforce/{{org}}/disconnect",
            disconnect_submit,
            methods=["POST"],
        ),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, CoraError: cora_error},
    )
    app.state.web = context
    app.add_middleware(SecurityHeaders)
    return app


# -- plumbing --------------------------------------------------------------------------------------


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def current_session(request: Request) -> Session | None:
    return web(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    # SameSite=Lax, not Strict: Salesforce's redirect back to the callback is a cross-site
    # top-level navigation, and the callback needs the session to find the started authorization.
    public_url = web(request).public_url or ""
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or public_url.startswith("https://"),
        path="/",
    )


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **values: Any,
) -> Response:
    values.setdefault("operator", session.operator if session else None)
    values.setdefault("csrf_token", session.csrf_token if session else "")
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    if session is not None:
        set_session_cookie(request, response, session)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def local_path(value: str | None) -> str:
    """Return ``value`` when it is a path on this site, else the Integrations page.

    Only paths starting with one ``/`` pass, so ``next=//evil.example`` cannot redirect away.
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return INTEGRATIONS_PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return INTEGRATIONS_PATH
    return value


def require_operator(request: Request) -> Session:
    """Return the signed-in session, or raise: a redirect to sign-in for a page, 403 otherwise."""
    session = current_session(request)
    if session is not None and session.signed_in:
        return session
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303,
            headers={"location": "/signin?" + urlencode({"next": target})},
        )
    log.warning(
        "rejected %s %s from %s: not signed in",
        request.method,
        request.url.path,
        client_address(request),
    )
    raise HTTPException(status_code=403, detail="Sign in to use this page.")


def same_origin(request: Request) -> bool:
    """Return False when the request's ``Origin`` header names another site.

    Browsers send ``Origin`` on cross-site POSTs. A request without the header is judged by its
    CSRF token alone.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    expected = f"{request.url.scheme}://{request.url.netloc}"
    allowed = {expected}
    public_url = web(request).public_url
    if public_url:
        parts = urlsplit(public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin in allowed


async def read_form(request: Request, session: Session) -> FormData:
    """Parse a POST body and check its CSRF token against the session's; raise 403 on mismatch."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail="The form is too large.")
    form = await request.form(max_files=0, max_fields=20)
    submitted = form.get(CSRF_FIELD)
    valid = isinstance(submitted, str) and hmac.compare_digest(
        submitted.encode("utf-8"), session.csrf_token.encode("utf-8")
    )
    if not valid or not same_origin(request):
        log.warning(
            "rejected %s %s from %s: %s",
            request.method,
            request.url.path,
            client_address(request),
            "cross-site Origin" if valid else "missing or invalid CSRF token",
        )
        raise HTTPException(
            status_code=403,
            detail="This form has expired or did not come from this page. Reload the page and "
            "try again.",
        )
    return form


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def configured_org(request: Request) -> OrgConfig:
    name = request.path_params["org"]
    org = web(request).settings.orgs.get(name)
    if org is None:
        raise HTTPException(status_code=404, detail=f"No org named {name!r} is configured.")
    return org


def callback_url(request: Request) -> str:
    """Return the redirect URI to register on the connected app, for this browser's address.

    It follows the address the operator uses (``localhost`` or ``127.0.0.1``) because the session
    cookie is bound to that host, unless ``public_url`` fixes it.
    """
    public_url = web(request).public_url
    if public_url:
        return public_url + CALLBACK_PATH
    return f"{request.url.scheme}://{request.url.netloc}{CALLBACK_PATH}"


def card_anchor(org: str) -> str:
    return f"{INTEGRATIONS_PATH}#org-{org}"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (301, 302, 303, 307, 308):
        return Response(status_code=exc.status_code, headers=exc.headers)
    session = current_session(request)
    titles = {
        403: "Not allowed",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        session if session and session.signed_in else None,
        status_code=exc.status_code,
        title=titles.get(exc.status_code, "Something went wrong"),
        message=exc.detail,
    )


async def cora_error(request: Request, exc: Exception) -> Response:
    """Show an error no handler expected (an unreadable vault, say) as a page, and log it."""
    log.error("%s %s failed: %s", request.method, request.url.path, exc)
    session = current_session(request)
    return render(
        request,
        "error.html",
        session if session and session.signed_in else None,
        status_code=500,
        title="Something went wrong",
        message=error_summary(exc),
    )


# -- sign-in ---------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    return redirect(INTEGRATIONS_PATH)


async def signin_page(request: Request) -> Response:
    session = current_session(request)
    if session is not None and session.signed_in:
        return redirect(local_path(request.query_params.get("next")))
    session = session or web(request).sessions.create()
    return render(
        request,
        "signin.html",
        session,
        next=local_path(request.query_params.get("next")),
        error=None,
        operator_name="",
    )


async def signin_submit(request: Request) -> Response:
    context = web(request)
    session = current_session(request)
    if session is None:
        # The anonymous session expired, or the browser refused the cookie.
        log.info("sign-in from %s without a live session", client_address(request))
        session = context.sessions.create()
        return render(
            request,
            "signin.html",
            session,
            status_code=400,
            next=INTEGRATIONS_PATH,
            error="Your sign-in form expired. Sign in again.",
            operator_name="",
        )
    form = await read_form(request, session)
    operator = form_text(form, "operator").strip()
    password = form_text(form, "password")
    target = local_path(form_text(form, "next"))
    client = client_address(request)

    wait = context.throttle.retry_after(client)
    if wait > 0:
        log.warning("sign-in from %s rejected: too many failed attempts", client)
        return render(
            request,
            "signin.html",
            session,
            status_code=429,
            next=target,
            error=f"Too many failed sign-in attempts. Try again in {int(wait // 60) + 1} minutes.",
            operator_name=operator,
        )
    try:
        valid = await run_in_threadpool(context.operators.authenticate, operator, password)
    except CoraError as exc:
        log.error("sign-in failed: cannot read the operators file: %s", exc)
        return render(
            request,
            "signin.html",
            session,
            status_code=500,
            next=target,
            error=f"Sign-in is not available: {exc}",
            operator_name=operator,
        )
    if not valid:
        context.throttle.record_failure(client)
        log.warning("sign-in failed for operator %r from %s", operator, client)
        return render(
            request,
            "signin.html",
            session,
            status_code=401,
            next=target,
            error="The operator name or password is incorrect.",
            operator_name=operator,
        )
    context.throttle.reset(client)
    signed_in = context.sessions.sign_in(session, operator)
    log.info("operator %r signed in from %s", operator, client)
    response = redirect(target)
    set_session_cookie(request, response, signed_in)
    return response


async def signout(request: Request) -> Response:
    session = require_operator(request)
    await read_form(request, session)
    web(request).sessions.delete(session.session_id)
    log.info("operator %r signed out", session.operator)
    response = redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- Integrations page -----------------------------------------------------------------------------


async def integrations_page(request: Request) -> Response:
    session = require_operator(request)
    context = web(request)
    cards = await run_in_threadpool(build_cards, context.settings)
    notices = {card.org.name: session.take_notice(card.org.name) for card in cards}
    return render(
        request,
        "integrations.html",
        session,
        cards=cards,
        notices=notices,
        page_notice=session.take_notice(""),
        pending={card.org.name: session.pending_for(card.org.name) for card in cards},
        callback_url=callback_url(request),
        environment_hosts={
            card.org.name: {
                "production": login_url_for(card.org, "production"),
                "sandbox": login_url_for(card.org, "sandbox"),
            }
            for card in cards
        },
        default_environment={card.org.name: default_environment(card.org) for card in cards},
    )


async def connect(request: Request) -> Response:
    """Start the web-server flow and send the browser to Salesforce's authorize URL."""
    session = require_operator(request)
    form = await read_form(request, session)
    org = configured_org(request)
    if not is_connectable(org):
        session.notices[org.name] = Notice(
            "error",
            "This org cannot be connected from the page",
            f"Org {org.name!r} is the built-in demo org; `cora demo` connects it to the "
            f"bundled emulator.",
        )
        return redirect(card_anchor(org.name))
    if org.flow != "web_server":
        return await connect_without_browser(request, session, org)
    try:
        flow_org = resolve_login(org, form_text(form, "environment"), form_text(form, "my_domain"))
        pending = await run_in_threadpool(begin_authorization, flow_org, callback_url(request))
    except ConnectFormError as exc:
        log.info("org %s: Connect form rejected: %s", org.name, exc)
        session.notices[org.name] = Notice("error", "Check the Connect form", str(exc))
        return redirect(card_anchor(org.name))
    except CoraError as exc:
        log.error("org %s: cannot start the authorization: %s", org.name, exc)
        session.notices[org.name] = Notice(
            "error", "The connection could not start", error_summary(exc)
        )
        return redirect(card_anchor(org.name))
    session.add_pending(pending)
    log.info(
        "operator %r started connecting org %s at %s (%s)",
        session.operator,
        org.name,
        flow_org.login_url,
        "Sandbox" if flow_org.is_sandbox else "Production",
    )
    return redirect(pending.url)


async def connect_without_browser(request: Request, session: Session, org: OrgConfig) -> Response:
    """Connect an org configured for the JWT bearer or client credentials flow.

    Neither flow shows a Salesforce page: the JWT bearer flow signs an assertion with the
    configured private key, and the client credentials flow runs as the connected app's Run As
    user. Both use the configured login host, because the JWT audience and the My Domain that
    client credentials need are part of that configuration.
    """
    connect_flow = connect_jwt if org.flow == "jwt" else connect_client_credentials
    try:
        store = await run_in_threadpool(ConnectionStore.open, web(request).settings, True)
        record = await run_in_threadpool(connect_flow, org, store)
    except AuthorizationError as exc:
        log.warning("org %s: %s flow failed: %s", org.name, org.flow, error_summary(exc))
        session.notices[org.name] = Notice(
            "error",
            "Salesforce did not connect this org",
            error_summary(exc),
            web_hint(exc, org.name),
        )
        return redirect(card_anchor(org.name))
    except CoraError as exc:
        log.error("org %s: %s flow failed: %s", org.name, org.flow, exc)
        session.notices[org.name] = Notice(
            "error", "The connection could not be completed", error_summary(exc)
        )
        return redirect(card_anchor(org.name))
    return connected(session, org, record)


async def oauth_callback(request: Request) -> Response:
    """Finish the flow Salesforce redirected back from, for an authorization this session began."""
    session = require_operator(request)
    state = request.query_params.get("state")
    pending = session.pending.pop(state, None) if state else None
    if pending is None:
        return reject_foreign_callback(request, session)

    org = web(request).settings.orgs.get(pending.org)
    if org is None:
        raise HTTPException(status_code=404, detail=f"Org {pending.org!r} is no longer configured.")
    flow_org = dataclasses.replace(org, login_url=pending.login_url, is_sandbox=pending.is_sandbox)
    try:
        store = await run_in_threadpool(ConnectionStore.open, web(request).settings, True)
        record = await run_in_threadpool(
            complete_authorization, flow_org, pending, str(request.url), store
        )
    except AuthorizationError as exc:
        log.warning("org %s: authorization failed: %s", org.name, error_summary(exc))
        session.notices[org.name] = Notice(
            "error",
            "Salesforce did not connect this org",
            error_summary(exc),
            web_hint(exc, org.name),
        )
        return redirect(card_anchor(org.name))
    except CoraError as exc:
        log.error("org %s: connecting failed: %s", org.name, exc)
        session.notices[org.name] = Notice(
            "error", "The connection could not be completed", error_summary(exc)
        )
        return redirect(card_anchor(org.name))
    return connected(session, org, record)


def connected(session: Session, org: OrgConfig, record: ConnectionRecord) -> Response:
    """Log a new connection and return to its card, which shows it as Connected."""
    log.info(
        "operator %r connected org %s to %s (%s) as %s through the %s flow",
        session.operator,
        org.name,
        record.org_id,
        record.environment,
        record.username,
        record.flow,
    )
    session.notices[org.name] = Notice(
        "success",
        "Connected",
        f"{record.org_name} ({record.environment}) is connected as {record.username}.",
    )
    return redirect(card_anchor(org.name))


def reject_foreign_callback(request: Request, session: Session) -> Response:
    """Reject a callback whose ``state`` this session never started, or already used, with 400.

    Nothing is exchanged or stored: the code may belong to another operator's login, planted
    through a link (login CSRF), or be a replay of a spent callback.
    """
    log.warning(
        "rejected an OAuth callback from %s for operator %r: its state was not started in "
        "this session",
        client_address(request),
        session.operator,
    )
    return render(
        request,
        "error.html",
        session,
        status_code=400,
        title="This Salesforce response was not expected",
        message="The response from Salesforce does not belong to a connection started in "
        "this browser session, so it was ignored and nothing was stored. Start the "
        "connection again from the Salesforce card.",
    )


# -- Reconnect and Disconnect ----------------------------------------------------------------------


async def reconnect_page(request: Request) -> Response:
    session = require_operator(request)
    org = configured_org(request)
    store = await run_in_threadpool(open_store, web(request).settings)
    record = store.get(org.name) if store else None
    environment = default_environment(org)
    if record is not None:
        environment = "sandbox" if record.is_sandbox else "production"
    return render(
        request,
        "reconnect.html",
        session,
        org=org,
        record=record,
        environment=environment,
        my_domain=record.login_url
        if record is not None and record.login_url != login_url_for(org, environment)
        else "",
        environment_hosts={
            "production": login_url_for(org, "production"),
            "sandbox": login_url_for(org, "sandbox"),
        },
        callback_url=callback_url(request),
    )


async def disconnect_page(request: Request) -> Response:
    session = require_operator(request)
    org = configured_org(request)
    store = await run_in_threadpool(open_store, web(request).settings)
    record = store.get(org.name) if store else None
    if record is None:
        session.notices[org.name] = Notice(
            "info", "Not connected", "There is nothing to disconnect."
        )
        return redirect(card_anchor(org.name))
    return render(request, "disconnect.html", session, org=org, record=record, failure=None)


async def disconnect_submit(request: Request) -> Response:
    """Revoke the org's token at Salesforce, then delete it; ``force`` deletes after a failed revoke."""
    session = require_operator(request)
    form = await read_form(request, session)
    org = configured_org(request)
    force = form_text(form, "force") == "1"
    settings = web(request).settings
    store: ConnectionStore | None = None
    try:
        store = await run_in_threadpool(open_store, settings)
        if store is None:
            raise NotConnectedError(org.name)
        result = await run_in_threadpool(disconnect, org, store, force)
    except NotConnectedError:
        log.info("org %s: disconnect requested, but it is not connected", org.name)
        session.notices[org.name] = Notice(
            "info", "Not connected", "There is nothing to disconnect."
        )
        return redirect(card_anchor(org.name))
    except AuthorizationError as exc:
        log.warning("org %s: disconnect failed: %s", org.name, error_summary(exc))
        record = store.get(org.name) if store else None
        return render(
            request,
            "disconnect.html",
            session,
            status_code=502,
            org=org,
            record=record,
            failure=error_summary(exc),
        )
    except CoraError as exc:
        log.error("org %s: disconnect failed: %s", org.name, exc)
        session.notices[org.name] = Notice(
            "error", "The org could not be disconnected", error_summary(exc)
        )
        return redirect(card_anchor(org.name))
    log.info(
        "operator %r disconnected org %s (%s); revoked at Salesforce: %s",
        session.operator,
        org.name,
        result.record.org_id,
        result.revoked,
    )
    session.notices[org.name] = disconnect_notice(result)
    return redirect(card_anchor(org.name))


def disconnect_notice(result: DisconnectResult) -> Notice:
    if result.revoked:
        return Notice(
            "success",
            "Disconnected",
            f"The token for {result.record.org_name} was revoked at Salesforce and deleted here.",
        )
    return Notice(
        "info",
        "Deleted here, not revoked at Salesforce",
        f"The connection was deleted, but Salesforce did not revoke its token "
        f"({result.revoke_error}).",
        "Revoke it in Salesforce: Setup > Connected Apps OAuth Usage, find the connected "
        "app, click Revoke for the user.",
    )
