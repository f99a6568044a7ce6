"""HTML pages of the emulated authorize flow: login, consent and the OAuth error page."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:Salesforce Sans,Arial,sans-serif;background:#f3f3f3;margin:0}"
    "main{max-width:380px;margin:60px auto;background:#fff;border:1px solid #ddd;"
    "border-radius:4px;padding:24px}label{display:block;margin-top:12px}"
    "input[type=text],input[type=password]{width:100%;padding:8px;box-sizing:border-box}"
    "button{margin-top:16px;padding:8px 16px}.error{color:#c23934}"
)


def _hidden(params: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items()
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def login_page(params: dict[str, str], error: str | None) -> str:
    """Render the login form; the OAuth parameters ride along as hidden fields."""
    hidden = {k: v for k, v in params.items() if k not in ("username", "password", "action")}
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Login | Salesforce",
        "<h1>Log In</h1>"
        f"{message}"
        '<form method="post" action="/services/oauth2/authorize" id="login_form">'
        f"{_hidden(hidden)}"
        '<input type="hidden" name="action" value="login">'
        '<label for="username">Username</label>'
        '<input type="text" id="username" name="username" autocomplete="username">'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password">'
        '<button type="submit" id="Login" name="Login">Log In</button>'
        "</form>",
    )


def consent_page(params: dict[str, str], ticket: str, username: str) -> str:
    """Render the "Allow Access?" page with Allow and Deny buttons."""
    scopes = params.get("scope", "api id refresh_token").split()
    items = "".join(f"<li>{escape(scope)}</li>" for scope in scopes)
    return _page(
        "Allow Access? | Salesforce",
        "<h1>Allow Access?</h1>"
        f"<p>Logged in as {escape(username)}. The app is asking to:</p><ul>{items}</ul>"
        '<form method="post" action="/services/oauth2/authorize" id="consent_form">'
        f"{_hidden(params)}"
        f'<input type="hidden" name="ticket" value="{escape(ticket)}">'
        '<button type="submit" name="action" value="deny" id="oaapprove_deny">Deny</button> '
        '<button type="submit" name="action" value="approve" id="oaapprove">Allow</button>'
        "</form>",
    )


def error_page(error: str, description: str) -> str:
    """Render the page Salesforce shows when it cannot redirect an OAuth error back."""
    return _page(
        "Error | Salesforce",
        "<h1>We can't authorize you because of an OAuth error.</h1>"
        "<p>For more information, contact your Salesforce administrator.</p>"
        "<p>OAUTH_APPROVAL_ERROR_GENERIC : An unexpected error has occurred during "
        "authentication. Please try again.</p>"
        f'<p class="error" data-error="{escape(error)}">{escape(error)}: '
        f"{escape(description)}</p>",
    )
