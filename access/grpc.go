package access

import (
	"context"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcActions are the Open Inference Protocol's gRPC methods and the
// action each needs (by method name; unknown methods need a server
// administrator).
var grpcActions = map[string]Action{
	"ServerLive": ActionPublic, "ServerReady": ActionPublic,
	"ServerMetadata": ActionAuthenticated, "RepositoryIndex": ActionRead,
	"ModelReady": ActionRead, "ModelMetadata": ActionRead, "ModelInfer": ActionPredict,
}

// UnaryInterceptor checks gRPC inference calls as Middleware checks HTTP
// requests: credentials from the "authorization" metadata (Basic or
// Bearer, as HTTP), the workspace from "x-kiln-workspace", and the
// endpoint from the request's model_name. With a nil Authenticator
// every call passes. With owners, an endpoint of another workspace is not
// found (as over HTTP).
func UnaryInterceptor(a *Authenticator, owners ...*Owners) grpc.UnaryServerInterceptor {
	var own *Owners
	if len(owners) > 0 {
		own = owners[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a == nil {
			return handler(ctx, req)
		}
		method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		act, ok := grpcActions[method]
		if !ok {
			act = ActionServerAdmin
		}
		if act == ActionPublic {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		r := &http.Request{Header: http.Header{}}
		if v := md.Get("authorization"); len(v) > 0 {
			r.Header.Set("Authorization", v[0])
		}
		ws, named := DefaultWorkspace, false
		if v := md.Get("x-kiln-workspace"); len(v) > 0 && v[0] != "" {
			ws, named = v[0], true
		}
		p, err := a.Authenticate(ctx, r)
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		if p == nil {
			return nil, status.Error(codes.Unauthenticated, "Authentication required: send authorization metadata (Bearer kiln_… or Basic)")
		}
		name := ""
		if m, ok := req.(interface{ GetName() string }); ok {
			name = m.GetName()
		}
		if m, ok := req.(interface{ GetModelName() string }); ok {
			name = m.GetModelName()
		}
		if p.TokenWorkspace != "" && !named {
			ws = p.TokenWorkspace
		}
		if !p.Can(act, ws, "", "") && !p.Can(act, ws, ResourceEndpoint, name) {
			return nil, status.Error(codes.PermissionDenied, denial(p, Permission{Action: act}, ws).Error())
		}
		if sc := (&scope{owners: own, ws: ws}); name != "" && sc.isolated(ctx) {
			owner, _, err := own.Owner(ctx, ResourceEndpoint, name)
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			if owner != ws {
				return nil, status.Error(codes.NotFound, NotInWorkspace(ResourceEndpoint, name, ws).Error())
			}
		}
		return handler(WithPrincipal(ctx, p), req)
	}
}
