"""`logs`: while a search runs, the libraries' log lines and Python warnings go to the experiment's
libraries.log, none to the terminal; afterwards the process's logging is as it was."""

from __future__ import annotations

import logging
import warnings

from tune_hardbatch.output.logs import LIBRARY_LOGGERS, library_logs, route


def test_library_lines_go_to_the_file_and_logging_is_restored_after(tmp_path, capfd):
    ray_logger = logging.getLogger("ray")
    before = (list(ray_logger.handlers), ray_logger.propagate, ray_logger.level)
    path = tmp_path / "libraries.log"
    with library_logs(path) as handler:
        logging.getLogger("mlflow.store.db.utils").warning("Creating initial MLflow database tables...")
        logging.getLogger("ray.tune").warning("a Ray warning")
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        logging.getLogger("ray").addHandler(logging.StreamHandler())  # what a library's own set-up does
        route(handler)  # ... and routing again takes it back to the file
        logging.getLogger("ray").warning("after Ray's init")
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    text = path.read_text()
    for line in ("Creating initial MLflow database tables", "a Ray warning", "a library's deprecation",
                 "after Ray's init"):
        assert line in text
    assert (list(ray_logger.handlers), ray_logger.propagate, ray_logger.level) == before
    assert all(not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path)
                       for h in logging.getLogger(n).handlers) for n in LIBRARY_LOGGERS)


def test_the_file_and_its_directory_are_made_at_the_first_line_only(tmp_path):
    """A search stopped by a mistake before any library logged anything leaves no directory behind."""
    path = tmp_path / "exp" / "libraries.log"
    with library_logs(path):
        pass
    assert not (tmp_path / "exp").exists()
    with library_logs(path):
        logging.getLogger("optuna").warning("a line")
    assert "a line" in path.read_text()
