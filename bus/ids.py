"""Identifiers for events and messages: random UUIDs, or a seeded sequence for replayable runs."""

from __future__ import annotations

import os
import random


class IdGenerator:
    """Makes UUID-4-shaped ids; with a seed the sequence is the same on every run."""

    __slots__ = ("_random",)

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed) if seed is not None else None

    def __call__(self) -> str:
        if self._random is None:
            n = int.from_bytes(os.urandom(16))
        else:
            n = self._random.getrandbits(128)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"
