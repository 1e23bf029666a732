"""The sandbox's JWT keys: made per org, or taken from a shared folder made once."""

from __future__ import annotations

import stat
from pathlib import Path

from quotasync.sandbox import tls


def org_key(root: Path, org: str, app: str = "quotasync") -> Path:
    (root / org).mkdir(exist_ok=True)  # an org's state folder exists before its keys
    return root / org / f"jwt-{app}.key"


def test_two_orgs_sharing_a_key_folder_get_the_same_key_and_keep_it_private(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "keys"
    first = tls.ensure_rsa_key(org_key(tmp_path, "a"), cache)
    second = tls.ensure_rsa_key(org_key(tmp_path, "b"), cache)
    assert first == second
    assert stat.S_IMODE((tmp_path / "b" / "jwt-quotasync.key").stat().st_mode) == 0o600
    # Another app's key is its own.
    assert tls.ensure_rsa_key(org_key(tmp_path, "a", "dataloader"), cache) != first


def test_without_a_folder_each_org_makes_its_own(tmp_path: Path) -> None:
    first = tls.ensure_rsa_key(org_key(tmp_path, "a"))
    assert first != tls.ensure_rsa_key(org_key(tmp_path, "b"))
    # An org keeps its key across restarts.
    assert first == tls.ensure_rsa_key(org_key(tmp_path, "a"))
