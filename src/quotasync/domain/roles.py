"""Who may do what in a workspace: an admin runs it (shares, settings, connecting the org, other
members), a member sees their own activities and usage. The store's `role` column holds the
value (a StrEnum equals its string)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
