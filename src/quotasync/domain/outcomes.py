"""What a Salesforce error means for the work that met it.

Every failure the writer sees is sorted here, at one boundary, into an `Outcome`:

- `done`: written.
- `failed`: permanent. The record itself is wrong for this org (a validation rule, a field that
  does not exist, a value too long...). Sending it again would fail again, so the activity is
  parked as failed with Salesforce's message for a person to read.
- `retry`: transient (a row lock, a 5xx, a timeout). Try again after `backoff(attempt)`.
- `pause`: `REQUEST_LIMIT_EXCEEDED`. Salesforce refuses calls, so the workspace stops writing and
  keeps its work; the governor decides when to resume.
- `reauth`: `INVALID_SESSION_ID`. Refresh the token; the caller does this once per request and
  treats a second expiry in a row as an auth pause.
- `no_api`: the org has no API access (edition or setting), so nothing can sync until an admin acts.

Unknown codes count as `failed`: parking one record to be looked at is safer than retrying it
forever or pausing a whole workspace because of it.
"""

from __future__ import annotations

import math
from enum import StrEnum


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"
    PAUSE = "pause"
    REAUTH = "reauth"
    NO_API = "no_api"


# Codes whose meaning does not depend on where they appear (one record or a whole request).
_CODE_OUTCOMES: dict[str, Outcome] = {
    "UNABLE_TO_LOCK_ROW": Outcome.RETRY,
    "REQUEST_LIMIT_EXCEEDED": Outcome.PAUSE,
    "INVALID_SESSION_ID": Outcome.REAUTH,
    "API_DISABLED_FOR_ORG": Outcome.NO_API,
    "API_CURRENTLY_DISABLED": Outcome.NO_API,
}

# The record-level codes known to mean "this record is wrong". Listed for readers and tests; any
# code not in _CODE_OUTCOMES is treated the same way.
VALIDATION_CODES: frozenset[str] = frozenset(
    {
        "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
        "DUPLICATE_EXTERNAL_ID",
        "DUPLICATE_VALUE",
        "ENTITY_IS_DELETED",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "FIELD_INTEGRITY_EXCEPTION",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "INSUFFICIENT_ACCESS_OR_READONLY",
        "INVALID_CROSS_REFERENCE_KEY",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_TYPE",
        "MALFORMED_ID",
        "NOT_FOUND",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "REQUIRED_FIELD_MISSING",
        "STRING_TOO_LONG",
    }
)

# Client errors that say "not now" rather than "not this": request timeout, too many requests.
_TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})


def classify_record_error(status_code: str) -> Outcome:
    """The outcome of one record's error in a Collections or Bulk result (its `statusCode`)."""
    return _CODE_OUTCOMES.get(status_code.strip().upper(), Outcome.FAILED)


def classify_response(http_status: int | None, error_code: str | None) -> Outcome:
    """The outcome of a whole request, from its HTTP status and the `errorCode` of its body.

    `http_status` is None when no answer came (timeout, dropped connection): the request may or
    may not have been applied, and upserts make sending it again safe. A known `errorCode` decides
    before the status does, since Salesforce is not consistent about which status carries it.
    """
    if http_status is None:
        return Outcome.RETRY
    code = (error_code or "").strip().upper()
    if code in _CODE_OUTCOMES:
        return _CODE_OUTCOMES[code]
    if 200 <= http_status < 300:
        return Outcome.DONE
    if http_status >= 500 or http_status in _TRANSIENT_CLIENT_STATUSES:
        return Outcome.RETRY
    if http_status == 401:
        # A 401 always means the session is no good, whatever the body says.
        return Outcome.REAUTH
    return Outcome.FAILED


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0, jitter: float = 0.0) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Doubles from `base` up to `cap`. `jitter` in [0, 1) comes from the caller (the only place that
    may hold a random source) and shortens the delay by up to half, so that workers that failed
    together do not all retry together.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    try:
        delay = min(cap, math.ldexp(base, attempt - 1))
    except OverflowError:
        delay = cap  # thousands of attempts: the doubling left float range long after the cap
    return delay * (1 - jitter / 2)
