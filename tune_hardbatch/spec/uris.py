"""MLflow tracking URIs of a space's `tracking` section, made absolute (trials change directory). No MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import UserError


def default_uri(storage: str) -> tuple[str, str]:
    """sqlite database and artifact folder under the search's output directory, as absolute paths."""
    root = Path(storage).resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlartifacts").as_uri()


def resolve_uri(uri: Optional[str], storage: str) -> tuple[str, Optional[str]]:
    """(tracking URI, artifact location for new experiments). Relative paths are made absolute."""
    if uri is None:
        return default_uri(storage)
    if uri.startswith(("http://", "https://", "databricks")):
        return uri, None
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):]).expanduser().resolve()
        return f"sqlite:///{path}", (path.parent / "mlartifacts").as_uri()
    if uri.startswith("file:") or "://" not in uri:
        path = Path(uri[5:] if uri.startswith("file:") else uri).expanduser().resolve()
        return path.as_uri(), None
    raise UserError("tracking.uri", f"got {uri!r}; allowed: an http(s):// server, sqlite:///PATH or a directory")


def tracking_uri(section: dict, storage: str) -> tuple[Optional[str], Optional[str]]:
    """(URI, artifact location) from a space's `tracking` section; (None, None) when tracking is off."""
    if not section.get("enabled", True):
        return None, None
    return resolve_uri(section.get("uri"), storage)


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
