"""The activity simulator: a deterministic stream of the changes real users and systems make."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .catalog import (
    CASE_PRIORITIES,
    CASE_STATUSES,
    DATA_OBJECTS,
    INDUSTRIES,
    INVOICE_STATUSES,
    INVOICE_TAGS,
    STAGES,
)

if TYPE_CHECKING:
    from .org import EmulatedOrg

logger = logging.getLogger(__name__)

# Relative weights of the event kinds that run() and the background mode draw from.
EVENT_WEIGHTS = {
    "create": 25,
    "update": 40,
    "system_update": 12,
    "delete": 10,
    "undelete": 5,
    "hard_delete": 3,
}
# step("clock") moves the org clock forward by up to an hour; it is never drawn at random,
# because moving the clock ages tokens and locators, which callers should choose to do.
EVENT_KINDS = (*EVENT_WEIGHTS, "clock")


@dataclass(frozen=True)
class ActivityEvent:
    kind: str
    sobject: str
    record_id: str | None
    fields: tuple[str, ...] = ()


def _edits(rng: random.Random, org: EmulatedOrg) -> dict[str, Callable[[], dict[str, Any]]]:
    today = org.clock.today()
    return {
        "Account": lambda: rng.choice(
            [
                {"Phone": f"+1 (555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"},
                {"Industry": rng.choice(INDUSTRIES)},
                {"AnnualRevenue": float(rng.randint(1, 5000) * 10_000)},
                {"NumberOfEmployees": rng.randint(1, 250_000)},
                {"Rating": rng.choice(("Hot", "Warm", "Cold", None))},
                {
                    "Description": rng.choice(
                        ("Renewed 🎉", "Ligne 1\nLigne 2", None, 'He said "hi"')
                    )
                },
                {"BillingCity": rng.choice(("Köln", "Lyon", "Austin", "Kyōto"))},
            ]
        ),
        "Contact": lambda: rng.choice(
            [
                {"Title": rng.choice(("CFO", "Head of Data", "Analyst", None))},
                {"Phone": f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"},
                {"Email": f"moved{rng.randint(1, 99999)}@example.org"},
                {"HasOptedOutOfEmail": rng.random() < 0.5},
            ]
        ),
        "Opportunity": lambda: rng.choice(
            [
                {"StageName": rng.choice(STAGES)},
                {"Amount": round(rng.uniform(500, 2_000_000), 2)},
                {"Probability": float(rng.choice((10, 25, 50, 75, 90)))},
                {"NextStep": rng.choice(("Follow up", "Legal review", None))},
                {"CloseDate": (today + timedelta(days=rng.randint(-30, 120))).isoformat()},
            ]
        ),
        "Case": lambda: rng.choice(
            [
                {"Status": rng.choice(CASE_STATUSES)},
                {"Priority": rng.choice(CASE_PRIORITIES)},
                {"Subject": rng.choice(("Still broken", "Résolu?", "Escalation ⚠️"))},
                {"IsEscalated": rng.random() < 0.3},
            ]
        ),
        "Invoice__c": lambda: rng.choice(
            [
                {"Status__c": "Paid", "Paid__c": True},
                {"Status__c": rng.choice(INVOICE_STATUSES)},
                {"Amount__c": round(rng.uniform(10, 250_000), 2)},
                {"Tax_Rate__c": rng.choice((0.0, 7.0, 19.0, 20.0))},
                {"Tags__c": ";".join(sorted(rng.sample(INVOICE_TAGS, 2), key=INVOICE_TAGS.index))},
            ]
        ),
    }


class ActivitySimulator:
    """Creates, edits, deletes, undeletes, hard-deletes and system-updates records of one org.

    The sequence of events depends only on the seed and on the org's data, so two orgs seeded
    alike and stepped alike change alike.
    """

    def __init__(self, org: EmulatedOrg, seed: int) -> None:
        self.org = org
        self.rng = random.Random(f"simulator:{seed}:{org.name}")
        self.events_run = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def run(self, events: int) -> list[ActivityEvent]:
        """Perform ``events`` changes and return what was done."""
        return [self.step() for _ in range(events)]

    def step(self, kind: str | None = None, sobject: str | None = None) -> ActivityEvent:
        """Perform one change; ``kind`` and ``sobject`` pin the event kind and object."""
        rng = self.rng
        org = self.org
        admin = org.admin
        chosen_kind = kind or rng.choices(list(EVENT_WEIGHTS), list(EVENT_WEIGHTS.values()))[0]
        name = sobject or rng.choice(DATA_OBJECTS)
        if chosen_kind not in EVENT_KINDS:
            raise ValueError(f"unknown activity kind {chosen_kind!r}; use one of {EVENT_KINDS}")
        if name not in DATA_OBJECTS:
            raise ValueError(f"the simulator changes {DATA_OBJECTS}, not {name!r}")
        self.events_run += 1

        if chosen_kind == "clock":
            admin.advance_clock(rng.randint(1, 3600))
            return ActivityEvent("clock", name, None)

        with org.lock:
            live = [i for i, r in org.tables[name].items() if not r["IsDeleted"]]
            deleted = [i for i, r in org.tables[name].items() if r["IsDeleted"]]

        if chosen_kind == "create" or (not live and chosen_kind != "undelete"):
            record_id = admin.create(name, self._new_fields(name))
            return ActivityEvent("create", name, record_id)
        if chosen_kind == "update":
            record_id = rng.choice(live)
            fields = _edits(rng, org)[name]()
            admin.update(name, record_id, fields)
            return ActivityEvent("update", name, record_id, tuple(fields))
        if chosen_kind == "system_update":
            record_id = rng.choice(live)
            admin.system_update(name, record_id)
            return ActivityEvent("system_update", name, record_id)
        if chosen_kind == "delete":
            record_id = rng.choice(live)
            admin.delete(name, record_id)
            return ActivityEvent("delete", name, record_id)
        if chosen_kind == "undelete":
            if not deleted:
                return self.step("delete", name)
            record_id = rng.choice(deleted)
            admin.undelete(name, record_id)
            return ActivityEvent("undelete", name, record_id)
        if chosen_kind == "hard_delete":
            pool = deleted or live
            record_id = rng.choice(pool)
            admin.hard_delete(name, record_id)
            return ActivityEvent("hard_delete", name, record_id)
        raise AssertionError(f"unhandled activity kind {chosen_kind!r}")

    def _new_fields(self, name: str) -> dict[str, Any]:
        rng = self.rng
        org = self.org
        today = org.clock.today()
        accounts = [i for i, r in org.tables["Account"].items() if not r["IsDeleted"]]
        account = rng.choice(accounts) if accounts else None
        number = self.events_run
        if name == "Account":
            return {"Name": f"New Account {number} ✨", "Industry": rng.choice(INDUSTRIES)}
        if name == "Contact":
            return {"LastName": f"Newcomer-{number}", "FirstName": "Zoë", "AccountId": account}
        if name == "Opportunity":
            return {
                "Name": f"New Deal {number}",
                "StageName": "Prospecting",
                "CloseDate": (today + timedelta(days=60)).isoformat(),
                "AccountId": account,
            }
        if name == "Case":
            return {
                "Subject": f"New case {number}",
                "Status": "New",
                "Priority": "Medium",
                "Origin": "Web",
                "AccountId": account,
            }
        return {
            "Account__c": account,
            "Status__c": "Draft",
            "Amount__c": round(rng.uniform(10, 5000), 2),
            "Tax_Rate__c": 19.0,
            "Invoice_Date__c": today.isoformat(),
            "External_Ref__c": f"SIM-{org.org_id15[-4:]}-{number:07d}",
        }

    # ---- background mode

    def start_background(self, rate: float) -> None:
        """Run events at ``rate`` per second of wall time on a thread until stop_background()."""
        if self._thread is not None:
            return
        self._stop.clear()
        interval = 1.0 / rate

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.step()
                except Exception:
                    logger.exception("activity simulator step failed in org %s", self.org.name)

        self._thread = threading.Thread(target=loop, name=f"simulator-{self.org.name}", daemon=True)
        self._thread.start()

    def stop_background(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
