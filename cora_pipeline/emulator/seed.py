"""Deterministic seeded data for an emulated org, including values that break naive code."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .catalog import (
    ACCOUNT_TYPES,
    CASE_ORIGINS,
    CASE_PRIORITIES,
    CASE_STATUSES,
    DATA_OBJECTS,
    INDUSTRIES,
    INVOICE_STATUSES,
    INVOICE_TAGS,
    LEAD_SOURCES,
    STAGES,
)
from .clock import format_datetime
from .org import EmulatedOrg, Record, derive_fields

FIRST_NAMES = (
    "Ada",
    "Grace",
    "Linus",
    "Zoë",
    "José",
    "Amélie",
    "Søren",
    "Łukasz",
    "Nguyễn",
    "Björk",
    "Olúwaseun",
    "Mei",
    "Ayşe",
    "Ørjan",
    "Siobhán",
    "Dmitri",
    "Ana",
    "Kenji",
    "Priya",
    "Omar",
    "Fatima",
    "Liam",
    "Chloé",
    "Mateo",
    None,
)
LAST_NAMES = (
    "O'Brien",
    "Müller",
    "García",
    "Nakamura",
    "Smith",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Ivanova",
    "Johansson",
    "Okafor",
    "李",
    "Da Silva",
    "Van der Berg",
    "MacLeod",
    "Schrödinger",
    "Núñez",
    "D'Angelo",
    "Øster",
    "Patel",
    "Cohen",
    "Al-Sayed",
)
COMPANY_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Müller & Söhne",
    "Café Naïve",
    "Nordlys",
    "東京 Trading",
    "Blue Sky",
    "Oceanic",
    "Wonka",
    "Gringotts",
)
COMPANY_SUFFIXES = ("Inc.", "GmbH", "Ltd", "S.A.", "LLC", "AG", "K.K.", "& Co.", "Holdings")
CITIES = (
    ("San Francisco", "CA", "94105", "USA"),
    ("New York", "NY", "10001", "USA"),
    ("Berlin", "BE", "10115", "Germany"),
    ("München", "BY", "80331", "Germany"),
    ("Paris", None, "75001", "France"),
    ("Tokyo", None, "100-0001", "Japan"),
    ("São Paulo", "SP", "01000-000", "Brazil"),
    ("Zürich", "ZH", "8001", "Switzerland"),
    ("Toronto", "ON", "M5H 2N2", "Canada"),
    ("Sydney", "NSW", "2000", "Australia"),
)
STREETS = (
    "1 Market St",
    "221B Baker Street",
    "Hauptstraße 5",
    "10 Rue de Rivoli",
    "1-1 Chiyoda",
    "Av. Paulista, 1000",
    "Bahnhofstrasse 1\nGebäude B",
    "500 King St W",
)
TRICKY_TEXTS = (
    "Emoji 🎉🚀 and flags 🇩🇪🇯🇵",
    "Line one\nLine two\r\nLine three",
    "Quotes \"double\" and 'single' and `back`",
    "NUL inside\x00the value",
    "Tabs\tand\\backslashes\\",
    "Right-to-left: שלום עולם مرحبا",
    "Zero-width\u200bjoiner and combining e\u0301",
    "<script>alert('x')</script> & ampersands",
    "   leading and trailing spaces   ",
)
LONG_TEXT_LENGTH = 131_072


def _maybe(rng: random.Random, value: object, null_rate: float = 0.15) -> object:
    return None if rng.random() < null_rate else value


def _stamps(rng: random.Random, now: datetime) -> tuple[str, str, str]:
    """Return CreatedDate <= LastModifiedDate <= SystemModstamp, all before ``now``."""
    created = now - timedelta(seconds=rng.randint(3 * 86400, 400 * 86400))
    modified = created + timedelta(
        seconds=int(rng.random() * (now - created).total_seconds() * 0.8)
    )
    modstamp = modified
    if rng.random() < 0.2:
        # A background process touched the record after the last user edit.
        modstamp = modified + timedelta(seconds=rng.randint(1, 86400))
    return format_datetime(created), format_datetime(modified), format_datetime(modstamp)


class _Seeder:
    def __init__(self, org: EmulatedOrg, seed: int) -> None:
        self.org = org
        self.rng = random.Random(f"{seed}:{org.name}")
        self.now = org.clock.now()
        self.owners = [u.user_id for u in org.users]

    def base(self, object_name: str) -> Record:
        org = self.org
        definition = org.schema[object_name]
        created, modified, modstamp = _stamps(self.rng, self.now)
        record: Record = {
            f.name: None
            for f in definition.fields.values()
            if not f.calculated and not f.is_compound
        }
        owner = self.rng.choice(self.owners)
        record.update(
            {
                "Id": org.ids.new_id(definition.key_prefix),
                "IsDeleted": False,
                "OwnerId": owner,
                "CreatedDate": created,
                "CreatedById": owner,
                "LastModifiedDate": modified,
                "LastModifiedById": owner,
                "SystemModstamp": modstamp,
            }
        )
        return record

    def store(self, object_name: str, record: Record) -> None:
        derive_fields(object_name, record, record["SystemModstamp"])
        self.org.tables[object_name][record["Id"]] = record

    def address(self, record: Record, prefix: str) -> None:
        rng = self.rng
        if rng.random() < 0.1:
            return
        city, state, postal, country = rng.choice(CITIES)
        record[f"{prefix}Street"] = rng.choice(STREETS)
        record[f"{prefix}City"] = city
        record[f"{prefix}State"] = state
        record[f"{prefix}PostalCode"] = postal
        record[f"{prefix}Country"] = country
        if rng.random() < 0.5:
            record[f"{prefix}Latitude"] = round(rng.uniform(-60, 70), 6)
            record[f"{prefix}Longitude"] = round(rng.uniform(-170, 170), 6)
            record[f"{prefix}GeocodeAccuracy"] = rng.choice(("Address", "Street", "Zip", "City"))

    def accounts(self, count: int) -> list[str]:
        rng = self.rng
        ids: list[str] = []
        for index in range(count):
            record = self.base("Account")
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)} {index + 1}"
            record.update(
                {
                    "Name": name,
                    "Type": _maybe(rng, rng.choice(ACCOUNT_TYPES)),
                    "ParentId": rng.choice(ids) if ids and rng.random() < 0.1 else None,
                    "Phone": _maybe(
                        rng, f"+1 (555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
                    ),
                    "Website": _maybe(rng, f"https://www.example.com/{index + 1}"),
                    "Industry": _maybe(rng, rng.choice(INDUSTRIES)),
                    "AnnualRevenue": _maybe(rng, float(rng.randint(1, 5000) * 10_000)),
                    "NumberOfEmployees": _maybe(rng, rng.randint(1, 250_000)),
                    "Rating": _maybe(rng, rng.choice(("Hot", "Warm", "Cold")), 0.4),
                    "Description": _maybe(rng, rng.choice(TRICKY_TEXTS), 0.5),
                    "Customer_Since__c": _maybe(
                        rng, (self.now.date() - timedelta(days=rng.randint(0, 3650))).isoformat()
                    ),
                }
            )
            self.address(record, "Billing")
            if index < len(TRICKY_TEXTS):
                # The first accounts carry every awkward value, so small orgs have them too.
                record["Description"] = TRICKY_TEXTS[index]
            self.store("Account", record)
            ids.append(record["Id"])
        return ids

    def contacts(self, count: int, accounts: list[str]) -> list[tuple[str, str | None]]:
        rng = self.rng
        result: list[tuple[str, str | None]] = []
        for index in range(count):
            record = self.base("Contact")
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            account = rng.choice(accounts) if accounts and rng.random() < 0.9 else None
            local = f"{(first or 'x').lower()}.{index}"
            record.update(
                {
                    "AccountId": account,
                    "Salutation": _maybe(rng, rng.choice(("Mr.", "Ms.", "Dr.", "Mx.")), 0.5),
                    "FirstName": first,
                    "LastName": last,
                    "Phone": _maybe(
                        rng, f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
                    ),
                    "MobilePhone": _maybe(rng, f"+49 151 {rng.randint(1000000, 9999999)}", 0.4),
                    "Email": _maybe(rng, f"{local}@example.org".encode("ascii", "ignore").decode()),
                    "Title": _maybe(
                        rng,
                        rng.choice(
                            ("CEO", "CTO", "VP Sales", "Buyer", "Engineer", "Directeur Général")
                        ),
                    ),
                    "LeadSource": _maybe(rng, rng.choice(LEAD_SOURCES)),
                    "Birthdate": _maybe(
                        rng,
                        (self.now.date() - timedelta(days=rng.randint(7000, 25000))).isoformat(),
                        0.5,
                    ),
                    "HasOptedOutOfEmail": rng.random() < 0.1,
                    "Description": _maybe(rng, rng.choice(TRICKY_TEXTS), 0.7),
                }
            )
            self.address(record, "Mailing")
            self.store("Contact", record)
            result.append((record["Id"], account))
        return result

    def opportunities(self, count: int, accounts: list[str]) -> list[tuple[str, str | None]]:
        rng = self.rng
        result: list[tuple[str, str | None]] = []
        for index in range(count):
            record = self.base("Opportunity")
            stage = rng.choice(STAGES)
            account = rng.choice(accounts) if accounts else None
            record.update(
                {
                    "AccountId": account,
                    "Name": f"Deal {index + 1}: {rng.choice(COMPANY_WORDS)} renewal",
                    "StageName": stage,
                    "Amount": _maybe(rng, round(rng.uniform(500, 2_000_000), 2)),
                    "Probability": float(rng.choice((0, 10, 20, 50, 75, 90, 100))),
                    "CloseDate": (
                        self.now.date() + timedelta(days=rng.randint(-300, 200))
                    ).isoformat(),
                    "Type": _maybe(rng, "New Customer"),
                    "NextStep": _maybe(
                        rng, rng.choice(("Call back", "Send quote", "Demo 🎬")), 0.5
                    ),
                    "LeadSource": _maybe(rng, rng.choice(LEAD_SOURCES)),
                    "ForecastCategoryName": rng.choice(
                        ("Pipeline", "Best Case", "Commit", "Closed")
                    ),
                    "Description": _maybe(rng, rng.choice(TRICKY_TEXTS), 0.7),
                }
            )
            self.store("Opportunity", record)
            result.append((record["Id"], account))
        return result

    def cases(self, count: int, contacts: list[tuple[str, str | None]]) -> None:
        rng = self.rng
        for _ in range(count):
            record = self.base("Case")
            contact, account = rng.choice(contacts) if contacts else (None, None)
            self.org.auto_numbers["Case"] = self.org.auto_numbers.get("Case", 0) + 1
            record.update(
                {
                    "CaseNumber": f"{self.org.auto_numbers['Case']:08d}",
                    "ContactId": contact,
                    "AccountId": account,
                    "SuppliedEmail": _maybe(
                        rng, f"customer{rng.randint(1, 9999)}@example.net", 0.6
                    ),
                    "Type": _maybe(rng, rng.choice(("Mechanical", "Electrical", "Other"))),
                    "Status": rng.choice(CASE_STATUSES),
                    "Reason": _maybe(rng, rng.choice(("Installation", "Performance", "Feedback"))),
                    "Origin": rng.choice(CASE_ORIGINS),
                    "Subject": _maybe(
                        rng,
                        rng.choice(
                            ("Printer on fire 🔥", "Can't log in", 'Invoice "wrong"', "Réclamation")
                        ),
                    ),
                    "Priority": rng.choice(CASE_PRIORITIES),
                    "Description": _maybe(rng, rng.choice(TRICKY_TEXTS), 0.5),
                    "IsEscalated": rng.random() < 0.1,
                }
            )
            self.store("Case", record)

    def invoices(self, count: int, opportunities: list[tuple[str, str | None]]) -> None:
        rng = self.rng
        for index in range(count):
            record = self.base("Invoice__c")
            opportunity, account = rng.choice(opportunities) if opportunities else (None, None)
            invoice_day = self.now.date() - timedelta(days=rng.randint(0, 120))
            status = rng.choice(INVOICE_STATUSES)
            paid = status == "Paid"
            self.org.auto_numbers["Invoice__c"] = self.org.auto_numbers.get("Invoice__c", 0) + 1
            tags = sorted(rng.sample(INVOICE_TAGS, rng.randint(0, 3)), key=INVOICE_TAGS.index)
            record.update(
                {
                    "Name": f"INV-{self.org.auto_numbers['Invoice__c']:06d}",
                    "Account__c": account,
                    "Opportunity__c": opportunity,
                    "Status__c": status,
                    "Amount__c": _maybe(rng, round(rng.uniform(10, 250_000), 2), 0.05),
                    "Tax_Rate__c": _maybe(rng, rng.choice((0.0, 7.0, 7.7, 19.0, 20.0, 21.5))),
                    "Invoice_Date__c": invoice_day.isoformat(),
                    "Due_Date__c": (invoice_day + timedelta(days=30)).isoformat(),
                    "Paid__c": paid,
                    "Paid_At__c": format_datetime(
                        self.now - timedelta(days=rng.randint(0, 30), seconds=rng.randint(0, 86399))
                    )
                    if paid
                    else None,
                    "Line_Count__c": float(rng.randint(1, 40)),
                    "Exchange_Rate__c": _maybe(rng, round(rng.uniform(0.5, 1.8), 6), 0.3),
                    "Tags__c": ";".join(tags) or None,
                    "Contact_Email__c": _maybe(rng, f"billing{index}@example.com", 0.3),
                    "Billing_Phone__c": _maybe(
                        rng, f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)}"
                    ),
                    "Portal_Url__c": _maybe(
                        rng, f"https://billing.example.com/i/{index}?a=1&b=%20"
                    ),
                    "External_Ref__c": f"EXT-{self.org.org_id15[-4:]}-{index:07d}",
                    "Notes__c": _maybe(rng, rng.choice(TRICKY_TEXTS), 0.5),
                }
            )
            if index == 0:
                # The maximum long text area size, 131,072 characters, with multi-byte content.
                pattern = "Long note ✓ "
                record["Notes__c"] = (pattern * (LONG_TEXT_LENGTH // len(pattern) + 1))[
                    :LONG_TEXT_LENGTH
                ]
            self.store("Invoice__c", record)


def seed_org(org: EmulatedOrg, seed: int, sizes: dict[str, int]) -> None:
    """Fill ``org`` with ``sizes[object]`` records per data object, deterministically under ``seed``."""
    unknown = set(sizes) - set(DATA_OBJECTS)
    if unknown:
        raise ValueError(f"sizes names unknown objects {sorted(unknown)}; use {list(DATA_OBJECTS)}")
    seeder = _Seeder(org, seed)
    with org.lock:
        accounts = seeder.accounts(sizes.get("Account", 0))
        contacts = seeder.contacts(sizes.get("Contact", 0), accounts)
        opportunities = seeder.opportunities(sizes.get("Opportunity", 0), accounts)
        seeder.cases(sizes.get("Case", 0), contacts)
        seeder.invoices(sizes.get("Invoice__c", 0), opportunities)
