"""Whether the MLflow tracking server answers and lets this client in (`search.prepare.reachable`): checked
before a search starts, one `error: tracking.uri` line when it does not."""

import base64
import http.server
import socket
import threading
import time

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search.prepare import check_reachable
from tune_hardbatch.search.prepare.reachable import PROBE


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch, tmp_path):
    """The local servers here are reached directly, whatever proxy the environment names; no MLflow
    credentials but a test's own (none from the environment, no ~/.mlflow/credentials)."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


class Server:
    """A local HTTP server in a thread, answering /health with `status` and anything else with `api_status`;
    records the paths asked for and the Authorization headers sent."""

    def __init__(self, status: int, api_status: int = 200):
        paths = self.paths = []
        auth = self.auth = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.requestline.split()[1])  # as sent (self.path folds a leading //)
                auth.append(self.headers.get("Authorization"))
                code = status if paths[-1] == "/health" else api_status
                body = b"" if code == 204 else b"OK"  # 204: no content
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.mark.parametrize("uri", [None, "sqlite:////tmp/nowhere/mlflow.db", "file:///tmp/nowhere", "databricks"])
def test_uris_that_are_not_servers_are_not_checked(uri):
    assert check_reachable(uri) is None


def test_a_server_answering_health_200_passes():
    with Server(200) as server:
        check_reachable(server.uri)
        check_reachable(server.uri + "/")  # a trailing slash: still /health, not //health
    assert server.paths == ["/health", PROBE] * 2  # /health is open under MLflow's auth: an API call too
    assert server.auth == [None] * 4  # no credentials, none sent


def test_credentials_are_sent_as_mlflow_sends_them(monkeypatch, tmp_path):
    """Basic from MLFLOW_TRACKING_USERNAME/_PASSWORD, else from ~/.mlflow/credentials (each field on its
    own, as MLflow's client reads them); Bearer from MLFLOW_TRACKING_TOKEN; nothing on /health."""
    basic = "Basic " + base64.b64encode(b"alice:s3cret-env").decode()
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = s3cret-file\n")
    with Server(200) as server:
        check_reachable(server.uri)  # the file
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-env")
        check_reachable(server.uri)  # the environment first
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        (tmp_path / ".mlflow" / "credentials").unlink()
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
        check_reachable(server.uri)
    assert server.auth == [None, "Basic " + base64.b64encode(b"bob:s3cret-file").decode(), None, basic,
                           None, "Bearer tok"]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_one_error_naming_the_variables(monkeypatch, status):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-env")
    with Server(200, api_status=status) as server:
        with pytest.raises(UserError) as info:
            check_reachable(server.uri)
    message = str(info.value)
    assert info.value.key == "tracking.uri" and "\n" not in message
    assert f"refused the credentials of user 'alice' (HTTP {status})" in message
    assert "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_PASSWORD" in message
    assert "s3cret" not in message


def test_a_server_that_wants_credentials_says_so():
    with Server(200, api_status=401) as server:
        with pytest.raises(UserError) as info:
            check_reachable(server.uri)
    assert f"the MLflow server at {server.uri} requires credentials (HTTP 401)" in str(info.value)


@pytest.mark.parametrize("api_status", [404, 500])
def test_other_api_answers_are_left_to_the_search(api_status):
    """Only a refusal is this check's business; anything else shows in the search's own MLflow calls."""
    with Server(200, api_status=api_status) as server:
        check_reachable(server.uri)
    assert server.paths == ["/health", PROBE]


def test_no_probe_where_mlflow_signs_requests_itself(monkeypatch):
    """A request-auth plugin (MLFLOW_TRACKING_AUTH) or AWS SigV4: only MLflow can sign; not probed."""
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "my_plugin")
    with Server(200, api_status=401) as server:
        check_reachable(server.uri)
    assert server.paths == ["/health"]


def test_nothing_listening_is_one_error_naming_tracking_uri_at_once():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(UserError) as info:
        check_reachable(uri)
    assert time.monotonic() - start < 5  # refused at once, not the 5 s timeout
    assert info.value.key == "tracking.uri" and f"cannot reach the MLflow server at {uri}" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("status, reason", [(503, "Service Unavailable"), (404, "Not Found"),
                                            (204, "HTTP 204")])  # only 200 is healthy
def test_a_server_answering_anything_but_200_is_not_reachable(status, reason):
    with Server(status) as server:
        with pytest.raises(UserError) as info:
            check_reachable(server.uri)
    assert info.value.key == "tracking.uri"
    assert f"cannot reach the MLflow server at {server.uri} ({reason})" in str(info.value)
    assert server.paths == ["/health"]
