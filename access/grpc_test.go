package access

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/serving/inferencepb"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestUnaryInterceptor(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	st := NewStore(db)
	for _, u := range []string{"app", "other"} {
		if _, err := st.CreateUser(ctx, NewUser{Name: u, Kind: KindService}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.PutGrant(ctx, Grant{User: "app", Workspace: DefaultWorkspace, ResourceType: ResourceEndpoint, Resource: "churn", Role: RoleViewer}, "test"); err != nil {
		t.Fatal(err)
	}
	_, app, _ := st.CreateToken(ctx, NewToken{User: "app", Scope: "predict"}, "test")
	_, other, _ := st.CreateToken(ctx, NewToken{User: "other"}, "test")
	ic := UnaryInterceptor(NewAuthenticator(st, time.Minute))
	call := func(method, token string, req any) codes.Code {
		c := ctx
		if token != "" {
			c = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
		}
		_, err := ic(c, req, &grpc.UnaryServerInfo{FullMethod: "/inference.GRPCInferenceService/" + method}, func(ctx context.Context, req any) (any, error) {
			if FromContext(ctx) == nil && method != "ServerLive" {
				t.Errorf("%s: no principal in the handler's context", method)
			}
			return "ok", nil
		})
		return status.Code(err)
	}
	for _, tc := range []struct {
		method, token string
		req           any
		want          codes.Code
	}{
		{"ServerLive", "", &inferencepb.ServerLiveRequest{}, codes.OK},
		{"ModelInfer", "", &inferencepb.ModelInferRequest{ModelName: "churn"}, codes.Unauthenticated},
		{"ModelInfer", "kiln_nope", &inferencepb.ModelInferRequest{ModelName: "churn"}, codes.Unauthenticated},
		{"ModelInfer", app, &inferencepb.ModelInferRequest{ModelName: "churn"}, codes.OK},
		{"ModelInfer", app, &inferencepb.ModelInferRequest{ModelName: "fraud"}, codes.PermissionDenied},
		{"ModelMetadata", app, &inferencepb.ModelMetadataRequest{Name: "churn"}, codes.PermissionDenied}, // predict scope cannot read
		{"ModelInfer", other, &inferencepb.ModelInferRequest{ModelName: "churn"}, codes.PermissionDenied},
		{"Unknown", app, &inferencepb.ServerLiveRequest{}, codes.PermissionDenied},
	} {
		if got := call(tc.method, tc.token, tc.req); got != tc.want && !(tc.want == codes.OK && got == codes.OK) {
			t.Errorf("%s as %.12s: %v, want %v", tc.method, tc.token, got, tc.want)
		}
	}
	// Off: everything passes.
	if _, err := UnaryInterceptor(nil)(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x/ModelInfer"}, func(context.Context, any) (any, error) { return nil, nil }); err != nil {
		t.Error(err)
	}
}
