"""Settings from the environment (`QUOTASYNC_*`), with embedded defaults: SQLite in `./.quotasync`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUOTASYNC_", extra="ignore")

    data_dir: Path = Field(default=Path(".quotasync"), description="Where local state lives.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data dir when unset."
    )
    secret_key: str | None = Field(
        default=None,
        description="Fernet key for secrets at rest; generated into the data dir when unset.",
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'quotasync.db').resolve()}"
