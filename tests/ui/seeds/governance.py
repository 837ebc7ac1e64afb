"""Governance for the UI tests: users (a maintainer with a password, a
viewer, a disabled service account), a token, a workspace with grants (on
the whole workspace and on one registered model), a registered model with
two versions, an approval policy protecting its `champion` alias, and a
pending request for version 2 made by the maintainer (with its own Basic
auth), which the admin may approve."""
import requests

PW = "ui-gov-ada-password-1"


def seed(ctx):
    api = ctx.api
    ada, bob, bot = "ui-gov-ada", "ui-gov-bob", "ui-gov-bot"
    api("POST", "/api/v1/users", json={"name": ada, "password": PW, "email": "ada@example.com", "display_name": "Ada Lovelace"})
    api("POST", "/api/v1/users", json={"name": bob, "password": "ui-gov-bob-password-1"})
    api("POST", "/api/v1/users", json={"name": bot, "kind": "service"})
    api("PATCH", f"/api/v1/users/{bot}", json={"disabled": True})
    tok = api("POST", "/api/v1/tokens", json={"user": ada, "name": "ui-gov-laptop", "scope": "read", "ttl": "720h"})
    ws = "ui-gov-ws"
    api("POST", "/api/v1/workspaces", json={"name": ws, "description": "UI governance tests"})
    api("PUT", f"/api/v1/workspaces/{ws}/grants", json={"user": ada, "role": "maintainer"})
    api("PUT", f"/api/v1/workspaces/{ws}/grants", json={"user": bob, "role": "viewer"})
    api("PUT", f"/api/v1/workspaces/{ws}/grants", json={"user": bob, "role": "editor", "resource_type": "registered_model", "resource": "ui-gov-model"})
    # Approvals happen in the default workspace: ada maintains it.
    api("PUT", "/api/v1/workspaces/default/grants", json={"user": ada, "role": "maintainer"})
    model = "ui-gov-model"
    api("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model})
    for _ in range(2):
        api("POST", "/api/2.0/mlflow/model-versions/create", json={"name": model, "source": "mlflow-artifacts:/0/models/m-ui-gov/artifacts"})
    api("PUT", "/api/v1/approval-policies/ui-gov-policy", json={"model": model, "aliases": ["champion", "challenger"], "required": 1})
    # Enough events of one action for the audit log's pages (50 a page).
    for i in range(60):
        api("PATCH", f"/api/v1/users/{bob}", json={"display_name": f"Bob {i}"})
    as_ada = requests.Session()
    as_ada.auth = (ada, PW)
    r = as_ada.post(ctx.url + "/api/v1/approval-requests", json={"model": model, "version": 2, "alias": "champion", "reason": "better AUC on November"})
    if r.status_code != 201:
        raise RuntimeError(f"approval request as {ada}: {r.status_code} {r.text}")
    req = r.json()
    return {
        "ada": ada, "ada_password": PW, "bob": bob, "bot": bot, "token_id": tok["token"]["token_id"], "workspace": ws,
        "model": model, "policy": "ui-gov-policy", "request_id": req["request_id"],
    }
