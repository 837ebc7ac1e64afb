#!/bin/sh
# Regenerates the Go code for the Open Inference Protocol gRPC service from
# open_inference_grpc.proto (copied unchanged from
# github.com/kserve/open-inference-protocol, specification/protocol/, commit
# d49cc23; Apache-2.0), and the messages of the repository index call from
# model_repository.proto (Kiln's).
#
# Needs protoc (or pip's grpcio-tools) and the two Go plugins:
#   python3 -m venv /tmp/protoc-venv && /tmp/protoc-venv/bin/pip install grpcio-tools
#   GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   GOBIN=/tmp/gobin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# then run this script from anywhere:
#   PROTOC="/tmp/protoc-venv/bin/python -m grpc_tools.protoc" PATH=/tmp/gobin:$PATH serving/inferencepb/generate.sh
set -eu
cd "$(dirname "$0")"
PROTOC=${PROTOC:-protoc}
pkg=github.com/kiln-ml/kiln/serving/inferencepb
$PROTOC -I . \
	--go_out=. --go_opt=paths=source_relative --go_opt=Mopen_inference_grpc.proto=$pkg \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mopen_inference_grpc.proto=$pkg \
	open_inference_grpc.proto
$PROTOC -I . \
	--go_out=. --go_opt=paths=source_relative --go_opt=Mmodel_repository.proto=$pkg \
	model_repository.proto
