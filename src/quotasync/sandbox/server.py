"""Starting the sandbox: state directory, certificates, the listening socket, `sandbox.json`."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

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


def run(
    state_dir: Path,
    config: OrgConfig,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = tls.ensure_certificates(state_dir, host)
    try:
        org = Org(state_dir, config, clock)
    except ClockWentBack as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    admin_token = org.settings.get("admin_token")
    if admin_token is None:
        admin_token = org.settings["admin_token"] = secrets.token_urlsafe(32)
        org.settings_changed()
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    org.base_url = f"https://{shown_host}:{bound_port}"
    org.commit()
    (state_dir / "sandbox.json").write_text(
        json.dumps(describe(org, ca_file, admin_token), indent=2)
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
    server = _Server(server_config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        print(f"sandbox ready: {org.base_url}", flush=True)
        await task

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve())
    finally:
        org.close()
