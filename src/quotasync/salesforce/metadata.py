"""Deploying a package through the Metadata API's REST resource, as one governed, ledgered request
and a poll of its status (docs/ORG_PACKAGE.md).

`POST /services/data/vNN.N/metadata/deployRequest` takes a multipart body: a `json` part holding
`{"deployOptions": {...}}` and a `file` part holding the zip. Salesforce answers 201 with the
deploy's id and a `deployResult` still `Pending`; `GET .../deployRequest/{id}?includeDetails=true`
answers its progress (`numberComponentsDeployed` of `numberComponentsTotal`) until `done`, with
each component that failed in `details.componentFailures` (its type, name and `problem`).

Every request leaves through `api.send`: reserved in the ledger (one Data API call each, purpose
`org_install`, or `org_uninstall`) before it is sent, like every other call. The waits between polls are on the
injected clock's `sleep`, so tests never wait on wall time.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from quotasync.errors import NoAnswer, SalesforceError, Unreachable
from quotasync.salesforce import api

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Client

PURPOSE = "org_install"
FIRST_WAIT = 1.0  # seconds before the first look at a deploy
LONGEST_WAIT = 15.0  # each look that finds it running doubles the wait, up to this
GIVE_UP_AFTER = 30 * 60.0  # seconds waited before quotasync stops looking (the deploy goes on)
DONE = frozenset({"Succeeded", "SucceededPartial", "Failed", "Canceled"})

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Problem:
    """A component Salesforce could not deploy, or a test that failed, in its words."""

    type: str  # componentType (ApexClass, CustomField...), or "ApexTest"
    name: str  # fullName, or Class.method for a test
    problem: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f" ({self.file}{f', line {self.line}' if self.line else ''})" if self.file else ""
        return f"{self.type} {self.name}{where}: {self.problem}"


@dataclass(frozen=True)
class Status:
    """Where a deploy stands: `deployResult`, read defensively (the org's answer is untrusted)."""

    id: str
    status: str
    done: bool
    success: bool
    check_only: bool
    deployed: int
    total: int
    errors: int
    tests_completed: int
    tests_total: int
    problems: tuple[Problem, ...] = ()
    message: str | None = None  # errorMessage: a failure of the whole deploy

    @property
    def failed(self) -> bool:
        return self.done and not self.success


class DeployFailed(SalesforceError):
    """The org refused the package: each component's problem, as Salesforce said it."""

    def __init__(self, status: Status) -> None:
        lines = [f"the deploy {status.id} {status.status.lower()}"]
        if status.message:
            lines.append(status.message)
        lines += [str(p) for p in status.problems]
        super().__init__("\n".join(lines))
        self.status = status
        self.problems = status.problems


class DeployTimedOut(SalesforceError):
    """The deploy was still running when quotasync stopped looking (it may yet finish)."""


def deploy(
    client: Client,
    zipped: bytes,
    *,
    sleep: Sleep,
    check_only: bool = False,
    ignore_warnings: bool = False,
    on_status: Callable[[Status], None] | None = None,
    give_up_after: float = GIVE_UP_AFTER,
    purpose: str = PURPOSE,
) -> Status:
    """Deploy (or, with `check_only`, validate) the zip and wait until the org is done.
    `ignore_warnings`: a warning (deleting a component the org lacks) does not fail it.

    Raises DeployFailed with the components' problems when the org refuses it (then nothing was
    applied: the deploy rolls back on any error), DeployTimedOut, and whatever `api.send` raises.
    """
    with client.http.purpose(purpose):
        status = start(client, zipped, check_only=check_only, ignore_warnings=ignore_warnings)
        if on_status is not None:
            on_status(status)
        wait, waited = FIRST_WAIT, 0.0
        while not status.done:
            if waited >= give_up_after:
                raise DeployTimedOut(
                    f"the deploy {status.id} was still {status.status} after {waited:.0f} s; "
                    "Setup > Deployment Status shows how it ends"
                )
            sleep(wait)
            waited += wait
            wait = min(wait * 2, LONGEST_WAIT)
            status = look(client, status.id)
            if on_status is not None:
                on_status(status)
    if status.failed:
        raise DeployFailed(status)
    return status


def start(
    client: Client, zipped: bytes, *, check_only: bool = False, ignore_warnings: bool = False
) -> Status:
    """Send the deploy request (one call); the org's first answer."""
    options = {
        "deployOptions": {
            "checkOnly": check_only,
            # Any failure undoes the whole deploy: a production org requires it anyway.
            "rollbackOnError": True,
            "singlePackage": True,
            "allowMissingFiles": False,
            "ignoreWarnings": ignore_warnings,
            "purgeOnDelete": False,
            "performRetrieve": False,
            "autoUpdatePackage": False,
            # No testLevel: Salesforce's default runs the org's local tests in production (a
            # deploy with Apex needs them, and 75% coverage) and none in a sandbox.
        }
    }
    boundary = "----quotasync" + secrets.token_hex(12)
    body = _multipart(boundary, json.dumps(options).encode(), zipped)
    response = api.send(
        client,
        "POST",
        "metadata/deployRequest",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    return read(api.json_of(response))


def look(client: Client, deploy_id: str) -> Status:
    """The deploy's progress and, once done, each component's outcome (one call)."""
    path = f"metadata/deployRequest/{quote(deploy_id, safe='')}"
    response = api.send(client, "GET", path, params={"includeDetails": "true"})
    return read(api.json_of(response))


def read(answer: Any) -> Status:
    """A deployRequest answer's status; Unreachable when it is not one."""
    result = answer.get("deployResult") if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        raise Unreachable("the org's answer holds no deployResult", NoAnswer.UNREADABLE)
    deploy_id = answer.get("id") or result.get("id")
    status = result.get("status")
    if not isinstance(deploy_id, str) or not deploy_id or not isinstance(status, str):
        raise Unreachable("the org's deployResult names no id or status", NoAnswer.UNREADABLE)
    details = result.get("details")
    details = details if isinstance(details, dict) else {}
    return Status(
        id=deploy_id,
        status=status,
        done=result.get("done") is True or status in DONE,
        success=result.get("success") is True,
        check_only=result.get("checkOnly") is True,
        deployed=_count(result, "numberComponentsDeployed"),
        total=_count(result, "numberComponentsTotal"),
        errors=_count(result, "numberComponentErrors"),
        tests_completed=_count(result, "numberTestsCompleted"),
        tests_total=_count(result, "numberTestsTotal"),
        problems=tuple(_problems(details)),
        message=_text(result.get("errorMessage")),
    )


def _problems(details: dict[str, Any]) -> list[Problem]:
    found = []
    for item in _listed(details.get("componentFailures")):
        found.append(
            Problem(
                type=_text(item.get("componentType")) or "component",
                name=_text(item.get("fullName")) or "(unnamed)",
                problem=_text(item.get("problem")) or "no problem given",
                file=_text(item.get("fileName")),
                line=item.get("lineNumber") if isinstance(item.get("lineNumber"), int) else None,
            )
        )
    tests = details.get("runTestResult")
    for item in _listed(tests.get("failures") if isinstance(tests, dict) else None):
        name = f"{_text(item.get('name')) or '?'}.{_text(item.get('methodName')) or '?'}"
        found.append(Problem("ApexTest", name, _text(item.get("message")) or "failed"))
    return found


def _listed(value: Any) -> list[dict[str, Any]]:
    """Salesforce sends one failure as an object and several as a list."""
    items = value if isinstance(value, list) else [value] if value is not None else []
    return [i for i in items if isinstance(i, dict)]


def _count(result: dict[str, Any], name: str) -> int:
    value = result.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str | None:
    return str(value)[:2000] if value not in (None, "") else None


def _multipart(boundary: str, options: bytes, zipped: bytes) -> bytes:
    """The two parts Salesforce's REST deploy takes: `json` (the options) and `file` (the zip)."""
    head = f"--{boundary}\r\n"
    return b"".join(
        [
            head.encode(),
            b'Content-Disposition: form-data; name="json"\r\n',
            b"Content-Type: application/json\r\n\r\n",
            options,
            b"\r\n",
            head.encode(),
            b'Content-Disposition: form-data; name="file"; filename="deploy.zip"\r\n',
            b"Content-Type: application/zip\r\n\r\n",
            zipped,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
