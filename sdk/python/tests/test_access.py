"""Access management through kiln.Client against a live `kiln server` with
access control on (conftest.py's auth_server): users and service accounts,
tokens used and revoked, workspaces and grants, and the audit log (its
filters, paging through it, and verifying its hash chain)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import kiln
from kiln._transport import ms_param

from .conftest import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def admin(auth_server) -> kiln.Client:
    return kiln.Client(auth_server.url, username="admin", password=ADMIN_PASSWORD, workspace="")


def test_users_tokens_and_whoami(auth_server, admin, unique):
    url = auth_server.url
    me = admin.whoami()
    assert (me.user, me.admin, me.auth) == ("admin", True, "password")

    name, pw = f"ada-{unique}", "ada-password-1"
    ada = admin.users.create(name, pw, display_name="Ada", email="ada@example.com")
    assert (ada.name, ada.kind, ada.display_name, ada.has_password, ada.admin) == (name, "user", "Ada", True, False)
    assert not ada.service and ada.created_by == "admin" and ada.creation_time > 0
    assert name in [u.name for u in admin.users.list()]
    assert admin.users.get(name).email == "ada@example.com"
    with pytest.raises(kiln.AlreadyExists):
        admin.users.create(name, pw)
    with pytest.raises(ValueError, match="service account has no password"):
        admin.users.create(f"x-{unique}", "some-password", service=True)

    # Ada signs in with her password and may change her own account only.
    as_ada = kiln.Client(url, username=name, password=pw)
    assert as_ada.whoami().user == name
    assert as_ada.users.update(name, display_name="Ada L.").display_name == "Ada L."
    with pytest.raises(kiln.PermissionDenied):
        as_ada.users.get("admin")
    with pytest.raises(kiln.PermissionDenied):
        as_ada.users.update(name, admin=True)
    own = as_ada.tokens.create(name="laptop", ttl=timedelta(hours=1))
    assert own.token.user == name and own.token.expires > own.token.creation_time
    assert own.secret.startswith("kiln_") and own.secret not in repr(own)
    assert [t.token_id for t in as_ada.tokens.list()] == [own.token.token_id]

    # A service account and a token for it, made by the administrator.
    bot = admin.users.create_service_account(f"bot-{unique}", display_name="CI")
    assert bot.service and not bot.has_password
    made = admin.tokens.create(user=bot.name, name="ci", scope="write")
    tok = made.token
    assert (tok.user, tok.name, tok.scope, tok.revoked, tok.created_by) == (bot.name, "ci", "write", 0, "admin")
    as_bot = kiln.Client(url, token=made.secret)
    who = as_bot.whoami()
    assert (who.user, who.kind, who.auth, who.scope, who.token_id) == (bot.name, "service", "token", "write", tok.token_id)
    assert tok.token_id in [t.token_id for t in admin.tokens.list(user=bot.name)]
    assert tok.token_id in [t.token_id for t in admin.tokens.list()]  # everyone's
    assert as_bot.tokens.list(user="me")[0].last_used > 0

    revoked = admin.tokens.revoke(tok.token_id)
    assert revoked.token_id == tok.token_id and revoked.revoked > 0
    with pytest.raises(kiln.Unauthenticated) as e:
        as_bot.whoami()
    assert e.value.status == 401
    with pytest.raises(kiln.NotFound):
        admin.tokens.revoke("000000000000")

    # Disabled, then deleted.
    assert admin.users.update(name, disabled=True).disabled
    with pytest.raises(kiln.Unauthenticated):
        as_ada.whoami()
    admin.users.delete(name)
    admin.users.delete(bot.name)
    with pytest.raises(kiln.NotFound):
        admin.users.get(name)
    assert bot.name not in [u.name for u in admin.users.list()]


def test_workspace_and_grant_round_trip(auth_server, admin, unique):
    ws, user, pw = f"ws-{unique}", f"bob-{unique}", "bob-password-1"
    made = admin.workspaces.create(ws, description="for the sdk tests")
    assert (made.name, made.description, made.created_by) == (ws, "for the sdk tests", "admin")
    assert {"default", ws} <= {w.name for w in admin.workspaces.list()}
    with pytest.raises(kiln.AlreadyExists):
        admin.workspaces.create(ws)
    admin.users.create(user, pw)

    g = admin.grants.put(ws, user, "editor")
    assert (g.user, g.workspace, g.role, g.resource_type, g.resource) == (user, ws, "editor", "", "")
    on_model = admin.grants.put(ws, user, "maintainer", resource_type="registered_model", resource="churn")
    assert (on_model.resource_type, on_model.resource, on_model.role) == ("registered_model", "churn", "maintainer")
    assert admin.grants.put(ws, user, "viewer").role == "viewer"  # changed, not added
    got = sorted((x.role, x.resource_type, x.resource) for x in admin.grants.list(ws, user=user))
    assert got == [("maintainer", "registered_model", "churn"), ("viewer", "", "")]
    assert {x.user for x in admin.grants.list(ws)} == {user}
    assert admin.grants.list(ws, user=f"nobody-{unique}") == []

    who = kiln.Client(auth_server.url, username=user, password=pw).whoami()
    assert all(isinstance(x, kiln.access.Grant) for x in who.grants)
    assert {(x.workspace, x.role, x.resource) for x in who.grants} >= {(ws, "viewer", ""), (ws, "maintainer", "churn")}

    with pytest.raises(ValueError, match="both resource_type and resource"):
        admin.grants.delete(ws, user, resource_type="registered_model")
    admin.grants.delete(ws, user, resource_type="registered_model", resource="churn")
    assert [(x.role, x.resource) for x in admin.grants.list(ws, user=user)] == [("viewer", "")]
    admin.grants.delete(ws, user)
    assert admin.grants.list(ws) == []
    with pytest.raises(kiln.InvalidArgument):
        admin.grants.put(ws, user, "overlord")

    admin.workspaces.delete(ws)
    assert ws not in {w.name for w in admin.workspaces.list()}
    with pytest.raises(kiln.NotFound):
        admin.workspaces.delete(ws)
    admin.users.delete(user)


def test_audit_events_paging_and_verify(auth_server, admin, unique):
    last = admin.audit.events(order="desc", limit=1)
    floor = last[0].seq if last else 0
    names = [f"audited-{unique}-{i}" for i in range(3)]
    for n in names:
        admin.users.create_service_account(n)
    admin.users.update(names[0], display_name="renamed")

    made = admin.audit.events(after=floor, actor="admin", action="POST /api/v1/users")
    assert len(made) == 3 and all(e.status == 201 and e.method == "POST" for e in made)
    assert [e.seq for e in made] == sorted(e.seq for e in made)  # oldest first
    assert all(e.auth == "password" and e.hash and e.prev_hash for e in made)
    patched = admin.audit.events(resource=f"/api/v1/users/{names[0]}", since=timedelta(minutes=5))
    assert [(e.action, e.path, e.status) for e in patched] == [
        ("PATCH /api/v1/users/{name}", f"/api/v1/users/{names[0]}", 200)]
    assert patched[0].request_digest.startswith("sha256:")

    # since is inclusive, until exclusive; times as datetimes or milliseconds.
    def posts(**kw):
        return [e.seq for e in admin.audit.events(after=floor, action="POST /api/v1/users", **kw)]

    assert posts(since=timedelta(minutes=5), until=datetime.now(timezone.utc) + timedelta(minutes=1)) == [e.seq for e in made]
    assert posts(until=made[0].time) == []
    assert posts(since=datetime.fromtimestamp(made[2].time / 1000, timezone.utc)) == [
        e.seq for e in made if e.time >= made[2].time]  # made[2] and any made in the same millisecond
    assert posts(since=made[0].time, until=made[2].time) == [e.seq for e in made if e.time < made[2].time]
    assert admin.audit.events(actor=f"nobody-{unique}") == []
    newest = admin.audit.events(order="desc", limit=2)
    assert len(newest) == 2 and newest[0].seq > newest[1].seq
    assert newest[0].seq == max(e.seq for e in admin.audit.events(after=newest[1].seq - 1))
    assert [e.seq for e in admin.audit.events(after=made[0].seq, before=made[2].seq, action="POST /api/v1/users")] == [made[1].seq]
    with pytest.raises(ValueError, match="order is asc or desc"):
        admin.audit.events(order="newest")

    # Paging: the iterator reads every event, a few at a time, either way.
    every = admin.audit.events(limit=10000)
    assert len(every) >= 5
    assert [e.seq for e in admin.audit.iter(page_size=2)] == [e.seq for e in every]
    assert [e.seq for e in admin.audit.iter(order="desc", page_size=3)] == [e.seq for e in reversed(every)]
    assert [e.seq for e in admin.audit.iter(page_size=2, limit=3)] == [e.seq for e in every[:3]]
    assert [e.seq for e in admin.audit.iter(after=made[0].seq, page_size=1, action="POST /api/v1/users",
                                            since=timedelta(hours=1))] == [made[1].seq, made[2].seq]

    ok = admin.audit.verify()
    assert ok.ok and ok.events >= len(every) and ok.last_seq >= every[-1].seq
    assert ok.first_bad_seq == 0 and ok.problem == "" and len(ok.head) == 64

    # The CLI reads the same log.
    cli = json.loads(auth_server.cli("audit", "list", "--actor", "admin", "-o", "json").stdout)
    assert {e.seq for e in made} <= {e["seq"] for e in cli}

    # Only server administrators read it.
    for n in names:
        admin.users.delete(n)
    reader = admin.tokens.create(name=f"audit-{unique}", scope="read")
    with pytest.raises(kiln.PermissionDenied):
        kiln.Client(auth_server.url, token=reader.secret).audit.events()
    admin.tokens.revoke(reader.token.token_id)


def test_audit_times_are_milliseconds():
    assert ms_param(datetime(2026, 3, 1, tzinfo=timezone.utc)) == 1772323200000
    assert ms_param(datetime(2026, 3, 1)) == 1772323200000  # naive = UTC
    assert ms_param("2026-03-01T00:00:00Z") == 1772323200000
    assert ms_param("2026-03-01T01:00:00+01:00") == 1772323200000
    assert ms_param(1700000000123) == 1700000000123 and ms_param("1700000000123") == 1700000000123
    now = datetime.now(timezone.utc).timestamp() * 1000
    assert abs(ms_param(timedelta(hours=1)) - (now - 3_600_000)) < 5000
    with pytest.raises(ValueError, match="invalid time"):
        ms_param("yesterday")
    with pytest.raises(TypeError):
        ms_param(True)
