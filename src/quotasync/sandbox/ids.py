"""Salesforce record ids: a 3-character key prefix, a 12-character body, a 3-character checksum."""

from __future__ import annotations

import functools
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
    "ApexClass": "01p",
    "ApexTrigger": "01q",
    # Custom objects get prefixes of the form aNN.
    "QS_Sync_Setting__c": "a01",
}


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    return _chunk_bit(id15[0:5]) + _chunk_bit(id15[5:10]) + _chunk_bit(id15[10:15])


@functools.lru_cache(maxsize=65536)
def _chunk_bit(chunk: str) -> str:
    # Cached: consecutive ids share their first two chunks, and the third repeats often.
    bits = 0
    for position, char in enumerate(chunk):
        if "A" <= char <= "Z":
            bits |= 1 << position
    return _CHECKSUM_ALPHABET[bits]


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


_PAIRS = [a + b for a in _BODY_ALPHABET for b in _BODY_ALPHABET]


def _encode(number: int, width: int) -> str:
    """`number` in base 62, two digits at a time (ids are minted on every insert)."""
    pairs = []
    for _ in range(width // 2):
        number, pair = divmod(number, 3844)
        pairs.append(_PAIRS[pair])
    return "".join(reversed(pairs))


class IdFactory:
    """Hands out fresh 18-character ids per key prefix, carrying on after a restart."""

    def __init__(self, pod: str = "5g") -> None:
        # Real ids carry the pod/instance in characters 4-5; a fixed pod keeps ids recognisable.
        self._pod = pod
        self._counters: dict[str, itertools.count[int]] = {}
        self._highest: dict[str, int] = {}
        self._lock = threading.Lock()

    def resume(self, prefix: str, used_sequence: int) -> None:
        """Note that `used_sequence` is taken, so new ids start after the highest one seen."""
        with self._lock:
            self._highest[prefix] = max(self._highest.get(prefix, 0), used_sequence)
            self._counters[prefix] = itertools.count(self._highest[prefix] + 1)

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
