"""Token lifecycle against the emulator: refresh on 401, rotation, single flight, invalid_grant."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cora_pipeline.connect import AccessToken, ConnectionStore, TokenManager, connect_web_server
from cora_pipeline.errors import AuthorizationError, NotConnectedError, ReauthorizationRequired

from .emulated import Salesforce, StartEmulator, redirect_browser, rest_get

LIFETIME = 600.0


@pytest.fixture
def expiring(start_emulator: StartEmulator) -> Salesforce:
    """Access tokens expire after 10 minutes of org time; refresh tokens rotate on use."""
    return start_emulator(access_token_lifetime=LIFETIME, rotate_refresh_tokens=True)


def connect(salesforce: Salesforce, store: ConnectionStore) -> TokenManager:
    org = salesforce.org_config()
    connect_web_server(
        org,
        store,
        browser=redirect_browser(str(salesforce.emu.ca_file)),
        timeout=10,
        output=lambda *_: None,
    )
    return TokenManager(org, store)


def query_status(salesforce: Salesforce, token: AccessToken) -> int:
    response = rest_get(
        salesforce,
        token.instance_url,
        token.access_token,
        "/services/data/v59.0/query",
        q="SELECT Id FROM Account",
    )
    return response.status_code


def expire_access_tokens(salesforce: Salesforce) -> None:
    salesforce.emu.production.admin.advance_clock(LIFETIME + 1)


def test_refresh_replaces_expired_token(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    before = store.get("acme")
    assert before is not None
    expire_access_tokens(expiring)
    assert query_status(expiring, stale) == 401

    time.sleep(1.1)  # last_refresh has one-second resolution
    fresh = manager.refresh(stale=stale)

    assert fresh.access_token != stale.access_token
    assert query_status(expiring, fresh) == 200
    assert manager.current() == fresh
    after = store.get("acme")
    assert after is not None
    assert after.last_refresh != before.last_refresh
    assert after.org_id == before.org_id


def test_rotated_refresh_token_is_stored(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    loaded = store.load("acme")
    assert loaded is not None
    first_refresh = loaded[1].refresh_token

    manager.refresh(stale=manager.current())
    manager.refresh(stale=manager.current())

    loaded = store.load("acme")
    assert loaded is not None
    assert loaded[1].refresh_token != first_refresh
    # Only the latest refresh token is still valid at Salesforce.
    assert len(expiring.emu.oauth.tokens.refresh) == 1


def test_refresh_with_outdated_stale_token_makes_no_call(
    expiring: Salesforce, store: ConnectionStore
) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    fresh = manager.refresh(stale=stale)
    refresh_tokens = dict(expiring.emu.oauth.tokens.refresh)

    again = manager.refresh(stale=stale)

    assert again == fresh
    assert expiring.emu.oauth.tokens.refresh == refresh_tokens


def test_threads_refresh_once(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    results: list[AccessToken] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(TokenManager(manager.org_config, store).refresh(stale=stale))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len({token.access_token for token in results}) == 1
    assert results[0].access_token != stale.access_token
    assert query_status(expiring, results[0]) == 200


REFRESH_SCRIPT = """
import json, logging, sys, time
from pathlib import Path
from cora_pipeline.config import OrgConfig
from cora_pipeline.connect import AccessToken, ConnectionStore, TokenManager

args = json.loads(sys.argv[1])
messages = []
class Collect(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())
logging.getLogger("cora_pipeline").addHandler(Collect())
logging.getLogger("cora_pipeline").setLevel(logging.DEBUG)
org = OrgConfig(**args["org"])
store = ConnectionStore.open_home(Path(args["home"]))
stale = AccessToken(access_token=args["stale"], instance_url="", org=org.name, org_id="",
                    api_version=org.api_version)
go = Path(args["go"])
while not go.exists():
    time.sleep(0.01)
token = TokenManager(org, store).refresh(stale=stale)
print(json.dumps({"token": token.access_token, "messages": messages}))
"""


def test_two_processes_refresh_once(
    expiring: Salesforce, store: ConnectionStore, tmp_path: Path
) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    org = manager.org_config
    go = tmp_path / "go"
    args = {
        "org": {
            "name": org.name,
            "login_url": org.login_url,
            "is_sandbox": org.is_sandbox,
            "client_id": org.client_id,
            "client_secret_env": org.client_secret_env,
            "ca_file": org.ca_file,
        },
        "home": str(store.home),
        "stale": stale.access_token,
        "go": str(go),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESH_SCRIPT, json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # both processes are importing and then polling for the go file
    go.touch()
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))

    tokens = {output["token"] for output in outputs}
    assert len(tokens) == 1
    assert stale.access_token not in tokens
    refreshed = [
        output
        for output in outputs
        if any("access token refreshed" in m for m in output["messages"])
    ]
    assert len(refreshed) == 1
    assert manager.current().access_token in tokens
    record = store.get("acme")
    assert record is not None
    assert record.needs_reauthorization is False


def test_revoked_refresh_token_requires_reauthorization(
    expiring: Salesforce, store: ConnectionStore
) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    expiring.emu.production.admin.revoke_refresh_tokens()

    with pytest.raises(ReauthorizationRequired) as caught:
        manager.refresh(stale=stale)

    assert caught.value.command == "cora connect acme"
    assert "cora connect acme" in str(caught.value)
    assert "expired access/refresh token" in str(caught.value)
    record = store.get("acme")
    assert record is not None
    assert record.needs_reauthorization is True
    assert record.reauthorization_reason == "expired access/refresh token"


def test_reauthorization_state_is_not_retried(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    expiring.emu.production.admin.revoke_refresh_tokens()
    with pytest.raises(ReauthorizationRequired):
        manager.refresh(stale=manager.current())
    expiring.emu.stop()  # any further call to Salesforce would now fail differently

    with pytest.raises(ReauthorizationRequired):
        manager.current()
    with pytest.raises(ReauthorizationRequired):
        manager.refresh()


def test_reconnect_clears_reauthorization(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    expiring.emu.production.admin.revoke_refresh_tokens()
    with pytest.raises(ReauthorizationRequired):
        manager.refresh(stale=manager.current())

    connect(expiring, store)

    assert query_status(expiring, manager.current()) == 200
    record = store.get("acme")
    assert record is not None
    assert record.needs_reauthorization is False


def test_token_for_another_org_is_not_stored(expiring: Salesforce, store: ConnectionStore) -> None:
    manager = connect(expiring, store)
    stale = manager.current()
    with store.lock("acme"):
        store.update_record("acme", org_id=expiring.emu.sandbox.org_id)

    with pytest.raises(AuthorizationError, match="belongs to"):
        manager.refresh(stale=stale)

    assert manager.current().access_token == stale.access_token


def test_expiry_in_middle_of_paging_resumes(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    salesforce = start_emulator(
        access_token_lifetime=LIFETIME,
        sizes={"Account": 450, "Contact": 1, "Opportunity": 1, "Case": 1, "Invoice__c": 1},
    )
    manager = connect(salesforce, store)
    token = manager.current()
    headers = {"Sforce-Query-Options": "batchSize=200"}
    import requests

    def get(url: str, access_token: str) -> requests.Response:
        return requests.get(
            url,
            headers={**headers, "Authorization": f"Bearer {access_token}"},
            verify=str(salesforce.emu.ca_file),
            timeout=30,
        )

    first = get(
        f"{token.instance_url}/services/data/v59.0/query?q=SELECT+Id+FROM+Account",
        token.access_token,
    )
    assert first.status_code == 200
    ids = [r["Id"] for r in first.json()["records"]]
    next_url = token.instance_url + first.json()["nextRecordsUrl"]
    expire_access_tokens(salesforce)

    rejected = get(next_url, token.access_token)
    assert rejected.status_code == 401
    assert rejected.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    token = manager.refresh(stale=token)
    while True:
        page = get(next_url, token.access_token)
        assert page.status_code == 200
        body = page.json()
        ids += [r["Id"] for r in body["records"]]
        if body["done"]:
            break
        next_url = token.instance_url + body["nextRecordsUrl"]

    assert len(ids) == 450
    assert len(set(ids)) == 450


def test_current_without_connection_raises(salesforce: Salesforce, store: ConnectionStore) -> None:
    with pytest.raises(NotConnectedError, match="cora connect acme"):
        TokenManager(salesforce.org_config(), store).current()


def test_rest_client_refreshes_between_pages(
    start_emulator: StartEmulator, store: ConnectionStore
) -> None:
    from cora_pipeline.salesforce.client import SalesforceClient

    salesforce = start_emulator(
        access_token_lifetime=LIFETIME,
        rotate_refresh_tokens=True,
        sizes={"Account": 450, "Contact": 1, "Opportunity": 1, "Case": 1, "Invoice__c": 1},
    )
    manager = connect(salesforce, store)
    first_token = manager.current()
    client = SalesforceClient(manager.org_config, manager)
    ids: list[str] = []
    try:
        pages = client.query_pages("SELECT Id FROM Account", sobject="Account", batch_size=200)
        for number, page in enumerate(pages, start=1):
            ids += [record["Id"] for record in page]
            if number == 1:
                expire_access_tokens(salesforce)
    finally:
        client.close()

    assert len(ids) == 450
    assert len(set(ids)) == 450
    assert manager.current().access_token != first_token.access_token


def test_refresh_takes_instance_url_from_response(
    expiring: Salesforce, store: ConnectionStore
) -> None:
    manager = connect(expiring, store)
    with store.lock("acme"):
        store.update_record("acme", instance_url="https://moved.example.invalid")
    assert manager.current().instance_url == "https://moved.example.invalid"

    fresh = manager.refresh(stale=manager.current())

    assert fresh.instance_url == expiring.emu.production.instance_url
    record = store.get("acme")
    assert record is not None
    assert record.instance_url == expiring.emu.production.instance_url
