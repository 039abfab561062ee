"""Whether the MLflow tracking server answers: checked before a search starts and before `report --sync`."""

from __future__ import annotations

from ...errors import UserError


def check_reachable(uri: str) -> None:
    """A server that cannot be reached at the start is a user error (exit 2) before any trial runs."""
    if uri is None or not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}")
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError("tracking.uri", f"cannot reach the MLflow server at {uri} ({reason}); start it "
                        "(mlflow server --host 127.0.0.1 --port 5000) or set tracking.uri to a reachable "
                        "server or a local sqlite:///PATH") from None
