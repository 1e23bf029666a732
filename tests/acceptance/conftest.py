from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acceptance.web_support import Site, serve_site


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`quotasync serve` with two workspaces and real figures, shared by the web tests."""
    yield from serve_site(tmp_path_factory.mktemp("site"))
