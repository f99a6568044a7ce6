"""Explanations of Salesforce OAuth errors for the administrator who has to fix them."""

from cora_pipeline.errors import AuthorizationError

APPROVE_UNINSTALLED_HINT = (
    "Salesforce showed OAUTH_APPROVAL_ERROR_GENERIC. The usual cause is that the connected app is "
    "not installed in the org and the user lacks the 'Approve Uninstalled Connected Apps' "
    "permission. Grant it through a temporary permission set: in Setup, open Permission Sets, "
    "click New, name it 'Connect cora', save, open System Permissions, tick 'Approve Uninstalled "
    "Connected Apps', save, click Manage Assignments and add the connecting user. Connect again, "
    "then remove the assignment. Alternatively install the connected app in the org (Setup > "
    "Connected Apps OAuth Usage > Install)."
)
PRE_AUTHORIZE_HINT = (
    "The JWT bearer flow needs the user pre-authorized: in Setup > App Manager, open the connected "
    "app's Manage page, click Edit Policies, set Permitted Users to 'Admin approved users are "
    "pre-authorized', save, then add the user's profile or a permission set that includes the user "
    "under Profiles or Permission Sets."
)
INVALID_CLIENT_ID_HINT = (
    "Check client_id in the configuration: it must be the connected app's Consumer Key (Setup > "
    "App Manager > View > Manage Consumer Details). A newly created or edited connected app can "
    "take up to 10 minutes to reach every Salesforce server; wait and try again."
)


GENERIC_HINT = "Check the connected app's settings in Setup > App Manager and try again."


def redirect_mismatch_hint(redirect_uri: str) -> str:
    return (
        f"Add this exact Callback URL to the connected app (Setup > App Manager > Edit > "
        f"Callback URL), one per line, and save: {redirect_uri}"
    )


def explain(error: str | None, description: str | None, *, redirect_uri: str | None = None) -> str:
    """Return what the administrator should do about an OAuth ``error``."""
    text = (description or "").lower()
    if error == "OAUTH_APPROVAL_ERROR_GENERIC" or "oauth_approval_error_generic" in text:
        return APPROVE_UNINSTALLED_HINT
    if error in ("access_denied", "access-denied"):
        return (
            "The administrator denied access on the Salesforce approval page. Run the command "
            "again and click Allow."
        )
    if error == "redirect_uri_mismatch" and redirect_uri:
        return redirect_mismatch_hint(redirect_uri)

    if error == "invalid_client_id":
        return INVALID_CLIENT_ID_HINT
    if error == "invalid_client":
        return (
            "Salesforce rejected the client secret: set the environment variable named by "
            "client_secret_env to the connected app's Consumer Secret."
        )

    if "hasn't approved this consumer" in text:
        return PRE_AUTHORIZE_HINT
    if "request not supported on this domain" in text:
        return (
            "The client credentials flow works only on the org's My Domain host: set login_url "
            "to https://<MyDomain>.my.salesforce.com."
        )
    if "no client credentials user enabled" in text:
        return (
            "Select a Run As user for the client credentials flow: in the connected app's "
            "policies, under Client Credentials Flow, set Run As to an integration user."
        )
    if "audience" in text:
        return (
            "The JWT audience must be the login host the org uses: https://login.salesforce.com "
            "for Production, https://test.salesforce.com for a Sandbox."
        )

    if "expired authorization code" in text or "invalid authorization code" in text:
        return (
            "The authorization code expired (after 15 minutes) or was already used; start the "
            "connection again. For the JWT bearer flow this also means the machine's clock is "
            "off: synchronize it."
        )
    if "invalid assertion" in text:
        return (
            "Salesforce could not verify the JWT: upload the certificate that matches "
            "private_key_file to the connected app (Use digital signatures) and check that "
            "the username exists in this org."
        )
    if "ip restricted" in text or "login hours" in text:
        return (
            "The user's profile restricts login IP ranges or hours; relax them for this user "
            "or set the connected app's IP Relaxation policy."
        )
    if error == "inactive_user" or "inactive user" in text:
        return "The Salesforce user is inactive; connect as an active user."
    if error == "inactive_org":
        return "The org is locked, closed or suspended; it cannot be connected."
    if error == "invalid_scope":
        return (
            "The connected app does not allow the requested scopes; add 'Manage user data via "
            "APIs (api)' and 'Perform requests at any time (refresh_token, offline_access)' to "
            "its Selected OAuth Scopes."
        )
    return GENERIC_HINT


def authorization_error(
    message: str,
    error: str | None,
    description: str | None,
    *,
    redirect_uri: str | None = None,
) -> AuthorizationError:
    detail = f"{error}: {description}" if description else str(error)
    return AuthorizationError(
        f"{message} ({detail})",
        error=error,
        description=description,
        hint=explain(error, description, redirect_uri=redirect_uri),
    )
