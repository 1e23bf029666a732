"""`GET /metrics`: Prometheus's scrape of the store's figures and this process's own metrics.

The figures name workspaces, so they are an operator's view: off until `QUOTASYNC_METRICS_TOKEN`
is set, and then only for a request bearing that token. See docs/METRICS.md.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST

from quotasync import metrics
from quotasync.web.state import RuntimeDep

router = APIRouter(tags=["operators"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."},
        401: {"description": "No bearer token, or not the metrics token."},
        404: {"description": "Metrics are off: QUOTASYNC_METRICS_TOKEN is not set."},
    },
)
# A plain `def`: the scrape's queries run on the threadpool, not the event loop.
def scrape(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Calls by workspace and API type, pauses, backlogs, leases, batch sizes and the
    latency from ingest to Salesforce, in Prometheus's text format."""
    # An empty value counts as unset: an empty bearer token must never open the figures.
    setting = runtime.settings.metrics_token
    token = setting.get_secret_value() if setting is not None else ""
    if not token:
        raise HTTPException(404, "metrics are off: set QUOTASYNC_METRICS_TOKEN")
    if not _bears(authorization, token):
        raise HTTPException(
            401,
            "send the metrics token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = metrics.exposition(runtime.sessions, runtime.clock)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _bears(authorization: str | None, token: str) -> bool:
    """Whether the header carries the token; compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
