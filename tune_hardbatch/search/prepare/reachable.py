"""Whether the MLflow tracking server answers, and lets this client in: checked before a search starts and
before `report --sync`."""

from __future__ import annotations

import base64
import configparser
import os
from typing import Optional

from ...errors import UserError

CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
# an API call every server answers for an account that may read, cheaply: /health is open even under auth
PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


def check_reachable(uri: str) -> None:
    """A server that cannot be reached, or that refuses the credentials MLflow's client will send, is a user
    error (exit 2) before any trial runs."""
    if uri is None or not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as resp:
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}")
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError("tracking.uri", f"cannot reach the MLflow server at {uri} ({reason}); start it "
                        "(mlflow server --host 127.0.0.1 --port 5000) or set tracking.uri to a reachable "
                        "server or a local sqlite:///PATH") from None
    header = authorization()
    if header is False:
        return  # MLflow's client signs its requests some other way (a plugin, AWS SigV4): it says if refused
    request = urllib.request.Request(base + PROBE, headers={"Authorization": header} if header else {})
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise UserError("tracking.uri", refused_message(uri, exc.code)) from None
    except OSError:
        pass  # it answered /health a moment ago: anything else shows in the search's own first MLflow call


def tracking_credentials() -> tuple[Optional[str], Optional[str]]:
    """(username, password) as MLflow's client finds them: each from its environment variable, else from
    ~/.mlflow/credentials (`mlflow.utils.credentials.read_mlflow_creds`, not imported: MLflow loads for seconds)."""
    from_file: dict = {}
    path = os.path.expanduser("~/.mlflow/credentials")
    if os.path.isfile(path):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            parser = configparser.ConfigParser()
        if parser.has_section("mlflow"):
            from_file = dict(parser["mlflow"])
    return tuple(os.environ.get(var) or from_file.get(var.lower()) or None for var in CREDENTIAL_VARS)


def authorization():
    """The Authorization header MLflow's client sends: Basic from the credentials, Bearer from
    MLFLOW_TRACKING_TOKEN; None for none; False where another scheme (which only MLflow can apply) is set."""
    if os.environ.get("MLFLOW_TRACKING_AUTH") or os.environ.get("MLFLOW_TRACKING_AWS_SIGV4", "").lower() in (
            "true", "1"):
        return False
    username, password = tracking_credentials()
    if username and password:
        return "Basic " + base64.standard_b64encode(f"{username}:{password}".encode()).decode("ascii")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return f"Bearer {token}" if token else None


def refused_message(uri: str, status: int) -> str:
    """One line for a server that turned this client away; it names the account, never the password."""
    username, password = tracking_credentials()
    settings = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials)"
    if username and password:
        return (f"the MLflow server at {uri} refused the credentials of user {username!r} (HTTP {status}); "
                f"{settings} to an account of that server")
    return f"the MLflow server at {uri} requires credentials (HTTP {status}); {settings} to an account of it"


def unusable_store(uri: str, experiment: str, exc: Exception) -> UserError:
    """The one line for a tracking store that failed the first MLflow call (`tracking.check_experiment`): a
    server that turned the credentials away (HTTP 401) or this account away from the experiment (403) says
    what to change; anything else names the error."""
    status = getattr(exc, "get_http_status_code", lambda: None)()  # MlflowException: from its error code
    if status == 401:
        return UserError("tracking.uri", refused_message(uri, status))
    if status == 403:
        return UserError("tracking.experiment", f"the MLflow server at {uri} does not let this account "
                         f"(MLFLOW_TRACKING_USERNAME) use experiment {experiment!r} (HTTP 403); have an admin "
                         "grant it EDIT there, or choose another tracking.experiment")
    first = str(exc).splitlines()[0][:160] if str(exc) else ""
    return UserError("tracking.uri", f"cannot use the MLflow tracking store {uri} ({type(exc).__name__}: {first})")
