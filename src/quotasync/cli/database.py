"""`quotasync db`: the store's migrations."""

from __future__ import annotations

from typing import Annotated

import typer

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the store's migrations (SQLite in the data dir, or QUOTASYNC_DATABASE_URL)."""
    from quotasync.config import Settings
    from quotasync.store import db

    url = Settings().effective_database_url
    db.upgrade(url, revision)
    typer.echo(f"database at revision {db.current_revision(url)}")
