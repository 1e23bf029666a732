"""Salesforce record ids: a 3-character key prefix, a 12-character body, a 3-character checksum."""

from __future__ import annotations

import itertools
import threading

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BODY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Organization": "00D",
    "Profile": "00e",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "BulkJob": "750",
    "QueryLocator": "01g",
    "AsyncApexJob": "707",
}


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def to18(id15: str) -> str:
    if len(id15) == 18:
        return id15
    if len(id15) != 15:
        raise ValueError(f"not a Salesforce id: {id15!r}")
    return id15 + checksum(id15)


def is_valid(value: str) -> bool:
    """True for a well-formed 15- or 18-character id (18: with a correct checksum)."""
    if len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
        return False
    return len(value) == 15 or checksum(value[:15]) == value[15:]


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(_BODY_ALPHABET[digit])
    return "".join(reversed(chars))


class IdFactory:
    """Hands out fresh 18-character ids per key prefix, carrying on after a restart."""

    def __init__(self, pod: str = "5g") -> None:
        # Real ids carry the pod/instance in characters 4-5; a fixed pod keeps ids recognisable.
        self._pod = pod
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def resume(self, prefix: str, last_sequence: int) -> None:
        with self._lock:
            self._counters[prefix] = itertools.count(last_sequence + 1)

    def new(self, prefix: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            sequence = next(counter)
        return to18(prefix + self._pod + _encode(sequence, 10))

    def sequence_of(self, record_id: str) -> int:
        """The counter value an id was made from, so a restart can resume after it."""
        number = 0
        for char in record_id[5:15]:
            number = number * 62 + _BODY_ALPHABET.index(char)
        return number
