"""Identifiers for events and messages: random UUIDs, or a seeded sequence for replayable runs."""

from __future__ import annotations

import hashlib
import os
import random


class IdGenerator:
    """Makes UUID-shaped ids (32 random hex digits); with a seed the sequence repeats per run.

    Ids must be unique, not secret, so a Mersenne Twister seeded from `os.urandom` serves:
    a third of the cost of `uuid.uuid4()` on the publish path.
    """

    __slots__ = ("_bits",)

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int.from_bytes(os.urandom(32))
        self._bits = random.Random(seed).getrandbits

    def __call__(self) -> str:
        h = f"{self._bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derived_id(seed: str) -> str:
    """A UUID-shaped id that is the same for the same seed."""
    h = hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
