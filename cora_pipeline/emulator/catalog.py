"""The sObject types of a fresh emulated org, modelled on real describe results."""

from __future__ import annotations

from typing import Any

from .schema import ChildRelationship, FieldDef, ObjectDef

INVOICE_TOTAL_FORMULA = "Amount__c * (1 + BLANKVALUE(Tax_Rate__c, 0) / 100)"
# Depends on TODAY(), so its value moves when the org's clock crosses midnight even though
# nothing writes the record and SystemModstamp stays put.
DAYS_OUTSTANDING_FORMULA = "IF(Paid__c, 0, TODAY() - Invoice_Date__c)"


def _system_fields(owner_polymorphic: bool = False, owner: bool = True) -> list[FieldDef]:
    fields = [
        FieldDef(
            "Id",
            "id",
            "Record ID",
            length=18,
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            "IsDeleted", "boolean", "Deleted", nillable=False, createable=False, updateable=False
        ),
    ]
    if owner:
        fields.append(
            FieldDef(
                "OwnerId",
                "reference",
                "Owner ID",
                length=18,
                nillable=False,
                reference_to=("Group", "User") if owner_polymorphic else ("User",),
                relationship_name="Owner",
                polymorphic=owner_polymorphic,
                defaulted_on_create=True,
            )
        )
    fields += [
        FieldDef(
            "CreatedDate",
            "datetime",
            "Created Date",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            length=18,
            nillable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            length=18,
            nillable=False,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            "SystemModstamp",
            "datetime",
            "System Modstamp",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted_on_create=True,
        ),
    ]
    return fields


def _address(prefix: str, label: str) -> list[FieldDef]:
    compound = f"{prefix}Address"
    return [
        FieldDef(
            f"{prefix}Street",
            "textarea",
            f"{label} Street",
            length=255,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}City", "string", f"{label} City", length=40, compound_field_name=compound
        ),
        FieldDef(
            f"{prefix}State",
            "string",
            f"{label} State/Province",
            length=80,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}PostalCode",
            "string",
            f"{label} Zip/Postal Code",
            length=20,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}Country",
            "string",
            f"{label} Country",
            length=80,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}Latitude",
            "double",
            f"{label} Latitude",
            precision=18,
            scale=15,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}Longitude",
            "double",
            f"{label} Longitude",
            precision=18,
            scale=15,
            compound_field_name=compound,
        ),
        FieldDef(
            f"{prefix}GeocodeAccuracy",
            "picklist",
            f"{label} Geocode Accuracy",
            length=40,
            compound_field_name=compound,
            picklist=(
                "Address",
                "NearAddress",
                "Block",
                "Street",
                "ExtendedZip",
                "Zip",
                "Neighborhood",
                "City",
                "County",
                "State",
                "Unknown",
            ),
        ),
        FieldDef(compound, "address", f"{label} Address", createable=False, updateable=False),
    ]


def _object(
    name: str, label: str, plural: str, prefix: str, fields: list[FieldDef], **flags: Any
) -> ObjectDef:
    return ObjectDef(name, label, plural, prefix, fields={f.name: f for f in fields}, **flags)


INDUSTRIES = (
    "Agriculture",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Finance",
    "Healthcare",
    "Insurance",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Transportation",
    "Utilities",
    "Other",
)
ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
CASE_PRIORITIES = ("High", "Medium", "Low")
CASE_ORIGINS = ("Phone", "Email", "Web")
INVOICE_STATUSES = ("Draft", "Sent", "Paid", "Overdue", "Void")
INVOICE_TAGS = ("Priority", "Disputed", "Recurring", "Partner", "Export", "Late Fee")


def build_catalog() -> dict[str, ObjectDef]:
    """Return fresh, independent object definitions for one org."""
    user = _object(
        "User",
        "User",
        "Users",
        "005",
        [
            *_system_fields(owner=False),
            FieldDef("Username", "string", "Username", length=80, nillable=False, unique=True),
            FieldDef("FirstName", "string", "First Name", length=40),
            FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
            FieldDef(
                "Name",
                "string",
                "Full Name",
                length=121,
                nillable=False,
                name_field=True,
                createable=False,
                updateable=False,
            ),
            FieldDef("Email", "email", "Email", length=128, nillable=False),
            FieldDef("Alias", "string", "Alias", length=8, nillable=False),
            FieldDef("IsActive", "boolean", "Active", nillable=False),
            FieldDef(
                "UserType",
                "picklist",
                "User Type",
                length=40,
                createable=False,
                updateable=False,
                picklist=("Standard", "AutomatedProcess"),
            ),
        ],
        deletable=False,
        undeletable=False,
    )
    organization = _object(
        "Organization",
        "Organization",
        "Organizations",
        "00D",
        [
            FieldDef(
                "Id",
                "id",
                "Organization ID",
                length=18,
                nillable=False,
                createable=False,
                updateable=False,
            ),
            FieldDef("Name", "string", "Name", length=80, nillable=False, name_field=True),
            FieldDef(
                "IsSandbox",
                "boolean",
                "Is Sandbox",
                nillable=False,
                createable=False,
                updateable=False,
            ),
            FieldDef(
                "OrganizationType",
                "picklist",
                "Edition",
                length=40,
                createable=False,
                updateable=False,
                picklist=("Developer Edition", "Enterprise Edition"),
            ),
            FieldDef(
                "InstanceName",
                "string",
                "Instance Name",
                length=5,
                createable=False,
                updateable=False,
            ),
            FieldDef(
                "CreatedDate",
                "datetime",
                "Created Date",
                nillable=False,
                createable=False,
                updateable=False,
            ),
            FieldDef(
                "SystemModstamp",
                "datetime",
                "System Modstamp",
                nillable=False,
                createable=False,
                updateable=False,
            ),
        ],
        createable=False,
        deletable=False,
        undeletable=False,
        replicateable=False,
    )
    account = _object(
        "Account",
        "Account",
        "Accounts",
        "001",
        [
            *_system_fields(),
            FieldDef("Name", "string", "Account Name", length=255, nillable=False, name_field=True),
            FieldDef("Type", "picklist", "Account Type", length=255, picklist=ACCOUNT_TYPES),
            FieldDef(
                "ParentId",
                "reference",
                "Parent Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Parent",
            ),
            *_address("Billing", "Billing"),
            FieldDef("Phone", "phone", "Account Phone", length=40),
            FieldDef("Website", "url", "Website", length=255),
            FieldDef("Industry", "picklist", "Industry", length=255, picklist=INDUSTRIES),
            FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
            FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
            FieldDef(
                "Rating", "picklist", "Account Rating", length=255, picklist=("Hot", "Warm", "Cold")
            ),
            FieldDef("Description", "textarea", "Account Description", length=32000),
            FieldDef("Customer_Since__c", "date", "Customer Since", custom=True),
        ],
    )
    account.child_relationships = [
        ChildRelationship("Account", "ParentId", "ChildAccounts"),
        ChildRelationship("Case", "AccountId", "Cases"),
        ChildRelationship("Contact", "AccountId", "Contacts"),
        ChildRelationship("Invoice__c", "Account__c", "Invoices__r"),
        ChildRelationship("Opportunity", "AccountId", "Opportunities"),
    ]
    contact = _object(
        "Contact",
        "Contact",
        "Contacts",
        "003",
        [
            *_system_fields(),
            FieldDef(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            FieldDef(
                "Salutation",
                "picklist",
                "Salutation",
                length=40,
                picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx."),
            ),
            FieldDef("FirstName", "string", "First Name", length=40),
            FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
            FieldDef(
                "Name",
                "string",
                "Full Name",
                length=121,
                nillable=False,
                name_field=True,
                createable=False,
                updateable=False,
            ),
            *_address("Mailing", "Mailing"),
            FieldDef("Phone", "phone", "Business Phone", length=40),
            FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
            FieldDef("Email", "email", "Email", length=80),
            FieldDef("Title", "string", "Title", length=128),
            FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
            FieldDef("Birthdate", "date", "Birthdate"),
            FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
            FieldDef("Description", "textarea", "Contact Description", length=32000),
        ],
    )
    contact.child_relationships = [ChildRelationship("Case", "ContactId", "Cases")]
    opportunity = _object(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        [
            *_system_fields(),
            FieldDef(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            FieldDef("Name", "string", "Name", length=120, nillable=False, name_field=True),
            FieldDef("Description", "textarea", "Description", length=32000),
            FieldDef("StageName", "picklist", "Stage", length=255, nillable=False, picklist=STAGES),
            FieldDef("Amount", "currency", "Amount", precision=18, scale=2),
            FieldDef("Probability", "percent", "Probability (%)", precision=3, scale=0),
            FieldDef("CloseDate", "date", "Close Date", nillable=False),
            FieldDef(
                "Type",
                "picklist",
                "Opportunity Type",
                length=255,
                picklist=(
                    "Existing Customer - Upgrade",
                    "Existing Customer - Replacement",
                    "Existing Customer - Downgrade",
                    "New Customer",
                ),
            ),
            FieldDef("NextStep", "string", "Next Step", length=255),
            FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
            FieldDef(
                "IsClosed", "boolean", "Closed", nillable=False, createable=False, updateable=False
            ),
            FieldDef("IsWon", "boolean", "Won", nillable=False, createable=False, updateable=False),
            FieldDef(
                "ForecastCategoryName",
                "picklist",
                "Forecast Category",
                length=255,
                picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
            ),
        ],
    )
    opportunity.child_relationships = [
        ChildRelationship("Invoice__c", "Opportunity__c", "Invoices__r")
    ]
    case = _object(
        "Case",
        "Case",
        "Cases",
        "500",
        [
            *_system_fields(owner_polymorphic=True),
            FieldDef(
                "CaseNumber",
                "string",
                "Case Number",
                length=30,
                nillable=False,
                name_field=True,
                auto_number=True,
                createable=False,
                updateable=False,
            ),
            FieldDef(
                "ContactId",
                "reference",
                "Contact ID",
                length=18,
                reference_to=("Contact",),
                relationship_name="Contact",
            ),
            FieldDef(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            FieldDef("SuppliedEmail", "email", "Web Email", length=80),
            FieldDef(
                "Type",
                "picklist",
                "Case Type",
                length=255,
                picklist=("Mechanical", "Electrical", "Electronic", "Structural", "Other"),
            ),
            FieldDef("Status", "picklist", "Status", length=255, picklist=CASE_STATUSES),
            FieldDef(
                "Reason",
                "picklist",
                "Case Reason",
                length=255,
                picklist=(
                    "Installation",
                    "Equipment Complexity",
                    "Performance",
                    "Breakdown",
                    "Equipment Design",
                    "Feedback",
                    "Other",
                ),
            ),
            FieldDef("Origin", "picklist", "Case Origin", length=255, picklist=CASE_ORIGINS),
            FieldDef("Subject", "string", "Subject", length=255),
            FieldDef("Priority", "picklist", "Priority", length=255, picklist=CASE_PRIORITIES),
            FieldDef("Description", "textarea", "Description", length=32000),
            FieldDef(
                "IsClosed", "boolean", "Closed", nillable=False, createable=False, updateable=False
            ),
            FieldDef("ClosedDate", "datetime", "Closed Date", createable=False, updateable=False),
            FieldDef("IsEscalated", "boolean", "Escalated", nillable=False),
        ],
    )
    invoice = _object(
        "Invoice__c",
        "Invoice",
        "Invoices",
        "a01",
        [
            *_system_fields(owner_polymorphic=True),
            FieldDef(
                "Name",
                "string",
                "Invoice Number",
                length=80,
                nillable=False,
                name_field=True,
                auto_number=True,
                createable=False,
                updateable=False,
            ),
            FieldDef(
                "Account__c",
                "reference",
                "Account",
                length=18,
                custom=True,
                reference_to=("Account",),
                relationship_name="Account__r",
            ),
            FieldDef(
                "Opportunity__c",
                "reference",
                "Opportunity",
                length=18,
                custom=True,
                reference_to=("Opportunity",),
                relationship_name="Opportunity__r",
            ),
            FieldDef(
                "Status__c",
                "picklist",
                "Status",
                length=255,
                custom=True,
                picklist=INVOICE_STATUSES,
            ),
            FieldDef("Amount__c", "currency", "Amount", precision=16, scale=2, custom=True),
            FieldDef("Tax_Rate__c", "percent", "Tax Rate", precision=5, scale=2, custom=True),
            FieldDef(
                "Total__c",
                "currency",
                "Total",
                precision=18,
                scale=2,
                custom=True,
                formula=INVOICE_TOTAL_FORMULA,
            ),
            FieldDef("Invoice_Date__c", "date", "Invoice Date", custom=True),
            FieldDef("Due_Date__c", "date", "Due Date", custom=True),
            FieldDef(
                "Days_Outstanding__c",
                "double",
                "Days Outstanding",
                precision=18,
                scale=0,
                custom=True,
                formula=DAYS_OUTSTANDING_FORMULA,
            ),
            FieldDef("Paid__c", "boolean", "Paid", nillable=False, custom=True),
            FieldDef("Paid_At__c", "datetime", "Paid At", custom=True),
            FieldDef("Line_Count__c", "double", "Line Count", precision=18, scale=0, custom=True),
            FieldDef(
                "Exchange_Rate__c", "double", "Exchange Rate", precision=12, scale=6, custom=True
            ),
            FieldDef(
                "Tags__c",
                "multipicklist",
                "Tags",
                length=4099,
                precision=4,
                custom=True,
                picklist=INVOICE_TAGS,
            ),
            FieldDef("Contact_Email__c", "email", "Billing Contact Email", length=80, custom=True),
            FieldDef("Billing_Phone__c", "phone", "Billing Phone", length=40, custom=True),
            FieldDef("Portal_Url__c", "url", "Portal URL", length=255, custom=True),
            FieldDef(
                "External_Ref__c",
                "string",
                "External Reference",
                length=64,
                custom=True,
                external_id=True,
                unique=True,
            ),
            FieldDef("Notes__c", "textarea", "Notes", length=131072, custom=True),
        ],
        custom=True,
    )
    return {o.name: o for o in (user, organization, account, contact, opportunity, case, invoice)}


# Objects the seeded data and the activity simulator fill, in dependency order.
DATA_OBJECTS = ("Account", "Contact", "Opportunity", "Case", "Invoice__c")
DEFAULT_SIZES = {"Account": 200, "Contact": 400, "Opportunity": 200, "Case": 200, "Invoice__c": 150}
