"""A Salesforce emulator: OAuth 2.0 and the REST API over HTTPS on 127.0.0.1, with seeded
production and sandbox orgs that change over time, for the demo and for integration tests.

Start one in-process and point unmodified clients at it::

    from cora_pipeline.emulator import Emulator, EmulatorSettings

    with Emulator(EmulatorSettings(seed=7, auto_approve=True)) as emu:
        emu.login_url, emu.sandbox_login_url   # login hosts (login/test.salesforce.com)
        emu.ca_file                            # PEM CA to trust (requests: verify=emu.ca_file)
        emu.client_id, emu.client_secret       # the registered connected app
        org = emu.production                   # or emu.sandbox
        org.instance_url                       # the org's My Domain host, which serves REST
        org.admin.update("Account", record_id, {"Phone": "1"}, by="system")
        org.admin.advance_clock(86_400)
        org.admin.faults.fail_next(2, status=401)
        org.simulator.run(100)

``requests`` lets REQUESTS_CA_BUNDLE in the environment override a session's ``verify``, so
sessions that talk to the emulator set ``trust_env = False`` (or pass ``verify=`` per call).

Tests and scripts outside the process use the ``/__emulator/...`` endpoints on each org host
(see ``admin_http.AdminHttp``), and ``cora emulator`` runs it from the command line.
"""

from .emulator import Emulator, EmulatorSettings, Host
from .faults import Fault, FaultPlan
from .org import AdminError, EmulatedOrg, OrgAdmin, OrgUser
from .simulator import ActivityEvent, ActivitySimulator

__all__ = [
    "ActivityEvent",
    "ActivitySimulator",
    "AdminError",
    "EmulatedOrg",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "FaultPlan",
    "Host",
    "OrgAdmin",
    "OrgUser",
]
