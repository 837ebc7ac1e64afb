package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/serving/inferencepb"
	"github.com/kiln-ml/kiln/tensor"
)

// RegisterGRPC adds the Open Inference Protocol's GRPCInferenceService to
// g. Create g with grpc.MaxRecvMsgSize(GRPCMaxMessageSize()) so large
// requests get the server's own limit rather than gRPC's 4 MiB default.
//
// Besides the protocol's six methods, the service answers
// RepositoryIndex (the model repository extension, as Triton names it).
func (s *Server) RegisterGRPC(g grpc.ServiceRegistrar) {
	desc := inferencepb.GRPCInferenceService_ServiceDesc
	desc.Methods = append(slices.Clip(desc.Methods), grpc.MethodDesc{
		MethodName: "RepositoryIndex",
		Handler:    repositoryIndexHandler,
	})
	g.RegisterService(&desc, &grpcService{s: s})
}

func repositoryIndexHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(inferencepb.RepositoryIndexRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, req any) (any, error) {
		return srv.(*grpcService).RepositoryIndex(ctx, req.(*inferencepb.RepositoryIndexRequest))
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/inference.GRPCInferenceService/RepositoryIndex"}
	return interceptor(ctx, in, info, call)
}

// RepositoryIndex lists the repository's models.
func (g *grpcService) RepositoryIndex(ctx context.Context, req *inferencepb.RepositoryIndexRequest) (*inferencepb.RepositoryIndexResponse, error) {
	resp := &inferencepb.RepositoryIndexResponse{}
	for _, m := range g.s.repo.Models(ctx) {
		if req.GetReady() && m.State != "READY" {
			continue
		}
		resp.Models = append(resp.Models, &inferencepb.RepositoryIndexResponse_ModelIndex{
			Name: m.Name, Version: m.Version, State: m.State, Reason: m.Reason,
		})
	}
	return resp, nil
}

// GRPCMaxMessageSize is the message size limit matching the server's
// body size limit.
func (s *Server) GRPCMaxMessageSize() int {
	if s.opts.MaxBodySize > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s.opts.MaxBodySize)
}

type grpcService struct {
	inferencepb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func grpcError(err error) error {
	k := classify(err)
	if k == kindCanceled {
		return status.FromContextError(err).Err()
	}
	return status.Error(k.grpcCode(), err.Error())
}

func (g *grpcService) ServerLive(context.Context, *inferencepb.ServerLiveRequest) (*inferencepb.ServerLiveResponse, error) {
	return &inferencepb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcService) ServerReady(ctx context.Context, _ *inferencepb.ServerReadyRequest) (*inferencepb.ServerReadyResponse, error) {
	return &inferencepb.ServerReadyResponse{Ready: g.s.ready(ctx)}, nil
}

func (g *grpcService) ModelReady(ctx context.Context, req *inferencepb.ModelReadyRequest) (*inferencepb.ModelReadyResponse, error) {
	_, err := g.s.lookup(ctx, req.GetName(), req.GetVersion())
	switch {
	case err == nil:
		return &inferencepb.ModelReadyResponse{Ready: true}, nil
	case classify(err) == kindUnavailable:
		return &inferencepb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, grpcError(err)
}

func (g *grpcService) ServerMetadata(context.Context, *inferencepb.ServerMetadataRequest) (*inferencepb.ServerMetadataResponse, error) {
	return &inferencepb.ServerMetadataResponse{
		Name:       g.s.opts.ServerName,
		Version:    g.s.opts.ServerVersion,
		Extensions: v2Extensions,
	}, nil
}

func (g *grpcService) ModelMetadata(ctx context.Context, req *inferencepb.ModelMetadataRequest) (*inferencepb.ModelMetadataResponse, error) {
	st, err := g.s.lookup(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &inferencepb.ModelMetadataResponse{
		Name:     st.m.Name,
		Versions: st.m.versions(),
		Platform: st.m.Platform,
	}
	for _, in := range st.sig.Inputs {
		resp.Inputs = append(resp.Inputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: in.Name, Datatype: in.DType.String(), Shape: in.Shape})
	}
	for _, out := range st.sig.Outputs {
		resp.Outputs = append(resp.Outputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: out.Name, Datatype: out.DType.String(), Shape: out.Shape})
	}
	return resp, nil
}

func (g *grpcService) ModelInfer(ctx context.Context, req *inferencepb.ModelInferRequest) (*inferencepb.ModelInferResponse, error) {
	start := time.Now()
	st, err := g.s.lookup(ctx, req.GetModelName(), req.GetModelVersion())
	if err != nil {
		err = grpcError(err)
		g.s.unknown.countGRPC(status.Code(err))
		return nil, err
	}
	resp, err := g.infer(ctx, st, req, start)
	if err != nil {
		if classify(err) == kindInternal {
			g.s.log.Error("inference failed", "model", st.m.Name, "protocol", "v2-grpc", "err", err)
		}
		err = grpcError(err)
	}
	st.mm.countGRPC(status.Code(err))
	st.mm.duration.Observe(time.Since(start).Seconds())
	return resp, err
}

func (g *grpcService) infer(ctx context.Context, st *modelState, req *inferencepb.ModelInferRequest, start time.Time) (resp *inferencepb.ModelInferResponse, err error) {
	var inputs, keys []*tensor.Tensor
	defer func() {
		if p := recover(); p != nil {
			g.s.log.Error("panic serving inference request", "model", st.m.Name, "protocol", "v2-grpc", "panic", fmt.Sprint(p))
			resp, err = nil, errors.New("internal error")
		}
		if err != nil {
			g.s.observe(ctx, st, protoGRPC, req.GetId(), start, inputs, keys, nil, err, classify(err).httpStatus())
		}
	}()
	release, err := g.s.admit(ctx, st)
	if err != nil {
		return nil, err
	}
	defer release()
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, badRequest("%d raw_input_contents for %d inputs", len(raw), len(req.GetInputs()))
	}
	decoded := make([]*tensor.Tensor, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		t, err := grpcInput(in, raw, i)
		if err != nil {
			return nil, err
		}
		decoded[i] = t
	}
	if fs := st.featureSet(); fs != nil {
		if decoded, keys, err = st.fillTensors(ctx, fs, decoded); err != nil {
			return nil, err
		}
	}
	if inputs, err = st.matchInputs(decoded); err != nil {
		return nil, err
	}
	var reqOuts []v2Output
	for i, o := range req.GetOutputs() {
		if o.GetName() == "" {
			return nil, badRequest("requested output %d has no name", i)
		}
		if p, ok := o.GetParameters()["class_count"]; ok && p.GetInt64Param() != 0 {
			return nil, badRequest("output %q: the classification extension (class_count) is not supported", o.GetName())
		}
		reqOuts = append(reqOuts, v2Output{name: o.GetName()})
	}
	sel, err := st.selectOutputs(reqOuts)
	if err != nil {
		return nil, err
	}
	outs, err := g.s.predict(ctx, st, inputs)
	if err != nil {
		return nil, err
	}
	g.s.observe(ctx, st, protoGRPC, req.GetId(), start, inputs, keys, outs, nil, http.StatusOK)
	if sel, err = resolveOutputs(sel, outs); err != nil {
		return nil, err
	}
	resp = &inferencepb.ModelInferResponse{
		ModelName:    st.m.Name,
		ModelVersion: st.m.Version,
		Id:           req.GetId(),
		Outputs:      make([]*inferencepb.ModelInferResponse_InferOutputTensor, len(sel)),
	}
	// Raw contents answer raw requests (as Triton does), and any output
	// that has no typed field (FP16).
	useRaw := len(raw) > 0
	for _, o := range sel {
		if outs[o.index].DType == tensor.Float16 {
			useRaw = true
		}
	}
	if useRaw {
		resp.RawOutputContents = make([][]byte, len(sel))
	}
	for i, o := range sel {
		t := outs[o.index]
		ot := &inferencepb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape}
		if useRaw {
			resp.RawOutputContents[i] = appendRaw(make([]byte, 0, rawSize(t)), t)
		} else {
			ot.Contents = typedContents(t)
		}
		resp.Outputs[i] = ot
	}
	return resp, nil
}

func grpcInput(in *inferencepb.ModelInferRequest_InferInputTensor, raw [][]byte, i int) (*tensor.Tensor, error) {
	name := in.GetName()
	if name == "" {
		return nil, badRequest("input %d has no name", i)
	}
	dt, err := tensor.ParseDType(in.GetDatatype())
	if err != nil {
		return nil, badRequest("input %q: %v", name, err)
	}
	shape := in.GetShape()
	if len(shape) > maxDims {
		return nil, badRequest("input %q: shape has more than %d dimensions", name, maxDims)
	}
	for _, d := range shape {
		if d < 0 {
			return nil, badRequest("input %q: shape %v has a negative dimension", name, shape)
		}
	}
	n := tensor.NumElements(shape)
	if n < 0 {
		return nil, badRequest("input %q: shape %v is too large", name, shape)
	}
	var data any
	if len(raw) > 0 {
		if in.GetContents() != nil {
			return nil, badRequest("input %q has contents, but the request uses raw_input_contents", name)
		}
		if data, err = decodeRaw(name, dt, raw[i], n); err != nil {
			return nil, err
		}
	} else if data, err = fromContents(name, dt, in.GetContents(), n); err != nil {
		return nil, err
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}, nil
}

// fromContents converts typed contents to a slice of dt's element type.
func fromContents(name string, dt tensor.DType, c *inferencepb.InferTensorContents, n int) (any, error) {
	count := func(got int) error {
		if got != n {
			return badRequest("input %q: %d %v elements for a shape of %d elements", name, got, dt, n)
		}
		return nil
	}
	switch dt {
	case tensor.Bool:
		return c.GetBoolContents(), count(len(c.GetBoolContents()))
	case tensor.Int64:
		return c.GetInt64Contents(), count(len(c.GetInt64Contents()))
	case tensor.Uint64:
		return c.GetUint64Contents(), count(len(c.GetUint64Contents()))
	case tensor.Float32:
		return c.GetFp32Contents(), count(len(c.GetFp32Contents()))
	case tensor.Float64:
		return c.GetFp64Contents(), count(len(c.GetFp64Contents()))
	case tensor.String:
		src := c.GetBytesContents()
		out := make([]string, len(src))
		for i, b := range src {
			out[i] = string(b)
		}
		return out, count(len(out))
	case tensor.Int32:
		return c.GetIntContents(), count(len(c.GetIntContents()))
	case tensor.Int16:
		return narrowInts[int16](name, dt, c.GetIntContents(), math.MinInt16, math.MaxInt16, count)
	case tensor.Int8:
		return narrowInts[int8](name, dt, c.GetIntContents(), math.MinInt8, math.MaxInt8, count)
	case tensor.Uint32:
		return c.GetUintContents(), count(len(c.GetUintContents()))
	case tensor.Uint16:
		return narrowUints[uint16](name, dt, c.GetUintContents(), math.MaxUint16, count)
	case tensor.Uint8:
		return narrowUints[uint8](name, dt, c.GetUintContents(), math.MaxUint8, count)
	case tensor.Float16:
		return nil, badRequest("input %q: FP16 data must be sent in raw_input_contents", name)
	}
	return nil, badRequest("input %q: unsupported datatype %v", name, dt)
}

func narrowInts[T int8 | int16](name string, dt tensor.DType, src []int32, lo, hi int32, count func(int) error) (any, error) {
	if err := count(len(src)); err != nil {
		return nil, err
	}
	out := make([]T, len(src))
	for i, v := range src {
		if v < lo || v > hi {
			return nil, badRequest("input %q: element %d: %d is out of range for %v", name, i, v, dt)
		}
		out[i] = T(v)
	}
	return out, nil
}

func narrowUints[T uint8 | uint16](name string, dt tensor.DType, src []uint32, hi uint32, count func(int) error) (any, error) {
	if err := count(len(src)); err != nil {
		return nil, err
	}
	out := make([]T, len(src))
	for i, v := range src {
		if v > hi {
			return nil, badRequest("input %q: element %d: %d is out of range for %v", name, i, v, dt)
		}
		out[i] = T(v)
	}
	return out, nil
}

// typedContents puts t's elements in the InferTensorContents field of its
// type (FP16 has none; callers send it raw).
func typedContents(t *tensor.Tensor) *inferencepb.InferTensorContents {
	c := &inferencepb.InferTensorContents{}
	switch d := t.Data.(type) {
	case []bool:
		c.BoolContents = d
	case []int64:
		c.Int64Contents = d
	case []uint64:
		c.Uint64Contents = d
	case []float32:
		c.Fp32Contents = d
	case []float64:
		c.Fp64Contents = d
	case []int32:
		c.IntContents = d
	case []int16:
		c.IntContents = widen[int32](d)
	case []int8:
		c.IntContents = widen[int32](d)
	case []uint32:
		c.UintContents = d
	case []uint16:
		c.UintContents = widen[uint32](d)
	case []uint8:
		c.UintContents = widen[uint32](d)
	case []string:
		c.BytesContents = make([][]byte, len(d))
		for i, s := range d {
			c.BytesContents[i] = []byte(s)
		}
	}
	return c
}

func widen[W int32 | uint32, T int8 | int16 | uint8 | uint16](src []T) []W {
	out := make([]W, len(src))
	for i, v := range src {
		out[i] = W(v)
	}
	return out
}
