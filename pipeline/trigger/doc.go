// Package trigger starts pipeline runs on schedules and events: cron
// schedules (in the schedule's IANA time zone, with the concurrency
// policies forbid, allow and replace, a starting deadline and optional
// catch-up), new dataset versions, new registered model versions, firing
// monitor alerts (the Service is the alert engine's Hook) and signed
// webhooks.
//
// Every server runs a Service. Each schedule and trigger has a row in
// pipeline_trigger_state that every Service reconciles with the
// pipelines' specs; a Service evaluates a row only under a lease on it, so
// one server at a time does, and a lease that lapses (the server died) is
// taken over. Every run is started with a RunRequest.DedupKey naming the
// event ("schedule/<name>/<tick unix ms>", "dataset/<dataset>/<version>",
// "model/<model>/<version>", "alert/<event id>/<pipeline>",
// "webhook/<trigger>/<delivery>"), so that even a server that takes over
// an evaluation another one had half done starts each run once.
package trigger
