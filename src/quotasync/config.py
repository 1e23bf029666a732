"""Settings from the environment (`QUOTASYNC_*`), with embedded defaults: SQLite in `./.quotasync`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
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
    smtp_host: str | None = Field(
        default=None,
        description="Mail server for admin notices; .eml files in the outbox when unset.",
    )
    smtp_port: int = Field(default=25, description="Mail server port.")
    smtp_user: str | None = Field(default=None, description="Mail server login, if it needs one.")
    smtp_password: SecretStr | None = Field(default=None, description="Mail server password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    mail_from: str = Field(default="quotasync@localhost", description="The notices' sender.")
    salesforce_client_id: str | None = Field(
        default=None,
        description="The connected app's consumer key, for the web's Connect Salesforce button.",
    )
    salesforce_client_secret: SecretStr | None = Field(
        default=None, description="The connected app's consumer secret (PKCE is used as well)."
    )
    salesforce_login_url: str = Field(
        default="https://login.salesforce.com",
        description="Where admins log in to Salesforce by default (test.salesforce.com for "
        "sandboxes, or a My Domain URL); the Connect form lets them choose.",
    )
    salesforce_ca_file: str | None = Field(
        default=None,
        description="A CA file to trust for the login host (a sandbox org's own CA); unset: the "
        "system's.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address browsers reach quotasync at, for the OAuth callback and the "
        "org package's Remote Site; unset: the address the admin's request came to, which is "
        "trusted only on this machine (Connect refuses a request from beyond loopback without "
        "it).",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="Comma-separated host names the web app answers to (the Host header); "
        "unset: this machine's loopback names and QUOTASYNC_PUBLIC_URL's host. A request for "
        "any other host is refused (400).",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie over HTTPS only: set it when quotasync is served "
        "behind TLS.",
    )
    clock_speed: float | None = Field(
        default=None,
        ge=0,
        description="A virtual clock for every command: N virtual seconds per real second "
        "(0 stands still). Unset: real time.",
    )
    clock_epoch: str | None = Field(
        default=None,
        description="The ISO-8601 instant where the virtual clock and real time agree.",
    )
    claim_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="How long a worker holds a batch it took; a crashed worker's batch is "
        "taken up by another after this.",
    )
    lease_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="How long a worker's lease on a workspace lasts unless renewed (it is, "
        "every third of it, while the worker lives); a crashed worker's workspaces go to the "
        "others after this.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The bearer token Prometheus sends to scrape the web's /metrics (which "
        "names workspaces: an operator's view). Unset: /metrics is off.",
    )

    @property
    def outbox_dir(self) -> Path:
        """Where notices go as .eml files when no mail server is set."""
        return self.data_dir / "outbox"

    @property
    def trusted_hosts(self) -> list[str]:
        """What the web app answers to: `allowed_hosts`, or loopback and the public URL's host."""
        if self.allowed_hosts:
            return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
        if self.public_url:
            public = urlsplit(self.public_url).hostname
            if public:
                hosts.append(public.lower())
        return hosts

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'quotasync.db').resolve()}"
