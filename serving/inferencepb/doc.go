// Package inferencepb holds the Go code generated from the Open Inference
// Protocol's gRPC definition (open_inference_grpc.proto, package inference):
// the GRPCInferenceService that tritonclient, KServe and MLServer speak.
// Regenerate it with generate.sh; do not edit the .pb.go files by hand.
package inferencepb
