"""The tracking process's side (`python -m tune_hardbatch.tracking.child FD`, started by
`process.TrackingProcess`): pickled requests on stdin, served by a `session.LocalTracking`; the answer to
`finish` is pickled onto file descriptor FD.

It ignores Ctrl-C (the driver ends the search, then tracking). When the driver dies, the child reads the
end of its stdin: it writes the trial-to-run mapping as it is and exits at once, leaving the rest to a
resumed driver (which uploads the reports its runs lack), never racing it. Its library log lines go to the
search's libraries.log, as the driver's do.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it ends the search, then tracking
    replies = os.fdopen(int(argv[0]), "wb")
    inbox = sys.stdin.buffer
    _, setup, space, log_file = pickle.load(inbox)
    from ..output.logs import library_logs

    with library_logs(Path(log_file)):
        serve(_session(setup, space), inbox, replies)


def _session(setup: dict, space):
    from .client import SearchTracker
    from .session import LocalTracking

    tracker = SearchTracker(setup["uri"], setup["experiment"], setup["exp_dir"], setup["artifact_location"],
                            log_checkpoint=setup["log_checkpoint"])
    tracker.fresh, tracker.dataset, tracker.down = setup["fresh"], setup["dataset"], setup["down"]
    return LocalTracking(tracker, space)


def serve(session, inbox, replies) -> None:
    """Requests until `close`, or until the driver is gone (the end of `inbox`)."""
    while True:
        try:
            msg = pickle.load(inbox)
        except EOFError:  # the driver died: the mapping as it is now; a resumed driver does the rest
            session.abandon()
            return
        kind, args = msg[0], msg[1:]
        if kind == "phase":
            session.open_phase(*args)
        elif kind == "call":
            session.call(args[0], args[1], *args[2])
        elif kind == "finish":
            pickle.dump(session.finish(*args), replies)
            replies.flush()
        elif kind == "close":
            session.close(args[0])
            return


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing left to do: no teardown of MLflow's and SQLAlchemy's modules
