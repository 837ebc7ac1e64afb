package serving

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/kiln-ml/kiln/serving/inferencepb"
	"github.com/kiln-ml/kiln/tensor"
)

// grpcClient serves s over an in-memory listener and returns a real
// grpc-go client of it.
func grpcClient(t *testing.T, s *Server) inferencepb.GRPCInferenceServiceClient {
	return inferencepb.NewGRPCInferenceServiceClient(grpcConn(t, s))
}

func TestGRPCHealthAndMetadata(t *testing.T) {
	s, _ := linearServer(t, Options{ServerVersion: "1.2.3"})
	c := grpcClient(t, s)
	ctx := context.Background()

	live, err := c.ServerLive(ctx, &inferencepb.ServerLiveRequest{})
	if err != nil || !live.Live {
		t.Errorf("ServerLive = %v, %v", live, err)
	}
	ready, err := c.ServerReady(ctx, &inferencepb.ServerReadyRequest{})
	if err != nil || !ready.Ready {
		t.Errorf("ServerReady = %v, %v", ready, err)
	}
	mr, err := c.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "lin", Version: "1"})
	if err != nil || !mr.Ready {
		t.Errorf("ModelReady = %v, %v", mr, err)
	}
	if _, err := c.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady(nope) = %v, want NotFound", err)
	}
	sm, err := c.ServerMetadata(ctx, &inferencepb.ServerMetadataRequest{})
	if err != nil || sm.Name != "kiln" || sm.Version != "1.2.3" || !reflect.DeepEqual(sm.Extensions, v2Extensions) {
		t.Errorf("ServerMetadata = %v, %v", sm, err)
	}
	md, err := c.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "lin"})
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "lin" || md.Platform != "test_linear" || !reflect.DeepEqual(md.Versions, []string{"1"}) ||
		len(md.Inputs) != 1 || md.Inputs[0].Name != "x" || md.Inputs[0].Datatype != "FP32" || !reflect.DeepEqual(md.Inputs[0].Shape, []int64{-1, 3}) ||
		len(md.Outputs) != 2 || md.Outputs[1].Name != "label" || md.Outputs[1].Datatype != "INT64" {
		t.Errorf("ModelMetadata = %v", md)
	}
	if _, err := c.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "lin", Version: "3"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelMetadata(lin v3) = %v, want NotFound", err)
	}
}

// grpcConn serves s over an in-memory listener and returns a client
// connection to it.
func grpcConn(t *testing.T, s *Server) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	g := grpc.NewServer(grpc.MaxRecvMsgSize(s.GRPCMaxMessageSize()))
	s.RegisterGRPC(g)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestGRPCRepositoryIndex(t *testing.T) {
	s, _ := linearServer(t, Options{})
	conn := grpcConn(t, s)
	resp := new(inferencepb.RepositoryIndexResponse)
	if err := conn.Invoke(context.Background(), "/inference.GRPCInferenceService/RepositoryIndex", &inferencepb.RepositoryIndexRequest{Ready: true}, resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Models) != 2 || resp.Models[0].Name != "lin" || resp.Models[0].Version != "1" || resp.Models[0].State != "READY" || resp.Models[1].Name != "text" {
		t.Errorf("RepositoryIndex = %v", resp)
	}
}

func TestGRPCInfer(t *testing.T) {
	s, _ := linearServer(t, Options{MaxBodySize: 4096})
	c := grpcClient(t, s)
	ctx := context.Background()
	x := &tensor.Tensor{Name: "x", DType: tensor.Float32, Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 0, 0, 0}}

	t.Run("typed contents", func(t *testing.T) {
		resp, err := c.ModelInfer(ctx, &inferencepb.ModelInferRequest{
			ModelName: "lin", Id: "9",
			Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
				Name: "x", Datatype: "FP32", Shape: []int64{2, 3},
				Contents: &inferencepb.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 0, 0, 0}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.ModelName != "lin" || resp.ModelVersion != "1" || resp.Id != "9" || len(resp.RawOutputContents) != 0 || len(resp.Outputs) != 2 {
			t.Fatalf("response %v", resp)
		}
		if y := resp.Outputs[0]; y.Name != "y" || y.Datatype != "FP32" || !reflect.DeepEqual(y.Shape, []int64{2, 1}) || !reflect.DeepEqual(y.Contents.Fp32Contents, []float32{4.75, 0.25}) {
			t.Errorf("y = %v", y)
		}
		if l := resp.Outputs[1]; !reflect.DeepEqual(l.Contents.Int64Contents, []int64{1, 1}) {
			t.Errorf("label = %v", l)
		}
	})
	t.Run("raw contents, output filter", func(t *testing.T) {
		resp, err := c.ModelInfer(ctx, &inferencepb.ModelInferRequest{
			ModelName:        "lin",
			Inputs:           []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}}},
			RawInputContents: [][]byte{appendRaw(nil, x)},
			Outputs:          []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "label"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Outputs) != 1 || resp.Outputs[0].Name != "label" || resp.Outputs[0].Contents != nil || len(resp.RawOutputContents) != 1 {
			t.Fatalf("response %v", resp)
		}
		got, _ := decodeRaw("label", tensor.Int64, resp.RawOutputContents[0], 2)
		if !reflect.DeepEqual(got, []int64{1, 1}) {
			t.Errorf("label = %v", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		resp, err := c.ModelInfer(ctx, &inferencepb.ModelInferRequest{
			ModelName: "text",
			Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
				Name: "text", Datatype: "BYTES", Shape: []int64{2, 1},
				Contents: &inferencepb.InferTensorContents{BytesContents: [][]byte{[]byte("ab"), []byte("\x00é")}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Outputs[1].Contents.BytesContents; len(got) != 2 || string(got[0]) != "AB" || string(got[1]) != "\x00É" {
			t.Errorf("upper = %q", got)
		}
	})

	errTests := []struct {
		name string
		req  *inferencepb.ModelInferRequest
		code codes.Code
		want string
	}{
		{"unknown model", &inferencepb.ModelInferRequest{ModelName: "nope"}, codes.NotFound, `model not found: "nope"`},
		{"missing input", &inferencepb.ModelInferRequest{ModelName: "lin"}, codes.InvalidArgument, `missing input "x"`},
		{"wrong datatype", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP64", Shape: []int64{1, 3}, Contents: &inferencepb.InferTensorContents{Fp64Contents: []float64{1, 2, 3}}}}},
			codes.InvalidArgument, `input "x" has datatype FP64, model "lin" expects FP32`},
		{"count mismatch", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{2, 3}, Contents: &inferencepb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}}}},
			codes.InvalidArgument, `input "x": 3 FP32 elements for a shape of 6 elements`},
		{"raw size", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1, 3}}}, RawInputContents: [][]byte{{1, 2, 3}}},
			codes.InvalidArgument, `input "x": 3 bytes of FP32 data`},
		{"raw count", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1, 3}}}, RawInputContents: [][]byte{{}, {}}},
			codes.InvalidArgument, `2 raw_input_contents for 1 inputs`},
		{"negative shape", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{-1, 3}}}},
			codes.InvalidArgument, `negative dimension`},
		{"unknown output", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Contents: &inferencepb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}}},
			Outputs: []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "p"}}},
			codes.InvalidArgument, `unknown output "p"`},
		{"model failure", &inferencepb.ModelInferRequest{ModelName: "lin", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1, 3}, Contents: &inferencepb.InferTensorContents{Fp32Contents: []float32{999, 2, 3}}}}},
			codes.Internal, `the model cannot take 999`},
		{"too large", &inferencepb.ModelInferRequest{ModelName: "lin", Id: strings.Repeat("x", 5000)},
			codes.ResourceExhausted, `larger than max`},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ModelInfer(ctx, tt.req)
			if st := status.Convert(err); st.Code() != tt.code || !strings.Contains(st.Message(), tt.want) {
				t.Errorf("error = %v, want %v containing %q", err, tt.code, tt.want)
			}
		})
	}
}

func TestGRPCAllDatatypes(t *testing.T) {
	for _, tc := range dtypeCases {
		t.Run(tc.dt.String(), func(t *testing.T) {
			s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tc.dt}})
			c := grpcClient(t, s)
			in := &tensor.Tensor{Name: "x", DType: tc.dt, Shape: []int64{2, 2}, Data: tc.values}
			raw := appendRaw(nil, in)
			// Raw in, raw out.
			resp, err := c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{
				ModelName:        "echo",
				Inputs:           []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: tc.dt.String(), Shape: []int64{2, 2}}},
				RawInputContents: [][]byte{raw},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.RawOutputContents) != 1 || string(resp.RawOutputContents[0]) != string(raw) || resp.Outputs[0].Datatype != tc.dt.String() {
				t.Errorf("raw round trip: %v", resp)
			}
			if tc.dt == tensor.Float16 {
				return // no typed field for FP16
			}
			// Typed in, typed out.
			resp, err = c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{
				ModelName: "echo",
				Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
					Name: "x", Datatype: tc.dt.String(), Shape: []int64{2, 2}, Contents: typedContents(in)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.RawOutputContents) != 0 {
				t.Fatalf("typed request got raw outputs")
			}
			got, err := fromContents("x", tc.dt, resp.Outputs[0].Contents, 4)
			if err != nil || !reflect.DeepEqual(got, tc.values) {
				t.Errorf("typed round trip: %v (%v), want %v", got, err, tc.values)
			}
		})
	}
}

func TestGRPCFP16TypedIsError(t *testing.T) {
	s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tensor.Float16}})
	c := grpcClient(t, s)
	_, err := c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{
		ModelName: "echo",
		Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP16", Shape: []int64{1, 1}, Contents: &inferencepb.InferTensorContents{}}},
	})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "raw_input_contents") {
		t.Errorf("FP16 typed = %v", err)
	}
}

func TestGRPCNarrowRange(t *testing.T) {
	s, _ := testServer(t, Options{}, &Model{Name: "echo", Runtime: echoModel{dt: tensor.Int8}})
	c := grpcClient(t, s)
	_, err := c.ModelInfer(context.Background(), &inferencepb.ModelInferRequest{
		ModelName: "echo",
		Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "INT8", Shape: []int64{1, 1}, Contents: &inferencepb.InferTensorContents{IntContents: []int32{300}}}},
	})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), `input "x": element 0: 300 is out of range for INT8`) {
		t.Errorf("INT8 300 = %v", err)
	}
}
