"""The pre-flight check (`resources.preflight`: data, batches and model of every corner) in a child process.

It imports torch and timm and builds every model: seconds of work and hundreds of MB that the driver
would otherwise carry for the whole search. `start` launches `python -m tune_hardbatch.search.prepare.preflight`
with the pickled space on stdin; the driver meanwhile imports Ray and checks the tracking store, then
`Preflight.result()` waits for the answer before Ray starts (a mistake still starts nothing). The child
prints one JSON line: `{"seconds": s}`, or `{"key": k, "message": m}` for a `UserError`. What libraries
print there is kept only to explain a child that died without its line.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

from ...errors import UserError


class Preflight:
    """A running check; `result()` waits for it."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def result(self) -> float:
        """Seconds the check took; raises its `UserError`, or RuntimeError if the child died."""
        out, err = self.proc.communicate()
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            answer = json.loads(lines[-1])
        except (IndexError, ValueError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {self.proc.returncode}"]
            raise RuntimeError(f"the pre-flight check of the space died: {tail[0][:300]}") from None
        if "key" in answer:
            raise UserError(answer["key"], answer["message"])
        return float(answer["seconds"])


def start(space, local: bool) -> Preflight:
    """The check of `space` in a child process (`local` False: data this machine cannot see is skipped)."""
    proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    proc.stdin.write(pickle.dumps((space, local)))  # a few kB: fits the pipe's buffer, never blocks
    proc.stdin.close()
    proc.stdin = None  # closed: communicate() must not flush it
    return Preflight(proc)


def main() -> None:
    from .resources import preflight

    space, local = pickle.loads(sys.stdin.buffer.read())
    try:
        answer = {"seconds": preflight(space, local=local)}
    except UserError as exc:
        answer = {"key": exc.key, "message": str(exc)[len(exc.key) + 2:] if exc.key else str(exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
