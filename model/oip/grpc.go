package oip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/medsa/medsa/model/oip/grpcpb"
)

// grpcTransport is the Open Inference Protocol over gRPC (package inference,
// service GRPCInferenceService); tensors travel as raw_input_contents /
// raw_output_contents. The token is sent as "authorization: Bearer ..."
// metadata.
type grpcTransport struct {
	conn *grpc.ClientConn
	api  pb.GRPCInferenceServiceClient
}

const maxGRPCMessage = 1 << 30

func tlsConfig(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("server CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server CA file %s: no PEM certificates in it", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func newGRPC(host string, tlsOn bool, caFile string, dial time.Duration) (*grpcTransport, error) {
	creds := insecure.NewCredentials()
	if tlsOn {
		tc, err := tlsConfig(caFile)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = 5 * time.Second
	conn, err := grpc.NewClient("passthrough:///"+host,
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: dial}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage), grpc.MaxCallSendMsgSize(maxGRPCMessage)))
	if err != nil {
		return nil, err
	}
	return &grpcTransport{conn: conn, api: pb.NewGRPCInferenceServiceClient(conn)}, nil
}

// gctx adds the bearer token to the call's metadata: as "authorization"
// (the usual gRPC bearer header: KServe, proxies) and as
// "triton-grpc-protocol-authorization", the header Triton's
// --grpc-restricted-protocol=...:authorization=... checks (Triton prefixes
// the key with "triton-grpc-protocol-").
func (c *Client) gctx(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	v := "Bearer " + c.token
	return metadata.AppendToOutgoingContext(ctx, "authorization", v, "triton-grpc-protocol-authorization", v)
}

// grpcErr turns a gRPC error into an *Error whose Status is the HTTP status
// of the same meaning (so ErrUnauthorized, ErrNotFound and the transient /
// refused distinction work alike for both transports), or the context's error.
func (c *Client) grpcErr(ctx context.Context, op string, err error) error {
	if ce := ctx.Err(); ce != nil {
		return fmt.Errorf("server %s: %s: %w", c.base, op, ce)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("server %s: %s: %w", c.base, op, err)
	}
	if st.Code() == codes.DeadlineExceeded {
		return fmt.Errorf("server %s: %s: %w", c.base, op, context.DeadlineExceeded)
	}
	code := http.StatusInternalServerError
	switch st.Code() {
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		code = http.StatusBadRequest
	case codes.Unimplemented:
		code = http.StatusNotImplemented
	case codes.Unavailable:
		code = http.StatusServiceUnavailable
		// Triton answers a call without the required header of a restricted
		// protocol with UNAVAILABLE "This protocol is restricted, expecting header ...".
		if strings.Contains(st.Message(), "restricted") {
			code = http.StatusForbidden
		}
	case codes.ResourceExhausted:
		code = http.StatusTooManyRequests
	}
	return &Error{Server: c.base.String(), Op: op, Status: code, GRPC: st.Code().String(), Msg: st.Message()}
}

func (c *Client) grpcServerReady(ctx context.Context) error {
	r, err := c.g.api.ServerReady(c.gctx(ctx), &pb.ServerReadyRequest{})
	if err != nil {
		return c.grpcErr(ctx, "server ready", err)
	}
	if !r.GetReady() {
		return &Error{Server: c.base.String(), Op: "server ready", Status: http.StatusServiceUnavailable, GRPC: "OK", Msg: "server not ready"}
	}
	return nil
}

func (c *Client) grpcModelReady(ctx context.Context, name, version string) error {
	op := "model " + name + " ready"
	r, err := c.g.api.ModelReady(c.gctx(ctx), &pb.ModelReadyRequest{Name: name, Version: version})
	if err != nil {
		return c.grpcErr(ctx, op, err)
	}
	if !r.GetReady() {
		// As over HTTP, where Triton answers 400 for a model that is not ready.
		return &Error{Server: c.base.String(), Op: op, Status: http.StatusBadRequest, GRPC: "OK", Msg: "model not ready"}
	}
	return nil
}

func (c *Client) grpcModelMetadata(ctx context.Context, name string) (*ModelMetadata, error) {
	r, err := c.g.api.ModelMetadata(c.gctx(ctx), &pb.ModelMetadataRequest{Name: name})
	if err != nil {
		return nil, c.grpcErr(ctx, "model "+name+" metadata", err)
	}
	m := &ModelMetadata{Name: r.GetName(), Versions: r.GetVersions(), Platform: r.GetPlatform()}
	for _, t := range r.GetInputs() {
		m.Inputs = append(m.Inputs, TensorMetadata{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()})
	}
	for _, t := range r.GetOutputs() {
		m.Outputs = append(m.Outputs, TensorMetadata{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()})
	}
	return m, nil
}

func (c *Client) grpcModelParameters(ctx context.Context, name string) (map[string]string, error) {
	r, err := c.g.api.ModelConfig(c.gctx(ctx), &pb.ModelConfigRequest{Name: name})
	if err != nil {
		err = c.grpcErr(ctx, "model "+name+" config", err)
		var oe *Error
		if errors.As(err, &oe) && oe.Status == http.StatusNotImplemented {
			oe.Status = http.StatusNotFound // no model configuration extension, as a 404 over HTTP
		}
		return nil, err
	}
	out := map[string]string{}
	for k, v := range r.GetConfig().GetParameters() {
		out[k] = v.GetStringValue()
	}
	return out, nil
}

func (c *Client) grpcInfer(ctx context.Context, model, version string, inputs []Tensor, outputs []string) (*InferResult, error) {
	op := "infer " + model
	req := &pb.ModelInferRequest{ModelName: model, ModelVersion: version}
	for _, in := range inputs {
		req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
		req.RawInputContents = append(req.RawInputContents, in.Data)
	}
	for _, o := range outputs {
		req.Outputs = append(req.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o})
	}
	r, err := c.g.api.ModelInfer(c.gctx(ctx), req)
	if err != nil {
		return nil, c.grpcErr(ctx, op, err)
	}
	res := &InferResult{WireBytes: int64(proto.Size(r))}
	raw := r.GetRawOutputContents()
	if len(raw) != len(r.GetOutputs()) {
		return nil, fmt.Errorf("server %s: %s: %d outputs but %d raw_output_contents (servers must answer raw tensors)", c.base, op, len(r.GetOutputs()), len(raw))
	}
	for i, o := range r.GetOutputs() {
		res.Outputs = append(res.Outputs, Tensor{Name: o.GetName(), Datatype: o.GetDatatype(), Shape: o.GetShape(), Data: raw[i]})
	}
	return res, nil
}
