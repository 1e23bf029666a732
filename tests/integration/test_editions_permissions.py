"""What an org's edition and a user's permissions decide: OrganizationType, the daily allocations,
whether the REST API answers at all, and who may read /limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import SalesforceError, SalesforceRefusedRequest

from tests.sandbox_process import SandboxOrg

OrgFactory = Callable[..., SandboxOrg]
API_DISABLED_FOR_ORG = [
    {
        "message": "The REST API is not enabled for this Organization.",
        "errorCode": "API_DISABLED_FOR_ORG",
    }
]
LIMITS_REFUSED = [
    {"message": "limits resource is not enabled", "errorCode": "API_DISABLED_FOR_ORG"}
]


def organization_type(sf: Salesforce) -> str:
    records = sf.query("SELECT OrganizationType FROM Organization")["records"]
    assert len(records) == 1
    return str(records[0]["OrganizationType"])


def sobject(sf: Salesforce, name: str) -> SFType:
    """`sf.<name>`, typed."""
    return cast(SFType, getattr(sf, name))


def content(error: SalesforceError) -> Any:
    """The parsed JSON body simple-salesforce attached to an error."""
    body: Any = error.content
    return body


# ---------------------------------------------------------------- /limits


def test_limits_lists_the_daily_allocations_as_numbers_with_apps_nested(org: SandboxOrg) -> None:
    limits = org.salesforce("admin").limits()
    for name in (
        "DailyApiRequests",
        "DailyBulkApiBatches",
        "DailyBulkV2QueryJobs",
        "DailyAsyncApexExecutions",
        "DailyBulkV2QueryFileStorageMB",
        "DailyStreamingApiEvents",
        "DataStorageMB",
    ):
        entry = limits[name]
        assert type(entry["Max"]) is int and type(entry["Remaining"]) is int, name
        assert 0 <= entry["Remaining"] <= entry["Max"], name
    assert limits["DailyBulkApiBatches"]["Max"] == 15_000
    assert limits["DailyBulkV2QueryJobs"]["Max"] == 10_000
    assert limits["DailyAsyncApexExecutions"]["Max"] == 250_000
    daily = limits["DailyApiRequests"]
    assert daily["Max"] == 120_000  # enterprise with 20 licenses
    for app in ("quotasync", "Marketing Cloud", "Data Loader"):
        assert daily[app] == {"Max": 0, "Remaining": 0}
        assert app in limits["DailyBulkApiBatches"]
    # Nested entries are the apps; nothing else is invented.
    assert set(daily) == {"Max", "Remaining", "quotasync", "Marketing Cloud", "Data Loader"}


def test_limits_without_view_setup_is_refused_but_data_calls_work(org: SandboxOrg) -> None:
    sf = org.salesforce("sync")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.limits()
    assert refused.value.status == 403
    assert content(refused.value) == LIMITS_REFUSED
    assert organization_type(sf) == "Enterprise Edition"
    # The usage header is the live figure such a user can read.
    assert sf.api_usage["api-usage"].total == 120_000


# ---------------------------------------------------------------- editions


@pytest.mark.parametrize(
    ("args", "organization", "daily_requests", "async_apex"),
    [
        (("--edition", "enterprise", "--licenses", "20"), "Enterprise Edition", 120_000, 250_000),
        (
            ("--edition", "enterprise", "--licenses", "2000"),
            "Enterprise Edition",
            2_100_000,
            400_000,
        ),
        (("--edition", "unlimited", "--licenses", "10"), "Unlimited Edition", 150_000, 250_000),
        (("--edition", "performance", "--licenses", "10"), "Unlimited Edition", 150_000, 250_000),
        (("--edition", "developer", "--licenses", "2"), "Developer Edition", 15_000, 250_000),
        (
            ("--edition", "professional-api", "--licenses", "5"),
            "Professional Edition",
            105_000,
            250_000,
        ),
        (("--edition", "group-api", "--licenses", "5"), "Team Edition", 105_000, 250_000),
        (
            ("--edition", "developer", "--daily-api-requests", "50"),
            "Developer Edition",
            50,
            250_000,
        ),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else None,
)
def test_each_edition_reports_its_type_and_allocations(
    new_org: OrgFactory,
    args: tuple[str, ...],
    organization: str,
    daily_requests: int,
    async_apex: int,
) -> None:
    org = new_org(*args)
    sf = org.salesforce("admin")
    assert organization_type(sf) == organization
    assert sf.api_usage["api-usage"].used == 1
    assert sf.api_usage["api-usage"].total == daily_requests
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == daily_requests
    assert limits["DailyApiRequests"]["Remaining"] == daily_requests - 2
    assert limits["DailyAsyncApexExecutions"]["Max"] == async_apex
    assert org.config["organization_type"] == organization


@pytest.mark.parametrize(
    ("edition", "organization"),
    [
        ("professional", "Professional Edition"),
        ("group", "Team Edition"),
        ("contact-manager", "Contact Manager Edition"),
    ],
)
def test_editions_without_the_api_let_users_log_in_but_refuse_rest_calls(
    new_org: OrgFactory, edition: str, organization: str
) -> None:
    org = new_org("--edition", edition)
    sf = org.salesforce("admin")  # login itself works
    for call in (lambda: sf.query("SELECT Id FROM Organization"), sf.limits, sf.describe):
        with pytest.raises(SalesforceRefusedRequest) as refused:
            call()
        assert refused.value.status == 403
        assert content(refused.value) == API_DISABLED_FOR_ORG
    # The org record still says what it is, as the admin sees it in Setup.
    (record,) = org.control("GET", "records/Organization")
    assert record["OrganizationType"] == organization
    assert org.control("GET", "usage")["DailyApiRequests"]["used"] == 0


# ---------------------------------------------------------------- user permissions


def test_a_user_without_api_enabled_is_refused_with_api_currently_disabled(
    org: SandboxOrg,
) -> None:
    sf = org.salesforce("noapi")  # the login itself succeeds
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Organization")
    assert refused.value.status == 403
    assert content(refused.value) == [
        {"message": "API is disabled for this User", "errorCode": "API_CURRENTLY_DISABLED"}
    ]


def permissions(sf: Salesforce, user_id: str) -> list[dict[str, Any]]:
    records = sf.query(
        "SELECT PermissionSet.PermissionsApiEnabled, PermissionSet.PermissionsViewSetup "
        f"FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}'"
    )["records"]
    return [r["PermissionSet"] for r in records]


def test_each_users_permissions_are_visible_through_soql(org: SandboxOrg) -> None:
    sf = org.salesforce("admin")
    expected = {"admin": (True, True), "sync": (True, False), "noapi": (False, False)}
    for handle, (api, view_setup) in expected.items():
        sets = permissions(sf, org.user(handle)["user_id"])
        assert sets, handle
        assert any(s["PermissionsApiEnabled"] for s in sets) is api, handle
        assert any(s["PermissionsViewSetup"] for s in sets) is view_setup, handle
        assert (org.user(handle)["api_enabled"], org.user(handle)["view_setup"]) == (
            api,
            view_setup,
        )

    profiles = {
        r["Name"]: (r["PermissionsApiEnabled"], r["PermissionsViewSetup"])
        for r in sf.query_all(
            "SELECT Name, PermissionsApiEnabled, PermissionsViewSetup FROM Profile"
        )["records"]
    }
    assert profiles["System Administrator"] == (True, True)
    assert profiles["Integration User"] == (True, False)
    assert profiles["Read Only"] == (False, False)

    owned = sf.query_all(
        "SELECT Id, ProfileId, PermissionsApiEnabled FROM PermissionSet WHERE IsOwnedByProfile = true"
    )["records"]
    assert len(owned) >= len(profiles)
    assert all(r["ProfileId"] and r["ProfileId"].startswith("00e") for r in owned)
    view_setup = sf.query(
        "SELECT Id, Label, PermissionsViewSetup, IsOwnedByProfile FROM PermissionSet "
        "WHERE Name = 'View_Setup'"
    )["records"]
    assert len(view_setup) == 1
    assert view_setup[0]["Id"].startswith("0PS")
    assert view_setup[0]["PermissionsViewSetup"] is True
    assert view_setup[0]["IsOwnedByProfile"] is False


def view_setup_set(org: SandboxOrg) -> str:
    (found,) = org.control("GET", "records/PermissionSet?where=Name%20%3D%20%27View_Setup%27")
    return str(found["Id"])


def test_assigning_view_setup_through_the_control_api_opens_limits_for_the_sync_user(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sync = org.salesforce("sync")
    with pytest.raises(SalesforceRefusedRequest):
        sync.limits()
    created = org.control(
        "POST",
        "records/PermissionSetAssignment",
        {"AssigneeId": org.user("sync")["user_id"], "PermissionSetId": view_setup_set(org)},
    )
    assert created[0]["success"] is True
    assert sync.limits()["DailyApiRequests"]["Max"] == 120_000
    assert any(s["PermissionsViewSetup"] for s in permissions(sync, org.user("sync")["user_id"]))


def test_an_admin_granting_view_setup_over_rest_opens_limits_and_revoking_closes_it(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    admin, sync = org.salesforce("admin"), org.salesforce("sync")
    permission_set = admin.query("SELECT Id FROM PermissionSet WHERE Name = 'View_Setup'")[
        "records"
    ][0]["Id"]
    assignment = sobject(admin, "PermissionSetAssignment").create(
        {"AssigneeId": org.user("sync")["user_id"], "PermissionSetId": permission_set}
    )
    assert assignment["success"] is True
    assert "DailyApiRequests" in sync.limits()

    sobject(admin, "PermissionSetAssignment").delete(assignment["id"])
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sync.limits()
    assert content(refused.value) == LIMITS_REFUSED
