"""Identifiers for events, correlations and entities: time-ordered UUIDv7 strings.

Their random bits come from the OS's CSPRNG, so no id can be guessed from the ones before it;
a seeded generator, asked for explicitly, replays the same ids for tests and `tctf run --seed`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import time
from collections.abc import Callable

#: Random bytes fetched from the OS at a time; one `os.urandom` call serves ~400 ids.
POOL_BYTES = 4096
_DRAW = 10  # bytes per id: 11 bits may start the counter, 62 are the id's random bits
_DRAW_HEX = 2 * _DRAW

_COUNTER_MAX = 0xFFF
_COUNTER_START = 0x7FF  # a fresh millisecond's counter starts below this: room for 2048 ids
_HEX_DIGIT = "0123456789abcdef"
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in _HEX_DIGIT}
# A look-up costs a third of formatting the counter with "03x", on every publish.
_COUNTER_HEX = [f"{counter:03x}" for counter in range(_COUNTER_MAX + 1)]


class IdGenerator:
    """Makes UUIDv7 strings (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter, 62 random
    bits; each id is greater than the one before it from the same generator.

    The counter orders ids minted within one millisecond (RFC 9562 §6.2, method 1); it
    starts each millisecond at a random value, and when it runs out the timestamp moves one
    millisecond ahead. A generator is not shared between threads.

    Without a seed the random bits come from `os.urandom`. `IdGenerator(seed)` is for
    replayable runs only: its bits come from `random.Random(seed)` and its clock stands at
    zero, so the same seed gives the same ids, and they are as guessable as the seed.
    """

    __slots__ = (
        "_clock_ns",
        "_counter",
        "_millis",
        "_pool",
        "_position",
        "_prefix",
        "_random_bytes",
    )

    def __init__(self, seed: int | None = None) -> None:
        self._random_bytes: Callable[[int], bytes]
        self._clock_ns: Callable[[], int]
        if seed is None:
            self._random_bytes = os.urandom
            self._clock_ns = time.time_ns
        else:
            self._random_bytes = random.Random(seed).randbytes
            self._clock_ns = _clock_at_zero
        self._pool = ""  # hex digits of random bytes not yet drawn from
        self._position = 0
        self._millis = -1
        self._counter = 0
        self._prefix = ""

    def __call__(self) -> str:
        position = self._position
        pool = self._pool
        if position + _DRAW_HEX > len(pool):
            # Hex-encoded once per refill: slicing a string is cheaper than hexing each draw.
            pool = self._pool = self._random_bytes(POOL_BYTES).hex()
            position = 0
        self._position = position + _DRAW_HEX
        millis = self._clock_ns() // 1_000_000
        if millis > self._millis:
            self._start_millisecond(millis, pool[position : position + 3])
        elif self._counter < _COUNTER_MAX:
            self._counter += 1
        else:
            self._start_millisecond(self._millis + 1, pool[position : position + 3])
        return (
            f"{self._prefix}{_COUNTER_HEX[self._counter]}-{_VARIANT[pool[position + 4]]}"
            f"{pool[position + 5 : position + 8]}-{pool[position + 8 : position + _DRAW_HEX]}"
        )

    def _start_millisecond(self, millis: int, counter_seed: str) -> None:
        self._millis = millis
        self._counter = int(counter_seed, 16) & _COUNTER_START
        stamp = f"{millis:012x}"
        self._prefix = f"{stamp[:8]}-{stamp[8:]}-7"


class MessageIds:
    """Message ids of one transport, shaped as SQS's (UUIDv4 strings): a random prefix per
    generator and a counter.

    A message id names a delivery to its consumers and nothing is granted by knowing one,
    so, unlike `IdGenerator`'s, they need be unique only, not unguessable: a counter costs a
    third of a random id, once per queue a message is copied to. `prefix_bits` (64) replay
    the same ids for a seeded run; without them the prefix comes from `os.urandom`.
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self, prefix_bits: int | None = None) -> None:
        if prefix_bits is None:
            prefix_bits = int.from_bytes(os.urandom(8))
        digits = f"{prefix_bits & 0xFFFF_FFFF_FFFF_FFFF:016x}"
        self._prefix = f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[12]]}000-"
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


def _clock_at_zero() -> int:
    """A seeded generator's clock: ids replay only if no real time goes into them."""
    return 0


def derived_id(seed: str) -> str:
    """A UUID-shaped id that is the same for the same seed."""
    h = hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
