package access

import (
	"fmt"
	"net/http"
	"strings"
)

// Permission is what a route needs: an action, and the resource it acts
// on (a resource type, and where the request names it), which lets a
// grant on one experiment, registered model or endpoint count.
type Permission struct {
	Action   Action
	Resource ResourceType
	// From says where the resource's name is: "path:<wildcard>",
	// "param:<field>" (the query string of a GET, else the JSON body's
	// top-level field), or "run:<field>" (a run id, whose experiment is
	// the resource). Empty: the route acts on the workspace as a whole.
	From string
}

// Policy maps every route pattern of the server to its Permission.
type Policy map[string]Permission

// Lookup returns the permission of a pattern; ok is false for a pattern
// the policy does not know (a route without a check: the middleware
// refuses it to all but server administrators).
func (p Policy) Lookup(pattern string) (Permission, bool) {
	perm, ok := p[pattern]
	return perm, ok
}

// mlflowRPCs are the MLflow REST routes (under /api/2.0 and
// /ajax-api/2.0) with their permissions.
var mlflowRPCs = map[string]Permission{
	// Experiments: reading, searching, creating; deleting is managing.
	"GET /mlflow/experiments/get":                                {ActionRead, ResourceExperiment, "param:experiment_id"},
	"GET /mlflow/experiments/get-by-name":                        {ActionRead, "", ""},
	"GET /mlflow/experiments/search":                             {ActionRead, "", ""},
	"POST /mlflow/experiments/search":                            {ActionRead, "", ""},
	"POST /mlflow/experiments/create":                            {ActionWrite, "", ""},
	"POST /mlflow/experiments/update":                            {ActionWrite, ResourceExperiment, "param:experiment_id"},
	"POST /mlflow/experiments/set-experiment-tag":                {ActionWrite, ResourceExperiment, "param:experiment_id"},
	"POST /mlflow/experiments/delete-experiment-tag":             {ActionWrite, ResourceExperiment, "param:experiment_id"},
	"POST /mlflow/experiments/restore":                           {ActionManage, ResourceExperiment, "param:experiment_id"},
	"POST /mlflow/experiments/delete":                            {ActionManage, ResourceExperiment, "param:experiment_id"},
	"GET /mlflow/runs/get":                                       {ActionRead, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/search":                                   {ActionRead, "", ""},
	"POST /mlflow/runs/create":                                   {ActionWrite, ResourceExperiment, "param:experiment_id"},
	"POST /mlflow/runs/update":                                   {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/delete":                                   {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/restore":                                  {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/log-metric":                               {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/log-parameter":                            {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/log-batch":                                {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/log-inputs":                               {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/log-model":                                {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/outputs":                                  {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/set-tag":                                  {ActionWrite, ResourceExperiment, "run:run_id"},
	"POST /mlflow/runs/delete-tag":                               {ActionWrite, ResourceExperiment, "run:run_id"},
	"GET /mlflow/metrics/get-history":                            {ActionRead, ResourceExperiment, "run:run_id"},
	"GET /mlflow/metrics/get-history-bulk":                       {ActionRead, "", ""},
	"GET /mlflow/metrics/get-history-bulk-interval":              {ActionRead, "", ""},
	"GET /mlflow/artifacts/list":                                 {ActionRead, ResourceExperiment, "run:run_id"},
	"GET /mlflow/logged-models/{model_id}":                       {ActionRead, "", ""},
	"GET /mlflow/logged-models/{model_id}/artifacts/directories": {ActionRead, "", ""},
	"POST /mlflow/logged-models/search":                          {ActionRead, "", ""},
	"POST /mlflow/logged-models":                                 {ActionWrite, ResourceExperiment, "param:experiment_id"},
	"PATCH /mlflow/logged-models/{model_id}":                     {ActionWrite, "", ""},
	"PATCH /mlflow/logged-models/{model_id}/tags":                {ActionWrite, "", ""},
	"POST /mlflow/logged-models/{model_id}/params":               {ActionWrite, "", ""},
	"DELETE /mlflow/logged-models/{model_id}/tags/{tag_key}":     {ActionWrite, "", ""},
	"DELETE /mlflow/logged-models/{model_id}":                    {ActionManage, "", ""},
	// The registry: versions are written by editors; aliases, stages,
	// renames and deletes move what serves, so they are managing.
	"GET /mlflow/registered-models/get":                  {ActionRead, ResourceModel, "param:name"},
	"GET /mlflow/registered-models/search":               {ActionRead, "", ""},
	"GET /mlflow/registered-models/alias":                {ActionRead, ResourceModel, "param:name"},
	"GET /mlflow/registered-models/get-latest-versions":  {ActionRead, ResourceModel, "param:name"},
	"POST /mlflow/registered-models/get-latest-versions": {ActionRead, ResourceModel, "param:name"},
	"POST /mlflow/registered-models/create":              {ActionWrite, ResourceModel, "param:name"},
	"PATCH /mlflow/registered-models/update":             {ActionWrite, ResourceModel, "param:name"},
	"POST /mlflow/registered-models/set-tag":             {ActionWrite, ResourceModel, "param:name"},
	"DELETE /mlflow/registered-models/delete-tag":        {ActionWrite, ResourceModel, "param:name"},
	"POST /mlflow/registered-models/rename":              {ActionManage, ResourceModel, "param:name"},
	"POST /mlflow/registered-models/alias":               {ActionManage, ResourceModel, "param:name"},
	"DELETE /mlflow/registered-models/alias":             {ActionManage, ResourceModel, "param:name"},
	"DELETE /mlflow/registered-models/delete":            {ActionManage, ResourceModel, "param:name"},
	"GET /mlflow/model-versions/get":                     {ActionRead, ResourceModel, "param:name"},
	"GET /mlflow/model-versions/get-download-uri":        {ActionRead, ResourceModel, "param:name"},
	"GET /mlflow/model-versions/search":                  {ActionRead, "", ""},
	"POST /mlflow/model-versions/create":                 {ActionWrite, ResourceModel, "param:name"},
	"PATCH /mlflow/model-versions/update":                {ActionWrite, ResourceModel, "param:name"},
	"POST /mlflow/model-versions/set-tag":                {ActionWrite, ResourceModel, "param:name"},
	"DELETE /mlflow/model-versions/delete-tag":           {ActionWrite, ResourceModel, "param:name"},
	"POST /mlflow/model-versions/transition-stage":       {ActionManage, ResourceModel, "param:name"},
	"DELETE /mlflow/model-versions/delete":               {ActionManage, ResourceModel, "param:name"},
}

// DefaultPolicy is the permission of every route Kiln serves. Its test
// checks it against the server's route table in both directions.
func DefaultPolicy() Policy {
	p := Policy{}
	for route, perm := range mlflowRPCs {
		method, path, _ := strings.Cut(route, " ")
		p[method+" /api/2.0"+path] = perm
		p[method+" /ajax-api/2.0"+path] = perm
	}
	read, write, manage := Permission{Action: ActionRead}, Permission{Action: ActionWrite}, Permission{Action: ActionManage}
	// The mlflow-artifacts proxy, under both prefixes.
	for _, prefix := range []string{"/api/2.0", "/ajax-api/2.0"} {
		for route, perm := range map[string]Permission{
			"GET %s/mlflow-artifacts/artifacts":               read,
			"GET %s/mlflow-artifacts/artifacts/{path...}":     read,
			"PUT %s/mlflow-artifacts/artifacts/{path...}":     write,
			"POST %s/mlflow-artifacts/mpu/create/{path...}":   write,
			"POST %s/mlflow-artifacts/mpu/complete/{path...}": write,
			"POST %s/mlflow-artifacts/mpu/abort/{path...}":    write,
			"DELETE %s/mlflow-artifacts/artifacts/{path...}":  manage,
		} {
			p[fmt.Sprintf(route, prefix)] = perm
		}
	}
	ep := func(a Action, wildcard string) Permission { return Permission{a, ResourceEndpoint, "path:" + wildcard} }
	model := func(a Action) Permission { return Permission{a, ResourceModel, "path:model"} }
	for route, perm := range map[string]Permission{
		// Public: probes, the server's face, the API document, login.
		"GET /health": {Action: ActionPublic}, "GET /version": {Action: ActionPublic}, "GET /{$}": {Action: ActionPublic},
		"GET /api/v1/openapi.yaml": {Action: ActionPublic}, "GET /api/2.0/mlflow/server-features": {Action: ActionPublic},
		"POST /api/v1/login": {Action: ActionPublic},
		// The web UI's files: no data in them (its pages call the APIs,
		// which check), and the sign-in form is one of them.
		"GET /ui": {Action: ActionPublic}, "GET /ui/{path...}": {Action: ActionPublic},
		// Single sign-on: to the provider and back (api/oidc.go).
		"GET /api/v1/oidc/login": {Action: ActionPublic}, "GET /api/v1/oidc/callback": {Action: ActionPublic},
		// Unknown routes answer 404 only to someone signed in.
		"/api/": {Action: ActionAuthenticated}, "/ajax-api/": {Action: ActionAuthenticated}, "/api/v1/": {Action: ActionAuthenticated},
		"GET /metrics": {Action: ActionAuthenticated},
		// Artifacts (the mlflow-artifacts proxy and run artifact downloads).
		"GET /get-artifact":                                                 {ActionRead, ResourceExperiment, "run:run_id"},
		"GET /ajax-api/2.0/mlflow/get-artifact":                             {ActionRead, ResourceExperiment, "run:run_id"},
		"GET /ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files": read,
		// Datasets and their content.
		"GET /api/v1/datasets": read, "GET /api/v1/datasets/{name}": read, "GET /api/v1/datasets/{name}/versions": read,
		"GET /api/v1/datasets/{name}/versions/{version}": read, "GET /api/v1/datasets/{name}/versions/{version}/diff": read,
		"GET /api/v1/datasets/{name}/versions/{version}/lineage": read, "GET /api/v1/datasets/{name}/versions/{version}/profile": read,
		"GET /api/v1/datasets/{name}/versions/{version}/pii":         read,
		"GET /api/v1/datasets/{name}/versions/{version}/validations": read,
		"POST /api/v1/datasets":                                      write, "POST /api/v1/datasets/{name}/versions": write, "PATCH /api/v1/datasets/{name}": write,
		"PATCH /api/v1/datasets/{name}/versions/{version}":                       write,
		"POST /api/v1/datasets/{name}/versions/{version}/lineage/model-versions": write,
		"POST /api/v1/datasets/{name}/versions/{version}/lineage/runs":           write,
		"POST /api/v1/datasets/{name}/versions/{version}/profile":                write,
		"POST /api/v1/datasets/{name}/versions/{version}/splits":                 write,
		"POST /api/v1/datasets/{name}/versions/{version}/validations":            write,
		"DELETE /api/v1/datasets/{name}":                                         manage,
		"GET /api/v1/content/manifests/{digest}":                                 read, "GET /api/v1/content/objects/{digest}": read,
		"POST /api/v1/content/objects": write, "POST /api/v1/content/objects/missing": read,
		"PUT /api/v1/content/manifests/{digest}": write, "PUT /api/v1/content/objects/{digest}": write,
		// Training sets write a dataset version (api/training_sets.go).
		"POST /api/v1/training-sets": write,
		// The feature store: defining, deleting and materializing are
		// writes; online lookups read (api/features.go).
		"GET /api/v1/entities": read, "GET /api/v1/entities/{name}": read,
		"PUT /api/v1/entities/{name}": write, "DELETE /api/v1/entities/{name}": write,
		"GET /api/v1/feature-views": read, "GET /api/v1/feature-views/{name}": read,
		"GET /api/v1/feature-views/{name}/versions": read, "GET /api/v1/feature-views/{name}/materializations": read,
		"PUT /api/v1/feature-views/{name}": write, "DELETE /api/v1/feature-views/{name}": write,
		"POST /api/v1/feature-views/{name}/materialize": write,
		"GET /api/v1/features/online":                   read, "POST /api/v1/features/online": read,
		// Lineage. The graph needs read access to the workspace: it names
		// nodes across experiments, models and endpoints.
		"GET /api/v1/lineage":                                              read,
		"GET /api/v1/runs/{run_id}/datasets":                               {ActionRead, ResourceExperiment, "run:run_id"},
		"GET /api/v1/models/{model}/versions/{model_version}/datasets":     model(ActionRead),
		"GET /api/v1/models/{model}/versions/{model_version}/gate-results": model(ActionRead),
		// Model cards: read with the model; the edited text is a write.
		"GET /api/v1/models/{model}/versions/{model_version}/card": model(ActionRead),
		"PUT /api/v1/models/{model}/versions/{model_version}/card": model(ActionWrite),
		// Copying a version: read here; the handler checks the principal
		// may write registered models in the target workspace.
		"POST /api/v1/models/{model}/versions/{model_version}/copy": model(ActionRead),
		// Batch scoring.
		"GET /api/v1/score-jobs": read, "GET /api/v1/score-jobs/{id}": read, "POST /api/v1/score-jobs": write,
		// Endpoints: deploying, rolling out and deleting are managing.
		"GET /api/v1/endpoints": read, "GET /api/v1/endpoints/{name}": ep(ActionRead, "name"),
		"GET /api/v1/endpoints/{name}/events": ep(ActionRead, "name"), "GET /api/v1/endpoints/{name}/stats": ep(ActionRead, "name"),
		"PUT /api/v1/endpoints/{name}": ep(ActionManage, "name"), "DELETE /api/v1/endpoints/{name}": ep(ActionManage, "name"),
		"POST /api/v1/endpoints/{name}/rollout/{action}":         ep(ActionManage, "name"),
		"GET /api/v1/endpoints/{endpoint}/predictions":           ep(ActionRead, "endpoint"),
		"GET /api/v1/endpoints/{endpoint}/predictions/segments":  ep(ActionRead, "endpoint"),
		"POST /api/v1/endpoints/{endpoint}/predictions/flush":    ep(ActionWrite, "endpoint"),
		"POST /api/v1/endpoints/{endpoint}/predictions/erase":    ep(ActionManage, "endpoint"),
		"POST /api/v1/endpoints/{endpoint}/feedback":             ep(ActionWrite, "endpoint"),
		"GET /api/v1/endpoints/{endpoint}/feedback/{request_id}": ep(ActionRead, "endpoint"),
		"GET /api/v1/endpoints/{endpoint}/performance":           ep(ActionRead, "endpoint"),
		// Inference.
		"POST /endpoints/{endpoint}/invocations": ep(ActionPredict, "endpoint"),
		"POST /endpoints/{endpoint}/explain":     ep(ActionPredict, "endpoint"),
		"GET /v2/health/live":                    {Action: ActionPublic}, "GET /v2/health/ready": {Action: ActionPublic},
		"/v2":                   {Action: ActionAuthenticated},
		"/v2/":                  {Action: ActionAuthenticated},
		"GET /v2/models/{name}": ep(ActionRead, "name"),
		"GET /v2/models/{name}/versions/{version}":        ep(ActionRead, "name"),
		"GET /v2/models/{name}/ready":                     ep(ActionRead, "name"),
		"GET /v2/models/{name}/versions/{version}/ready":  ep(ActionRead, "name"),
		"POST /v2/models/{name}/infer":                    ep(ActionPredict, "name"),
		"POST /v2/models/{name}/versions/{version}/infer": ep(ActionPredict, "name"),
		"POST /v2/repository/index":                       read,
		// Promotion gates: the policy decides what may serve.
		"GET /api/v1/gate-policies": read, "GET /api/v1/gate-policies/{name}": read,
		"PUT /api/v1/gate-policies/{name}": manage, "DELETE /api/v1/gate-policies/{name}": manage,
		"POST /api/v1/gate-policies/{name}/evaluate": write,
		// Monitoring and alerts (receivers are outgoing webhooks).
		"GET /api/v1/monitors": read, "GET /api/v1/monitors/{name}": read, "GET /api/v1/monitors/{name}/report": read,
		"GET /api/v1/monitors/{name}/results": read, "PUT /api/v1/monitors/{name}": manage, "DELETE /api/v1/monitors/{name}": manage,
		"POST /api/v1/monitors/{name}/run": write,
		"GET /api/v1/alerts":               read, "GET /api/v1/alerts/history": read,
		"GET /api/v1/alert-receivers": read, "GET /api/v1/alert-receivers/{name}": read,
		"PUT /api/v1/alert-receivers/{name}": manage, "DELETE /api/v1/alert-receivers/{name}": manage,
		// Pipelines run commands on the server's machines: defining one is
		// managing, running one is writing.
		"GET /api/v1/pipelines": read, "GET /api/v1/pipelines/{name}": read, "GET /api/v1/pipelines/{name}/runs": read,
		"GET /api/v1/pipelines/{name}/triggers": read, "PUT /api/v1/pipelines/{name}": manage, "DELETE /api/v1/pipelines/{name}": manage,
		"POST /api/v1/pipelines/{name}/runs": write,
		// A webhook trigger is called by other systems: it checks its own
		// HMAC signature (see pipeline/trigger); the middleware lets a
		// signed request through without an identity.
		"POST /api/v1/pipelines/{name}/triggers/{trigger}": {Action: ActionWrite},
		"GET /api/v1/pipeline-runs":                        read, "GET /api/v1/pipeline-runs/{id}": read,
		"GET /api/v1/pipeline-runs/{id}/steps/{step}/logs": read,
		"POST /api/v1/pipeline-runs/{id}/cancel":           write, "POST /api/v1/pipeline-runs/{id}/resume": write,
		// Approvals: asking is writing, deciding and setting policies is
		// managing (the requester cannot decide their own request).
		"GET /api/v1/approval-policies": read, "GET /api/v1/approval-policies/{name}": read,
		"PUT /api/v1/approval-policies/{name}": manage, "DELETE /api/v1/approval-policies/{name}": manage,
		"GET /api/v1/approval-requests": read, "GET /api/v1/approval-requests/{id}": read,
		"POST /api/v1/approval-requests":              write,
		"POST /api/v1/approval-requests/{id}/approve": manage,
		"POST /api/v1/approval-requests/{id}/reject":  manage,
		// Access control itself.
		"POST /api/v1/logout": {Action: ActionAuthenticated}, "GET /api/v1/whoami": {Action: ActionAuthenticated},
		"GET /api/v1/tokens": {Action: ActionAuthenticated}, "POST /api/v1/tokens": {Action: ActionAuthenticated},
		"DELETE /api/v1/tokens/{id}": {Action: ActionAuthenticated},
		"GET /api/v1/users":          {Action: ActionServerAdmin}, "POST /api/v1/users": {Action: ActionServerAdmin},
		"GET /api/v1/users/{name}":    {Action: ActionAuthenticated}, // yourself, or an administrator
		"PATCH /api/v1/users/{name}":  {Action: ActionAuthenticated},
		"DELETE /api/v1/users/{name}": {Action: ActionServerAdmin},
		"GET /api/v1/workspaces":      {Action: ActionAuthenticated}, "POST /api/v1/workspaces": {Action: ActionServerAdmin},
		"DELETE /api/v1/workspaces/{name}":        {Action: ActionServerAdmin},
		"GET /api/v1/workspaces/{name}/grants":    {ActionGrant, "", "workspace:name"},
		"PUT /api/v1/workspaces/{name}/grants":    {ActionGrant, "", "workspace:name"},
		"DELETE /api/v1/workspaces/{name}/grants": {ActionGrant, "", "workspace:name"},
		"GET /api/v1/audit":                       {Action: ActionServerAdmin}, "GET /api/v1/audit/verify": {Action: ActionServerAdmin},
	} {
		p[route] = perm
	}
	return p
}

// mutating reports whether a request changes something (what the audit
// log records).
func mutating(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}
