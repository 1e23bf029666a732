"""The org itself: its settings, users and apps, records, usage window and sessions, the gate
every counted API call passes (session, API access, user permission, quota), and the commit that
saves a request's changes and hands them to Real-Time Sync."""

from __future__ import annotations

import os
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quotasync.clock import Clock, VirtualClock, parse_epoch
from quotasync.sandbox import editions, errors, ids, rts, schema, seed, tls
from quotasync.sandbox.auth import AuthState, ConnectedApp, OAuthError, Session, bearer_token
from quotasync.sandbox.editions import DAILY_API_REQUESTS, DAILY_ASYNC_APEX_EXECUTIONS
from quotasync.sandbox.errors import ApiError
from quotasync.sandbox.querying import QueryService
from quotasync.sandbox.quotas import UsageWindow
from quotasync.sandbox.records import Record, RecordStore
from quotasync.sandbox.state import StateFile

# Every version a real org serves: v31.0 (Summer '14) to the newest; v7.0 to v30.0 are retired,
# and a request to one is answered 410 GONE (RETIRED_API_VERSIONS).
OLDEST_API_VERSION, NEWEST_API_VERSION = 31, 67
API_VERSIONS = tuple(f"{v}.0" for v in range(OLDEST_API_VERSION, NEWEST_API_VERSION + 1))
RETIRED_API_VERSIONS = frozenset(f"{v}.0" for v in range(7, OLDEST_API_VERSION))
DEFAULT_API_VERSION = "62.0"


def _release(version: int) -> str:
    """Salesforce's release name for an API version: three a year, v31.0 being Summer '14."""
    step = version - OLDEST_API_VERSION
    season = ("Summer", "Winter", "Spring")[step % 3]
    year = 14 + step // 3 + (season != "Summer")
    return f"{season} '{year:02d}"


RELEASES = {f"{v}.0": _release(v) for v in range(OLDEST_API_VERSION, NEWEST_API_VERSION + 1)}

# The settings key for the latest org time seen (POSIX seconds); apart from "org", so writing it
# does not rewrite every setting.
_LAST_SEEN = "last_seen"


class ClockWentBack(ValueError):
    """The org would start at a time before one it has already seen."""


# Profiles: name -> (API Enabled, View Setup and Configuration)
PROFILES = {
    "System Administrator": (True, True),
    "Integration User": (True, False),
    "Standard User": (True, False),
    "Read Only": (False, False),
}
# What `--without-package` leaves out of Task and Event and out of the org: what quotasync's
# package adds (its Apex too: rts.preinstalled).
BARE_FIELDS = ("QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c")
PACKAGE_OBJECTS = ("QS_Sync_Setting__c",)
APP_NAMES = ("quotasync", "Marketing Cloud", "Data Loader")
# A folder new orgs take their connected apps' JWT keys from (docs/SANDBOX.md): for test suites
# and benchmarks that start many orgs.
KEY_CACHE_VARIABLE = "QUOTASYNC_SANDBOX_KEY_CACHE"


@dataclass(frozen=True)
class OrgConfig:
    edition: str | None = None
    licenses: int | None = None
    daily_api_requests: int | None = None
    seed: int = 0
    # Seed (or, on a restart, update) an enabled QS_Sync_Setting__c with this callback and secret.
    rts_callback: str | None = None
    rts_secret: str | None = None
    session_timeout_minutes: float = 120.0
    # On first start: an org without quotasync's package (its Activity fields, QS_Sync_Setting__c
    # and Real-Time Sync Apex), as before `quotasync org install` (deploys.py adds them).
    without_package: bool = False


@dataclass
class Faults:
    """Trouble on demand: each rate is the chance per request (per record for locks).

    Every fault that struck is counted by kind (`injected`), from the org's start: a soak can
    tell what its client went through, not only what it asked for.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # each answer waits a further random 0..jitter_ms
    error_rate: float = 0.0
    lock_rate: float = 0.0
    drop_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False)
    injected: Counter[str] = field(default_factory=Counter)

    def lock_hit(self) -> bool:
        return self._hit(self.lock_rate, "lock")

    def error_hit(self) -> bool:
        return self._hit(self.error_rate, "server_error")

    def drop_hit(self, *, counted: bool = True) -> bool:
        """Whether to close the connection instead of answering. A request the org refused
        before counting it (an expired session, a spent quota) is counted apart: its client,
        left without an answer, cannot know it cost nothing."""
        hit = self._hit(self.drop_rate, "drop")
        if hit and not counted:
            self.injected["drop_not_counted"] += 1
        return hit

    def delay(self) -> float:
        """Seconds to hold this answer back: the latency plus its jitter (0: none)."""
        if not self.latency_ms and not self.jitter_ms:
            return 0.0
        self.injected["delayed"] += 1
        jitter = self.rng.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0
        return (self.latency_ms + jitter) / 1000

    def sessions_expired(self, count: int) -> None:
        self.injected["expire_sessions"] += 1
        self.injected["expired_sessions"] += count

    def _hit(self, rate: float, kind: str) -> bool:
        if rate > 0 and self.rng.random() < rate:
            self.injected[kind] += 1
            return True
        return False

    def as_dict(self) -> dict[str, float]:
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
            "lock_rate": self.lock_rate,
            "drop_rate": self.drop_rate,
        }

    def counters(self) -> dict[str, int]:
        """Faults that struck since the org started, by kind (every kind listed, 0 included)."""
        kinds = (
            "server_error",
            "lock",
            "drop",
            "drop_not_counted",
            "delayed",
            "expire_sessions",
            "expired_sessions",
        )
        return {kind: self.injected[kind] for kind in kinds}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user and the connected app the token was issued to."""

    user: Record
    app: str
    session: Session

    @property
    def user_id(self) -> str:
        return str(self.user["Id"])


class Org:
    def __init__(self, state_dir: Path, config: OrgConfig, clock: Clock) -> None:
        self.state_dir = state_dir
        self.clock = clock
        self.state = StateFile(state_dir / "org.sqlite3")
        self.records = RecordStore(ids.IdFactory())
        self.base_url = ""  # set once the server knows its address
        self.faults = Faults()
        self.queries = QueryService(self.records)
        self.bulk_jobs: dict[str, Any] = {}
        self.deploys: dict[str, Any] = {}  # Metadata API deploys by id, since this start
        stored = self.state.setting("org")
        self.settings: dict[str, Any] = stored or {}
        self._settings_changed = True  # written by the first commit
        self._apply_config(config)
        self.apply_schema()
        self._restore_clock()
        self.usage = UsageWindow(self.allocations())
        for api, app, second, calls in self.state.usage():
            self.usage.restore(api, app, second, calls)
        # A background load kept running while the org was down: it accrues from the last time
        # the org saw (at most a window's worth; see quotas).
        since = self.resumed_from or self.timestamp()
        for load in self.settings.get("loads", []):
            self.usage.set_load(load["app"], load["api"], load["calls_per_hour"], since)
        if stored:
            for record_id, sobject, data in self.state.records():
                self.records.restore(record_id, sobject, data)
        else:
            self._create(config.seed)
            if config.without_package:
                for sobject in ("Task", "Event"):
                    for name in BARE_FIELDS:
                        self.set_field_present(sobject, name, False)
                self.settings["dropped_objects"] = list(PACKAGE_OBJECTS)
                self.apply_schema()
        # An org from before deploys existed had the package's pushes built in: it keeps them.
        self.settings.setdefault("package", {} if config.without_package else rts.preinstalled())
        self._stamp_edition()
        self._seed_rts_setting(config.rts_callback, config.rts_secret)
        # From here on, DML on objects with the package's triggers is pushed (seeded and restored
        # records never are).
        self.pushed: dict[str, frozenset[str]] = {}
        self.package_changed()
        self.rts = rts.Pusher(self.org_id, clock)
        self.auth = self._load_auth(config.session_timeout_minutes * 60)
        self.commit()

    # ---------------------------------------------------------------- time

    def now(self) -> datetime:
        return self.clock.now()

    def timestamp(self) -> float:
        return self.clock.timestamp()

    def advance_clock(self, seconds: float) -> None:
        if not isinstance(self.clock, VirtualClock):
            raise ApiError(
                400,
                "INVALID_OPERATION",
                "the sandbox runs on the real clock; start it with --speed or --epoch to move time",
            )
        self.clock.advance(seconds)
        self.settings["clock_offset"] = self.clock.offset_seconds
        self.settings_changed()

    def _restore_clock(self) -> None:
        """Keep the org's time moving forward across restarts.

        A virtual clock started without `--epoch` reuses the epoch (and, without `--speed`, the
        speed) of the org's first start; anchoring it to "now" again would send time backwards.
        """
        seen: float | None = self.state.setting(_LAST_SEEN)
        clock = self.clock
        if isinstance(clock, VirtualClock):
            stored = self.settings.get("clock")
            if stored and not clock.epoch_given:
                clock.epoch = parse_epoch(stored["epoch"])
            if stored and not clock.speed_given:
                clock.speed = float(stored["speed"])
            self.settings["clock"] = {"epoch": clock.epoch.isoformat(), "speed": clock.speed}
            clock.offset_seconds = float(self.settings.get("clock_offset", 0.0))
        if seen is not None and self.timestamp() < seen:
            raise ClockWentBack(
                f"the org's clock would start at {schema.format_datetime(self.now())}, before "
                f"{schema.format_datetime(datetime.fromtimestamp(seen, UTC))}, the "
                "last time this org saw; start it with an --epoch and --speed that keep time "
                "moving forward (or leave --epoch out to reuse the org's own)"
            )
        self.resumed_from = seen  # None on a first start
        self._last_seen: float | None = None  # the first commit writes it

    # ---------------------------------------------------------------- settings

    @property
    def edition(self) -> editions.Edition:
        return editions.EDITIONS[self.settings["edition"]]

    @property
    def org_id(self) -> str:
        return str(self.settings["org_id"])

    def allocations(self) -> dict[str, int]:
        return self.edition.allocations(
            self.settings["licenses"], self.settings.get("daily_api_requests")
        )

    def _apply_config(self, config: OrgConfig) -> None:
        s = self.settings
        s.setdefault("edition", "enterprise")
        s.setdefault("licenses", 20)
        if config.edition is not None:
            if config.edition not in editions.EDITIONS:
                raise ValueError(
                    f"unknown edition {config.edition!r}; choose from {', '.join(editions.EDITIONS)}"
                )
            s["edition"] = config.edition
        if config.licenses is not None:
            s["licenses"] = config.licenses
        if config.daily_api_requests is not None:
            s["daily_api_requests"] = config.daily_api_requests
        # Before pushing existed the bare callback was kept here; the setting record replaces it.
        s.pop("rts_callback", None)

    def _stamp_edition(self) -> None:
        """The Organization record reports the edition the org runs as (it may change on restart)."""
        organization = self.records.get(self.org_id)
        if organization and organization["OrganizationType"] != self.edition.organization_type:
            self.records.put(
                "Organization", {**organization, "OrganizationType": self.edition.organization_type}
            )

    def _seed_rts_setting(self, callback: str | None, secret: str | None) -> None:
        """`--rts-callback` (and `--rts-secret`): an enabled QS_Sync_Setting__c, made once and
        updated on later starts, so it is the most recently modified one and pushing follows it."""
        if callback is None:
            return
        obj = schema.OBJECTS.get(rts.SETTING_OBJECT)
        if obj is None:
            raise ValueError(
                "the org has no QS_Sync_Setting__c (quotasync's package is not installed): "
                "no --rts-callback"
            )
        admin, now = self.settings["users"]["admin"], self.now()
        values: dict[str, Any] = {"Callback_URL__c": callback, "Enabled__c": True}
        if secret is not None:
            values["Secret__c"] = secret
        seeded = self.records.get(self.settings.get("rts_setting_id") or "")
        if seeded is not None and not seeded["IsDeleted"]:
            if not seeded.get("Secret__c"):
                values.setdefault("Secret__c", secrets.token_hex(32))
            self.records.update(obj, seeded["Id"], values, admin, now)
            return
        values.setdefault("Secret__c", secrets.token_hex(32))
        record = self.records.insert(obj, {"Name": "Sandbox Real-Time Sync", **values}, admin, now)
        self.settings["rts_setting_id"] = record["Id"]
        self.settings_changed()

    def seeded_rts_setting(self) -> Record | None:
        """The setting `--rts-callback` made, if it is still there."""
        record = self.records.get(self.settings.get("rts_setting_id") or "")
        return record if record is not None and not record["IsDeleted"] else None

    def settings_changed(self) -> None:
        """Have the next commit write the org's settings."""
        self._settings_changed = True

    def set_loads(self, app: str, api: str, calls_per_hour: float) -> None:
        self.usage.set_load(app, api, calls_per_hour, self.timestamp())
        loads = [
            ld for ld in self.settings.get("loads", []) if (ld["app"], ld["api"]) != (app, api)
        ]
        if calls_per_hour > 0:
            loads.append({"app": app, "api": api, "calls_per_hour": calls_per_hour})
        self.settings["loads"] = loads
        self.settings_changed()

    # ---------------------------------------------------------------- what an admin sets up

    def dropped_objects(self) -> list[str]:
        """Custom objects the org lacks: not installed, or deleted by a deploy."""
        return list(self.settings.get("dropped_objects", []))

    def apply_schema(self) -> None:
        """Make the sandbox's objects this org's: deployed fields added, dropped ones and
        dropped objects taken away."""
        schema.set_deployed(self.settings.get("deployed_fields", []))
        schema.set_dropped(self.dropped_fields(), self.dropped_objects())

    def package_changed(self) -> None:
        """Follow the Apex deployed (`settings["package"]`): which objects' changes are pushed."""
        package = self.settings.get("package", {})
        self.pushed = rts.pushed_changes(package)
        self.records.watched = frozenset(self.pushed)
        for kind, listed in rts.apex_records(package).items():
            self._list_apex(kind, listed)

    def _list_apex(self, kind: str, listed: dict[str, dict[str, Any]]) -> None:
        """Keep the ApexClass or ApexTrigger records SOQL reads in step with the deployed Apex:
        one live record per deployed name; a deleted one is marked deleted."""
        now = self.now()
        admin = self.settings.get("users", {}).get("admin", "")
        existing = {r["Name"]: r for r in self.records.live(kind)}
        for name, values in listed.items():
            record = existing.pop(name, None)
            if record is not None:
                if any(record.get(k) != v for k, v in values.items()):
                    self.records.put(kind, {**record, **values, "SystemModstamp": now})
                continue
            made = self.records.ids.new(ids.KEY_PREFIXES[kind])
            stamps = {"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now}
            who = {"CreatedById": admin, "LastModifiedById": admin}
            self.records.put(kind, {"Id": made, "IsDeleted": False, **stamps, **who, **values})
        for record in existing.values():
            self.records.put(kind, {**record, "IsDeleted": True, "SystemModstamp": now})

    def dropped_fields(self) -> list[tuple[str, str]]:
        """Custom fields an admin deleted (control API `fields`), as (object, field)."""
        return [(o, f) for o, f in self.settings.get("dropped_fields", [])]

    def set_field_present(self, sobject: str, name: str, present: bool) -> None:
        """Delete a custom field, or add it back (empty), as an admin does in Setup."""
        dropped = [pair for pair in self.dropped_fields() if pair != (sobject, name)]
        if not present:
            dropped.append((sobject, name))
            self.records.drop_field(sobject, name)
        self.settings["dropped_fields"] = [list(pair) for pair in dropped]
        self.apply_schema()
        self.settings_changed()

    def app_policy(self, app_name: str) -> dict[str, Any]:
        """A connected app's Permitted Users: `admin_approved` and the approved profiles' names."""
        found: dict[str, Any] = self.settings.get("app_policies", {}).get(app_name, {})
        return {"admin_approved": False, "profiles": [], **found}

    def set_app_policy(self, app_name: str, admin_approved: bool, profiles: list[str]) -> None:
        policies = self.settings.setdefault("app_policies", {})
        policies[app_name] = {"admin_approved": admin_approved, "profiles": sorted(set(profiles))}
        self.settings_changed()

    def check_approved(self, user: Record, app: ConnectedApp, grant: str) -> None:
        """An app whose Permitted Users are "Admin approved users are pre-authorized" gets tokens
        only for users whose profile an admin approved (client credentials run as a user the
        admin chose, so they pass)."""
        policy = self.app_policy(app.name)
        if not policy["admin_approved"] or grant == "client_credentials":
            return
        profile = self.records.get(str(user.get("ProfileId") or ""))
        if profile is None or profile["Name"] not in policy["profiles"]:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    # ---------------------------------------------------------------- the gate

    def caller(self, authorization: str | None) -> Caller:
        """The session behind a bearer token, or 401 INVALID_SESSION_ID."""
        token = bearer_token(authorization)
        session = self.auth.session_for(token, self.timestamp()) if token else None
        user = self.records.get(session.user_id) if session else None
        if session is None or user is None or not user.get("IsActive", True):
            raise errors.invalid_session()
        return Caller(user, session.app, session)

    def admit(self, caller: Caller, path: str = "") -> None:
        """Refuse the REST call to `path` as the org would, or count it against the caller's app.

        A refused call is not counted, so every refusal is checked before the quota is spent.
        """
        if not self.edition.api_access:
            raise ApiError(
                403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization."
            )
        if not self.permission(caller.user_id, "PermissionsApiEnabled"):
            raise ApiError(403, "API_CURRENTLY_DISABLED", "API is disabled for this User")
        if path == "limits":
            self.check_view_setup(caller)
        self.spend(caller.app, DAILY_API_REQUESTS, 1)

    def check_view_setup(self, caller: Caller) -> None:
        if not self.permission(caller.user_id, "PermissionsViewSetup"):
            raise ApiError(403, "API_DISABLED_FOR_ORG", "limits resource is not enabled")

    def spend(self, app: str, api: str, calls: int) -> None:
        if not self.usage.try_spend(api, app, calls, self.timestamp()):
            raise errors.request_limit_exceeded(_LIMIT_WORDS.get(api, api))

    def limit_info(self) -> str:
        used = self.usage.used(DAILY_API_REQUESTS, self.timestamp())
        return f"api-usage={used}/{self.allocations()[DAILY_API_REQUESTS]}"

    def permission(self, user_id: str, name: str) -> bool:
        """A user has a permission when any permission set assigned to them grants it."""
        for assignment in self.records.live("PermissionSetAssignment"):
            if assignment["AssigneeId"] == user_id:
                permission_set = self.records.get(assignment["PermissionSetId"])
                if permission_set and permission_set.get(name):
                    return True
        return False

    def user_by_username(self, username: str) -> Record | None:
        for user in self.records.live("User"):
            if str(user["Username"]).lower() == username.lower():
                return user
        return None

    # ---------------------------------------------------------------- persistence

    def commit(self) -> None:
        # The request's DML is committed now: this is when an Apex trigger's @future job would be
        # enqueued (and never for what was rolled back).
        changes = self.records.drain_changes()
        if changes:
            targets = rts.enabled_settings(self.records) if self.pushed else []
            self.rts.publish(changes, targets, self.pushed, self._spend_apex)
        settings = self.auth.drain_changes()
        if self._settings_changed:
            settings["org"] = self.settings
            self._settings_changed = False
        # The latest time the org has seen, so a restart can refuse a clock that went back. Kept
        # to the minute: it is written at most once a minute of org time (and on close).
        now = self.timestamp()
        if self._last_seen is None or now - self._last_seen >= 60:
            settings[_LAST_SEEN] = self._last_seen = now
        self.state.save(self.records.drain_dirty(), self.usage.drain_changes(), settings)

    def _spend_apex(self) -> bool:
        """One DailyAsyncApexExecutions for a push, charged to quotasync's app; False if spent."""
        return self.usage.try_spend(DAILY_ASYNC_APEX_EXECUTIONS, rts.APEX_APP, 1, self.timestamp())

    def close(self) -> None:
        self._last_seen = None  # write it now, whatever the minute
        self.commit()
        self.rts.close()
        self.state.close()

    # ---------------------------------------------------------------- first start

    def _create(self, seed_count: int) -> None:
        now = self.now()
        org_id = self.records.ids.new("00D")
        slug = "qs" + org_id[9:15].lower()
        self.settings.update(org_id=org_id, domain=f"{slug}.example.com", created=now.isoformat())
        store = self.records
        # Users need a profile and an owner; the first admin creates everything, itself included.
        profiles = {}
        bootstrap = "005" + "0" * 15
        for name, (api, view_setup) in PROFILES.items():
            perms = {"PermissionsApiEnabled": api, "PermissionsViewSetup": view_setup}
            profile = store.insert(
                schema.OBJECTS["Profile"], {"Name": name, **perms}, bootstrap, now
            )
            owned = store.insert(
                schema.OBJECTS["PermissionSet"],
                {"Name": "X" + profile["Id"], "Label": name, **perms},
                bootstrap,
                now,
            )
            owned.update(IsOwnedByProfile=True, ProfileId=profile["Id"])
            profiles[name] = (profile["Id"], owned["Id"])
        store.insert(
            schema.OBJECTS["PermissionSet"],
            {
                "Name": "View_Setup",
                "Label": "View Setup and Configuration",
                "PermissionsViewSetup": True,
            },
            bootstrap,
            now,
        )
        domain = self.settings["domain"]
        people = [
            ("admin", "Ada", "Admin", "System Administrator"),
            ("sync", "Sync", "Integration", "Integration User"),
            ("noapi", "Nora", "Noapi", "Read Only"),
        ]
        users = {}
        passwords = {}
        for handle, first, last, profile_name in people:
            username = f"{handle}@{domain}"
            values = {
                "Username": username,
                "FirstName": first,
                "LastName": last,
                "Email": username,
                "Alias": handle,
                "ProfileId": profiles[profile_name][0],
            }
            users[handle] = self._add_user(values, profiles[profile_name][1], bootstrap, now)
            passwords[username] = secrets.token_urlsafe(12)
        admin_id = users["admin"]["Id"]
        store.replace_creator(bootstrap, admin_id)
        organization = {
            "Id": org_id,
            "Name": "quotasync sandbox org",
            "OrganizationType": self.edition.organization_type,
            "IsSandbox": False,
            "InstanceName": "QS1",
            "Country": "US",
            "TimeZoneSidKey": "America/Los_Angeles",
            "IsDeleted": False,
            "CreatedDate": now,
            "CreatedById": admin_id,
            "LastModifiedDate": now,
            "LastModifiedById": admin_id,
            "SystemModstamp": now,
        }
        store.put("Organization", organization)
        self.settings["users"] = {h: u["Id"] for h, u in users.items()}
        self.settings["passwords"] = passwords
        self.settings["apps"] = [
            self._new_app(name, users["sync"]["Username"]).to_settings() for name in APP_NAMES
        ]
        if seed_count:
            self._seed(seed_count, profiles["Standard User"], admin_id, now)

    def _add_user(
        self, values: dict[str, Any], permission_set: str, creator: str, now: datetime
    ) -> Record:
        user = self.records.insert(schema.OBJECTS["User"], values, creator, now)
        self.records.insert(
            schema.OBJECTS["PermissionSetAssignment"],
            {"AssigneeId": user["Id"], "PermissionSetId": permission_set},
            creator,
            now,
        )
        return user

    def _new_app(self, name: str, run_as: str) -> ConnectedApp:
        slug = "".join(c for c in name.lower() if c.isalnum())
        cache = os.environ.get(KEY_CACHE_VARIABLE)
        public_key = tls.ensure_rsa_key(
            self.state_dir / f"jwt-{slug}.key", Path(cache) if cache else None
        )
        return ConnectedApp(
            name=name,
            client_id="3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "B"),
            client_secret=secrets.token_hex(32).upper(),
            run_as=run_as,
            jwt_public_key=public_key,
            callback_urls=("http://127.0.0.1/oauth/callback", "http://localhost/oauth/callback"),
        )

    def _seed(self, count: int, standard: tuple[str, str], admin_id: str, now: datetime) -> None:
        seeder = seed.Seeder(count, now)
        objects = schema.OBJECTS
        reps = [
            self._add_user({**values, "ProfileId": standard[0]}, standard[1], admin_id, now)["Id"]
            for values in seeder.reps(self.settings["domain"])
        ]
        for i in range(count):
            owner = reps[i % len(reps)]
            company = seeder.company()
            account = self.records.insert(
                objects["Account"], {**seeder.account(company), "OwnerId": owner}, admin_id, now
            )
            self.records.insert(
                objects["Contact"],
                {**seeder.contact(company, account["Id"]), "OwnerId": owner},
                admin_id,
                now,
            )
            self.records.insert(
                objects["Opportunity"],
                {**seeder.opportunity(company, account["Id"]), "OwnerId": owner},
                admin_id,
                now,
            )
            self.records.insert(objects["Lead"], {**seeder.lead(), "OwnerId": owner}, admin_id, now)

    def _load_auth(self, timeout: float) -> AuthState:
        apps = [ConnectedApp.from_settings(a) for a in self.settings["apps"]]
        auth = AuthState(
            org_id=self.org_id,
            apps={a.client_id: a for a in apps},
            passwords=dict(self.settings["passwords"]),
            session_timeout=timeout,
        )
        now = self.timestamp()
        for key, data in self.state.settings_with_prefix("session:"):
            session = Session.from_settings(data)
            if auth.expired(session, now):
                auth.changed[key] = None  # expired while the org was down: gone for good
            else:
                auth.sessions[key.removeprefix("session:")] = session
        for key, data in self.state.settings_with_prefix("refresh:"):
            auth.refresh_tokens[key.removeprefix("refresh:")] = (data[0], data[1])
        return auth

    def app_named(self, name: str) -> ConnectedApp:
        for app in self.auth.apps.values():
            if app.name == name:
                return app
        raise KeyError(name)


_LIMIT_WORDS = {
    DAILY_API_REQUESTS: "TotalRequests",
    editions.DAILY_BULK_API_BATCHES: "DailyBulkApiBatches",
    editions.DAILY_BULK_V2_QUERY_JOBS: "DailyBulkV2QueryJobs",
    editions.DAILY_ASYNC_APEX_EXECUTIONS: "DailyAsyncApexExecutions",
}
