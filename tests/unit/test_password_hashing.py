"""Passwords are hashed with argon2's standard parameters unless the insecure fast hashing the
test suite uses is asked for by name."""

from __future__ import annotations

import os
import subprocess
import sys

from argon2 import PasswordHasher

from quotasync.store.users import FAST_HASHING_VARIABLE

SHOW = "from quotasync.store import users; print(users._hasher.hash('a long password here'))"


def hash_made(fast: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != FAST_HASHING_VARIABLE}
    if fast is not None:
        env[FAST_HASHING_VARIABLE] = fast
    done = subprocess.run(
        [sys.executable, "-c", SHOW], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_a_password_is_hashed_with_argon2s_standard_parameters_by_default() -> None:
    standard = PasswordHasher()
    for fast in (None, "", "0", "yes"):
        made = hash_made(fast)
        assert made.startswith("$argon2id$")
        assert f"m={standard.memory_cost},t={standard.time_cost},p={standard.parallelism}" in made
        assert not standard.check_needs_rehash(made)


def test_the_fast_hashing_is_only_what_its_variable_asks_for_and_still_verifies() -> None:
    made = hash_made("1")
    assert "m=8,t=1,p=1" in made
    assert PasswordHasher().verify(made, "a long password here")
