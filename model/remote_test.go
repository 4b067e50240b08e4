package model

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"github.com/medsa/medsa/model/internal/f16"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medsa/medsa/io/volume"
	"github.com/medsa/medsa/model/oip"
)

// fakeOIP is an in-process Open Inference Protocol server for the unit tests
// (the real one, Triton, is TestTriton): it encodes with a local engine.
type fakeOIP struct {
	enc       *Engine
	params    map[string]string // the config's identity parameters
	noConfig  bool              // answer 404 on /config, state params in the metadata instead
	token     string
	fp16      bool
	failInfer atomic.Bool
	delay     atomic.Int64 // ns before answering an infer
	infers    atomic.Int64
}

func (f *fakeOIP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"bad token"}`)
		return
	}
	m := f.enc.man
	S := int64(m.InputSize)
	es := m.EmbeddingShape
	name := ServedModelName(m, "encoder")
	dt := "FP32"
	if f.fp16 {
		dt = "FP16"
	}
	switch r.URL.Path {
	case "/v2/health/ready", "/v2/models/" + name + "/ready":
		return
	case "/v2/models/" + name:
		md := map[string]any{"name": name, "versions": []string{"1"}, "platform": "fake",
			"inputs":  []map[string]any{{"name": "image", "datatype": "FP32", "shape": []int64{-1, 3, S, S}}},
			"outputs": []map[string]any{{"name": m.Tensors["encoder"].Outputs[0], "datatype": dt, "shape": []int64{-1, es[1], es[2], es[3]}}}}
		if f.noConfig {
			md["parameters"] = f.params
		}
		_ = json.NewEncoder(w).Encode(md)
	case "/v2/models/" + name + "/config":
		if f.noConfig {
			http.NotFound(w, r)
			return
		}
		p := map[string]any{}
		for k, v := range f.params {
			p[k] = map[string]string{"string_value": v}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": name, "parameters": p})
	case "/v2/models/" + name + "/infer":
		f.infers.Add(1)
		if d := time.Duration(f.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if f.failInfer.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"boom"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		hl, _ := strconv.Atoi(r.Header.Get("Inference-Header-Content-Length"))
		var req struct {
			Inputs []struct {
				Shape []int64 `json:"shape"`
			} `json:"inputs"`
		}
		if err := json.Unmarshal(body[:hl], &req); err != nil || len(req.Inputs) != 1 {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		in := oip.BytesToFloat32(body[hl:])
		out, err := f.enc.runLocalEncoder(r.Context(), in, int(req.Inputs[0].Shape[0]), false)
		if err != nil {
			http.Error(w, `{"error":"encode"}`, http.StatusInternalServerError)
			return
		}
		data := oip.Float32ToBytes(out)
		if f.fp16 {
			data = make([]byte, 2*len(out))
			for i, x := range out {
				binary.LittleEndian.PutUint16(data[2*i:], f16.FromFloat32(x))
			}
		}
		hdr, _ := json.Marshal(map[string]any{"model_name": name, "outputs": []map[string]any{{
			"name": m.Tensors["encoder"].Outputs[0], "datatype": dt, "shape": []int64{1, es[1], es[2], es[3]},
			"parameters": map[string]any{"binary_data_size": len(data)}}}})
		w.Header().Set("Inference-Header-Content-Length", strconv.Itoa(len(hdr)))
		_, _ = w.Write(hdr)
		_, _ = w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

func identityParams(m *Manifest) map[string]string {
	return map[string]string{ParamModel: m.Name, ParamVersion: m.Version, ParamSHA256: m.Files["encoder"].SHA256, ParamKind: "encoder"}
}

func TestRemoteEncoderFake(t *testing.T) {
	serverEng := openTiny(t, Options{Server: "off"})
	local := openTiny(t, Options{Server: "off"})
	m := local.Manifest()
	vol := blobVolume(64, 64, 3, [3]float64{1, 1, 1}, [3]float64{32, 32, 1}, [3]float64{14, 12, 2})
	ref := SliceRef{Vol: vol, VolumeID: "fake", Plane: volume.Axial, Index: 1}
	if err := local.Encode(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	want, _, _ := local.cache.get(local.key(mustResolve(t, local, ref), false))

	cases := []struct {
		name      string
		fake      func(f *fakeOIP)
		opt       func(o *Options)
		state     string
		text      []string // in the status text
		remote    bool     // the server encoded the slice
		fp16      bool
		failAfter bool // the server's infer fails: local fallback, state down
	}{
		{name: "up", state: ServerUp, remote: true, text: []string{"encoding on the server", "FP32 on the wire"}},
		{name: "fp16", fake: func(f *fakeOIP) { f.fp16 = true }, state: ServerUp, remote: true, fp16: true,
			text: []string{"FP16 on the wire"}},
		{name: "params-in-metadata", fake: func(f *fakeOIP) { f.noConfig = true }, state: ServerUp, remote: true},
		{name: "wrong-sha", fake: func(f *fakeOIP) { f.params[ParamSHA256] = "00ff" }, state: ServerRefused,
			text: []string{"refused, encoding locally", "medsa_sha256: server 00ff, bundled " + m.Files["encoder"].SHA256}},
		{name: "no-identity", fake: func(f *fakeOIP) { f.params = map[string]string{} }, state: ServerRefused,
			text: []string{"medsa_sha256: server (not stated)"}},
		{name: "wrong-token", fake: func(f *fakeOIP) { f.token = "right" }, opt: func(o *Options) { o.ServerToken = "wrong" },
			state: ServerRefused, text: []string{"HTTP 401", "check the token"}},
		{name: "token", fake: func(f *fakeOIP) { f.token = "right" }, opt: func(o *Options) { o.ServerToken = "right" },
			state: ServerUp, remote: true},
		{name: "slow", fake: func(f *fakeOIP) { f.delay.Store(int64(time.Second)) },
			opt: func(o *Options) { o.ServerTimeout = 300 * time.Millisecond }, state: ServerUp, failAfter: true,
			text: []string{"unreachable, encoding locally: no answer within 300ms"}},
		{name: "infer-error", fake: func(f *fakeOIP) { f.failInfer.Store(true) }, state: ServerUp, failAfter: true,
			text: []string{"unreachable, encoding locally", "HTTP 500: boom"}},
		{name: "unreachable", opt: func(o *Options) { o.Server = "http://127.0.0.1:1" }, state: ServerDown,
			text: []string{"server http://127.0.0.1:1 unreachable, encoding locally", "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOIP{enc: serverEng, params: identityParams(m)}
			if tc.fake != nil {
				tc.fake(f)
			}
			hs := httptest.NewServer(f)
			defer hs.Close()
			opt := Options{Server: hs.URL, ServerRetryMin: time.Minute}
			if tc.opt != nil {
				tc.opt(&opt)
			}
			e := openTiny(t, opt)
			st := e.WaitServer(context.Background())
			if st.State != tc.state {
				t.Fatalf("state %q, want %q: %s", st.State, tc.state, st.Text)
			}
			if err := e.Encode(context.Background(), ref); err != nil {
				t.Fatal(err)
			}
			st = e.ServerStatus()
			for _, s := range tc.text {
				if !strings.Contains(st.Text, s) {
					t.Errorf("status %q lacks %q", st.Text, s)
				}
			}
			if tc.remote != (st.RemoteEncodes == 1) {
				t.Errorf("remote encodes %d, want remote %v (%s)", st.RemoteEncodes, tc.remote, st.Text)
			}
			if tc.failAfter && (st.State != ServerDown || st.LocalFallbacks != 1) {
				t.Errorf("after a failed infer: %+v", st)
			}
			got, _, _ := e.cache.get(e.key(mustResolve(t, e, ref), false))
			if tc.fp16 {
				if w, ok := fp16Close(got, want); !ok {
					t.Errorf("fp16 embedding off by %.2f half-ulps", w)
				}
			} else if d, at := maxAbsDiff(got, want); d != 0 {
				t.Errorf("embedding differs from local by %g at %d", d, at)
			}
			if strings.Contains(st.Text, "right") || strings.Contains(st.Text, "wrong") {
				t.Errorf("status shows the token: %q", st.Text)
			}
		})
	}
}

// TestRemoteCancel: a cancelled (pre-empted) remote encode is abandoned and
// does not mark the server down; a later encode goes to the server.
func TestRemoteCancel(t *testing.T) {
	serverEng := openTiny(t, Options{Server: "off"})
	f := &fakeOIP{enc: serverEng, params: identityParams(serverEng.Manifest())}
	f.delay.Store(int64(300 * time.Millisecond))
	hs := httptest.NewServer(f)
	defer hs.Close()
	e := openTiny(t, Options{Server: hs.URL})
	e.WaitServer(context.Background())
	vol := blobVolume(64, 64, 3, [3]float64{1, 1, 1}, [3]float64{32, 32, 1}, [3]float64{14, 12, 2})
	ref := SliceRef{Vol: vol, VolumeID: "c", Plane: volume.Axial, Index: 0}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Encode(ctx, ref); err == nil {
		t.Fatal("cancelled encode succeeded")
	}
	if st := e.ServerStatus(); st.State != ServerUp || st.LocalFallbacks != 0 {
		t.Fatalf("a cancelled request changed the server state: %+v", st)
	}
	if e.Ready(ref) {
		t.Fatal("the abandoned answer was cached")
	}
	f.delay.Store(0)
	if err := e.Encode(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if st := e.ServerStatus(); st.RemoteEncodes != 1 {
		t.Fatalf("%+v", st)
	}
}

// BenchmarkRemoteEncode: one slice through the engine's encode locally and
// through an in-process OIP server on loopback (the wire and client cost on
// top of the same encoder), in the same run.
func BenchmarkRemoteEncode(b *testing.B) {
	dir := benchDir(b)
	srv, err := Open(dir, Options{Device: "cpu", Threads: 2, Server: "off"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	m := srv.Manifest()
	f := &fakeOIP{enc: srv, params: identityParams(m)}
	S := m.InputSize
	in := make([]float32, 3*S*S)
	for i := range in {
		in[i] = float32(i%97) / 97
	}
	for _, wire := range []string{"local", "fp32", "fp16"} {
		b.Run(wire, func(b *testing.B) {
			opt := Options{Device: "cpu", Threads: 2, Server: "off"}
			if wire != "local" {
				f.fp16 = wire == "fp16"
				hs := httptest.NewServer(f)
				defer hs.Close()
				opt.Server = hs.URL
			}
			e, err := Open(dir, opt)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			if st := e.WaitServer(context.Background()); wire != "local" && st.State != ServerUp {
				b.Fatal(st.Text)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.runEncoder(context.Background(), in, 1, false); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if st := e.ServerStatus(); wire != "local" {
				if st.LocalFallbacks != 0 {
					b.Fatal(st.Text)
				}
				b.ReportMetric(float64(st.LastWireBytes), "wire-B/op")
			}
		})
	}
}
