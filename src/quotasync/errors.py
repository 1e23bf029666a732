"""quotasync's errors: one tree, with what a handler needs in typed fields.

Third-party exceptions (requests', SQLAlchemy's) are translated into these once, where they
arise: `salesforce.api.send` and `salesforce.connection` for the network, `store.db.adding` for
the store. Above that seam (the engine, the CLI, the web app) handlers name only these classes and
read their fields; none reads a message to find out what happened. A message is for the person
who meets the error, in their terms.

    QuotasyncError
    ├── SalesforceError       a request to Salesforce did not go through
    │   ├── Unreachable       no answer, or none that can be read (`cause`)
    │   ├── SessionExpired    the session ended and quotasync could not get another
    │   ├── GrantRefused      the org refuses quotasync's grant (OAuth `error`, `description`)
    │   └── Refused           an error status, with Salesforce's `fault` (its errorCode)
    │       └── NoApiAccess   the org, or the sync user, may not use the API
    ├── QuotaExhausted        the ledger has no room for a call (RULES.md: No overshoot)
    ├── NotConnected          the workspace has no Salesforce connection
    ├── NotFound              no such workspace (or other thing asked for)
    ├── Conflict              the store holds it already (a unique key taken)
    └── InvalidInput          input quotasync refuses; the message says what it accepts

Pure: no I/O and no third-party imports, so the domain may derive its own errors from these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class QuotasyncError(Exception):
    """Every error quotasync raises on purpose."""


# ---------------------------------------------------------------- Salesforce


class SalesforceError(QuotasyncError):
    """A request to Salesforce, or to its login host, did not go through."""


class NoAnswer(StrEnum):
    """Why a request has no answer quotasync can use."""

    NETWORK = "network"  # no connection, reset, timed out
    TLS = "tls"  # the host's certificate is not trusted
    UNREADABLE = "unreadable"  # an answer came, but not one quotasync can read


class Unreachable(SalesforceError):
    """No answer, or one that cannot be read: the request may or may not have been applied."""

    def __init__(self, message: str, cause: NoAnswer, host: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.host = host


class SessionExpired(SalesforceError):
    """The sync user's session ended and quotasync could not get a new one (the grant is gone,
    or there is nothing to renew it with): only an admin connecting again mends it."""


class GrantRefused(SalesforceError):
    """The login host refused quotasync's grant (a password, a code, an assertion, a refresh
    token): OAuth's `error` and `error_description`, as Salesforce sent them."""

    def __init__(self, message: str, error: str, description: str) -> None:
        super().__init__(message)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Fault:
    """Salesforce's error body: `[{"errorCode": ..., "message": ...}]` for a request,
    `{"statusCode": ..., "message": ...}` for one record."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


# The codes Salesforce refuses a whole request with when the API is closed: to the org (its
# edition, or a setting), or to the sync user (no API Enabled).
NO_API_CODES = frozenset({"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"})


class Refused(SalesforceError):
    """Salesforce answered with an error status (from 300 on); `fault` holds its errorCode."""

    def __init__(self, status: int, fault: Fault, message: str | None = None) -> None:
        super().__init__(message or f"{status} {fault}")
        self.status = status
        self.fault = fault

    @staticmethod
    def of(status: int, fault: Fault) -> Refused:
        """The refusal an answer means: `NoApiAccess` for the codes that close the API."""
        return (NoApiAccess if fault.code in NO_API_CODES else Refused)(status, fault)


class NoApiAccess(Refused):
    """The org has no API access (`API_DISABLED_FOR_ORG`), or the sync user lacks API Enabled
    (`API_CURRENTLY_DISABLED`): nothing syncs until an admin acts."""


# ---------------------------------------------------------------- quotasync's own


class QuotaExhausted(QuotasyncError):
    """A reservation that would take quotasync past its share or the org guard: nothing was
    sent (RULES.md: No overshoot, Pause, don't drop)."""

    def __init__(self, workspace_id: str, api: str, used: int, cost: int, cap: int) -> None:
        super().__init__(f"{api}: {used} used + {cost} would pass the cap of {cap}")
        self.workspace_id = workspace_id
        self.api = api  # data | bulk | bulk_query | apex
        self.used = used
        self.cost = cost
        self.cap = cap


class NotConnected(QuotasyncError):
    """The workspace has no Salesforce connection."""


class NotFound(QuotasyncError, LookupError):
    """What was asked for does not exist."""


class Conflict(QuotasyncError):
    """The store holds it already: a row with the same unique key was there first."""


class InvalidInput(QuotasyncError, ValueError):
    """Input quotasync refuses (a setting, a form, a file, a posted item); the message says
    what is accepted, for the person who gave it."""
