"""How the demo talks: each chapter on its own line, stamped with the virtual time, the story's
minute and the real time since the start; and, on a terminal, a live status line under them."""

from __future__ import annotations

import time
from datetime import datetime
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from quotasync.clock import Clock
from quotasync.demo.watch import Snapshot
from quotasync.domain.realtime import SyncMode


class Show:
    def __init__(self, console: Console, clock: Clock) -> None:
        self.console = console
        self.clock = clock
        self.real_start = time.monotonic()
        self.story_start: datetime | None = None
        self.live = Live(console=console, transient=True, refresh_per_second=4)

    def __enter__(self) -> Show:
        self.live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.live.stop()

    def begin_story(self) -> None:
        self.story_start = self.clock.now()

    def minute(self) -> float:
        """Minutes of the story so far on the virtual clock (0 before it starts)."""
        if self.story_start is None:
            return 0.0
        return (self.clock.now() - self.story_start).total_seconds() / 60

    def real_seconds(self) -> float:
        """Real seconds the watcher has waited (told beside the story's virtual minutes)."""
        return time.monotonic() - self.real_start

    def stamp(self) -> str:
        now = self.clock.now().strftime("%H:%M")
        story = f"+{self.minute():3.0f} min" if self.story_start is not None else "  setup"
        real = int(self.real_seconds())
        return f"{now} {story} │ {real // 60}:{real % 60:02d}"

    def say(self, text: str, style: str | None = None) -> None:
        line = Text(f"[{self.stamp()}] ", style="dim")
        line.append(text, style=style)
        self.console.print(line, soft_wrap=True)

    def note(self, text: str) -> None:
        """A line without a time stamp (sign-in details, hints)."""
        self.console.print(text, soft_wrap=True, highlight=False)

    def status(self, snapshot: Snapshot, accepted: int) -> None:
        paused = snapshot.paused()
        writing = f"paused: {paused[0].reason}" if paused else "writing"
        sync = "Real-Time" if snapshot.mode == SyncMode.REALTIME else "Interval"
        self.live.update(
            Text(
                f"{self.stamp()} │ {accepted:,} accepted, {snapshot.logged:,} in the org, "
                f"{snapshot.pending:,} waiting │ {writing} │ {sync} Sync │ org: Data "
                f"{snapshot.share('data'):.0%}, Apex {snapshot.share('apex'):.0%} │ "
                f"{len(snapshot.emails)} emails",
                style="bold",
            )
        )
