"""The JSON API and the pages' forms as clients use them over HTTP: who may see and change what,
the same figures as `quotasync usage --json`, and bad input answered with a clear 4xx that
changes nothing."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import pytest
import requests

from tests.acceptance.web_support import Person, Site, csrf_of

# One served site for this file and the browser tests: they run on one xdist worker.
pytestmark = pytest.mark.xdist_group("site")


def share(site: Site) -> int:
    """The Data share now, through the API (which a test shows equals `quotasync usage`)."""
    answer = site.api("GET", f"/api/v1/workspaces/{site.acme}/limits", site.admin.token)
    return int(answer.json()["data"])


def settings(site: Site) -> object:
    return site.api("GET", f"/api/v1/workspaces/{site.acme}/settings", site.admin.token).json()


ADMIN_ONLY = ["usage", "usage/hourly", "limits", "settings", "episodes"]


def test_the_api_gives_the_figures_of_quotasync_usage_json(site: Site) -> None:
    answer = site.api("GET", f"/api/v1/workspaces/{site.acme}/usage", site.admin.token)
    assert answer.status_code == 200
    assert answer.json() == site.usage()
    data = answer.json()["apis"]["data"]
    assert data["quotasync_used"] > 0 and data["figures"]["org_max"] > 0


def test_a_member_reads_their_own_usage_as_the_admin_view_counts_it(site: Site) -> None:
    mine = site.api("GET", f"/api/v1/workspaces/{site.acme}/me/usage", site.member.token)
    assert mine.status_code == 200
    counted = {m["email"]: m for m in site.usage()["members"]}[site.member.email]
    assert mine.json()["calls"] == counted["calls"] > 0
    assert mine.json()["share_of_org"] == counted["share_of_org"]
    assert len(mine.json()["per_hour"]) == 24


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_a_member_is_refused_every_admin_view(site: Site, path: str) -> None:
    answer = site.api("GET", f"/api/v1/workspaces/{site.acme}/{path}", site.member.token)
    assert answer.status_code == 403
    assert "admin" in answer.json()["detail"]


@pytest.mark.parametrize("path", [*ADMIN_ONLY, "me/usage", "activities"])
def test_nobody_reaches_another_workspace(site: Site, path: str) -> None:
    url = f"/api/v1/workspaces/{site.globex}/{path}"
    assert site.api("GET", url, site.member.token).status_code == 403
    assert site.api("GET", url, site.admin.token).status_code == 403
    assert site.api("GET", url, site.acme_ingest).status_code == 404
    assert site.api("GET", url).status_code == 401
    made_up = site.api("GET", url, "qsu_made_up")
    assert made_up.status_code == 401
    assert made_up.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    own = site.api("GET", url, site.outsider.token)
    assert own.status_code == 200
    assert site.acme not in own.text


def test_only_an_admin_of_the_workspace_runs_the_doctor_and_never_by_get(site: Site) -> None:
    url = f"/api/v1/workspaces/{site.acme}/doctor"
    assert site.api("POST", url, site.member.token).status_code == 403
    assert site.api("POST", url, site.outsider.token).status_code == 403
    assert site.api("GET", url, site.admin.token).status_code == 405  # a run spends a call
    # By cookie, a run needs the page's CSRF token like any other write.
    browser = site.browser_session(site.admin)
    assert browser.post(f"{site.url}{url}", timeout=60).status_code == 403
    ran = browser.post(f"{site.url}/w/{site.acme}/doctor", data={"csrf_token": "é"}, timeout=60)
    assert ran.status_code == 403  # not a 500: a token beyond ASCII is simply wrong


def test_the_ingest_token_is_not_a_person(site: Site) -> None:
    answer = site.api("GET", f"/api/v1/workspaces/{site.acme}/usage", site.acme_ingest)
    assert answer.status_code == 403 and "user's API token" in answer.json()["detail"]


def test_an_admin_sets_a_share_and_it_applies_at_once(site: Site) -> None:
    url = f"/api/v1/workspaces/{site.acme}/limits"
    before = site.api("GET", url, site.admin.token).json()
    try:
        changed = site.api("PATCH", url, site.admin.token, json={"data": 55})
        assert changed.status_code == 200 and changed.json()["data"] == 55
        assert site.usage()["apis"]["data"]["share_percent"] == 55
    finally:
        site.api("PATCH", url, site.admin.token, json={"data": before["data"]})


def test_a_share_the_sync_user_cannot_govern_is_refused_alike_by_the_page_the_api_and_the_cli(
    site: Site,
) -> None:
    """One implementation (services/shares.py): Globex syncs as a user without View Setup, so
    its Bulk share cannot be set, and each entry point says the same sentence its own way."""
    url = f"/api/v1/workspaces/{site.globex}/limits"
    before = site.api("GET", url, site.outsider.token).json()
    by_api = site.api("PATCH", url, site.outsider.token, json={"data": 40, "bulk": 50})
    assert by_api.status_code == 422
    said = by_api.json()["detail"]
    assert said.startswith("The bulk share cannot be set: ") and "View Setup" in said

    browser = site.browser_session(site.outsider)
    page = browser.get(f"{site.url}/w/{site.globex}/integrations", timeout=30)
    by_page = browser.post(
        f"{site.url}/w/{site.globex}/integrations/share",
        data={"api": "bulk", "percent": "50", "csrf_token": csrf_of(page.text)},
        timeout=30,
    )
    assert by_page.status_code == 422
    alert = re.search(
        r'<p class="notice error" role="alert" id="form-error">([^<]*)</p>', by_page.text
    )
    assert alert is not None and html.unescape(alert.group(1)) == said

    by_cli = site.cli(
        "limit", "set", "--workspace", site.globex, "--api", "bulk", "--percent", "50"
    )
    assert by_cli.returncode == 2
    assert by_cli.stderr.strip() == f"error: {said}"
    # Refused whole: not even the API's valid Data share was stored.
    assert site.api("GET", url, site.outsider.token).json() == before


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"data": 95}, "less than or equal to 90"),
        ({"data": 5}, "greater than or equal to 10"),
        ({"data": "sixty"}, "valid integer"),
        ({"data": 60, "bulk": 91}, "less than or equal to 90"),
        ({"email": 60}, "Extra inputs are not permitted"),
        ({}, "at least one share"),
    ],
)
def test_a_bad_share_is_refused_and_nothing_changes(site: Site, body: object, says: str) -> None:
    url = f"/api/v1/workspaces/{site.acme}/limits"
    before = site.api("GET", url, site.admin.token).json()
    answer = site.api("PATCH", url, site.admin.token, json=body)
    assert answer.status_code == 422
    assert says in answer.text
    assert site.api("GET", url, site.admin.token).json() == before


def test_a_body_that_is_not_json_is_a_422(site: Site) -> None:
    answer = site.api(
        "PATCH",
        f"/api/v1/workspaces/{site.acme}/settings",
        site.admin.token,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"recheck_minutes": 1},
        {"warning_percent": 0},
        {"max_batch_delay": 0.5},  # below the time activities are logged within
        {"max_batch_delay": "NaN"},
        {"log_within": 4},
        {"log_within": 901},
        {"log_within": "NaN"},
        {"log_within": 120, "max_batch_delay": 60},  # the ceiling is never below log_within
        {"open_tracking": "maybe"},
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(site: Site, body: object) -> None:
    url = f"/api/v1/workspaces/{site.acme}/settings"
    before = site.api("GET", url, site.admin.token).json()
    assert site.api("PATCH", url, site.admin.token, json=body).status_code == 422
    assert site.api("GET", url, site.admin.token).json() == before


def test_an_admin_chooses_through_the_api_how_soon_activities_are_logged(site: Site) -> None:
    url = f"/api/v1/workspaces/{site.acme}/settings"
    before = site.api("GET", url, site.admin.token).json()
    too_long = site.api("PATCH", url, site.admin.token, json={"log_within": 901})
    assert too_long.status_code == 422 and "less than or equal to 900" in too_long.text
    assert site.api("GET", url, site.admin.token).json() == before
    try:
        saved = site.api("PATCH", url, site.admin.token, json={"log_within": 30})
        assert saved.status_code == 200 and saved.json()["log_within"] == 30
        assert site.api("GET", url, site.admin.token).json() == {**before, "log_within": 30}
        assert site.usage()["settings"]["log_within"] == 30
        # Beyond the longest paced delay: refused, with what to do.
        beyond = site.api(
            "PATCH", url, site.admin.token, json={"log_within": 600, "max_batch_delay": 300}
        )
        assert beyond.status_code == 422 and "must be from 600 seconds" in beyond.text
    finally:
        site.api("PATCH", url, site.admin.token, json={"log_within": before["log_within"]})


def test_the_settings_form_saves_how_soon_activities_are_logged(site: Site) -> None:
    browser = site.browser_session(site.admin)
    page = browser.get(f"{site.url}/w/{site.acme}/integrations", timeout=30)
    before = settings(site)
    assert isinstance(before, dict)
    shown = f'name="log_within" min="5" max="900" step="any" value="{before["log_within"]:g}"'
    assert "Log activities within (seconds)" in page.text and shown in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "recheck_minutes": str(before["recheck_minutes"]),
        "warning_percent": str(before["warning_percent"]),
        "max_batch_delay": f"{before['max_batch_delay']:g}",
        **({"open_tracking": "on"} if before["open_tracking"] else {}),
    }
    try:
        refused = browser.post(
            f"{site.url}/w/{site.acme}/integrations/settings",
            data={**form, "log_within": "4"},
            timeout=30,
        )
        assert refused.status_code == 422 and 'role="alert"' in refused.text
        assert "Activities must be logged within 5 seconds to 15 minutes" in refused.text
        assert settings(site) == before
        saved = browser.post(
            f"{site.url}/w/{site.acme}/integrations/settings",
            data={**form, "log_within": "45"},
            timeout=30,
        )
        assert saved.status_code == 200 and "Saved: the settings apply now." in saved.text
        assert settings(site) == {**before, "log_within": 45.0}
        assert 'name="log_within" min="5" max="900" step="any" value="45"' in saved.text
        assert 'name="max_batch_delay" min="45"' in saved.text
    finally:
        site.api(
            "PATCH",
            f"/api/v1/workspaces/{site.acme}/settings",
            site.admin.token,
            json={"log_within": before["log_within"]},
        )


def test_a_member_lists_only_their_own_activities(site: Site) -> None:
    mine = site.api("GET", f"/api/v1/workspaces/{site.acme}/activities", site.member.token)
    assert mine.status_code == 200
    emails = {a["user_email"] for a in mine.json()["activities"]}
    assert emails == {site.member.email}
    everyone = site.api(
        "GET", f"/api/v1/workspaces/{site.acme}/activities?limit=1000", site.admin.token
    )
    assert len({a["user_email"] for a in everyone.json()["activities"]}) > 1
    bad = site.api("GET", f"/api/v1/workspaces/{site.acme}/activities?state=lost", site.admin.token)
    assert bad.status_code == 422


def test_the_people_lookup_takes_a_members_token_too(site: Site) -> None:
    contact = site.org.control("GET", "records/Contact")[0]
    url = f"/api/v1/workspaces/{site.acme}/people?email={contact['Email']}"
    assert site.api("GET", url, site.member.token).status_code in (200, 404)
    assert site.api("GET", url, site.outsider.token).status_code == 403


def test_forms_without_the_csrf_token_change_nothing(site: Site) -> None:
    browser = site.browser_session(site.admin)
    before = share(site)
    forged = browser.post(
        f"{site.url}/w/{site.acme}/integrations/share",
        data={"api": "data", "percent": "33"},
        timeout=30,
    )
    assert forged.status_code == 403
    assert share(site) == before
    # A cookie alone does not write through the JSON API either.
    by_cookie = browser.patch(
        f"{site.url}/api/v1/workspaces/{site.acme}/limits", json={"data": 33}, timeout=30
    )
    assert by_cookie.status_code == 403
    assert share(site) == before


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"api": "data", "percent": "95"}, "10"),
        ({"api": "data", "percent": "abc"}, "10"),
        ({"api": "data", "percent": ""}, "10"),
        ({"api": "mail", "percent": "50"}, "must be one of"),
    ],
)
def test_a_bad_share_form_answers_422_with_the_page_and_its_message(
    site: Site, fields: dict[str, str], says: str
) -> None:
    browser = site.browser_session(site.admin)
    page = browser.get(f"{site.url}/w/{site.acme}/integrations", timeout=30)
    before = share(site)
    answer = browser.post(
        f"{site.url}/w/{site.acme}/integrations/share",
        data={**fields, "csrf_token": csrf_of(page.text)},
        timeout=30,
    )
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text and says in answer.text
    assert share(site) == before


def test_a_bad_settings_form_changes_nothing(site: Site) -> None:
    browser = site.browser_session(site.admin)
    page = browser.get(f"{site.url}/w/{site.acme}/integrations", timeout=30)
    before = settings(site)
    answer = browser.post(
        f"{site.url}/w/{site.acme}/integrations/settings",
        data={
            "csrf_token": csrf_of(page.text),
            "recheck_minutes": "2",
            "warning_percent": "50",
            "log_within": "60",
            "max_batch_delay": "100",
        },
        timeout=30,
    )
    assert answer.status_code == 422 and "recheck" in answer.text.lower()
    assert settings(site) == before  # not even the valid fields, nor open tracking


def test_a_wrong_password_is_refused_and_next_never_leaves_the_site(site: Site) -> None:
    session = requests.Session()
    form = session.get(f"{site.url}/signin", timeout=30)
    wrong = session.post(
        f"{site.url}/signin",
        data={
            "email": site.admin.email,
            "password": "not the password",
            "csrf_token": csrf_of(form.text),
        },
        timeout=30,
    )
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    right = session.post(
        f"{site.url}/signin",
        data={
            "email": site.admin.email,
            "password": site.admin.password,
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_a_failed_activity_is_retried_from_the_page(site: Site) -> None:
    database = Path(site.env["QUOTASYNC_DATA_DIR"]) / "quotasync.db"
    with sqlite3.connect(database) as db:
        (activity_id,) = db.execute(
            "SELECT id FROM activities WHERE workspace_id = ? AND user_email = ? LIMIT 1",
            (site.acme, site.member.email),
        ).fetchone()
        db.execute(
            "UPDATE activities SET state = 'failed', last_error = ? WHERE workspace_id = ? AND id = ?",
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION: Subject is required", site.acme, activity_id),
        )
    browser = site.browser_session(site.member)
    page = browser.get(f"{site.url}/w/{site.acme}/activities?state=failed", timeout=30)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: Subject is required" in page.text
    done = browser.post(
        f"{site.url}/w/{site.acme}/activities/retry",
        data={"id": activity_id, "csrf_token": csrf_of(page.text)},
        timeout=30,
    )
    assert done.status_code == 200 and "1 failed activities queued again" in done.text
    again = browser.post(
        f"{site.url}/w/{site.acme}/activities/retry",
        data={"id": activity_id, "csrf_token": csrf_of(page.text)},
        timeout=30,
    )
    assert again.status_code == 409  # it is pending now, not failed
    with sqlite3.connect(database) as db:
        (state,) = db.execute(
            "SELECT state FROM activities WHERE workspace_id = ? AND id = ?",
            (site.acme, activity_id),
        ).fetchone()
    assert state == "pending"


def test_ten_wrong_passwords_lock_that_email_only(site: Site) -> None:
    made = site.cli_json("user", "add", "--workspace", site.acme, "guessed@acme.io")
    session = requests.Session()
    token = csrf_of(session.get(f"{site.url}/signin", timeout=30).text)

    def sign_in(email: str, password: str) -> requests.Response:
        form = {"email": email, "password": password, "csrf_token": token}
        return session.post(f"{site.url}/signin", data=form, timeout=30, allow_redirects=False)

    assert [sign_in("guessed@acme.io", f"guess {i}").status_code for i in range(10)] == [401] * 10
    locked = sign_in("guessed@acme.io", made["password"])
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in locked.text
    assert sign_in(site.admin.email, site.admin.password).status_code == 303


def test_an_admin_turns_real_time_sync_on_and_off_from_the_page(site: Site) -> None:
    browser = site.browser_session(site.admin)
    page = browser.get(f"{site.url}/w/{site.acme}/integrations", timeout=30)
    assert "Turn on Real-Time Sync" in page.text
    form = {"csrf_token": csrf_of(page.text), "mode": "realtime"}
    bad = browser.post(
        f"{site.url}/w/{site.acme}/integrations/sync-mode",
        data={**form, "url": "ftp://nowhere"},
        timeout=30,
    )
    assert bad.status_code == 422 and "http(s) URL" in bad.text
    assert site.usage()["sync_mode"] == "interval"

    url = f"{site.url}/rts/{site.acme}"
    on = browser.post(
        f"{site.url}/w/{site.acme}/integrations/sync-mode", data={**form, "url": url}, timeout=30
    )
    assert on.status_code == 200 and "Real-Time Sync is on" in on.text
    assert site.usage()["sync_mode"] == "realtime"
    (setting,) = site.org.control("GET", "records/QS_Sync_Setting__c")
    assert setting["Enabled__c"] is True and setting["Callback_URL__c"] == url

    off = browser.post(
        f"{site.url}/w/{site.acme}/integrations/sync-mode",
        data={"csrf_token": form["csrf_token"], "mode": "interval"},
        timeout=30,
    )
    assert off.status_code == 200 and "Real-Time Sync is off" in off.text
    assert site.usage()["sync_mode"] == "interval"
    (setting,) = site.org.control("GET", "records/QS_Sync_Setting__c")
    assert setting["Enabled__c"] is False


def test_a_pause_and_a_sync_mode_switch_show_on_the_page_and_in_the_api(site: Site) -> None:
    database = Path(site.env["QUOTASYNC_DATA_DIR"]) / "quotasync.db"
    at = site.env["QUOTASYNC_CLOCK_EPOCH"]  # the served clock stands still here
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO pause_episodes (workspace_id, api, reason, started_at, next_check, "
            "resume_at, ended_at, figures) VALUES (?, 'data', 'org_guard', ?, ?, NULL, NULL, ?)",
            (
                site.globex,
                at,
                at,
                '{"own_used": 3, "share_calls": 70, "org_used": 95, "org_max": 100}',
            ),
        )
        db.execute(
            "INSERT INTO pause_episodes (workspace_id, api, reason, started_at, next_check, "
            "resume_at, ended_at, figures) VALUES (?, 'apex', 'org_guard', ?, ?, NULL, ?, '{}')",
            (site.globex, at, at, at),
        )
    browser = site.browser_session(site.outsider)
    page = browser.get(f"{site.url}/w/{site.globex}/integrations", timeout=30).text
    assert 'data-pause="org_guard"' in page
    assert "Paused: the org is past 90% of its limit (all apps)" in page
    assert "quotasync 3 of 70 share · org 95 of 100" in page
    assert "Real-Time → Interval sync" in page and "(back to Real-Time)" in page
    told = site.cli_json("usage", "--workspace", site.globex)
    assert told["apis"]["data"]["state"] == "paused"
    episodes = site.api("GET", f"/api/v1/workspaces/{site.globex}/episodes", site.outsider.token)
    assert [(e["api"], e["mode_switch"], e["ended_at"] is None) for e in episodes.json()] == [
        ("apex", True, False),
        ("data", False, True),
    ]


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(site: Site) -> None:
    made = site.cli_json("user", "add", "--workspace", site.acme, "leaver@acme.io")
    browser = site.browser_session(Person("leaver@acme.io", made["password"], ""))
    mine = f"{site.url}/w/{site.acme}/settings"
    assert browser.get(mine, timeout=30).url == mine
    site.cli_json("user", "password", "--workspace", site.acme, "leaver@acme.io")
    assert "/signin" in browser.get(mine, timeout=30).url


def test_an_oversized_form_field_is_a_422_page(site: Site) -> None:
    session = requests.Session()
    form = session.get(f"{site.url}/signin", timeout=30)
    answer = session.post(
        f"{site.url}/signin",
        data={"email": "x" * 5000, "password": "p", "csrf_token": csrf_of(form.text)},
        headers={"Accept": "text/html"},
        timeout=30,
    )
    assert answer.status_code == 422
    assert "The form was not accepted: email:" in answer.text


def test_a_huge_form_is_refused_before_it_is_read(site: Site) -> None:
    answer = requests.post(
        f"{site.url}/signin", data={"email": "a@b.io", "password": "x" * 100_000}, timeout=30
    )
    assert answer.status_code == 413 and "at most 64 KiB" in answer.text


def test_the_favicon_is_there(site: Site) -> None:
    icon = requests.get(f"{site.url}/favicon.ico", timeout=30)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
