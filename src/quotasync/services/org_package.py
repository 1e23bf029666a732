"""Installing quotasync's package in a workspace's org (`quotasync org install`): the fields,
Real-Time Sync's setting object and Apex, the Remote Site Setting for quotasync's address, and
the sync user's permission set, in one Metadata API deploy (docs/ORG_PACKAGE.md).

The deploy runs as the workspace's connected user, who needs Modify All Data (or Modify
Metadata): an admin. Deploying the same package again changes nothing, so installing is safe to
repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from quotasync.errors import InvalidInput
from quotasync.salesforce import metadata, package

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Connector


class NotAnAddress(InvalidInput):
    """quotasync's address, which the org's Remote Site Setting names, is not an http(s) URL."""


def install(
    connector: Connector,
    workspace_id: str,
    url: str,
    *,
    sleep: metadata.Sleep,
    check_only: bool = False,
    package_dir: Path = package.DEFAULT_DIR,
    on_status: Callable[[metadata.Status], None] | None = None,
) -> metadata.Status:
    """Deploy the package (or, with `check_only`, validate it) to the workspace's org, allowing
    callouts to `url`'s origin; the final status.

    Raises NotAnAddress and package.PackageError before anything is sent; then
    metadata.DeployFailed (each component's problem), metadata.DeployTimedOut, NotConnected, and
    the calls' own failures (SalesforceError, QuotaExhausted).
    """
    try:
        package.origin(url)
    except ValueError:
        raise NotAnAddress(f"quotasync's address must be an http(s) URL; got {url!r}") from None
    zipped = package.build(package_dir, url)
    client = connector.client(workspace_id)
    return metadata.deploy(client, zipped, sleep=sleep, check_only=check_only, on_status=on_status)
