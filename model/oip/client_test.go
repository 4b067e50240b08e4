package oip

import (
	"context"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"github.com/medsa/medsa/model/internal/f16"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestNewURL(t *testing.T) {
	for _, tc := range []struct {
		url, err string
	}{
		{"http://127.0.0.1:8000", ""},
		{"https://gpu.example.org/triton/", ""},
		{"grpc://127.0.0.1:8001", ""},
		{"grpcs://gpu.example.org:8001", ""},
		{"grpc://127.0.0.1", "grpc://host:port"},
		{"grpc://user:secret@127.0.0.1:8001", "credentials in the URL"},
		{"127.0.0.1:8000", "want http:// or https://"},
		{"http://", "no host"},
		{"http://user:secret@host:8000", "credentials in the URL"},
	} {
		_, err := New(Config{URL: tc.url})
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.url, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the password: %v", tc.url, err)
		}
	}
	if _, err := New(Config{URL: "https://h", CAFile: "/nonexistent.pem"}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

func TestDecodeInferResponse(t *testing.T) {
	f32 := Float32ToBytes([]float32{1, -2.5, 3})
	half := make([]byte, 6)
	for i, x := range []float32{1, -2.5, 3} {
		binary.LittleEndian.PutUint16(half[2*i:], f16.FromFloat32(x))
	}
	bin := func(hdr string, data []byte) ([]byte, string) {
		return append([]byte(hdr), data...), strconv.Itoa(len(hdr))
	}
	for _, tc := range []struct {
		name string
		body func() ([]byte, string)
		want []float32
		err  string
	}{
		{"fp32 binary", func() ([]byte, string) {
			return bin(`{"outputs":[{"name":"y","datatype":"FP32","shape":[1,3],"parameters":{"binary_data_size":12}}]}`, f32)
		}, []float32{1, -2.5, 3}, ""},
		{"fp16 binary", func() ([]byte, string) {
			return bin(`{"outputs":[{"name":"y","datatype":"FP16","shape":[3],"parameters":{"binary_data_size":6}}]}`, half)
		}, []float32{1, -2.5, 3}, ""},
		{"json data", func() ([]byte, string) {
			return []byte(`{"outputs":[{"name":"y","datatype":"FP32","shape":[1,3],"data":[1,-2.5,3]}]}`), ""
		}, []float32{1, -2.5, 3}, ""},
		{"size past the end", func() ([]byte, string) {
			return bin(`{"outputs":[{"name":"y","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":99}}]}`, f32)
		}, nil, "past the end"},
		{"bad header length", func() ([]byte, string) { return []byte(`{}`), "77" }, nil, "Inference-Header-Content-Length"},
		{"wrong byte count", func() ([]byte, string) {
			return bin(`{"outputs":[{"name":"y","datatype":"FP32","shape":[4],"parameters":{"binary_data_size":12}}]}`, f32)
		}, nil, "12 bytes for 4 FP32 values"},
		{"error", func() ([]byte, string) { return []byte(`{"error":"model not ready"}`), "" }, nil, "model not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, hl := tc.body()
			res, err := DecodeInferResponse(raw, hl)
			var got []float32
			if err == nil {
				var o *Tensor
				if o, err = res.Output("y"); err == nil {
					got, err = o.Float32s()
				}
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("%v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestHalf(t *testing.T) {
	for _, x := range []float32{0, 1, -1, 0.5, 65504, 1e-7, -3.14159, 6.1e-5, float32(math.Inf(1))} {
		h := f16.FromFloat32(x)
		y := f16.ToFloat32(h)
		if d := math.Abs(float64(x - y)); d > math.Abs(float64(x))*math.Pow(2, -11)+math.Pow(2, -25) && !math.IsInf(float64(x), 0) {
			t.Errorf("%g -> %#04x -> %g", x, h, y)
		}
	}
	if f16.ToFloat32(0x3c00) != 1 || f16.ToFloat32(0xc000) != -2 {
		t.Error("binary16 constants")
	}
}

// TestClientAgainstServer: the request carries the token and the binary
// header length; errors name the server, map 401/404 and never show the token.
func TestClientAgainstServer(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/v2/health/ready":
		case "/v2/models/m/infer":
			hl, _ := strconv.Atoi(r.Header.Get("Inference-Header-Content-Length"))
			if hl == 0 || r.Header.Get("Content-Type") != "application/octet-stream" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			hdr := `{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}`
			w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(hdr)))
			_, _ = w.Write([]byte(hdr))
			_, _ = w.Write(Float32ToBytes([]float32{7, 8}))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such model"}`))
		}
	}))
	defer hs.Close()
	ctx := context.Background()
	c, _ := New(Config{URL: hs.URL, Token: "tok"})
	if err := c.ServerReady(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := c.Infer(ctx, "m", "", []Tensor{{Name: "x", Datatype: "FP32", Shape: []int64{1}, Data: Float32ToBytes([]float32{1})}}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	if y, _ := res.Outputs[0].Float32s(); len(y) != 2 || y[1] != 8 {
		t.Fatalf("%v", y)
	}
	_, err = c.ModelMetadata(ctx, "other")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no such model") || !strings.Contains(err.Error(), hs.URL) {
		t.Fatalf("404: %v", err)
	}
	bad, _ := New(Config{URL: hs.URL, Token: "wrong-secret"})
	err = bad.ServerReady(ctx)
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("401: %v", err)
	}
}

// TestTLS: an https server whose certificate only the CA file vouches for.
func TestTLS(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hs.Close()
	ctx := context.Background()
	plain, _ := New(Config{URL: hs.URL})
	if err := plain.ServerReady(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown CA accepted: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	if err := os.WriteFile(ca, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URL: hs.URL, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ServerReady(ctx); err != nil {
		t.Fatal(err)
	}
}
