package predlog

// The columns of a prediction-log Parquet file: one row per predicted row
// (a request of N rows gives N rows sharing the request's metadata), the
// metadata first, then one column per model input feature and per model
// output, prefixed so that no feature name can collide with the metadata.
const (
	ColTimestamp    = "timestamp"     // TIMESTAMP(MILLIS) UTC: when the request arrived
	ColRequestID    = "request_id"    // string: OIP id or X-Request-Id (see serving.Call.ID)
	ColRow          = "row"           // int64: the row's index within its request
	ColEndpoint     = "endpoint"      // string
	ColRoute        = "route"         // string: the endpoint route or A/B variant, "shadow" for mirrored copies
	ColModel        = "model"         // string: serving.Model.Source, e.g. "fraud/3"
	ColModelVersion = "model_version" // string: serving.Model.Version
	ColProtocol     = "protocol"      // string: "v2-rest", "v2-grpc" or "mlflow"
	ColLatencyMS    = "latency_ms"    // double: the request's latency in milliseconds
	ColStatus       = "status"        // int64: HTTP status of the answer
	ColError        = "error"         // string: why the request failed, "" on success
	ColSubject      = "subject"       // string: the subject key (Logging.SubjectHeader), "" when absent
	ColOutliers     = "outliers"      // string: comma-separated input features outside the reference bounds, "" when none

	// InputPrefix and OutputPrefix prefix the feature and output columns:
	// "inputs.age", "outputs.label", "outputs.probabilities_1".
	InputPrefix  = "inputs."
	OutputPrefix = "outputs."
)
