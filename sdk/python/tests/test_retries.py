"""Retries of the client's transport, against a tiny local HTTP server (on
127.0.0.1, in a thread) that answers a script of statuses: which methods
and statuses are sent again, Retry-After, backoff, rewinding bodies, and
that the error of the last attempt is the one raised."""

from __future__ import annotations

import email.utils
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Tuple, Union

import pytest

import kiln
from kiln._transport import Transport, backoff_delay, retry_after

from .conftest import free_port

Header = Union[str, Callable[[], str]]
Answer = Tuple[int, Dict[str, Header], Any]

OK: Answer = (200, {}, {"user": "anonymous", "kind": "user", "auth": "none", "scope": "all", "grants": []})


def busy(status: int = 503, after: Header | None = "0", code: str = "UNAVAILABLE") -> Answer:
    return (status, {} if after is None else {"Retry-After": after}, {"error": {"code": code, "message": "busy"}})


@dataclass
class Call:
    method: str
    path: str
    body: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class Scripted:
    """A server answering its script in turn (the last answer from then on)."""

    url: str
    answers: List[Answer]
    calls: List[Call] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        script: Scripted = self.server.script  # type: ignore[attr-defined]
        script.calls.append(Call(self.command, self.path, body, time.monotonic()))
        status, headers, doc = script.answers[min(len(script.calls), len(script.answers)) - 1]
        out = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v() if callable(v) else v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted():
    servers: List[ThreadingHTTPServer] = []

    def start(*answers: Answer) -> Scripted:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        script = Scripted(f"http://127.0.0.1:{httpd.server_address[1]}", list(answers))
        httpd.script = script  # type: ignore[attr-defined]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return script

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_503_with_retry_after_is_retried_until_it_succeeds(scripted):
    srv = scripted(busy(), busy(), OK)
    me = kiln.Client(srv.url, token="").whoami()  # retries=3 by default
    assert me.user == "anonymous" and len(srv.calls) == 3
    assert [c.path for c in srv.calls] == ["/api/v1/whoami"] * 3


def test_429_and_503_are_retried_for_any_method(scripted):
    srv = scripted(busy(429, code="RATE_LIMITED"), busy(503), OK)
    t = Transport(srv.url, backoff=0.01)
    assert t.api("POST", "/things", json_body={"name": "x"})["user"] == "anonymous"
    assert [(c.method, c.body) for c in srv.calls] == [("POST", b'{"name": "x"}')] * 3
    srv = scripted(busy(429, after=None), OK)  # no Retry-After: the backoff
    assert Transport(srv.url, backoff=0.01).api("PATCH", "/things/x", json_body={})["user"] == "anonymous"
    assert len(srv.calls) == 2


def test_502_is_retried_for_get_but_not_for_post(scripted):
    srv = scripted(busy(502, after=None), OK)
    t = Transport(srv.url, backoff=0.01)
    with pytest.raises(kiln.InternalError) as e:
        t.api("POST", "/things", json_body={})
    assert e.value.status == 502 and e.value.message == "busy" and len(srv.calls) == 1

    srv = scripted(busy(502, after=None), busy(504, after=None), OK)
    assert Transport(srv.url, backoff=0.01).api("GET", "/things")["user"] == "anonymous"
    assert [c.method for c in srv.calls] == ["GET", "GET", "GET"]
    srv = scripted(busy(504, after=None), OK)
    assert Transport(srv.url, backoff=0.01).api("DELETE", "/things/x")["user"] == "anonymous"
    assert len(srv.calls) == 2


def test_retries_zero_sends_once_and_the_last_error_is_raised(scripted):
    srv = scripted(busy())
    with pytest.raises(kiln.KilnError) as e:
        kiln.Client(srv.url, token="", retries=0).whoami()
    assert len(srv.calls) == 1
    assert (type(e.value), e.value.status, e.value.code, e.value.message) == (kiln.InternalError, 503, "UNAVAILABLE", "busy")
    assert e.value.method == "GET" and e.value.url == srv.url + "/api/v1/whoami"

    srv = scripted(busy(429, code="RATE_LIMITED"))
    with pytest.raises(kiln.RateLimited) as e:
        kiln.Client(srv.url, token="", retries=2).whoami()
    assert len(srv.calls) == 3 and e.value.status == 429 and e.value.message == "busy"
    srv = scripted(busy(404, after=None, code="NOT_FOUND"))  # an answer that is not a refusal: never retried
    with pytest.raises(kiln.NotFound):
        kiln.Client(srv.url, token="").datasets.get("x")
    assert len(srv.calls) == 1


def test_retry_after_is_honoured(scripted):
    srv = scripted(busy(after="1"), OK)
    start = time.monotonic()
    assert Transport(srv.url, backoff=0).api("POST", "/things", json_body={})["user"] == "anonymous"
    assert time.monotonic() - start >= 1.0
    assert srv.calls[1].at - srv.calls[0].at >= 1.0

    # An HTTP date (whole seconds): two seconds from when it was answered,
    # so at least one second after.
    srv = scripted(busy(after=lambda: email.utils.formatdate(time.time() + 2, usegmt=True)), OK)
    assert Transport(srv.url, backoff=0).api("GET", "/things")["user"] == "anonymous"
    assert srv.calls[1].at - srv.calls[0].at >= 1.0

    # Too long a wait is not waited for: the error is raised at once.
    srv = scripted(busy(429, after="3600", code="RATE_LIMITED"), OK)
    with pytest.raises(kiln.RateLimited):
        Transport(srv.url).api("GET", "/things")
    assert len(srv.calls) == 1


def test_retry_after_and_backoff_values():
    assert retry_after("0") == 0.0 and retry_after("7") == 7.0 and retry_after(" 3 ") == 3.0
    assert retry_after(None) is None and retry_after("") is None and retry_after("soon") is None
    now = 1_700_000_000.0
    assert retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0  # in the past
    for n in range(1, 12):
        full = min(8.0, 0.5 * 2 ** (n - 1))
        assert backoff_delay(n, rand=lambda: 0.0) == full / 2 and backoff_delay(n, rand=lambda: 1.0) == full
        assert full / 2 <= backoff_delay(n) <= full
    assert backoff_delay(100) <= 8.0 and backoff_delay(3, 1.0, 30.0, rand=lambda: 1.0) == 4.0


def test_connection_errors_are_retried_for_idempotent_methods_only():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    for method, want in (("GET", 2), ("PUT", 2), ("DELETE", 2), ("POST", 0), ("PATCH", 0)):
        t = Transport(url, retries=2, timeout=5)
        waits: List[float] = []
        t._sleep = waits.append
        with pytest.raises(kiln.KilnConnectionError) as e:
            t.api(method, "/things", json_body={} if method in ("PUT", "POST", "PATCH") else None)
        assert len(waits) == want, method
        assert all(lo <= w <= hi for w, (lo, hi) in zip(waits, [(0.25, 0.5), (0.5, 1.0)]))  # 0.5 s, doubling, jittered
        assert e.value.status is None and e.value.code == "UNAVAILABLE" and e.value.method == method
        assert str(e.value).startswith(f"UNAVAILABLE: cannot reach the Kiln server {url}: ")


def test_stream_bodies_are_rewound_or_sent_once(scripted):
    srv = scripted(busy(), busy(), OK)
    body = io.BytesIO(b"skip:payload")
    body.seek(5)  # sent from where it stands, every time
    t = Transport(srv.url)
    t.request("PUT", "/blob", data=body, content_type="application/octet-stream", headers={"Content-Length": "7"})
    assert [c.body for c in srv.calls] == [b"payload"] * 3

    class OneWay(io.BytesIO):
        def seekable(self) -> bool:
            return False

    srv = scripted(busy(), OK)
    with pytest.raises(kiln.InternalError) as e:
        Transport(srv.url).request("PUT", "/blob", data=OneWay(b"payload"), headers={"Content-Length": "7"})
    assert e.value.status == 503 and [c.body for c in srv.calls] == [b"payload"]

    srv = scripted(busy(), OK)  # bytes are simply sent again
    Transport(srv.url).request("POST", "/blob", data=b"payload")
    assert [c.body for c in srv.calls] == [b"payload"] * 2


def test_retry_settings_on_the_client(scripted):
    c = kiln.Client("http://127.0.0.1:1", token="")
    assert (c._t.retries, c._t.backoff, c._t.backoff_max) == (3, 0.5, 8.0)
    c = kiln.Client("http://127.0.0.1:1", token="", retries=5, backoff=0.1, backoff_max=2.0, timeout=7)
    w = c.with_workspace("dev")._t
    assert (w.retries, w.backoff, w.backoff_max, w.timeout, w.workspace) == (5, 0.1, 2.0, 7, "dev")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="retries"):
            kiln.Client("http://127.0.0.1:1", token="", retries=bad)
    with pytest.raises(ValueError, match="backoff"):
        kiln.Client("http://127.0.0.1:1", token="", backoff=-1)
