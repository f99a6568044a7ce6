"""Measure how many query-result records per second the emulator serves to simple-salesforce.

Starts an emulator on 127.0.0.1 with a seeded org, connects through the real OAuth flow
(auto-approve), then pages through ``SELECT <fields> FROM <object>`` with ``query_all_iter``
and prints records per second. Example:

    /work/venv/bin/python benchmarks/emulator_query.py --records 200000 --object Contact
"""

from __future__ import annotations

import argparse
import time

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from simple_salesforce import Salesforce

from cora_pipeline.emulator import Emulator, EmulatorSettings

CALLBACK = "http://127.0.0.1:1717/OauthRedirect"
FIELDS = {
    "Account": "Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, BillingAddress, "
    "Phone, Website, Description, CreatedDate, LastModifiedDate, SystemModstamp, Owner.Name",
    "Contact": "Id, FirstName, LastName, Name, Email, Phone, Title, AccountId, Account.Name, "
    "MailingCity, Birthdate, HasOptedOutOfEmail, CreatedDate, SystemModstamp",
    "Invoice__c": "Id, Name, Account__c, Status__c, Amount__c, Tax_Rate__c, Total__c, "
    "Invoice_Date__c, Days_Outstanding__c, Paid__c, Tags__c, SystemModstamp",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to seed and read")
    parser.add_argument("--object", choices=sorted(FIELDS), default="Contact")
    args = parser.parse_args()

    sizes = {"Account": min(args.records, 1000), args.object: args.records}
    started = time.perf_counter()
    settings = EmulatorSettings(seed=1, sizes=sizes, auto_approve=True)
    with Emulator(settings) as emulator:
        print(
            f"seeded {args.records} {args.object} records in {time.perf_counter() - started:.1f} s"
        )
        session = requests.Session()
        session.verify = emulator.ca_file
        session.trust_env = False
        client = OAuth2Session(
            emulator.client_id,
            emulator.client_secret,
            scope="api",
            redirect_uri=CALLBACK,
            code_challenge_method="S256",
        )
        client.verify = emulator.ca_file
        client.trust_env = False
        verifier = generate_token(48)
        url, _ = client.create_authorization_url(
            f"{emulator.login_url}/services/oauth2/authorize", code_verifier=verifier
        )
        location = session.get(url, allow_redirects=False).headers["Location"]
        token = client.fetch_token(
            f"{emulator.login_url}/services/oauth2/token",
            authorization_response=location,
            code_verifier=verifier,
        )
        sf = Salesforce(
            instance_url=token["instance_url"], session_id=token["access_token"], session=session
        )
        soql = f"SELECT {FIELDS[args.object]} FROM {args.object}"  # noqa: S608
        started = time.perf_counter()
        count = sum(1 for _ in sf.query_all_iter(soql))
        elapsed = time.perf_counter() - started
        print(
            f"read {count} records in {elapsed:.2f} s: {count / elapsed:,.0f} records/s "
            f"(client and server in one process)"
        )


if __name__ == "__main__":
    main()
