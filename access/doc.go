// Package access is who may do what in Kiln, and the record of what they
// did.
//
// Identity: users sign in with a password (argon2id hashes) or an API
// token (random, shown once, stored as a SHA-256 hash, scoped, expiring,
// revocable); service accounts (for pipelines and automation) have tokens
// only. The MLflow client's MLFLOW_TRACKING_USERNAME/PASSWORD arrive as
// HTTP Basic and MLFLOW_TRACKING_TOKEN as a Bearer token; the UI uses a
// session cookie with a CSRF token.
//
// Roles: viewer < editor < maintainer < admin, granted per workspace, on
// a whole workspace or on one experiment, registered model or endpoint.
// Every route of the server has a Permission in the route policy (the
// action it needs and where the resource's name comes from); a route
// without one is refused to everyone but server administrators.
//
// Workspaces are namespaces (Owners): experiments, registered models and
// endpoints belong to the workspace they were created in (no record: the
// default one), and a request sees only its own workspace's — the
// middleware refuses the others as not found, handlers filter listings
// with Visible. Names stay global.
//
// Audit: every mutation (and every refusal) is an Event in an
// append-only log whose rows are hash-chained; Verify walks the chain and
// names the first row that does not match.
package access
