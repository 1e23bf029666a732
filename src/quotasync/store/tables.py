"""Tables. Times are stored as UTC (naive in the database, aware in Python) so SQLite and
PostgreSQL compare them the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from quotasync.domain.activities import State
from quotasync.domain.realtime import SyncMode


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# Named constraints, so migrations can refer to them on every engine.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    ingest_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    open_tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    unmatched: Mapped[str] = mapped_column(String(20), default="skip")
    # Seconds within which an activity is logged (5 to 900): a batch goes once its oldest
    # activity has waited this long, unless it fills first or pacing holds it longer.
    log_within: Mapped[float] = mapped_column(Float, default=60.0, server_default="60")
    bulk_threshold: Mapped[int] = mapped_column(Integer, default=2000)
    synced_before_limits: Mapped[bool] = mapped_column(Boolean, default=False)
    # quotasync's share of each API quota, in percent (10-90); Bulk covers ingest and query jobs.
    share_data: Mapped[int] = mapped_column(Integer, default=70, server_default="70")
    share_bulk: Mapped[int] = mapped_column(Integer, default=70, server_default="70")
    share_apex: Mapped[int] = mapped_column(Integer, default=70, server_default="70")
    # A pause looks again at least this often (RULES.md: Recheck and resume); admins are warned
    # past this % of a share.
    recheck_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    warning_percent: Mapped[int] = mapped_column(Integer, default=80, server_default="80")
    # Whether the sync user can read `/limits` (View Setup): None until quotasync has asked.
    # Without it only the Data API is governed, shown and settable (RULES.md: Without View Setup,
    # Data only).
    limits_readable: Mapped[bool | None] = mapped_column(Boolean)
    limits_next_check: Mapped[datetime | None]  # when to read `/limits` again
    # Pacing may stretch `log_within` up to this many seconds (never less than `log_within`)
    # so the share lasts the day.
    max_batch_delay: Mapped[float] = mapped_column(Float, default=900.0, server_default="900")
    # How the mirror follows the org: `interval` (a query of changes every
    # `sync_interval_minutes`) or `realtime` (the org pushes changes, signed with the RTS secret).
    sync_mode: Mapped[str] = mapped_column(
        String(10), default=SyncMode.INTERVAL.value, server_default=SyncMode.INTERVAL.value
    )
    rts_secret_sealed: Mapped[str | None] = mapped_column(Text)
    rts_setting_id: Mapped[str | None] = mapped_column(String(18))  # the org's RTS setting record
    sync_interval_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Above this many records to fetch, a sync uses a Bulk API 2.0 query job instead of REST pages.
    bulk_query_threshold: Mapped[int] = mapped_column(
        Integer, default=10_000, server_default="10000"
    )
    # The last install or uninstall of quotasync's org package (services/org_package.py):
    # `installed`, `failed` or `uninstalled` (None: never, from here), when, and what failed (or,
    # installed, the origin its Remote Site Setting lets the org call).
    org_package: Mapped[str | None] = mapped_column(String(20))
    org_package_at: Mapped[datetime | None]
    org_package_detail: Mapped[str | None] = mapped_column(Text)
    # What this workspace's `QS_Activity_Id__c` values start with (`mapping.external_id`), so that
    # workspaces sharing an org never write or delete each other's records. None for a workspace
    # made before: its records were written under the bare activity id and must stay found.
    external_id_prefix: Mapped[str | None] = mapped_column(String(8), unique=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(10))  # a `Role`'s value
    created_at: Mapped[datetime]
    # argon2id; None until a first password is issued (`quotasync user password`).
    password_hash: Mapped[str | None] = mapped_column(String(200))


class ApiToken(Base):
    """A user's token for the JSON API. Only its SHA-256 is kept: it is shown once. It works
    until `expires_at` (None: a token made before tokens expired) unless revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    name: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SettingChange(Base):
    """One share or governor setting changed: who, when, from what to what (the Integrations
    page's history; values as text, a share as its percent)."""

    __tablename__ = "setting_changes"
    __table_args__ = (Index("ix_setting_changes_workspace_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(254))
    setting: Mapped[str] = mapped_column(String(40))
    before: Mapped[str | None] = mapped_column(String(40))
    after: Mapped[str] = mapped_column(String(40))


class WebSession(Base):
    """A signed-in browser: the cookie holds a random session id, the store its SHA-256, one row
    per workspace membership it signed in to. Signing out deletes the rows, a new password
    deletes its user's: the cookie is worthless from then on, copied or not."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignInFailure(Base):
    """A wrong password, counted by email (hashed) and by client address; kept in the store so
    that every web process shares the counts and no flood of other keys can evict them."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(index=True)


class Connection(Base):
    """How a workspace reaches its org. Every secret column holds Fernet ciphertext."""

    __tablename__ = "connections"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    instance_url: Mapped[str] = mapped_column(String(500))
    login_url: Mapped[str] = mapped_column(String(500))
    api_version: Mapped[str] = mapped_column(String(10))
    client_id: Mapped[str] = mapped_column(String(300))
    client_secret_sealed: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(254))
    org_id: Mapped[str] = mapped_column(String(18))
    user_id: Mapped[str] = mapped_column(String(18))
    access_token_sealed: Mapped[str] = mapped_column(Text)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text)
    # The JWT bearer flow gives no refresh token: a new session needs a new signed assertion.
    private_key_sealed: Mapped[str | None] = mapped_column(Text)
    ca_file: Mapped[str | None] = mapped_column(String(500))  # a sandbox org's own CA
    connected_at: Mapped[datetime]


class Activity(Base):
    """The outbox: every accepted activity, kept until it is logged, failed or skipped."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_work", "workspace_id", "state", "received_at"),
        Index("ix_activities_record", "workspace_id", "record_type", "record_key"),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    user_email: Mapped[str] = mapped_column(String(254))
    record_type: Mapped[str] = mapped_column(String(10))  # Task | Event
    # The email's or meeting's id; in the org, QS_Activity_Id__c in the workspace's form
    # (`mapping.external_id`).
    record_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(10), default=State.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    logged_at: Mapped[datetime | None]
    salesforce_id: Mapped[str | None] = mapped_column(String(18))


class LedgerEntry(Base):
    """One call quotasync made (or reserved) to Salesforce: the source of every usage figure."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_window", "workspace_id", "api", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    api: Mapped[str] = mapped_column(String(12))  # data | bulk | bulk_query | apex
    purpose: Mapped[str] = mapped_column(String(30))
    calls: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime]
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[int | None] = mapped_column(Integer)
    # When the answer came back (None: not yet, or never). A call answered before another was
    # sent is surely in the org figure that other call's answer reports.
    settled_at: Mapped[datetime | None]


class LedgerShare(Base):
    """Whose records a call carried: a batched call is split across those users."""

    __tablename__ = "ledger_shares"

    ledger_id: Mapped[int] = mapped_column(
        ForeignKey("ledger.id", ondelete="CASCADE"), primary_key=True
    )
    user_email: Mapped[str] = mapped_column(String(254), primary_key=True)
    share: Mapped[float] = mapped_column(Float)


class MirrorRecord(Base):
    """The local copy of one of the org's Users, Contacts, Leads, Accounts and Opportunities.

    `modstamp` is the record's SystemModstamp (None for a row Salesforce has not described yet,
    such as a Lead quotasync just created); a deleted record stays as a tombstone (`is_deleted`)."""

    __tablename__ = "mirror"
    __table_args__ = (
        Index("ix_mirror_email", "workspace_id", "sobject", "email"),
        Index("ix_mirror_account", "workspace_id", "sobject", "account_id"),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    sobject: Mapped[str] = mapped_column(String(20), primary_key=True)
    salesforce_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    account_id: Mapped[str | None] = mapped_column(String(18))  # a sidebar's account and deals
    fields: Mapped[dict[str, Any]]
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    modstamp: Mapped[datetime | None]


class SyncState(Base):
    """How far the mirror of one object type has followed the org."""

    __tablename__ = "sync_state"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    sobject: Mapped[str] = mapped_column(String(20), primary_key=True)
    watermark: Mapped[datetime | None]  # the newest SystemModstamp applied from a query
    last_run_at: Mapped[datetime | None]  # when the last sync of this type started
    last_full_at: Mapped[datetime | None]  # when the last full load of this type completed


class OrgFigure(Base):
    """What Salesforce last said about one API quota of the org: used of max, and when."""

    __tablename__ = "org_figures"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    api: Mapped[str] = mapped_column(String(12), primary_key=True)
    max: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[int] = mapped_column(BigInteger)
    # When the request whose answer told it was sent (not when the answer came back).
    observed_at: Mapped[datetime]
    # Other apps' part of `used`, worked out when it was told: `used` less quotasync's calls
    # that had surely been counted by then (answered before that request was sent, and the
    # request itself). A call still in flight is taken as theirs: the guard errs on the safe side.
    others_used: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OrgSample(Base):
    """The last figure the org gave in one hour for one API type: the hour-by-hour history the
    24-hour chart draws other apps' calls from. Kept for 48 hours."""

    __tablename__ = "org_samples"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    api: Mapped[str] = mapped_column(String(12), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)  # the hour's start, UTC
    observed_at: Mapped[datetime]
    used: Mapped[int] = mapped_column(BigInteger)
    others_used: Mapped[int] = mapped_column(BigInteger)


class EmailLookup(Base):
    """An email the org was asked about and did not know: cached so it is not asked again."""

    __tablename__ = "email_lookups"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    looked_up_at: Mapped[datetime]


class PauseEpisode(Base):
    """One pause of one API type of a workspace, from the step that found no room to the first
    write that went through again (for the share and the guard: to the write that left the
    backlog written, or the room comfortable for a while); the figures are those of the latest
    check or write."""

    __tablename__ = "pause_episodes"
    __table_args__ = (
        Index("ix_pause_episodes_open", "workspace_id", "api", "ended_at"),
        # One open episode per API type: two workers finding the same pause cannot both start one.
        Index(
            "uq_pause_episodes_one_open",
            "workspace_id",
            "api",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    api: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    next_check: Mapped[datetime]
    resume_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    figures: Mapped[dict[str, Any]]  # own_used, share_calls, org_used, org_max, where known
    # Since when the room after a write has stayed comfortable (governor.COMFORT_CALLS); None
    # while the backlog still takes every call that frees.
    room_since: Mapped[datetime | None]


class Notification(Base):
    """One email (to every admin) that was sent, or is being sent. `key` is unique, so a
    second worker, or the same one after a crash, cannot send the same notice again."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)  # "<episode id>:started" ...
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    api: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(10))  # started | ended | warning
    episode_id: Mapped[int | None] = mapped_column(
        ForeignKey("pause_episodes.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class RtsReceipt(Base):
    """A Real-Time Sync push taken: the org may deliver the same push twice, which must neither
    be applied nor counted as another Apex execution again."""

    __tablename__ = "rts_receipts"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    signature: Mapped[str] = mapped_column(String(80), primary_key=True)
    received_at: Mapped[datetime]


class WorkerLease(Base):
    """Which worker is stepping a connected workspace, and when the workspace is due again.

    A worker takes a lease for one step (renewed while the step runs) and gives it back with the
    workspace's next due time; a crashed worker's lease simply runs out, and the workspace is
    anyone's again. Due workspaces are served earliest-due first, so a big backlog that is always
    due cannot starve a small one that became due before it.
    """

    __tablename__ = "worker_leases"
    __table_args__ = (Index("ix_worker_leases_due_at", "due_at"),)

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[datetime | None]
    due_at: Mapped[datetime]
    stepped_at: Mapped[datetime | None]
    # When something arrived while the lease was held: the step may have looked before it did,
    # so the workspace is due again by then whatever the step decided.
    woken_at: Mapped[datetime | None]
