"""What a request's handler finds on the app: the runtime `create_app` was given, as a FastAPI
dependency, so that handlers are plain module-level functions rather than closures over it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from quotasync.runtime import Runtime


def install(app: FastAPI, runtime: Runtime) -> None:
    app.state.runtime = runtime


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]
