"""`quotasync limit` and `quotasync usage` as an admin runs them, against a sandbox org: a
workspace whose sync user lacks View Setup (RULES.md: Without View Setup, Data only),
and one synced as the org's admin."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from quotasync.simulation import ActivityStream
from quotasync.store import db
from quotasync.store.tables import PauseEpisode
from tests.processes import cli
from tests.sandbox_process import SandboxOrg, start_sandbox

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("limits_cli")

VIEW_SETUP = "the sync user needs the View Setup and Configuration permission"


@dataclass
class Setup:
    org: SandboxOrg
    workspace: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.env, timeout=120)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("limits")
    org = start_sandbox(root / "org", "--seed", "60")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    try:
        first = Setup(org, "", env)
        made = first.json("workspace", "create", "Acme", "--admin", "a@acme.io")
        done = Setup(org, made["workspace"], env)
        assert (
            done.run(
                "connect",
                "--workspace",
                done.workspace,
                "--sandbox",
                str(root / "org" / "sandbox.json"),
            ).returncode
            == 0
        )
        # The least time allowed, so that `worker --until-idle` (real time) does not wait out
        # the 60-second default for the last batch.
        quick = done.run("limit", "set", "--workspace", done.workspace, "--log-within", "5")
        assert quick.returncode == 0, quick.stderr
        reps = [
            u["Email"]
            for u in org.control("GET", "records/User")
            if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")
        ]
        people = [c["Email"] for c in org.control("GET", "records/Contact")]
        stream = ActivityStream(reps, people, datetime(2026, 11, 28, tzinfo=UTC), seed=3).take(600)
        (root / "a.jsonl").write_text("".join(json.dumps(a) + "\n" for a in stream))
        assert (
            done.run(
                "activities", "import", "--workspace", done.workspace, str(root / "a.jsonl")
            ).returncode
            == 0
        )
        assert done.run("worker", "--until-idle").returncode == 0
        yield done
    finally:
        org.stop()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A workspace synced as the org's admin, who has View Setup, after one worker run (which
    reads `/limits`). Its own org, so its calls do not blur the figures the other tests check."""
    root = tmp_path_factory.mktemp("limits-admin")
    org = start_sandbox(root / "org")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    try:
        made = Setup(org, "", env).json("workspace", "create", "Globex", "--admin", "a@globex.io")
        done = Setup(org, made["workspace"], env)
        sandbox_json = str(root / "org" / "sandbox.json")
        nobody = done.run(
            "connect", "--workspace", done.workspace, "--sandbox", sandbox_json, "--user", "nobody"
        )
        assert nobody.returncode == 2
        assert "has no user 'nobody'; choose one of admin, sync, noapi" in nobody.stderr
        connected = done.run(
            "connect", "--workspace", done.workspace, "--sandbox", sandbox_json, "--user", "admin"
        )
        assert connected.returncode == 0, connected.stderr
        assert "as admin@" in connected.stdout
        assert done.run("worker", "--until-idle").returncode == 0
        yield done
    finally:
        org.stop()


def test_a_new_workspace_may_use_70_percent_of_each_quota(setup: Setup, admin: Setup) -> None:
    view = setup.json("limit", "show", "--workspace", setup.workspace)
    apis = view["apis"]
    assert {api: v["share_percent"] for api, v in apis.items()} == {
        "data": 70,
        "bulk": 70,
        "apex": 70,
    }
    # The admin fixture's workspace has its settings as created (`setup` logs within 5 s).
    assert admin.json("limit", "show", "--workspace", admin.workspace)["settings"] == {
        "recheck_minutes": 30,
        "warning_percent": 80,
        "log_within": 60.0,
        "max_batch_delay": 900.0,
        "open_tracking": True,
        "sync_interval_minutes": 30,
    }
    assert view["settings"]["log_within"] == 5.0
    assert view["sync_mode"] == "interval"  # Real-Time Sync is off until an admin turns it on
    assert {api: v["state"] for api, v in apis.items()} == dict.fromkeys(apis, "running")
    data = apis["data"]
    assert (data["available"], data["unavailable_reason"], data["pauses"]) == (True, None, [])
    # 600 activities over a few seconds are far from spending the share: no pacing.
    assert data["pacing"]["on"] is False and "fits" in data["pacing"]["why"]
    assert data["pacing"]["delay"] == 5.0  # the workspace's log_within
    share = data["figures"]["share_calls"]
    assert data["figures"]["warning_calls"] == -(-share * 80 // 100)


def test_the_org_figures_and_quotasyncs_use_agree_with_the_org(setup: Setup) -> None:
    view = setup.json("limit", "show", "--workspace", setup.workspace)
    data = view["apis"]["data"]
    org = setup.org.control("GET", "usage")["DailyApiRequests"]
    assert data["figures"]["org_max"] == org["max"]
    assert data["quotasync_used"] == org["by_app"]["quotasync"]
    assert data["figures"]["share_calls"] == org["max"] * 70 // 100
    assert data["figures"]["guard_calls"] == org["max"] * 90 // 100
    assert data["figures"]["left"] == org["max"] - org["used"]


def test_without_view_setup_bulk_and_apex_are_unavailable_and_the_permission_is_named(
    setup: Setup,
) -> None:
    view = setup.json("limit", "show", "--workspace", setup.workspace)
    assert view["limits_readable"] is False  # the worker asked `/limits` and was refused
    for api in ("bulk", "apex"):
        entry = view["apis"][api]
        assert (entry["available"], entry["figures"], entry["pacing"]) == (False, None, None)
        assert entry["unavailable_reason"].startswith(VIEW_SETUP)
    shown = setup.run("limit", "show", "--workspace", setup.workspace)
    assert shown.returncode == 0, shown.stderr
    assert f"bulk, apex: unavailable: {VIEW_SETUP} for quotasync to read" in shown.stdout
    assert "data: running" in shown.stdout
    # Apex takes the same path: one refusal shows it.
    refused = setup.run(
        "limit", "set", "--workspace", setup.workspace, "--api", "bulk", "--percent", "40"
    )
    assert refused.returncode == 2
    assert f"The bulk share cannot be set: {VIEW_SETUP}" in refused.stderr


def test_other_apps_use_is_the_org_total_minus_quotasyncs_own(setup: Setup) -> None:
    setup.org.control("POST", "consume", {"app": "Marketing Cloud", "api": "data", "calls": 500})
    # The org's figure arrives with quotasync's next call; one lookup is enough.
    line = {
        "id": "probe-1",
        "kind": "email_sent",
        "occurred_at": "2026-11-28T10:00:00Z",
        "user_email": "nobody@acme.io",
        "to": ["new.person@unknown.example"],
    }
    Path(setup.env["QUOTASYNC_DATA_DIR"], "probe.jsonl").write_text(json.dumps(line) + "\n")
    setup.run(
        "activities",
        "import",
        "--workspace",
        setup.workspace,
        str(Path(setup.env["QUOTASYNC_DATA_DIR"], "probe.jsonl")),
    )
    assert setup.run("worker", "--until-idle").returncode == 0
    data = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]["data"]
    org = setup.org.control("GET", "usage")["DailyApiRequests"]
    assert data["figures"]["other_apps_used"] == org["by_app"]["Marketing Cloud"] == 500
    assert data["figures"]["org_used"] == org["used"]
    used = setup.run("usage", "--workspace", setup.workspace)
    assert (
        f" data: quotasync {data['quotasync_used']:,}, other apps 500, "
        f"left {data['figures']['left']:,} of {org['max']:,}"
    ) in used.stdout
    assert f" bulk: unavailable: {VIEW_SETUP}" in used.stdout


def test_an_admin_sets_a_share_within_10_to_90_percent(setup: Setup) -> None:
    for bad in ("95", "5", "70.5", "lots"):
        refused = setup.run(
            "limit", "set", "--workspace", setup.workspace, "--api", "data", "--percent", bad
        )
        assert refused.returncode == 2
        assert "The share must be a whole percentage from 10 to 90" in refused.stderr
    wrong_api = setup.run(
        "limit", "set", "--workspace", setup.workspace, "--api", "soap", "--percent", "50"
    )
    assert wrong_api.returncode == 2 and "data, bulk, apex" in wrong_api.stderr
    done = setup.run(
        "limit", "set", "--workspace", setup.workspace, "--api", "data", "--percent", "60"
    )
    assert done.returncode == 0 and "60% of the org's data quota" in done.stdout
    view = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]
    assert (view["data"]["share_percent"], view["bulk"]["share_percent"]) == (60, 70)


def test_an_admin_sets_the_recheck_interval_the_warning_threshold_and_the_longest_paced_delay(
    setup: Setup,
) -> None:
    def set_(*args: str) -> subprocess.CompletedProcess[str]:
        return setup.run("limit", "set", "--workspace", setup.workspace, *args)

    refusals = {
        (
            "--recheck-minutes",
            "3",
        ): "The recheck interval must be from 5 minutes to 1440 minutes; got 3 minutes.",
        (
            "--warning-percent",
            "0",
        ): "The warning threshold must be above 0% and at most 100% of the share; got 0%.",
        (
            "--max-batch-delay",
            "1",
        ): "The longest paced delay must be from 5 seconds (the time activities are logged within) to 3600 seconds; got 1 seconds.",
        (): "nothing to set",
        ("--percent", "50"): "--api and --percent go together",
    }
    for args, message in refusals.items():
        refused = set_(*args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    done = set_("--recheck-minutes", "15", "--warning-percent", "50", "--max-batch-delay", "600")
    assert done.returncode == 0, done.stderr
    assert "looks again every 15 minutes" in done.stdout
    shown = setup.run("limit", "show", "--workspace", setup.workspace).stdout
    assert "quotasync looks again every 15 minutes" in shown
    assert "warned past 50% of a share" in shown
    assert "pacing may hold them up to 600 s when the share would otherwise run out" in shown


def test_an_admin_chooses_how_soon_activities_are_logged_from_5_seconds_to_15_minutes(
    setup: Setup,
) -> None:
    def set_(*args: str) -> subprocess.CompletedProcess[str]:
        return setup.run("limit", "set", "--workspace", setup.workspace, *args)

    for seconds in ("4", "901"):
        refused = set_("--log-within", seconds)
        assert refused.returncode == 2, refused.stdout
        assert (
            "error: Activities must be logged within 5 seconds to 15 minutes (900 seconds); "
            f"got {seconds} seconds."
        ) in refused.stderr
    done = set_("--log-within", "120", "--max-batch-delay", "600")
    assert done.returncode == 0, done.stderr
    assert f"{setup.workspace}: activities are logged within 120 seconds" in done.stdout
    shown = setup.run("limit", "show", "--workspace", setup.workspace)
    assert (
        "activities are logged within 120 s (pacing may hold them up to 600 s when the share "
        "would otherwise run out)"
    ) in shown.stdout
    # Pacing never holds activities for less than log_within: the ceiling goes up first.
    beyond = set_("--log-within", "700")
    assert beyond.returncode == 2
    assert "the longest paced delay (now 600 seconds) must be at least that long" in beyond.stderr
    below = set_("--max-batch-delay", "60")
    assert below.returncode == 2 and "must be from 120 seconds" in below.stderr
    both = set_("--log-within", "700", "--max-batch-delay", "900")
    assert both.returncode == 0, both.stderr
    assert "pacing may hold activities up to 900 seconds" in both.stdout


def test_each_member_sees_the_calls_their_activity_cost_split_by_record_count(setup: Setup) -> None:
    usage = setup.json("usage", "--workspace", setup.workspace)
    members = usage["members"]
    assert len(members) >= 15  # the reps of the stream
    logging_calls = setup.org.control("GET", "usage")["DailyApiRequests"]["by_app"]["quotasync"]
    # Every logging call is split across the reps it carried; lookups and mirror loads are nobody's.
    assert 0 < sum(m["calls"] for m in members) <= logging_calls
    assert all(0 < m["share_of_org"] < 1 for m in members)
    assert [m["calls"] for m in members] == sorted((m["calls"] for m in members), reverse=True)
    first = members[0]
    text = setup.run("usage", "--workspace", setup.workspace).stdout
    assert f"  {first['email']}: {first['calls']:,.2f} Data calls in the past 24 hours" in text


def test_with_view_setup_bulk_and_apex_figures_are_shown_and_their_shares_settable(
    admin: Setup,
) -> None:
    view = admin.json("limit", "show", "--workspace", admin.workspace)
    assert view["limits_readable"] is True
    org = admin.org.control("GET", "usage")
    bulk, apex = view["apis"]["bulk"], view["apis"]["apex"]
    assert bulk["available"] and apex["available"]
    # Bulk's share governs ingest batches and query jobs alike: its figures add them up.
    batches, queries = org["DailyBulkApiBatches"]["max"], org["DailyBulkV2QueryJobs"]["max"]
    assert bulk["figures"]["org_max"] == batches + queries
    assert bulk["figures"]["share_calls"] == batches * 70 // 100 + queries * 70 // 100
    apex_max = org["DailyAsyncApexExecutions"]["max"]
    assert (apex["figures"]["org_max"], apex["figures"]["guard_calls"]) == (
        apex_max,
        apex_max * 90 // 100,
    )
    assert apex["figures"]["left"] == apex_max - org["DailyAsyncApexExecutions"]["used"]
    shown = admin.run("limit", "show", "--workspace", admin.workspace).stdout
    assert "unavailable" not in shown
    done = admin.run(
        "limit", "set", "--workspace", admin.workspace, "--api", "apex", "--percent", "40"
    )
    assert done.returncode == 0 and "40% of the org's apex quota" in done.stdout


def test_usage_shows_a_pause_with_its_reason_and_when_it_looks_again(admin: Setup) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    figures = {"own_used": 20, "share_calls": 20, "org_used": 25, "org_max": 200}
    pauses = [
        PauseEpisode(
            workspace_id=admin.workspace,
            api="data",
            reason="workspace_limit",
            started_at=now - timedelta(minutes=5),
            next_check=now + timedelta(minutes=25),
            resume_at=now + timedelta(hours=3),
            figures=figures,
        ),
        PauseEpisode(
            workspace_id=admin.workspace,
            api="bulk_query",
            reason="org_guard",
            started_at=now - timedelta(minutes=1),
            next_check=now + timedelta(minutes=29),
            resume_at=None,
            figures={},
        ),
    ]
    engine = db.make_engine(f"sqlite:///{admin.env['QUOTASYNC_DATA_DIR']}/quotasync.db")
    try:
        with db.sessions(engine).begin() as session:
            session.add_all(pauses)
    finally:
        engine.dispose()

    apis = admin.json("usage", "--workspace", admin.workspace)["apis"]
    assert {api: v["state"] for api, v in apis.items()} == {
        "data": "paused",
        "bulk": "paused",
        "apex": "running",
    }
    [data] = apis["data"]["pauses"]
    assert (data["reason"], data["resume_predicted"], data["figures"]) == (
        "workspace_limit",
        True,
        figures,
    )
    assert datetime.fromisoformat(data["next_check"]) == now + timedelta(minutes=25)
    assert datetime.fromisoformat(data["resume_at"]) == now + timedelta(hours=3)
    [query] = apis["bulk"]["pauses"]
    assert (query["api"], query["reason"], query["resume_predicted"]) == (
        "bulk_query",
        "org_guard",
        False,
    )

    def when(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")

    text = admin.run("usage", "--workspace", admin.workspace).stdout
    assert (
        f"paused since {when(now - timedelta(minutes=5))} (workspace_limit); "
        f"next check {when(now + timedelta(minutes=25))}; "
        f"resumes at {when(now + timedelta(hours=3))}"
    ) in text
    assert (
        f"bulk_query paused since {when(now - timedelta(minutes=1))} (org_guard); "
        f"next check {when(now + timedelta(minutes=29))}"
    ) in text
    assert " data: quotasync " in text and "; paused" in text


def test_before_an_org_is_connected_the_limits_say_they_need_a_sync_user(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    alone = Setup(None, "", env)  # type: ignore[arg-type]  # no org: nothing is connected
    made = alone.json("workspace", "create", "Solo", "--admin", "a@solo.io")
    shown = alone.run("limit", "show", "--workspace", made["workspace"])
    assert shown.returncode == 0
    assert "limits need a sync user" in shown.stdout and "quotasync connect" in shown.stdout
    assert alone.json("usage", "--workspace", made["workspace"])["sync_user"] is None
