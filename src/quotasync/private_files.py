"""Files only quotasync's own user may read (docs/SECURITY.md): the data directory is 0700, and
the store, the outbox's messages, the key and the sandbox's state are 0600, whatever the umask,
from the moment they exist (created with that mode, never widened after). A path that already
exists with wider permissions is narrowed when quotasync opens it, if quotasync's user owns it.
"""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def directory(path: Path) -> Path:
    """Make `path` (and its parents) if missing, and keep it to quotasync's user."""
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    _narrow(path, DIRECTORY_MODE)
    return path


def touch(path: Path) -> Path:
    """Create `path` empty if missing, with FILE_MODE; narrow it if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _narrow(path, FILE_MODE)
    return path


def write(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `path` whole with FILE_MODE (never readable by others, not even while written)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        _narrow(path, FILE_MODE)
        out.write(data)


def _narrow(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o777 != mode:
        path.chmod(mode)
