"""Access management: users and service accounts, API tokens, workspaces,
role grants and the audit log (docs/access.md). Most of it is for server
administrators; a user may see and change their own account and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, Iterator, List, Optional, Union

from ._resource import Page, Resource, attr, many, one, paginate
from ._transport import Transport, duration_param, ms_param, quote

TimeArg = Union[datetime, timedelta, int, float, str, None]
DurationArg = Union[timedelta, int, float, str, None]

MAX_AUDIT_PAGE = 10000


@dataclass
class Grant(Resource):
    """A role of a user in a workspace: on all of it (``resource_type``
    empty) or on one experiment (by id), registered model or endpoint."""

    user: str = ""
    workspace: str = ""
    resource_type: str = ""  # "", experiment, registered_model or endpoint
    resource: str = ""
    role: str = ""  # viewer, editor, maintainer or admin
    created_by: str = ""
    creation_time: int = 0


@dataclass
class Principal(Resource):
    """Who the server takes the client for (``whoami``)."""

    user: str = ""
    kind: str = ""
    admin: bool = False
    auth: str = ""  # password, token, session or none (access control off)
    token_id: str = ""
    scope: str = ""
    token_workspace: str = ""
    grants: List[Grant] = attr(factory=list, conv=many(Grant))


@dataclass
class User(Resource):
    """A person (``kind`` user) or a service account (``kind`` service:
    no password, tokens only)."""

    name: str = ""
    kind: str = ""
    display_name: str = ""
    email: str = ""
    admin: bool = False
    disabled: bool = False
    has_password: bool = False
    created_by: str = ""
    creation_time: int = 0
    last_update_time: int = 0

    @property
    def service(self) -> bool:
        """Whether this is a service account."""
        return self.kind == "service"


@dataclass
class Token(Resource):
    """An API token as listed: never its secret. Times are milliseconds
    since the epoch; ``expires`` and ``revoked`` are 0 when it does not
    expire or is not revoked."""

    token_id: str = ""
    user: str = ""
    name: str = ""
    scope: str = ""
    workspace: str = ""  # the only workspace it may act in ("" for any)
    created_by: str = ""
    creation_time: int = 0
    expires: int = 0
    last_used: int = 0
    revoked: int = 0


@dataclass
class CreatedToken(Resource):
    """A new token and its secret (``kiln_<id>_<secret>``, sent as
    ``Authorization: Bearer``), which the server shows this once."""

    token: Token = attr(factory=Token, conv=one(Token))
    secret: str = field(default="", repr=False)


@dataclass
class Workspace(Resource):
    """A namespace that grants are given in."""

    name: str = ""
    description: str = ""
    created_by: str = ""
    creation_time: int = 0


@dataclass
class AuditEvent(Resource):
    """One entry of the audit log: who did what, when, to which resource,
    with which outcome; ``hash`` covers every other field, ``prev_hash``
    included."""

    seq: int = 0
    time: int = 0
    actor: str = ""
    auth: str = ""
    action: str = ""  # the route: "POST /api/v1/users"
    method: str = ""
    path: str = ""
    workspace: str = ""
    resource: str = ""
    request_id: str = ""
    status: int = 0
    source_ip: str = ""
    user_agent: str = ""
    request_digest: str = ""
    response_digest: str = ""
    detail: str = ""
    prev_hash: str = ""
    hash: str = ""


@dataclass
class AuditVerification(Resource):
    """The outcome of walking the audit log's hash chain: ``ok``, how many
    events were checked, and the first that does not match."""

    ok: bool = False
    events: int = 0
    last_seq: int = 0
    first_bad_seq: int = 0
    problem: str = ""
    head: str = ""  # the hash of the last event checked: write it down elsewhere


class Users:
    """``client.users``: users and service accounts (server administrators;
    a user may get and update their own account)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self) -> List[User]:
        """Every user and service account, by name."""
        return [User.from_json(u) for u in self._t.api("GET", "/users").get("users") or []]

    def get(self, name: str) -> User:
        return User.from_json(self._t.api("GET", f"/users/{quote(name)}"))

    def create(self, name: str, password: Optional[str] = None, *, service: bool = False,
               display_name: Optional[str] = None, email: Optional[str] = None, admin: bool = False) -> User:
        """Adds a user (who signs in with password, at least 8 characters)
        or, with service, a service account (no password: tokens only)."""
        if service and password is not None:
            raise ValueError("a service account has no password: it signs in with tokens")
        body: Dict[str, Any] = {"name": name, "kind": "service" if service else "user"}
        for k, v in (("display_name", display_name), ("email", email), ("password", password)):
            if v is not None:
                body[k] = v
        if admin:
            body["admin"] = True
        return User.from_json(self._t.api("POST", "/users", json_body=body))

    def create_service_account(self, name: str, *, display_name: Optional[str] = None,
                               email: Optional[str] = None) -> User:
        """Adds a service account (create with service=True)."""
        return self.create(name, service=True, display_name=display_name, email=email)

    def update(self, name: str, *, display_name: Optional[str] = None, email: Optional[str] = None,
               password: Optional[str] = None, admin: Optional[bool] = None,
               disabled: Optional[bool] = None) -> User:
        """Changes a user: fields left None are kept. Only a server
        administrator changes admin and disabled (never for the last one)."""
        body: Dict[str, Any] = {}
        for k, v in (("display_name", display_name), ("email", email), ("password", password),
                     ("admin", admin), ("disabled", disabled)):
            if v is not None:
                body[k] = v
        return User.from_json(self._t.api("PATCH", f"/users/{quote(name)}", json_body=body))

    def delete(self, name: str) -> None:
        """Removes a user with their tokens, grants and sessions (not the
        last server administrator)."""
        self._t.api("DELETE", f"/users/{quote(name)}")


class Tokens:
    """``client.tokens``: API tokens (your own; a server administrator's:
    anyone's)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, *, user: Optional[str] = None) -> List[Token]:
        """Tokens, newest first, without their secrets: yours, or (for an
        administrator) everyone's or one user's ("me": yours)."""
        got = self._t.api("GET", "/tokens", query={"user": user})
        return [Token.from_json(x) for x in got.get("tokens") or []]

    def create(self, *, name: Optional[str] = None, user: Optional[str] = None, scope: Optional[str] = None,
               workspace: Optional[str] = None, ttl: DurationArg = None) -> CreatedToken:
        """Makes a token and returns it with its secret, shown only now.

        Args:
            name: what it is for ("laptop", "ci").
            user: whose it is (default yourself; administrators: another
                user or a service account).
            scope: predict, read, write or all (default: whatever its user may).
            workspace: the only workspace it may act in.
            ttl: how long it lasts (a timedelta, seconds, or a Go duration
                such as "720h"; default until revoked).
        """
        body: Dict[str, Any] = {}
        for k, v in (("user", user), ("name", name), ("scope", scope), ("workspace", workspace),
                     ("ttl", duration_param(ttl))):
            if v is not None:
                body[k] = v
        return CreatedToken.from_json(self._t.api("POST", "/tokens", json_body=body))

    def revoke(self, token_id: str) -> Token:
        """Revokes a token (by its id, the 12 hex digits listings show) at
        once; returns it with its revocation time."""
        return Token.from_json(self._t.api("DELETE", f"/tokens/{quote(token_id)}"))


class Workspaces:
    """``client.workspaces``: the namespaces that grants are given in
    (created and deleted by server administrators)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self) -> List[Workspace]:
        """Every workspace, by name."""
        return [Workspace.from_json(w) for w in self._t.api("GET", "/workspaces").get("workspaces") or []]

    def create(self, name: str, *, description: Optional[str] = None) -> Workspace:
        body: Dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        return Workspace.from_json(self._t.api("POST", "/workspaces", json_body=body))

    def delete(self, name: str) -> None:
        """Removes a workspace and its grants (not default)."""
        self._t.api("DELETE", f"/workspaces/{quote(name)}")


class Grants:
    """``client.grants``: roles of users in workspaces (workspace or server
    administrators)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def list(self, workspace: str, *, user: Optional[str] = None) -> List[Grant]:
        """The grants of a workspace (of one user)."""
        got = self._t.api("GET", f"/workspaces/{quote(workspace)}/grants", query={"user": user})
        return [Grant.from_json(g) for g in got.get("grants") or []]

    def put(self, workspace: str, user: str, role: str, *, resource_type: Optional[str] = None,
            resource: Optional[str] = None) -> Grant:
        """Gives a user a role (viewer, editor, maintainer or admin) in the
        workspace, or on one of its resources (resource_type experiment,
        registered_model or endpoint, and its name or experiment id), or
        changes the role they have there."""
        body: Dict[str, Any] = {"user": user, "role": role}
        body.update(_on(resource_type, resource))
        return Grant.from_json(self._t.api("PUT", f"/workspaces/{quote(workspace)}/grants", json_body=body))

    def delete(self, workspace: str, user: str, *, resource_type: Optional[str] = None,
               resource: Optional[str] = None) -> None:
        """Removes a user's grant on the workspace (or on one resource of it)."""
        q: Dict[str, Any] = {"user": user}
        q.update(_on(resource_type, resource))
        self._t.api("DELETE", f"/workspaces/{quote(workspace)}/grants", query=q)


class Audit:
    """``client.audit``: the audit log (server administrators). Events are
    in sequence order, or newest first with ``order="desc"``."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def events(self, *, after: Optional[int] = None, before: Optional[int] = None, order: Optional[str] = None,
               actor: Optional[str] = None, action: Optional[str] = None, resource: Optional[str] = None,
               since: TimeArg = None, until: TimeArg = None, limit: Optional[int] = None) -> List[AuditEvent]:
        """One page of events (at most limit: default 1000, at most 10000).

        Args:
            after, before: sequence numbers the events lie strictly between.
            order: "asc" (oldest first, the default) or "desc".
            actor: the user who made the request.
            action: text the route contains ("POST /api/v1/users", "tokens").
            resource: text the resource or path contains.
            since, until: the time range [since, until): a datetime, a
                timedelta (that long before now), milliseconds since the
                epoch or RFC 3339 text.
        """
        if order is not None and order not in ("asc", "desc"):
            raise ValueError(f"order is asc or desc, not {order!r}")
        q = {"after": after, "before": before, "order": order, "actor": actor, "action": action,
             "resource": resource, "since": ms_param(since), "until": ms_param(until), "limit": limit}
        return [AuditEvent.from_json(e) for e in self._t.api("GET", "/audit", query=q).get("events") or []]

    def iter(self, *, after: Optional[int] = None, before: Optional[int] = None, order: Optional[str] = None,
             actor: Optional[str] = None, action: Optional[str] = None, resource: Optional[str] = None,
             since: TimeArg = None, until: TimeArg = None, page_size: int = 1000,
             limit: Optional[int] = None) -> Iterator[AuditEvent]:
        """Every event that matches (the first limit), page after page of
        page_size, continuing after the last sequence number read."""
        if page_size <= 0 or page_size > MAX_AUDIT_PAGE:
            raise ValueError(f"page_size is 1 to {MAX_AUDIT_PAGE}")
        desc = order == "desc"
        since_ms, until_ms = ms_param(since), ms_param(until)  # one "now" for every page

        def fetch(token: Optional[str]) -> Page[AuditEvent]:
            lo, hi = after, before
            if token is not None:
                if desc:
                    hi = int(token)
                else:
                    lo = int(token)
            evs = self.events(after=lo, before=hi, order=order, actor=actor, action=action, resource=resource,
                              since=since_ms, until=until_ms, limit=page_size)
            return Page(evs, str(evs[-1].seq) if len(evs) == page_size else None)

        return paginate(fetch, limit=limit)

    def verify(self) -> AuditVerification:
        """Walks the hash chain on the server; ``ok`` is False and
        ``first_bad_seq`` names the first event that does not match when
        the log was tampered with."""
        return AuditVerification.from_json(self._t.api("GET", "/audit/verify"))


def _on(resource_type: Optional[str], resource: Optional[str]) -> Dict[str, str]:
    """The resource a grant is on (nothing: the whole workspace)."""
    if (resource_type is None) != (resource is None):
        raise ValueError("give both resource_type and resource, or neither")
    if resource_type is None:
        return {}
    return {"resource_type": resource_type, "resource": str(resource)}
