"""Listening to the delivery log (`tctf.delivery`) in a test, and leaving it as it was."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

H = TypeVar("H", bound=logging.Handler)


@contextmanager
def listening(handler: H) -> Iterator[H]:
    """`handler` receives every delivery line, INFO and above, until the block exits."""
    logger = logging.getLogger("tctf.delivery")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
