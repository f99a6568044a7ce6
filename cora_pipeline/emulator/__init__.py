"""A Salesforce emulator: OAuth 2.0 and the REST API over HTTPS on 127.0.0.1, with seeded orgs
that change over time, for the demo and for integration tests."""

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
