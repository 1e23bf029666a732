"""What a request's handler finds on the app: the runtime `create_app` was given, as a FastAPI
dependency, so that handlers are plain module-level functions rather than closures over it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from quotasync.runtime import Runtime
from quotasync.web import auth


def install(app: FastAPI, runtime: Runtime) -> None:
    app.state.runtime = runtime
    # One per app: the wrong passwords it counts are the whole server's.
    app.state.sign_in_throttle = auth.SignInThrottle(runtime.clock)


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def sign_in_throttle(request: Request) -> auth.SignInThrottle:
    found: auth.SignInThrottle = request.app.state.sign_in_throttle
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]
ThrottleDep = Annotated[auth.SignInThrottle, Depends(sign_in_throttle)]
