"""The emulator: two login hosts and two orgs (production and sandbox), each on its own HTTPS port."""

from __future__ import annotations

import hashlib
import logging
import random
import re
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .admin_http import AdminHttp
from .catalog import DEFAULT_SIZES
from .clock import OrgClock
from .http import Request, Response, TlsHttpServer, rest_error
from .ids import base62, to_id18
from .oauth import OAuthServer
from .org import EmulatedOrg, OrgUser
from .rest import RestApi
from .seed import seed_org
from .simulator import ActivitySimulator

logger = logging.getLogger(__name__)

_ID_URL = re.compile(r"^/id/(00D[A-Za-z0-9]{12,15})/(005[A-Za-z0-9]{12,15})/?$")


@dataclass
class EmulatorSettings:
    """Everything that shapes an emulator run; all generated data is deterministic under ``seed``."""

    seed: int = 7
    sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    # Records per object in the sandbox org; None = the same as ``sizes``.
    sandbox_sizes: dict[str, int] | None = None
    daily_api_limit: int = 15_000  # per org, rolling 24 hours
    access_token_lifetime: float | None = None  # seconds of org time; None = never expires
    rotate_refresh_tokens: bool = False
    max_approvals_per_user: int = 5
    callback_urls: tuple[str, ...] = ("http://127.0.0.1:1717/OauthRedirect",)
    # True: authorize skips login and consent for the org's admin user and redirects at once.
    auto_approve: bool = False
    data_dir: Path | None = None  # CA, certificate and key files; a temporary directory if None
    host: str = "127.0.0.1"
    # Fixed ports by role: "login", "sandbox_login", "production", "sandbox"; 0 or absent = any.
    ports: dict[str, int] = field(default_factory=dict)
    # When set, org data, schema changes, clock offset, API usage and tokens survive restarts.
    state_file: Path | None = None
    # Start instant of the org clocks; None = now. A fixed value makes timestamps repeatable.
    start_time: datetime | None = None
    # Activity simulator rate in events per second of wall time; 0 = only on demand.
    activity_rate: float = 0.0


@dataclass
class Host:
    """One HTTPS host: a login host (production or sandbox) or an org's My Domain host."""

    label: str
    org_for_login: EmulatedOrg
    org: EmulatedOrg | None  # set for My Domain hosts, which also serve REST
    base_url: str = ""


class Emulator:
    """Runs the emulated Salesforce: login hosts, orgs, OAuth and REST over HTTPS on 127.0.0.1."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        seed = self.settings.seed
        rng = random.Random(f"emulator:{seed}")
        # The connected app's key and secret (and the users' passwords) derive from the seed, so
        # a restarted emulator with a state file keeps serving the tokens it issued. They guard
        # nothing but this local emulator.
        self.client_id = "3MVG9" + "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._")
            for _ in range(80)
        )
        self.client_secret = (
            hashlib.sha256(f"cora-emulator-secret:{seed}".encode()).hexdigest().upper()
        )
        start = self.settings.start_time
        self.production = self._build_org("Cora Demo", False, "Hu", rng, start)
        self.sandbox = self._build_org("Cora Demo Sandbox", True, "8N", rng, start)
        self._temp_dir: str | None = None
        if self.settings.data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="cora-emulator-")
            self.data_dir = Path(self._temp_dir)
        else:
            self.data_dir = Path(self.settings.data_dir)
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_keys()
        self.oauth = OAuthServer(self)
        self.rest = {org.org_id: RestApi(org, self.oauth) for org in self.orgs}
        self.admin_http = AdminHttp(self)
        self._servers: list[TlsHttpServer] = []
        self.login_url = ""
        self.sandbox_login_url = ""
        self._hosts: dict[str, Host] = {}
        for org in self.orgs:
            org.simulator = ActivitySimulator(org, seed)
        if self.settings.state_file is not None and Path(self.settings.state_file).exists():
            from .state import load_state

            load_state(self, Path(self.settings.state_file))
        else:
            seed_org(self.production, seed, self.settings.sizes)
            sandbox_sizes = self.settings.sandbox_sizes
            seed_org(
                self.sandbox, seed, self.settings.sizes if sandbox_sizes is None else sandbox_sizes
            )

    # ---- construction

    def _build_org(
        self, name: str, is_sandbox: bool, pod: str, rng: random.Random, start: datetime | None
    ) -> EmulatedOrg:
        org_id = to_id18("00D" + pod + base62(rng.randrange(62**6, 62**7), 10))
        clock = OrgClock(start)
        org = EmulatedOrg(name, org_id, is_sandbox, pod, self.settings.daily_api_limit, clock)
        suffix = ".devsandbox" if is_sandbox else ""
        secret = hashlib.sha256(f"{self.settings.seed}:{name}".encode()).hexdigest()[:10]
        people = [
            ("admin", "Avery", "Admin", True),
            ("integration", "Integration", "User", True),
            ("analyst", "Ana", "Lyst", False),
        ]
        for login, first, last, preauthorized in people:
            user_id = org.ids.new_id("005")
            username = f"{login}@cora-demo.example.com{suffix}"
            org.users.append(
                OrgUser(
                    user_id,
                    username,
                    f"Pw-{login}-{secret}",
                    first,
                    last,
                    f"{login}@cora-demo.example.com",
                    preauthorized,
                )
            )
        users, org.users = org.users, []
        for user in users:
            org.register_user(user)
        org.register_organization()
        return org

    def _write_keys(self) -> None:
        """Create the CA, server certificate and JWT key pair, reusing files in ``data_dir``.

        Reuse keeps the CA and the connected app's certificate stable across restarts of an
        emulator with a fixed ``data_dir``, so clients configured with those files keep working.
        """
        ca_path = self.data_dir / "emulator-ca.pem"
        ca_key_path = self.data_dir / "emulator-ca-key.pem"
        if ca_path.exists() and ca_key_path.exists():
            ca = trustme.CA.from_pem(ca_path.read_bytes(), ca_key_path.read_bytes())
        else:
            ca = trustme.CA(organization_name="Cora Salesforce Emulator")
            ca.cert_pem.write_to_path(str(ca_path))
            ca.private_key_pem.write_to_path(str(ca_key_path))
            ca_key_path.chmod(0o600)
        self.ca_file = str(ca_path)
        server_cert = ca.issue_cert("127.0.0.1", "localhost")
        self._ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(self._ssl_context)

        # The connected app's registered certificate, for the JWT bearer flow.
        key_path = self.data_dir / "jwt-private-key.pem"
        cert_path = self.data_dir / "jwt-certificate.pem"
        if key_path.exists() and cert_path.exists():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        else:
            jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cora-emulator-jwt")])
            now = datetime.now(UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(jwt_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=3650))
                .sign(jwt_key, hashes.SHA256())
            )
            key_path.write_bytes(
                jwt_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            key_path.chmod(0o600)
            cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.jwt_private_key_file = str(key_path)
        self.jwt_certificate_file = str(cert_path)
        self.jwt_public_key_pem = certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

        # The key that signs id_tokens, published at /id/keys.
        signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_key_pem = signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signing_key_id = "254"
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            signing_key.public_key(), as_dict=True
        )
        jwk.update({"kid": self.signing_key_id, "alg": "RS256", "use": "sig"})
        self.signing_jwk = jwk

    # ---- lookups

    @property
    def orgs(self) -> tuple[EmulatedOrg, EmulatedOrg]:
        return (self.production, self.sandbox)

    def org_by_id(self, org_id: str) -> EmulatedOrg:
        for org in self.orgs:
            if org.org_id == org_id or org.org_id15 == org_id[:15]:
                return org
        raise KeyError(f"no emulated org has id {org_id}")

    def login_url_for(self, org: EmulatedOrg) -> str:
        return self.sandbox_login_url if org.is_sandbox else self.login_url

    # ---- lifecycle

    def start(self) -> Emulator:
        """Listen on the four HTTPS ports and start serving; return self."""
        if self._servers:
            return self

        ports = self.settings.ports
        roles = [
            ("login", Host("login", self.production, None)),
            ("sandbox_login", Host("sandbox_login", self.sandbox, None)),
            ("production", Host("production", self.production, self.production)),
            ("sandbox", Host("sandbox", self.sandbox, self.sandbox)),
        ]
        for role, host in roles:
            port = int(ports.get(role, 0))
            try:
                server = TlsHttpServer(
                    self.settings.host,
                    port,
                    self._ssl_context,
                    self._dispatcher(host),
                    role,
                    clock=host.org_for_login.clock.now,
                )
            except OSError as error:
                for started in self._servers:
                    started.server_close()
                self._servers.clear()
                raise OSError(
                    f"cannot listen on {self.settings.host}:{port} for the {role} host "
                    f"({error}); choose a free port in EmulatorSettings.ports or 0 for any"
                ) from error
            host.base_url = f"https://{self.settings.host}:{server.port}"
            self._servers.append(server)
            self._hosts[role] = host

        self.login_url = self._hosts["login"].base_url
        self.sandbox_login_url = self._hosts["sandbox_login"].base_url
        self.production.instance_url = self._hosts["production"].base_url
        self.sandbox.instance_url = self._hosts["sandbox"].base_url
        for server in self._servers:
            server.start()

        for org in self.orgs:
            if self.settings.activity_rate > 0 and org.simulator is not None:
                org.simulator.start_background(self.settings.activity_rate)
        logger.info(
            "Salesforce emulator started: login %s, sandbox login %s, production %s, sandbox %s",
            self.login_url,
            self.sandbox_login_url,
            self.production.instance_url,
            self.sandbox.instance_url,
        )
        return self

    def stop(self) -> None:
        """Save the state file (when configured), stop every server and join every thread."""
        for org in self.orgs:
            if org.simulator is not None:
                org.simulator.stop_background()
        if self.settings.state_file is not None:
            self.save()
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        logger.info("Salesforce emulator stopped")

    def save(self) -> None:
        """Write the state file atomically; a no-op when ``state_file`` is not set."""
        if self.settings.state_file is None:
            return
        from .state import save_state

        save_state(self, Path(self.settings.state_file))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- dispatch

    def _dispatcher(self, host: Host) -> Callable[[Request], Response]:
        def dispatch(request: Request) -> Response:
            return self.dispatch(host, request)

        return dispatch

    def dispatch(self, host: Host, request: Request) -> Response:
        path = request.path
        oauth = self.oauth
        if path.startswith("/services/oauth2/"):
            endpoint = path[len("/services/oauth2/") :].rstrip("/")
            if endpoint == "authorize":
                return oauth.authorize(request, host)
            if endpoint == "token" and request.method == "POST":
                return oauth.token(request, host)
            if endpoint == "revoke":
                return oauth.revoke(request)
            if endpoint == "userinfo":
                return oauth.userinfo(request, host)
            return rest_error(404, "NOT_FOUND", "The requested resource does not exist")
        if path == "/.well-known/openid-configuration":
            return oauth.discovery(host)
        if path == "/id/keys":
            return oauth.jwks()
        if path == "/setup/secur/RemoteAccessErrorPage.apexp":
            return oauth.error_page(request)
        match = _ID_URL.match(path)
        if match:
            return oauth.identity(request, match.group(1), match.group(2))
        if host.org is not None:
            if path.startswith("/services/data"):
                return self.rest[host.org.org_id].handle(request)
            if path.startswith("/__emulator/"):
                return self.admin_http.handle(host.org, request)
        return rest_error(404, "NOT_FOUND", "The requested resource does not exist")
