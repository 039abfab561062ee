"""The tracking tests' fixtures: `started`, a search's parent run with its tracking process running; an empty
MLflow database at `tmp_path / "m.db"`, where the tests open theirs."""

from __future__ import annotations

import shutil

import pytest
from process_helpers import start


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory):
    """An MLflow sqlite database with its tables made, once a session: a new one runs MLflow's migrations (~2 s)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-db") / "m.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def mlflow_db(request):
    """A copy of `empty_mlflow_db` at `tmp_path / "m.db"` (the database these tests open) in every test with a tmp_path;
    MLflow finds its tables made and skips its migrations."""
    if "tmp_path" in request.fixturenames:
        shutil.copyfile(request.getfixturevalue("empty_mlflow_db"), request.getfixturevalue("tmp_path") / "m.db")


@pytest.fixture
def started(tmp_path):
    env = start(tmp_path)
    yield env
    if env.process.proc.poll() is None:
        env.process.proc.kill()
        env.process.proc.wait()
