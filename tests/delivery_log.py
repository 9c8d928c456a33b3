"""Listening to the delivery log (`tctf.delivery`) in a test, and leaving it as it was."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

H = TypeVar("H", bound=logging.Handler)


@contextmanager
def listening(handler: H, name: str = "tctf.delivery", level: int = logging.INFO) -> Iterator[H]:
    """`handler` receives every line of logger `name` (by default the delivery lines) at
    `level` and above, until the block exits."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
