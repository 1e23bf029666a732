from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.governor import LIMIT_NAMES, Api
from quotasync.salesforce import api
from quotasync.salesforce.org_limits import Figure, _limits_closed, parse


def org_limits(**changes: Any) -> dict[str, Any]:
    """A `/limits` body as an Enterprise org sends it; a change of `None` removes that limit."""
    body: dict[str, Any] = {
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {
            "Max": 125_000,
            "Remaining": 98_765,
            "Marketing Cloud": {"Max": 0, "Remaining": 0},
            "Salesforce Mobile Dashboards": {"Max": 0, "Remaining": 0},
            "Workbench": {"Max": 0, "Remaining": 0},
        },
        "DailyAsyncApexExecutions": {"Max": 250_000, "Remaining": 249_990},
        "DailyBulkApiBatches": {
            "Max": 15_000,
            "Remaining": 14_960,
            "Workbench": {"Max": 0, "Remaining": 0},
        },
        "DailyBulkV2QueryFileStorageMB": {"Max": 976_562, "Remaining": 976_562},
        "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": 9_993},
        "DailyStreamingApiEvents": {"Max": 1_000_000, "Remaining": 1_000_000},
        "DataStorageMB": {"Max": 1_024, "Remaining": 1_010},
        "FileStorageMB": {"Max": 20_480, "Remaining": 20_479},
        "HourlyPublishedPlatformEvents": {"Max": 250_000, "Remaining": 250_000},
        "MassEmail": {"Max": 5_000, "Remaining": 5_000},
        "PermissionSets": {
            "Max": 1_500,
            "Remaining": 1_497,
            "CreateCustom": {"Max": 1_000, "Remaining": 997},
        },
        "SingleEmail": {"Max": 5_000, "Remaining": 5_000},
    }
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


# --- parse ----------------------------------------------------------------------------------


def test_the_four_governed_types_are_read_as_used_out_of_max() -> None:
    assert parse(org_limits()) == {
        "data": Figure(used=26_235, max=125_000),
        "bulk": Figure(used=40, max=15_000),
        "bulk_query": Figure(used=7, max=10_000),
        "apex": Figure(used=10, max=250_000),
    }


def test_per_app_entries_and_unrelated_limits_are_not_read_as_types() -> None:
    figures = parse(org_limits())
    assert set(figures) == {api.value for api in Api}
    assert figures["data"] == Figure(used=26_235, max=125_000)  # not Marketing Cloud's 0/0


def test_use_past_the_total_reads_as_more_used_than_the_max() -> None:
    body = org_limits(DailyApiRequests={"Max": 15_000, "Remaining": -250})
    assert parse(body)["data"] == Figure(used=15_250, max=15_000)


def test_a_type_the_org_has_none_of_reads_as_zero_of_zero() -> None:
    body = org_limits(DailyAsyncApexExecutions={"Max": 0, "Remaining": 0})
    assert parse(body)["apex"] == Figure(used=0, max=0)


def test_a_type_the_org_does_not_report_is_left_out() -> None:
    figures = parse(org_limits(DailyBulkV2QueryJobs=None))
    assert "bulk_query" not in figures
    assert set(figures) == {"data", "bulk", "apex"}


@pytest.mark.parametrize(
    "entry",
    [
        {"Max": "15000", "Remaining": "14000"},
        {"Max": 15_000, "Remaining": "14000"},
        {"Max": 15_000.0, "Remaining": 14_000},
        {"Max": 15_000, "Remaining": 14_000.5},
        {"Max": True, "Remaining": False},
        {"Max": 15_000, "Remaining": None},
        {"Max": -1, "Remaining": 0},
        {"Max": 15_000},
        {"Remaining": 14_000},
        {},
        [15_000, 14_000],
        "15000/14000",
        15_000,
        None,
    ],
)
def test_a_malformed_entry_is_left_out_and_the_others_kept(entry: object) -> None:
    figures = parse(org_limits(DailyApiRequests=entry))
    assert "data" not in figures
    assert set(figures) == {"bulk", "bulk_query", "apex"}


@pytest.mark.parametrize("body", [None, [], [org_limits()], "DailyApiRequests", 42, True])
def test_a_body_that_is_not_an_object_gives_no_figures(body: object) -> None:
    assert parse(body) == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([*LIMIT_NAMES.values(), "Max", "Remaining"]) | st.text(max_size=10),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(json_values)
def test_any_json_body_parses_without_raising_into_whole_non_negative_figures(
    body: object,
) -> None:
    figures = parse(body)
    assert set(figures) <= {api.value for api in Api}
    for figure in figures.values():
        assert type(figure.max) is int and figure.max >= 0
        assert type(figure.used) is int and figure.used >= 0


@given(st.integers(0, 10**7), st.integers(-(10**6), 10**7))
def test_used_is_max_less_remaining_never_below_zero(maximum: int, remaining: int) -> None:
    body = org_limits(DailyBulkApiBatches={"Max": maximum, "Remaining": remaining})
    assert parse(body)["bulk"] == Figure(used=max(0, maximum - remaining), max=maximum)


# --- _limits_closed -------------------------------------------------------------------------


def test_limits_without_view_setup_are_told_apart() -> None:
    content = [{"message": "limits resource is not enabled", "errorCode": "API_DISABLED_FOR_ORG"}]
    assert _limits_closed(api.fault(content))


def test_an_org_without_api_access_is_not_mistaken_for_closed_limits() -> None:
    content = [
        {
            "message": "The REST API is not enabled for this Organization.",
            "errorCode": "API_DISABLED_FOR_ORG",
        }
    ]
    assert not _limits_closed(api.fault(content))


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "limits resource is not enabled",
        [],
        ["API_DISABLED_FOR_ORG"],
        [None],
        [{"errorCode": "API_DISABLED_FOR_ORG"}],
        [{"message": "limits resource is not enabled"}],
        [{"message": "limits resource is not enabled", "errorCode": "INSUFFICIENT_ACCESS"}],
        [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        [{"message": "API is disabled for this User", "errorCode": "API_CURRENTLY_DISABLED"}],
    ],
)
def test_other_refusals_are_not_closed_limits(content: object) -> None:
    assert not _limits_closed(api.fault(content))


@given(json_values)
def test_telling_closed_limits_apart_never_raises(content: object) -> None:
    assert isinstance(_limits_closed(api.fault(content)), bool)
