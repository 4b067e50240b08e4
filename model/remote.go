package model

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/medsa/medsa/model/oip"
)

// encoder turns preprocessed input (n slices of 3 x S x S) into embeddings:
// n = 1 runs the 2D encoder, n = the depth chunk encoder3d. The local ONNX
// Runtime sessions and the inference server both satisfy it; the engine's
// cache, prefetch, pre-emption and cancellation sit above it, unchanged: a
// cancelled ctx abandons the run and its answer is dropped.
type encoder interface {
	encode(ctx context.Context, in []float32, n int, background bool) ([]float32, error)
}

// ortEncoder is the engine's own ONNX Runtime sessions.
type ortEncoder struct{ e *Engine }

func (o ortEncoder) encode(ctx context.Context, in []float32, n int, background bool) ([]float32, error) {
	return o.e.runLocalEncoder(ctx, in, n, background)
}

// Identity parameters a served encoder states in its model configuration
// (Triton: parameters { key: "medsa_sha256" value { string_value: "..." } },
// written by WriteServeConfig); they must equal the bundled manifest's.
const (
	ParamModel   = "medsa_model"   // manifest name
	ParamVersion = "medsa_version" // manifest version
	ParamSHA256  = "medsa_sha256"  // sha256 of the encoder ONNX file the server runs
	ParamKind    = "medsa_kind"    // "encoder" or "encoder3d"
)

// Server states of ServerStatus.State.
const (
	ServerConnecting = "connecting"
	ServerUp         = "up"      // the server encodes
	ServerDown       = "down"    // unreachable, slow or lost: encoding locally, reconnecting
	ServerRefused    = "refused" // wrong model or credentials: encoding locally, retrying slowly
	ServerPaused     = "paused"  // SetServerEnabled(false): encoding locally
	serverDefaultTmo = 10 * time.Second
)

// ServerStatus says where encoding happens when a server is configured.
type ServerStatus struct {
	URL    string // the server's root URL; "" = no server configured (the rest is zero)
	Model  string // the 2D encoder's name on the server
	State  string // ServerConnecting, ServerUp, ServerDown, ServerRefused, ServerPaused
	Reason string // why it is not up
	// Text is the one-line badge: "server URL: encoding on the server (model M)",
	// "server URL unreachable, encoding locally: <reason>", ...
	Text string
	// Remote3D reports whether depth chunks are encoded on the server too (Note3D: why not).
	Remote3D bool
	Note3D   string
	Datatype string // embedding datatype on the wire ("FP16" or "FP32")

	RemoteEncodes  int64   // slices (2D) and chunks (3D) the server encoded
	LocalFallbacks int64   // encodes done locally while a server was configured
	WireBytes      int64   // bytes of all answers received
	LastWireBytes  int64   // bytes of the last answer (one embedding for 2D)
	LastRemoteMS   float64 // round trip of the last remote encode
}

// serverConfig is Options' server part with the environment applied.
type serverConfig struct {
	url, token, caFile, model string
	timeout, retryMin         time.Duration
}

func resolveServer(opt Options, man *Manifest) (serverConfig, bool) {
	c := serverConfig{url: opt.Server, token: opt.ServerToken, caFile: opt.ServerCAFile, model: opt.ServerModel,
		timeout: opt.ServerTimeout, retryMin: opt.ServerRetryMin}
	if c.url == "" {
		c.url = os.Getenv("MEDSA_SERVER")
	}
	if c.url == "" || c.url == "off" || c.url == "none" {
		return c, false
	}
	if c.token == "" {
		c.token = os.Getenv("MEDSA_SERVER_TOKEN")
	}
	if c.caFile == "" {
		c.caFile = os.Getenv("MEDSA_SERVER_CA")
	}
	if c.model == "" {
		c.model = ServedModelName(man, "encoder")
	}
	if c.timeout <= 0 {
		c.timeout = serverDefaultTmo
	}
	if c.retryMin <= 0 {
		c.retryMin = time.Second
	}
	return c, true
}

// ServedModelName is the name a model's encoder (kind "encoder" or
// "encoder3d") has on an inference server: "<manifest name>-<kind>".
func ServedModelName(m *Manifest, kind string) string { return m.Name + "-" + kind }

// remoteEncoder encodes on an Open Inference Protocol server and falls back
// to the local encoder when the server is unreachable, slow, lost or the
// wrong one; it reconnects in the background with exponential backoff.
type remoteEncoder struct {
	local    encoder
	c        *oip.Client
	man      *Manifest
	cfg      serverConfig
	model3d  string
	want3D   bool
	closeCtx context.Context
	retryMax time.Duration

	first chan struct{} // closed after the first connection attempt
	kick  chan struct{}

	mu        sync.Mutex
	st        ServerStatus
	paused    bool
	dtype3d   string
	fails     int // consecutive failures; the reconnect delay doubles with each
	listeners []func(ServerStatus)
}

func newRemoteEncoder(ctx context.Context, local encoder, man *Manifest, cfg serverConfig, want3D bool) (*remoteEncoder, error) {
	c, err := oip.New(oip.Config{URL: cfg.url, Token: cfg.token, CAFile: cfg.caFile})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	r := &remoteEncoder{local: local, c: c, man: man, cfg: cfg, want3D: want3D, closeCtx: ctx,
		model3d: cfg.model + "3d", retryMax: 30 * time.Second,
		first: make(chan struct{}), kick: make(chan struct{}, 1)}
	r.st = ServerStatus{URL: c.URL(), Model: cfg.model, State: ServerConnecting}
	r.st.Text = statusText(r.st)
	go r.loop()
	return r, nil
}

func statusText(s ServerStatus) string {
	switch s.State {
	case ServerConnecting:
		return fmt.Sprintf("server %s: connecting", s.URL)
	case ServerUp:
		t := fmt.Sprintf("server %s: encoding on the server (model %s, %s on the wire)", s.URL, s.Model, s.Datatype)
		if s.Note3D != "" {
			t += "; depth chunks locally: " + s.Note3D
		}
		return t
	case ServerDown:
		return fmt.Sprintf("server %s unreachable, encoding locally: %s", s.URL, s.Reason)
	case ServerRefused:
		return fmt.Sprintf("server %s refused, encoding locally: %s", s.URL, s.Reason)
	case ServerPaused:
		return fmt.Sprintf("server %s not used, encoding locally", s.URL)
	}
	return ""
}

// reason shortens an error for the badge: the server's URL is already named there.
func (r *remoteEncoder) reason(err error) string {
	s := err.Error()
	for _, p := range []string{"model: ", "server " + r.c.URL() + ": "} {
		s = strings.ReplaceAll(s, p, "")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s = fmt.Sprintf("no answer within %s (%s)", r.cfg.timeout, s)
	}
	return s
}

func (r *remoteEncoder) status() ServerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// setLocked changes the state and tells the listeners (outside the lock).
func (r *remoteEncoder) set(f func(s *ServerStatus)) {
	r.mu.Lock()
	old := r.st
	f(&r.st)
	if r.paused {
		r.st.State = ServerPaused
	}
	r.st.Text = statusText(r.st)
	changed := old.State != r.st.State || old.Reason != r.st.Reason || old.Note3D != r.st.Note3D
	st, ls := r.st, append([]func(ServerStatus){}, r.listeners...)
	r.mu.Unlock()
	if changed {
		logf("%s", st.Text)
		for _, l := range ls {
			l(st)
		}
	}
}

// connect checks the server, the model's readiness and identity (and the
// encoder3d's, when wanted); err is why the server can't be used.
func (r *remoteEncoder) connect() (refused bool, err error) {
	ctx, cancel := context.WithTimeout(r.closeCtx, r.cfg.timeout)
	defer cancel()
	if err := r.c.ServerReady(ctx); err != nil {
		return errors.Is(err, oip.ErrUnauthorized), err
	}
	S := int64(r.man.InputSize)
	es := r.man.EmbeddingShape
	dt, err := r.check(ctx, r.cfg.model, "encoder", []int64{1, 3, S, S}, []int64{1, es[1], es[2], es[3]})
	if err != nil {
		return !isTransient(err), err
	}
	note, dt3 := "", ""
	if r.want3D {
		D := int64(r.man.DepthChunk)
		dt3, err = r.check(ctx, r.model3d, "encoder3d", []int64{D, 3, S, S}, []int64{D, es[1], es[2], es[3]})
		if err != nil {
			note = r.reason(err)
		}
	}
	r.mu.Lock()
	r.dtype3d = dt3
	r.mu.Unlock()
	r.set(func(s *ServerStatus) {
		s.State, s.Reason, s.Datatype, s.Remote3D, s.Note3D = ServerUp, "", dt, r.want3D && note == "", note
	})
	return false, nil
}

// isTransient tells network trouble (retry soon) from a wrong server (refused).
func isTransient(err error) bool {
	var oe *oip.Error
	if errors.As(err, &oe) {
		return oe.Status >= 500 && oe.Status != 501
	}
	var ie *identityError
	return !errors.As(err, &ie)
}

type identityError struct{ msg string }

func (e *identityError) Error() string { return e.msg }

// check verifies that the served model is ready, is this manifest's encoder
// (name, version, sha256) and has the expected tensors; it returns the
// embedding's datatype on the wire.
func (r *remoteEncoder) check(ctx context.Context, name, kind string, inShape, outShape []int64) (string, error) {
	if err := r.c.ModelReady(ctx, name, ""); err != nil {
		return "", err
	}
	md, err := r.c.ModelMetadata(ctx, name)
	if err != nil {
		return "", err
	}
	params, err := r.c.ModelParameters(ctx, name)
	if err != nil {
		if !errors.Is(err, oip.ErrNotFound) {
			return "", err
		}
		// No model configuration extension: parameters in the metadata, if any.
		params = map[string]string{}
		for k, v := range md.Parameters {
			if s, ok := v.(string); ok {
				params[k] = s
			}
		}
	}
	want := map[string]string{ParamModel: r.man.Name, ParamVersion: r.man.Version, ParamSHA256: r.man.Files[kind].SHA256}
	var bad []string
	for _, k := range []string{ParamModel, ParamVersion, ParamSHA256} {
		got := params[k]
		if got == "" {
			got = "(not stated)"
		}
		if got != want[k] {
			bad = append(bad, fmt.Sprintf("%s: server %s, bundled %s", k, got, want[k]))
		}
	}
	if len(bad) > 0 {
		return "", &identityError{fmt.Sprintf("model %s is not the bundled %s %s (%s); serve the bundled model (medsa serve-config)",
			name, kind, r.man.ID(), strings.Join(bad, "; "))}
	}
	tn := r.man.Tensors[kind]
	in, out := tensorMeta(md.Inputs, tn.Inputs[0]), tensorMeta(md.Outputs, tn.Outputs[0])
	if in == nil || out == nil {
		return "", &identityError{fmt.Sprintf("model %s lacks input %q or output %q", name, tn.Inputs[0], tn.Outputs[0])}
	}
	if in.Datatype != "FP32" {
		return "", &identityError{fmt.Sprintf("model %s input %s is %s, want FP32", name, in.Name, in.Datatype)}
	}
	if out.Datatype != "FP32" && out.Datatype != "FP16" {
		return "", &identityError{fmt.Sprintf("model %s output %s is %s, want FP32 or FP16", name, out.Name, out.Datatype)}
	}
	if !shapeFits(in.Shape, inShape) || !shapeFits(out.Shape, outShape) {
		return "", &identityError{fmt.Sprintf("model %s shapes %v -> %v, want %v -> %v", name, in.Shape, out.Shape, inShape, outShape)}
	}
	return out.Datatype, nil
}

func tensorMeta(ts []oip.TensorMetadata, name string) *oip.TensorMetadata {
	for i := range ts {
		if ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// shapeFits compares a served shape (-1 = any) with the one sent.
func shapeFits(served, want []int64) bool {
	if len(served) != len(want) {
		return false
	}
	for i := range want {
		if served[i] != -1 && served[i] != want[i] {
			return false
		}
	}
	return true
}

func (r *remoteEncoder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop connects, then reconnects after each loss with a doubling delay.
func (r *remoteEncoder) loop() {
	defer r.c.Close()
	r.attempt()
	close(r.first)
	for {
		r.mu.Lock()
		up := r.st.State == ServerUp
		d := r.cfg.retryMin << min(r.fails, 10)
		r.mu.Unlock()
		if up {
			select {
			case <-r.kick:
				continue
			case <-r.closeCtx.Done():
				return
			}
		}
		select {
		case <-time.After(min(d, r.retryMax)):
		case <-r.kick:
			continue
		case <-r.closeCtx.Done():
			return
		}
		r.attempt()
	}
}

func (r *remoteEncoder) attempt() {
	refused, err := r.connect()
	if err == nil {
		return
	}
	if r.closeCtx.Err() != nil {
		return
	}
	r.mu.Lock()
	r.fails++
	r.mu.Unlock()
	st := ServerDown
	if refused {
		st = ServerRefused
	}
	r.set(func(s *ServerStatus) { s.State, s.Reason = st, r.reason(err) })
}

// lost marks the server down after a failed encode and starts reconnecting.
func (r *remoteEncoder) lost(err error) {
	r.mu.Lock()
	r.fails++
	r.mu.Unlock()
	st := ServerDown
	if errors.Is(err, oip.ErrUnauthorized) {
		st = ServerRefused
	}
	r.set(func(s *ServerStatus) { s.State, s.Reason = st, r.reason(err) })
	r.wake()
}

func (r *remoteEncoder) setPaused(p bool) {
	r.mu.Lock()
	r.paused = p
	r.mu.Unlock()
	if p {
		r.set(func(*ServerStatus) {})
		return
	}
	r.set(func(s *ServerStatus) { s.State = ServerConnecting })
	r.wake()
	go func() {
		// Re-check at once rather than after the backoff.
		r.attempt()
	}()
}

func (r *remoteEncoder) encode(ctx context.Context, in []float32, n int, background bool) ([]float32, error) {
	select {
	case <-r.first:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	up := r.st.State == ServerUp && !r.paused
	model, dtype := r.cfg.model, r.st.Datatype
	if n > 1 {
		model, dtype = r.model3d, r.dtype3d
		up = up && r.st.Remote3D
	}
	r.mu.Unlock()
	if up {
		t0 := time.Now()
		out, wire, err := r.infer(ctx, model, dtype, in, n)
		if err == nil {
			r.mu.Lock()
			r.fails = 0
			r.st.RemoteEncodes++
			r.st.WireBytes += wire
			r.st.LastWireBytes = wire
			r.st.LastRemoteMS = ms(time.Since(t0))
			r.mu.Unlock()
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err() // cancelled: the request is abandoned, its answer dropped
		}
		r.lost(err)
	}
	r.mu.Lock()
	r.st.LocalFallbacks++
	r.mu.Unlock()
	return r.local.encode(ctx, in, n, background)
}

// infer sends the pixels (the only thing that leaves the machine: no
// headers, names or identifiers) and decodes the embedding.
func (r *remoteEncoder) infer(ctx context.Context, model, dtype string, in []float32, n int) ([]float32, int64, error) {
	kind := "encoder"
	if n > 1 {
		kind = "encoder3d"
	}
	tn := r.man.Tensors[kind]
	S := int64(r.man.InputSize)
	es := r.man.EmbeddingShape
	tctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	res, err := r.c.Infer(tctx, model, "", []oip.Tensor{{Name: tn.Inputs[0], Datatype: "FP32",
		Shape: []int64{int64(n), 3, S, S}, Data: oip.Float32ToBytes(in)}}, []string{tn.Outputs[0]})
	if err != nil {
		return nil, 0, err
	}
	o, err := res.Output(tn.Outputs[0])
	if err != nil {
		return nil, 0, fmt.Errorf("model %s: %w", model, err)
	}
	want := int64(n) * es[1] * es[2] * es[3]
	if o.Elements() != want {
		return nil, 0, fmt.Errorf("model %s: output %s shape %v, want %d values", model, o.Name, o.Shape, want)
	}
	if dtype != "" && o.Datatype != dtype {
		return nil, 0, fmt.Errorf("model %s: output %s is %s, metadata said %s", model, o.Name, o.Datatype, dtype)
	}
	f, err := o.Float32s()
	if err != nil {
		return nil, 0, fmt.Errorf("model %s: %w", model, err)
	}
	return f, res.WireBytes, nil
}

// ServerStatus reports the inference server (URL "" when none is configured).
func (e *Engine) ServerStatus() ServerStatus {
	if e.remote == nil {
		return ServerStatus{}
	}
	return e.remote.status()
}

// OnServerStatus calls f (from an engine goroutine: a GUI must hop to its
// own thread, e.g. fyne.Do) whenever the server state changes. No-op without a server.
func (e *Engine) OnServerStatus(f func(ServerStatus)) {
	if e.remote == nil || f == nil {
		return
	}
	e.remote.mu.Lock()
	e.remote.listeners = append(e.remote.listeners, f)
	e.remote.mu.Unlock()
}

// SetServerEnabled pauses (false) or resumes (true) encoding on the
// configured server; paused, the local encoder runs. No-op without a server.
func (e *Engine) SetServerEnabled(on bool) {
	if e.remote != nil {
		e.remote.setPaused(!on)
	}
}

// WaitServer waits until the first connection attempt to the server has
// finished (or ctx ends) and returns the status. Without a server it returns at once.
func (e *Engine) WaitServer(ctx context.Context) ServerStatus {
	if e.remote == nil {
		return ServerStatus{}
	}
	select {
	case <-e.remote.first:
	case <-ctx.Done():
	}
	return e.remote.status()
}
