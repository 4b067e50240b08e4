package oip

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/medsa/medsa/model/oip/grpcpb"
)

// fakeGRPC is an in-process Open Inference Protocol gRPC server with one
// model, "m", whose output is its input doubled.
type fakeGRPC struct {
	pb.UnimplementedGRPCInferenceServiceServer
	token string
	delay time.Duration
}

func (f *fakeGRPC) auth(ctx context.Context) error {
	if f.token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) == 1 && v[0] == "Bearer "+f.token {
		return nil
	}
	return status.Error(codes.Unauthenticated, "bad token")
}

func (f *fakeGRPC) ServerReady(ctx context.Context, _ *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	return &pb.ServerReadyResponse{Ready: true}, nil
}

func (f *fakeGRPC) ModelReady(ctx context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: r.GetName() == "m"}, nil
}

func (f *fakeGRPC) ModelMetadata(ctx context.Context, r *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	if r.GetName() != "m" {
		return nil, status.Error(codes.NotFound, "no model "+r.GetName())
	}
	return &pb.ModelMetadataResponse{Name: "m", Versions: []string{"1"}, Platform: "fake",
		Inputs:  []*pb.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{3}}},
		Outputs: []*pb.ModelMetadataResponse_TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{3}}}}, nil
}

func (f *fakeGRPC) ModelConfig(ctx context.Context, r *pb.ModelConfigRequest) (*pb.ModelConfigResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	return &pb.ModelConfigResponse{Config: &pb.ModelConfig{Name: r.GetName(),
		Parameters: map[string]*pb.ModelParameter{"medsa_sha256": {StringValue: "abc"}}}}, nil
}

func (f *fakeGRPC) ModelInfer(ctx context.Context, r *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	if err := f.auth(ctx); err != nil {
		return nil, err
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(r.GetRawInputContents()) != 1 || len(r.GetOutputs()) != 1 {
		return nil, status.Error(codes.InvalidArgument, "want one raw input and one output")
	}
	x := BytesToFloat32(r.GetRawInputContents()[0])
	for i := range x {
		x[i] *= 2
	}
	return &pb.ModelInferResponse{ModelName: "m",
		Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: r.GetOutputs()[0].GetName(), Datatype: "FP32", Shape: r.GetInputs()[0].GetShape()}},
		RawOutputContents: [][]byte{Float32ToBytes(x)}}, nil
}

func startFakeGRPC(t *testing.T, f *fakeGRPC) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(s, f)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return "grpc://" + l.Addr().String()
}

func TestGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := startFakeGRPC(t, &fakeGRPC{token: "right"})
	c, err := New(Config{URL: u, Token: "right"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.GRPC() {
		t.Fatal("grpc:// URL gave an HTTP client")
	}
	if err := c.ServerReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.ModelReady(ctx, "m", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.ModelReady(ctx, "other", ""); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("unknown model ready: %v", err)
	}
	md, err := c.ModelMetadata(ctx, "m")
	if err != nil || len(md.Inputs) != 1 || md.Inputs[0].Name != "x" || md.Outputs[0].Datatype != "FP32" {
		t.Fatalf("metadata %+v, %v", md, err)
	}
	if _, err := c.ModelMetadata(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown model metadata: %v", err)
	}
	p, err := c.ModelParameters(ctx, "m")
	if err != nil || p["medsa_sha256"] != "abc" {
		t.Fatalf("parameters %v, %v", p, err)
	}
	res, err := c.Infer(ctx, "m", "", []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{3}, Data: Float32ToBytes([]float32{1, 2, -3})}}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := res.Output("y")
	if err != nil {
		t.Fatal(err)
	}
	f, err := y.Float32s()
	if err != nil || len(f) != 3 || f[0] != 2 || f[1] != 4 || f[2] != -6 || res.WireBytes < 12 {
		t.Fatalf("output %v (%d wire bytes), %v", f, res.WireBytes, err)
	}

	// A wrong token: ErrUnauthorized, a clear message, the token not shown.
	bad, err := New(Config{URL: u, Token: "wrong-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.ServerReady(ctx)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "check the token") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong token: %v", err)
	}

	// A slow answer: the context's deadline.
	slow, err := New(Config{URL: startFakeGRPC(t, &fakeGRPC{delay: 2 * time.Second})})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if _, err := slow.Infer(sctx, "m", "", []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Data: Float32ToBytes([]float32{1})}}, []string{"y"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow server: %v", err)
	}

	// Unreachable: a transient error (5xx-like), not a refusal.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	down, err := New(Config{URL: "grpc://" + addr, DialTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	err = down.ServerReady(dctx)
	var oe *Error
	if !errors.As(err, &oe) || oe.Status < 500 || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("unreachable: %v", err)
	}
	t.Logf("unreachable: %v", err)
}
