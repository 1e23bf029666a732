"""Which login hosts the Connect Salesforce form accepts: Salesforce's, and nothing that one URL
parser reads as Salesforce and another as someone else's host."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from quotasync.web.connect_page import _login_url


@pytest.mark.parametrize(
    ("typed", "login_url"),
    [
        ("acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://Acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
    ],
)
def test_a_my_domain_is_accepted(typed: str, login_url: str) -> None:
    assert _login_url("my_domain", typed, "https://login.salesforce.com") == login_url


@pytest.mark.parametrize(
    "typed",
    [
        "evil.com\\.salesforce.com",
        "https://user@acme.my.salesforce.com",
        "acme.my.salesforce.com:8443",
        "https://evil.com/.salesforce.com",
        "acme.my.salesforce.com.evil.com",
        "http://acme.my.salesforce.com",
        "",
    ],
)
def test_anything_else_is_refused(typed: str) -> None:
    with pytest.raises(HTTPException) as refused:
        _login_url("my_domain", typed, "https://login.salesforce.com")
    assert refused.value.status_code == 422


def test_the_named_hosts_and_the_default() -> None:
    assert _login_url("sandbox", "", "x") == "https://test.salesforce.com"
    assert _login_url("default", "", "https://login.example/") == "https://login.example"
