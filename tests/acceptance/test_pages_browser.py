"""The pages as people use them, in a real browser (Playwright driving Debian's Chromium) against
`quotasync serve`: the admin's slider, the member's usage page, what each may not see. A
screenshot of each page goes to $QUOTASYNC_SCREENSHOTS (scripts/screenshots sets docs/screenshots)
or to the test's own folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quotasync.domain import quota
from tests.acceptance.web_support import Person, Site

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.xdist_group("site"),
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason=f"browser tests need Debian's chromium at {CHROMIUM}"
    ),
]
# The flags a headless Chromium needs on a machine with no network beyond loopback.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("QUOTASYNC_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def signed_in(browser: Any, site: Site, person: Person, **context: Any) -> Any:
    context.setdefault("viewport", {"width": 1200, "height": 900})
    page = browser.new_context(**context).new_page()
    page.goto(f"{site.url}/")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def figure(card: Any, name: str) -> int:
    return int(card.locator(f"[data-figure={name}]").inner_text().replace(",", ""))


def test_the_sign_in_page_refuses_a_wrong_password(browser: Any, site: Site, shots: Path) -> None:
    page = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    page.goto(f"{site.url}/w/{site.acme}/integrations")
    assert "/signin" in page.url  # not signed in: the form, and back here after
    page.screenshot(path=str(shots / "signin.png"))
    page.fill("input[name=email]", site.admin.email)
    page.fill("input[name=password]", "not the password")
    with page.expect_response(f"{site.url}/signin") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    page.fill("input[name=password]", site.admin.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/w/{site.acme}/integrations")


def test_the_integrations_page_shows_the_figures_of_quotasync_usage(
    browser: Any, site: Site
) -> None:
    page = signed_in(browser, site, site.admin)
    assert page.url == f"{site.url}/w/{site.acme}/integrations"
    told = site.usage()  # the server's clock stands still: the same moment as the page
    for api, row in told["apis"].items():
        card = page.locator(f"section[data-api={api}]")
        if not row["available"]:
            assert card.locator("[data-state=unavailable]").count() == 1
            assert row["unavailable_reason"][1:] in card.inner_text()
            continue
        assert figure(card, "quotasync_used") == row["quotasync_used"]
        if row["figures"] is None:
            continue
        for name in ("other_apps_used", "left", "org_max", "share_calls", "guard_calls"):
            assert figure(card, name) == row["figures"][name], (api, name)
        bar = card.locator("svg.qs-usage-bar")
        assert int(bar.get_attribute("data-share")) == row["figures"]["share_calls"]
        assert int(bar.get_attribute("data-guard")) == row["figures"]["guard_calls"]
        assert int(bar.get_attribute("data-quotasync")) == row["quotasync_used"]
        assert card.locator("[data-state]").first.inner_text() == row["state"]


def test_without_view_setup_bulk_and_apex_are_unavailable_and_say_what_to_grant(
    browser: Any, site: Site
) -> None:
    page = signed_in(browser, site, site.outsider)
    assert page.url == f"{site.url}/w/{site.globex}/integrations"
    for api in ("bulk", "apex"):
        card = page.locator(f"section[data-api={api}]")
        assert card.locator("[data-state=unavailable]").count() == 1
        assert "View Setup and Configuration permission" in card.inner_text()
        assert card.locator("input[type=range]").count() == 0  # its share cannot be set
    assert page.locator("section[data-api=data] input[type=range]").count() == 1


def test_an_admin_moves_the_slider_to_60_percent_with_the_keyboard_and_saves(
    browser: Any, site: Site, shots: Path
) -> None:
    page = signed_in(browser, site, site.admin)
    slider = page.locator("#share-data")
    start = int(slider.input_value())
    slider.focus()
    key = "ArrowLeft" if start > 60 else "ArrowRight"
    for _ in range(abs(start - 60)):
        page.keyboard.press(key)
    data = page.locator("section[data-api=data]")
    assert data.locator("output").inner_text() == "60%"  # the value shows as it moves
    data.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "Saved" in page.get_by_role("status").first.inner_text()

    page.reload()
    data = page.locator("section[data-api=data]")
    assert page.locator("#share-data").input_value() == "60"
    assert data.locator("output").inner_text() == "60%"
    figures = site.usage()["apis"]["data"]["figures"]
    share_line = int(data.locator("svg.qs-usage-bar").get_attribute("data-share"))
    assert share_line == figures["share_calls"] == quota.share_calls(figures["org_max"], 60)
    assert "share 60%" in data.locator("svg.qs-usage-bar").inner_html()
    page.screenshot(path=str(shots / "integrations.png"), full_page=True)


def test_a_share_of_95_percent_is_refused_with_a_message(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, site.admin)
    before = page.locator("#share-data").input_value()
    # The slider stops at 90; a hand-made request is what could ask for more.
    page.eval_on_selector(
        "#share-data", "el => { el.type = 'number'; el.removeAttribute('max'); el.value = '95'; }"
    )
    with page.expect_response(f"{site.url}/w/{site.acme}/integrations/share") as answer:
        page.locator("section[data-api=data]").get_by_role("button", name="Save").click()
    assert answer.value.status == 422
    message = page.get_by_role("alert").inner_text()
    assert "share must be a whole percentage from 10 to 90" in message and "95" in message
    page.goto(f"{site.url}/w/{site.acme}/integrations")
    assert page.locator("#share-data").input_value() == before


def test_a_member_sees_their_usage_and_nothing_of_the_admins_or_other_workspaces(
    browser: Any, site: Site, shots: Path
) -> None:
    page = signed_in(browser, site, site.member)
    assert page.url == f"{site.url}/w/{site.acme}/settings"
    counted = {m["email"]: m for m in site.usage()["members"]}[site.member.email]
    shown_calls = page.locator("[data-figure=calls]").inner_text()
    # Whole calls (tenths only below ten): "10", not "10.42".
    calls = counted["calls"]
    assert shown_calls == (
        f"{calls:,.0f}" if calls >= 10 else f"{calls:.1f}".rstrip("0").rstrip(".")
    )
    shown = page.locator("[data-figure=share_of_org_percent]").inner_text()
    assert float(shown.rstrip("%")) == pytest.approx(counted["share_of_org"] * 100, rel=0.05)
    assert page.locator("svg.qs-sparkline").count() == 1
    assert page.get_by_role("link", name="Integrations").count() == 0
    page.screenshot(path=str(shots / "settings.png"), full_page=True)

    forbidden = [
        f"/w/{site.acme}/integrations",
        f"/w/{site.globex}/settings",
        f"/w/{site.globex}/activities",
        f"/w/{site.globex}/integrations",
        f"/api/v1/workspaces/{site.acme}/usage",
        f"/api/v1/workspaces/{site.globex}/usage",
        f"/api/v1/workspaces/{site.globex}/me/usage",
        f"/api/v1/workspaces/{site.globex}/activities",
    ]
    for path in forbidden:
        answer = page.goto(f"{site.url}{path}")
        assert answer is not None and answer.status == 403, path
        assert site.globex not in page.content() or path.startswith(f"/w/{site.globex}")


def test_the_activities_page_filters_by_state(browser: Any, site: Site, shots: Path) -> None:
    page = signed_in(browser, site, site.admin)
    page.get_by_role("link", name="Activities").click()
    page.wait_for_url(f"{site.url}/w/{site.acme}/activities")
    assert page.locator("tr[data-activity]").count() > 0
    page.screenshot(path=str(shots / "activities.png"), full_page=False)
    page.select_option("select[name=state]", "logged")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    states = page.locator("tr[data-activity]").evaluate_all(
        "rows => rows.map(r => r.dataset.state)"
    )
    assert states and set(states) == {"logged"}


def test_the_integrations_page_reads_on_a_phone(browser: Any, site: Site, shots: Path) -> None:
    page = signed_in(
        browser, site, site.admin, viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    # Nothing runs off the side: no sideways scrolling. Name what does, if anything.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 391)
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
            .slice(0, 5)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    page.screenshot(path=str(shots / "integrations-phone.png"), full_page=False)


def test_the_api_docs_work_with_no_internet(browser: Any, site: Site) -> None:
    page = browser.new_context().new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{site.url}/docs")
    page.wait_for_selector(".opblock", timeout=60_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.endswith("/limits") for p in paths)
    assert all(url.startswith(site.url) for url in asked), asked


def test_an_admin_connects_salesforce_through_the_orgs_consent_page(
    browser: Any, site: Site
) -> None:
    assert site.newcomer is not None
    # The sandbox org's HTTPS has its own CA, which this browser does not know.
    page = signed_in(browser, site, site.newcomer, ignore_https_errors=True)
    assert page.url == f"{site.url}/w/{site.initech}/integrations"
    assert "Limits need a sync user" in page.locator("#no-sync-user").inner_text()
    page.get_by_role("button", name="Connect Salesforce").click()
    page.wait_for_load_state()
    assert page.url.startswith(site.org.config["login_url"])
    assert page.get_by_role("heading", name="Allow Access?").count() == 1
    admin = site.org.user("admin")
    page.fill("input[name=username]", admin["username"])
    page.fill("input[name=password]", admin["password"])
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{site.url}/w/{site.initech}/integrations")
    assert (
        f"Connected to Salesforce as {admin['username']}"
        in page.get_by_role("status").first.inner_text()
    )
    assert page.locator("[data-figure=sync_user]").inner_text() == admin["username"]
    assert page.locator("#no-sync-user").count() == 0
    # Used once: the same callback again is refused.
    again = page.goto(f"{site.url}/oauth/callback?state=replayed&code=x")
    assert again is not None and again.status == 400


def test_an_admin_who_denies_access_is_told_and_nothing_is_connected(
    browser: Any, site: Site
) -> None:
    page = signed_in(browser, site, site.outsider, ignore_https_errors=True)
    before = page.locator("[data-figure=sync_user]").inner_text()
    page.get_by_role("button", name="Connect again").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{site.url}/w/{site.globex}/integrations")
    assert "end-user denied authorization" in page.get_by_role("alert").inner_text()
    assert page.locator("[data-figure=sync_user]").inner_text() == before
