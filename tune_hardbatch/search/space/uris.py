"""MLflow tracking URIs of a space's `tracking` section, made absolute (trials change directory). No MLflow,
no network (whether a server answers is `search.prepare.reachable`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ...errors import UserError


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


def tracking_uri(section, storage: str) -> tuple[Optional[str], Optional[str]]:
    """(URI, artifact location) from a space's `tracking` section; (None, None) when tracking is off."""
    if not section.enabled:
        return None, None
    return resolve_uri(section.uri, storage)
