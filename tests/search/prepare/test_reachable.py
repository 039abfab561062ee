"""Whether the MLflow tracking server answers (`search.prepare.reachable`): checked before a search starts, one
`error: tracking.uri` line when it does not."""

import http.server
import socket
import threading
import time

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search.prepare import check_reachable


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """The local servers here are reached directly, whatever proxy the environment names."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


class Server:
    """A local HTTP server in a thread, answering every GET with `status`; records the paths asked for."""

    def __init__(self, status: int):
        paths = self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.requestline.split()[1])  # as sent (self.path folds a leading //)
                body = b"" if status == 204 else b"OK"  # 204: no content
                self.send_response(status)
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
    assert server.paths == ["/health", "/health"]


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
