"""Bad input gets Salesforce's JSON error array with a 4xx status, never a 500 or a stack trace."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_salesforce import SalesforceMalformedRequest, SalesforceResourceNotFound

from tests.integration.support import first_error
from tests.sandbox_process import SandboxOrg


@pytest.fixture(scope="module")
def http(org: SandboxOrg, sf: Any) -> requests.Session:
    session = org.http()
    session.headers["Authorization"] = f"Bearer {sf.session_id}"
    return session


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["errorCode"] == code
    assert isinstance(body[0]["message"], str) and body[0]["message"]
    return dict(body[0])


def test_a_malformed_json_body_is_json_parser_error(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("sobjects/Task", method="POST", data='{"Subject": "x",')
    assert excinfo.value.status == 400
    assert first_error(excinfo)["errorCode"] == "JSON_PARSER_ERROR"


@pytest.mark.parametrize("body", ["", "[1, 2]", '"just a string"', "{'single': 'quotes'}"])
def test_bodies_that_are_not_a_json_object_are_json_parser_error(
    org: SandboxOrg, http: requests.Session, body: str
) -> None:
    response = http.post(
        f"{org.instance_url}/services/data/v62.0/sobjects/Task",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "JSON_PARSER_ERROR")


def test_a_malformed_collections_body_is_json_parser_error(
    org: SandboxOrg, http: requests.Session
) -> None:
    response = http.post(
        f"{org.instance_url}/services/data/v62.0/composite/sobjects",
        data='{"records": {"not": "a list"}}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "JSON_PARSER_ERROR")


def test_an_unknown_sobject_is_not_found(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Nope__c.create({"Name": "x"})
    assert excinfo.value.status == 404
    assert first_error(excinfo)["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Nope__c/describe")


def test_a_wrong_method_is_method_not_allowed(org: SandboxOrg, http: requests.Session) -> None:
    response = http.delete(f"{org.instance_url}/services/data/v62.0/sobjects/Task")
    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "DELETE" in error["message"]
    response = http.post(f"{org.instance_url}/services/data/v62.0/query?q=SELECT+Id+FROM+Task")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "path",
    [
        "/services/data/v62.0/nothing/here",
        "/services/data/v62.0/sobjects/Task/00T/extra/parts",
        "/services/data/v99.0/sobjects",
        "/no/such/page",
    ],
)
def test_an_unknown_path_is_not_found(org: SandboxOrg, http: requests.Session, path: str) -> None:
    assert_error(http.get(f"{org.instance_url}{path}"), 404, "NOT_FOUND")


def test_a_query_without_q_is_malformed(org: SandboxOrg, http: requests.Session) -> None:
    assert_error(http.get(f"{org.instance_url}/services/data/v62.0/query"), 400, "MALFORMED_QUERY")


def test_an_unknown_query_locator_is_refused(org: SandboxOrg, http: requests.Session) -> None:
    response = http.get(f"{org.instance_url}/services/data/v62.0/query/01gNOSUCHLOCATOR-2000")
    assert_error(response, 400, "INVALID_QUERY_LOCATOR")


def test_a_record_id_of_the_wrong_object_is_not_found(sf: Any) -> None:
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get(contact)


junk = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=80,
)
soqlish = st.lists(
    st.sampled_from(
        [
            "SELECT",
            "Id",
            ",",
            "Name",
            "FROM",
            "Contact",
            "Task",
            "WHERE",
            "=",
            "!=",
            "<",
            "'x'",
            "'",
            "(",
            ")",
            "AND",
            "OR",
            "NOT",
            "IN",
            "LIKE",
            "NULL",
            "TRUE",
            "ORDER BY",
            "LIMIT",
            "OFFSET",
            "5",
            "-1",
            "2026-01-01",
            "2026-01-01T00:00:00Z",
            "COUNT()",
            "Account.Name",
            "Who.Name",
            "NULLS",
            "LAST",
            "DESC",
            "GROUP BY",
            "TODAY",
            "LAST_N_DAYS:3",
            ":",
            ".",
            "Nope__c",
            "\\",
            "%",
            "99999999999999999999",
        ]
    ),
    max_size=14,
).map(" ".join)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.one_of(junk, soqlish))
def test_junk_in_the_q_parameter_gets_a_json_error_never_a_500(
    org: SandboxOrg, http: requests.Session, text: str
) -> None:
    response = http.get(f"{org.instance_url}/services/data/v62.0/query", params={"q": text})
    assert response.status_code < 500, (text, response.text)
    assert "Traceback" not in response.text
    body = response.json()
    if response.status_code == 200:
        assert "totalSize" in body and "records" in body
        return
    assert 400 <= response.status_code < 500
    assert isinstance(body, list) and body
    assert {"errorCode", "message"} <= set(body[0])


@pytest.mark.parametrize(
    "body", [{"NumberOfEmployees": "inf"}, {"AnnualRevenue": "nan"}, {"AnnualRevenue": "-1e999"}]
)
def test_numbers_that_are_not_finite_are_invalid_type(
    org: SandboxOrg, http: requests.Session, body: dict[str, Any]
) -> None:
    response = http.post(
        f"{org.instance_url}/services/data/v62.0/sobjects/Account", json={"Name": "N", **body}
    )
    assert_error(response, 400, "INVALID_TYPE_ON_FIELD_IN_RECORD")


@pytest.mark.parametrize(
    "body",
    [
        {"StartDateTime": "2026-12-01T10:00:00Z", "DurationInMinutes": 1e10},
        {"StartDateTime": "9999-12-31T23:00:00Z", "DurationInMinutes": 120},
    ],
)
def test_event_times_beyond_the_calendar_are_field_integrity_errors(
    org: SandboxOrg, http: requests.Session, body: dict[str, Any]
) -> None:
    response = http.post(f"{org.instance_url}/services/data/v62.0/sobjects/Event", json=body)
    assert_error(response, 400, "FIELD_INTEGRITY_EXCEPTION")


@pytest.mark.parametrize(
    "condition",
    [
        "ActivityDate = 9999-12-31",
        "ActivityDate = LAST_N_DAYS:99999999",
        "CreatedDate = NEXT_N_DAYS:9999999999",
    ],
)
def test_date_literals_at_the_calendars_ends_answer_a_query(
    org: SandboxOrg, http: requests.Session, condition: str
) -> None:
    response = http.get(
        f"{org.instance_url}/services/data/v62.0/query",
        params={"q": f"SELECT Id FROM Task WHERE {condition}"},
    )
    assert response.status_code == 200, response.text


def test_a_datetime_literal_past_year_9999_is_malformed_query(
    org: SandboxOrg, http: requests.Session
) -> None:
    response = http.get(
        f"{org.instance_url}/services/data/v62.0/query",
        params={"q": "SELECT Id FROM Task WHERE CreatedDate > 9999-12-31T23:59:59-05:00"},
    )
    assert_error(response, 400, "MALFORMED_QUERY")
