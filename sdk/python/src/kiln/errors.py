"""Errors of the Kiln client.

Every error a Kiln server answers becomes a :class:`KilnError` with the
HTTP status, the API's error ``code`` and its ``message``, as Kiln's API
writes them::

    {"error": {"code": "NOT_FOUND", "message": "Dataset 'x' does not exist"}}

The code picks the subclass (``NOT_FOUND`` is :class:`NotFound`, and so
on), so callers catch what they mean::

    try:
        client.datasets.get("sales")
    except kiln.NotFound:
        ...

Answers of the MLflow REST API (``{"error_code": "RESOURCE_DOES_NOT_EXIST",
...}``), of MLflow scoring (``/invocations``) and of the Open Inference
Protocol (``{"error": "..."}``) map to the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = [
    "KilnError",
    "KilnConnectionError",
    "NotFound",
    "AlreadyExists",
    "InvalidArgument",
    "DigestMismatch",
    "InvalidState",
    "TooLarge",
    "Unimplemented",
    "PermissionDenied",
    "Unauthenticated",
    "DeadlineExceeded",
    "RateLimited",
    "InternalError",
    "FieldDetail",
]


@dataclass(frozen=True)
class FieldDetail:
    """One field at fault of an invalid document (``spec.routes[1].weight``)."""

    path: str
    message: str


class KilnError(Exception):
    """An error answered by a Kiln server (or a failure to reach one).

    Attributes:
        status: the HTTP status (``None`` when no answer came).
        code: the API's error code (``NOT_FOUND``, ``INVALID_ARGUMENT``, ...).
        message: the server's message.
        details: the fields at fault of an invalid document, when the
            server names them.
        method, url: the request that failed.
        request_id: the ``X-Request-Id`` of the answer, when it had one.
    """

    code_default = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[FieldDetail] | None = None,
        method: str = "",
        url: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.code_default
        self.details = list(details or [])
        self.method = method
        self.url = url
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        status = f"HTTP {self.status} " if self.status else ""
        text = f"{status}{self.code}: {self.message}{where}"
        for d in self.details:
            text += f"\n  {d.path}: {d.message}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class KilnConnectionError(KilnError):
    """The server could not be reached (refused, DNS, TLS, timeout)."""

    code_default = "UNAVAILABLE"


class NotFound(KilnError):
    """404 ``NOT_FOUND``: the named thing does not exist (in this workspace)."""

    code_default = "NOT_FOUND"


class AlreadyExists(KilnError):
    """409 ``ALREADY_EXISTS``."""

    code_default = "ALREADY_EXISTS"


class InvalidArgument(KilnError):
    """400 ``INVALID_ARGUMENT``: bad input; ``details`` may name the fields."""

    code_default = "INVALID_ARGUMENT"


class DigestMismatch(InvalidArgument):
    """400 ``DIGEST_MISMATCH``: uploaded content does not hash to its digest."""

    code_default = "DIGEST_MISMATCH"


class InvalidState(KilnError):
    """409 ``INVALID_STATE``: the request does not fit the current state."""

    code_default = "INVALID_STATE"


class TooLarge(KilnError):
    """413 ``TOO_LARGE``."""

    code_default = "TOO_LARGE"


class Unimplemented(KilnError):
    """501 ``NOT_IMPLEMENTED``: the server does not run this feature."""

    code_default = "NOT_IMPLEMENTED"


class PermissionDenied(KilnError):
    """403 ``PERMISSION_DENIED``: signed in, but not allowed."""

    code_default = "PERMISSION_DENIED"


class Unauthenticated(KilnError):
    """401 ``UNAUTHENTICATED``: missing or wrong credentials."""

    code_default = "UNAUTHENTICATED"


class DeadlineExceeded(KilnError):
    """504 ``DEADLINE_EXCEEDED``."""

    code_default = "DEADLINE_EXCEEDED"


class RateLimited(KilnError):
    """429 ``RATE_LIMITED``."""

    code_default = "RATE_LIMITED"


class InternalError(KilnError):
    """500 ``INTERNAL`` (the message names the request id to look up in the server's log)."""

    code_default = "INTERNAL"


_BY_CODE: dict[str, type[KilnError]] = {
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "INVALID_ARGUMENT": InvalidArgument,
    "DIGEST_MISMATCH": DigestMismatch,
    "INVALID_STATE": InvalidState,
    "TOO_LARGE": TooLarge,
    "NOT_IMPLEMENTED": Unimplemented,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "RATE_LIMITED": RateLimited,
    "INTERNAL": InternalError,
    # MLflow REST API codes (api/2.0/mlflow, /invocations).
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "RESOURCE_ALREADY_EXISTS": AlreadyExists,
    "INVALID_PARAMETER_VALUE": InvalidArgument,
    "BAD_REQUEST": InvalidArgument,
    "MALFORMED_REQUEST": InvalidArgument,
    "REQUEST_LIMIT_EXCEEDED": RateLimited,
    "INTERNAL_ERROR": InternalError,
}

_BY_STATUS: dict[int, type[KilnError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: InvalidState,
    413: TooLarge,
    429: RateLimited,
    501: Unimplemented,
    504: DeadlineExceeded,
}


def error_class(code: str | None, status: int | None) -> type[KilnError]:
    """The class of an error with this code (else this HTTP status)."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is not None and status >= 500:
        return InternalError
    return KilnError


def from_body(status: int, body: bytes, *, method: str = "", url: str = "", request_id: str = "") -> KilnError:
    """The error of an answer with this status and body, in any of the
    formats Kiln answers errors in (native API, MLflow, OIP, plain text)."""
    import json

    code: str | None = None
    message = ""
    details: list[FieldDetail] = []
    try:
        doc: Any = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        doc = None
    if isinstance(doc, Mapping):
        err = doc.get("error")
        if isinstance(err, Mapping):  # Kiln's API
            code = str(err.get("code") or "") or None
            message = str(err.get("message") or "")
            for d in err.get("details") or []:
                if isinstance(d, Mapping):
                    details.append(FieldDetail(str(d.get("path", "")), str(d.get("message", ""))))
        elif "error_code" in doc:  # MLflow
            code = str(doc.get("error_code") or "") or None
            message = str(doc.get("message") or "")
        elif isinstance(err, str):  # Open Inference Protocol
            message = err
    if not message:
        message = body.decode("utf-8", "replace").strip()[:500] or f"HTTP {status}"
    cls = error_class(code, status)
    return cls(message, status=status, code=code, details=details, method=method, url=url, request_id=request_id)
