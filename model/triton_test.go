package model

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/volume"
)

// The tests here run a real NVIDIA Triton Inference Server (the tritonserver
// binary of PyPI's nvidia-pytriton wheel, `make triton-venv`) through
// scripts/serve.sh, the recipe `make serve` uses, on a repository written by
// WriteServeConfig. They run when MEDSA_TRITON=1 (scripts/test.d/triton.sh
// sets it; the venv must then exist) and skip otherwise, so `go test ./...`
// and its -race run don't start servers.

const tritonToken = "medsa-test-token"

type tritonServer struct {
	t    testing.TB
	root string
	repo string
	port int
	grpc int // gRPC port (grpc://127.0.0.1:grpc)
	tok  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

func (s *tritonServer) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

func (s *tritonServer) grpcURL() string { return fmt.Sprintf("grpc://127.0.0.1:%d", s.grpc) }

func needTriton(t testing.TB) string {
	if os.Getenv("MEDSA_TRITON") == "" {
		t.Skip("MEDSA_TRITON unset (scripts/test.d/triton.sh runs this with a real Triton)")
	}
	root := td.Root(t)
	if _, err := os.Stat(filepath.Join(root, ".cache", "triton-venv", "bin", "python")); err != nil {
		t.Fatalf("no Triton venv in %s/.cache/triton-venv (make triton-venv)", root)
	}
	td.Need(t, filepath.Join(root, "assets", "model", "manifest.json"), "bundled model")
	return root
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tritonRepo writes the serve-config repository (FP32 on the wire), plus two
// edited copies of the 2D encoder: one sending FP16, one stating another model
// version (must be refused).
func tritonRepo(t testing.TB, man *Manifest) string {
	dir := t.TempDir()
	if _, err := WriteServeConfig(man, dir, ServeConfigOptions{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, ServedModelName(man, "encoder"))
	clone := func(name string, edit func(string) string) {
		dst := filepath.Join(dir, name)
		for _, f := range []string{"1/model.onnx", "1/model.py", "configs/python-cpu.pbtxt"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f, ".pbtxt") {
				b = []byte(edit(strings.Replace(string(b), fmt.Sprintf("name: %q", ServedModelName(man, "encoder")),
					fmt.Sprintf("name: %q", name), 1)))
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	clone("fp16-encoder", func(s string) string {
		i := strings.Index(s, "output [")
		return s[:i] + strings.Replace(s[i:], "TYPE_FP32", "TYPE_FP16", 1)
	})
	clone("wrongversion-encoder", func(s string) string {
		return strings.Replace(s, fmt.Sprintf("string_value: %q", man.Version), `string_value: "1.9.0"`, 1)
	})
	return dir
}

func startTriton(t testing.TB, root, repo string, port int) *tritonServer {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(tritonToken), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tritonServer{t: t, root: root, repo: repo, port: port, grpc: freePort(t), tok: tok}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *tritonServer) start() {
	t := s.t
	t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(filepath.Join(s.root, "scripts", "serve.sh"), "--repo", s.repo, "--port", fmt.Sprint(s.port),
		"--grpc-port", fmt.Sprint(s.grpc), "--token-file", s.tok)
	s.cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t0 := time.Now()
	for {
		req, _ := http.NewRequest(http.MethodGet, s.url()+"/v2/health/ready", nil)
		req.Header.Set("Authorization", "Bearer "+tritonToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Logf("Triton ready on %s in %.1f s", s.url(), time.Since(t0).Seconds())
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("Triton exited before ready:\n%s", s.log)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(t0) > 60*time.Second {
			s.kill()
			t.Fatalf("Triton not ready within 60 s:\n%s", s.log)
		}
	}
}

// kill ends the server at once (SIGKILL to its process group: serve.sh, tritonserver, the Python stubs).
func (s *tritonServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

func (s *tritonServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

func openBundled(t testing.TB, root string, opt Options) *Engine {
	t.Helper()
	if opt.Threads == 0 {
		opt.Threads = 2
	}
	opt.Device = "cpu"
	e, err := Open(filepath.Join(root, "assets", "model"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func waitState(t testing.TB, e *Engine, state string, within time.Duration) ServerStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	st := e.WaitServer(ctx)
	for st.State != state {
		if ctx.Err() != nil {
			t.Fatalf("server state %q after %s, want %q: %s", st.State, within, state, st.Text)
		}
		time.Sleep(50 * time.Millisecond)
		st = e.ServerStatus()
	}
	return st
}

// fp16Close reports whether a is b rounded to binary16 (half an ulp, with the subnormal floor).
func fp16Close(a, b []float32) (float64, bool) {
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		tol := math.Max(math.Abs(float64(b[i]))*math.Pow(2, -11), math.Pow(2, -25))
		worst = math.Max(worst, d/tol)
	}
	return worst, worst <= 1.0001
}

// TestTriton: the same masks through Triton as locally on the goldens, and
// the faults (wrong version, wrong token, slow server, server killed and back).
func TestTriton(t *testing.T) {
	root := needTriton(t)
	man, err := LoadManifest(filepath.Join(root, "assets", "model"))
	if err != nil {
		t.Fatal(err)
	}
	repo := tritonRepo(t, man)
	srv := startTriton(t, root, repo, freePort(t))
	local := openBundled(t, root, Options{Server: "off"})

	// parityOver checks the fp32 and fp16 encoders served at url against the local engine.
	parityOver := func(t *testing.T, url string) {
		for _, tc := range []struct {
			model string
			fp16  bool
		}{{ServedModelName(man, "encoder"), false}, {"fp16-encoder", true}} {
			t.Run(tc.model, func(t *testing.T) {
				remote := openBundled(t, root, Options{Server: url, ServerToken: tritonToken, ServerModel: tc.model})
				st := waitState(t, remote, ServerUp, 30*time.Second)
				t.Logf("%s", st.Text)
				tritonParity(t, root, local, remote, tc.fp16)
				if !tc.fp16 && man.Has3D() {
					tritonParity3D(t, local, remote)
				}
				if st := remote.ServerStatus(); st.LocalFallbacks != 0 || st.RemoteEncodes == 0 {
					t.Fatalf("remote %d, local fallbacks %d: %s", st.RemoteEncodes, st.LocalFallbacks, st.Text)
				}
			})
		}
	}
	t.Run("parity", func(t *testing.T) { parityOver(t, srv.url()) })

	// The same over gRPC (grpc://, raw_input_contents / raw_output_contents),
	// and a wrong token refused there too.
	t.Run("grpc", func(t *testing.T) {
		parityOver(t, srv.grpcURL())
		t.Run("wrong-token", func(t *testing.T) {
			e := openBundled(t, root, Options{Server: srv.grpcURL(), ServerToken: "not-the-token"})
			st := waitState(t, e, ServerRefused, 30*time.Second)
			t.Logf("%s", st.Text)
			for _, s := range []string{"gRPC ", "check the token", "encoding locally"} {
				if !strings.Contains(st.Text, s) {
					t.Fatalf("status %q lacks %q", st.Text, s)
				}
			}
			if strings.Contains(st.Text, "not-the-token") {
				t.Fatalf("status shows the token: %q", st.Text)
			}
		})
	})

	vol := blobVolume(160, 160, 6, [3]float64{0.8, 0.8, 2}, [3]float64{80, 80, 2.5}, [3]float64{40, 30, 3})
	click := Prompt{Points: []Point{{U: 80, V: 80, Positive: true}}}
	ref := func(i int) SliceRef { return SliceRef{Vol: vol, VolumeID: "blob", Plane: volume.Axial, Index: i} }
	want := map[int]*Result{}
	for i := 0; i < vol.Size[2]; i++ {
		r, err := local.Segment(context.Background(), ref(i), click)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	sameAsLocal := func(t *testing.T, i int, r *Result, fp16 bool) {
		t.Helper()
		d := dice(r.Masks[r.Best], want[i].Masks[want[i].Best])
		if (!fp16 && d != 1) || d < 0.99 {
			t.Fatalf("slice %d: Dice %.5f with the local result", i, d)
		}
	}

	t.Run("wrong-version", func(t *testing.T) {
		e := openBundled(t, root, Options{Server: srv.url(), ServerToken: tritonToken, ServerModel: "wrongversion-encoder"})
		st := waitState(t, e, ServerRefused, 30*time.Second)
		t.Logf("%s", st.Text)
		for _, s := range []string{"medsa_version: server 1.9.0, bundled " + man.Version, "encoding locally"} {
			if !strings.Contains(st.Text, s) {
				t.Fatalf("status %q lacks %q", st.Text, s)
			}
		}
		r, err := e.Segment(context.Background(), ref(1), click)
		if err != nil {
			t.Fatal(err)
		}
		sameAsLocal(t, 1, r, false)
		if st := e.ServerStatus(); st.RemoteEncodes != 0 {
			t.Fatalf("a refused server encoded: %+v", st)
		}
	})

	t.Run("wrong-token", func(t *testing.T) {
		e := openBundled(t, root, Options{Server: srv.url(), ServerToken: "not-the-token"})
		st := waitState(t, e, ServerRefused, 30*time.Second)
		t.Logf("%s", st.Text)
		for _, s := range []string{"HTTP 403", "check the token", "encoding locally"} {
			if !strings.Contains(st.Text, s) {
				t.Fatalf("status %q lacks %q", st.Text, s)
			}
		}
		if strings.Contains(st.Text, "not-the-token") {
			t.Fatalf("status shows the token: %q", st.Text)
		}
	})

	t.Run("slow", func(t *testing.T) {
		// A proxy that holds every inference answer for 3 s; the client gives up after 700 ms.
		target, _ := url.Parse(srv.url())
		rp := httputil.NewSingleHostReverseProxy(target)
		ps := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/infer") {
				select {
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
					return
				}
			}
			rp.ServeHTTP(w, r)
		})}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go ps.Serve(l)
		defer ps.Close()
		e := openBundled(t, root, Options{Server: "http://" + l.Addr().String(), ServerToken: tritonToken,
			ServerTimeout: 700 * time.Millisecond, ServerRetryMin: time.Minute})
		waitState(t, e, ServerUp, 30*time.Second)
		t0 := time.Now()
		r, err := e.Segment(context.Background(), ref(2), click)
		if err != nil {
			t.Fatal(err)
		}
		sameAsLocal(t, 2, r, false)
		st := e.ServerStatus()
		t.Logf("%s (segment took %.0f ms)", st.Text, ms(time.Since(t0)))
		if st.State != ServerDown || !strings.Contains(st.Text, "unreachable, encoding locally: no answer within 700ms") {
			t.Fatalf("status %q", st.Text)
		}
		if time.Since(t0) > 2500*time.Millisecond {
			t.Fatalf("segment waited %s for a slow server", time.Since(t0))
		}
	})

	// Over HTTP and over gRPC (the gRPC connection re-dials by itself).
	t.Run("killed-and-back", func(t *testing.T) {
		for _, u := range []struct{ name, url string }{{"http", srv.url()}, {"grpc", srv.grpcURL()}} {
			t.Run(u.name, func(t *testing.T) {
				e := openBundled(t, root, Options{Server: u.url, ServerToken: tritonToken, ServerTimeout: 3 * time.Second,
					ServerRetryMin: 200 * time.Millisecond})
				waitState(t, e, ServerUp, 30*time.Second)
				ctx := context.Background()
				r0, err := e.Segment(ctx, ref(0), click)
				if err != nil {
					t.Fatal(err)
				}
				sameAsLocal(t, 0, r0, false)
				// Prefetch while the server dies: the background encodes fall back too.
				e.Prefetch([]SliceRef{ref(3), ref(4)})
				srv.kill()
				r1, err := e.Segment(ctx, ref(1), click)
				if err != nil {
					t.Fatalf("segment with the server killed: %v", err)
				}
				sameAsLocal(t, 1, r1, false)
				st := e.ServerStatus()
				t.Logf("after the kill: %s", st.Text)
				if st.State != ServerDown || !strings.Contains(st.Text, "unreachable, encoding locally") {
					t.Fatalf("status %q", st.Text)
				}
				// Nothing lost: the slice encoded remotely is still cached; the prefetched ones arrive.
				if !e.Ready(ref(0)) {
					t.Fatal("the remotely encoded slice left the cache")
				}
				for _, i := range []int{3, 4} {
					if err := e.Encode(ctx, ref(i)); err != nil {
						t.Fatal(err)
					}
				}
				srv.start()
				st = waitState(t, e, ServerUp, 30*time.Second)
				t.Logf("back: %s", st.Text)
				before := st.RemoteEncodes
				r5, err := e.Segment(ctx, ref(5), click)
				if err != nil {
					t.Fatal(err)
				}
				sameAsLocal(t, 5, r5, false)
				if st := e.ServerStatus(); st.RemoteEncodes != before+1 {
					t.Fatalf("after reconnecting the slice was not encoded on the server: %+v", st)
				}
			})
		}
	})
}

// tritonParity compares the remote engine with the local one on the goldens:
// embeddings equal (FP32) or within FP16 rounding, every mask candidate Dice 1.
func tritonParity(t *testing.T, root string, local, remote *Engine, fp16 bool) {
	cases, _ := filepath.Glob(filepath.Join(root, "testdata", "golden", "*", "case.json"))
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, cp := range cases {
		dir := filepath.Dir(cp)
		b, err := os.ReadFile(cp)
		if err != nil {
			t.Fatal(err)
		}
		var c goldenCase
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		raw, err := readF32(filepath.Join(dir, c.Slice.File), c.Slice.Shape)
		if err != nil {
			t.Fatal(err)
		}
		vol := &volume.Volume{Size: [3]int{c.Width, c.Height, 1}, Channels: max(c.Channels, 1), Data: raw,
			Affine: volume.Identity(), Modality: "OT"}
		vol.Affine[0][0], vol.Affine[1][1] = c.Spacing[0], c.Spacing[1]
		ref := SliceRef{Vol: vol, VolumeID: dir, Plane: volume.Axial, Window: c.Window}
		p := Prompt{}
		for _, pt := range c.Points {
			p.Points = append(p.Points, Point{U: pt.U, V: pt.V, Positive: pt.Positive})
		}
		if len(c.Box) == 4 {
			p.Box = &Box{U0: c.Box[0], V0: c.Box[1], U1: c.Box[2], V1: c.Box[3]}
		}
		if c.MaskInput != nil {
			if p.MaskIn, err = readF32(filepath.Join(dir, c.MaskInput.File), c.MaskInput.Shape); err != nil {
				t.Fatal(err)
			}
		}
		var res [2]*Result
		for i, e := range []*Engine{local, remote} {
			if err := e.Encode(context.Background(), ref); err != nil {
				t.Fatal(err)
			}
			if res[i], err = e.Segment(context.Background(), ref, p); err != nil {
				t.Fatal(err)
			}
		}
		name := filepath.Base(dir)
		// The full-view embedding of both engines.
		le, _, _ := local.cache.get(local.key(mustResolve(t, local, ref), false))
		re, _, _ := remote.cache.get(remote.key(mustResolve(t, remote, ref), false))
		if fp16 {
			w, ok := fp16Close(re, le)
			t.Logf("%s: embeddings within %.3f of half an fp16 ulp", name, w)
			if !ok {
				t.Errorf("%s: embeddings differ by more than fp16 rounding (%.3f half-ulps)", name, w)
			}
		} else {
			d, at := maxAbsDiff(re, le)
			t.Logf("%s: embeddings max |diff| %.2g", name, d)
			if d > 1e-5 {
				t.Errorf("%s: embeddings max |diff| %g at %d", name, d, at)
			}
		}
		for k := range res[0].Masks {
			d := dice(res[0].Masks[k], res[1].Masks[k])
			t.Logf("%s: mask %d Dice %.5f", name, k, d)
			if d != 1 && (!fp16 || d < 0.999) {
				t.Errorf("%s: mask %d: remote vs local Dice %.5f", name, k, d)
			}
		}
		if res[0].Best != res[1].Best && !fp16 {
			t.Errorf("%s: best candidate %d remote, %d local", name, res[1].Best, res[0].Best)
		}
	}
}

func mustResolve(t *testing.T, e *Engine, r SliceRef) SliceRef {
	rr, err := e.resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// TestTritonLoadClient is one simulated annotator of
// scripts/bench.d/triton-load.sh (runs when MEDSA_LOAD_URL is set): for
// MEDSA_LOAD_SECONDS it scrolls through a synthetic CT-sized series (256 x 256
// x 48) at ~10 slices/s, prefetching ahead on the server, and clicks on each
// slice; it prints one JSON line with click->mask p50/p95, encodes on the
// server and fallbacks, then re-decodes a few visited slices with a local-only
// engine: a mask that differs (stale or wrong embedding) fails the client.
func TestTritonLoadClient(t *testing.T) {
	u := os.Getenv("MEDSA_LOAD_URL")
	if u == "" {
		t.Skip("MEDSA_LOAD_URL unset (scripts/bench.d/triton-load.sh)")
	}
	secs, _ := strconv.ParseFloat(os.Getenv("MEDSA_LOAD_SECONDS"), 64)
	if secs <= 0 {
		secs = 10
	}
	id, _ := strconv.Atoi(os.Getenv("MEDSA_LOAD_CLIENT"))
	root := td.Root(t)
	e := openBundled(t, root, Options{Server: u, Threads: 1, ServerTimeout: time.Minute})
	waitState(t, e, ServerUp, time.Minute)
	n := 48
	vol := blobVolume(256, 256, n, [3]float64{0.8, 0.8, 2.5}, [3]float64{128 + float64(id), 120, 24}, [3]float64{70, 55, 20})
	click := Prompt{Points: []Point{{U: 128, V: 120, Positive: true}}}
	ctx := context.Background()
	idx, dir := (id*7)%n, 1
	var lat []float64
	got := map[int][]uint8{}
	end := time.Now().Add(time.Duration(secs * float64(time.Second)))
	for time.Now().Before(end) {
		ref := SliceRef{Vol: vol, VolumeID: "load", Plane: volume.Axial, Index: idx}
		e.PrefetchNeighbours(ref, dir, 3)
		t0 := time.Now()
		r, err := e.Segment(ctx, ref, click)
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, ms(time.Since(t0)))
		got[idx] = r.Masks[r.Best]
		if idx+dir < 0 || idx+dir >= n {
			dir = -dir
		}
		idx += dir
		time.Sleep(100 * time.Millisecond)
	}
	st := e.ServerStatus()
	e.Close()
	loc := openBundled(t, root, Options{Server: "off", Threads: 1})
	stale, checked := 0, 0
	for k, m := range got {
		if checked == 3 {
			break
		}
		checked++
		r, err := loc.Segment(ctx, SliceRef{Vol: vol, VolumeID: "load", Plane: volume.Axial, Index: k}, click)
		if err != nil {
			t.Fatal(err)
		}
		if dice(r.Masks[r.Best], m) != 1 {
			stale++
		}
	}
	sorted := append([]float64(nil), lat...)
	slices.Sort(sorted)
	pct := func(p float64) float64 { return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)] }
	b, _ := json.Marshal(map[string]any{"client": id, "clicks": len(lat), "click_ms_p50": pct(0.5), "click_ms_p95": pct(0.95),
		"remote_encodes": st.RemoteEncodes, "fallbacks": st.LocalFallbacks, "seconds": secs, "stale": stale, "checked": checked})
	fmt.Printf("LOAD %s\n", b)
	if stale > 0 || st.LocalFallbacks > 0 {
		t.Fatalf("%d of %d checked masks differ from the local ones; %d local fallbacks (%s)", stale, checked, st.LocalFallbacks, st.Text)
	}
}

// tritonParity3D: one depth chunk through encoder3d on the server equals the local encoder3d's.
func tritonParity3D(t *testing.T, local, remote *Engine) {
	st := remote.ServerStatus()
	if !st.Remote3D {
		t.Fatalf("encoder3d not served: %s", st.Text)
	}
	m := local.Manifest()
	S, D := m.InputSize, m.DepthChunk
	in := make([]float32, D*3*S*S)
	for i := range in {
		in[i] = float32((i*7919)%251)/125 - 1
	}
	ctx := context.Background()
	a, err := local.runEncoder(ctx, in, D, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := remote.runEncoder(ctx, in, D, false)
	if err != nil {
		t.Fatal(err)
	}
	d, at := maxAbsDiff(b, a)
	t.Logf("encoder3d chunk of %d: max |diff| %.2g", D, d)
	if d > 1e-5 {
		t.Errorf("encoder3d: remote vs local max |diff| %g at %d", d, at)
	}
	if st2 := remote.ServerStatus(); st2.RemoteEncodes != st.RemoteEncodes+1 {
		t.Errorf("the chunk was not encoded on the server: %s", st2.Text)
	}
}
