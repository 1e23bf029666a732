"""The running product the demo plays on: the store, a workspace connected to the sandbox org,
the web app (`quotasync serve`'s app) on 127.0.0.1, and the worker; started in order, stopped in
reverse."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import uvicorn

from quotasync.clock import VirtualClock
from quotasync.config import Settings
from quotasync.demo.org import DemoOrg
from quotasync.demo.reps import org_people
from quotasync.domain.roles import Role
from quotasync.engine import process
from quotasync.engine.checker import LimitsChecker
from quotasync.engine.pool import Pool
from quotasync.engine.realtime import RealTime
from quotasync.errors import QuotasyncError
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.services import connecting
from quotasync.services.connecting import SandboxFlow
from quotasync.store import users, workspaces
from quotasync.web.app import create_app

log = logging.getLogger("quotasync.demo")

WORKSPACE = "Acme Sales"
ADMIN = "revops@acme.example"
HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0  # real seconds a server or the worker gets to stop


class CannotServe(QuotasyncError):
    """The web app's port cannot be listened on; the message says why."""


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass
class Stage:
    org: DemoOrg
    runtime: Runtime
    clock: VirtualClock
    workspace_id: str
    ingest_token: str
    admin: Login
    member: Login
    reps: dict[str, str]  # the org's reps: email -> User id
    people: list[str]  # the org's Contacts' and Leads' emails
    url: str = ""
    _server: uvicorn.Server | None = None
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _stop_worker: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def build(cls, data_dir: Path, org: DemoOrg, clock: VirtualClock) -> Stage:
        """A workspace with an admin and a member, connected to the org as its admin user (who
        has View Setup, so every API type is governed), with the org's people mirrored."""
        runtime = open_runtime(Settings(data_dir=data_dir, database_url=None), clock=clock)
        reps, people = org_people(org.records)
        with runtime.sessions.begin() as session:
            new = workspaces.create(session, WORKSPACE, ADMIN, clock.now())
            # A stranger's email is logged without a WhoId, so every activity ends up in the org.
            new.workspace.unmatched = "log_unlinked"
            member = users.add(session, new.workspace, sorted(reps)[0], Role.MEMBER, clock.now())
        workspace_id = new.workspace.id
        connector = runtime.connector
        login = SandboxLogin.read(org.state_dir / "sandbox.json", user="admin")
        connecting.connect(runtime.sessions, connector, clock, workspace_id, SandboxFlow(login))
        client = connector.client(workspace_id)
        # The first `/limits` reading: the Apex figures Real-Time Sync is governed by.
        LimitsChecker(runtime.sessions, workspace_id, clock, lambda: client).step()
        return cls(
            org=org,
            runtime=runtime,
            clock=clock,
            workspace_id=workspace_id,
            ingest_token=new.ingest_token,
            admin=Login(ADMIN, new.admin_password),
            member=Login(member.user.email, member.password),
            reps=reps,
            people=people,
        )

    def serve(self, port: int) -> str:
        """`quotasync serve`'s app on 127.0.0.1:port (0: a free one); its URL."""
        sock = socket.socket(socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            sock.close()
            raise CannotServe(f"cannot serve on {HOST}:{port}: {exc.strerror or exc}") from None
        sock.listen(128)
        config = uvicorn.Config(
            create_app(self.runtime),
            log_config=None,  # the demo's log file has uvicorn's lines too
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._start("web", lambda: self._serve(sock))
        while not self._server.started:
            if not self._threads["web"].is_alive():
                raise CannotServe(f"the web app did not start on {HOST}:{port}; see the log")
            threading.Event().wait(0.05)
        self.url = f"http://{HOST}:{sock.getsockname()[1]}"
        return self.url

    def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        # Not the main thread: uvicorn leaves the signals to the demo.
        self._server.run(sockets=[sock])

    def realtime_on(self) -> None:
        """Real-Time Sync: the org pushes its changes to this app's `/rts/{workspace}`."""
        switch = RealTime(self.runtime.connector, self.workspace_id, self.clock)
        switch.enable(f"{self.url}/rts/{self.workspace_id}")

    def start_worker(self) -> None:
        """The worker as `quotasync worker` runs it: a pool of one thread, by lease."""
        settings = self.runtime.settings
        # A claimed batch is held for a real minute, whatever the clock's speed.
        claim = timedelta(seconds=settings.claim_seconds * max(1.0, self.clock.speed))
        pool = process.pool(self.runtime, claim=claim)
        self._start("worker", lambda: self._work(pool))

    def _work(self, pool: Pool) -> None:
        while not self._stop_worker.is_set():
            try:
                pool.run(self._stop_worker)
            except Exception:
                log.exception("the worker met an error; it goes on in a second")
                self._stop_worker.wait(1.0)

    def stop_worker(self) -> None:
        self._stop_worker.set()
        self._join("worker")

    def stop(self) -> None:
        """The worker, then the web app (the org is the caller's to stop)."""
        self.stop_worker()
        if self._server is not None:
            self._server.should_exit = True
            self._join("web")

    def _start(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"demo-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    def _join(self, name: str) -> None:
        thread = self._threads.get(name)
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT)
            if thread.is_alive():
                log.warning("the %s did not stop within %s s", name, STOP_TIMEOUT)
