"""Fixtures every test folder may use."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Before anything imports quotasync.store.users: see FAST_HASHING_VARIABLE there. Commands and
# workers the tests start inherit it.
os.environ.setdefault("QUOTASYNC_INSECURE_FAST_PASSWORD_HASHING", "1")

from quotasync.sandbox.org import KEY_CACHE_VARIABLE
from tests.databases import database_url

__all__ = ["database_url"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` go first: the processes share two cores, and a minute-long test
    handed out last would run on after every other test has ended."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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
