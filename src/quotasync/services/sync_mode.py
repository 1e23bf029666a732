"""Switching a workspace between Real-Time Sync and Interval Sync: the Integrations page's
switch and `quotasync rts on|off`. Either way the org's setting record is written, one Data call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quotasync.clock import Clock
from quotasync.domain.realtime import SyncMode
from quotasync.engine.realtime import RealTime, Switch
from quotasync.errors import InvalidInput

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Connector


class NotAPushUrl(InvalidInput):
    """Real-Time Sync asked for with a push URL the org cannot push to."""

    def __init__(self, url: str) -> None:
        super().__init__(f"the push URL must be an http(s) URL; got {url!r}")
        self.url = url


def switch(
    connector: Connector, clock: Clock, workspace_id: str, mode: SyncMode, url: str = ""
) -> Switch:
    """Real-Time Sync on (the org pushes to `url`) or off (Interval Sync keeps the mirror).

    Raises NotAPushUrl before anything is sent; then what switching raises:
    engine.realtime.RealTimeUnavailable, NotConnected, NotFound (the workspace is gone), and the
    call's own failures (SalesforceError, QuotaExhausted).
    """
    real_time = RealTime(connector, workspace_id, clock)
    if mode == SyncMode.INTERVAL:
        return real_time.disable()
    if not url.startswith(("http://", "https://")):
        raise NotAPushUrl(url)
    return real_time.enable(url)
