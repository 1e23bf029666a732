"""`quotasync demo`: the whole product on the embedded defaults, telling its story as it happens.

The director starts the pieces (a seeded sandbox org on the virtual clock, the store, the web
app, the worker), gives the org a yesterday, then each tick: lets other apps act on their beats,
posts the reps' activity, and reports what changed. At the end (the minutes are up, or Ctrl-C) it
lets the worker finish what it can, stops, and checks the org record by record.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from sqlalchemy import select

from quotasync.clock import VirtualClock, parse_epoch
from quotasync.demo import story, summary, verdict, watch
from quotasync.demo.org import DemoOrg
from quotasync.demo.reps import EmailProduct, LeadDesk
from quotasync.demo.show import Show
from quotasync.demo.stage import Stage
from quotasync.errors import QuotasyncError
from quotasync.simulation import ActivityStream
from quotasync.store import outbox, quota_rows
from quotasync.store.tables import Activity, Workspace

log = logging.getLogger("quotasync.demo")

TICK = 0.25  # real seconds between looks
DRAIN_SECONDS = 120.0  # how long a run that reached its end waits for the last writes (real)
QUICK_DRAIN = 2.0  # the same after Ctrl-C: stopping comes first
STRANGERS = 0.02  # the share of emails to people the org does not know
LIMITS = {
    "data": "DailyApiRequests",
    "bulk": "DailyBulkApiBatches",
    "bulk_query": "DailyBulkV2QueryJobs",
    "apex": "DailyAsyncApexExecutions",
}
WORDS = {"data": "Data API calls", "apex": "async Apex executions"}


@dataclass(frozen=True)
class Options:
    data_dir: Path
    minutes: float | None = None  # real minutes of story; None: until stopped
    speed: float = 60.0  # virtual seconds per real second
    port: int = 0  # the web app's; 0 picks a free one


class Interrupted(QuotasyncError):
    """Stopped before the story began."""


def run(options: Options, console: Console, stop: threading.Event) -> summary.Summary:
    speed = story.fitted_speed(options.speed, options.minutes)
    # The one wall-clock read of the demo: its virtual clock starts at the real now, so the org
    # process, started with the same epoch and speed, agrees with it.
    epoch = datetime.now(UTC).isoformat(timespec="milliseconds")
    clock = VirtualClock(parse_epoch(epoch), speed)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    with _logging_to(options.data_dir / "demo.log"), Show(console, clock) as show:
        if speed != options.speed:
            show.say(
                f"The story needs {story.STORY_MINUTES} minutes of virtual time, more than "
                f"--minutes {options.minutes:g} holds at {options.speed:g}x: "
                f"the clock runs at {speed:g}x"
            )
        show.say(
            f"Starting a sandbox org ({story.SEED} each of Accounts, Contacts, Leads, "
            f"Opportunities; 20 reps) on a clock running at {speed:g}x…"
        )
        org = DemoOrg.start(options.data_dir / "org", *_org_options(speed, epoch))
        try:
            _check(stop)
            stage = Stage.build(options.data_dir / "data", org, clock)
            try:
                return _play(options, show, stage, stop)
            finally:
                stage.stop()
        finally:
            org.stop()


def _org_options(speed: float, epoch: str) -> list[str]:
    return [
        "--seed", str(story.SEED),
        "--edition", story.EDITION,
        "--licenses", str(story.LICENSES),
        "--speed", f"{speed:g}",
        "--epoch", epoch,  # the same instant as the demo's clock: both read the same time
        "--session-timeout-minutes", "0",
    ]  # fmt: skip


def _play(options: Options, show: Show, stage: Stage, stop: threading.Event) -> summary.Summary:
    allocations = _set_the_scene(options, show, stage)
    _check(stop)
    _yesterday(show, stage.org, stage.clock, allocations)
    show.begin_story()
    _introduce(show, stage, until_stopped=options.minutes is None)
    stage.start_worker()
    clock = stage.clock
    stream = ActivityStream(sorted(stage.reps), stage.people, clock.now(), strangers=STRANGERS)
    product = EmailProduct(stage.url, stage.workspace_id, stage.ingest_token, stream, clock)
    desk = LeadDesk(stage.org, stage.reps, stream, clock.now(), story.LEAD_EVERY)
    chapters = watch.Chapters(
        finale="Every chapter has happened. The reps keep working"
        + ("; Ctrl-C stops the demo" if options.minutes is None else "")
    )
    try:
        _tell(options, show, stage, stop, product, desk, chapters, allocations)
    finally:
        product.close()
    interrupted = stop.is_set()
    _finish(show, stage, stop, quick=interrupted)
    found = _verdict(stage, product.accepted)
    result = summary.collect(stage.runtime.sessions, stage.workspace_id, found, desk.added)
    result.story = [m for m in watch.MILESTONES if m in chapters.seen]
    result.interrupted = stop.is_set()  # a Ctrl-C during the last writes counts too
    result.clock = {
        "speed": clock.speed,
        "story_started_at": show.story_start.isoformat() if show.story_start else None,
        "stopped_at": clock.now().isoformat(),
        "story_minutes": round(show.minute(), 1),
        "real_seconds": round(show.real_seconds(), 1),
    }
    return result


def _set_the_scene(options: Options, show: Show, stage: Stage) -> dict[str, int]:
    """The org's allocations said, the web app up, Real-Time Sync on; the allocations."""
    allocations = {api: int(stage.org.usage()[name]["max"]) for api, name in LIMITS.items()}
    with stage.runtime.sessions() as session:
        workspace = session.get(Workspace, stage.workspace_id)
        assert workspace is not None
        shares = quota_rows.shares(workspace)
    show.say(
        f"The org: {story.EDITION} edition, {story.LICENSES} licenses: "
        f"{allocations['data']:,} Data API calls and {allocations['apex']:,} async Apex "
        f"executions per rolling 24 hours. quotasync may use {shares['data']}% of the Data "
        f"calls and {shares['apex']}% of the Apex executions (the workspace's shares), and "
        "makes no call of a type once the org as a whole is at 90% of it"
    )
    url = stage.serve(options.port)
    stage.realtime_on()
    show.say(f"The web app is up at {url}; Real-Time Sync is on: the org pushes its changes to it")
    return allocations


def _yesterday(show: Show, org: DemoOrg, clock: VirtualClock, allocations: dict[str, int]) -> None:
    """Other apps' calls from yesterday, placed so that they leave the window during the story.
    Both clocks move together: the org's and quotasync's always read the same time."""
    lead_in = story.lead_in(clock.now())
    org.advance(lead_in)
    clock.advance(lead_in)
    for yesterday, advance in story.prelude():
        spend = yesterday.spend
        total = allocations[spend.api]
        spent = org.consume(spend.app, spend.api, spend.calls(total))
        until = clock.now() + timedelta(hours=24)
        show.say(
            f"Yesterday: {spend.app} spends {spent:,} of the org's {total:,} "
            f"{WORDS.get(spend.api, spend.api)}; they count until {until:%H:%M} today"
        )
        org.advance(advance)
        clock.advance(advance)
    show.say(f"{clock.now():%A} morning: the story begins", style="bold")


def _introduce(show: Show, stage: Stage, *, until_stopped: bool) -> None:
    show.note(f"\n  Open {stage.url} and sign in:")
    show.note(f"    admin   {stage.admin.email:<32} {stage.admin.password}")
    show.note("            Integrations (quota bars, pauses, switches), Outbox (the emails)")
    show.note(f"    member  {stage.member.email:<32} {stage.member.password}")
    show.note("            Settings (your calls), Activities (yours)")
    if until_stopped:
        show.note("  Ctrl-C stops the demo and prints what happened.")
    show.note("")


def _tell(
    options: Options,
    show: Show,
    stage: Stage,
    stop: threading.Event,
    product: EmailProduct,
    desk: LeadDesk,
    chapters: watch.Chapters,
    allocations: dict[str, int],
) -> None:
    beats: Sequence[story.Beat] = story.BEATS
    deadline = show.real_seconds() + options.minutes * 60 if options.minutes else None
    snapshot: watch.Snapshot | None = None
    while not stop.is_set() and (deadline is None or show.real_seconds() < deadline):
        try:
            beats = _act(show, stage.org, beats, allocations, snapshot)
            product.post_due()
            desk.save_due(stage.clock.now())
            snapshot = _snapshot(stage)
        except requests.RequestException as error:
            stage.org.check_alive()
            log.warning("a look at the org or the app failed, again next tick: %s", error)
            stop.wait(TICK)
            continue
        for line in chapters.news(snapshot):
            show.say(line, style="bold" if line is chapters.finale else None)
        show.status(snapshot, len(product.accepted))
        stop.wait(TICK)


def _act(
    show: Show,
    org: DemoOrg,
    beats: Sequence[story.Beat],
    allocations: dict[str, int],
    snapshot: watch.Snapshot | None,
) -> list[story.Beat]:
    """Carry out the beats that are due; the ones still to come."""
    minute = show.minute()
    due = [b for b in beats if b.due(minute, snapshot.share(b.api) if snapshot else 0.0)]
    for beat in due:
        values: dict[str, str] = {}
        if beat.load is not None:
            rate = beat.load.calls_per_hour(allocations[beat.load.api])
            org.load(beat.load.app, beat.load.api, rate)
            values["rate"] = f"{rate:,.0f}"
        if beat.spend is not None:
            total = allocations[beat.spend.api]
            values["calls"] = (
                f"{org.consume(beat.spend.app, beat.spend.api, beat.spend.calls(total)):,}"
            )
        show.say(beat.says.format(**values), style="cyan")
    return [b for b in beats if b not in due]


def _finish(show: Show, stage: Stage, stop: threading.Event, *, quick: bool) -> None:
    """The reps have stopped: the worker writes what is waiting (briefly after Ctrl-C), stops."""
    if quick:
        show.say("Stopping: the worker gets a moment to finish its batch…")
    else:
        show.say("The reps stop; the worker writes what is still waiting…")
    stop_waiting = threading.Event() if quick else stop
    give_up = show.real_seconds() + (QUICK_DRAIN if quick else DRAIN_SECONDS)
    while show.real_seconds() < give_up and not stop_waiting.is_set():
        with stage.runtime.sessions() as session:
            if outbox.pending_count(session, stage.workspace_id) == 0:
                break
        stop_waiting.wait(TICK)
    stage.stop_worker()
    # So the mirror has every change the org made; nothing below depends on it.
    with contextlib.suppress(requests.RequestException):
        stage.org.flush_pushes()


def _snapshot(stage: Stage) -> watch.Snapshot:
    return watch.take(
        stage.runtime.sessions, stage.workspace_id, stage.org.usage(), stage.clock.now()
    )


def _verdict(stage: Stage, accepted: list[dict[str, Any]]) -> verdict.Verdict:
    with stage.runtime.sessions() as session:
        rows = session.execute(
            select(Activity.id, Activity.state).where(Activity.workspace_id == stage.workspace_id)
        ).all()
        workspace = session.get(Workspace, stage.workspace_id)
        assert workspace is not None
        prefix = workspace.external_id_prefix
    states = {activity_id: state for activity_id, state in rows}
    org = stage.org
    return verdict.check(accepted, states, org.records("Task"), org.records("Event"), prefix)


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise Interrupted


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """Everything the product logs goes to the demo's log file, not over the story."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
