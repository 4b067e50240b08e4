// Package model is medsa's inference engine: it loads a model directory
// (docs/MANIFEST.md), runs its ONNX sessions with ONNX Runtime on CUDA or the
// CPU, preprocesses slices exactly as the Python side does, caches embeddings,
// encodes ahead in the background, decodes prompts to masks and propagates a
// mask through a volume. It never imports Fyne. The API is docs/ENGINE_API.md.
package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/medsa/medsa/io/volume"
)

// Options configure Open.
type Options struct {
	Device  string // "auto" (CUDA when its provider loads, else CPU), "cuda", "cpu"; "" = auto
	Threads int    // CPU intra-op threads of the encoders; 0 = number of cores
	// DecoderThreads is the decoder's intra-op threads; 0 = 1. The decoder is
	// small: on 2 cores a second thread gains nothing unloaded (p10 8.0 vs
	// 8.4 ms) and costs under load (p50 15.6 vs 26.1 ms with a busy CPU).
	DecoderThreads int
	CacheBytes     int64  // embedding cache bound; 0 = 1 GiB
	CacheFloat16   bool   // store cached embeddings as float16 (half the memory, ~1e-3 relative error)
	ORTLib         string // libonnxruntime.so; "" = $MEDSA_ORT_LIB, next to the binary, <repo>/.cache/ort
	// No3D propagates with the 2D encoder even when the manifest has an
	// encoder3d (bundled model, 100 slices: ~6 vs ~11 CPU seconds; no
	// encoder3d session is created).
	No3D bool
	// NoZoom ignores the manifest's auto_zoom policy: every prompt is decoded
	// on the full view (for ablations and for comparing with other tools).
	NoZoom bool

	// Server is an Open Inference Protocol (KServe v2) server's HTTP root
	// (e.g. http://127.0.0.1:8000) or gRPC endpoint (grpc://host:8001,
	// grpcs:// = TLS) that encodes instead of the local encoder
	// (docs/SERVER.md); "" = $MEDSA_SERVER, "off" = none. The decoder always
	// runs locally; only preprocessed pixel tensors are sent.
	Server        string
	ServerToken   string        // bearer token; "" = $MEDSA_SERVER_TOKEN (never logged)
	ServerCAFile  string        // extra root CAs for https (PEM); "" = $MEDSA_SERVER_CA
	ServerModel   string        // the 2D encoder's name on the server; "" = "<manifest name>-encoder" (encoder3d: + "3d")
	ServerTimeout time.Duration // one remote encode or connection check; 0 = 10 s, then the local encoder runs
	// ServerRetryMin is the first reconnect delay after a loss (doubling to 30 s); 0 = 1 s.
	ServerRetryMin time.Duration
}

// ErrClosed is returned by calls on a closed Engine.
var ErrClosed = errors.New("model: engine closed")

// Engine runs one model. All methods are safe for concurrent use.
type Engine struct {
	man   *Manifest
	opt   Options
	prov  ProviderInfo
	enc   *ort.DynamicAdvancedSession
	encBG *ort.DynamicAdvancedSession // background encodes: one core fewer (nil: use enc)
	dec   *ort.DynamicAdvancedSession
	enc3d *ort.DynamicAdvancedSession
	cache *embedCache
	use3D bool // propagate with encoder3d

	encoder encoder        // the local sessions, or the server with them as the fallback
	remote  *remoteEncoder // nil without a server

	// encMu serialises encoder runs (each already uses every thread); decMu the
	// decoder's. They are separate so a decode never waits behind an encode.
	encMu sync.Mutex
	decMu sync.Mutex

	sched    *scheduler
	windows  sync.Map // VolumeID -> [2]float64 default window
	closeMu  sync.RWMutex
	closed   bool
	closeCtx context.Context
	closeFn  context.CancelFunc
}

// Open validates the model directory (manifest keys and shapes, file hashes,
// tensor names in the ONNX files) and creates the sessions.
func Open(dir string, opt Options) (*Engine, error) {
	man, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	lib, err := initORT(opt.ORTLib)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if opt.Threads <= 0 {
		opt.Threads = defaultThreads()
	}
	if opt.DecoderThreads <= 0 {
		opt.DecoderThreads = 1
	}
	if opt.Device == "" {
		opt.Device = "auto"
	}
	switch opt.Device {
	case "auto", "cuda", "cpu":
	default:
		return nil, fmt.Errorf("model: device %q, want auto, cuda or cpu", opt.Device)
	}
	S := int64(man.InputSize)
	L := int64(man.LowResMaskSize)
	M := int64(man.NumMaskOutputs)
	es := man.EmbeddingShape
	if err := checkTensors(man, "encoder", map[string][]int64{
		man.Tensors["encoder"].Inputs[0]:  {1, 3, S, S},
		man.Tensors["encoder"].Outputs[0]: es,
	}); err != nil {
		return nil, err
	}
	if err := checkTensors(man, "decoder", map[string][]int64{
		"image_embeddings": es,
		"mask_input":       {1, 1, L, L},
		"low_res_masks":    {1, M, L, L},
		"iou_predictions":  {1, M},
	}); err != nil {
		return nil, err
	}
	if man.Has3D() && !opt.No3D {
		D := int64(man.DepthChunk)
		if err := checkTensors(man, "encoder3d", map[string][]int64{
			man.Tensors["encoder3d"].Inputs[0]:  {D, 3, S, S},
			man.Tensors["encoder3d"].Outputs[0]: {D, es[1], es[2], es[3]},
		}); err != nil {
			return nil, err
		}
	}

	e := &Engine{man: man, opt: opt, cache: newEmbedCache(opt.CacheBytes, opt.CacheFloat16)}
	e.prov = ProviderInfo{Requested: opt.Device, Threads: opt.Threads, DecoderThreads: opt.DecoderThreads, Library: lib}
	useCUDA := opt.Device != "cpu"
	if useCUDA {
		reason := cudaPreflight(lib)
		if reason == "" {
			if err := e.createSessions(true); err != nil {
				e.destroySessions()
				reason = cudaReason(err)
			}
		}
		if reason != "" {
			if opt.Device == "cuda" {
				return nil, fmt.Errorf("model: device cuda: %s (use --device auto or cpu, or a GPU build of onnxruntime: make gpu)", reason)
			}
			e.prov.FallbackReason = reason
			useCUDA = false
		} else {
			e.prov.Name = "CUDA"
		}
	}
	if !useCUDA {
		if err := e.createSessions(false); err != nil {
			e.destroySessions()
			return nil, fmt.Errorf("model: %s: %w", dir, err)
		}
		e.prov.Name = "CPU"
	}
	e.use3D = e.enc3d != nil
	logf("%s on %s", man.ID(), e.prov)
	e.closeCtx, e.closeFn = context.WithCancel(context.Background())
	e.encoder = ortEncoder{e}
	if sc, ok := resolveServer(opt, man); ok {
		// Connecting happens in the background: Open never waits on the network.
		r, err := newRemoteEncoder(e.closeCtx, e.encoder, man, sc, e.use3D)
		if err != nil {
			e.closeFn()
			e.destroySessions()
			return nil, err
		}
		e.remote, e.encoder = r, r
	}
	e.sched = newScheduler(e)
	return e, nil
}

func (e *Engine) createSessions(cuda bool) error {
	m := e.man
	var err error
	t := m.Tensors["encoder"]
	// Background encoders don't spin: spinning threads would steal the CPU
	// from the decoder; an encode is long enough for the wake-up not to matter.
	e.enc, err = newSession(sessionSpec{path: m.FilePath("encoder"), inputs: t.Inputs, outputs: t.Outputs,
		threads: e.opt.Threads, cuda: cuda})
	if err != nil {
		return fmt.Errorf("create encoder session: %w", err)
	}
	// Background encodes leave one core to the decoder, so a click during
	// prefetch doesn't wait for CPU (measured on 2 cores under load: click p50
	// 41 ms with a 2-thread background encode running vs 22 ms idle).
	if !cuda && e.opt.Threads > 1 {
		e.encBG, err = newSession(sessionSpec{path: m.FilePath("encoder"), inputs: t.Inputs, outputs: t.Outputs,
			threads: e.opt.Threads - 1})
		if err != nil {
			return fmt.Errorf("create background encoder session: %w", err)
		}
	}
	e.dec, err = newSession(sessionSpec{path: m.FilePath("decoder"), inputs: decoderInputs,
		outputs: []string{"iou_predictions", "low_res_masks"}, threads: e.opt.DecoderThreads, cuda: cuda, spin: true})
	if err != nil {
		return fmt.Errorf("create decoder session: %w", err)
	}
	if m.Has3D() && !e.opt.No3D {
		t := m.Tensors["encoder3d"]
		e.enc3d, err = newSession(sessionSpec{path: m.FilePath("encoder3d"), inputs: t.Inputs, outputs: t.Outputs,
			threads: e.opt.Threads, cuda: cuda, noArena: true})
		if err != nil {
			return fmt.Errorf("create encoder3d session: %w", err)
		}
	}
	return nil
}

func (e *Engine) destroySessions() {
	for _, s := range []**ort.DynamicAdvancedSession{&e.enc, &e.encBG, &e.dec, &e.enc3d} {
		if *s != nil {
			(*s).Destroy()
			*s = nil
		}
	}
}

// Close stops the background workers and releases the sessions.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return nil
	}
	e.closed = true
	e.closeFn()
	e.closeMu.Unlock()
	e.sched.stop()
	e.encMu.Lock()
	e.decMu.Lock()
	e.destroySessions()
	e.decMu.Unlock()
	e.encMu.Unlock()
	return nil
}

func (e *Engine) isClosed() bool {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	return e.closed
}

// Provider says where inference runs and, after a fallback, why.
func (e *Engine) Provider() ProviderInfo { return e.prov }

// Manifest returns the model's manifest (read-only).
func (e *Engine) Manifest() *Manifest { return e.man }

// CacheStats reports the embedding cache.
func (e *Engine) CacheStats() CacheStats { return e.cache.stats() }

// DropVolume forgets the cached embeddings of one image.
func (e *Engine) DropVolume(volumeID string) {
	e.cache.dropVolume(volumeID)
	e.windows.Delete(volumeID)
}

// SliceRef names one 2D input: a slice of a volume on a plane, windowed as the clinician sees it.
type SliceRef struct {
	Vol      *volume.Volume
	VolumeID string // stable id of the image (e.g. path + size + mtime); part of the cache key
	Plane    volume.Plane
	Index    int
	Window   [2]float64 // center, width; ignored for RGB; width <= 0 = the manifest's default window
	crop     cropRect   // auto-zoom: encode this part of the slice only
}

// resolve fills the default window and checks the reference.
func (e *Engine) resolve(ref SliceRef) (SliceRef, error) {
	if ref.Vol == nil {
		return ref, errors.New("model: slice reference without a volume")
	}
	if n := ref.Vol.NumSlices(ref.Plane); ref.Index < 0 || ref.Index >= n {
		return ref, fmt.Errorf("model: %s slice %d outside 0..%d", ref.Plane, ref.Index, n-1)
	}
	if ref.VolumeID == "" {
		ref.VolumeID = fmt.Sprintf("%p", ref.Vol)
	}
	if ref.Vol.Channels != 1 {
		ref.Window = [2]float64{}
	} else if ref.Window[1] <= 0 {
		// Keyed by the id, not the pointer: the map must not keep closed volumes alive.
		if w, ok := e.windows.Load(ref.VolumeID); ok {
			ref.Window = w.([2]float64)
		} else {
			w := e.man.DefaultWindow(ref.Vol)
			e.windows.Store(ref.VolumeID, w)
			ref.Window = w
		}
	}
	return ref, nil
}

func (e *Engine) key(ref SliceRef, threeD bool) CacheKey {
	m := e.man.ID()
	if threeD {
		m += "/3d"
	}
	c := ref.crop
	return CacheKey{VolumeID: ref.VolumeID, Plane: ref.Plane, Index: ref.Index, Window: ref.Window, Model: m,
		Crop: [4]int{c.X0, c.Y0, c.X1, c.Y1}}
}

// Ready reports whether ref's embedding is cached.
func (e *Engine) Ready(ref SliceRef) bool {
	r, err := e.resolve(ref)
	if err != nil {
		return false
	}
	return e.cache.has(e.key(r, false))
}

// Encode makes sure ref's embedding is cached: it returns at once when it is,
// joins the in-flight job for it, or encodes now (ahead of background work).
func (e *Engine) Encode(ctx context.Context, ref SliceRef) error {
	r, err := e.resolve(ref)
	if err != nil {
		return err
	}
	_, _, err = e.embedding(ctx, r)
	return err
}

// embedding returns ref's embedding, encoding it if needed; encoded reports
// whether this call waited for an encode.
func (e *Engine) embedding(ctx context.Context, ref SliceRef) (emb []float32, g Geometry, err error) {
	k := e.key(ref, false)
	for {
		if emb, g, ok := e.cache.get(k); ok {
			return emb, g, nil
		}
		if e.isClosed() {
			return nil, g, ErrClosed
		}
		j, owner := e.sched.claim(ctx, k, ref, false)
		if owner {
			err := e.runJob(j)
			e.sched.finish(j, err)
			if err != nil {
				return nil, g, err
			}
			continue
		}
		select {
		case <-j.done:
			if j.err != nil && !errors.Is(j.err, context.Canceled) {
				return nil, g, j.err
			}
			// Cancelled background job (stale): loop and claim it ourselves.
		case <-ctx.Done():
			return nil, g, ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return nil, g, err
		}
	}
}

// testHookJobStart, when set (tests only), runs before each job's encode.
var testHookJobStart func(j *job)

// runJob encodes one slice and stores the embedding.
func (e *Engine) runJob(j *job) error {
	if h := testHookJobStart; h != nil {
		h(j)
	}
	s, err := sliceView(j.ref.Vol, j.ref.Plane, j.ref.Index)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if !j.ref.crop.empty() {
		s = cropSlice(s, j.ref.crop)
	}
	S := e.man.InputSize
	in := make([]float32, 3*S*S)
	g, err := e.man.Preprocess(s, j.ref.Window, in)
	if err != nil {
		return fmt.Errorf("model: %s slice %d: %w", j.ref.Plane, j.ref.Index, err)
	}
	emb, err := e.runEncoder(j.ctx, in, 1, j.background)
	if err != nil {
		return fmt.Errorf("model: encode %s slice %d: %w", j.ref.Plane, j.ref.Index, err)
	}
	e.cache.put(j.key, emb, g)
	return nil
}

// runEncoder runs the 2D encoder (n = 1) or encoder3d (n = depth chunk) on
// preprocessed input, on the server when one is configured and up, else
// locally; a cancelled ctx terminates the run.
func (e *Engine) runEncoder(ctx context.Context, in []float32, n int, background bool) ([]float32, error) {
	return e.encoder.encode(ctx, in, n, background)
}

// runLocalEncoder is runEncoder on the local ONNX Runtime sessions.
func (e *Engine) runLocalEncoder(ctx context.Context, in []float32, n int, background bool) ([]float32, error) {
	S := int64(e.man.InputSize)
	e.encMu.Lock()
	defer e.encMu.Unlock()
	sess := e.enc
	if n > 1 {
		sess = e.enc3d
	} else if background && e.encBG != nil {
		sess = e.encBG
	}
	es := e.man.EmbeddingShape
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, ErrClosed
	}
	it, err := ort.NewTensor(ort.NewShape(int64(n), 3, S, S), in)
	if err != nil {
		return nil, err
	}
	defer it.Destroy()
	out := make([]float32, int64(n)*es[1]*es[2]*es[3])
	ot, err := ort.NewTensor(ort.NewShape(int64(n), es[1], es[2], es[3]), out)
	if err != nil {
		return nil, err
	}
	defer ot.Destroy()
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, err
	}
	defer ro.Destroy()
	// A cancelled job terminates the run. The callback may already be running when the run ends: wait for it,
	// or the deferred Destroy frees ro under Terminate (found by the race detector).
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(terminated)
		ro.Terminate()
	})
	err = sess.RunWithOptions([]ort.Value{it}, []ort.Value{ot}, ro)
	if !stop() {
		<-terminated
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Point is a click in slice pixel coordinates (the Slice frame of io/volume: u
// column, v row).
type Point struct {
	U, V     float64
	Positive bool
}

// Box spans slice pixels U0..U1, V0..V1 (either order).
type Box struct{ U0, V0, U1, V1 float64 }

// Prompt is what the user gave on one slice.
type Prompt struct {
	Points []Point
	Box    *Box
	MaskIn []float32 // optional previous low-res logits (L*L) for refinement
}

// Result is the decoder's answer on one slice.
type Result struct {
	W, H     int
	Masks    [][]uint8   // per candidate, W*H, 1 = inside (u + W*v)
	Areas    []int       // pixels inside each candidate
	Scores   []float32   // IoU predictions per candidate
	Best     int         // the candidate offered first: the highest score, or the manifest's ranking
	LowRes   [][]float32 // per candidate, L*L logits (feed back as MaskIn)
	EncodeMS float64     // 0 when the embedding was cached
	DecodeMS float64     // decoder run
	PostMS   float64     // masks at slice resolution
	Zoom     *[4]int     // auto-zoom: the crop (u0, v0, u1, v1 exclusive) decoded on; nil = the full view
}

// checkPrompt rejects prompts the decoder can't use, naming the problem.
func checkPrompt(p Prompt, w, h, L int) error {
	if len(p.Points) == 0 && p.Box == nil {
		return errors.New("model: no prompt: give at least one point or a box")
	}
	in := func(u, v float64) bool { return u >= 0 && v >= 0 && u <= float64(w-1) && v <= float64(h-1) }
	for i, pt := range p.Points {
		if math.IsNaN(pt.U) || math.IsNaN(pt.V) || !in(pt.U, pt.V) {
			return fmt.Errorf("model: point %d at (%g, %g) is outside the %dx%d slice", i+1, pt.U, pt.V, w, h)
		}
	}
	if b := p.Box; b != nil {
		if !in(b.U0, b.V0) || !in(b.U1, b.V1) {
			return fmt.Errorf("model: box (%g, %g)-(%g, %g) is outside the %dx%d slice", b.U0, b.V0, b.U1, b.V1, w, h)
		}
	}
	if p.MaskIn != nil && len(p.MaskIn) != L*L {
		return fmt.Errorf("model: mask input has %d values, want %d (%dx%d low-res logits)", len(p.MaskIn), L*L, L, L)
	}
	return nil
}

// Segment decodes a prompt on ref's slice, encoding the slice first if its
// embedding isn't cached (the call then waits for it).
func (e *Engine) Segment(ctx context.Context, ref SliceRef, p Prompt) (*Result, error) {
	return e.SegmentEarly(ctx, ref, p, nil)
}

// SegmentEarly is Segment for an interactive caller. Where the auto-zoom
// policy decodes on a crop after the full view (clicks), or must encode a
// box's crop first, it hands early the full view's answer before that (on
// the calling goroutine), so a mask can be shown at once and replaced by the
// returned one, which may be the same. A box whose crop is cached is
// answered directly (early would cost an extra decode). nil: never.
func (e *Engine) SegmentEarly(ctx context.Context, ref SliceRef, p Prompt, early func(*Result)) (*Result, error) {
	r, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	w, h := sliceSize(r.Vol, r.Plane)
	if err := checkPrompt(p, w, h, e.man.LowResMaskSize); err != nil {
		return nil, err
	}
	var res *Result
	if z := e.man.AutoZoom; z != nil && !e.opt.NoZoom {
		ea := early
		if early != nil {
			ea = func(r *Result) { early(e.clip(r, p, w, h)) }
		}
		res, err = e.segmentAuto(ctx, r, p, *z, w, h, ea)
	} else {
		res, err = e.segmentFull(ctx, r, p)
	}
	if err != nil {
		return nil, err
	}
	return e.clip(res, p, w, h), nil
}

// clip applies the manifest's box clip to a Segment answer (early or final).
func (e *Engine) clip(res *Result, p Prompt, w, h int) *Result {
	if p.Box != nil && e.man.BoxClip {
		t0 := time.Now()
		clipToRect(res, boxClipRect(p, w, h))
		res.PostMS += ms(time.Since(t0))
	}
	return res
}

// segmentFull decodes p on the full view of r's slice.
func (e *Engine) segmentFull(ctx context.Context, r SliceRef, p Prompt) (*Result, error) {
	t0 := time.Now()
	var encMS float64
	var err error
	emb, g, ok := e.cache.get(e.key(r, false))
	if !ok {
		emb, g, err = e.embedding(ctx, r)
		if err != nil {
			return nil, err
		}
		encMS = ms(time.Since(t0))
	}
	res, err := e.decode(ctx, emb, g, p)
	if err != nil {
		return nil, err
	}
	res.EncodeMS = encMS
	return res, nil
}

// segmentAuto applies the manifest's zoom policy (AutoZoom): a box is decoded
// on a crop around it; clicks on the full view, then, when the mask is small,
// again on a crop around it. early: see SegmentEarly.
func (e *Engine) segmentAuto(ctx context.Context, r SliceRef, p Prompt, z AutoZoom, w, h int, early func(*Result)) (*Result, error) {
	ua, va := volume.SliceAxes(r.Vol.Affine.PlaneAxis(r.Plane, r.Vol.Size))
	sp := r.Vol.Spacing()
	gFull := e.man.Geometry(w, h, [2]float64{sp[ua], sp[va]})
	if b := p.Box; b != nil {
		c, ok := zoomCrop(math.Min(b.U0, b.U1), math.Min(b.V0, b.V1), math.Max(b.U0, b.U1), math.Max(b.V0, b.V1), z, z.BoxMargin, w, h)
		if !ok {
			return e.segmentFull(ctx, r, p)
		}
		rc := r
		rc.crop = c
		if early != nil && !e.cache.has(e.key(rc, false)) { // the crop must be encoded first
			full, err := e.segmentFull(ctx, r, p)
			if err != nil {
				return nil, err
			}
			early(full)
		}
		return e.segmentZoomed(ctx, r, c, p, gFull)
	}
	full, err := e.segmentFull(ctx, r, p)
	if err != nil || z.ClickBelow <= 0 || len(p.Points) < z.ClickMinPoints ||
		float64(full.Areas[full.Best]) >= z.ClickBelow*float64(w*h) {
		return full, err
	}
	u0, v0, u1, v1, ok := bboxOf(full.Masks[full.Best], w, p.Points)
	if !ok {
		return full, nil
	}
	c, ok := zoomCrop(u0, v0, u1, v1, z, z.ClickMargin, w, h)
	if !ok {
		return full, nil
	}
	if early != nil {
		early(full) // it costs nothing; the crop's decode (and maybe encode) follows
	}
	zr, err := e.segmentZoomed(ctx, r, c, p, gFull)
	if err != nil {
		return nil, err
	}
	if !keepZoomed(full.Masks[full.Best], zr.Masks[zr.Best], z) {
		// A fresh Result: early's copy is the caller's now.
		out := *full
		out.EncodeMS += zr.EncodeMS
		out.DecodeMS += zr.DecodeMS
		out.PostMS += zr.PostMS
		return &out, nil
	}
	zr.EncodeMS += full.EncodeMS
	zr.DecodeMS += full.DecodeMS
	zr.PostMS += full.PostMS
	return zr, nil
}

func nowMS() float64 { return float64(time.Now().UnixMicro()) / 1000 }

// sliceView is the slice without a copy where it is contiguous (the engine only reads it).
func sliceView(v *volume.Volume, p volume.Plane, idx int) (*volume.Slice, error) {
	return v.SliceView(p, idx)
}

// sliceSize is (W, H) of the slices of plane p.
func sliceSize(v *volume.Volume, p volume.Plane) (int, int) {
	ua, va := volume.SliceAxes(v.Affine.PlaneAxis(p, v.Size))
	return v.Size[ua], v.Size[va]
}

// decoderInputs builds point_coords and point_labels (SAM's ONNX convention).
func promptTensors(g Geometry, p Prompt) (coords, labels []float32) {
	for _, pt := range p.Points {
		x, y := g.ToModel(pt.U, pt.V)
		coords = append(coords, x, y)
		if pt.Positive {
			labels = append(labels, 1)
		} else {
			labels = append(labels, 0)
		}
	}
	if b := p.Box; b != nil {
		x0, y0 := g.ToModel(math.Min(b.U0, b.U1), math.Min(b.V0, b.V1))
		x1, y1 := g.ToModel(math.Max(b.U0, b.U1), math.Max(b.V0, b.V1))
		coords = append(coords, x0, y0, x1, y1)
		labels = append(labels, 2, 3)
	} else {
		coords = append(coords, 0, 0)
		labels = append(labels, -1)
	}
	return coords, labels
}

// decode runs the decoder and turns its low-res logits into masks.
func (e *Engine) decode(ctx context.Context, emb []float32, g Geometry, p Prompt) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	iou, low, dms, err := e.runDecoder(emb, g, p)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	M, L := e.man.NumMaskOutputs, e.man.LowResMaskSize
	res := &Result{W: g.W, H: g.H, Scores: iou, DecodeMS: dms}
	mw := g.maskWeights()
	res.Masks = make([][]uint8, M)
	res.Areas = make([]int, M)
	res.LowRes = make([][]float32, M)
	// Candidates in parallel: large slices (a 1411² photo) cost ~10 ms each.
	var wg sync.WaitGroup
	for c := 0; c < M; c++ {
		lr := low[c*L*L : (c+1)*L*L : (c+1)*L*L]
		res.LowRes[c] = lr
		res.Masks[c] = make([]uint8, g.W*g.H)
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			res.Areas[c] = g.threshold(lr, e.man.MaskThreshold, mw, res.Masks[c])
		}(c)
	}
	res.Best = e.man.Ranking.best(iou, res.LowRes, e.man.MaskThreshold)
	wg.Wait()
	res.PostMS = ms(time.Since(t1))
	return res, nil
}

// runDecoder returns the IoU predictions [M] and low-res logits [M*L*L].
func (e *Engine) runDecoder(emb []float32, g Geometry, p Prompt) (iou, low []float32, msDec float64, err error) {
	M, L := int64(e.man.NumMaskOutputs), int64(e.man.LowResMaskSize)
	coords, labels := promptTensors(g, p)
	N := int64(len(labels))
	maskIn := p.MaskIn
	has := float32(1)
	if maskIn == nil {
		maskIn = make([]float32, L*L)
		has = 0
	}
	var vals []ort.Value
	defer func() {
		for _, v := range vals {
			v.Destroy()
		}
	}()
	add := func(shape ort.Shape, data []float32) *ort.Tensor[float32] {
		if err != nil {
			return nil
		}
		var t *ort.Tensor[float32]
		t, err = ort.NewTensor(shape, data)
		if err == nil {
			vals = append(vals, t)
		}
		return t
	}
	es := e.man.EmbeddingShape
	add(ort.NewShape(es...), emb)
	add(ort.NewShape(1, N, 2), coords)
	add(ort.NewShape(1, N), labels)
	add(ort.NewShape(1, 1, L, L), maskIn)
	add(ort.NewShape(1), []float32{has})
	// orig_im_size only feeds the graph's own `masks` output, which the engine
	// doesn't use (it upsamples low_res_masks itself, with the physical
	// aspect). ORT runs every node whether or not its output is fetched, so
	// (L, L) keeps that branch at L x L instead of H x W per candidate
	// (measured ~4 ms per click at 512x512).
	add(ort.NewShape(2), []float32{float32(L), float32(L)})
	iou = make([]float32, M)
	low = make([]float32, M*L*L)
	add(ort.NewShape(1, M), iou)
	add(ort.NewShape(1, M, L, L), low)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("model: decoder tensors: %w", err)
	}
	e.decMu.Lock()
	defer e.decMu.Unlock()
	if e.dec == nil {
		return nil, nil, 0, ErrClosed
	}
	t0 := time.Now()
	if err := e.dec.Run(vals[:6], vals[6:]); err != nil {
		return nil, nil, 0, fmt.Errorf("model: decode: %w", err)
	}
	return iou, low, ms(time.Since(t0)), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// String summarises the engine for logs.
func (e *Engine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s", e.man.ID(), e.prov)
	return b.String()
}
