"""The tracking tests' fixtures: `started`, a search's parent run with its tracking process running."""

from __future__ import annotations

import pytest
from process_helpers import start


@pytest.fixture
def started(tmp_path):
    env = start(tmp_path)
    yield env
    if env.process.proc.poll() is None:
        env.process.proc.kill()
        env.process.proc.wait()
