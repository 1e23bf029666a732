"""The benchmarks' PostgreSQL: a schema of a run's own, and the server's version for reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text


@contextmanager
def fresh_schema(base_url: str, prefix: str = "bench") -> Iterator[str]:
    """A URL on a schema of its own (the search_path option, as tests/databases.py does), dropped
    afterwards with everything in it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in base_url else "?"
        yield f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def postgres_version(base_url: str) -> str:
    engine = create_engine(base_url)
    try:
        with engine.connect() as connection:
            return str(connection.scalar(text("SHOW server_version"))).split()[0]
    finally:
        engine.dispose()
