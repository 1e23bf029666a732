"""`quotasync demo` as a user runs it: the whole story unattended (what CI runs), and Ctrl-C on a
demo someone is watching; and, fast, the two things its verdict rests on: yesterday's calls leave
the window at the story's minutes, and the check of the org finds what is missing or twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from quotasync.demo import story, verdict
from quotasync.domain import mapping
from quotasync.domain.activities import parse_activity
from tests.acceptance.web_support import csrf_of

CLI = [sys.executable, "-m", "quotasync.cli"]


def demo_env() -> dict[str, str]:
    """The embedded defaults, whatever the machine's environment says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTASYNC_")}
    return {**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


@pytest.mark.timeout(330)
@pytest.mark.long
def test_the_headless_demo_tells_the_whole_story_and_every_activity_is_in_the_org_once(
    tmp_path: Path,
) -> None:
    # The story's 100 virtual minutes at the default 60x, and no more: on a faster clock (a
    # shorter --minutes) a loaded machine's worker can miss the few real seconds the org spends
    # past the guard, and the pause the story is about never happens.
    done = subprocess.run(
        [*CLI, "demo", "--headless", "--minutes", "1.75", "--json", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=demo_env(),
        timeout=320,
    )
    story = done.stderr  # with --json, the chapters and the table go to stderr
    assert done.returncode == 0, story[-4000:]
    assert "Traceback" not in story
    summary = json.loads(done.stdout)

    activities = summary["activities"]
    assert activities["accepted"] > 300  # 20 reps, an hour and three quarters of their day
    assert activities["in_org_once"] == activities["accepted"]
    assert activities["missing"] == activities["duplicated"] == activities["waiting"] == 0
    assert activities["states"] == {"logged": activities["accepted"]}

    # Other apps pushed the org past the guard: a pause, then a resume once the window rolled.
    assert [p["reason"] for p in summary["pauses"]] == ["org_guard"]
    assert summary["resumes"] == 1
    # The Apex quota spent: Real-Time Sync went to Interval Sync and came back by itself.
    assert summary["rts_round_trips_completed"] == 1
    assert summary["story"]["complete"] is True
    # One email per start and per end, to the one admin, kept in the outbox as .eml files.
    assert sorted(e["kind"] for e in summary["emails"]) == ["ended"] * 2 + ["started"] * 2
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 4
    assert summary["calls"]["data"]["log_activity"] > 0
    # The headline figure: activities in the org per Data API call spent logging them.
    data = summary["calls"]["data"]
    logging_calls = sum(data.get(p, 0) for p in ("log_activity", "lookup", "create_lead"))
    assert summary["activities_per_data_call"] == round(
        activities["in_org_once"] / logging_calls, 1
    )
    assert "activities per Data API call" in story
    assert summary["calls"]["apex"]["rts_push"] > 0
    # Leads the reps saved in Salesforce reached the mirror (by push, or by the interval sync).
    assert summary["leads"]["in_the_mirror"] > 0

    for chapter in (
        "Syncing pauses (Data API, org_guard",
        "The 24-hour window rolls",
        "Syncing resumes (Data API)",
        "Real-Time Sync → Interval Sync",
        "Interval Sync → Real-Time Sync",
        "Email to 1 admin",
        "verdict: every accepted activity is in the org exactly once",
    ):
        assert chapter in story, chapter


class Running:
    """`quotasync demo` in the background, its output read as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [*CLI, "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=demo_env(),
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.2)

    def sign_in(self, email: str, password: str) -> tuple[requests.Session, str]:
        """A signed-in browser session, and where sign-in led (the person's first page)."""
        url = re.search(r"Open (http://127\.0\.0\.1:\d+) and sign in", self.output)
        assert url, self.output
        browser = requests.Session()
        browser.trust_env = False
        form = browser.get(f"{url.group(1)}/signin", timeout=30)
        landed = browser.post(
            f"{url.group(1)}/signin",
            data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
            timeout=30,
        )
        assert landed.status_code == 200, landed.text
        return browser, landed.url

    def login(self, role: str) -> tuple[str, str]:
        """The email and first password the demo printed for the admin or the member."""
        found = re.search(rf"^\s+{role}\s+(\S+)\s+(\S+)$", self.output, re.MULTILINE)
        assert found, self.output
        return found.group(1), found.group(2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.mark.timeout(180)
@pytest.mark.long
def test_ctrl_c_stops_a_running_demo_within_seconds_and_prints_the_summary(
    tmp_path: Path,
) -> None:
    demo = Running("--data-dir", str(tmp_path))
    try:
        # The story plays as someone watches: the org passes 90% and the admin is emailed.
        demo.wait_for("Email to 1 admin", timeout=150)
        admin, landed = demo.sign_in(*demo.login("admin"))
        outbox = landed.replace("/integrations", "/outbox")
        page = admin.get(outbox, timeout=30)
        assert page.status_code == 200
        assert "quotasync paused syncing for Acme Sales: org_guard" in page.text
        assert f'href="{urlsplit(outbox).path}" aria-current="page">Outbox' in page.text
        member, _ = demo.sign_in(*demo.login("member"))
        assert member.get(outbox, timeout=30).status_code == 403
        admin.close()
        member.close()
        org = json.loads((tmp_path / "org" / "sandbox.json").read_text())

        demo.process.send_signal(signal.SIGINT)
        code = demo.process.wait(timeout=60)  # it stops at once: no more rounds of the story
        demo.reader.join(timeout=10)
    finally:
        demo.stop()
    assert code in (0, 130), demo.output
    assert "Traceback" not in demo.output
    assert "activities accepted" in demo.output and "duplicated" in demo.output
    assert "verdict: every accepted activity" in demo.output
    assert "in the org exactly once" in demo.output
    assert "paused: data, org_guard" in demo.output
    # The sandbox org went with it.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{org['instance_url']}/services/data/", verify=org["ca_file"], timeout=5)


def test_yesterdays_calls_leave_the_window_at_the_minutes_the_story_says() -> None:
    now = datetime(2026, 11, 28, 19, 4, 17, tzinfo=UTC)
    clock = now + timedelta(seconds=story.lead_in(now))
    spent_at = []
    for yesterday, advance in story.prelude():
        spent_at.append((yesterday, clock))
        clock += timedelta(seconds=advance)
    # The story begins at 08:00 on the first morning a day of yesterday's calls can precede.
    assert clock == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for yesterday, at in spent_at:
        assert at + timedelta(hours=24) == clock + timedelta(minutes=yesterday.leaves_at)
    assert story.fitted_speed(60, 3) == 60 and story.fitted_speed(60, 1) == 100


def activity(kind: str, activity_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": activity_id,
        "kind": kind,
        "occurred_at": "2026-11-30T08:00:00+00:00",
        "user_email": "rep@acme.example",
        **fields,
    }


def test_the_verdict_tells_once_waiting_missing_and_duplicated_apart() -> None:
    meeting = {"start": "2026-12-01T10:00:00+00:00", "end": "2026-12-01T10:30:00+00:00"}
    moved = {"start": "2026-12-02T10:00:00+00:00", "end": "2026-12-02T10:45:00+00:00"}
    accepted = [
        activity("email_sent", "e1", to=["ada@x.example"], subject="Hi", body="Hello"),
        activity("email_sent", "e2", to=["ada@x.example"], subject="Again", body="Hello"),
        activity("email_opened", "o1", email_id="e1"),
        activity("email_opened", "o2", email_id="e1"),
        activity("email_replied", "r1", email_id="e1", subject="Re: Hi"),
        activity("meeting_booked", "m1", subject="Intro", meeting=meeting),
        activity("meeting_updated", "u1", meeting_id="m1", meeting=moved),
    ]
    reply = mapping.reply_line(parse_activity(accepted[4]))
    tasks: list[dict[str, Any]] = [
        {"QS_Activity_Id__c": "e1", "QS_Opens__c": 1.0, "Description": f"Hello\n\n{reply}"},
        {"QS_Activity_Id__c": "e2"},
        {"QS_Activity_Id__c": "e2"},  # written twice
    ]
    events = [
        {
            "QS_Activity_Id__c": "m1",
            "StartDateTime": "2026-12-02T10:00:00.000+0000",
            "EndDateTime": "2026-12-02T10:45:00.000+0000",
        }
    ]
    logged = {a["id"]: "logged" for a in accepted}
    found = verdict.check(accepted, logged, tasks, events, None)
    assert (found.accepted, found.once, found.missing, found.duplicated) == (7, 5, 1, 1)
    assert not found.exact
    # The open the Task does not count yet is waiting while it is still pending, not missing.
    found = verdict.check(accepted, {**logged, "o2": "pending"}, tasks[:2], events, None)
    assert (found.once, found.waiting, found.missing, found.duplicated) == (6, 1, 0, 0)
    assert found.exact
    # A meeting moved in the outbox but not in the org: the move is missing.
    found = verdict.check(accepted[5:], logged, [], [{**events[0], "EndDateTime": None}], None)
    assert (found.once, found.missing) == (1, 1)


def test_the_verdict_counts_only_the_workspaces_own_records() -> None:
    accepted = [activity("email_sent", "e1", to=["ada@x.example"], subject="Hi", body="Hello")]
    logged = {"e1": "logged"}
    # Another workspace's Task for its own activity e1 (bare, or under its prefix) is not ours.
    others = [{"QS_Activity_Id__c": "e1"}, {"QS_Activity_Id__c": "0000zzzz:e1"}]
    found = verdict.check(accepted, logged, others, [], "k3x9a2b1")
    assert (found.once, found.missing) == (0, 1)
    found = verdict.check(
        accepted, logged, [*others, {"QS_Activity_Id__c": "k3x9a2b1:e1"}], [], "k3x9a2b1"
    )
    assert (found.once, found.missing, found.duplicated) == (1, 0, 0)
