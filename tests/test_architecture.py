"""The dependency rule (imports point downward only, see README), checked on every run."""

from __future__ import annotations

import logging
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_in_pyproject_hold(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    # import-linter configures logging with disable_existing_loggers: later tests reading
    # the platform's log lines (tests/test_runtimes.py) would see none.
    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    try:
        assert lint_imports(no_cache=True) == 0, "an import breaks the layering; see the output"
    finally:
        for logger in loggers:
            logger.disabled = False
