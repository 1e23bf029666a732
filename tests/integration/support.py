"""Small helpers the integration tests share."""

from __future__ import annotations

from typing import Any

import pytest


def first_error(excinfo: pytest.ExceptionInfo[Any]) -> Any:
    """The first entry of the error array simple-salesforce kept from the response."""
    content: Any = excinfo.value.content
    return content[0]
