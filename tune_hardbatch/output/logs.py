"""The libraries' log lines (MLflow, alembic, Ray, Optuna, SQLAlchemy, Python warnings) go to a file in the
experiment directory, not to the user's terminal: the terminal holds the tool's own lines, and the header
names the file. The package's own diagnostics (`tool_logger`) reach the terminal as `warning: ...` lines on
stderr. Pure standard library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

LOG_FILE = "libraries.log"
LIBRARY_LOGGERS = ("mlflow", "alembic", "ray", "optuna", "sqlalchemy", "urllib3", "filelock", "py.warnings")
LINE = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TOOL_LOGGER = "tune_hardbatch"  # the package's own loggers are below it (each module's `__name__`)


def tool_logger(name: str) -> logging.Logger:
    """The logger of one of the package's modules (`name`: its `__name__`), for what is not the tool's product
    but the user must see: a warning (MLflow unreachable, an unreadable checkpoint, a tracking call that failed).

    Whatever the root logger has (nothing on the command line, pytest's capture in tests), `TOOL_LOGGER` writes
    WARNING and up to stderr, one `<level>: <message>` line each, and not to the root's handlers too (no second
    copy in another format): the libraries' loggers go to a file (`library_logs`), the package's do not."""
    own = logging.getLogger(TOOL_LOGGER)
    if not any(h.get_name() == _Stderr.NAME for h in own.handlers):
        own.addHandler(_Stderr(logging.WARNING))
        own.propagate = False
        if own.level == logging.NOTSET:
            own.setLevel(logging.WARNING)
    return logging.getLogger(name)


class _Stderr(logging.Handler):
    """One line per record, `<level>: <message>`, on sys.stderr as it is then (a redirected or captured stream)."""

    NAME = "tune_hardbatch stderr"  # found by name: a second import of this module adds no second handler

    def __init__(self, level: int):
        super().__init__(level)
        self.set_name(self.NAME)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a failed write is logging's to report, not the caller's
            self.handleError(record)


def quiet_imports() -> None:
    """Before MLflow is imported: it would otherwise give its loggers a handler on stderr of its own."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


@contextlib.contextmanager
def library_logs(path: Path):
    """While the block runs, every library logger writes to `path` only (at its own level, else WARNING and
    up); afterwards each is as it was (a search run in-process, e.g. by tests, leaves the process's logging
    untouched)."""
    quiet_imports()
    handler = _FileInExperiment(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(LINE))
    saved = {name: _state(logging.getLogger(name)) for name in LIBRARY_LOGGERS}
    logging.captureWarnings(True)
    try:
        route(handler)
        yield handler
    finally:
        logging.captureWarnings(False)
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate, logger.level = handlers, propagate, level
        handler.close()


def route(handler: logging.Handler) -> None:
    """Point every library logger at `handler` alone (again after a library, e.g. Ray's init, reset its own)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        if logger.level == logging.NOTSET:  # WARNING, as on the terminal before (INFO would switch on, e.g.,
            logger.setLevel(logging.WARNING)  # SQLAlchemy's mapper chatter); a level the library chose stays


class _FileInExperiment(logging.FileHandler):
    """Opened at its first line (`delay`), making the experiment directory then: a search stopped by a
    mistake before any library spoke leaves nothing behind."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def _state(logger: logging.Logger) -> tuple:
    return list(logger.handlers), logger.propagate, logger.level
