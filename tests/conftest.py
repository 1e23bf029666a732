"""Fixtures every test folder may use."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from quotasync.sandbox.org import KEY_CACHE_VARIABLE
from tests.databases import database_url

__all__ = ["database_url"]


@pytest.fixture(scope="session", autouse=True)
def sandbox_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The sandbox orgs a test process starts share their apps' JWT keys, made once (three
    2048-bit RSA keys cost about a third of a second of each of a hundred org starts)."""
    before = os.environ.get(KEY_CACHE_VARIABLE)
    os.environ[KEY_CACHE_VARIABLE] = str(tmp_path_factory.mktemp("sandbox-keys"))
    yield
    if before is None:
        os.environ.pop(KEY_CACHE_VARIABLE, None)
    else:
        os.environ[KEY_CACHE_VARIABLE] = before
