"""Starting the sandbox: state directory, certificates, the listening socket, `sandbox.json`."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from quotasync import private_files
from quotasync.clock import Clock
from quotasync.sandbox import rts, tls
from quotasync.sandbox.app import build_app
from quotasync.sandbox.org import DEFAULT_API_VERSION, PROFILES, ClockWentBack, Org, OrgConfig


class _Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # An idle keep-alive client never answers TLS close_notify, so a graceful close of its
        # connection would hold the shutdown until the timeout. Nothing is in flight: cut it.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it a response's head and body are held apart by
    # Nagle's algorithm and every request waits ~40 ms on the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def describe(org: Org, ca_file: Path, admin_token: str) -> dict[str, Any]:
    """What `sandbox.json` says: where the org is and who may use it."""
    users = []
    for handle, user_id in org.settings["users"].items():
        user = org.records.get(user_id)
        assert user is not None
        profile = org.records.get(user["ProfileId"])
        users.append(
            {
                "handle": handle,
                "username": user["Username"],
                "password": org.settings["passwords"][user["Username"]],
                "user_id": user_id,
                "profile": profile["Name"] if profile else None,
                "api_enabled": org.permission(user_id, "PermissionsApiEnabled"),
                "view_setup": org.permission(user_id, "PermissionsViewSetup"),
            }
        )
    apps = []
    for app in org.auth.apps.values():
        slug = "".join(c for c in app.name.lower() if c.isalnum())
        apps.append(
            {
                "name": app.name,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "jwt_key_file": str((org.state_dir / f"jwt-{slug}.key").resolve()),
                "run_as": app.run_as,
            }
        )
    return {
        "instance_url": org.base_url,
        "login_url": org.base_url,
        "ca_file": str(ca_file.resolve()),
        "org_id": org.org_id,
        "api_version": DEFAULT_API_VERSION,
        "edition": org.settings["edition"],
        "organization_type": org.edition.organization_type,
        "users": users,
        "connected_apps": apps,
        "admin_url": f"{org.base_url}/__sandbox",
        "admin_token": admin_token,
        "rts_callback": rts.summary(org.records)["callback"],
        **_seeded_rts(org),
        "profiles": {
            name: {"api_enabled": a, "view_setup": v} for name, (a, v) in PROFILES.items()
        },
    }


def _seeded_rts(org: Org) -> dict[str, Any]:
    """The setting `--rts-callback` made: its id, and its secret (a generated one is shown only
    here and to SOQL)."""
    seeded = org.seeded_rts_setting()
    if seeded is None:
        return {}
    return {"rts_setting_id": seeded["Id"], "rts_secret": seeded.get("Secret__c")}


@dataclass
class Prepared:
    """An org with its state loaded, its socket bound and `sandbox.json` written: ready to serve."""

    org: Org
    server: _Server
    sock: socket.socket

    async def serve(self, ready: Callable[[], None]) -> None:
        """Serve until the server is told to exit; `ready` is called once it listens."""
        task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        ready()
        await task


def prepare(
    state_dir: Path,
    config: OrgConfig,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
) -> Prepared:
    """Load (or make) the org in `state_dir`, bind its socket and describe it in `sandbox.json`.

    Raises ClockWentBack when the state was saved at a later moment than `clock` says, and
    OSError when the address cannot be bound."""
    # The state holds the org's passwords, tokens and keys: its user's only.
    private_files.directory(state_dir)
    ca_file, cert_file, key_file = tls.ensure_certificates(state_dir, host)
    org = Org(state_dir, config, clock)
    sock: socket.socket | None = None
    try:
        admin_token = org.settings.get("admin_token")
        if admin_token is None:
            admin_token = org.settings["admin_token"] = secrets.token_urlsafe(32)
            org.settings_changed()
        sock = bind(host, port)
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        org.base_url = f"https://{shown_host}:{bound_port}"
        org.commit()
        private_files.write(
            state_dir / "sandbox.json",
            json.dumps(describe(org, ca_file, admin_token), indent=2).encode(),
        )
        app = build_app(org, admin_token)
        server_config = uvicorn.Config(
            app,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_level=log_level,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            # An idle TLS keep-alive connection otherwise holds shutdown for asyncio's 30 s TLS
            # close_notify wait, and SIGTERM takes half a minute.
            timeout_graceful_shutdown=2,
        )
    except BaseException:
        # Nothing half made is left behind: the org's state and delivery thread, the socket.
        org.close()
        if sock is not None:
            sock.close()
        raise
    return Prepared(org, _Server(server_config), sock)


def run(
    state_dir: Path,
    config: OrgConfig,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
) -> None:
    """`quotasync sandbox`: serve in this process until interrupted, saying `sandbox ready:`."""
    try:
        prepared = prepare(state_dir, config, clock, host, port, log_level)
    except ClockWentBack as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    org = prepared.org
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(prepared.serve(lambda: print(f"sandbox ready: {org.base_url}", flush=True)))
    finally:
        org.close()


class InThread:
    """An org served from a thread of the calling process: the same app, TLS and socket as
    `quotasync sandbox`, without a process to start (tests and benchmarks that start many orgs)."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-org", daemon=True)

    def start(self, timeout: float) -> None:
        self._thread.start()
        started = self._ready.wait(timeout) and self.prepared.server.started
        if not started or self._failure is not None or not self._thread.is_alive():
            self.stop()
            raise RuntimeError(f"the sandbox org did not start: {self._failure!r}")

    def _run(self) -> None:
        try:
            asyncio.run(self.prepared.serve(self._ready.set))
        except BaseException as exc:  # reported to start(); the thread has no one else to tell
            self._failure = exc
        finally:
            try:
                self.prepared.org.close()
            finally:
                self.prepared.sock.close()
                self._ready.set()

    def stop(self, timeout: float = 30) -> None:
        self.prepared.server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the sandbox org did not stop within {timeout} s")
