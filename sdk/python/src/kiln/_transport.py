"""HTTP for the Kiln client, on the standard library only (urllib).

One :class:`Transport` holds a server's address, credentials and
workspace; every API group of :class:`kiln.Client` sends through it.

A request the server refused before doing any work (429, 503) is sent
again, whatever its method; one of an idempotent method (GET, HEAD, PUT,
DELETE, OPTIONS) also after a failed connection or a 502 or 504. The wait
between attempts grows exponentially with jitter, up to a cap, unless the
answer's ``Retry-After`` says how long. A body that is a stream which
cannot be rewound is never sent twice.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import random
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Callable, Dict, Iterable, Mapping, Optional, Union

from . import errors

DEFAULT_URL = "http://127.0.0.1:5000"
API = "/api/v1"

Query = Mapping[str, Any]
Body = Union[bytes, IO[bytes], None]

# Retries: how many after the first attempt, and the exponential backoff
# between them (base·2^(n-1) seconds, at most the cap, jittered to 50–100%).
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_BACKOFF_MAX = 8.0
# A Retry-After longer than this is not waited for: the error is raised.
RETRY_AFTER_MAX = 60.0
# Statuses answered before the server did the work: any method is retried.
RETRY_ANY_STATUS = frozenset({429, 503})
# Statuses (of a proxy or gateway) after which the work may have been done:
# only idempotent methods are retried.
RETRY_IDEMPOTENT_STATUS = frozenset({502, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def default_url(env: Mapping[str, str] | None = None) -> str:
    """$KILN_URL, else an http(s) $MLFLOW_TRACKING_URI, else the default
    server (as the kiln command line picks it)."""
    env = os.environ if env is None else env
    if env.get("KILN_URL"):
        return env["KILN_URL"]
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if urllib.parse.urlsplit(uri).scheme in ("http", "https"):
        return uri
    return DEFAULT_URL


def default_credentials(env: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """(token, username, password) as the kiln command line reads them:
    $KILN_TOKEN, else $MLFLOW_TRACKING_USERNAME and
    $MLFLOW_TRACKING_PASSWORD (both set), else $MLFLOW_TRACKING_TOKEN."""
    env = os.environ if env is None else env
    if env.get("KILN_TOKEN"):
        return env["KILN_TOKEN"], "", ""
    user, pw = env.get("MLFLOW_TRACKING_USERNAME", ""), env.get("MLFLOW_TRACKING_PASSWORD", "")
    if user and pw:
        return "", user, pw
    return env.get("MLFLOW_TRACKING_TOKEN", ""), "", ""


def quote(segment: str | int) -> str:
    """One path segment, escaped (a '/' in a name stays inside its segment)."""
    return urllib.parse.quote(str(segment), safe="")


def _utc(value: datetime | timedelta) -> datetime:
    """A time as an aware UTC datetime: a timedelta is that long before now,
    a naive datetime is UTC."""
    if isinstance(value, timedelta):
        return datetime.now(timezone.utc) - value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def time_param(value: datetime | timedelta | int | float | str | None) -> str | None:
    """A time query parameter: a datetime (naive ones are UTC) as RFC 3339,
    a timedelta as that long before now, a number as milliseconds since
    the epoch, a string as given."""
    if value is None:
        return None
    if isinstance(value, (datetime, timedelta)):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        raise TypeError("a time is a datetime, a timedelta, milliseconds since the epoch or a string")
    if isinstance(value, (int, float)):
        return str(int(value))
    return str(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ms_param(value: datetime | timedelta | int | float | str | None) -> int | None:
    """A time query parameter in milliseconds since the epoch: a datetime
    (naive ones are UTC), a timedelta as that long before now, a number as
    milliseconds already, a string as digits or RFC 3339 text."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
        except ValueError:
            raise ValueError(f"invalid time {value!r}: want RFC 3339 text or milliseconds since the epoch") from None
    if isinstance(value, (datetime, timedelta)):
        return (_utc(value) - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a time is a datetime, a timedelta, milliseconds since the epoch or a string")
    return int(value)


def duration_param(value: timedelta | str | int | float | None) -> str | None:
    """A Go duration parameter: a timedelta or a number of seconds as
    "<n>s" (or "<n>ms"), a string as given ("1h", "15m")."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ms = round(value * 1000)
        return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
    return str(value)


def csv_param(value: str | Iterable[str] | None) -> str | None:
    """A comma-separated list parameter."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(str(v) for v in value)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """The seconds a Retry-After header asks to wait (delay-seconds or an
    HTTP date; a date in the past is 0), or None when it is absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float = DEFAULT_BACKOFF, cap: float = DEFAULT_BACKOFF_MAX,
                  rand: Callable[[], float] = random.random) -> float:
    """The wait before retry number attempt (1 for the first): base·2^(attempt-1)
    seconds, at most cap, jittered to 50–100%."""
    d = min(cap, base * float(2 ** min(max(attempt - 1, 0), 62)))
    return d * (0.5 + 0.5 * rand())


def _transient(reason: Any) -> bool:
    """Whether a failure to get an answer may pass: a refused, reset or
    dropped connection (not a timeout, which would take as long again, nor
    a TLS or name-resolution failure)."""
    return isinstance(reason, ConnectionError) and not isinstance(reason, ssl.SSLError)


@dataclass
class Response:
    """An answer with status 2xx."""

    status: int
    headers: Any  # an email.message.Message: get() is case-insensitive
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))

    def text(self) -> str:
        return self.body.decode("utf-8")


class Transport:
    """Sends requests to one Kiln server."""

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        username: str = "",
        password: str = "",
        workspace: str = "",
        actor: str = "",
        timeout: float = 60.0,
        user_agent: str = "",
        ssl_context: ssl.SSLContext | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"invalid Kiln server URL {url!r}: want http://HOST:PORT or https://...")
        if parts.query or parts.fragment:
            raise ValueError(f"invalid Kiln server URL {url!r}: no query or fragment")
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.token = token
        self.username = username
        self.password = password
        self.workspace = workspace
        self.actor = actor
        self.timeout = timeout
        self.user_agent = user_agent
        self.ssl_context = ssl_context
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, not {retries!r}")
        if backoff < 0 or backoff_max < 0:
            raise ValueError("backoff and backoff_max must not be negative")
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep: Callable[[float], None] = time.sleep  # tests count the waits
        handlers: list[Any] = []
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    # -- building requests ------------------------------------------------

    def headers(self) -> dict[str, str]:
        """The headers every request carries: credentials, workspace, actor."""
        h = {"Accept": "application/json"}
        if self.user_agent:
            h["User-Agent"] = self.user_agent
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        elif self.username:
            raw = f"{self.username}:{self.password}".encode("utf-8")
            h["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        if self.workspace:
            h["X-Kiln-Workspace"] = self.workspace
        if self.actor:
            h["X-Kiln-Actor"] = self.actor
        return h

    def full_url(self, path: str, query: Query | None = None) -> str:
        """The URL of a path on the server ("/api/v1/datasets") with a query
        (None values are left out, booleans are true/false)."""
        u = self.url + path
        if query:
            items: list[tuple[str, str]] = []
            for k, v in query.items():
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "true" if v else "false"
                if isinstance(v, (list, tuple)):
                    items.extend((k, str(x)) for x in v)
                else:
                    items.append((k, str(v)))
            if items:
                u += "?" + urllib.parse.urlencode(items)
        return u

    # -- sending ----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        json_body: Any = None,
        data: Body = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream_to: IO[bytes] | None = None,
    ) -> Response:
        """Sends one request and returns its 2xx answer; any other status
        raises the KilnError of its body. With stream_to the body is copied
        there instead of being kept.

        A 429 or 503 is retried whatever the method; a failed connection,
        a 502 or a 504 only for an idempotent method (GET, HEAD, PUT,
        DELETE, OPTIONS); never when data is a stream that cannot be
        rewound (a seekable one is rewound before each retry). The error of
        the last attempt is raised."""
        url = self.full_url(path, query)
        h = self.headers()
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            content_type = content_type or "application/json"
        if content_type:
            h["Content-Type"] = content_type
        if headers:
            h.update(headers)
        verb = method.upper()
        rewind: Optional[int] = None  # where a seekable stream body starts
        retries = self.retries
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            seekable = getattr(data, "seekable", None)
            try:
                rewind = data.tell() if seekable is not None and seekable() else None
            except (OSError, ValueError):
                rewind = None
            if rewind is None:
                retries = 0  # a one-way stream is sent once
        attempt = 0
        while True:
            if attempt and rewind is not None:
                data.seek(rewind)  # type: ignore[union-attr]
            req = urllib.request.Request(url, data=data, headers=h, method=method)
            try:
                resp = self._opener.open(req, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as e:
                body = e.read() if e.fp is not None else b""
                wait = self._retry_wait(verb, attempt, retries, status=e.code,
                                        retry_after_header=e.headers.get("Retry-After") if e.headers else None)
                if wait is None:
                    raise errors.from_body(
                        e.code, body, method=method, url=url, request_id=e.headers.get("X-Request-Id", "") if e.headers else ""
                    ) from None
                e.close()
            except (urllib.error.URLError, socket.timeout, ConnectionError, ssl.SSLError) as e:
                reason = getattr(e, "reason", e)
                wait = self._retry_wait(verb, attempt, retries, reason=reason)
                if wait is None:
                    raise errors.KilnConnectionError(
                        f"cannot reach the Kiln server {self.url}: {reason}", method=method, url=url
                    ) from e
            else:
                break
            attempt += 1
            if wait > 0:
                self._sleep(wait)
        with resp:
            hdrs = resp.headers  # case-insensitive
            if stream_to is not None:
                shutil.copyfileobj(resp, stream_to, 1 << 20)
                body = b""
            else:
                body = resp.read()
            return Response(resp.status, hdrs, body)

    def _retry_wait(self, method: str, attempt: int, retries: int, *, status: int | None = None,
                    retry_after_header: str | None = None, reason: Any = None) -> float | None:
        """Seconds to wait before sending a failed attempt again, or None
        when it is not retried (the error is raised)."""
        if attempt >= retries:
            return None
        if status is not None:
            if status in RETRY_ANY_STATUS:
                asked = retry_after(retry_after_header)
                if asked is not None:
                    return asked if asked <= RETRY_AFTER_MAX else None
            elif status not in RETRY_IDEMPOTENT_STATUS or method not in IDEMPOTENT_METHODS:
                return None
        elif method not in IDEMPOTENT_METHODS or not _transient(reason):
            return None
        return backoff_delay(attempt + 1, self.backoff, self.backoff_max)

    def api(self, method: str, path: str, **kw: Any) -> Dict[str, Any]:
        """A JSON call under /api/v1; returns the decoded answer (an object)."""
        got = self.request(method, API + path, **kw).json()
        if not isinstance(got, dict):
            raise errors.KilnError(f"{method} {API}{path}: the server answered {type(got).__name__}, not a JSON object")
        return got
